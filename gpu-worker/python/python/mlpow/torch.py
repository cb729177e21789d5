"""Mining PyTorch models: every ``nn.Linear`` swapped for a
:class:`MiningLinear`, whose matmul runs through an ``mlpow.Miner`` and
mines where it is worth it, on the layer's own device (CUDA tensors never
leave the GPU)::

    import mlpow, mlpow.torch
    miner = mlpow.Miner("ws://127.0.0.1:9944", backend="cuda")
    mlpow.torch.patch(model, miner)            # every nn.Linear now mines
    with torch.no_grad(): y = model(x)
    print(miner.stats())

Weights and activations are quantized to 7 bits as ``mlpow.quant`` says
(per output channel, per row; the same formulas): the integer product is
exact whether or not it mined, so a model's outputs do not depend on the
chain. Inference only.
"""

import weakref

import torch
from torch import nn

from . import HIGH, LOW  # the puzzle's range (mlpow.quant needs numpy; this does not)

__all__ = ["MiningLinear", "patch"]


# ``bits=8``: symmetric int8 (``mlpow.quant.HIGH8``).
HIGH8 = 127


def _quantize(x, dim, bits=7):
    """``x`` as int8 values (7 bits: -64..=63; 8: -127..=127) and float32
    scales along ``dim`` (1: per row), as ``mlpow.quant`` computes them."""
    if bits not in (7, 8):
        raise ValueError(f"bits={bits}: 7 (the puzzle's range) or 8 (int8, split into 7-bit parts)")
    high, low = (HIGH, LOW) if bits == 7 else (HIGH8, -HIGH8)
    x = x.float()
    top = x.abs().amax(dim=dim) / high
    scale = torch.where(top > 0, top, torch.ones_like(top))
    q = torch.clamp(torch.round(x / scale.unsqueeze(dim)), low, high).to(torch.int8)
    return q, scale


def _halves(x, dim):
    """``x`` (int8) as its two 7-bit parts ``x >> 1`` and ``x & 1``
    (``x == 2*hi + lo``), concatenated along ``dim``."""
    return torch.cat([x >> 1, x & 1], dim=dim)


def _fits7(x):
    """Whether every value of the int8 tensor ``x`` is in -64..=63 (one look
    at the values: a device sync for a CUDA tensor)."""
    return x.numel() == 0 or bool(((x >= LOW) & (x <= HIGH)).all())


def _refuse_grad(x, name):
    if torch.is_grad_enabled() and x.requires_grad:
        raise RuntimeError(f"{name} is for inference: call the model under torch.no_grad()")


class _Int8Weight:
    """A layer's int8 weight ``w`` (``out x in``, any values) registered with
    a miner, and its exact products ``x @ w.T`` for int8 ``x`` of any
    values: a side outside -64..=63 goes through the miner as its two 7-bit
    parts (``_halves``), so a product costs 1, 2 or 4 times its MACs, all of
    them mining, and the blocks are recombined exactly.

    The registration is a copy (on the weight's device: a CUDA weight stays
    on the GPU), made again when the layer's weight is another tensor, moves,
    or changes in place through torch's operations (``load_state_dict``,
    ``copy_``: torch counts a tensor's versions). Writes through ``.data``
    are not counted, and not seen: register again (``patch`` anew)."""

    def __init__(self, miner):
        self.miner = miner
        self.registered, self._key, self._tensor, self._split = None, None, None, False

    def _register(self, w):
        try:
            version = w._version
        except RuntimeError:  # an inference-mode tensor: it cannot change in place
            version = None
        key = (w.device, version, w.data_ptr())
        same = self._tensor is not None and self._tensor() is w
        if self.registered is None or self._key != key or not same:
            self._split = not _fits7(w)
            b = _halves(w.t(), dim=1) if self._split else w.t()  # in x out, or in x 2out
            if w.device.type == "cpu":
                b = b.contiguous()
            self.registered = self.miner.register_weight(b)
            self._key, self._tensor = key, weakref.ref(w)
        return self.registered

    def product(self, x, w, x_fits7=None):
        """The exact int32 ``x @ w.T`` (``x``: ``rows x in`` int8 on ``w``'s
        device). ``x_fits7``: whether ``x`` is known to be in -64..=63; by
        default looked at on the CPU and assumed not on a GPU (no sync)."""
        rows, cols = x.shape[0], w.shape[0]
        if rows == 0:
            return torch.zeros((0, cols), dtype=torch.int32, device=x.device)
        weight = self._register(w)
        if x.device.type == "cpu":
            x = x.contiguous()  # the miner reads host rows as they lie
        if x_fits7 is None:
            x_fits7 = x.device.type == "cpu" and _fits7(x)
        if x_fits7 and not self._split:
            return self.miner.matmul(x, weight)
        big = self.miner.matmul(x if x_fits7 else _halves(x, dim=0), weight).to(torch.int64)
        if x_fits7:  # [x.wh | x.wl]
            out = 2 * big[:, :cols] + big[:, cols:]
        elif not self._split:  # [xh.w ; xl.w]
            out = 2 * big[:rows] + big[rows:]
        else:
            hh, hl, lh, ll = big[:rows, :cols], big[:rows, cols:], big[rows:, :cols], big[rows:, cols:]
            out = 4 * hh + 2 * (hl + lh) + ll
        # Exact in int64; int8 products of depth up to 131071 always fit
        # int32, deeper ones wrap as int32 arithmetic (and torch's) does.
        return out.to(torch.int32)


class MiningLinear(nn.Module):
    """A linear layer whose product mines: ``x`` quantized per row to 7
    bits, multiplied by the 7-bit weights through ``miner``, scaled back,
    plus the bias; the output keeps ``x``'s dtype and leading dimensions.

    ``bits=8``: int8 resolution instead (weights and activations in
    -127..=127), each split into two 7-bit parts that go through one mined
    product of 4x the MACs (the weight's parts registered once), its blocks
    recombined exactly: an int8 model's arithmetic, mined."""

    def __init__(self, linear, miner, bits=7):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bits = bits
        w7, s_w = _quantize(linear.weight.detach(), dim=1, bits=bits)
        self.register_buffer("w7", w7)  # out x in: B's transpose, as the miner takes it
        self.register_buffer("s_w", s_w)
        bias = linear.bias.detach().float() if linear.bias is not None else None
        self.register_buffer("bias", bias)
        # Registered with the miner on first use, on the weights' device: its
        # pieces are committed once, on the CPU or (a CUDA weight, copied
        # into the miner's GPU memory) the GPU.
        self._int8 = _Int8Weight(miner)

    @property
    def _weight(self):
        return self._int8.registered

    def _product(self, xq):
        """The exact int32 ``xq @ w7.T`` (one product; for ``bits=8`` the
        parts' blocks recombined)."""
        return self._int8.product(xq, self.w7, x_fits7=self.bits == 7)

    def forward(self, x):
        _refuse_grad(x, "MiningLinear")
        shape = x.shape
        x7, s_x = _quantize(x.reshape(-1, self.in_features), dim=1, bits=self.bits)
        c = self._product(x7)
        y = c.float() * s_x.unsqueeze(1) * self.s_w.unsqueeze(0)
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype).reshape(*shape[:-1], self.out_features)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, {self.bits}-bit, mining"


def patch(model, miner, skip=(), bits=7):
    """Replaces the linear layers of ``model`` (in place) by mining ones on
    ``miner``, except those whose qualified name is in ``skip``; returns the
    names replaced. A float ``nn.Linear`` becomes a :class:`MiningLinear`
    (``bits``: 7, or 8 for int8 resolution at 4x the MACs); a layer that is
    quantized already (torchao's int8 weights, torch.ao's quantized linears)
    keeps its own int8 weights and its library's arithmetic
    (:mod:`mlpow.quantized`)."""
    from .quantized import quantized_kind

    # Every replacement is built (and can fail: a layer it cannot take)
    # before any is swapped in, so a refusal leaves the model as it was.
    swaps = []
    for name, module in model.named_modules():
        for child_name, child in module.named_children():
            full = f"{name}.{child_name}" if name else child_name
            if full in skip:
                continue
            kind = quantized_kind(child)
            if kind is not None:
                device = child.weight.device if isinstance(child, nn.Linear) else torch.device("cpu")
                swaps.append((module, child_name, full, kind(child, miner).to(device)))
            elif isinstance(child, nn.Linear):
                swaps.append((module, child_name, full, MiningLinear(child, miner, bits).to(child.weight.device)))
    for module, child_name, _, replacement in swaps:
        setattr(module, child_name, replacement)
    return [full for _, _, full, _ in swaps]
