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

A model that wants int8's resolution quantizes with ``bits=8`` and
multiplies with :func:`matmul_int8`: each int8 value is two 7-bit parts,
so the product costs up to 4x the MACs (all of them mining) and stays
exact.

Seven bits against eight is one level of resolution less: half the steps,
about 6 dB less signal to quantization noise. Per-channel weights and
per-row activations keep most of it; a model with outlier channels (large
language models) may want its activations smoothed first (SmoothQuant),
which is the caller's choice. Rounding is to nearest, ties to even (numpy's
and torch's ``round``), and an all-zero row or channel gets scale 1.
"""

import numpy as np

LOW, HIGH = -64, 63
# With ``bits=8``: symmetric int8, -127..=127 (``matmul_int8`` multiplies it
# exactly, through 7-bit parts).
HIGH8 = 127


def _top(bits):
    if bits not in (7, 8):
        raise ValueError(f"bits={bits}: 7 (the puzzle's range) or 8 (int8, split into 7-bit parts)")
    return HIGH if bits == 7 else HIGH8


def _scales(x, axis, top):
    m = np.max(np.abs(x), axis=axis).astype(np.float32) / np.float32(top)
    return np.where(m > 0, m, np.float32(1)).astype(np.float32)


def quantize_weight(w, bits=7):
    """``w`` (``out x in``, float) as ``(w7, s_w)``: int8 values in -64..=63
    (``bits=8``: -127..=127) and one float32 scale per output channel
    (row)."""
    top = _top(bits)
    w = np.asarray(w, dtype=np.float32)
    s = _scales(w, 1, top)
    w7 = np.clip(np.round(w / s[:, None]), -top if bits == 8 else LOW, top).astype(np.int8)
    return w7, s


def quantize_rows(x, bits=7):
    """``x`` (``rows x in``, float) as ``(x7, s_x)``: int8 values in
    -64..=63 (``bits=8``: -127..=127) and one float32 scale per row."""
    top = _top(bits)
    x = np.asarray(x, dtype=np.float32)
    s = _scales(x, 1, top)
    x7 = np.clip(np.round(x / s[:, None]), -top if bits == 8 else LOW, top).astype(np.int8)
    return x7, s


def split7(x):
    """``x`` (int8, any values) as 7-bit parts with their weights:
    ``[(x, 1)]`` when it fits -64..=63, else ``[(hi, 2), (lo, 1)]`` with
    ``x == 2*hi + lo``, ``hi = x >> 1`` in -64..=63, ``lo = x & 1`` in 0..=1."""
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise TypeError(f"dtype {x.dtype}: split7 takes int8")
    if x.size == 0 or (x.min() >= LOW and x.max() <= HIGH):
        return [(x, 1)]
    wide = x.astype(np.int16)
    return [((wide >> 1).astype(np.int8), 2), ((wide & 1).astype(np.int8), 1)]


def matmul_int8(matmul7, a, b):
    """The exact int32 product ``a @ b`` of int8 matrices with any values,
    through ``matmul7`` (a product of 7-bit matrices: ``Miner.matmul``).
    The 7-bit parts of ``a`` (stacked as rows) and of ``b`` (as columns) go
    through one product, 1, 2 or 4 times the MACs, all of them mined where
    the product mines; its blocks are recombined exactly (int64, then
    checked to fit int32: depths up to 131071 always do)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not multiply as matrices")
    a_parts, b_parts = split7(a), split7(b)
    big = np.asarray(matmul7(np.vstack([p for p, _ in a_parts]), np.hstack([p for p, _ in b_parts])))
    big = big.astype(np.int64)
    rows, cols = a.shape[0], b.shape[1]
    out = np.zeros((rows, cols), dtype=np.int64)
    for i, (_, wa) in enumerate(a_parts):
        for j, (_, wb) in enumerate(b_parts):
            out += wa * wb * big[i * rows : (i + 1) * rows, j * cols : (j + 1) * cols]
    if out.size and (out.min() < -(2**31) or out.max() >= 2**31):
        raise OverflowError("the product does not fit int32")
    return out.astype(np.int32)


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
