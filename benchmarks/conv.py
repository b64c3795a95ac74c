"""Speed of nnlite's conv2d on every distinct conv shape of DeepFill v1, as a fraction of sgemm.

    python benchmarks/conv.py                    # batch 8, 256x256 input, 3 repeats
    python benchmarks/conv.py --quick            # batch 2, 2 repeats, fewer shapes (a smoke run)
    python benchmarks/conv.py --batch 4 --size 128 --strategy strided
    python benchmarks/conv.py --memory           # also peak extra memory of one fwd+bwd
    python benchmarks/conv.py --device cuda      # CuPy + cuBLAS on a GPU

Shapes: the generator at cnum=32 (``inpainting.model.networks.gen_conv_table``: 42 convs,
upsample convs at their upsampled size) and both critics at cnum=64 (5x5 stride 2),
deduplicated on (C_in, C_out, kernel, stride, dilation, input size). For each shape,
in one process and interleaved (so that load from other jobs hits both alike):

* ``gemm``: this machine's float32 sgemm (NumPy's BLAS) doing the same FLOPs as the conv,
  as the single product (O, C*KH*KW) @ (C*KH*KW, N*OH*OW) — the ceiling of any
  im2col + GEMM convolution of that shape;
* ``fwd``: ``F.conv2d`` with bias under ``no_grad``;
* ``fwd+bwd``: forward, then backward to input, weight and bias (3x the forward FLOPs);

each the best of at least ``--repeat`` runs (and of 0.5 s of runs), reported in GFLOP/s and as a fraction of ``gemm``.
FLOPs of one conv forward: 2 * N * O * C * KH * KW * OH * OW. The largest square sgemm
(4096^3) is printed too, as the machine's absolute peak.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import nnlite  # noqa: E402,F401  (first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads OpenBLAS)
import numpy as np  # noqa: E402


def deepfill_conv_shapes(size=256):
    """[(label, C_in, C_out, kernel, stride, dilation, input size)] of DeepFill v1, deduplicated."""
    from inpainting.model.networks import GlobalCritic, LocalCritic, gen_conv_table

    shapes = {}
    current = size
    for name, cin, cout, k, s, d, _ in gen_conv_table(32):
        if name in ("xconv1", "pmconv1"):
            current = size
        if name.endswith("_upsample"):
            current *= 2
        shapes.setdefault((cin, cout, k, s, d, current), f"G.{name}")
        current = -(-current // s)
    for critic, crop in ((LocalCritic, size // 2), (GlobalCritic, size)):
        channels = [3] + [64 * m for m in critic.widths]
        for i in range(4):
            key = (channels[i], channels[i + 1], 5, 2, 1, crop >> i)
            shapes.setdefault(key, f"{critic.__name__[0]}D.conv{i + 1}")
    return [(label,) + key for key, label in shapes.items()]


def _no_sync():
    """NumPy runs synchronously: there is nothing to wait for (CuPy passes its own sync)."""


def best_time(fn, repeat, min_seconds=0.5, sync=_no_sync):
    """Best of at least ``repeat`` runs, running on until ``min_seconds`` have been spent.

    The minimum, not the mean: on a shared machine other jobs only ever slow a run down.
    ``sync`` waits for the device (CuPy runs kernels asynchronously).
    """
    fn()
    sync()
    best, spent, runs = float("inf"), 0.0, 0
    while runs < repeat or spent < min_seconds:
        start = time.perf_counter()
        fn()
        sync()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def measure(shape, batch, repeat, rng, min_seconds=0.5, xp=np, sync=_no_sync):
    """(flops, gemm s, fwd s, fwd+bwd s, strategy) for one conv shape, on ``xp``'s device."""
    import nnlite
    import nnlite.functional as F
    from nnlite import Tensor
    from nnlite.kernels.conv_strategy import choose_strategy
    from nnlite.conv_geometry import conv_geometry

    _, cin, cout, k, s, d, size = shape

    def draw(*dims, scale=1.0):
        return xp.asarray(rng.standard_normal(dims, dtype=np.float32) * np.float32(scale))

    x = Tensor(draw(batch, cin, size, size), requires_grad=True)
    w = Tensor(draw(cout, cin, k, k, scale=0.05), requires_grad=True)
    b = Tensor(xp.zeros(cout, np.float32), requires_grad=True)
    g = conv_geometry(x.shape, w.shape, s, "same", d)
    flops = 2.0 * batch * cout * cin * k * k * g.OH * g.OW
    a = draw(cout, cin * k * k)
    cols = draw(cin * k * k, batch * g.OH * g.OW)
    grad_out = Tensor(draw(batch, cout, g.OH, g.OW))

    def forward():
        with nnlite.no_grad():
            F.conv2d(x, w, b, stride=s, padding="same", dilation=d)

    def forward_backward():
        y = F.conv2d(x, w, b, stride=s, padding="same", dilation=d)
        nnlite.grad(y, [x, w, b], grad_out)

    gemm = best_time(lambda: a @ cols, repeat, min_seconds, sync)
    fwd = best_time(forward, repeat, min_seconds, sync)
    both = best_time(forward_backward, repeat, min_seconds, sync)
    gemm = min(gemm, best_time(lambda: a @ cols, repeat, min_seconds, sync))   # after the conv
    return flops, gemm, fwd, both, choose_strategy(g, batch, xp)


def peak_extra_memory(shape, batch, rng):
    """Peak bytes NumPy allocates during one fwd+bwd beyond x, w, b and grad_out (tracemalloc)."""
    import nnlite
    import nnlite.functional as F
    from nnlite import Tensor
    from nnlite.kernels.workspace import release_workspace

    _, cin, cout, k, s, d, size = shape
    x = Tensor(rng.standard_normal((batch, cin, size, size), dtype=np.float32),
               requires_grad=True)
    w = Tensor(rng.standard_normal((cout, cin, k, k), dtype=np.float32), requires_grad=True)
    b = Tensor(np.zeros(cout, np.float32), requires_grad=True)
    out = -(-size // s)
    grad_out = Tensor(rng.standard_normal((batch, cout, out, out), dtype=np.float32))
    release_workspace()
    tracemalloc.start()
    tracemalloc.reset_peak()
    y = F.conv2d(x, w, b, stride=s, padding="same", dilation=d)
    nnlite.grad(y, [x, w, b], grad_out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, x.data.nbytes, grad_out.data.nbytes


def square_sgemm_peak(n=4096, repeat=3, xp=np, sync=_no_sync):
    a = xp.ones((n, n), np.float32)
    return 2.0 * n ** 3 / best_time(lambda: a @ a, repeat, sync=sync) / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="generator input size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="batch 2, 2 repeats, one shape per (kernel, stride, dilation)")
    parser.add_argument("--strategy", choices=["wide", "strided"], default=None,
                        help="force an array strategy (default: chosen per shape)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure the peak extra memory of one fwd+bwd per shape (cpu)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: CuPy arrays, cuBLAS for the gemm, kernels synchronised")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeat = min(args.batch, 2), min(args.repeat, 2)
    min_seconds = 0.0 if args.quick else 0.5

    from nnlite.kernels.conv_strategy import use_strategy

    xp, sync = np, _no_sync
    if args.device == "cuda":
        import nnlite

        if not nnlite.cuda_available():
            parser.error("--device cuda: no CUDA device answers (CuPy installed, GPU present?)")
        import cupy
        xp, sync = cupy, cupy.cuda.Device().synchronize
        if args.memory:
            parser.error("--memory measures NumPy allocations; use it with --device cpu")

    rng = np.random.default_rng(0)
    shapes = deepfill_conv_shapes(args.size)
    if args.quick:
        seen, kept = set(), []
        for shape in shapes:
            if shape[3:6] not in seen:
                seen.add(shape[3:6])
                kept.append(shape)
        shapes = kept
    print(f"nnlite conv2d on {args.device}, float32, batch {args.batch}, generator input {args.size}x{args.size}, "
          f"best of {args.repeat}; load average {os.getloadavg()[0]:.2f}")
    peak = square_sgemm_peak(xp=xp, sync=sync)
    print(f"square sgemm 4096^3 (peak): {peak:.0f} GFLOP/s. Rates in GFLOP/s; fwd% and f+b% "
          "of the same-FLOP gemm, f+b/pk of the peak")
    header = (f"{'layer':<22}{'Cin':>5}{'Cout':>5}{'k':>3}{'s':>3}{'d':>3}{'in':>5}"
              f"{'strategy':>9}{'GFLOP':>7}{'gemm':>7}{'fwd':>7}{'fwd%':>6}"
              f"{'f+b':>7}{'f+b%':>6}{'f+b/pk':>7}")
    print(header)
    worst = (2.0, None)
    with use_strategy(args.strategy):
        for shape in shapes:
            flops, gemm, fwd, both, strategy = measure(shape, args.batch, args.repeat, rng,
                                                       min_seconds, xp, sync)
            rate = flops / gemm / 1e9
            fwd_rate, both_rate = flops / fwd / 1e9, 3 * flops / both / 1e9
            label, cin, cout, k, s, d, size = shape
            print(f"{label:<22}{cin:>5}{cout:>5}{k:>3}{s:>3}{d:>3}{size:>5}{strategy:>9}"
                  f"{flops / 1e9:>7.2f}{rate:>7.0f}{fwd_rate:>7.0f}{fwd_rate / rate:>6.0%}"
                  f"{both_rate:>7.0f}{both_rate / rate:>6.0%}{both_rate / peak:>7.0%}", flush=True)
            worst = min(worst, (both_rate / rate, label))
            if args.memory:
                peak, x_bytes, y_bytes = peak_extra_memory(shape, args.batch, rng)
                print(f"{'':<22}peak extra memory of fwd+bwd: {peak / 2**20:.1f} MiB "
                      f"({peak / x_bytes:.1f} x input, {peak / y_bytes:.1f} x output)")
    print(f"lowest fwd+bwd fraction of the same-FLOP sgemm: {worst[0]:.0%} ({worst[1]}); "
          f"square peak again {square_sgemm_peak(xp=xp, sync=sync):.0f} GFLOP/s; "
          f"load average now {os.getloadavg()[0]:.2f}; "
          f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
