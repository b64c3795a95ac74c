"""Spread large NumPy copies and elementwise passes over the CPU cores.

OpenBLAS runs each GEMM on every core, but NumPy runs every other loop on one: the
im2col copies, the layout changes around each GEMM and the activations. On this
project's 2-core machines those single-core passes were a third of a 512x512
inpainting. NumPy releases the GIL inside such loops, so independent slices of one
pass can run at the same time from a small thread pool:

    parallel_slices(lambda lo, hi: out[lo:hi] = ..., count=channels, nbytes=out.nbytes)

Rules that keep it safe and cheap:

* every slice writes a disjoint part of the output (the callers split along channels
  or along a flat array), so there is nothing to lock;
* passes smaller than ``MIN_PARALLEL_BYTES`` run inline: waking threads costs more;
* CuPy arrays never come here (their work is already parallel on the device); the
  callers pass ``xp`` and the helper runs inline for anything but NumPy;
* ``set_num_threads(1)`` (or ``NNLITE_NUM_THREADS=1`` before import) turns it off,
  e.g. when several processes share the cores. The default is the number of cores
  this process may run on.

The work a slice does is ordinary NumPy, so results are bit-identical to one pass.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["parallel_slices", "set_num_threads", "get_num_threads", "min_parallel_bytes",
           "MIN_PARALLEL_BYTES"]

#: passes touching fewer bytes than this run on the calling thread
MIN_PARALLEL_BYTES = 4 << 20

_state = {"threads": None, "pool": None, "min_bytes": None}   # min_bytes None: the constant
_lock = threading.Lock()


def _default_threads() -> int:
    value = os.environ.get("NNLITE_NUM_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"NNLITE_NUM_THREADS must be a positive integer, got {value!r}") \
                from None
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """Threads used for NumPy copies and elementwise passes (1 = no threading)."""
    if _state["threads"] is None:
        _state["threads"] = _default_threads()
    return _state["threads"]


def set_num_threads(count: int) -> None:
    """Use ``count`` threads for NumPy copies and elementwise passes (like torch.set_num_threads)."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"set_num_threads: count must be a positive integer, got {count!r}")
    with _lock:
        if _state["pool"] is not None:
            _state["pool"].shutdown(wait=True)
        _state["threads"], _state["pool"] = int(count), None


@contextlib.contextmanager
def min_parallel_bytes(nbytes: int):
    """Thread every pass touching at least ``nbytes`` bytes inside the block (0: every pass),
    instead of ``MIN_PARALLEL_BYTES``: tests of the threaded path on small arrays. The
    number of threads is still ``get_num_threads()``; results never depend on either."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"min_parallel_bytes: nbytes must be an int >= 0, got {nbytes!r}")
    previous = _state["min_bytes"]
    _state["min_bytes"] = int(nbytes)
    try:
        yield
    finally:
        _state["min_bytes"] = previous


def _forget_pool_in_child():
    """A forked child has none of the parent's pool threads: start a new pool when needed."""
    _state["pool"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _pool() -> ThreadPoolExecutor:
    with _lock:
        if _state["pool"] is None:       # the calling thread is the other worker
            _state["pool"] = ThreadPoolExecutor(get_num_threads() - 1,
                                                thread_name_prefix="nnlite")
        return _state["pool"]


def parallel_slices(work, count: int, *, nbytes: int, xp=np) -> None:
    """Call ``work(lo, hi)`` on contiguous ranges covering ``range(count)``, in parallel.

    ``work`` must write disjoint outputs for disjoint ranges. Runs ``work(0, count)``
    inline for CuPy, for passes under ``MIN_PARALLEL_BYTES`` (``nbytes``: about how
    many bytes the pass touches; ``min_parallel_bytes`` changes the bound), with one thread, or from inside a pool thread.
    """
    threads = min(get_num_threads(), count)
    limit = MIN_PARALLEL_BYTES if _state["min_bytes"] is None else _state["min_bytes"]
    if (xp is not np or threads <= 1 or nbytes < limit
            or threading.current_thread().name.startswith("nnlite")):
        work(0, count)
        return
    bounds = [count * k // threads for k in range(threads + 1)]
    futures = [_pool().submit(work, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
    try:
        work(bounds[0], bounds[1])        # the calling thread takes the first range
    finally:
        for future in futures:
            future.result()               # re-raises a worker's exception here
