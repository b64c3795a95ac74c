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

Communicators (the same methods; ``communicator(device)`` picks one):

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
import math
import os
import sys
import threading
import time
import traceback

import numpy as np

__all__ = ["SingleProcess", "MPICommunicator", "NCCLCommunicator", "communicator",
           "launched_size", "next_images", "run_other_rank", "failure_ends_all", "nccl_check"]

#: environment variables in which launchers publish the number of processes
#: (Open MPI, MPICH / Intel MPI / srun with PMI, MVAPICH, srun)
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                  "SLURM_STEP_NUM_TASKS")
DEFAULT_TIMEOUT = 1800.0


def launched_size() -> int:
    """How many processes the launcher started (1 when not launched by mpirun or srun)."""
    for name in SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def collective_timeout() -> float:
    """Seconds a collective may wait before the run is aborted ($INPAINTING_COLLECTIVE_TIMEOUT)."""
    text = os.environ.get("INPAINTING_COLLECTIVE_TIMEOUT", "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"INPAINTING_COLLECTIVE_TIMEOUT must be a number of seconds >= 0 "
                         f"(0 = never time out), got {text!r}")
    return value


class SingleProcess:
    """One process, no communication: every method is the identity."""

    rank, size, is_root = 0, 1, True

    def share(self, array, batch_size):
        return array

    def local_batch(self, batch_size):
        return batch_size

    def known_weight(self, mask):
        return 1.0

    def average_gradients(self, grads):
        return grads

    def average_values(self, values):
        return values

    def any(self, flag):
        return bool(flag)

    def sum_host(self, array):
        return array


class _Collectives:
    """What the MPI and NCCL communicators share: batch shares, host reductions, timeouts."""

    def __init__(self, mpi_comm, timeout=None):
        self.mpi = mpi_comm
        self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        self.is_root = self.rank == 0
        self.timeout = collective_timeout() if timeout is None else float(timeout)
        self._since, self._what = None, ""
        if self.timeout > 0:
            threading.Thread(target=self._watch, name="collective-timeout", daemon=True).start()

    # -- shares of the global batch
    def share(self, array, batch_size):
        """This rank's rows of a per-sample array of ``batch_size`` rows; others unchanged.

        (Arrays with one row, such as the release's single mask per batch, are the same for
        every sample and every rank.)"""
        if array.shape[0] != batch_size:
            return array
        local = self.local_batch(batch_size)
        return array[self.rank * local:(self.rank + 1) * local]

    def local_batch(self, batch_size):
        if batch_size % self.size:
            nearest = self.size * max(1, batch_size // self.size)
            raise ValueError(f"batch_size {batch_size} does not split over {self.size} ranks: "
                             f"--batch-size is the global batch and must be a multiple of the "
                             f"number of ranks (e.g. {nearest})")
        return batch_size // self.size

    def known_weight(self, mask):
        """This share's known fraction over the global one (1.0 for a mask shared by all)."""
        from nnlite.backend import get_array_module

        if mask.shape[0] == 1:
            return 1.0
        xp = get_array_module(mask)
        local = float(xp.mean(1.0 - xp.asarray(mask, dtype=xp.float64)))
        total = self.sum_host(np.array([local]))[0] / self.size
        return local / total if total > 0 else 1.0

    # -- small host reductions (loss values, flags)
    def sum_host(self, array):
        """Element-wise sum over ranks of a small NumPy array (a new array)."""
        from mpi4py import MPI

        result = np.ascontiguousarray(array).copy()
        with self.waiting("a host all-reduce"):
            self.mpi.Allreduce(MPI.IN_PLACE, result, op=MPI.SUM)
        return result

    def average_values(self, values):
        """The mean over ranks of a dict of floats (the global batch's loss terms)."""
        total = self.sum_host(np.array(list(values.values()), dtype=np.float64))
        return {name: float(v) / self.size for name, v in zip(values, total)}

    def any(self, flag):
        """True on every rank when ``flag`` is true on any rank (a stop request)."""
        return bool(self.sum_host(np.array([1 if flag else 0], dtype=np.int64))[0])

    # -- gradients
    def average_gradients(self, grads):
        """Mean over ranks of a list of gradients (Tensors, arrays or None), as arrays.

        One flat buffer, one all-reduce; the results are views into it."""
        present = [g for g in grads if g is not None]
        if not present:
            return grads
        from nnlite import Tensor
        from nnlite.backend import get_array_module

        arrays = [g.data if isinstance(g, Tensor) else g for g in present]
        xp = get_array_module(*arrays)
        flat = xp.concatenate([a.ravel() for a in arrays])
        self._allreduce_sum(flat)
        flat *= flat.dtype.type(1.0 / self.size)
        out, offset = [], 0
        for a in arrays:
            out.append(flat[offset:offset + a.size].reshape(a.shape))
            offset += a.size
        averaged = iter(out)
        return [None if g is None else next(averaged) for g in grads]

    # -- failures
    def abort(self, code=1):
        sys.stdout.flush()
        sys.stderr.flush()
        self.mpi.Abort(code)

    @contextlib.contextmanager
    def waiting(self, what):
        """Mark a blocking wait so that the watchdog can abort it after ``timeout`` seconds."""
        self._since, self._what = time.monotonic(), what
        try:
            yield
        finally:
            self._since = None

    def _watch(self):
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            since = self._since
            if since is not None and time.monotonic() - since > self.timeout:
                print(f"rank {self.rank} of {self.size}: {self._what} waited more than "
                      f"{self.timeout:g} s (another rank stopped or hangs); aborting every rank "
                      "(INPAINTING_COLLECTIVE_TIMEOUT sets the limit)", file=sys.stderr,
                      flush=True)
                try:
                    self.abort(1)
                finally:
                    os._exit(1)


class MPICommunicator(_Collectives):
    """Gradients through MPI: NumPy buffers, or CuPy ones staged through the host unless
    ``cuda_aware`` (the MPI library reads device memory itself)."""

    def __init__(self, mpi_comm=None, timeout=None, cuda_aware=None):
        if mpi_comm is None:
            from mpi4py import MPI
            mpi_comm = MPI.COMM_WORLD
        super().__init__(mpi_comm, timeout)
        self.cuda_aware = (os.environ.get("INPAINTING_CUDA_AWARE_MPI", "") == "1"
                           if cuda_aware is None else bool(cuda_aware))

    def _allreduce_sum(self, flat):
        from mpi4py import MPI

        from nnlite.backend import is_cupy_array

        if is_cupy_array(flat) and not self.cuda_aware:
            host = flat.get()
            with self.waiting("the gradient all-reduce (MPI)"):
                self.mpi.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
            flat.set(host)
            return
        if is_cupy_array(flat):
            import cupy
            cupy.cuda.get_current_stream().synchronize()   # MPI reads the finished gradients
        with self.waiting("the gradient all-reduce (MPI)"):
            self.mpi.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)


class NCCLCommunicator(_Collectives):
    """Gradients on device buffers through NCCL; MPI (or nothing, for one rank) for the rest.

    ``mpi_comm=None`` with one process builds a one-rank NCCL communicator (what
    ``nccl_check`` runs on a single GPU)."""

    def __init__(self, mpi_comm=None, timeout=None, nccl=None):
        if nccl is None:
            from cupy.cuda import nccl
        if not getattr(nccl, "available", True):
            raise RuntimeError("CuPy was built without NCCL (cupy.cuda.nccl.available is False): "
                               "install NCCL (pip install nvidia-nccl-cu12) or set "
                               "INPAINTING_GPU_ALLREDUCE=mpi")
        if mpi_comm is None:
            mpi_comm = _OneRank() if launched_size() == 1 else _world()
        super().__init__(mpi_comm, timeout)
        self._nccl_module = nccl
        uid = nccl.get_unique_id() if self.is_root else None
        uid = mpi_comm.bcast(uid, root=0)
        self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)

    def sum_host(self, array):
        if self.size == 1:
            return np.ascontiguousarray(array).copy()
        return super().sum_host(array)

    def _allreduce_sum(self, flat):
        import cupy

        nccl = self._nccl_module
        kinds = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
                 np.dtype(np.float16): nccl.NCCL_FLOAT16}
        if flat.dtype not in kinds:
            raise TypeError(f"NCCL all-reduce: gradients of dtype {flat.dtype} are not supported "
                            f"(expected one of {sorted(str(k) for k in kinds)})")
        stream = cupy.cuda.get_current_stream()
        self.nccl.allReduce(flat.data.ptr, flat.data.ptr, flat.size, kinds[flat.dtype],
                            nccl.NCCL_SUM, stream.ptr)
        with self.waiting("the gradient all-reduce (NCCL)"):
            stream.synchronize()


class _OneRank:
    """The three calls a one-rank NCCL communicator needs, without MPI."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def bcast(self, value, root=0):
        return value

    def Abort(self, code=1):
        os._exit(code)


def _world():
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError(f"this process was launched as one of {launched_size()} ranks, but "
                           "mpi4py is not installed: pip install -e '.[distributed]' (or mpi4py "
                           "built against your cluster's MPI)") from None
    return MPI.COMM_WORLD


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
