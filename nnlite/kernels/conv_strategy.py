"""Which layout a convolution uses, and the knobs that force it.

``conv_arrays.py`` computes each conv map in one of two layouts (``im2col.py``):
``"wide"`` (flat shifted views of the padded input, some wasted grid positions, memcpy-speed
copies) or ``"strided"`` (classic im2col of exactly N*OH*OW columns, slower strided copies,
and the GPU path). This file only decides; it touches no array:

* ``choose_strategy(g, n, xp)``: ``"wide"`` while its grid wastes little, else ``"strided"``;
  always ``"strided"`` on CuPy;
* ``prefers_flipped_conv(o, c)``: whether a stride-1 transposed conv in the wide layout runs
  as a conv with the kernel flipped (cheaper while O <= 1.5 C);
* ``wide_block_limit()``: how many bytes of wide columns the forward builds at a time.

Two context managers override them for the code inside the block (tests, benchmarks):
``use_strategy("wide" | "strided" | None)`` and ``wide_block_bytes(nbytes)``. Neither ever
changes a result, only the layout or the scratch memory. ``nnlite.functional`` never imports
this module (``tests/test_layering_nnlite.py``). Thresholds: measured with benchmarks/conv.py.
"""
from __future__ import annotations

import contextlib

from ..backend import is_device_module
from ..conv_geometry import ConvGeometry
from .im2col import wide_plan

__all__ = ["choose_strategy", "use_strategy", "wide_block_bytes", "wide_block_limit",
           "prefers_flipped_conv", "WIDE_WASTE_LIMIT", "FLIPPED_MAX_RATIO", "WIDE_BLOCK_BYTES"]

#: the wide layout is used while it computes at most this many positions per output pixel
WIDE_WASTE_LIMIT = 1.2
#: a stride-1 transposed conv runs as a flipped conv while O <= this * C: it copies
#: O*KH*KW rows (read + write) where col2im adds C*KH*KW rows (2 reads + write)
FLIPPED_MAX_RATIO = 1.5
#: the wide forward builds its columns in blocks of at most this many bytes, so a large
#: image's conv needs O(block) scratch instead of C*KH*KW*L floats (9.3 GB for a 3x3
#: 64-channel conv at 2048x2048). Only a memory bound: blocking costs 10-20 % on the GEMM's
#: speed, so the bound sits above every DeepFill conv of the release's training (batch 16
#: at 256x256: at most 2.4 GB of columns) and of inference up to ~1400x1400. (Blocks of
#: 1-4 MB, which stay in cache, measured 25-30 % faster on one thread but collapse 10x with
#: two OpenBLAS threads on a loaded machine.)
WIDE_BLOCK_BYTES = 4 * 2**30
_FORCED = [None]           # set by use_strategy(); None: choose per shape
_BLOCK_BYTES = [None]      # set by wide_block_bytes(); None: WIDE_BLOCK_BYTES


@contextlib.contextmanager
def use_strategy(name):
    """Force ``"wide"`` or ``"strided"`` for every conv inside the block (None: automatic)."""
    if name not in (None, "wide", "strided"):
        raise ValueError(f"strategy must be 'wide', 'strided' or None, got {name!r}")
    previous = _FORCED[0]
    _FORCED[0] = name
    try:
        yield
    finally:
        _FORCED[0] = previous


@contextlib.contextmanager
def wide_block_bytes(nbytes):
    """Bound the wide forward's column blocks to ``nbytes`` (instead of ``WIDE_BLOCK_BYTES``)
    for every conv inside the block: tests and benchmarks of the blocked path on small
    images. Only the scratch memory changes, never the result."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0:
        raise ValueError(f"wide_block_bytes: nbytes must be a positive int, got {nbytes!r}")
    previous = _BLOCK_BYTES[0]
    _BLOCK_BYTES[0] = nbytes
    try:
        yield
    finally:
        _BLOCK_BYTES[0] = previous


def wide_block_limit():
    """The bound on a block of wide columns now, in bytes: ``wide_block_bytes``'s or the default."""
    return WIDE_BLOCK_BYTES if _BLOCK_BYTES[0] is None else _BLOCK_BYTES[0]


def choose_strategy(g: ConvGeometry, n, xp=None):
    """``"wide"`` when its grid wastes little (L + tail <= limit * N*OH*OW), else ``"strided"``.

    CuPy arrays always take the strided path, whose im2col/col2im are single GPU kernels.
    """
    if _FORCED[0] is not None:
        return _FORCED[0]
    if xp is not None and is_device_module(xp):
        return "strided"
    plan = wide_plan(g, n)
    return "wide" if plan.L + plan.tail <= WIDE_WASTE_LIMIT * n * g.OH * g.OW else "strided"


def prefers_flipped_conv(o, c):
    """A wide stride-1 conv^T from O to C channels runs as a flipped conv while O <= 1.5 C
    (else the O*KH*KW row copies cost more than one GEMM and C*KH*KW row adds)."""
    return o <= FLIPPED_MAX_RATIO * c
