"""``mlpow.quantized``: layers of models that are quantized already (torch.ao's
dynamic and static linears, torchao's int8 weights) swapped by
``mlpow.torch.patch`` for mining ones, whose outputs are bit for bit their
library's own; and a published int8-weight transformer (all-MiniLM-L6-v2,
as ``scripts/setup-minilm.sh`` fetches it) mining through ``patch(...,
bits=8)`` with the file's own int8 weights. Skipped without torch (CI has
none), torchao, or the MiniLM files, with the reason."""

import os
import sys
import unittest
import warnings
from pathlib import Path

try:
    import torch
    from torch import nn

    WHY = None
except ImportError:  # pragma: no cover - CI has no torch
    torch = None
    WHY = "torch is not installed"

try:
    import torchao  # noqa: F401
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerTensor
except ImportError:
    torchao = None

import mlpow

HERE = Path(__file__).resolve().parent


def net(bias_last=False):
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(300, 128), nn.ReLU(), nn.Linear(128, 90), nn.ReLU(), nn.Linear(90, 10, bias=bias_last)
    )


def miners():
    """A miner that mines (offline, dev-v2 pieces, a winner in ~1 nonce) and
    one without work: the package's plain path."""
    return mlpow.Miner.offline("64,64,64,16,32", 16), mlpow.Miner("ws://127.0.0.1:1")


@unittest.skipIf(torch is None, WHY or "")
class QuantizedLayers(unittest.TestCase):
    def setUp(self):
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        self.mined, self.plain = miners()
        torch.manual_seed(0)
        # Tied values, one-signed rows and tiny ones: the quantizers' edges.
        x = torch.randn(70, 300) * 3
        self.inputs = [x, x.abs(), -x.abs(), torch.zeros(3, 300), x * 1e-6, torch.round(x * 2) / 2]

    def tearDown(self):
        self.mined.close(timeout=0.5)
        self.plain.close(timeout=0.5)

    def same_as_library(self, build, inputs, want):
        """``build()`` a quantized model; patched on either miner, its output
        on every input equals the unpatched model's, and the mined one mined."""
        import mlpow.torch as mt

        reference = build()
        for miner in (self.mined, self.plain):
            model = build()
            self.assertEqual(mt.patch(model, miner), want)
            with torch.no_grad():
                for x in inputs:
                    ref, got = reference(x), model(x)
                    if ref.is_quantized:
                        ref, got = ref.int_repr(), got.int_repr()
                    self.assertTrue(torch.equal(ref, got), f"{miner}: max difference {(ref - got).abs().max()}")
        self.assertGreater(self.mined.stats()["macs_mined"], 0)
        self.assertEqual(self.plain.stats()["macs_mined"], 0)

    def test_torch_ao_dynamic_linears_compute_what_fbgemm_does(self):
        import torch.ao.quantization as tq

        # Weights with a zero point (per tensor, affine) too.
        affine = tq.QConfig(
            activation=tq.default_dynamic_quant_observer,
            weight=tq.MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_affine),
        )
        for spec in ({nn.Linear}, {nn.Linear: tq.per_channel_dynamic_qconfig}, {nn.Linear: affine}):
            with self.subTest(spec=spec):
                self.same_as_library(
                    lambda: tq.quantize_dynamic(net(bias_last=True), spec, dtype=torch.qint8),
                    self.inputs + [x.unsqueeze(0) for x in self.inputs[:1]],  # leading dimensions
                    ["0", "2", "4"],
                )

    def test_torch_ao_static_linears_requantize_as_fbgemm_does(self):
        import torch.ao.quantization as tq

        class Stubbed(nn.Module):
            def __init__(self):
                super().__init__()
                self.q, self.n, self.dq = tq.QuantStub(), net(bias_last=True), tq.DeQuantStub()

            def forward(self, x):
                return self.dq(self.n(self.q(x)))

        engine = torch.backends.quantized.engine
        torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
        try:
            affine = tq.QConfig(
                activation=tq.default_observer,
                weight=tq.MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_affine),
            )
            for qconfig in (tq.get_default_qconfig(torch.backends.quantized.engine), tq.default_qconfig, affine):

                def build():
                    s = Stubbed().eval()
                    s.qconfig = qconfig
                    tq.fuse_modules(s.n, [["0", "1"], ["2", "3"]], inplace=True)  # LinearReLU
                    tq.prepare(s, inplace=True)
                    for x in self.inputs:
                        s(x)
                    return tq.convert(s, inplace=True)

                with self.subTest(qconfig=qconfig):
                    # The last layer's output zero point is not 0 (signed outputs).
                    self.same_as_library(build, self.inputs, ["n.0", "n.2", "n.4"])
        finally:
            torch.backends.quantized.engine = engine

    def test_the_fused_multiply_add_rounds_once(self):
        """``_fma32`` against exact rational arithmetic, on random float32
        triples and on ones built so that rounding the product first
        changes the sum (which fbgemm's compiled code does not)."""
        from fractions import Fraction

        from mlpow.quantized import _fma32

        def exact(a, b, c):
            q = Fraction(a) * Fraction(b) + Fraction(c)
            r = torch.tensor(float(q), dtype=torch.float32)
            best = None
            for cand in (torch.nextafter(r, torch.tensor(-float("inf"))), r, torch.nextafter(r, torch.tensor(float("inf")))):
                d = abs(Fraction(cand.item()) - q)
                even = (cand.view(torch.int32).item() & 1) == 0
                if best is None or d < best[0] or (d == best[0] and even):
                    best = (d, cand.item())
            return best[1]

        g = torch.Generator().manual_seed(5)
        a = torch.randn(3000, generator=g) * 100
        b = torch.randn(3000, generator=g)
        c = torch.randn(3000, generator=g) * 50
        # c cancels most of a*b: the product's own rounding error decides.
        c[:1500] = -(a[:1500] * b[:1500]) + torch.randn(1500, generator=g) * 1e-5
        # Odd a*b of 25 bits is a float32 tie, exact in float64; a tiny c
        # off it is lost by float64's rounding but decides float32's.
        odd = torch.randint(2**11, 2**12, (2, 2000), generator=g) * 2 + 1
        keep = (odd[0] * odd[1] >= 2**24) & (odd[0] * odd[1] < 2**25)
        tie_a, tie_b = odd[0][keep].float(), odd[1][keep].float()
        sign = torch.where(torch.rand(tie_a.shape, generator=g) < 0.5, -1.0, 1.0)
        a, b, c = torch.cat([a, tie_a]), torch.cat([b, tie_b]), torch.cat([c, sign * 2.0**-40])
        got = _fma32(a, b, c)
        want = torch.tensor([exact(x, y, z) for x, y, z in zip(a.tolist(), b.tolist(), c.tolist())])
        self.assertTrue(torch.equal(got, want))
        self.assertFalse(torch.equal(a * b + c, want), "the cases include ones where two roundings differ")

    def test_what_is_not_mined_is_left_to_the_library(self):
        """Fused kinds other than LinearReLU and other engines' layers are
        not taken; an empty batch and non-finite input give the library's
        own output; a refused layer leaves the model as it was."""
        import torch.ao.nn.intrinsic.quantized as nniq
        import torch.ao.quantization as tq

        import mlpow.torch as mt
        from mlpow.quantized import quantized_kind

        class Tanh(nniq.LinearReLU):  # a subclass computes more than a linear
            pass

        self.assertIsNone(quantized_kind(Tanh(8, 4)))
        engine = torch.backends.quantized.engine
        try:
            torch.backends.quantized.engine = "qnnpack"
            self.assertIsNone(quantized_kind(tq.quantize_dynamic(net(), {nn.Linear}, dtype=torch.qint8)[0]))
        finally:
            torch.backends.quantized.engine = engine
        reference = tq.quantize_dynamic(net(bias_last=True), {nn.Linear}, dtype=torch.qint8)
        model = tq.quantize_dynamic(net(bias_last=True), {nn.Linear}, dtype=torch.qint8)
        mt.patch(model, self.mined)
        infinite, nan = self.inputs[0][:2].clone(), self.inputs[0][:2].clone()
        infinite[1, 1], nan[0, 0] = -float("inf"), float("nan")
        def run(layer, x):
            try:
                return layer(x)
            except RuntimeError as e:  # fbgemm refuses NaN and an empty batch: so must its miner
                return e

        with torch.no_grad():
            for x in (torch.zeros(0, 300), infinite, nan):
                ref, got = run(reference, x), run(model, x)
                if isinstance(ref, Exception):
                    self.assertIsInstance(got, RuntimeError)
                else:
                    self.assertTrue(torch.equal(ref.nan_to_num(), got.nan_to_num()))
            with self.assertRaises(TypeError):
                model(self.inputs[0].double())

    def test_a_static_layer_refuses_a_float_input(self):
        import torch.ao.nn.quantized as nnq

        from mlpow.quantized import MiningStaticLinear

        layer = MiningStaticLinear(nnq.Linear(8, 4), self.plain)
        with self.assertRaises(TypeError):
            layer(torch.randn(2, 8))

    @unittest.skipIf(torchao is None, "torchao is not installed")
    def test_torchao_int8_layers_compute_what_torchao_does(self):
        for config in (Int8DynamicActivationInt8WeightConfig(), Int8DynamicActivationInt8WeightConfig(granularity=PerTensor())):
            for dtype in (torch.float32, torch.bfloat16):

                def build():
                    m = net().to(dtype)
                    quantize_(m, config)
                    return m

                with self.subTest(config=config, dtype=dtype):
                    self.same_as_library(build, [x.to(dtype) for x in self.inputs], ["0", "2", "4"])

    @unittest.skipIf(torchao is None, "torchao is not installed")
    def test_torchao_weight_only_layers_mine_as_the_dynamic_form(self):
        import mlpow.torch as mt

        dynamic, weight_only = net(), net()
        quantize_(dynamic, Int8DynamicActivationInt8WeightConfig())
        quantize_(weight_only, Int8WeightOnlyConfig())
        mt.patch(weight_only, self.mined)
        x = self.inputs[0]
        with torch.no_grad():
            self.assertTrue(torch.equal(weight_only(x), dynamic(x)))
        self.assertIn("weight-only", repr(weight_only[0]))


def minilm_source():
    """The example's weights and data (``$MLPOW_MINILM_NPZ``, or the packages
    that ``scripts/setup-minilm.sh`` unpacks), or None and why not."""
    sys.path.insert(0, str(HERE.parent / "examples"))
    sys.path.insert(0, str(HERE))  # the GPU bundle carries the example beside this file
    try:
        import minilm_data

        return minilm_data.read(), None
    except (ImportError, FileNotFoundError) as e:
        return None, f"no MiniLM: {e} (bash scripts/setup-minilm.sh, then MLPOW_MINILM_DIR and PYTHONPATH)"


@unittest.skipIf(torch is None, WHY or "")
class PublishedTransformer(unittest.TestCase):
    def test_minilm_int8_embeds_the_same_mined_or_not(self):
        """all-MiniLM-L6-v2's 36 int8 weight matmuls, mining: its own int8
        weights; embeddings identical mined and plain, close to the
        reference's (the file's arithmetic), classified as it classifies."""
        source, why = minilm_source()
        if source is None:
            self.skipTest(why)
        import minilm_int8

        from test_torch import on_each_device

        for device, out, mined in on_each_device(lambda miners, device: minilm_int8.compare(miners, 1, device, source)):
            self.assertGreater(mined["macs_mined"], 0)
            self.assertTrue(out["weights_exact"], "the mining layers' weights are the file's int8")
            e = out["embeddings"]
            self.assertTrue((e["mined"] == e["plain"]).all(), f"{device}: mining changed the embeddings")
            self.assertGreater(out["lowest_cosine_to_reference"]["mined"], 0.99)
            # One query per benchmark: (nearly) each classified as the reference classifies it.
            self.assertGreaterEqual(out["same_predictions"]["mined"], 0.9)


if __name__ == "__main__":
    unittest.main()
