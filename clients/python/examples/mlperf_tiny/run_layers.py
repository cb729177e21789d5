#!/usr/bin/env python3
"""Runs the MLPerf Tiny anomaly-detection autoencoder with its int8 GEMMs done by an mlpow worker.

Each of the model's 10 FULLY_CONNECTED layers is one int8 x int8 -> int32
matrix product (batch x in) @ (in x out); this script sends every one of them
to the worker's job API (``mlpow_client.JobClient.matmul_int8``), finishes
each layer the way TFLite does (zero-point correction, bias, integer
requantisation, ReLU clamp: model.reference_forward) and feeds the result to
the next layer. The same forward pass is run a second time with numpy's
int64 matmul as the independent check, and every layer's int32 result is
compared exactly::

    python3 run_layers.py --api http://127.0.0.1:9955 [--batch 64]
    python3 run_layers.py --node ws://127.0.0.1:9944 [--passes 20]   # in this process (the mlpow package)
    python3 run_layers.py --check-only          # no worker needed

``--node`` multiplies in this process instead, with the ``mlpow`` package's
miner (``mlpow.Miner``), whose products mine on that node's work; the
7-bit split is the client's (``mlpow_client.matmul_int8_via``). ``--passes``
repeats the forward pass, each one checked, and the miner's statistics
are printed at the end.

``--check-only`` replaces the worker by numpy (behind the real client, so
its 7-bit split and recombination still run; plain numpy if mlpow_client
cannot be imported). Inputs are synthetic (model.synthetic_batch), not real
ToyADMOS features. Exit status: 0 all equal, 1 any mismatch, 2 the job API
could not be used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # model.py
sys.path.insert(0, str(HERE.parents[1]))  # clients/python, home of mlpow_client

import model  # noqa: E402

# The worker multiplies 7-bit signed values; anything outside is split by the client.
SERVICE_MIN, SERVICE_MAX = -64, 63


class RecordingMatmul:
    """A ``matmul(a, b)`` for reference_forward that labels, times and keeps every product.

    reference_forward calls matmul once per layer, in order, so the n-th
    call is layer fc{n}.
    """

    def __init__(self, multiply):
        self.multiply = multiply  # multiply(a, b, label) -> int32 a @ b
        self.products: list[np.ndarray] = []
        self.seconds: list[float] = []
        self.operands: list[tuple[np.ndarray, np.ndarray]] = []  # (a, b) of each call

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        label = f"fc{len(self.products)}"
        start = time.perf_counter()
        product = np.asarray(self.multiply(a, b, label))
        self.seconds.append(time.perf_counter() - start)
        self.products.append(product.copy())
        self.operands.append((a, b))
        return product


def outside_service_range(m: np.ndarray) -> float:
    """Fraction of values the worker cannot take as they are (outside -64..63)."""
    return float(np.mean((m < SERVICE_MIN) | (m > SERVICE_MAX)))


def make_multiply(args):
    """The multiply(a, b, label) under test, and a line describing it."""
    try:
        import mlpow_client
    except ImportError as e:
        if not args.check_only:
            print(f"cannot import mlpow_client from {HERE.parents[1]}: {e}", file=sys.stderr)
            sys.exit(2)
        return (lambda a, b, label: model.numpy_matmul(a, b)), "numpy int64 (mlpow_client not importable)"

    if args.check_only:

        class OfflineClient(mlpow_client.JobClient):
            """The real client with the worker's product replaced by numpy (values checked like the worker)."""

            def matmul(self, a, b, label=None, timeout=600.0):
                for name, m in (("a", a), ("b", b)):
                    if m.size and (m.min() < SERVICE_MIN or m.max() > SERVICE_MAX):
                        raise ValueError(f"{label}: {name} has values outside {SERVICE_MIN}..{SERVICE_MAX}")
                return model.numpy_matmul(a, b)

        client = OfflineClient(args.api)
        return (lambda a, b, label: client.matmul_int8(a, b, label=label)), "mlpow_client.matmul_int8 over numpy (--check-only)"

    if args.node:
        try:
            import mlpow
        except ImportError as e:
            print(f"cannot import the mlpow package (gpu-worker/python): {e}", file=sys.stderr)
            sys.exit(2)
        miner = mlpow.Miner(args.node)
        deadline = time.monotonic() + args.wait_for_work
        while not miner.stats()["mining"] and time.monotonic() < deadline:
            time.sleep(0.1)
        multiply = lambda a, b, label: mlpow_client.matmul_int8_via(miner.matmul, a, b)  # noqa: E731
        multiply.miner = miner
        return multiply, f"mlpow.Miner in this process, mining on {args.node}"

    client = mlpow_client.JobClient(args.api)
    return (lambda a, b, label: client.matmul_int8(a, b, label=label)), f"mlpow worker at {args.api}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:9955", help="the worker's --jobs-api address")
    parser.add_argument("--batch", type=int, default=64, help="inputs per forward pass (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs")
    parser.add_argument("--show", type=int, default=5, help="inputs whose anomaly score is printed")
    parser.add_argument("--check-only", action="store_true", help="no worker: numpy on both sides")
    parser.add_argument("--node", help="multiply in this process with mlpow.Miner, mining on this node (ws://)")
    parser.add_argument("--wait-for-work", type=float, default=30.0, help="seconds --node waits for work first")
    parser.add_argument("--passes", type=int, default=1, help="forward passes, each checked (default 1)")
    parser.add_argument("--until-blocks", type=int, default=0, help="with --node: more passes until this many blocks")
    args = parser.parse_args()
    if args.batch < 1 or args.passes < 1:
        parser.error("--batch and --passes must be at least 1")

    layers = model.load()
    x_float = model.synthetic_batch(args.batch, seed=args.seed)
    x_q = model.quantize_input(x_float, layers)

    multiply, description = make_multiply(args)
    service = RecordingMatmul(multiply)
    check = RecordingMatmul(lambda a, b, label: model.numpy_matmul(a, b))

    print(f"model: MLPerf Tiny anomaly detection (int8), {len(layers)} FULLY_CONNECTED layers, batch {args.batch}")
    print(f"under test: {description}")
    try:
        y_service, acc_service = model.reference_forward(x_q, layers, service)
    except Exception as e:  # network errors, job errors, a wrong shape back
        print(f"the job API failed in layer fc{len(service.products)}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    y_check, acc_check = model.reference_forward(x_q, layers, check)

    header = f"{'layer':5s}  {'(batch x in) @ (in x out)':26s} {'MACs':>10s}  {'a / b outside -64..63':>21s}  {'equal':5s}  {'service s':>9s}"
    print()
    print(header)
    print("-" * len(header))
    all_equal = True
    for i, layer in enumerate(layers):
        a, b = service.operands[i]
        macs = a.shape[0] * a.shape[1] * b.shape[1]
        # Equal means: the raw int8 product and TFLite's int32 accumulator
        # (after zero-point correction and bias) are identical, bit for bit.
        equal = np.array_equal(service.products[i], check.products[i]) and np.array_equal(acc_service[i], acc_check[i])
        all_equal &= equal
        shape = f"({a.shape[0]}x{a.shape[1]}) @ ({b.shape[0]}x{b.shape[1]})"
        outside = f"{100 * outside_service_range(a):5.1f}% / {100 * outside_service_range(b):5.1f}%"
        print(
            f"{layer['name']:5s}  {shape:26s} {macs:10,d}  {outside:>21s}  {'yes' if equal else 'NO':5s}  {service.seconds[i]:9.3f}"
        )
    total_macs = sum(a.shape[0] * a.shape[1] * b.shape[1] for a, b in service.operands)
    print("-" * len(header))
    print(f"{'total':5s}  {'':26s} {total_macs:10,d}  {'':21s}  {'':5s}  {sum(service.seconds):9.3f}")

    outputs_equal = np.array_equal(y_service, y_check)
    all_equal &= outputs_equal
    print(f"\nfinal int8 outputs identical: {'yes' if outputs_equal else 'NO'}")

    scores = model.anomaly_score(x_float, y_service, layers)
    shown = min(args.show, args.batch)
    print(f"anomaly score (mean squared reconstruction error, dequantised units), first {shown} inputs:")
    for n in range(shown):
        print(f"  input {n:3d}: {scores[n]:10.3f}")
    print(f"  batch mean: {scores.mean():10.3f}  (synthetic inputs: the values show the arithmetic, not a diagnosis)")

    # Further passes on other inputs, each checked the same way (with
    # --until-blocks, until the miner's tickets sealed that many blocks).
    miner = getattr(multiply, "miner", None)
    deadline = time.monotonic() + 300
    n = 0

    def more():
        if n + 1 < args.passes:
            return True
        return miner is not None and miner.stats()["blocks_accepted"] < args.until_blocks and time.monotonic() < deadline

    while more():
        n += 1
        x = model.quantize_input(model.synthetic_batch(args.batch, seed=args.seed + n), layers)
        got, got_acc = model.reference_forward(x, layers, lambda a, b: np.asarray(multiply(a, b, "pass")))
        want, want_acc = model.reference_forward(x, layers, model.numpy_matmul)
        same = np.array_equal(got, want) and all(np.array_equal(g, w) for g, w in zip(got_acc, want_acc))
        all_equal &= same
        if not same:
            print(f"pass {n + 1}: MISMATCH", file=sys.stderr)
    if n > 0:
        print(f"{n + 1} forward passes, every layer checked: {'identical' if all_equal else 'MISMATCH'}")
    if miner is not None:
        stats = miner.stats()
        print("miner: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
        share = stats["macs_mined"] / max(1, stats["macs"])
        print(f"mined: {100 * share:.0f}% of the multiply-accumulates (the rest multiplied plainly: no work, or pieces under half full)")
        if stats["blocks_accepted"] < args.until_blocks:
            print(f"only {stats['blocks_accepted']} blocks sealed, not {args.until_blocks}, in 300 s", file=sys.stderr)
            return 1

    if not all_equal:
        print("\nMISMATCH between the service and numpy", file=sys.stderr)
        return 1
    print("\nall layers identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
