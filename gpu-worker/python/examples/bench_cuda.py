"""The in-process miner on torch CUDA tensors against torch's own int8 GEMM
of the same shape, in one run on one GPU (issue 24's device benchmark; the
GPU bundle runs it):

- ``torch._int_mm(a, w.t())``: the plain product a model would run;
- ``miner.matmul(a, w.t())`` on an offline miner at the GPU preset: the
  product mined (pieces cut and committed on the GPU, nonces, tickets,
  winners' seals verified) and returned exact;
- the same with ``w`` registered (``miner.register_weight(w.t())``): its
  pieces cut and committed once, so a call cuts and commits only ``a``;
- the same call on a miner without work: the plain path of the package.

Prints seconds per call (CUDA events on the current stream), MAC/s, the
ratios to ``torch._int_mm``, the share of MACs that mined and the winners.
Usage: python3 bench_cuda.py [M K N [REPS]] (default 8192 4096 8192 5).
"""

import sys

import torch

import mlpow


def seconds_per_call(fn, reps):
    fn()  # warm-up: kernels compiled and loaded, GEMMs prepared
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / reps


def main():
    args = [int(x) for x in sys.argv[1:]]
    m, k, n = args[:3] if len(args) >= 3 else (8192, 4096, 8192)
    reps = args[3] if len(args) >= 4 else 5
    device = torch.device("cuda", 0)
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randint(-64, 64, (m, k), generator=g, dtype=torch.int8).to(device)
    w = torch.randint(-64, 64, (n, k), generator=g, dtype=torch.int8).to(device)  # a Linear's weight
    b = w.t()  # the view a model multiplies by

    # About one winner in 20 nonces at the GPU preset (262,144 tickets a nonce).
    mined = mlpow.Miner.offline("8192,4096,8192,16,64", 5_000_000, backend="cuda")
    plain = mlpow.Miner("ws://127.0.0.1:1", backend="cuda")
    registered = mined.register_weight(b)
    want = torch._int_mm(a, b)
    for name, miner, rhs in (("mined", mined, b), ("registered", mined, registered), ("plain", plain, b)):
        got = miner.matmul(a, rhs)
        assert torch.equal(got, want), f"the {name} product differs from torch._int_mm's"
    macs = m * k * n
    rows = [
        ("torch._int_mm", seconds_per_call(lambda: torch._int_mm(a, b), reps)),
        ("mlpow, mined", seconds_per_call(lambda: mined.matmul(a, b), reps)),
        ("mlpow, weight", seconds_per_call(lambda: mined.matmul(a, registered), reps)),
        ("mlpow, no work", seconds_per_call(lambda: plain.matmul(a, b), reps)),
    ]
    base = rows[0][1]
    print(f"{m} x {k} x {n}, {reps} calls each:")
    for name, secs in rows:
        print(f"  {name:15} {secs * 1e3:9.3f} ms  {macs / secs / 1e12:8.1f} T MAC/s  {base / secs:6.3f} of torch._int_mm")
    s = mined.stats()
    print(
        f"  mined: {s['macs_mined'] / max(s['macs'], 1):.3f} of MACs mined, {s['nonces']} nonces, "
        f"{s['tickets']} tickets, {s['winners']} winners ({len(mined.found())} kept, seals verified)"
    )
    mined.close(timeout=1.0)
    plain.close(timeout=1.0)


if __name__ == "__main__":
    main()
