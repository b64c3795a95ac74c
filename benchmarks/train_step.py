"""Seconds per training iteration and per inference, with FLOPs and the fraction of sgemm peak.

    python benchmarks/train_step.py                      # release widths, CPU
    python benchmarks/train_step.py --quick              # cnum 16, 128x128, batch 2
    python benchmarks/train_step.py --device cuda        # through CuPy on a GPU
    python benchmarks/train_step.py --device fake --quick --skip-inference
                                  # GPU code path on the fake device: what each iteration costs
    python benchmarks/train_step.py --quick --skip-inference --compare-pruning
                                  # iterations with and without gradient pruning, interleaved

Measures, in one process (NumPy only — never time another BLAS library here):

* the float32 sgemm peak of this machine (one large matmul), GFLOP/s;
* inference of ``InpaintGenerator`` at 256x256 and 512x512 (batch 1), seconds and
  GFLOP/s (FLOPs counted from the layer table: 2 * MACs of every conv plus the
  attention's two matrix products);
* one training iteration (``critic_steps`` critic updates + 1 generator update)
  at the chosen batch and size, seconds.

On ``--device fake`` (``nnlite.fake_device``) the seconds mean nothing; it prints, per
iteration and per inference, what would cost on a GPU: host synchronisations,
kernel-launching ops, bytes moved each way and single-scalar uploads.
"""
from __future__ import annotations

import argparse
import time

import nnlite  # first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads OpenBLAS
import numpy as np


def conv_flops(cnum, size):
    """2 * multiply-adds of every generator conv at a square input of ``size``."""
    from inpainting.model.networks import gen_conv_table

    total, side = 0, size
    for name, cin, cout, k, s, d, _ in gen_conv_table(cnum):
        if name in ("xconv1", "pmconv1"):
            side = size
        if name.endswith("_upsample"):
            side *= 2
        side = -(-side // s)
        total += 2 * cin * cout * k * k * side * side
    return total


def attention_flops(cnum, size):
    """Scores (L x L x 9C) and reconstruction (L x L x 16C) matrix products, L = (size/8)^2."""
    positions = (size // 8) ** 2
    channels = 4 * cnum
    return 2 * positions * positions * channels * (9 + 16)


def sgemm_peak(xp, seconds=1.0):
    n = 2048
    a = xp.ones((n, n), np.float32)
    b = xp.ones((n, n), np.float32)
    a @ b
    _sync(xp)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    _sync(xp)
    return 2 * n ** 3 * count / (time.perf_counter() - start) / 1e9


def _sync(xp):
    if xp is nnlite.backend.cupy and xp is not None:
        xp.cuda.Device().synchronize()


def best_time(fn, repeat, xp):
    fn()
    _sync(xp)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(xp)
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cnum", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="training image size")
    parser.add_argument("--batch", type=int, default=16, help="training batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="cnum 16, 128x128, batch 2")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-inference", action="store_true")
    parser.add_argument("--iterations", type=int, default=3,
                        help="--device fake: iterations whose counts are printed")
    parser.add_argument("--compare-pruning", action="store_true",
                        help="time iterations with gradient pruning on and off, interleaved")
    parser.add_argument("--pairs", type=int, default=5,
                        help="--compare-pruning: (off, on) pairs of iterations (default 5)")
    parser.add_argument("--tf32", action="store_true",
                        help="cuda: TF32 matmuls (nnlite.set_tf32)")
    parser.add_argument("--malloc-defaults", action="store_true",
                        help="keep glibc's malloc settings (default: nnlite.kernels.memory.reuse_freed_memory)")
    args = parser.parse_args()
    from nnlite.kernels.memory import reuse_freed_memory

    reused = not args.malloc_defaults and reuse_freed_memory()
    print(f"allocator: {'freed memory reused (nnlite.kernels.memory)' if reused else 'glibc defaults'}; "
          f"nnlite threads: {nnlite.get_num_threads()}")
    if args.quick:
        args.cnum, args.size, args.batch, args.repeat = 16, 128, 2, 1

    from inpainting.training.config import TrainConfig
    from inpainting.model.inference import inpaint
    from inpainting.model.networks import InpaintGenerator
    from inpainting.training.train import Trainer

    if args.device == "fake":
        return count_fake(args)
    if args.tf32:
        nnlite.set_tf32(True)
    xp = np if args.device == "cpu" else nnlite.backend.cupy
    peak = sgemm_peak(xp)
    print(f"device {args.device}; float32 sgemm peak {peak:.1f} GFLOP/s")
    generator = InpaintGenerator(args.cnum).to(args.device)
    rng = np.random.default_rng(0)
    for size in () if args.skip_inference else ((256, 512) if not args.quick else (128, 256)):
        image = xp.asarray(rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32))
        mask = xp.zeros((1, 1, size, size), np.float32)
        mask[..., size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
        seconds = best_time(lambda: inpaint(generator, image, mask), args.repeat, xp)
        flops = conv_flops(args.cnum, size) + attention_flops(args.cnum, size)
        print(f"inference {size}x{size} cnum {args.cnum}: {seconds:.3f} s, "
              f"{flops / 1e9:.1f} GFLOP, {flops / seconds / 1e9:.1f} GFLOP/s = "
              f"{flops / seconds / 1e9 / peak:.0%} of sgemm peak")
    if args.skip_train:
        return
    config = TrainConfig(data="demo", image_size=args.size, bbox_size=args.size // 2,
                         max_delta=args.size // 16, batch_size=args.batch, cnum=args.cnum,
                         device=args.device, out_dir="/tmp/deepfill_bench")
    trainer = Trainer(config)
    if args.compare_pruning:
        return compare_pruning(trainer, args.pairs)
    seconds = best_time(trainer.iteration, args.repeat, xp)
    g = conv_flops(args.cnum, args.size) + attention_flops(args.cnum, args.size)
    # critic steps: 5 generator forwards; generator step: forward + backward (~3x forward).
    generator_flops = args.batch * g * (config.critic_steps + 3)
    print(f"training iteration (5 critic + 1 generator updates), batch {args.batch}, "
          f"{args.size}x{args.size}, cnum {args.cnum}: {seconds:.2f} s; generator FLOPs alone "
          f"{generator_flops / 1e9:.0f} GFLOP -> at least {generator_flops / seconds / 1e9:.1f} "
          f"GFLOP/s = {generator_flops / seconds / 1e9 / peak:.0%} of peak (critics not counted)")


def _config(args, device):
    from inpainting.training.config import TrainConfig

    return TrainConfig(data="demo", image_size=args.size, bbox_size=args.size // 2,
                       max_delta=args.size // 16, batch_size=args.batch, cnum=args.cnum,
                       device=device, out_dir="/tmp/deepfill_bench")


def count_fake(args):
    """Per-iteration (and per-inference) counts of what would cost on a GPU."""
    from nnlite.fake_device import counters
    from inpainting.model.inference import inpaint
    from inpainting.model.networks import InpaintGenerator
    from inpainting.training.train import Trainer

    def show(label, counts):
        print(f"{label}: {counts['host_syncs']} host syncs, {counts['launches']} kernel-launching "
              f"ops, {counts['bytes_to_device'] / 1e6:.2f} MB to device, "
              f"{counts['bytes_to_host']} B to host, {counts['scalar_uploads']} scalar uploads")

    print(f"fake device (CuPy semantics on NumPy): cnum {args.cnum}, {args.size}x{args.size}, "
          f"batch {args.batch}")
    if not args.skip_inference:
        generator = InpaintGenerator(args.cnum).to("fake")
        size = args.size
        image = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        mask = np.zeros((1, 1, size, size), np.float32)
        mask[..., size // 4:3 * size // 4, size // 4:3 * size // 4] = 1
        for run in range(2):
            counters.reset()
            inpaint(generator, nnlite.backend.to_device(image, "fake"),
                    nnlite.backend.to_device(mask, "fake"))
            show(f"inference {size}x{size} (run {run + 1}, inputs uploaded)", counters.snapshot())
    if args.skip_train:
        return
    trainer = Trainer(_config(args, "fake"))
    for i in range(args.iterations):
        counters.reset()
        trainer.iteration()
        show(f"training iteration {i + 1} ({trainer.config.critic_steps} critic + 1 generator "
             "updates, batches uploaded)", counters.snapshot())


def compare_pruning(trainer, pairs):
    """Seconds per iteration with gradient pruning on and off, alternating (same trainer)."""
    from nnlite.autograd import gradient_pruning

    trainer.iteration()   # warm-up
    times = {True: [], False: []}
    for _ in range(pairs):
        for enabled in (False, True):
            with gradient_pruning(enabled):
                start = time.perf_counter()
                trainer.iteration()
                times[enabled].append(time.perf_counter() - start)
    for enabled in (False, True):
        t = times[enabled]
        print(f"pruning {'on ' if enabled else 'off'}: " + " ".join(f"{v:.2f}" for v in t)
              + f" s (min {min(t):.2f}, median {sorted(t)[len(t) // 2]:.2f})")
    ratios = [on / off for on, off in zip(times[True], times[False])]
    print(f"on/off per pair: {min(ratios):.3f}-{max(ratios):.3f}; "
          f"min/min {min(times[True]) / min(times[False]):.3f}")


if __name__ == "__main__":
    main()
