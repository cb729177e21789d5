"""The MLPerf Tiny anomaly-detection autoencoder as a PyTorch model, run
with its linear layers mining through ``mlpow.torch`` (the in-process
miner), and compared with the int8 TFLite reference (``model.py``).

The PyTorch model is the reference's layers dequantized: weights ``w *
w_scale``, biases ``b * in_scale * w_scale``, ReLU where the layer has it,
in float32. ``mlpow.torch.patch`` then quantizes each layer to 7 bits
(weights per output channel, activations per row) and multiplies through
the miner. The model's authors report AUC on ToyADMOS recordings, which
this repository does not ship; on the synthetic inputs of
``model.synthetic_batch`` the comparison is of the anomaly scores (mean
squared reconstruction error) against the int8 reference's: their rank
correlation (what AUC depends on) and relative difference. The patched
model's scores are the same whether its products mined or not::

    python3 torch_model.py [--batch 256]

Needs torch, numpy and the ``mlpow`` package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model  # noqa: E402


def float_model(layers: list[dict]) -> nn.Sequential:
    """The autoencoder in float32, from the int8 layers' dequantized weights."""
    modules: list[nn.Module] = []
    for layer in layers:
        out_features, in_features = layer["w"].shape
        linear = nn.Linear(in_features, out_features)
        w_scale = layer["w_scale"].astype(np.float64)
        w_scale = w_scale[:, None] if w_scale.size > 1 else w_scale
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy((layer["w"] * w_scale).astype(np.float32)))
            bias = layer["b"].astype(np.float64) * float(layer["in_scale"]) * layer["w_scale"].astype(np.float64)
            linear.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
        modules.append(linear)
        if layer["act"].upper().startswith("RELU"):
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def scores(x: np.ndarray, y: torch.Tensor) -> np.ndarray:
    """Mean squared reconstruction error per input."""
    return np.mean((x.astype(np.float64) - y.detach().cpu().double().numpy()) ** 2, axis=1)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's: the correlation of the ranks (no ties in float scores)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def compare(batch: int, miners: dict, device: str = "cpu") -> dict:
    """The anomaly scores of the int8 reference, the float model and the
    model patched onto each of ``miners`` (name -> mlpow.Miner), and how
    they agree."""
    import mlpow.torch

    layers = model.load()
    x = model.synthetic_batch(batch)
    reference = model.anomaly_score(x, model.reference_forward(model.quantize_input(x, layers), layers)[0], layers)
    xt = torch.from_numpy(x).to(device)
    with torch.no_grad():
        results = {"float": scores(x, float_model(layers).to(device)(xt))}
        for name, miner in miners.items():
            m = float_model(layers).to(device)
            mlpow.torch.patch(m, miner)
            results[name] = scores(x, m(xt))
    return {
        "reference": reference,
        **results,
        "agreement": {
            name: (rank_correlation(reference, s), float(np.mean(np.abs(s - reference) / reference)))
            for name, s in results.items()
        },
    }


def main() -> int:
    import mlpow

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the miner then multiplies on the GPU)")
    args = parser.parse_args()
    backend = "cuda" if args.device.startswith("cuda") else "cpu"
    # dev-v2 pieces (64 x 64 x 62), about one winner in 20 nonces (an
    # offline miner keeps 64 for found(), and drops the rest).
    mined = mlpow.Miner.offline("64,64,64,16,32", 320, backend=backend)
    plain = mlpow.Miner("ws://127.0.0.1:1", backend=backend)
    out = compare(args.batch, {"mined": mined, "plain": plain}, args.device)
    stats = mined.stats()
    mined.close(timeout=1.0)
    plain.close(timeout=1.0)
    print(f"{args.batch} synthetic inputs; anomaly scores against the int8 TFLite reference:")
    for name, (rho, rel) in out["agreement"].items():
        print(f"  {name:6} rank correlation {rho:.4f}, mean relative difference {rel:.4f}")
    same = np.array_equal(out["mined"], out["plain"])
    print(f"  mined and plain scores identical: {same}")
    print(f"  mined: {stats['macs_mined']}/{stats['macs']} MACs, {stats['nonces']} nonces, {stats['winners']} winners")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
