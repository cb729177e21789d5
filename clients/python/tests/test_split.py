"""The client's own arithmetic, without a worker: splitting int8 into 7-bit
halves and recombining the blocks gives the exact product."""

import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from mlpow_client import _recombine, matmul_int8_reference, split7  # noqa: E402


class SplitTest(unittest.TestCase):
    def test_halves_are_in_range_and_exact(self):
        x = np.arange(-128, 128, dtype=np.int8).reshape(16, 16)
        hi, lo = split7(x)
        self.assertTrue(hi.min() >= -64 and hi.max() <= 63 and lo.min() >= 0 and lo.max() <= 1)
        np.testing.assert_array_equal(2 * hi.astype(np.int32) + lo, x)
        self.assertEqual(len(split7(x // 2)), 1)

    def test_recombined_blocks_are_the_product(self):
        rng = np.random.default_rng(7)
        for a_range, b_range in [(64, 64), (128, 64), (64, 128), (128, 128)]:
            a = rng.integers(-a_range, a_range, size=(13, 37)).astype(np.int8)
            b = rng.integers(-b_range, b_range, size=(37, 9)).astype(np.int8)
            # The extremes, where the split matters most.
            a[0, :] = -128 if a_range == 128 else -64
            b[:, 0] = 127 if b_range == 128 else 63
            ap, bp = split7(a), split7(b)
            big = matmul_int8_reference(np.vstack(ap), np.hstack(bp)).astype(np.int64)
            got = _recombine(big, a.shape[0], b.shape[1], len(ap), len(bp))
            np.testing.assert_array_equal(got, matmul_int8_reference(a, b))


if __name__ == "__main__":
    unittest.main()
