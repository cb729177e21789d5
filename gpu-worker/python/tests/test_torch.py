"""``mlpow.torch``: a PyTorch model's linear layers swapped for mining ones
(skipped without torch, with the reason; the GPU bundle runs it on the GPU
machine's torch, on the CPU and on CUDA). The quantization equals
``mlpow.quant``'s; a patched model's output is the same whether its
products mined or not, and close to the float model's."""

import os
import sys
import unittest
from pathlib import Path

try:
    import numpy as np
except ImportError:  # a GPU machine's torch may come without numpy
    np = None

try:
    import torch
    from torch import nn

    WHY = None
except ImportError:  # pragma: no cover - CI has no torch
    torch = None
    WHY = "torch is not installed"

import mlpow


def model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(300, 128), nn.ReLU(), nn.Linear(128, 90), nn.ReLU(), nn.Linear(90, 10))


@unittest.skipIf(torch is None, WHY or "")
class Patched(unittest.TestCase):
    def devices(self):
        # CPU tensors go through numpy in the package; CUDA ones do not.
        if np is not None:
            yield "cpu", "cpu"
        if torch.cuda.is_available():
            yield "cuda", "cuda"

    @unittest.skipIf(np is None, "numpy is not installed")
    def test_the_quantization_is_mlpow_quants(self):
        import mlpow.torch as mt
        from mlpow import quant

        w = torch.randn(40, 70) * torch.rand(40, 1) * 10
        q, s = mt._quantize(w, dim=1)
        q_np, s_np = quant.quantize_weight(w.numpy())
        self.assertTrue(np.array_equal(q.numpy(), q_np))
        self.assertTrue(np.array_equal(s.numpy(), s_np))

    def test_a_patched_models_output_does_not_depend_on_mining(self):
        import mlpow.torch as mt

        for device, backend in self.devices():
            with self.subTest(device=device):
                reference = model(1).to(device)
                x = torch.randn(100, 300, device=device)
                with torch.no_grad():
                    y_float = reference(x)
                outputs, stats = [], []
                for miner in (
                    mlpow.Miner.offline("64,64,64,16,32", 16, backend=backend),
                    mlpow.Miner("ws://127.0.0.1:1", backend=backend),
                ):
                    m = model(1).to(device)
                    replaced = mt.patch(m, miner, skip={"4"})
                    self.assertEqual(replaced, ["0", "2"])
                    self.assertIsInstance(m[4], nn.Linear)
                    with torch.no_grad():
                        outputs.append(m(x))
                        outputs.append(m(x.unsqueeze(0)).squeeze(0))  # leading dimensions kept
                    stats.append(miner.stats())
                    miner.close(timeout=0.5)
                self.assertGreater(stats[0]["macs_mined"], 0)
                self.assertEqual(stats[1]["macs_mined"], 0)
                for y in outputs[1:]:
                    self.assertTrue(torch.equal(y, outputs[0]), "mining changed the model's output")
                rel = (outputs[0] - y_float).norm() / y_float.norm()
                self.assertLess(rel.item(), 0.05)

    def test_eight_bits_are_exact_int8_arithmetic_and_closer_to_float(self):
        import mlpow.torch as mt

        for device, backend in self.devices():
            with self.subTest(device=device):
                reference = model(2).to(device)
                x = torch.randn(50, 300, device=device)
                with torch.no_grad():
                    y_float = reference(x)
                errors = {}
                for bits in (7, 8):
                    miner = mlpow.Miner.offline("64,64,64,16,32", 16, backend=backend)
                    try:
                        m = model(2).to(device)
                        mt.patch(m, miner, bits=bits)
                        with torch.no_grad():
                            y = m(x)
                            # The layer's integer product is int8 arithmetic, exactly.
                            top = 63 if bits == 7 else 127
                            layer = m[0]
                            x8 = torch.randint(-top - (bits == 7), top + 1, (9, 300), dtype=torch.int8, device=device)
                            want = x8.long() @ layer.w7.long().t()
                            self.assertTrue(torch.equal(layer._product(x8).long(), want), f"{bits} bits")
                        self.assertGreater(miner.stats()["macs_mined"], 0)
                    finally:
                        miner.close(timeout=0.5)
                    errors[bits] = ((y - y_float).norm() / y_float.norm()).item()
                self.assertLess(errors[8], errors[7], f"int8 is closer to float than 7 bits: {errors}")
                self.assertLess(errors[8], 0.02)

    def test_int8_products_split_only_the_sides_that_need_it(self):
        """``_Int8Weight.product``: each side within -64..=63 goes through
        as it is, the others as 7-bit parts; all four cases exact, and what
        mined counts the parts' MACs."""
        import mlpow.torch as mt

        for device, backend in self.devices():
            miner = mlpow.Miner.offline("64,64,64,16,32", 16, backend=backend)
            try:
                g = torch.Generator().manual_seed(3)
                wide = torch.randint(-128, 128, (70, 130), generator=g, dtype=torch.int8).to(device)
                narrow = torch.randint(-64, 64, (70, 130), generator=g, dtype=torch.int8).to(device)
                for w_name, w in (("wide", wide), ("narrow", narrow)):
                    product = mt._Int8Weight(miner)
                    for x_name, x in (("wide", wide[:50]), ("narrow", narrow[:50])):
                        with self.subTest(device=device, w=w_name, x=x_name):
                            before = miner.stats()["macs"]
                            got = product.product(x, w, x_fits7=x_name == "narrow")
                            want = x.long() @ w.long().t()
                            self.assertEqual(got.dtype, torch.int32)
                            self.assertTrue(torch.equal(got.long(), want))
                            parts = (2 if w_name == "wide" else 1) * (2 if x_name == "wide" else 1)
                            self.assertEqual(miner.stats()["macs"] - before, parts * 50 * 130 * 70)
            finally:
                miner.close(timeout=0.5)

    def test_a_weight_changed_in_place_is_registered_again(self):
        import mlpow.torch as mt

        for device, backend in self.devices():
            with self.subTest(device=device):
                miner = mlpow.Miner.offline("64,64,64,16,32", 16, backend=backend)
                try:
                    layer = mt.MiningLinear(nn.Linear(70, 40), miner).to(device)
                    x = torch.randn(5, 70, device=device)
                    with torch.no_grad():
                        before = layer(x)
                        first = layer._weight
                        layer.w7.copy_(layer.w7 // 2)  # in place, as load_state_dict writes
                        after = layer(x)
                        self.assertIsNot(layer._weight, first)
                        self.assertFalse(torch.equal(before, after))
                        # The new output is the new weights' own.
                        fresh = mt.MiningLinear(nn.Linear(70, 40), miner).to(device)
                        for name in ("w7", "s_w", "bias"):
                            getattr(fresh, name).copy_(getattr(layer, name))
                        self.assertTrue(torch.equal(fresh(x), after))
                finally:
                    miner.close(timeout=0.5)

    def test_training_mode_gradients_are_refused(self):
        import mlpow.torch as mt

        miner = mlpow.Miner("ws://127.0.0.1:1")
        try:
            layer = mt.MiningLinear(nn.Linear(8, 4), miner)
            with self.assertRaises(RuntimeError):
                layer(torch.randn(2, 8, requires_grad=True))
        finally:
            miner.close(timeout=0.5)


def on_each_device(run):
    """``run(miners, device)`` on the CPU and, where there is one, on CUDA,
    with ``miners`` a miner that mines (offline, dev-v2 pieces, a winner in
    about 20 nonces) and one without work (the plain path), as
    ``{"mined": .., "plain": ..}``: ``[(device, run's result, the mined
    one's stats)]``."""
    results = []
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        backend = "cuda" if device == "cuda" else "cpu"
        mined = mlpow.Miner.offline("64,64,64,16,32", 320, backend=backend)
        plain = mlpow.Miner("ws://127.0.0.1:1", backend=backend)
        try:
            results.append((device, run({"mined": mined, "plain": plain}, device), mined.stats()))
        finally:
            mined.close(timeout=0.5)
            plain.close(timeout=0.5)
    return results


# The MLPerf Tiny autoencoder's example (clients/python/examples), or the
# copy the GPU bundle carries beside this file.
MLPERF = Path(
    os.environ.get("MLPOW_MLPERF_DIR")
    or Path(__file__).resolve().parents[3] / "clients" / "python" / "examples" / "mlperf_tiny"
)


@unittest.skipIf(torch is None, WHY or "")
@unittest.skipUnless((MLPERF / "torch_model.py").exists(), f"no MLPerf Tiny example at {MLPERF}")
@unittest.skipIf(np is None, "numpy is not installed (the example's model.py needs it)")
class PublishedModel(unittest.TestCase):
    def test_the_mlperf_autoencoder_scores_the_same_mined_or_not(self):
        """The MLPerf Tiny anomaly detector as a PyTorch model, patched: its
        anomaly scores are the same mined and plain, and rank like the int8
        TFLite reference's (what its AUC depends on)."""
        sys.path.insert(0, str(MLPERF))
        import torch_model

        for device, out, mined in on_each_device(lambda miners, device: torch_model.compare(64, miners, device)):
            self.assertGreater(mined["macs_mined"], 0)
            self.assertTrue(np.array_equal(out["mined"], out["plain"]), f"{device}: mining changed the scores")
            rho, rel = out["agreement"]["mined"]
            self.assertGreater(rho, 0.95, f"{device}: rank correlation with the reference")
            self.assertLess(rel, 0.1, f"{device}: relative difference from the reference")


if __name__ == "__main__":
    unittest.main()
