"""im2col / col2im on raw arrays: the data movement behind every convolution.

A convolution is one matrix product once the input pixels each output pixel
reads are laid out as columns. Two layouts are used (see docs/convolution.md):

**Strided** (the classic im2col): for each of the KH*KW kernel taps, one strided
slice of the zero-padded input is copied into ``cols`` of shape
(C, KH, KW, N, OH, OW). Columns hold exactly the N*OH*OW output pixels.
``col2im`` is its adjoint: it adds each tap's slice back into a zero image.

**Wide** (flattened, shifted slices): the padded input is split into its
SH*SW stride phases (phase (p, q) holds padded pixels (p + SH*a, q + SW*b)),
each phase stored flat as (C, N*HG*WG) on a grid of HG x WG pixels per image.
Tap (i, j) reads phase ((i*DH) % SH, (j*DW) % SW) at grid offset
(a_i, b_j) = ((i*DH) // SH, (j*DW) // SW), i.e. at the *flat* offset
``a_i*WG + b_j``: every tap is ONE contiguous shift of the same flat array.
Output pixel (n, oh, ow) sits at flat position n*HG*WG + oh*WG + ow; the other
positions of the grid (columns ow >= OW, rows oh >= OH) are computed and
thrown away. Copies are plain memcpy-like row copies, for any stride and
dilation, at the price of computing L / (N*OH*OW) more columns: little for large
images, a lot for big dilations on small images — the caller chooses
(``conv_strategy.choose_strategy``).

Slice copies are the fastest way to move this data in NumPy (fancy indexing
is ~2.6x slower, ``np.add.at`` ~6x slower for col2im); the same code runs on
CuPy arrays (``im2col_cupy`` has single-kernel versions for the GPU).

Large temporaries come from ``workspace.scratch``: NumPy buffers of 32 MB and
more are fresh mmaps on every allocation (page faults cost 10-56 ms for 150 MB),
so the column buffer and the wide copies are kept and reused. A scratch buffer
never leaves the op that asked for it.
"""
from __future__ import annotations

from typing import NamedTuple

from ..backend import get_array_module
from ..conv_geometry import ConvGeometry
from .parallel import parallel_slices
from .workspace import scratch

__all__ = ["im2col", "col2im", "pad_input", "WidePlan", "wide_plan", "to_wide",
           "output_to_wide", "from_wide", "im2col_wide", "col2im_wide",
           "wide_to_image"]

# ------------------------------------------------------------------ strided layout
def _tap(g: ConvGeometry, i, j):
    """The slice of the padded input that kernel tap (i, j) reads for every output pixel."""
    top, left = i * g.DH, j * g.DW
    return (slice(None), slice(None),
            slice(top, top + g.SH * (g.OH - 1) + 1, g.SH),
            slice(left, left + g.SW * (g.OW - 1) + 1, g.SW))


def pad_input(x, g: ConvGeometry):
    """Zero-pad the spatial axes of (N, C, H, W) by (PT, PB, PL, PR), in scratch "padded_input"."""
    if not (g.PT or g.PB or g.PL or g.PR):
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out = scratch(xp, "padded_input", (n, c, h + g.PT + g.PB, w + g.PL + g.PR), x.dtype)
    out[:, :, :g.PT] = 0
    out[:, :, g.PT + h:] = 0
    out[:, :, g.PT:g.PT + h, :g.PL] = 0
    out[:, :, g.PT:g.PT + h, g.PL + w:] = 0
    out[:, :, g.PT:g.PT + h, g.PL:g.PL + w] = x
    return out


def im2col(x, g: ConvGeometry, out=None):
    """(N, C, H, W) -> columns (C, KH, KW, N, OH, OW), into ``out`` when given.

    ``cols[c, i, j, n, oh, ow] = xpad[n, c, oh*SH + i*DH, ow*SW + j*DW]``.
    """
    xp = get_array_module(x)
    padded = pad_input(x, g).transpose(1, 0, 2, 3)       # (C, N, H', W') view
    n, c = x.shape[:2]
    cols = xp.empty((c, g.KH, g.KW, n, g.OH, g.OW), dtype=x.dtype) if out is None else out
    for i in range(g.KH):
        for j in range(g.KW):
            cols[:, i, j] = padded[_tap(g, i, j)]
    return cols


def col2im(cols, g: ConvGeometry):
    """Columns (C, KH, KW, N, OH, OW) -> (N, C, H, W), summing overlapping taps."""
    xp = get_array_module(cols)
    c, n = cols.shape[0], cols.shape[3]
    padded = xp.zeros((n, c, g.H + g.PT + g.PB, g.W + g.PL + g.PR), dtype=cols.dtype)
    view = padded.transpose(1, 0, 2, 3)
    for i in range(g.KH):
        for j in range(g.KW):
            view[_tap(g, i, j)] += cols[:, i, j]
    return padded[:, :, g.PT:g.PT + g.H, g.PL:g.PL + g.W]


# ------------------------------------------------------------------ wide layout
class WidePlan(NamedTuple):
    """Where each tap of a conv reads in the wide layout (see the module docstring)."""
    N: int
    HG: int               # grid rows per image:    OH + max_i (i*DH) // SH
    WG: int               # grid columns per image: OW + max_j (j*DW) // SW
    phases: tuple         # the stride phases (p, q) some tap reads, in first-use order
    taps: tuple           # for tap t = i*KW + j: (index into phases, flat offset a_i*WG + b_j)
    L: int                # computed output positions: N*HG*WG
    tail: int             # zero columns after the last image: the largest offset


def wide_plan(g: ConvGeometry, n) -> WidePlan:
    """The wide layout of a conv with geometry ``g`` on a batch of ``n`` images."""
    rows = [divmod(i * g.DH, g.SH) for i in range(g.KH)]    # (a_i, p_i)
    cols = [divmod(j * g.DW, g.SW) for j in range(g.KW)]    # (b_j, q_j)
    HG = g.OH + max(a for a, _ in rows)
    WG = g.OW + max(b for b, _ in cols)
    phases, taps = [], []
    for a, p in rows:
        for b, q in cols:
            if (p, q) not in phases:
                phases.append((p, q))
            taps.append((phases.index((p, q)), a * WG + b))
    return WidePlan(n, HG, WG, tuple(phases), tuple(taps), n * HG * WG,
                    max(offset for _, offset in taps))


def _phase_window(size, pad_before, stride, phase, grid):
    """Grid indices [lo, hi) of phase ``phase`` that hold real pixels, and the first source index.

    Grid index a is padded index phase + stride*a, i.e. input index phase + stride*a - pad.
    """
    lo = max(0, -(-(pad_before - phase) // stride))
    hi = min(grid, -(-(pad_before + size - phase) // stride))
    return lo, max(hi, lo), phase + stride * lo - pad_before


def _phase_views(g, plan, buffer, channels):
    """For each phase: the (C, N, HG, WG) grid view of ``buffer`` and where the image sits in it."""
    for k, (p, q) in enumerate(plan.phases):
        grid = buffer[k, :, :plan.L].reshape(channels, plan.N, plan.HG, plan.WG)
        a0, a1, r0 = _phase_window(g.H, g.PT, g.SH, p, plan.HG)
        b0, b1, c0 = _phase_window(g.W, g.PL, g.SW, q, plan.WG)
        source = (slice(None), slice(None),
                  slice(r0, r0 + g.SH * (a1 - a0 - 1) + 1, g.SH),
                  slice(c0, c0 + g.SW * (b1 - b0 - 1) + 1, g.SW))
        yield k, grid, (slice(None), slice(None), slice(a0, a1), slice(b0, b1)), source


def to_wide(x, g: ConvGeometry, plan: WidePlan, name="wide_input"):
    """(N, C, H, W) -> (P, C, L + tail): each used phase of the padded input, flat, zeros around."""
    xp = get_array_module(x)
    c = x.shape[1]
    out = scratch(xp, name, (len(plan.phases), c, plan.L + plan.tail), x.dtype)
    views = [(grid, inside, source) for _, grid, inside, source in _phase_views(g, plan, out, c)]

    def fill(lo, hi):                                  # channels [lo, hi)
        out[:, lo:hi] = 0
        for grid, inside, source in views:
            if grid[inside].size:
                grid[lo:hi][inside] = x[source][:, lo:hi].transpose(1, 0, 2, 3)

    parallel_slices(fill, c, nbytes=out.nbytes, xp=xp)
    return out


def wide_to_image(xw, g: ConvGeometry, plan: WidePlan):
    """Adjoint of ``to_wide``: the pixels of the image read back out of (P, C, L + tail).

    Pixels of phases no tap reads, and grid positions outside the image, are dropped
    (their gradient is zero).
    """
    xp = get_array_module(xw)
    c = xw.shape[1]
    x = xp.zeros((plan.N, c, g.H, g.W), dtype=xw.dtype)
    for _, grid, inside, source in _phase_views(g, plan, xw, c):
        if grid[inside].size:
            x[source] = grid[inside].transpose(1, 0, 2, 3)
    return x


def im2col_wide(xw, plan: WidePlan, name="cols", start=0, stop=None):
    """Wide columns (C, KH*KW, stop - start): one row copy per (channel, tap).

    ``start``/``stop`` select a block of the L grid positions (all of them by default),
    so a large image's columns can be built and multiplied a block at a time.
    """
    xp = get_array_module(xw)
    stop = plan.L if stop is None else stop
    cols = scratch(xp, name, (xw.shape[1], len(plan.taps), stop - start), xw.dtype)

    def fill(lo, hi):                                  # channels [lo, hi)
        for t, (phase, offset) in enumerate(plan.taps):
            cols[lo:hi, t] = xw[phase, lo:hi, offset + start:offset + stop]

    parallel_slices(fill, cols.shape[0], nbytes=2 * cols.nbytes, xp=xp)
    return cols


def col2im_wide(cols, g: ConvGeometry, plan: WidePlan):
    """Adjoint of ``im2col_wide`` followed by ``wide_to_image``: (C, KH*KW, L) -> (N, C, H, W)."""
    xp = get_array_module(cols)
    c = cols.shape[0]
    xw = scratch(xp, "wide_input", (len(plan.phases), c, plan.L + plan.tail), cols.dtype)
    xw[...] = 0
    for t, (phase, offset) in enumerate(plan.taps):
        xw[phase, :, offset:offset + plan.L] += cols[:, t]
    return wide_to_image(xw, g, plan)


def output_to_wide(y, g: ConvGeometry, plan: WidePlan, name="wide_output"):
    """(N, O, OH, OW) -> (O, L) on the output grid, zeros at the positions that are no pixel."""
    xp = get_array_module(y)
    o = y.shape[1]
    out = scratch(xp, name, (o, plan.L), y.dtype)
    grid = out.reshape(o, plan.N, plan.HG, plan.WG)
    grid[:, :, :g.OH, :g.OW] = y.transpose(1, 0, 2, 3)
    grid[:, :, g.OH:] = 0
    grid[:, :, :g.OH, g.OW:] = 0
    return out


def from_wide(yw, g: ConvGeometry, plan: WidePlan):
    """(O, L) on the output grid -> a new (N, O, OH, OW) array of the real pixels.

    Always a copy (``yw`` is usually a workspace buffer, even when the view is contiguous).
    """
    xp = get_array_module(yw)
    o = yw.shape[0]
    grid = yw.reshape(o, plan.N, plan.HG, plan.WG)[:, :, :g.OH, :g.OW]
    out = xp.empty((plan.N, o, g.OH, g.OW), dtype=yw.dtype)

    def copy(lo, hi):                                  # output channels [lo, hi)
        out[:, lo:hi] = grid[lo:hi].transpose(1, 0, 2, 3)

    parallel_slices(copy, o, nbytes=2 * out.nbytes, xp=xp)
    return out
