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
