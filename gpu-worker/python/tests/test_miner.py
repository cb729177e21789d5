"""The `mlpow` package: the miner inside a Python process.

Without a node, every product is exact and nothing mines; bad input is
refused with a clear exception and the miner goes on. With real nodes on
the dev-v2 chain (node A, which this process mines for, and node B, which
syncs from A and checks every seal), the products this process multiplies
seal blocks that B imports, every product stays equal to numpy's, and a
restart of node A neither stops the products nor, once A is back, the
mining.

Needs the package importable (scripts/env.sh's `python_env` puts the one
`cargo build` made on the path) and, for the network test,
``MLPOW_NODE_BIN`` (scripts/test.sh sets it). ``MLPOW_KEEP_LOGS=1`` keeps
the nodes' logs.
"""

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "clients", "python", "tests"))
from processes import Network, Proc, free_port, rpc, seal_of, wait_for  # noqa: E402

import mlpow  # noqa: E402

NODE_BIN = os.environ.get("MLPOW_NODE_BIN")
# The pool, beside the node (scripts/test.sh builds every binary).
POOL_BIN = os.environ.get("MLPOW_POOL_BIN") or (NODE_BIN and os.path.join(os.path.dirname(NODE_BIN), "mlpow-pool"))


def pool_status(port):
    """The pool's ``GET /status``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as answer:
        return json.load(answer)


def reference(a, b):
    return a.astype(np.int64) @ b.astype(np.int64)


def nowhere():
    """A node URL nobody listens on."""
    return f"ws://127.0.0.1:{free_port()}"


class WithoutANode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.miner = mlpow.Miner(nowhere())

    def test_products_are_exact_and_plain(self):
        rng = np.random.default_rng(7)
        before = self.miner.stats()
        for rows, depth, cols in [(1, 1, 1), (64, 64, 64), (65, 63, 1), (100, 300, 70), (3, 129, 257)]:
            a = rng.integers(-64, 64, size=(rows, depth), dtype=np.int8)
            b = rng.integers(-64, 64, size=(depth, cols), dtype=np.int8)
            c = self.miner.matmul(a, b)
            self.assertEqual(c.dtype, np.int32)
            self.assertEqual(c.shape, (rows, cols))
            np.testing.assert_array_equal(c, reference(a, b))
        # The extremes of the range.
        a, b = np.full((5, 7), -64, np.int8), np.full((7, 3), -64, np.int8)
        np.testing.assert_array_equal(self.miner.matmul(a, b), np.full((5, 3), 7 * 4096))
        after = self.miner.stats()
        self.assertEqual(after["calls"] - before["calls"], 6)
        self.assertEqual(after["macs_mined"], 0)
        self.assertEqual(after["macs_plain"] - before["macs_plain"], after["macs"] - before["macs"])
        self.assertFalse(after["mining"])

    def test_the_sessions_log_reaches_pythons_logging(self):
        """A miner whose node is not there says so, through ``logging``
        (the logger of the Rust module that logs it), and keeps trying."""
        url = nowhere()
        with self.assertLogs("mlpow_worker", level="WARNING") as logged:
            miner = mlpow.Miner(url)
            deadline = time.monotonic() + 30
            while not any(url in line for line in logged.output):
                self.assertLess(time.monotonic(), deadline, logged.output)
                time.sleep(0.05)
        self.assertTrue(any(line.startswith("WARNING:mlpow_worker.node:") for line in logged.output), logged.output)
        self.assertTrue(miner.close(timeout=1), "nothing was found, so nothing is left unsent")

    def test_a_pool_is_named_with_its_payout_address(self):
        # A pool nobody listens on: products are still exact, and nothing mines.
        pool = mlpow.Miner(f"stratum+tcp://127.0.0.1:{free_port()}", user="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY.py")
        a, b = np.ones((3, 4), np.int8), np.ones((4, 2), np.int8)
        np.testing.assert_array_equal(pool.matmul(a, b), np.full((3, 2), 4))
        self.assertFalse(pool.stats()["mining"])
        for node, user, ca, why in [
            ("stratum+tcp://127.0.0.1:1", None, None, "needs user="),
            ("ws://127.0.0.1:1", "x.y", None, "user= is for a pool"),
            ("stratum+ssl://127.0.0.1:1", "x.y", "/nonexistent/pool-ca.pem", "/nonexistent/pool-ca.pem"),
            ("stratum+tcp://127.0.0.1", "x.y", None, "expected stratum+tcp://host:port"),
            ("http://127.0.0.1:1", None, None, "neither a ws:// URL"),
        ]:
            with self.assertRaises(ValueError) as e:
                mlpow.Miner(node, user=user, pool_ca=ca)
            self.assertIn(why, str(e.exception))

    def test_a_registered_weight_multiplies_exactly(self):
        rng = np.random.default_rng(5)
        b = rng.integers(-64, 64, size=(70, 33), dtype=np.int8)
        w = self.miner.register_weight(b)
        self.assertEqual(w.shape, (70, 33))
        for rows in (1, 64, 130):
            a = rng.integers(-64, 64, size=(rows, 70), dtype=np.int8)
            np.testing.assert_array_equal(self.miner.matmul(a, w), reference(a, b))
        # Registered from any layout; refused like any operand when bad.
        f = np.asfortranarray(b)
        with self.assertRaises(ValueError) as e:
            self.miner.register_weight(f)
        self.assertIn("not C-contiguous", str(e.exception))
        for bad, kind, why in [(b.astype(np.int16), TypeError, "dtype int16"), (b - 65, ValueError, "outside"),
                               (np.zeros((0, 3), np.int8), ValueError, "empty")]:
            with self.assertRaises(kind) as e:
                self.miner.register_weight(bad)
            self.assertIn(why, str(e.exception))
        with self.assertRaises(ValueError) as e:
            self.miner.matmul(np.zeros((2, 69), np.int8), w)
        self.assertIn("do not multiply", str(e.exception))
        with self.assertRaises(ValueError) as e:
            self.miner._native.matmul_by(np.zeros((2, 69), np.int8), w)
        self.assertIn("do not multiply", str(e.exception))

    def test_bad_input_is_refused_with_the_reason(self):
        ok = np.zeros((2, 3), np.int8)
        okb = np.zeros((3, 4), np.int8)
        cases = [
            (ok.astype(np.int16), okb, TypeError, "dtype int16"),
            (ok, okb.astype(np.float32), TypeError, "dtype float32"),
            (ok + 64, okb, ValueError, "holds 64, outside"),
            (ok, okb - 65, ValueError, "holds -65, outside"),
            (ok, np.zeros((2, 4), np.int8), ValueError, "do not multiply"),
            (np.zeros((0, 3), np.int8), okb, ValueError, "empty"),
            (np.zeros(6, np.int8), okb, ValueError, "1 dimensions"),
            (np.zeros((3, 2), np.int8).T, okb, ValueError, "not C-contiguous"),
            (ok.tolist(), okb, TypeError, "is a list"),
        ]
        before = self.miner.stats()["calls"]
        for a, b, kind, why in cases:
            with self.assertRaises(kind, msg=why) as e:
                self.miner.matmul(a, b)
            self.assertIn(why, str(e.exception))
        self.assertEqual(self.miner.stats()["calls"], before, "refused calls count for nothing")
        # The native module checks the same things itself.
        native = self.miner._native
        with self.assertRaises(ValueError) as e:
            native.matmul(ok + 64, okb)
        self.assertIn("outside the puzzle's 7-bit range", str(e.exception))
        with self.assertRaises(ValueError):
            native.matmul(ok, np.zeros((2, 4), np.int8))
        with self.assertRaises(TypeError):
            native.matmul(ok.astype(np.int32), okb)
        # Fortran order is contiguous too, but not row-major: refused, not misread.
        with self.assertRaises(ValueError) as e:
            native.matmul(np.asfortranarray(np.arange(6, dtype=np.int8).reshape(2, 3)), okb)
        self.assertIn("not C-contiguous", str(e.exception))
        # b is read through its strides: any layout multiplies exactly.
        rng = np.random.default_rng(1)
        a = rng.integers(-64, 64, size=(5, 7), dtype=np.int8)
        b = np.asfortranarray(rng.integers(-64, 64, size=(7, 3), dtype=np.int8))
        np.testing.assert_array_equal(native.matmul(a, b), reference(a, b))
        with self.assertRaises(ValueError) as e:
            mlpow.Miner(nowhere(), background_threads=10**6)
        self.assertIn("at most", str(e.exception))
        with self.assertRaises(ValueError):
            mlpow.Miner("http://127.0.0.1:9944")
        with self.assertRaises(ValueError):
            mlpow.Miner(nowhere(), min_fill=2)
        for window in (-1, 11):
            with self.assertRaises(ValueError) as e:
                mlpow.Miner(nowhere(), pack_window=window)
            self.assertIn("pack_window", str(e.exception))
        with self.assertRaises(ValueError):
            mlpow.Miner(nowhere(), backend="tpu")
        # CUDA without a GPU (CI): refused with the reason; "auto" falls back.
        try:
            mlpow.Miner(nowhere(), backend="cuda")
        except RuntimeError as e:
            self.assertIn('backend "cuda"', str(e))
        np.testing.assert_array_equal(mlpow.Miner(nowhere(), backend="auto").matmul(ok + 1, okb + 2),
                                      np.full((2, 4), 6))
        # Nothing was lost: the miner still multiplies.
        np.testing.assert_array_equal(self.miner.matmul(ok + 1, okb + 2), np.full((2, 4), 6))


class Offline(unittest.TestCase):
    """A miner on work of its own making (no node): its products mine and
    its winners are kept for ``found()``."""

    def test_an_offline_miner_mines_its_products_and_keeps_its_winners(self):
        # dev-v2 pieces (64 x 64 x 62), 16 tickets a nonce: about one winner each.
        miner = mlpow.Miner.offline("64,64,64,16,32", 16)
        try:
            a = np.random.default_rng(1).integers(-64, 64, (100, 300), dtype=np.int8)
            b = np.random.default_rng(2).integers(-64, 64, (300, 90), dtype=np.int8)
            self.assertTrue(np.array_equal(miner.matmul(a, b), reference(a, b)))
            stats = miner.stats()
            self.assertTrue(stats["mining"])
            self.assertGreater(stats["macs_mined"], 0)
            self.assertGreater(stats["winners"], 0)
            found = miner.found()
            self.assertEqual(len(found), stats["winners"] - stats["dropped"])
            nonce, tile_i, tile_j, seal = found[0]
            # A chosen seal: 16-byte id, mode 1, then both roots and openings.
            self.assertEqual(seal[16], 1)
            self.assertEqual(int.from_bytes(seal[:8], "little"), nonce)
            self.assertEqual(miner.found(), [])
        finally:
            miner.close(timeout=0.5)
        for bad, why in [(("64,64,64,16", 16), "puzzle v2"), (("64,64,64,16,32", 0), "difficulty 0"), (("1,2", 5), "params")]:
            with self.assertRaises(ValueError) as caught:
                mlpow.Miner.offline(*bad)
            self.assertIn(why, str(caught.exception))


@unittest.skipUnless(NODE_BIN, "set MLPOW_NODE_BIN (scripts/test.sh does)")
class OnTheChain(Network, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="mlpow-inprocess-")
        cls.procs = []
        try:
            cls.a_rpc, cls.a_p2p, cls.b_rpc = free_port(), free_port(), free_port()
            cls.a = Proc("node-a", [NODE_BIN, "--dev", "--chain", "dev-v2", "--base-path",
                                    os.path.join(cls.base, "a"), "--rpc-port", str(cls.a_rpc), "--port",
                                    str(cls.a_p2p), "--node-key", secrets.token_hex(32), "--no-prometheus",
                                    "--no-mdns", "--no-telemetry"], cls.base)
            cls.procs.append(cls.a)
            wait_for("node A's RPC", lambda: rpc(cls.a_rpc, "system_health"), 120, cls.logs)
            peer = rpc(cls.a_rpc, "system_localPeerId")
            cls.procs.append(Proc("node-b", [NODE_BIN, "--dev", "--chain", "dev-v2", "--base-path",
                                             os.path.join(cls.base, "b"), "--rpc-port", str(cls.b_rpc), "--port",
                                             str(free_port()), "--bootnodes",
                                             f"/ip4/127.0.0.1/tcp/{cls.a_p2p}/p2p/{peer}", "--no-prometheus",
                                             "--no-mdns", "--no-telemetry"], cls.base))
            wait_for("node B's RPC", lambda: rpc(cls.b_rpc, "system_health"), 120, cls.logs)
        except BaseException:
            cls.tearDownClass()
            raise

    def multiply_until(self, miner, what, done, timeout):
        """Multiplies (and checks) products until ``done(stats)``."""
        rng = np.random.default_rng(11)
        deadline = time.monotonic() + timeout
        while not done(miner.stats()):
            self.assertLess(time.monotonic(), deadline, f"{what}: {miner.stats()}\n{self.logs()}")
            a = rng.integers(-64, 64, size=(128, 250), dtype=np.int8)
            b = rng.integers(-64, 64, size=(250, 128), dtype=np.int8)
            np.testing.assert_array_equal(miner.matmul(a, b), reference(a, b))
        return miner.stats()

    def test_products_seal_blocks_and_survive_a_node_restart(self):
        miner = mlpow.Miner(f"ws://127.0.0.1:{self.a_rpc}")
        wait_for("the miner's session on v2 work", lambda: miner.stats()["mining"], 60, self.logs)
        start = self.best(self.a_rpc)
        stats = self.multiply_until(miner, "a block from this process's products",
                                    lambda s: s["blocks_accepted"] >= 2, 240)
        self.assertGreater(stats["macs_mined"], 0)
        self.assertGreater(stats["winners"], 0)
        self.assertEqual(stats["rejected"], 0)
        # Node B imported A's new blocks, each sealed by this process's
        # tickets (nothing else mines), checking the seals' openings.
        tip = rpc(self.a_rpc, "chain_getBlockHash")
        self.assertGreater(self.best(self.a_rpc), start)
        header = wait_for("node B importing A's tip", lambda: rpc(self.b_rpc, "chain_getHeader", tip), 60, self.logs)
        seal = seal_of(header)
        self.assertGreater(len(seal), 17, "a chosen-matrix seal carries openings")
        self.assertEqual(seal[16], 1, "seal mode 1: chosen matrices")

        # Node A goes away: products stay exact, unmined, at once.
        self.a.stop()
        wait_for("the session noticing", lambda: not miner.stats()["mining"], 60, self.logs)
        rng = np.random.default_rng(3)
        plain_before = miner.stats()["macs_plain"]
        a = rng.integers(-64, 64, size=(128, 124), dtype=np.int8)
        b = rng.integers(-64, 64, size=(124, 128), dtype=np.int8)
        np.testing.assert_array_equal(miner.matmul(a, b), reference(a, b))
        self.assertEqual(miner.stats()["macs_plain"] - plain_before, 128 * 124 * 128)
        # Back: mining resumes by itself.
        accepted = miner.stats()["blocks_accepted"]
        self.a.start()
        wait_for("node A back", lambda: rpc(self.a_rpc, "system_health"), 120, self.logs)
        self.multiply_until(miner, "a block after the restart", lambda s: s["blocks_accepted"] > accepted, 240)

    def test_products_mine_shares_for_a_pool(self):
        """The process as one of a pool's miners: its products' chosen-mode
        tickets go to `mlpow-pool` as shares, which the pool checks (the
        openings included) and credits to the process's payout address."""
        self.assertTrue(POOL_BIN and os.path.exists(POOL_BIN), f"no pool binary at {POOL_BIN}")
        listen, status = free_port(), free_port()
        pool = Proc("pool", [POOL_BIN, "--node", f"ws://127.0.0.1:{self.a_rpc}", "--listen", f"127.0.0.1:{listen}",
                             "--status", f"127.0.0.1:{status}", "--share-interval", "1", "--start-difficulty", "2",
                             "--data-dir", os.path.join(self.base, "pool-data")],
                    self.base)
        self.procs.append(pool)
        user = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty.python"
        miner = mlpow.Miner(f"stratum+tcp://127.0.0.1:{listen}", user=user)
        wait_for("the miner's session on the pool's work", lambda: miner.stats()["mining"], 60, self.logs)

        def credited():
            workers = pool_status(status)["workers"]
            return next((w for w in workers if w["worker"] == user), None)

        stats = self.multiply_until(miner, "shares from this process's products",
                                    lambda s: s["blocks_accepted"] >= 3, 240)
        self.assertGreater(stats["macs_mined"], 0)
        self.assertEqual(stats["rejected"], 0, "the pool refused none of the shares")
        worker = wait_for("the pool crediting the shares", credited, 30, self.logs)
        self.assertGreaterEqual(worker["accepted"], 3, worker)
        self.assertEqual(worker["invalid"], 0, worker)

        # Closed right after a share is found, the miner sends it and waits
        # for the pool's answer: every winner is answered, but those the
        # miner dropped (difficulty 2 makes half the tickets shares, more
        # than 64 at once, which the miner refuses to queue; it counts them).
        answered = lambda s: s["blocks_accepted"] + s["stale"] + s["rejected"] + s["dropped"] + s["unsent"]
        self.multiply_until(miner, "a share just found", lambda s: s["winners"] > answered(s), 240)
        self.assertTrue(miner.close(timeout=30))
        stats = miner.stats()
        self.assertEqual(answered(stats), stats["winners"], stats)
        self.assertFalse(stats["mining"])
        self.assertEqual(stats["unsent"], 0, stats)
        # Products after it are exact, and plain (one large enough to mine
        # before the close).
        rng = np.random.default_rng(9)
        a = rng.integers(-64, 64, size=(128, 250), dtype=np.int8)
        b = rng.integers(-64, 64, size=(250, 128), dtype=np.int8)
        np.testing.assert_array_equal(miner.matmul(a, b), reference(a, b))
        self.assertEqual(miner.stats()["macs_plain"] - stats["macs_plain"], 128 * 250 * 128)
        pool.stop()

    def test_a_registered_weight_mines_and_is_committed_once(self):
        miner = mlpow.Miner(f"ws://127.0.0.1:{self.a_rpc}")
        wait_for("the miner's session on v2 work", lambda: miner.stats()["mining"], 60, self.logs)
        rng = np.random.default_rng(21)
        b = rng.integers(-64, 64, size=(124, 128), dtype=np.int8)
        w = miner.register_weight(b)
        a = rng.integers(-64, 64, size=(128, 124), dtype=np.int8)
        np.testing.assert_array_equal(miner.matmul(a, w), reference(a, b))
        prepared = w.pieces_prepared
        self.assertGreater(prepared, 0, miner.stats())
        for _ in range(5):
            a = rng.integers(-64, 64, size=(128, 124), dtype=np.int8)
            np.testing.assert_array_equal(miner.matmul(a, w), reference(a, b))
        # (A new block may change the puzzle shape only by governance: the
        # dev-v2 chain keeps it, so the pieces stay committed.)
        self.assertEqual(w.pieces_prepared, prepared)
        self.assertGreater(miner.stats()["nonces"], 0)

    def test_decode_steps_from_threads_pack_into_one_mined_piece(self):
        """Eight threads' decode steps (4 rows each) with one registered
        weight: alone, each fills an eighth of the half of a dev-v2 piece a
        nonce needs and would mine nothing; with a packing window they meet
        in one piece, which mines, and each thread gets its own rows exactly."""
        miner = mlpow.Miner(f"ws://127.0.0.1:{self.a_rpc}", pack_window=10)
        wait_for("the miner's session on v2 work", lambda: miner.stats()["mining"], 60, self.logs)
        rng = np.random.default_rng(33)
        b = rng.integers(-64, 64, size=(62, 64), dtype=np.int8)
        w = miner.register_weight(b)
        steps = [rng.integers(-64, 64, size=(4, 62), dtype=np.int8) for _ in range(8)]
        results = [None] * 8
        meet = threading.Barrier(8)

        def step(i):
            meet.wait()
            results[i] = miner.matmul(steps[i], w)

        threads = [threading.Thread(target=step, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for a, got in zip(steps, results):
            np.testing.assert_array_equal(got, reference(a, b))
        stats = miner.stats()
        self.assertEqual(stats["calls_packed"], 8, stats)
        self.assertEqual((stats["nonces"], stats["macs_mined"], stats["macs_plain"]), (1, 32 * 62 * 64, 0), stats)
        miner.close()

    def test_a_real_model_mines_through_the_package(self):
        """The MLPerf Tiny autoencoder's int8 layers, multiplied in a Python
        process by the package, every layer checked against numpy, until
        its products sealed a block that node B imported."""
        demo = os.path.join(os.path.dirname(__file__), "..", "..", "..", "clients", "python", "examples",
                            "mlperf_tiny", "run_layers.py")
        before = self.best(self.b_rpc)
        out = subprocess.run([sys.executable, demo, "--node", f"ws://127.0.0.1:{self.a_rpc}", "--batch", "32",
                              "--until-blocks", "1"], capture_output=True, text=True, timeout=400)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr + self.logs())
        self.assertIn("every layer checked: identical", out.stdout)
        self.assertIn("all layers identical", out.stdout)
        mined = [line for line in out.stdout.splitlines() if line.startswith("mined: ")]
        self.assertTrue(mined and not mined[0].startswith("mined: 0%"), out.stdout)
        wait_for("node B importing the model's block", lambda: self.best(self.b_rpc) > before, 60, self.logs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
