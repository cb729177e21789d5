"""Tensors taken through DLPack by the `mlpow` extension.

numpy exports both capsule kinds (`dltensor_versioned`, asked for with
``max_version=(1, 0)``, and the older `dltensor`), so the parsing a CUDA
tensor goes through is tested here on CPU arrays: shapes, strides in
elements, byte offsets of views, dtypes, read-only arrays, the deleter run
exactly once (nothing leaked, nothing freed twice), and the refusals.
``matmul_device`` refuses host memory with the reason before anything is
read. The same calls on CUDA tensors are tests/test_cuda.py (GPU machine).
"""

import sys
import unittest

import numpy as np

from mlpow import _native


def address(x):
    return x.__array_interface__["data"][0]


class Legacy:
    """A producer older than DLPack 1.0: no ``max_version``."""

    def __init__(self, x):
        self.x = x

    def __dlpack__(self, stream=None):
        return self.x.__dlpack__(stream=stream)


class Used:
    """A producer that hands out a capsule already consumed."""

    def __init__(self, x):
        self.x = x

    def __dlpack__(self, stream=None, max_version=None):
        capsule = self.x.__dlpack__()
        np.from_dlpack(_Capsule(capsule))
        return capsule


class _Capsule:
    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


class Describe(unittest.TestCase):
    def test_layouts_are_read_as_the_producer_gives_them(self):
        x = np.arange(-60, 60, dtype=np.int8).reshape(10, 12)
        d = _native.dlpack_describe(x, 8)
        self.assertEqual(d["device"], (1, 0))
        self.assertEqual(d["shape"], (10, 12))
        self.assertEqual(d["strides"], (12, 1))
        self.assertEqual(d["dtype"], (0, 8, 1))
        self.assertEqual(d["address"], address(x))
        self.assertTrue(d["versioned"])
        self.assertFalse(d["read_only"])
        # A transposed view: the same memory, strides swapped.
        t = _native.dlpack_describe(x.T, 8)
        self.assertEqual((t["shape"], t["strides"], t["address"]), ((12, 10), (1, 12), address(x)))
        # A window: its first element's address (data + byte_offset).
        w = _native.dlpack_describe(x[3:, 5:], 8)
        self.assertEqual((w["shape"], w["strides"]), ((7, 7), (12, 1)))
        self.assertEqual(w["address"], address(x) + 3 * 12 + 5)
        # Every other column: a stride of 2 elements.
        self.assertEqual(_native.dlpack_describe(x[:, ::2], 8)["strides"], (12, 2))
        # int32, strides still in elements.
        c = np.zeros((4, 6), dtype=np.int32)
        self.assertEqual(_native.dlpack_describe(c, 32)["strides"], (6, 1))
        # A dimension of size 1: its stride says nothing (PyTorch exports 1),
        # and is read as a compact row or column.
        row = np.lib.stride_tricks.as_strided(x, shape=(1, 12), strides=(1, 1))
        self.assertEqual(_native.dlpack_describe(row, 8)["strides"], (12, 1))
        col = np.lib.stride_tricks.as_strided(x, shape=(10, 1), strides=(12, 7))
        self.assertEqual(_native.dlpack_describe(col, 8)["strides"], (12, 1))
        # An older producer's capsule.
        legacy = _native.dlpack_describe(Legacy(x), 8)
        self.assertFalse(legacy["versioned"])
        self.assertEqual(legacy["shape"], (10, 12))

    def test_read_only_arrays_say_so(self):
        x = np.zeros((3, 3), dtype=np.int8)
        x.flags.writeable = False
        self.assertTrue(_native.dlpack_describe(x, 8)["read_only"])

    def test_the_producers_reference_is_released_once(self):
        x = np.zeros((64, 64), dtype=np.int8)
        before = sys.getrefcount(x)
        for _ in range(100):
            _native.dlpack_describe(x, 8)
            _native.dlpack_describe(x.T, 8)
        self.assertEqual(sys.getrefcount(x), before)
        # Refused after the capsule was taken: released all the same.
        for _ in range(100):
            with self.assertRaises(TypeError):
                _native.dlpack_describe(x, 32)
        self.assertEqual(sys.getrefcount(x), before)

    def test_what_is_not_a_matrix_of_the_type_is_refused_by_name(self):
        x = np.zeros((4, 4), dtype=np.int8)
        cases = [
            (np.zeros((4, 4), dtype=np.float32), 8, TypeError, "int8"),
            (np.zeros((4, 4), dtype=np.uint8), 8, TypeError, "int8"),
            (np.zeros((4, 4), dtype=np.int16), 8, TypeError, "int8"),
            (x, 32, TypeError, "int32"),
            (np.zeros((2, 3, 4), dtype=np.int8), 8, ValueError, "3 dimensions"),
            (np.zeros(5, dtype=np.int8), 8, ValueError, "1 dimensions"),
            (np.zeros((0, 4), dtype=np.int8), 8, ValueError, "empty"),
            (x[::-1], 8, ValueError, "negative strides"),
            ([[1, 2], [3, 4]], 8, TypeError, "DLPack"),
            (Used(x), 8, ValueError, "already used"),
        ]
        for obj, bits, error, words in cases:
            with self.subTest(words=words):
                with self.assertRaises(error) as caught:
                    _native.dlpack_describe(obj, bits)
                self.assertIn(words, str(caught.exception))


class DeviceProducts(unittest.TestCase):
    def test_host_memory_is_refused_by_matmul_device_with_the_reason(self):
        miner = _native.Miner("ws://127.0.0.1:1", backend="cpu")
        try:
            a = np.zeros((4, 6), dtype=np.int8)
            b = np.zeros((6, 5), dtype=np.int8)
            out = np.zeros((4, 5), dtype=np.int32)
            with self.assertRaises(ValueError) as caught:
                miner.matmul_device(a, b, out)
            self.assertIn("host memory", str(caught.exception))
            self.assertIn("matmul_device and register_weight_device take tensors on the miner's GPU", str(caught.exception))
            self.assertEqual(miner.stats()["calls"], 0)
            # A stream is not given to host memory's producer (numpy refuses
            # one), and a stream of 0 means nothing.
            with self.assertRaises(ValueError) as caught:
                miner.matmul_device(a, b, out, 5)
            self.assertIn("host memory", str(caught.exception))
            with self.assertRaises(ValueError) as caught:
                miner.matmul_device(a, b, out, 0)
            self.assertIn("stream", str(caught.exception))
            before = sys.getrefcount(a)
            for _ in range(50):
                with self.assertRaises(ValueError):
                    miner.matmul_device(a, b, out)
            self.assertEqual(sys.getrefcount(a), before)
        finally:
            miner.close(timeout=0.5)


if __name__ == "__main__":
    unittest.main()
