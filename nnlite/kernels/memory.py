"""Large NumPy arrays without page faults: let glibc's malloc keep and reuse freed memory.

NumPy allocates with ``malloc``. glibc serves every request above its *mmap threshold*
(adaptive, at most 32 MiB by default) with a fresh ``mmap`` and unmaps it on ``free``; the
next array of that size is a new mapping whose pages fault in on first touch. A 512x512
inpainting allocates dozens of such arrays (its (L, L) attention scores are 64 MiB each),
and on this project's VMs those faults cost ~0.5 s of a ~3.5 s run
(``docs/benchmarks.md``, "Inference and training iterations").

``reuse_freed_memory()`` raises the mmap threshold (default 1 GiB) so such arrays come from
malloc's heap, and the trim threshold (default 2 GiB) so freed heap memory is kept for the
next array instead of being returned to the OS. Arrays above the threshold are still mapped
and unmapped as before, so a very large image does not pin its peak. The price: the process
may hold up to ``trim_threshold`` bytes of freed memory. Results are unchanged (only where
the bytes live changes). The ``inpainting`` command and the benchmarks call it at start
(set ``NNLITE_REUSE_MEMORY=0`` to keep glibc's defaults); a library user opts in.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["reuse_freed_memory", "reuse_memory_requested"]

_M_TRIM_THRESHOLD = -1      # glibc <malloc.h> mallopt parameter numbers
_M_MMAP_THRESHOLD = -3


def reuse_freed_memory(mmap_threshold: int = 1 << 30, trim_threshold: int = (1 << 31) - 1) -> bool:
    """Ask glibc's malloc to serve arrays below ``mmap_threshold`` bytes from its heap and
    to keep up to ``trim_threshold`` bytes of freed memory. Returns True when glibc accepted
    both settings, False where there is no glibc ``mallopt`` (macOS, Windows, musl)."""
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2 ** 31:
            raise ValueError(f"reuse_freed_memory: {name} must be an int in (0, 2**31), "
                             f"got {value!r}")
    path = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(path).mallopt if path else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return (mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
            and mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1)


def reuse_memory_requested() -> bool:
    """False when the environment says ``NNLITE_REUSE_MEMORY=0`` (keep glibc's defaults)."""
    return os.environ.get("NNLITE_REUSE_MEMORY", "1").strip() != "0"
