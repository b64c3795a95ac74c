"""Data-parallel training on the CPU: the gradient all-reduce of one iteration, and 1 vs 2 ranks.

    python benchmarks/distributed.py allreduce --ranks 2     # all-reduce time per iteration
    python benchmarks/distributed.py scaling                 # the same run on 1 and 2 ranks

Both modes launch ``mpirun`` themselves (``pip install -e ".[distributed]"``), with
``OPENBLAS_NUM_THREADS=1`` in every rank.

* ``allreduce``: the gradients of one release iteration (batch-independent: the networks at the
  release's widths, cnum 32 / critic 64, 256x256 with a 128x128 box) averaged by
  ``MPICommunicator.average_gradients`` exactly as the trainer calls it: ``critic_steps`` (5)
  critic updates of the critics' parameters and one generator update. Prints the parameter
  counts, the bytes per iteration and the seconds per iteration (median of ``--repeats``).
* ``scaling``: seconds per training iteration (full schedule: 5 critic updates + 1 generator
  update, after one untimed iteration) of one configuration at the same global batch on
  1 rank (1 thread, then nnlite's threads on every core) and on 2 ranks of 1 thread each.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _mpirun(ranks, args, threads):
    mpirun = Path(sys.executable).parent / "mpirun"
    command = [str(mpirun if mpirun.is_file() else "mpirun")]
    version = subprocess.run(command + ["--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version:
        command.append("--oversubscribe")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NNLITE_NUM_THREADS": str(threads),
           "PYTHONPATH": str(ROOT), "OMPI_ALLOW_RUN_AS_ROOT": "1",
           "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    done = subprocess.run(command + ["-n", str(ranks), sys.executable, __file__, *args],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stdout + done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def release_parameters():
    """The three networks at the release's sizes (weights only; nothing runs)."""
    from inpainting.model.networks import GlobalCritic, InpaintGenerator, LocalCritic

    rng = np.random.default_rng(0)
    generator = [p.data for p in InpaintGenerator(32, rng=rng).parameters()]
    critics = [p.data for m in (LocalCritic(64, 128, rng=rng), GlobalCritic(64, 256, rng=rng))
               for p in m.parameters()]
    return generator, critics


def allreduce_worker(repeats):
    from inpainting.training import distributed

    comm = distributed.communicator("cpu")
    generator, critics = release_parameters()
    timings = []
    for _ in range(repeats + 1):
        comm.sum_host(np.zeros(1))                      # start together
        start = time.perf_counter()
        for _ in range(5):
            comm.average_gradients(critics)
        comm.average_gradients(generator)
        timings.append(time.perf_counter() - start)
    counts = [sum(a.size for a in generator), sum(a.size for a in critics)]
    flats = [np.zeros(counts[1], np.float32), np.zeros(counts[0], np.float32)]
    bare = []
    for _ in range(repeats + 1):                         # the MPI call alone, no copies
        comm.sum_host(np.zeros(1))
        start = time.perf_counter()
        for flat in [flats[0]] * 5 + [flats[1]]:
            comm._allreduce_sum(flat)
        bare.append(time.perf_counter() - start)
    volume = (5 * counts[1] + counts[0]) * 4
    return {"ranks": comm.size, "generator_parameters": counts[0],
            "critic_parameters": counts[1], "bytes_per_iteration": volume,
            "seconds_per_iteration": float(np.median(timings[1:])),
            "mpi_seconds_per_iteration": float(np.median(bare[1:]))}


def scaling_worker(iterations, config_values):
    from inpainting.training import distributed
    from inpainting.training.config import TrainConfig
    from inpainting.training.train import Trainer

    comm = distributed.communicator("cpu")
    trainer = Trainer(TrainConfig(**config_values))
    trainer.iteration()                                  # untimed: first-call costs
    comm.sum_host(np.zeros(1))
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.iteration()
    seconds = (time.perf_counter() - start) / iterations
    return {"ranks": comm.size, "seconds_per_iteration": seconds}


SCALING_CONFIG = dict(image_size=128, bbox_size=64, max_delta=8, batch_size=4, cnum=16,
                      critic_cnum=32, out_dir="unused")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["allreduce", "scaling"])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        from inpainting.training import distributed

        result = (allreduce_worker(args.repeats) if args.mode == "allreduce"
                  else scaling_worker(args.iterations, SCALING_CONFIG))
        if distributed.communicator("cpu").is_root:
            print(json.dumps(result))
        return
    if args.mode == "allreduce":
        r = _mpirun(args.ranks, ["allreduce", "--worker", "--repeats", str(args.repeats)], 1)
        print(f"release widths: generator {r['generator_parameters']:,} parameters, critics "
              f"{r['critic_parameters']:,}; per iteration (5 critic + 1 generator all-reduces) "
              f"{r['bytes_per_iteration'] / 1e6:.1f} MB of float32 gradients")
        print(f"{r['ranks']} ranks, MPI on the CPU: {r['seconds_per_iteration'] * 1e3:.0f} ms "
              f"per iteration ({r['bytes_per_iteration'] / r['seconds_per_iteration'] / 1e9:.2f}"
              " GB/s of gradient averaged), of which the MPI_Allreduce calls alone "
              f"{r['mpi_seconds_per_iteration'] * 1e3:.0f} ms")
        return
    settings = ", ".join(f"{k} {v}" for k, v in SCALING_CONFIG.items() if k != "out_dir")
    print(f"training iteration ({settings}; 5 critic + 1 generator updates), "
          f"mean of {args.iterations} after one untimed:")
    base = None
    for ranks, threads in ((1, 1), (1, os.cpu_count() or 1), (2, 1)):
        r = _mpirun(ranks, ["scaling", "--worker", "--iterations", str(args.iterations)],
                    threads)
        base = base or r["seconds_per_iteration"]
        print(f"  {ranks} rank(s) x {threads} nnlite thread(s): "
              f"{r['seconds_per_iteration']:.2f} s per iteration "
              f"(speed-up {base / r['seconds_per_iteration']:.2f} over 1 rank x 1 thread)")


if __name__ == "__main__":
    main()
