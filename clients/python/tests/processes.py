"""Real processes for the Python end-to-end tests: free ports, a node's
JSON-RPC over HTTP, waiting on readiness, a process with its log, and a
header's PoW seal. Shared by clients/python/tests and gpu-worker/python/tests.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc(port: int, method: str, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def wait_for(what: str, check, timeout: float, logs=lambda: ""):
    """Polls ``check`` until it returns a truthy value (which is returned)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # not ready yet: a refused connection, say
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what}: not after {timeout}s (last error: {last})\n{logs()}")


def seal_of(header: dict) -> bytes:
    """The PoW seal of a header: its last digest item, ``Seal(engine, bytes)``."""
    item = bytes.fromhex(header["digest"]["logs"][-1][2:])
    assert item[0] == 5, "the last digest item is the seal"
    body = item[5:]
    # SCALE compact length: the low two bits say how many bytes it takes.
    mode = body[0] & 3
    if mode == 0:
        length, body = body[0] >> 2, body[1:]
    elif mode == 1:
        length, body = int.from_bytes(body[:2], "little") >> 2, body[2:]
    else:
        length, body = int.from_bytes(body[:4], "little") >> 2, body[4:]
    assert len(body) == length
    return body


class Proc:
    def __init__(self, name, args, base):
        self.name, self.args = name, args
        self.log_path = os.path.join(base, f"{name}.log")
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def tail(self, lines=30):
        with open(self.log_path, "rb") as f:
            return f"--- {self.name}:\n" + b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")


class Network:
    """A test class's processes (``cls.procs``, logs under ``cls.base``):
    stopped and cleaned up after its tests, their logs' tails for failure
    messages. ``MLPOW_KEEP_LOGS=1`` keeps the logs."""

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            p.stop()
        if os.environ.get("MLPOW_KEEP_LOGS"):
            print(f"logs kept in {cls.base}", file=sys.stderr)
        else:
            shutil.rmtree(cls.base, ignore_errors=True)

    @classmethod
    def logs(cls):
        return "\n".join(p.tail() for p in cls.procs)

    def best(self, port):
        return int(rpc(port, "chain_getHeader")["number"], 16)
