"""The `mlpow` package on CUDA tensors (a GPU machine with torch; skipped
elsewhere, with the reason): products of torch int8 tensors on the GPU,
taken through DLPack and never copied to the host, equal torch's own, on
the default stream and on a side stream, for a weight given as it is and
as a ``Linear.weight.t()`` view; bad input is refused with the named
exception and the next call still works; 100 calls do not grow torch's
allocated memory. These run without work (plain products on the device),
but for a registered weight's, mined on an offline miner: copied and
checked once, pieces committed once and reused, later changes to the
tensor not seen. The mined path through the package is also
test_torch.py's and bench_cuda.py's, and the Rust side's
tests/cuda_device_inproc.rs.
"""

import unittest

try:
    import torch

    HAVE_GPU = torch.cuda.is_available()
    WHY = "no CUDA device visible to torch"
except ImportError:  # pragma: no cover - CI has no torch
    torch = None
    HAVE_GPU = False
    WHY = "torch is not installed"

import mlpow


def reference(a, b):
    # Exact in float64 on the GPU: |a @ b| < 2^53.
    return (a.double() @ b.double()).to(torch.int32)


def operands(m, k, n, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    a = torch.randint(-64, 64, (m, k), generator=g, dtype=torch.int8).to(device)
    b = torch.randint(-64, 64, (k, n), generator=g, dtype=torch.int8).to(device)
    return a, b


@unittest.skipUnless(HAVE_GPU, WHY)
class OnTheGpu(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.miner = mlpow.Miner("ws://127.0.0.1:1", backend="cuda")
        cls.device = torch.device("cuda", 0)

    @classmethod
    def tearDownClass(cls):
        cls.miner.close(timeout=1.0)

    def test_products_are_exact_on_every_layout_and_stream(self):
        with torch.no_grad():
            # One row (a decode step; PyTorch exports its stride as 1), one
            # column, a depth past one piece, and a large product.
            for m, k, n in [(1, 1, 1), (1, 63, 5), (1, 4096, 1024), (65, 63, 1), (300, 4100, 257), (1024, 4096, 1024)]:
                a, b = operands(m, k, n, self.device, seed=m)
                c = self.miner.matmul(a, b)
                self.assertEqual(c.device, self.device)
                self.assertEqual(c.dtype, torch.int32)
                self.assertTrue(torch.equal(c, reference(a, b)), f"{m}x{k}x{n}")
                # A weight in Linear's layout (out x in), given as its view.
                w = b.t().contiguous()
                self.assertTrue(torch.equal(self.miner.matmul(a, w.t()), reference(a, b)))
                # On a side stream.
                side = torch.cuda.Stream()
                with torch.cuda.stream(side):
                    c2 = self.miner.matmul(a, b)
                side.synchronize()
                self.assertTrue(torch.equal(c2, reference(a, b)))
                # A registered weight.
                reg = self.miner.register_weight(b)
                self.assertTrue(torch.equal(self.miner.matmul(a, reg), reference(a, b)))
        self.assertGreater(self.miner.stats()["calls"], 0)

    def test_bad_input_is_refused_and_the_next_call_works(self):
        a, b = operands(8, 16, 4, self.device)
        bad = a.clone()
        bad[3, 5] = 100
        cases = [
            ((a.float(), b), TypeError),
            ((bad, b), ValueError),
            ((a, b[:15]), ValueError),
            ((a[:0], b), ValueError),
            ((a, b.cpu()), ValueError),
            ((a.unsqueeze(0), b), ValueError),
        ]
        for (x, y), error in cases:
            with self.assertRaises(error):
                self.miner.matmul(x, y)
        self.assertTrue(torch.equal(self.miner.matmul(a, b), reference(a, b)))

    def test_a_registered_weight_is_copied_checked_once_and_its_pieces_committed_once(self):
        # Mined (an offline miner: work of its own), so that pieces are made.
        miner = mlpow.Miner.offline("256,640,256,16,32", 16, backend="cuda")
        try:
            with torch.no_grad():
                a, b = operands(300, 1300, 500, self.device, seed=7)
                w = miner.register_weight(b)
                self.assertIsInstance(w, mlpow.DeviceWeight)
                self.assertEqual((w.shape, w.device, w.pieces_prepared, w.pieces_committed), ((1300, 500), 0, 0, 0))
                self.assertTrue(torch.equal(miner.matmul(a, w), reference(a, b)))
                made = w.pieces_committed
                self.assertGreater(made, 0)
                self.assertEqual(w.pieces_prepared, made)
                before = miner.stats()
                # New activations, the same weight: its pieces are reused.
                a2, _ = operands(256, 1300, 1, self.device, seed=8)
                self.assertTrue(torch.equal(miner.matmul(a2, w), reference(a2, b)))
                self.assertEqual(w.pieces_committed, made)
                self.assertGreater(miner.stats()["macs_mined"], before["macs_mined"])
                # The weight is the miner's copy: changing b later is not seen.
                old = b.clone()
                b.fill_(1)
                self.assertTrue(torch.equal(miner.matmul(a, w), reference(a, old)))
                # Its view as Linear keeps it (out x in, transposed) works too.
                wt = miner.register_weight(old.t().contiguous().t())
                self.assertTrue(torch.equal(miner.matmul(a, wt), reference(a, old)))
                # Bad weights and bad activations are refused by name.
                bad = old.clone()
                bad[4, 2] = -100
                with self.assertRaisesRegex(ValueError, "-100"):
                    miner.register_weight(bad)
                with self.assertRaises(ValueError):
                    miner.matmul(a[:, :5], w)
                with self.assertRaises(ValueError):
                    miner.matmul(a.cpu(), w)
                self.assertTrue(torch.equal(miner.matmul(a, w), reference(a, old)))
        finally:
            miner.close(timeout=1.0)

    def test_int8_products_are_exact_on_the_gpu(self):
        g = torch.Generator(device="cpu").manual_seed(9)
        a = torch.randint(-128, 128, (70, 130), generator=g, dtype=torch.int8).to(self.device)
        b = torch.randint(-128, 128, (130, 50), generator=g, dtype=torch.int8).to(self.device)
        got = self.miner.matmul_int8(a, b)
        self.assertEqual((got.device, got.dtype), (self.device, torch.int32))
        self.assertTrue(torch.equal(got, reference(a, b)))

    def test_calls_do_not_grow_the_gpus_memory_or_hold_the_tensors(self):
        import sys

        a, b = operands(256, 512, 256, self.device)
        self.miner.matmul(a, b)
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        refs = (sys.getrefcount(a), sys.getrefcount(b))
        for _ in range(100):
            c = self.miner.matmul(a, b)
        del c
        torch.cuda.synchronize()
        self.assertLessEqual(torch.cuda.memory_allocated(), before)
        # Every DLPack capsule's deleter ran: nothing keeps the tensors.
        self.assertEqual((sys.getrefcount(a), sys.getrefcount(b)), refs)


if __name__ == "__main__":
    unittest.main()
