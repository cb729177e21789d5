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


def _quantize(x, dim):
    """``x`` as 7-bit int8 values and float32 scales along ``dim`` (1: per
    row), as ``mlpow.quant`` computes them."""
    x = x.float()
    top = x.abs().amax(dim=dim) / HIGH
    scale = torch.where(top > 0, top, torch.ones_like(top))
    q = torch.clamp(torch.round(x / scale.unsqueeze(dim)), LOW, HIGH).to(torch.int8)
    return q, scale


class MiningLinear(nn.Module):
    """A linear layer whose product mines: ``x`` quantized per row to 7
    bits, multiplied by the 7-bit weights through ``miner``, scaled back,
    plus the bias; the output keeps ``x``'s dtype and leading dimensions."""

    def __init__(self, linear, miner):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w7, s_w = _quantize(linear.weight.detach(), dim=1)
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
            if self.w7.device.type == "cpu":
                b = b.contiguous()
            self._weight, self._weight_key = self.miner.register_weight(b), key
        return self._weight

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError("MiningLinear is for inference: call the model under torch.no_grad()")
        shape = x.shape
        x7, s_x = _quantize(x.reshape(-1, self.in_features), dim=1)
        c = self.miner.matmul(x7, self._registered())
        y = c.float() * s_x.unsqueeze(1) * self.s_w.unsqueeze(0)
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype).reshape(*shape[:-1], self.out_features)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, 7-bit, mining"


def patch(model, miner, skip=()):
    """Replaces every ``nn.Linear`` of ``model`` (in place) by a
    :class:`MiningLinear` on ``miner``, except those whose qualified name is
    in ``skip``; returns the names replaced."""
    replaced = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and full not in skip:
                setattr(module, child_name, MiningLinear(child, miner).to(child.weight.device))
                replaced.append(full)
    return replaced
