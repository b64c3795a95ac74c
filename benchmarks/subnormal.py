"""What subnormal numbers cost contextual attention on a CPU, and what flushing them saves.

    python benchmarks/subnormal.py                          # the attention product alone
    python benchmarks/subnormal.py --before ../old-checkout # + training steps, old vs this

1. The product A @ P of contextual attention's reconstruction (step 8) at the corpus recipe's
   size (batch 8, 128x128 crops: L = 256 cells, 4x4x64 raw patches), with A the masked
   softmax of realistic scores (scale 10), once as computed in exact arithmetic (about 3 %
   of its entries subnormal) and once flushed (``nnlite.functional.flush_denormals``),
   interleaved, in this process (NumPy only).
2. With ``--before PATH`` (a checkout without the flush, e.g. ``git worktree add ../old
   <commit>``): reconstruction-only training iterations of ``training/corpus_cnum16.toml``
   on the bundled data, alternating one process from PATH and one from this checkout, each
   timing ``--iterations`` iterations after two warm-up ones.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import nnlite  # noqa: F401  (first: sets OpenBLAS's thread settings before NumPy loads it)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

STEP = """
import sys, time
try:                                     # this layout, or the flat one before the floors
    from inpainting.training.config import load_config
    from inpainting.training.train import Trainer
except ImportError:
    from inpainting.config import load_config
    from inpainting.train import Trainer
config = load_config(sys.argv[1]).replace(data="demo", data_manifest_sha256="",
                                          out_dir=sys.argv[2], min_crop_scale=0.0)
trainer = Trainer(config)
trainer.iteration(); trainer.iteration()
start = time.perf_counter()
for _ in range(int(sys.argv[3])):
    trainer.iteration()
print((time.perf_counter() - start) / int(sys.argv[3]))
"""


def softmax_with_subnormals(rng, n=8, length=256, scale=10.0):
    """An (n, L, L) float32 attention matrix like the layer's: fused scores are sums of 9
    cosine similarities (in [-9, 9]), modelled as N(0, 1.8) clipped, which gives about the
    share of subnormal entries measured in the corpus run's iterations (1.7-2.7 %)."""
    scores = np.clip(rng.normal(0.0, 1.8, (n, length, length)), -9, 9).astype(np.float32)
    logits = scale * scores
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


def time_product(a, patches, repeats):
    best = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, patches)
        best.append(time.perf_counter() - start)
    return float(np.median(best))


def product(args):
    from nnlite.functional.subnormal import flush_denormals_

    rng = np.random.default_rng(0)
    a = softmax_with_subnormals(rng)
    share = float(((a != 0) & (a < np.finfo(np.float32).tiny)).mean())
    flushed = flush_denormals_(a.copy())
    patches = rng.normal(size=(8, 256, 1024)).astype(np.float32)
    exact, fast = [], []
    for _ in range(args.pairs):
        exact.append(time_product(a, patches, 3))
        fast.append(time_product(flushed, patches, 3))
    difference = float(np.abs(np.matmul(a, patches) - np.matmul(flushed, patches)).max())
    print(f"A @ P, (8, 256, 256) @ (8, 256, 1024) float32, {share:.1%} of A subnormal:")
    print(f"  as computed {np.median(exact) * 1e3:.1f} ms, flushed {np.median(fast) * 1e3:.1f} ms"
          f" (median of {args.pairs} interleaved pairs): {np.median(exact) / np.median(fast):.1f}x;"
          f" largest change of a product entry {difference:.1e}")


def training(args):
    config = ROOT / "training" / "corpus_cnum16.toml"
    times = {"before": [], "after": []}
    for pair in range(args.pairs):
        for name, checkout in (("before", Path(args.before).resolve()), ("after", ROOT)):
            env = dict(os.environ, PYTHONPATH=str(checkout), OPENBLAS_NUM_THREADS="1",
                       NNLITE_NUM_THREADS="1")
            out_dir = Path(args.scratch) / f"{name}_{pair}"
            result = subprocess.run([sys.executable, "-c", STEP, str(config), str(out_dir),
                                     str(args.iterations)], env=env, cwd=checkout,
                                    capture_output=True, text=True, check=True)
            times[name].append(float(result.stdout.strip().splitlines()[-1]))
    before, after = np.median(times["before"]), np.median(times["after"])
    print(f"reconstruction-only iteration, cnum 16, 128x128, batch 8, one thread: before "
          f"{before:.2f} s, after {after:.2f} s (median of {args.pairs} alternating processes "
          f"of {args.iterations} iterations): {before / after:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="interleaved pairs (default 5)")
    parser.add_argument("--before", help="a checkout without the flush: also time training")
    parser.add_argument("--iterations", type=int, default=4,
                        help="--before: timed iterations per process (default 4)")
    parser.add_argument("--scratch", default="/tmp/subnormal_benchmark",
                        help="--before: where the runs' folders go (default /tmp/...)")
    args = parser.parse_args()
    product(args)
    if args.before:
        training(args)


if __name__ == "__main__":
    main()
