"""Useful mode end to end, with real processes.

A dev chain on puzzle v2 (``--chain dev-v2``): node A with a CPU mining
worker whose job API is on, node B syncing from A and checking every block
it imports. The Python client sends jobs of several shapes (some that do
not divide the puzzle's 64 x 64 x 64) and checks every product against
numpy's integer matmul; blocks keep coming while the jobs run, at least one
of them sealed by a job's ticket, whose openings node B checks on import.
Then a job survives node A's restart.

Needs ``MLPOW_NODE_BIN`` and ``MLPOW_WORKER_BIN`` (scripts/test.sh sets them);
skipped without. ``MLPOW_KEEP_LOGS=1`` keeps the processes' logs.
"""

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from mlpow_client import JobClient, JobError, matmul_int8_reference  # noqa: E402
from processes import Network, Proc, free_port, rpc, seal_of, wait_for  # noqa: E402

NODE_BIN = os.environ.get("MLPOW_NODE_BIN")
WORKER_BIN = os.environ.get("MLPOW_WORKER_BIN")


@unittest.skipUnless(NODE_BIN and WORKER_BIN, "set MLPOW_NODE_BIN and MLPOW_WORKER_BIN (scripts/test.sh does)")
class UsefulModeEndToEnd(Network, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="mlpow-useful-")
        cls.procs = []
        try:
            cls.start_network()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_network(cls):
        cls.a_rpc, cls.a_p2p, cls.b_rpc, cls.api_port = (free_port() for _ in range(4))
        # A fixed network key keeps A's peer id across its restart, so B
        # finds it again at the same address.
        cls.a_args = [NODE_BIN, "--dev", "--chain", "dev-v2", "--base-path", os.path.join(cls.base, "a"),
                      "--rpc-port", str(cls.a_rpc), "--port", str(cls.a_p2p), "--node-key", secrets.token_hex(32),
                      "--no-prometheus", "--no-mdns", "--no-telemetry"]
        cls.a = Proc("node-a", cls.a_args, cls.base)
        cls.procs.append(cls.a)
        wait_for("node A's RPC", lambda: rpc(cls.a_rpc, "system_health"), 120, cls.logs)
        peer_id = rpc(cls.a_rpc, "system_localPeerId")
        b_args = [NODE_BIN, "--dev", "--chain", "dev-v2", "--base-path", os.path.join(cls.base, "b"),
                  "--rpc-port", str(cls.b_rpc), "--port", str(free_port()),
                  "--bootnodes", f"/ip4/127.0.0.1/tcp/{cls.a_p2p}/p2p/{peer_id}",
                  "--no-prometheus", "--no-mdns", "--no-telemetry"]
        cls.procs.append(Proc("node-b", b_args, cls.base))
        wait_for("node B's RPC", lambda: rpc(cls.b_rpc, "system_health"), 120, cls.logs)
        worker_args = [WORKER_BIN, "--backend", "cpu", "--threads", "2", "--node", f"ws://127.0.0.1:{cls.a_rpc}",
                       "--jobs-api", f"127.0.0.1:{cls.api_port}", "--jobs-memory-mib", "256",
                       "--jobs-files-dir", cls.base]
        cls.procs.append(Proc("worker", worker_args, cls.base))
        cls.client = JobClient(f"http://127.0.0.1:{cls.api_port}", timeout=60)
        wait_for("the worker mining v2 work", lambda: (cls.client.info()["chain"] or {}).get("version") == 2,
                 60, cls.logs)

    def npy_header_only(self, name, shape):
        """A .npy file whose header claims ``shape`` (int8) over one byte of data."""
        header = "{'descr': '|i1', 'fortran_order': False, 'shape': (%d, %d), }\n" % shape
        path = os.path.join(self.base, name)
        with open(path, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\x00")
        return path

    def test_1_products_of_several_shapes_are_exact(self):
        rng = np.random.default_rng(2026)
        # The puzzle is 64 x 64 x 64 here: shapes below, at, across and
        # well past it, none of them all multiples of 64.
        for rows, depth, cols in [(1, 1, 1), (64, 64, 64), (65, 63, 1), (100, 300, 70), (257, 129, 3)]:
            a = rng.integers(-64, 64, size=(rows, depth), dtype=np.int8)
            b = rng.integers(-64, 64, size=(depth, cols), dtype=np.int8)
            got = self.client.matmul(a, b, label=f"{rows}x{depth}x{cols}")
            np.testing.assert_array_equal(got, matmul_int8_reference(a, b), err_msg=f"{rows}x{depth}x{cols}")
        # Full int8, through the client's 7-bit split, and .npy files both ways.
        a = rng.integers(-128, 128, size=(33, 200), dtype=np.int8)
        b = rng.integers(-128, 128, size=(200, 17), dtype=np.int8)
        np.testing.assert_array_equal(self.client.matmul_int8(a, b), matmul_int8_reference(a, b))
        a, b = a // 2, (b // 2).astype(np.int64)
        np.save(os.path.join(self.base, "a.npy"), a)
        np.save(os.path.join(self.base, "b.npy"), b)
        job = self.client.submit_npy(os.path.join(self.base, "a.npy"), os.path.join(self.base, "b.npy"))["id"]
        self.client.wait(job, 120)
        got = self.client.result(job, os.path.join(self.base, "c.npy"))
        self.assertEqual(got.dtype, np.int32)
        np.testing.assert_array_equal(got, matmul_int8_reference(a, b))
        self.client.remove(job)

    def test_2_bad_jobs_are_refused_with_the_reason(self):
        ok = np.zeros((2, 2), dtype=np.int8)
        with self.assertRaises(ValueError):
            self.client.submit(ok + 64, ok)  # caught by the client itself
        cases = [
            ({"a": {"shape": [2, 2], "data": "AAAAAA=="}, "b": {"shape": [2, 2], "data": "AAAAAA=="}}, 2000,
             "element [0, 0]"),
            ({"a": {"shape": [2, 3], "data": "AAAAAAAA"}, "b": {"shape": [2, 2], "data": "AAAAAA=="}}, 2000,
             "columns must equal"),
            ({"a": {"npy": "/nonexistent.npy"}, "b": {"shape": [1, 1], "data": "AA=="}}, 2000, "nonexistent"),
            ({"a": {"shape": [100000, 100000], "data": ""}, "b": {"shape": [1, 1], "data": "AA=="}}, 2000,
             "13333333336 base64 characters"),
            # A header that promises 10^10 values is weighed against the
            # budget before any of them is read.
            ({"a": {"npy": self.npy_header_only("huge.npy", (100000, 100000))},
              "b": {"npy": self.npy_header_only("tall.npy", (100000, 1))}}, 2001, "job too large"),
        ]
        # 0x40 = 64: one past the top of the range.
        cases[0][0]["a"]["data"] = "QAAAAA=="
        for job, code, why in cases:
            with self.assertRaises(JobError) as e:
                self.client.call("jobs_submit", job)
            self.assertEqual(e.exception.code, code, e.exception)
            self.assertIn(why, e.exception.message)
        with self.assertRaises(JobError) as e:
            self.client.status(10**9)
        self.assertEqual(e.exception.code, 2002)
        with self.assertRaises(JobError) as e:
            self.client.call("jobs_submit", {"a": 1})
        self.assertEqual(e.exception.code, -32602)  # JSON-RPC "invalid params"
        # Files outside --jobs-files-dir are not the API's to read or write.
        with self.assertRaises(JobError) as e:
            self.client.call("jobs_submit", {"a": {"npy": "/etc/passwd"}, "b": {"shape": [1, 1], "data": "AA=="}})
        self.assertIn("outside the worker's files directory", e.exception.message)
        job = self.client.submit(ok, ok)["id"]
        self.client.wait(job, 60)
        with self.assertRaises(JobError) as e:
            self.client.result(job, "/tmp/mlpow-elsewhere.npy")
        self.assertEqual(e.exception.code, 2004)
        self.client.remove(job)
        # Browsers (an Origin header) and other host names (DNS rebinding)
        # are turned away before any method runs.
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "jobs_list", "params": []}).encode()
        for headers in [{"Origin": "https://example.com"}, {"Host": "attacker.example"}]:
            request = urllib.request.Request(self.client.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json", **headers})
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(request, timeout=10)
            self.assertEqual(e.exception.code, 403, headers)
        # The worker is still there and still multiplies.
        np.testing.assert_array_equal(self.client.matmul(ok + 1, ok + 2), np.full((2, 2), 4))

    def test_3_a_block_is_sealed_by_a_jobs_ticket_and_checked_by_the_peer(self):
        """Jobs keep the lanes busy until one of their tickets wins a block."""
        rng = np.random.default_rng(5)
        a = rng.integers(-64, 64, size=(512, 512), dtype=np.int8)
        b = rng.integers(-64, 64, size=(512, 512), dtype=np.int8)
        want = matmul_int8_reference(a, b)
        start = self.best(self.a_rpc)
        sealed = None
        deadline = time.monotonic() + 240
        while sealed is None:
            self.assertLess(time.monotonic(), deadline, f"no block from a job's ticket\n{self.logs()}")
            job = self.client.submit(a, b, label="load")["id"]
            status = self.client.wait(job, 120)
            np.testing.assert_array_equal(self.client.result(job), want)
            self.client.remove(job)
            if status["blocks"]:
                sealed = status["blocks"][0]
        self.assertGreater(self.best(self.a_rpc), start, "blocks kept coming while jobs ran")
        # Node B imported that block, which it does only after checking the
        # seal's openings against the commitments the noise seed binds.
        header = wait_for("node B importing the job's block",
                          lambda: rpc(self.b_rpc, "chain_getHeader", sealed), 60, self.logs)
        seal = seal_of(header)
        self.assertGreater(len(seal), 17, "a chosen-matrix seal carries openings")
        self.assertEqual(seal[16], 1, "seal mode 1: chosen matrices")

    def test_4_a_job_survives_new_blocks_and_a_node_restart(self):
        rng = np.random.default_rng(9)
        a = rng.integers(-64, 64, size=(1024, 2048), dtype=np.int8)
        b = rng.integers(-64, 64, size=(2048, 1024), dtype=np.int8)
        want = matmul_int8_reference(a, b)
        job = self.client.submit(a, b, label="restart")["id"]
        wait_for("the job under way", lambda: self.client.status(job)["macs_done"] > 0, 60, self.logs)
        first = self.best(self.a_rpc)
        self.a.stop()
        before = self.client.status(job)
        self.assertNotEqual(before["state"], "done", "the job is long enough to span the restart")
        self.a.start()
        wait_for("node A back", lambda: rpc(self.a_rpc, "system_health"), 120, self.logs)
        status = self.client.wait(job, 300)
        # The restart gave the worker new work mid-job (the old work's
        # tickets stale), and the product is still exact.
        np.testing.assert_array_equal(self.client.result(job), want)
        self.client.remove(job)
        self.assertGreater(status["pieces_done"], 0)
        wait_for("a new block after the restart", lambda: self.best(self.a_rpc) > first, 120, self.logs)

    def test_5_a_real_model_runs_through_the_worker(self):
        """The MLPerf Tiny anomaly-detection autoencoder's ten int8 layers,
        every GEMM through the worker and checked against numpy."""
        demo = os.path.join(os.path.dirname(__file__), "..", "examples", "mlperf_tiny", "run_layers.py")
        out = subprocess.run([sys.executable, demo, "--api", self.client.url, "--batch", "16"],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("all layers identical", out.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
