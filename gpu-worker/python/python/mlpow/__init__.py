"""mlpow: the mlpow miner inside your process.

A model's int8 matrix products mine on the chain's work where the operands
already are, and the model keeps the exact product::

    import mlpow
    miner = mlpow.Miner("ws://127.0.0.1:9944")   # a node on a v2 chain
    c = miner.matmul(a, b)                       # int8 in -64..=63; exact int32 a @ b
    w = miner.register_weight(b)                 # a matrix used again: committed once
    c = miner.matmul(a, w)
    print(miner.stats())                         # MACs multiplied and mined, tickets, blocks

``a`` and ``b`` are 2-D int8 numpy arrays or torch CPU tensors, C-contiguous,
with values in -64..=63 (the puzzle's 7-bit range: quantize to 7 bits).
The product comes back as int32, of the same kind as the inputs.

With ``backend="cuda"``, torch CUDA tensors on the miner's GPU are taken
where they lie (DLPack: never copied to the host), mined there, and the
product comes back as a CUDA tensor; ``b`` may be any view, a
``Linear.weight.t()`` as it is. ``register_weight`` of a CUDA tensor keeps
a checked copy on the GPU whose puzzle pieces are committed once.

The connection to the node runs in the background and comes back by itself
after the node restarts. A call never waits for the chain: without work
(no node, a v1 chain) or for a product too small to fill half a puzzle
piece, it is multiplied plainly, at once, and ``stats()`` says what mined.

What mining publishes: a winning piece's seal opens ``t`` rows of that
piece's A and of its B (transposed) in the block header, for everyone to
check. Every piece carries fresh random salt, so nothing else of the
matrices can be inferred from the hashes, but the opened rows are public.
"""

import atexit
import sys
import weakref

try:
    import numpy as np
except ImportError:  # torch's CUDA tensors need no numpy (a GPU machine may lack it)
    np = None

from ._native import Miner as _NativeMiner
from ._native import DeviceWeight, Weight

__all__ = ["Miner", "Weight", "DeviceWeight", "LOW", "HIGH"]

# Miners still open when the interpreter exits are closed before it tears
# itself down: their background threads log through `logging`, and a thread
# that enters Python while it finalizes is killed in a way Rust cannot
# survive (CPython before 3.14). `atexit` runs first.
_open_miners = weakref.WeakSet()


@atexit.register
def _close_open_miners():
    for miner in list(_open_miners):
        miner.close(timeout=3.0)

#: The puzzle's value range, inclusive.
LOW, HIGH = -64, 63


def _is_torch(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _operand(name, x, seven_bits=True):
    """``x`` as a checked int8 numpy array, or a clear exception (values
    in the puzzle's 7-bit range unless ``seven_bits`` is false)."""
    if np is None:
        raise ImportError(f"{name}: host arrays and CPU tensors need numpy (pip install numpy)")
    if _is_torch(x):
        import torch

        if x.device.type != "cpu":
            raise ValueError(f"{name} is on {x.device}: give a CPU or a CUDA tensor")
        if x.dtype != torch.int8:
            raise TypeError(f"{name} has dtype {x.dtype}: the puzzle multiplies torch.int8 in {LOW}..={HIGH}")
        if not x.is_contiguous():
            raise ValueError(f"{name} is not contiguous ({name}.contiguous() makes it so)")
        x = x.numpy()
    elif not isinstance(x, np.ndarray):
        raise TypeError(f"{name} is a {type(x).__name__}: give a numpy array or a torch tensor")
    if x.dtype != np.int8:
        raise TypeError(f"{name} has dtype {x.dtype}: the puzzle multiplies int8 in {LOW}..={HIGH}")
    if x.ndim != 2:
        raise ValueError(f"{name} has {x.ndim} dimensions: give a matrix (2 dimensions)")
    if 0 in x.shape:
        raise ValueError(f"{name} is empty ({x.shape[0]} x {x.shape[1]})")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} is not C-contiguous (numpy.ascontiguousarray({name}) makes it so)")
    if not seven_bits:
        return x
    lo, hi = int(x.min()), int(x.max())
    if lo < LOW or hi > HIGH:
        bad = lo if lo < LOW else hi
        raise ValueError(f"{name} holds {bad}, outside the puzzle's 7-bit range {LOW}..={HIGH}")
    return x


def _on_cuda(x):
    return _is_torch(x) and x.device.type == "cuda"


def _cuda_operand(name, x, device):
    """``x`` as a checked int8 CUDA matrix on ``device``, or a clear exception
    (its values are checked on the GPU, by the call)."""
    import torch

    if not _on_cuda(x):
        raise ValueError(f"{name} is not on {device} (the other operand is): give both on the same GPU")
    if x.device != device:
        raise ValueError(f"{name} is on {x.device}, the other operand on {device}: give both on one GPU")
    if getattr(torch.version, "hip", None):
        raise RuntimeError("torch is built for ROCm: the miner's GPU path is CUDA's")
    if x.layout is not torch.strided:
        raise ValueError(f"{name} is a {x.layout} tensor: give a dense one ({name}.to_dense())")
    if x.dtype != torch.int8:
        raise TypeError(f"{name} has dtype {x.dtype}: the puzzle multiplies torch.int8 in {LOW}..={HIGH}")
    if x.dim() != 2:
        raise ValueError(f"{name} has {x.dim()} dimensions: give a matrix (2 dimensions)")
    if 0 in x.shape:
        raise ValueError(f"{name} is empty ({x.shape[0]} x {x.shape[1]})")
    if x.requires_grad:
        raise ValueError(f"{name} requires grad: multiply under torch.no_grad(), or give {name}.detach()")
    return x


def _like_inputs(c, as_torch):
    """The product as a torch tensor when the inputs were, else the numpy array."""
    if as_torch:
        import torch

        return torch.from_numpy(c)
    return c


class Miner:
    """A miner in this process (see the module's docstring).

    ``node``: the node's WebSocket RPC, or a pool's
    ``stratum+tcp://host:port`` (or ``stratum+ssl://host:port``) with
    ``user="ADDRESS.WORKER"`` (the payout address; the products then mine
    shares for the pool, which pays for them). ``pool_ca``: for
    ``stratum+ssl://``, a PEM file of certificates to trust besides the
    system's (a pool's own). ``backend``: what multiplies,
    ``"cpu"`` (the calling thread), ``"cuda"`` (the first GPU, host arrays
    copied to it and back; a ``RuntimeError`` says why when there is none)
    or ``"auto"``. ``min_fill``: the least share of a puzzle piece a
    product must fill to be mined (0..1, default 0.5).
    ``background_threads``: CPU threads that mine seeded nonces between
    calls (default none: the model keeps its cores). ``pack_window``:
    seconds a small call with a registered weight (a decode step) waits for
    calls from other threads with the same weight, so that their rows mine
    together in one piece (0, the default: never wait, never pack; at most
    10). The batch goes as soon as its rows fill the piece enough to mine;
    ``stats()["calls_packed"]`` counts the calls answered from a shared piece.
    """

    def __init__(
        self,
        node="ws://127.0.0.1:9944",
        *,
        user=None,
        pool_ca=None,
        backend="cpu",
        min_fill=0.5,
        background_threads=0,
        pack_window=0.0,
    ):
        self._native = _NativeMiner(
            node,
            user=user,
            pool_ca=pool_ca,
            backend=backend,
            min_fill=min_fill,
            background_threads=background_threads,
            pack_window=pack_window,
        )
        _open_miners.add(self)

    @classmethod
    def offline(cls, params, difficulty, *, backend="cpu", min_fill=0.5):
        """A miner without a node: its calls mine puzzle v2 work it makes
        itself, at ``params`` (``"M,K,N,T,R"``) and ``difficulty``, and
        its winners are kept for :meth:`found` (benchmarks, and tests on
        machines without a chain)."""
        miner = cls.__new__(cls)
        miner._native = _NativeMiner.offline(params, difficulty, backend=backend, min_fill=min_fill)
        _open_miners.add(miner)
        return miner

    def found(self):
        """An offline miner's winners since the last call: ``(nonce,
        tile_i, tile_j, seal)`` each, the seal verified (a miner with a node
        sends them there instead: empty)."""
        return self._native.found()

    def close(self, timeout=10.0):
        """Stops mining and waits up to ``timeout`` seconds until every
        winner found so far (a block, or a pool's share) has been sent and
        answered, then disconnects; products asked for later are multiplied
        plainly. Returns ``True`` when nothing was left unsent. A miner
        dropped without it waits 3 s; ``with mlpow.Miner(...) as m:``
        closes it on leaving the block."""
        _open_miners.discard(self)
        return self._native.close(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def register_weight(self, b):
        """``b`` (``k x n``, int8 in -64..=63) as a :class:`Weight` to give
        :meth:`matmul` in its place: a matrix multiplied again and again (a
        layer's weights) is checked once, and its puzzle pieces are
        committed by the first product that uses them and reused by every
        later one, so a call commits only ``a``. A CUDA tensor on the
        miner's GPU becomes a :class:`DeviceWeight`: copied into the miner's
        own GPU memory and checked there, its pieces cut and committed on
        the GPU once; later changes to ``b`` are not seen (register it
        again)."""
        if _on_cuda(b):
            import torch

            b = _cuda_operand("b", b, b.device)
            with torch.cuda.device(b.device):
                # The producers order their pending work before this stream.
                stream = torch.cuda.current_stream(b.device).cuda_stream or 1
                return self._native.register_weight_device(b, stream)
        return self._native.register_weight(_operand("b", b))

    def _matmul_cuda(self, a, b):
        """``a @ b`` for CUDA tensors (``b`` a tensor or a
        :class:`DeviceWeight`), on their GPU, into a new int32 tensor."""
        import torch

        if isinstance(b, DeviceWeight):
            gpu = torch.device("cuda", b.device)
            a = _cuda_operand("a", a, gpu)
            (k, n), what = b.shape, "the weight's"
        else:
            a = _cuda_operand("a", a, a.device if _on_cuda(a) else b.device)
            b = _cuda_operand("b", b, a.device)
            (k, n), what = b.shape, "b's"
        if a.shape[1] != k:
            raise ValueError(
                f"shapes {a.shape[0]} x {a.shape[1]} and {k} x {n} do not multiply: a's columns must equal "
                f"{what} rows"
            )
        with torch.cuda.device(a.device):
            out = torch.empty((a.shape[0], n), dtype=torch.int32, device=a.device)
            # The producers order their pending work before this stream
            # (DLPack's `stream`: a handle, 1 for the legacy default).
            stream = torch.cuda.current_stream(a.device).cuda_stream or 1
            self._native.matmul_device(a, b, out, stream)
        return out

    def matmul(self, a, b):
        """The exact int32 product ``a @ b``, mined where it is worth it.
        ``b`` is a matrix, or what :meth:`register_weight` returned: a
        :class:`Weight` (host arrays) or a :class:`DeviceWeight` (a CUDA
        tensor's copy on the miner's GPU, for CUDA ``a``)."""
        if isinstance(b, DeviceWeight):
            return self._matmul_cuda(a, b)
        if _on_cuda(a) or _on_cuda(b):
            return self._matmul_cuda(a, b)
        as_torch = _is_torch(a) or _is_torch(b)
        if isinstance(b, Weight):
            a_np = _operand("a", a)
            if a_np.shape[1] != b.shape[0]:
                raise ValueError(
                    f"shapes {a_np.shape[0]} x {a_np.shape[1]} and {b.shape[0]} x {b.shape[1]} do not "
                    "multiply: a's columns must equal the weight's rows"
                )
            return _like_inputs(self._native.matmul_by(a_np, b), as_torch)
        a_np, b_np = _operand("a", a), _operand("b", b)
        if a_np.shape[1] != b_np.shape[0]:
            raise ValueError(
                f"shapes {a_np.shape[0]} x {a_np.shape[1]} and {b_np.shape[0]} x {b_np.shape[1]} do not "
                "multiply: a's columns must equal b's rows"
            )
        return _like_inputs(self._native.matmul(a_np, b_np), as_torch)

    def matmul_int8(self, a, b):
        """The exact int32 product ``a @ b`` of int8 matrices with any values
        (-128..=127, an int8 model's own): each is split into 7-bit parts
        (``x = 2*hi + lo``) that go through one mined product, recombined
        exactly (``mlpow.quant.matmul_int8``). Up to 4x the MACs of a 7-bit
        product, all of them mining; on the CPU a side already within
        -64..=63 is not split. CUDA tensors are split on the GPU (always
        both: no look at their values from the host) and stay there."""
        if _on_cuda(a) or _on_cuda(b):
            return self._matmul_int8_cuda(a, b)
        from . import quant

        as_torch = _is_torch(a) or _is_torch(b)
        a_np, b_np = _operand("a", a, seven_bits=False), _operand("b", b, seven_bits=False)
        if a_np.shape[1] != b_np.shape[0]:
            raise ValueError(
                f"shapes {a_np.shape[0]} x {a_np.shape[1]} and {b_np.shape[0]} x {b_np.shape[1]} do not "
                "multiply: a's columns must equal b's rows"
            )
        return _like_inputs(quant.matmul_int8(self._native.matmul, a_np, b_np), as_torch)

    def _matmul_int8_cuda(self, a, b):
        import torch

        a = _cuda_operand("a", a, a.device if _on_cuda(a) else b.device)
        b = _cuda_operand("b", b, a.device)
        if a.shape[1] != b.shape[0]:
            raise ValueError(
                f"shapes {a.shape[0]} x {a.shape[1]} and {b.shape[0]} x {b.shape[1]} do not multiply: a's "
                "columns must equal b's rows"
            )
        rows, cols = a.shape[0], b.shape[1]
        # x = 2 * (x >> 1) + (x & 1): both parts in -64..=63.
        big = self._matmul_cuda(torch.cat([a >> 1, a & 1]), torch.cat([b >> 1, b & 1], dim=1)).to(torch.int64)
        hh, hl = big[:rows, :cols], big[:rows, cols:]
        lh, ll = big[rows:, :cols], big[rows:, cols:]
        out = 4 * hh + 2 * (hl + lh) + ll
        # Exact in int64; int8 products of depth up to 131071 fit int32.
        if a.shape[1] > 131071 and ((out < -(2**31)) | (out >= 2**31)).any().item():
            raise OverflowError("the product does not fit int32")
        return out.to(torch.int32)

    def stats(self):
        """A dict: calls, calls_packed, macs, macs_mined, macs_plain, nonces, tickets,
        winners (of this miner's calls), blocks_accepted, stale, rejected
        (the node's answers to every seal of this miner, background
        threads included), dropped (winners not queued: 64 were already
        waiting), unsent (queued but never sent or never answered: the
        connection was lost), and whether calls mine now (``mining``)."""
        return self._native.stats()

    def __repr__(self):
        return repr(self._native)
