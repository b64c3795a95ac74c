"""The communicators of data-parallel training (``distributed.py``): how N ranks split a global
batch, sum small host arrays and average their gradients. Each has the same methods
(``share``, ``local_batch``, ``known_weight``, ``average_gradients``, ``average_values``,
``any``, ``sum_host``); ``distributed.communicator(device)`` picks one.

* ``SingleProcess``: not launched by MPI. Every method returns its input unchanged, so a run
  without ``mpirun`` is exactly the single-process trainer, bit for bit.
* ``MPICommunicator``: mpi4py on NumPy buffers (CPU training). On a GPU it stages device arrays
  through the host, or hands them to MPI directly when the MPI is CUDA-aware
  (``INPAINTING_CUDA_AWARE_MPI=1``).
* ``NCCLCommunicator``: gradients on device buffers through NCCL (``cupy.cuda.nccl``), the
  default on GPUs; MPI still launches the ranks, hands out NCCL's unique id and carries the few
  host numbers (loss values, stop flags).

A rank that waits in a collective for longer than ``INPAINTING_COLLECTIVE_TIMEOUT`` seconds
(default 1800; 0 = never) prints what it waited for and aborts every rank.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time

import numpy as np

__all__ = ["SingleProcess", "MPICommunicator", "NCCLCommunicator", "launched_size",
           "collective_timeout"]

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
