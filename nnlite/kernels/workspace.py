"""Pooled scratch buffers for the convolution kernels (NumPy only).

A conv's temporaries (padded input, im2col columns, GEMM results before the
layout change) are large: 151 MB of columns for a 3x3 conv with C = 128 on
8 x 64 x 64 inputs. NumPy hands out every buffer of 32 MB or more as a fresh
``mmap``, and touching it the first time costs page faults — 10-56 ms for 151 MB,
as much as the copy itself. ``scratch`` keeps one buffer per *slot name* and
returns a view of it, so a training loop faults each slot in once.

Rules that keep this safe:

* a scratch array never leaves the function that asked for it (an op's output
  is always a fresh array), and one function never uses the same slot twice at
  the same time;
* the pool is per thread (``threading.local``), so two threads never share a slot;
* CuPy arrays are not pooled here: CuPy's own memory pool already reuses
  device memory, so ``scratch`` simply returns ``xp.empty``.

The pool keeps the largest size each slot ever needed; ``release_workspace()``
returns that memory (``workspace_nbytes()`` says how much it is).
"""
from __future__ import annotations

import threading

import numpy as np

__all__ = ["scratch", "release_workspace", "workspace_nbytes"]

_local = threading.local()


def _pool() -> dict:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def scratch(xp, slot: str, shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype`` backed by pool slot ``slot``.

    Its contents are whatever the slot held last; callers write before they read.
    """
    dtype = np.dtype(dtype)
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    count = 1
    for size in shape:
        count *= int(size)
    nbytes = count * dtype.itemsize
    pool = _pool()
    buffer = pool.get(slot)
    if buffer is None or buffer.nbytes < nbytes:
        pool.pop(slot, None)                     # free the old one before the new one
        buffer = pool[slot] = np.empty(max(nbytes, 1), dtype=np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


def release_workspace():
    """Drop this thread's pooled buffers (they are re-created on demand)."""
    _pool().clear()


def workspace_nbytes() -> int:
    """Bytes held by this thread's pool."""
    return sum(buffer.nbytes for buffer in _pool().values())
