"""Speed and peak memory of contextual attention: direct vs chunked (memory-bounded) mode.

    python benchmarks/contextual_attention.py                   # 128x128 features, C=128
    python benchmarks/contextual_attention.py --size 64 --channels 64 --repeat 1

Runs ``contextual_attention`` under ``no_grad`` in float32 on one image with the model's
call (f = b, rate 2, a centred hole covering a quarter of the area) and reports, per mode,
the median seconds and the peak bytes of NumPy buffers allocated during the call
(``tracemalloc``, which NumPy reports to), the rows R1 each chunk scores (chunk + halo,
at most R + 2w + 4) and the largest difference from the direct result.
Time and memory are measured in separate runs (tracing slows NumPy down).
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import nnlite  # noqa: F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads OpenBLAS)
import numpy as np


def run(size, channels, chunk_sizes, repeat, seed=0):
    import nnlite
    from inpainting.model.attention import contextual_attention
    from nnlite import Tensor

    rng = np.random.default_rng(seed)
    features = Tensor(np.maximum(rng.standard_normal((1, channels, size, size)), 0)
                      .astype(np.float32))          # pmconv6 is a ReLU output
    mask = np.zeros((1, 1, size, size), np.float32)
    mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    length = (size // 2) ** 2
    rows = []
    reference = None
    for chunk in chunk_sizes:
        with nnlite.no_grad():
            contextual_attention(features, features, mask, chunk_size=chunk)   # warm-up
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                y, _ = contextual_attention(features, features, mask, chunk_size=chunk)
                times.append(time.perf_counter() - start)
            tracemalloc.start()
            tracemalloc.reset_peak()
            contextual_attention(features, features, mask, chunk_size=chunk)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        if reference is None:
            reference = y.data
        error = float(np.abs(y.data - reference).max())
        rows.append((chunk, float(np.median(times)), peak, error))
    print(f"features {size}x{size}x{channels}, rate 2: L = {length}, "
          f"L*L*4 = {length * length * 4 / 2**20:.1f} MiB")
    print(f"{'chunk_size':>10} {'rows R1':>8} {'seconds':>8} {'vs direct':>9} "
          f"{'peak MiB':>9} {'max |dy|':>9}")
    base = rows[0][1]
    half_w = size // 2
    for chunk, seconds, peak, error in rows:
        scored = length if chunk is None else min(chunk + 2 * half_w + 4, length)
        print(f"{str(chunk):>10} {scored:8d} {seconds:8.3f} {seconds / base:9.2f} "
              f"{peak / 2**20:9.1f} {error:9.1e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128, help="feature map side (H = W)")
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunks", type=str, default="none,2048,1024,512,256",
                        help="comma-separated chunk sizes; 'none' = direct")
    args = parser.parse_args(argv)
    chunks = [None if c.strip() == "none" else int(c) for c in args.chunks.split(",")]
    run(args.size, args.channels, chunks, args.repeat)


if __name__ == "__main__":
    main()
