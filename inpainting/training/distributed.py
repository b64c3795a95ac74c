"""Data-parallel training: one model, N processes ("ranks"), one global batch.

``mpirun -n N inpainting train ...`` (or ``srun`` under Slurm) starts N copies of the trainer.
Every rank builds the same networks from the same seed and draws every random number a single
process would draw (data order, crops, flips, boxes, holes, gradient-penalty alphas), then keeps
its share of each global batch of B samples: rank r takes samples ``r*B/N .. (r+1)*B/N - 1``
(``share``) and loads only those images (``next_images``). Before every optimizer step, critic
and generator alike, the gradients are summed over the ranks and divided by N (an all-reduce,
``average_gradients``). Every loss of the recipe is a mean over samples, so the mean of the N
share gradients is the gradient of the global batch: the run computes what one process with the
same ``--batch-size`` computes, up to the order of float32 additions, and the weights stay
identical on every rank. (The known-region L1 divides by the known fraction of the batch's
masks; with one mask per sample, ``known_weight`` rescales each share to the global fraction.)

Communicators (the same methods; ``communicator(device)`` picks one; communicators.py):

* ``SingleProcess``: not launched by MPI. Every method returns its input unchanged, so a run
  without ``mpirun`` is exactly the single-process trainer, bit for bit.
* ``MPICommunicator``: mpi4py on NumPy buffers (CPU training). On a GPU it stages device arrays
  through the host, or hands them to MPI directly when the MPI is CUDA-aware
  (``INPAINTING_CUDA_AWARE_MPI=1``).
* ``NCCLCommunicator``: gradients on device buffers through NCCL (``cupy.cuda.nccl``), the
  default on GPUs; MPI still launches the ranks, hands out NCCL's unique id and carries the few
  host numbers (loss values, stop flags).

Failures: ``failure_ends_all`` (around ``inpainting train``) prints the failing rank's error and
calls ``MPI_Abort``, which ends every rank; a rank that waits in a collective for longer than
``INPAINTING_COLLECTIVE_TIMEOUT`` seconds (default 1800; 0 = never) prints what it waited for
and aborts too, so a rank that hangs cannot leave the others waiting forever.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback

import numpy as np

from .communicators import (DEFAULT_TIMEOUT, SIZE_VARIABLES, MPICommunicator,  # noqa: F401
                            NCCLCommunicator, SingleProcess, _world,
                            collective_timeout, launched_size)

__all__ = ["SingleProcess", "MPICommunicator", "NCCLCommunicator", "communicator",
           "launched_size", "next_images", "run_other_rank", "failure_ends_all", "nccl_check"]


_CACHE = {}


def communicator(device="cpu"):
    """The communicator of this process for ``device``: ``SingleProcess`` unless launched as
    several ranks; then MPI on the CPU, NCCL on GPUs ($INPAINTING_GPU_ALLREDUCE=mpi for MPI).

    On GPUs, rank r uses device ``local rank % devices`` of its machine. Built once per process.
    """
    gpu = str(device).lower().startswith(("cuda", "gpu"))
    if launched_size() == 1:
        return SingleProcess()
    kind = (os.environ.get("INPAINTING_GPU_ALLREDUCE", "nccl") if gpu else "mpi").lower()
    if kind not in ("nccl", "mpi"):
        raise ValueError(f"INPAINTING_GPU_ALLREDUCE must be 'nccl' or 'mpi', got {kind!r}")
    if kind not in _CACHE:
        world = _world()
        if world.Get_size() == 1:
            return SingleProcess()
        if gpu:
            from mpi4py import MPI
            import cupy
            local = world.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
            cupy.cuda.Device(local % cupy.cuda.runtime.getDeviceCount()).use()
        _CACHE[kind] = NCCLCommunicator(world) if kind == "nccl" else MPICommunicator(world)
    return _CACHE[kind]


def next_images(dataset, batch_size, comm):
    """This rank's share of the next global batch of ``dataset`` (all of it for one rank).

    An ``ImageDataset`` loads only the share's images (``next_batch_part``); any other dataset
    draws the whole batch and keeps the share."""
    if comm.size == 1:
        return dataset.next_batch(batch_size)
    if not hasattr(dataset, "next_batch_part"):
        return comm.share(dataset.next_batch(batch_size), batch_size)
    local = comm.local_batch(batch_size)
    return dataset.next_batch_part(batch_size, comm.rank * local, (comm.rank + 1) * local,
                                   agree=comm.sum_host)


def run_other_rank(trainer, target):
    """``Trainer.run`` on ranks other than 0: the same iterations and collectives as rank 0,
    with no file, log, figure or progress bar. Returns the last iteration's loss terms."""
    from ..weights.checkpoint import StopRequest

    stop, last = StopRequest(), {}
    with stop.installed():
        while trainer.step < target:
            last = trainer.iteration()
            if trainer.comm.any(stop.requested):    # rank 0 makes the same call
                raise KeyboardInterrupt
    return last


@contextlib.contextmanager
def failure_ends_all(command="inpainting train"):
    """Around a run of several ranks: an exception on one rank prints its message (a
    traceback for an unexpected error) and aborts every rank. Stops that every rank agreed on
    (KeyboardInterrupt after a Ctrl-C or SIGTERM) and SystemExit pass through, and so does
    everything in a process that built no communicator of several ranks."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:
        comm = next(iter(_CACHE.values()), None)
        if comm is None or comm.size == 1:
            raise
        from nnlite.nn import StateDictError

        where = f"rank {comm.rank} of {comm.size}"
        if isinstance(error, (ValueError, OSError, RuntimeError, StateDictError)):
            print(f"{command}: error on {where}: {error}", file=sys.stderr)
        else:
            print(f"{command}: unexpected error on {where}:", file=sys.stderr)
            traceback.print_exc()
        comm.abort(1)


def nccl_check(sizes=(1, 1_000, 4_000_000)):
    """On a GPU: average gradients through a one-rank ``NCCLCommunicator`` (or over every rank
    when launched by mpirun) and compare with the mean computed on the host.

    Returns a dict: ``ok``, ``ranks``, ``max_error`` and ``seconds_per_allreduce`` (float32,
    ``sum(sizes)`` elements). Raises RuntimeError when CuPy, a device or NCCL is missing."""
    from nnlite.backend import cuda_available

    if not cuda_available():
        raise RuntimeError("nccl_check needs CuPy and a CUDA device")
    import cupy

    comm = communicator("cuda") if launched_size() > 1 else NCCLCommunicator()
    if not isinstance(comm, NCCLCommunicator):
        raise RuntimeError("nccl_check: INPAINTING_GPU_ALLREDUCE selects MPI, not NCCL")
    rng = np.random.default_rng(1234)
    host = [[rng.standard_normal(n).astype(np.float32) for n in sizes] for _ in range(comm.size)]
    grads = [cupy.asarray(a) for a in host[comm.rank]]
    averaged = comm.average_gradients(grads)
    expected = [np.mean([host[r][i] for r in range(comm.size)], axis=0)
                for i in range(len(sizes))]
    error = max(float(np.max(np.abs(cupy.asnumpy(a) - e))) for a, e in zip(averaged, expected))
    repeats = 10
    start = time.perf_counter()
    for _ in range(repeats):
        comm.average_gradients(grads)
    seconds = (time.perf_counter() - start) / repeats
    return {"ok": error <= 1e-6, "ranks": comm.size, "max_error": error,
            "seconds_per_allreduce": seconds, "elements": int(sum(sizes))}


if __name__ == "__main__":     # python -m inpainting.distributed, or under mpirun -n GPUS
    import json

    report = nccl_check()
    if launched_size() == 1 or communicator("cuda").is_root:
        print(json.dumps(report))
    sys.exit(0 if report["ok"] else 1)
