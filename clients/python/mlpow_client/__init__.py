"""Client for the mlpow mining worker's job API (useful mode).

The worker multiplies int8 matrices exactly while it mines on them (puzzle
v2). This module sends it jobs over JSON-RPC (HTTP POST to the address given
to ``mlpow-worker --jobs-api``) and brings the products back as numpy arrays::

    from mlpow_client import JobClient
    client = JobClient("http://127.0.0.1:9955")
    c = client.matmul(a, b)         # a, b: integer arrays in -64..63
    c = client.matmul_int8(a, b)    # any int8 values (split into 7-bit halves)

The API's methods and errors are listed in gpu-worker/README.md
("Useful mode"). Only numpy and the standard library are needed.

What becomes public: when a piece of a job wins a block, its seal puts
``t`` rows of that piece of ``a`` and ``t`` rows of ``b``'s columns (the
puzzle's tile size, 16 at the shipped parameters, times the inner dimension)
into the block header, for every node to check and keep. Everything else
stays on the worker's machine. Do not send data whose rows must stay
private (gpu-worker/README.md, "What becomes public").
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Optional

import numpy as np

__all__ = ["JobClient", "JobError", "MIN_VALUE", "MAX_VALUE", "BUSY", "TOO_LARGE", "split7", "matmul_int8_via", "matmul_int8_reference"]

#: The range of values puzzle v2 multiplies (7-bit signed integers).
MIN_VALUE, MAX_VALUE = -64, 63

#: The job API's error codes (gpu-worker/README.md): too large for the
#: worker's job memory; busy (other requests hold the memory now: retry).
TOO_LARGE, BUSY = 2001, 2005

#: The most product bytes one ``jobs_result`` call brings back; larger
#: products come in row ranges, so an answer never needs much job memory.
RESULT_CHUNK = 8 << 20


class JobError(Exception):
    """An error the job API returned: ``code`` (see gpu-worker/README.md) and message."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


def _matrix(m: np.ndarray, name: str) -> dict:
    m = np.asarray(m)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a matrix, not shape {m.shape}")
    if m.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, not {m.dtype}")
    if m.size and (m.min() < MIN_VALUE or m.max() > MAX_VALUE):
        raise ValueError(
            f"{name} has values in {m.min()}..{m.max()}; the worker takes {MIN_VALUE}..{MAX_VALUE} "
            "(use matmul_int8 for full int8)"
        )
    data = np.ascontiguousarray(m, dtype=np.int8).tobytes()
    return {"shape": list(m.shape), "data": base64.b64encode(data).decode("ascii")}


class JobClient:
    """A connection to one worker's job API."""

    def __init__(self, url: str = "http://127.0.0.1:9955", timeout: float = 300.0):
        self.url = url
        self.timeout = timeout
        self._next_id = 0
        self._max_request: Optional[int] = None  # from jobs_info, on the first inline submission

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; raises JobError with the worker's reason on failure.

        While the worker is busy (its job memory taken by other requests in
        progress: error 2005, HTTP 503, or a connection it closed before
        reading the request) the call is retried until ``timeout``.
        """
        deadline = time.monotonic() + self.timeout
        pause = 0.01
        while True:
            try:
                return self._call_once(method, params)
            except JobError as e:
                if e.code != BUSY or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _call_once(self, method: str, params: tuple) -> Any:
        self._next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                reply = json.loads(text)  # the job API's refusals carry a JSON-RPC error
            except ValueError:
                raise JobError(e.code, f"HTTP {e.code} from {self.url}: {text[:200]!r}") from None
            if not isinstance(reply, dict) or "error" not in reply:
                raise JobError(e.code, f"HTTP {e.code} from {self.url}: {text[:200]!r}") from None
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as e:
            # Refused before its body was read (the worker answers 503 and
            # closes; a large body still being sent turns that into a reset).
            raise JobError(BUSY, f"the worker closed the connection before reading the request ({e})") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (ConnectionResetError, BrokenPipeError)):
                raise JobError(BUSY, f"the worker closed the connection before reading the request ({e})") from None
            raise
        if "error" in reply:
            raise JobError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    def _check_size(self, job: dict) -> None:
        """Refuses here a job the worker would refuse unread (too long a request for its job memory)."""
        if self._max_request is None:
            self._max_request = self.info().get("max_request_bytes", 0)
        size = sum(len(job[m].get("data", "")) for m in ("a", "b")) + 6 * len(job.get("label") or "") + 512
        if self._max_request and size > self._max_request:
            raise JobError(
                TOO_LARGE,
                f"the job's request is {size >> 20} MiB and the worker reads at most {self._max_request >> 20} MiB "
                "(a third of --jobs-memory-mib); send .npy files (submit_npy) or start it with more job memory",
            )

    def info(self) -> dict:
        """The chain's puzzle shape, the queue and the worker's job memory."""
        return self.call("jobs_info")

    def submit(self, a: np.ndarray, b: np.ndarray, label: Optional[str] = None) -> dict:
        """Queues ``a @ b`` with the matrices inline; returns the job's status (``status["id"]``)."""
        job = {"a": _matrix(a, "a"), "b": _matrix(b, "b")}
        if label is not None:
            job["label"] = label
        self._check_size(job)
        return self.call("jobs_submit", job)

    def submit_npy(self, a_path: str, b_path: str, label: Optional[str] = None) -> dict:
        """Queues the product of two ``.npy`` files that the worker reads itself."""
        job = {"a": {"npy": os.path.abspath(a_path)}, "b": {"npy": os.path.abspath(b_path)}}
        if label is not None:
            job["label"] = label
        return self.call("jobs_submit", job)

    def status(self, job_id: int) -> dict:
        return self.call("jobs_status", job_id)

    def list(self) -> list:
        return self.call("jobs_list")

    def cancel(self, job_id: int) -> dict:
        return self.call("jobs_cancel", job_id)

    def remove(self, job_id: int) -> bool:
        return self.call("jobs_remove", job_id)

    def wait(self, job_id: int, timeout: float = 600.0, poll: float = 0.05) -> dict:
        """Polls until the job is done; raises TimeoutError, or JobError if it was cancelled."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status["state"] == "done":
                return status
            if status["state"] == "cancelled":
                raise JobError(2003, f"job {job_id} was cancelled")
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not done after {timeout}s: {status}")
            time.sleep(poll)

    def result(self, job_id: int, npy_path: Optional[str] = None) -> np.ndarray:
        """The product of a done job, int32; through a file when ``npy_path`` is given.

        Inline, it comes in row ranges of at most ``RESULT_CHUNK`` bytes, so
        that no answer needs more than that (and its base64) of the
        worker's job memory.
        """
        if npy_path is not None:
            reply = self.call("jobs_result", job_id, {"npy": os.path.abspath(npy_path)})
            return np.load(reply["npy"])
        rows, _, cols = self.status(job_id)["shape"]
        out = np.empty((rows, cols), dtype=np.int32)
        step = max(1, RESULT_CHUNK // (4 * cols))
        for start in range(0, rows, step):
            end = min(rows, start + step)
            reply = self.call("jobs_result", job_id, {"rows": [start, end]})
            raw = base64.b64decode(reply["data"])
            out[start:end] = np.frombuffer(raw, dtype="<i4").reshape(reply["shape"])
        return out

    def matmul(self, a: np.ndarray, b: np.ndarray, label: Optional[str] = None, timeout: float = 600.0) -> np.ndarray:
        """``a @ b`` computed by the worker (values in -64..63), exact, int32."""
        job_id = self.submit(a, b, label)["id"]
        try:
            self.wait(job_id, timeout)
            return self.result(job_id)
        finally:
            self.remove(job_id)

    def matmul_int8(
        self, a: np.ndarray, b: np.ndarray, label: Optional[str] = None, timeout: float = 600.0
    ) -> np.ndarray:
        """``a @ b`` for any int8 values, exact, int32, as one job.

        A matrix with values outside -64..63 is split as ``x = 2*hi + lo``
        (``hi = x >> 1`` in -64..63, ``lo = x & 1``); the halves are stacked
        (rows of ``a``, columns of ``b``) into one product, whose blocks are
        recombined here. The job costs 2x the MACs when one side needs the
        split, 4x when both do.
        """
        return matmul_int8_via(lambda a7, b7: self.matmul(a7, b7, label, timeout), a, b)


def matmul_int8_via(matmul7, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for any int8 values, exact, int32, through ``matmul7``, a
    product of 7-bit matrices (the job API's, or the in-process miner's
    ``mlpow.Miner.matmul``): values outside -64..63 are split as in
    ``JobClient.matmul_int8``, into one product whose blocks are recombined.
    """
    a, b = np.asarray(a), np.asarray(b)
    a_parts, b_parts = split7(a), split7(b)
    big = np.asarray(matmul7(np.vstack(a_parts), np.hstack(b_parts))).astype(np.int64)
    return _recombine(big, a.shape[0], b.shape[1], len(a_parts), len(b_parts))


def split7(x: np.ndarray) -> list:
    """``[x]`` if it fits -64..63, else ``[hi, lo]`` with ``x == 2*hi + lo``, both in range."""
    x = np.asarray(x)
    if x.size == 0 or (x.min() >= MIN_VALUE and x.max() <= MAX_VALUE):
        return [x]
    if x.min() < -128 or x.max() > 127:
        raise ValueError(f"values {x.min()}..{x.max()} are not int8")
    x = x.astype(np.int16)
    return [(x >> 1).astype(np.int8), (x & 1).astype(np.int8)]


def _recombine(big: np.ndarray, rows: int, cols: int, a_parts: int, b_parts: int) -> np.ndarray:
    """Adds the blocks of ``vstack(a_parts) @ hstack(b_parts)`` back into ``a @ b``."""
    weight = {1: [1], 2: [2, 1]}
    out = np.zeros((rows, cols), dtype=np.int64)
    for i, wa in enumerate(weight[a_parts]):
        for j, wb in enumerate(weight[b_parts]):
            out += wa * wb * big[i * rows : (i + 1) * rows, j * cols : (j + 1) * cols]
    if out.size and (out.min() < -(2**31) or out.max() >= 2**31):
        raise OverflowError("the product does not fit int32")
    return out.astype(np.int32)


def matmul_int8_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The independent check: numpy's exact int64 product, as int32."""
    return (np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)).astype(np.int32)
