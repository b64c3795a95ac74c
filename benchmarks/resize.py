"""Backward of the nearest x2 upsampling (the generator's "upsample conv"), two ways.

    python benchmarks/resize.py

``NearestScatter`` sums each run of duplicated pixels back onto its source. For an integer
upscale it adds k strided slices (``_sum_runs``); any other index map uses ``add.reduceat``
plus a scatter. Both are timed here on the same float32 gradients (the shapes of the shipped
model's and the release's upsampling layers at batch 4), with their ratio.
"""
from __future__ import annotations

import time

import nnlite  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads OpenBLAS)
import numpy as np

from nnlite.functional.resize import _sum_runs, _sum_segments


def generic(gy):
    for axis in (2, 3):
        index = np.repeat(np.arange(gy.shape[axis] // 2), 2)
        gy = _sum_segments(gy, axis, index, gy.shape[axis] // 2)
    return gy


def fast(gy):
    return _sum_runs(_sum_runs(gy, 2, 2), 3, 2)


def best(fn, gy, repeat=20):
    fn(gy)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(gy)
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    rng = np.random.default_rng(0)
    for shape in [(4, 32, 64, 64), (4, 16, 128, 128), (4, 64, 128, 128), (4, 32, 256, 256)]:
        gy = rng.standard_normal(shape).astype(np.float32)
        assert np.array_equal(fast(gy), generic(gy))
        a, b = best(generic, gy), best(fast, gy)
        print(f"{str(shape):>18}: reduceat + scatter {a * 1e3:7.2f} ms, "
              f"slices {b * 1e3:6.2f} ms, {a / b:5.1f}x")


if __name__ == "__main__":
    main()
