"""7-bit quantization (``mlpow.quant``): the formulas' bounds, and a float
layer through the miner giving the same output whether its product mined
or not (the integer product is exact either way), close to the float
layer's own."""

import unittest

import numpy as np

import mlpow
from mlpow import quant


class Quantization(unittest.TestCase):
    def test_values_fit_seven_bits_and_round_to_nearest(self):
        rng = np.random.default_rng(3)
        w = rng.normal(size=(40, 70)).astype(np.float32) * rng.uniform(0.01, 10, size=(40, 1)).astype(np.float32)
        w[5] = 0  # an all-zero channel
        w7, s = quant.quantize_weight(w)
        self.assertEqual(w7.dtype, np.int8)
        self.assertTrue(((w7 >= -64) & (w7 <= 63)).all())
        self.assertEqual(s[5], 1.0)
        self.assertTrue((w7[5] == 0).all())
        # Each channel's largest magnitude maps to 63; every value is within
        # half a step of its own.
        rows = [i for i in range(40) if i != 5]
        self.assertTrue((np.abs(w7[rows]).max(axis=1) == 63).all())
        err = np.abs(w7.astype(np.float32) * s[:, None] - w)
        self.assertTrue((err <= s[:, None] / 2 * (1 + 1e-5)).all())
        x7, sx = quant.quantize_rows(w)
        self.assertTrue(np.array_equal(x7, w7) and np.array_equal(sx, s))


class Int8(unittest.TestCase):
    def test_eight_bit_quantization_uses_the_int8_range(self):
        rng = np.random.default_rng(5)
        w = rng.normal(size=(20, 30)).astype(np.float32)
        w8, s = quant.quantize_weight(w, bits=8)
        self.assertTrue(((w8 >= -127) & (w8 <= 127)).all())
        self.assertTrue((np.abs(w8).max(axis=1) == 127).all())
        with self.assertRaises(ValueError):
            quant.quantize_rows(w, bits=6)

    def test_int8_products_are_exact_through_seven_bit_parts(self):
        rng = np.random.default_rng(6)
        mining = mlpow.Miner.offline("64,64,64,16,32", 16)
        try:
            for a_range, b_range, factor in [((-64, 64), (-64, 64), 1), ((-128, 128), (-64, 64), 2), ((-128, 128), (-128, 128), 4)]:
                a = rng.integers(*a_range, size=(70, 130), dtype=np.int8)
                b = rng.integers(*b_range, size=(130, 50), dtype=np.int8)
                a[0, 0], b[0, 0] = a_range[0], b_range[0]  # the range's ends
                before = mining.stats()["macs"]
                got = mining.matmul_int8(a, b)
                want = a.astype(np.int64) @ b.astype(np.int64)
                self.assertEqual(got.dtype, np.int32)
                self.assertTrue(np.array_equal(got, want), f"{a_range} x {b_range}")
                # The parts go through one product: 1, 2 or 4 times the MACs.
                self.assertEqual(mining.stats()["macs"] - before, factor * 70 * 130 * 50)
            self.assertGreater(mining.stats()["macs_mined"], 0)
            with self.assertRaises(TypeError):
                mining.matmul_int8(a.astype(np.int16), b)
            with self.assertRaises(ValueError):
                mining.matmul_int8(a, b[:5])
        finally:
            mining.close(timeout=0.5)


class ThroughTheMiner(unittest.TestCase):
    def test_a_layers_output_is_the_same_mined_or_not_and_close_to_float(self):
        rng = np.random.default_rng(4)
        x = rng.normal(size=(100, 300)).astype(np.float32)
        w = rng.normal(size=(90, 300)).astype(np.float32) / 17
        bias = rng.normal(size=90).astype(np.float32)
        w7, s_w = quant.quantize_weight(w)
        mining = mlpow.Miner.offline("64,64,64,16,32", 16)
        plain = mlpow.Miner("ws://127.0.0.1:1")
        try:
            weight = mining.register_weight(np.ascontiguousarray(w7.T))
            y_mined = quant.linear(mining, x, w7, s_w, bias, weight=weight)
            y_plain = quant.linear(plain, x, w7, s_w, bias)
            self.assertGreater(mining.stats()["macs_mined"], 0)
            self.assertEqual(plain.stats()["macs_mined"], 0)
        finally:
            mining.close(timeout=0.5)
            plain.close(timeout=0.5)
        self.assertTrue(np.array_equal(y_mined, y_plain), "mining changed the layer's output")
        y_float = x @ w.T + bias
        rel = np.linalg.norm(y_mined - y_float) / np.linalg.norm(y_float)
        self.assertLess(rel, 0.03, f"7-bit error {rel:.4f}")


if __name__ == "__main__":
    unittest.main()
