"""The MLPerf Tiny anomaly-detection autoencoder, run the way TFLite runs it, in numpy.

The model (10 int8 FULLY_CONNECTED layers, 640 -> 128 x4 -> 8 -> 128 x4 ->
640) is loaded from ``anomaly_detection_int8.npz`` (made by extract.py; origin
and licence in NOTICE.md). Only numpy is needed at run time.

``reference_forward`` reproduces TFLite's reference int8 FULLY_CONNECTED
kernel (tensorflow/lite/kernels/internal/reference/integer_ops/
fully_connected.h, the one TFLite-Micro runs) bit for bit, except that the
int8 x int8 -> int32 product is delegated to a ``matmul`` callable, so the
same code can run on the mlpow worker or on numpy. Per output value TFLite does::

    acc  = sum_k (w[o,k] - w_zp) * (x[k] - in_zp) + bias[o]     (int32)
    acc  = MultiplyByQuantizedMultiplier(acc, multiplier, shift)
    out  = clamp(acc + out_zp, act_min, act_max)                  (int8)

and, with ``w_zp == 0`` as the int8 spec demands for weights, the sum is
``(x @ W.T)[o] - in_zp * W[o].sum()``: the plain int8 GEMM plus a per-output
correction that depends only on the weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional

import numpy as np

DEFAULT_NPZ = Path(__file__).resolve().with_name("anomaly_detection_int8.npz")

#: The model's input: 5 frames x 128 log-mel bins, flattened.
FRAMES, MEL_BINS = 5, 128
INPUT_FEATURES = FRAMES * MEL_BINS

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: ``matmul(a, b)``: a int8 (batch, in), b int8 (in, out) -> exact int32 a @ b.
MatMul = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------
# TFLite's fixed-point arithmetic (tensorflow/lite/kernels/internal/common.h
# and quantization_util.cc), written for numpy int64 arrays.
# --------------------------------------------------------------------------


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real ~= multiplier * 2**(shift - 31), multiplier in [2**30, 2**31)."""
    if real_multiplier == 0.0:
        return 0, 0
    # frexp gives q in [0.5, 1) with real = q * 2**shift, exactly like std::frexp.
    q, shift = math.frexp(real_multiplier)
    # std::round rounds halves away from zero; q > 0 here, and q * 2**31 + 0.5
    # is exact in double (q has 53 bits, the sum stays below 2**31 + 1).
    q_fixed = math.floor(q * (1 << 31) + 0.5)
    if q_fixed == 1 << 31:  # q rounded up to 1.0
        q_fixed //= 2
        shift += 1
    if shift < -31:  # too small to represent: TFLite flushes it to zero
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def _truncating_divide(numerator: np.ndarray, divisor: int) -> np.ndarray:
    """C's integer division (rounds toward zero); numpy's // rounds toward -inf."""
    quotient = np.abs(numerator) // divisor
    return np.where(numerator < 0, -quotient, quotient)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul for int32 values held in int64."""
    product = a * b  # |a*b| <= 2**62: exact in int64
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = _truncating_divide(product + nudge, 1 << 31)
    # The only overflow: INT32_MIN * INT32_MIN, which saturates.
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent, rounding halves away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask  # two's complement, as in C
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)  # >> is arithmetic for signed numpy ints


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier (the default, double-rounding variant)."""
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left_shift = np.maximum(shift, 0)
    right_shift = np.maximum(-shift, 0)
    shifted = x << left_shift
    # TFLite does this shift in int32; a result that does not fit would be
    # undefined behaviour there, so refuse it rather than guess.
    if shifted.size and (shifted.min() < INT32_MIN or shifted.max() > INT32_MAX):
        raise OverflowError("accumulator << shift does not fit int32")
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right_shift)


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


def _requantisation(layer: dict, scale_product: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (multiplier, shift) arrays, computed as TFLite-Micro does in Prepare.

    real multiplier = in_scale * w_scale / out_scale, from the float32 scales.
    Per channel (PopulateConvolutionQuantizationParams) the product is taken in
    double. Per tensor, TFLite's C++ source (GetQuantizedConvolutionMultipler)
    writes ``static_cast<double>(input_scale * filter_scale)``, a float32
    product, but the TFLite-Micro Python wheel this was checked against
    (tflite-micro 0.dev20261023182759, x86-64) is compiled to widen both
    scales first and multiply in double (cvtss2sd, cvtss2sd, mulsd), and only
    the double product reproduces its outputs (see verify_tflm.py). So
    ``"double"`` is the default; ``"float32"`` follows the source literally,
    for builds that keep the float product. In this model the two differ by
    up to ~70 units in the last of 31 bits and change a few outputs per
    million (seen only in the last layer).
    """
    in_scale, out_scale, w_scale = layer["in_scale"], layer["out_scale"], layer["w_scale"]
    out_features = layer["w"].shape[0]
    if w_scale.size == 1:
        if scale_product == "double":
            product = float(in_scale) * float(w_scale[0])
        elif scale_product == "float32":
            product = float(np.float32(in_scale) * np.float32(w_scale[0]))
        else:
            raise ValueError(f"scale_product must be 'double' or 'float32', not {scale_product!r}")
        reals = [product / float(out_scale)] * out_features
    else:
        reals = [float(in_scale) * float(s) / float(out_scale) for s in w_scale]
    pairs = [quantize_multiplier(r) for r in reals]
    return np.array([m for m, _ in pairs], np.int64), np.array([s for _, s in pairs], np.int64)


def _activation_range(layer: dict) -> tuple[int, int]:
    if layer["act"] == "NONE":
        return INT8_MIN, INT8_MAX
    if layer["act"] == "RELU":
        # TFLite: max(qmin, zero_point + round(0.0 / scale)) = the output zero point.
        return max(INT8_MIN, int(layer["out_zp"])), INT8_MAX
    raise ValueError(f"activation {layer['act']!r} is not implemented")


def load(path: Path | str = DEFAULT_NPZ, scale_product: str = "double") -> list[dict]:
    """The layers from the npz, each a dict with the stored arrays plus derived constants.

    ``scale_product`` picks how a per-tensor requantisation multiplier is
    computed (see ``_requantisation``); the default matches TFLite-Micro.

    Keys: ``name`` ("fc0"...), ``w`` int8 (out, in), ``wt`` int8 (in, out) (the
    GEMM's right-hand side), ``b`` int32, ``in_scale``/``in_zp``,
    ``w_scale``/``w_zp`` (arrays), ``out_scale``/``out_zp``, ``act``,
    ``multiplier``/``shift`` (int64 arrays, one per output), ``act_min``/``act_max``,
    ``w_row_sum`` (int64, per output), and, on every layer, the model's
    ``model_in_scale``/``model_in_zp`` and ``model_out_scale``/``model_out_zp``.
    """
    layers = []
    with np.load(path) as npz:  # plain arrays and unicode strings: no pickle needed
        model_io = dict(
            model_in_scale=np.float32(npz["input_scale"]),
            model_in_zp=int(npz["input_zp"]),
            model_out_scale=np.float32(npz["output_scale"]),
            model_out_zp=int(npz["output_zp"]),
        )
        for i in range(int(npz["layers"])):
            p = f"fc{i}_"
            layer = dict(
                name=f"fc{i}",
                w=npz[p + "w"].astype(np.int8),
                b=npz[p + "b"].astype(np.int32),
                in_scale=np.float32(npz[p + "in_scale"]),
                in_zp=int(npz[p + "in_zp"]),
                w_scale=np.atleast_1d(npz[p + "w_scale"]).astype(np.float32),
                w_zp=np.atleast_1d(npz[p + "w_zp"]).astype(np.int64),
                out_scale=np.float32(npz[p + "out_scale"]),
                out_zp=int(npz[p + "out_zp"]),
                act=str(npz[p + "act"]),
                **model_io,
            )
            layers.append(layer)

    for layer in layers:
        # The int8 quantisation spec makes weights symmetric (zero point 0);
        # the GEMM + row-sum correction below relies on it.
        if np.any(layer["w_zp"] != 0):
            raise ValueError(f"{layer['name']}: weight zero point {layer['w_zp']} is not 0")
        layer["wt"] = np.ascontiguousarray(layer["w"].T)
        layer["w_row_sum"] = layer["w"].astype(np.int64).sum(axis=1)
        layer["multiplier"], layer["shift"] = _requantisation(layer, scale_product)
        layer["act_min"], layer["act_max"] = _activation_range(layer)
    return layers


def numpy_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The independent check: numpy's exact int64 product, returned as int32."""
    product = a.astype(np.int64) @ b.astype(np.int64)
    if product.size and (product.min() < INT32_MIN or product.max() > INT32_MAX):
        raise OverflowError("product does not fit int32")
    return product.astype(np.int32)


def reference_forward(
    x_q: np.ndarray, layers: list[dict], matmul: Optional[MatMul] = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Runs the int8 autoencoder on ``x_q`` (int8, (batch, 640)).

    ``matmul(a, b)`` is called once per layer, in order, with ``a`` the layer's
    int8 input (batch, in) and ``b`` its int8 weights transposed (in, out), and
    must return the exact int32 ``a @ b``. Returns the int8 output (batch, 640)
    and, per layer, the int32 accumulator TFLite requantises (the product plus
    zero-point correction plus bias), shape (batch, out).
    """
    matmul = numpy_matmul if matmul is None else matmul
    x = np.asarray(x_q)
    if x.dtype != np.int8 or x.ndim != 2:
        raise TypeError(f"x_q must be an int8 matrix, not {x.dtype} {x.shape}")
    accumulators = []
    for layer in layers:
        if x.shape[1] != layer["wt"].shape[0]:
            raise ValueError(f"{layer['name']}: input has {x.shape[1]} features, layer wants {layer['wt'].shape[0]}")
        product = np.asarray(matmul(x, layer["wt"]))
        expected_shape = (x.shape[0], layer["wt"].shape[1])
        if product.shape != expected_shape or product.dtype.kind != "i":
            raise TypeError(f"{layer['name']}: matmul returned {product.dtype} {product.shape}, want int {expected_shape}")

        # TFLite adds input_offset = -in_zp to every input value before the
        # multiply: sum_k w[o,k] * (x[k] - in_zp) = (x @ W.T)[o] - in_zp * sum_k w[o,k].
        acc = product.astype(np.int64) - layer["in_zp"] * layer["w_row_sum"] + layer["b"].astype(np.int64)
        # TFLite accumulates in int32; a value outside it would have wrapped
        # (undefined behaviour in C++), so it would not be a faithful result.
        if acc.min() < INT32_MIN or acc.max() > INT32_MAX:
            raise OverflowError(f"{layer['name']}: accumulator leaves int32")
        accumulators.append(acc.astype(np.int32))

        scaled = multiply_by_quantized_multiplier(acc, layer["multiplier"], layer["shift"])
        out = np.clip(scaled + layer["out_zp"], layer["act_min"], layer["act_max"])
        x = out.astype(np.int8)
    return x, accumulators


def quantize_input(x_float: np.ndarray, layers: list[dict]) -> np.ndarray:
    """The model's QUANTIZE op: int8(clamp(round(x / scale) + zp)), TFLite's rounding.

    TFLite divides in float32 (``val / static_cast<float>(scale)``) and rounds
    halves away from zero (``std::round``); numpy's ``round`` rounds halves to
    even, so the rounding is written out.
    """
    scale = np.float32(layers[0]["model_in_scale"])
    quotient = (np.asarray(x_float, dtype=np.float32) / scale).astype(np.float64)
    rounded = np.sign(quotient) * np.floor(np.abs(quotient) + 0.5)  # exact for float32 values
    q = np.clip(rounded + layers[0]["model_in_zp"], INT8_MIN, INT8_MAX)
    return q.astype(np.int8).reshape(len(q), -1)


def dequantize_output(y_q: np.ndarray, layers: list[dict]) -> np.ndarray:
    """The model's DEQUANTIZE op: scale * (q - zp), float32."""
    last = layers[-1]
    return (np.float32(last["model_out_scale"]) * (y_q.astype(np.int32) - last["model_out_zp"])).astype(np.float32)


def anomaly_score(x_float: np.ndarray, y_q: np.ndarray, layers: list[dict]) -> np.ndarray:
    """Mean squared reconstruction error per input, in the features' (dequantised) units."""
    x = np.asarray(x_float, dtype=np.float64).reshape(len(y_q), -1)
    return np.mean((x - dequantize_output(y_q, layers).astype(np.float64)) ** 2, axis=1)


def synthetic_batch(n: int, seed: int = 0) -> np.ndarray:
    """A deterministic batch of ``n`` SYNTHETIC inputs, float32 (n, 640).

    Not real ToyADMOS features: each input is 5 frames x 128 mel bins of a
    smooth spectral envelope (a falling slope plus a few broad resonances),
    slowly varying between frames, with a little noise, kept in ~20..200 so
    it sits inside the input quantisation's range (scale 0.929, zero point
    -128, i.e. 0..237). Good for exercising the arithmetic, not for judging
    the detector.
    """
    rng = np.random.default_rng(seed)
    bins = np.arange(MEL_BINS) / (MEL_BINS - 1)  # 0..1 across the mel axis
    frames = np.arange(FRAMES)[:, None]
    batch = np.empty((n, FRAMES, MEL_BINS), dtype=np.float64)
    for i in range(n):
        level = rng.uniform(90.0, 130.0)
        slope = rng.uniform(30.0, 70.0)
        envelope = level - slope * bins
        for _ in range(rng.integers(2, 5)):  # broad peaks, like machine hum harmonics
            centre, width, height = rng.uniform(0.05, 0.9), rng.uniform(0.02, 0.1), rng.uniform(10.0, 50.0)
            envelope = envelope + height * np.exp(-0.5 * ((bins - centre) / width) ** 2)
        drift = rng.uniform(-2.0, 2.0) * frames  # a slow change from frame to frame
        noise = rng.normal(0.0, 2.0, size=(FRAMES, MEL_BINS))
        batch[i] = envelope[None, :] + drift + noise
    return np.clip(batch, 20.0, 200.0).astype(np.float32).reshape(n, INPUT_FEATURES)
