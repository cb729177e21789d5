"""Mining layers for models that are quantized already: their own int8
weights are multiplied exactly (through 7-bit parts, all of them mining), and
each layer's output is, bit for bit, the one its quantization library
computes. :func:`mlpow.torch.patch` swaps these layers in:

- **torchao** (``quantize_(model, Int8DynamicActivationInt8WeightConfig())``):
  an ``nn.Linear`` whose weight is torchao's ``Int8Tensor``. Activations are
  quantized by torchao's own function (per token or per tensor, symmetric or
  not, its pre-scale), the int32 product is the miner's, and the float
  epilogue is torchao's operation for operation. A weight-only layer
  (``Int8WeightOnlyConfig``) multiplies float activations by the int8
  weights in float, which no integer product reproduces: it is mined as the
  dynamic form (activations per token to int8), a documented change of its
  output, like quantizing a float layer.
- **torch.ao** (``torch.ao.quantization.quantize_dynamic``, the eager-mode
  static flow): ``torch.ao.nn.quantized.dynamic.Linear`` and
  ``torch.ao.nn.quantized.Linear`` (each with its fused ``LinearReLU``; other
  fused kinds are left as they are), qint8 weights per tensor or per
  channel, with zero points. The activation quantization and requantization
  are fbgemm's (the ``x86`` and ``fbgemm`` engines'; under another engine
  the layers are not taken), including the two places where its compiled
  code rounds a multiply and an add once (a fused multiply-add): emulated
  exactly here. fbgemm's integer sum is exact on CPUs with VNNI; on older
  ones its AVX2 kernel saturates for activations beyond 0..127, which
  torch.ao's default observers avoid (``reduce_range``). An empty batch, or
  a dynamic layer's input holding NaN or infinity, goes to the library's own
  layer, unmined.

The integer product of zero-pointed operands is the miner's product of the
raw int8 values plus exact integer corrections (the zero points times row
and column sums), so a zero point never widens what is mined.
"""

import math

import torch
from torch import nn

from .torch import _Int8Weight, _refuse_grad

__all__ = ["MiningTorchaoLinear", "MiningDynamicLinear", "MiningStaticLinear", "quantized_kind", "FBGEMM_ENGINES"]


def _torchao_int8(weight):
    """Whether ``weight`` is torchao's ``Int8Tensor`` (without importing
    torchao where a model does not use it)."""
    t = type(weight)
    return t.__name__ == "Int8Tensor" and t.__module__.startswith("torchao.")


#: The engines whose linear arithmetic :class:`MiningDynamicLinear` and
#: :class:`MiningStaticLinear` reproduce (``x86`` runs fbgemm for linears).
FBGEMM_ENGINES = ("x86", "fbgemm")


def _check_engine():
    engine = torch.backends.quantized.engine
    if engine not in FBGEMM_ENGINES:
        raise RuntimeError(
            f"torch.backends.quantized.engine is {engine!r}: the mining torch.ao layers compute fbgemm's arithmetic "
            f"({' or '.join(FBGEMM_ENGINES)}), and another engine rounds differently"
        )


def quantized_kind(module):
    """The mining layer class for ``module`` when it is a quantized linear
    layer this module takes, else None. torch.ao's layers are taken by their
    exact types (a fused subclass, ``LinearTanh`` say, computes more than a
    linear) and under fbgemm's engines only: elsewhere they stay as they
    are, not mined."""
    if isinstance(module, nn.Linear) and _torchao_int8(module.weight):
        return MiningTorchaoLinear
    if not hasattr(torch, "ao") or torch.backends.quantized.engine not in FBGEMM_ENGINES:
        return None
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.intrinsic.quantized.dynamic as nniqd
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd

    if type(module) in (nnqd.Linear, nniqd.LinearReLU):
        return MiningDynamicLinear if module._packed_params.dtype == torch.qint8 else None
    if type(module) in (nnq.Linear, nniq.LinearReLU):
        return MiningStaticLinear
    return None


class MiningTorchaoLinear(nn.Module):
    """torchao's int8 ``nn.Linear`` (weight ``Int8Tensor``, per-row or
    per-tensor scales), mining: its output equals torchao's."""

    def __init__(self, linear, miner):
        super().__init__()
        from torchao.quantization.quantize_.workflows import QuantizeTensorToInt8Kwargs
        from torchao.quantization.granularity import PerRow

        w = linear.weight
        if w.block_size[-1] < w.qdata.shape[-1]:
            raise ValueError("per-group int8 weights are dequantized by torchao (a float product): not mined")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("qdata", w.qdata.detach().contiguous())  # out x in int8
        self.register_buffer("scale", w.scale.detach())
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach())
        for name in ("act_pre_scale", "act_quant_scale", "act_quant_zero_point"):
            value = getattr(w, name, None)
            self.register_buffer(name, None if value is None else value.detach())
        self.weight_only = w.act_quant_kwargs is None
        self.act_quant_kwargs = QuantizeTensorToInt8Kwargs(granularity=PerRow()) if self.weight_only else w.act_quant_kwargs
        self._int8 = _Int8Weight(miner)

    def forward(self, x):
        from torchao.quantization.quantize_.common.quantize_tensor_kwargs import (
            _choose_quant_func_and_quantize_tensor,
        )
        from torchao.quantization.quant_primitives import MappingType

        _refuse_grad(x, "MiningTorchaoLinear")
        out_dtype = x.dtype
        if self.act_pre_scale is not None:
            x = x * self.act_pre_scale
        xq = _choose_quant_func_and_quantize_tensor(
            x, self.act_quant_kwargs, scale=self.act_quant_scale, zero_point=self.act_quant_zero_point
        )
        q = xq.qdata.reshape(-1, self.in_features)
        acc = self._int8.product(q, self.qdata)
        # torchao's epilogue, operation for operation (Int8Tensor's linear).
        x_scales = xq.scale
        intermediate = torch.float if x_scales.dtype == torch.half else x_scales.dtype
        y = (acc * x_scales.reshape(-1, 1).to(intermediate)).to(out_dtype)
        if self.act_quant_kwargs.mapping_type == MappingType.ASYMMETRIC and xq.zero_point is not None:
            row_sums = self.qdata.sum(dim=-1)
            zp = xq.zero_point.reshape(-1, 1).to(intermediate)
            y = y - ((zp * x_scales.reshape(-1, 1).to(intermediate)) * row_sums.to(intermediate)).to(out_dtype)
        y = (y * self.scale.flatten()).reshape(*x.shape[:-1], self.out_features)
        if self.bias is not None:
            y += self.bias
        return y.to(out_dtype)

    def extra_repr(self):
        form = "int8 weight-only, mined with int8 activations per token" if self.weight_only else "torchao int8"
        return f"in_features={self.in_features}, out_features={self.out_features}, {form}, mining"


def _fma32(a, b, c):
    """float32 ``a * b + c`` rounded once (a fused multiply-add), exactly:
    the product of two float32 is exact in float64, the sum is corrected by
    its rounding error (Knuth's two-sum) where float64 rounding would land on
    a float32 tie."""
    a, b, c = (t.double() for t in torch.broadcast_tensors(a, b, c))
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    r = s.float()
    down = torch.nextafter(r, torch.full_like(r, -float("inf")))
    up = torch.nextafter(r, torch.full_like(r, float("inf")))
    r = torch.where((s == (r.double() + down.double()) / 2) & (err < 0), down, r)
    return torch.where((s == (r.double() + up.double()) / 2) & (err > 0), up, r)


class _AoWeight(nn.Module):
    """A torch.ao qint8 linear's weight: int8 values, float32 scales and
    zero points per output channel (one per tensor repeated), bias; and the
    library's own layer, which computes what is not mined (an empty batch,
    values that are not finite)."""

    def __init__(self, module, miner):
        super().__init__()
        _check_engine()
        w, bias = module._weight_bias()
        self.in_features, self.out_features = module.in_features, module.out_features
        if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            scales, zps = w.q_per_channel_scales().float(), w.q_per_channel_zero_points().to(torch.int64)
            self.per_channel = True
        else:
            scales = torch.full((w.shape[0],), w.q_scale(), dtype=torch.float32)
            zps = torch.full((w.shape[0],), w.q_zero_point(), dtype=torch.int64)
            self.per_channel = False
        self.register_buffer("w", w.int_repr().contiguous())  # out x in
        self.register_buffer("w_scale", scales)
        self.register_buffer("w_zp", zps)
        self.register_buffer("bias", None if bias is None else bias.detach().float())
        self.relu = "ReLU" in type(module).__name__
        self._int8 = _Int8Weight(miner)
        # Not a submodule: a second `patch` must not find it.
        self.__dict__["library"] = module

    def accumulate(self, q, zx):
        """fbgemm's int32 ``sum_k (q - zx)(w - zw)`` of uint8 rows ``q``
        (``rows x in``): the miner's product of ``q - o`` (int8, ``o`` picked
        so it fits) by ``w``, and exact corrections in int64. fbgemm's own
        sum is exact on CPUs with VNNI (AVX-512 or AVX-VNNI); without, its
        AVX2 kernel adds pairs of products in int16, which saturates for
        activations beyond 0..127 (why torch.ao's observers reduce the
        range), and there the exact sum here differs from fbgemm's."""
        _check_engine()
        q = q.to(torch.int16)
        lo, hi = int(q.min()), int(q.max())
        o = lo + 64 if hi - lo <= 127 else 128  # 7 bits when the values span 128 or fewer
        acc = self._int8.product((q - o).to(torch.int8), self.w).to(torch.int64)
        acc += (o - zx) * self.w.to(torch.int64).sum(dim=1)
        acc -= self.w_zp * (q.to(torch.int64) - zx).sum(dim=1, keepdim=True)
        return acc.to(torch.int32)  # wraps as fbgemm's int32 sum does


def _f32(v):
    """``v`` rounded to float32 (to nearest), as a Python float."""
    return torch.tensor(v, dtype=torch.float32).item()


_SMALL_SCALE = _f32(6.1e-05)


def _choose_qparams(x_min, x_max, qmin=0, qmax=127):
    """fbgemm's ``ChooseQuantizationParams`` without sparsity preservation,
    as the dynamic linear calls it (``reduce_range``: 0..127):
    ``(scale, zero_point)``, the scale a float32."""
    mn, mx = _f32(min(_f32(x_min), 0.0)), _f32(max(_f32(x_max), 0.0))
    scale = (mx - mn) / (qmax - qmin)  # in double
    if _f32(scale) == 0.0 or math.isinf(_f32(1.0 / _f32(scale))):
        scale = 0.1
    if scale < _SMALL_SCALE:
        org = _f32(scale)
        scale = _SMALL_SCALE
        if mn == 0.0:
            mx = _f32(_SMALL_SCALE * _f32(qmax - qmin))
        elif mx == 0.0:
            mn = _f32(-_SMALL_SCALE * _f32(qmax - qmin))
        else:
            amp = _f32(_SMALL_SCALE / org)
            mn, mx = _f32(mn * amp), _f32(mx * amp)
    zp_min, zp_max = qmin - mn / scale, qmax - mx / scale
    err_min, err_max = abs(qmin) - abs(mn / scale), abs(qmax) - abs(mx / scale)
    z0 = zp_min if err_min < err_max else zp_max
    zp = qmin if z0 < qmin else qmax if z0 > qmax else int(round(z0))  # round: ties to even, as rint
    return _f32(scale), zp


class MiningDynamicLinear(_AoWeight):
    """``torch.ao.nn.quantized.dynamic.Linear`` (qint8; and its fused
    ``LinearReLU``), mining: fbgemm's dynamic quantization of the input
    (per tensor, 0..127; 0..255 for a layer saved before torch's version 4
    of it), the exact int32 product, its float output with a fused
    multiply-add."""

    def forward(self, x):
        _refuse_grad(x, "MiningDynamicLinear")
        if x.dtype != torch.float32:
            raise TypeError(f"a dynamic quantized linear takes float32 input, not {x.dtype}")
        if x.numel() == 0 or not bool(torch.isfinite(x).all()):
            return self.library(x)  # nothing to mine; the library says what NaN and inf become
        shape = x.shape
        x = x.reshape(-1, self.in_features)
        version = getattr(self.library, "version", None)
        scale, zp = _choose_qparams(float(x.min()), float(x.max()), qmax=127 if version and version >= 4 else 255)
        inv = _f32(1.0 / scale)  # fbgemm multiplies by the float32 reciprocal
        t = torch.clamp_max(x * inv, 2147483520.0)
        q = torch.clamp(torch.round(t) + zp, 0, 255).to(torch.uint8)
        acc = self.accumulate(q, zp).float()
        mult = torch.tensor(scale, dtype=torch.float32) * self.w_scale
        y = acc * mult if self.bias is None else _fma32(acc, mult, self.bias)
        if self.relu:
            y = y.clamp_min(0)
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self):
        relu = ", ReLU" if self.relu else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, torch.ao dynamic qint8{relu}, mining"


class MiningStaticLinear(_AoWeight):
    """``torch.ao.nn.quantized.Linear`` (and ``LinearReLU``), mining: quint8
    in, the exact int32 product, fbgemm's requantization to quint8 out."""

    def __init__(self, module, miner):
        super().__init__(module, miner)
        self.out_scale, self.out_zp = float(module.scale), int(module.zero_point)

    def forward(self, x):
        if not x.is_quantized or x.dtype != torch.quint8:
            raise TypeError(f"MiningStaticLinear takes a quint8 tensor (a QuantStub's output), not {x.dtype}")
        if x.numel() == 0:
            return self.library(x)
        shape = x.shape
        q = x.int_repr().reshape(-1, self.in_features)
        sx, zx = x.q_scale(), x.q_zero_point()
        acc = self.accumulate(q, zx).float()
        atws = torch.tensor(sx, dtype=torch.float32) * self.w_scale
        mult = atws / torch.tensor(self.out_scale, dtype=torch.float32)
        xf = acc
        if self.bias is not None:
            if self.per_channel:
                xf = xf + self.bias / atws
            else:
                xf = _fma32(self.bias, (1.0 / atws.double()).float(), xf)
        r = torch.round((xf * mult).double())
        out = (r + self.out_zp).clamp(self.out_zp if self.relu else 0, 255).to(torch.uint8)
        return torch._make_per_tensor_quantized_tensor(
            out.reshape(*shape[:-1], self.out_features), self.out_scale, self.out_zp
        )

    def extra_repr(self):
        relu = ", ReLU" if self.relu else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, torch.ao static qint8{relu}, mining"
