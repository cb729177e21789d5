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
        self.miner = miner
        # Registered with the miner on first use, on the weights' device: its
        # pieces are committed once, on the CPU or (a CUDA weight, copied
        # into the miner's GPU memory) the GPU. The registration is a copy,
        # so it is made again when the module moves or its weights change
        # in place (`load_state_dict`: torch counts a tensor's versions).
        self._weight, self._weight_key = None, None

    def _registered(self):
        key = (self.w7.device, self.w7._version)
        if self._weight is None or self._weight_key != key:
            b = self.w7.t()
            if self.bits == 8:
                b = _halves(b, dim=1)  # [B >> 1 | B & 1]: in x 2out
            if self.w7.device.type == "cpu":
                b = b.contiguous()
            self._weight, self._weight_key = self.miner.register_weight(b), key
        return self._weight

    def _product(self, xq):
        """The exact int32 ``xq @ w7.T``: one product, or for ``bits=8`` the
        four blocks of the halves' product recombined."""
        if self.bits == 7:
            return self.miner.matmul(xq, self._registered())
        rows, cols = xq.shape[0], self.out_features
        big = self.miner.matmul(_halves(xq, dim=0), self._registered()).to(torch.int64)
        hh, hl, lh, ll = big[:rows, :cols], big[:rows, cols:], big[rows:, :cols], big[rows:, cols:]
        return (4 * hh + 2 * (hl + lh) + ll).to(torch.int32)

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError("MiningLinear is for inference: call the model under torch.no_grad()")
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
    """Replaces every ``nn.Linear`` of ``model`` (in place) by a
    :class:`MiningLinear` on ``miner`` (``bits``: 7, or 8 for int8
    resolution at 4x the MACs), except those whose qualified name is in
    ``skip``; returns the names replaced."""
    replaced = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and full not in skip:
                setattr(module, child_name, MiningLinear(child, miner, bits).to(child.weight.device))
                replaced.append(full)
    return replaced
