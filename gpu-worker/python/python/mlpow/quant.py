"""7-bit quantization for the puzzle's range, in numpy: what a float layer
becomes so that its matmul can mine (``mlpow.torch`` does the same in
torch, with the same formulas).

The puzzle multiplies values in -64..=63. A float layer ``y = x @ W.T + b``
becomes, with symmetric scales:

- weights per output channel: ``s_w[o] = max|W[o]| / 63``,
  ``W7 = clip(round(W / s_w), -64, 63)``, computed once;
- activations per row (per token), at each call: ``s_x[i] = max|x[i]| / 63``,
  ``x7 = clip(round(x / s_x), -64, 63)``;
- ``y ~= (x7 @ W7.T) * s_x[:, None] * s_w[None, :] + b``, the integer
  product exact (and mined), the scales applied after.

Seven bits against eight is one level of resolution less: half the steps,
about 6 dB less signal to quantization noise. Per-channel weights and
per-row activations keep most of it; a model with outlier channels (large
language models) may want its activations smoothed first (SmoothQuant),
which is the caller's choice. Rounding is to nearest, ties to even (numpy's
and torch's ``round``), and an all-zero row or channel gets scale 1.
"""

import numpy as np

LOW, HIGH = -64, 63


def _scales(x, axis):
    top = np.max(np.abs(x), axis=axis).astype(np.float32) / np.float32(HIGH)
    return np.where(top > 0, top, np.float32(1)).astype(np.float32)


def quantize_weight(w):
    """``w`` (``out x in``, float) as ``(w7, s_w)``: int8 values in -64..=63
    and one float32 scale per output channel (row)."""
    w = np.asarray(w, dtype=np.float32)
    s = _scales(w, axis=1)
    w7 = np.clip(np.round(w / s[:, None]), LOW, HIGH).astype(np.int8)
    return w7, s


def quantize_rows(x):
    """``x`` (``rows x in``, float) as ``(x7, s_x)``: int8 values in
    -64..=63 and one float32 scale per row."""
    x = np.asarray(x, dtype=np.float32)
    s = _scales(x, axis=1)
    x7 = np.clip(np.round(x / s[:, None]), LOW, HIGH).astype(np.int8)
    return x7, s


def dequantize(c, s_x, s_w, bias=None):
    """The float output of an int32 product ``c = x7 @ w7.T``: scaled by
    both quantizations' scales, plus ``bias``."""
    y = np.asarray(c, dtype=np.float32) * s_x[:, None] * s_w[None, :]
    return y if bias is None else y + np.asarray(bias, dtype=np.float32)[None, :]


def linear(miner, x, w7, s_w, bias=None, weight=None):
    """A quantized linear layer through ``miner.matmul``: ``x`` (``rows x
    in``, float) to ``rows x out`` float32. ``weight``: ``w7.T`` registered
    with the miner (``miner.register_weight(w7.T)``), to commit it once."""
    x7, s_x = quantize_rows(x)
    c = miner.matmul(x7, weight if weight is not None else np.ascontiguousarray(w7.T))
    return dequantize(c, s_x, s_w, bias)
