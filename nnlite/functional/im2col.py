"""im2col / col2im on raw arrays: the data movement behind every convolution.

``im2col`` copies, for each of the KH*KW kernel taps, one strided slice of the
padded input into a column buffer of shape (C, KH, KW, N, OH, OW); a conv is
then ONE matrix product (O, C*KH*KW) @ (C*KH*KW, N*OH*OW) — one large GEMM is
faster than N small ones when OH*OW is small (the critics' last layers). ``col2im`` is
its adjoint: it adds each tap's slice back into a zero (padded) image.

Slice copies are the fastest way to do this in NumPy (fancy indexing is ~2.6x
slower, ``np.add.at`` ~6x slower for col2im); the same code runs on CuPy arrays.

Memory: the column buffer holds N*C*KH*KW*OH*OW elements — 302 MB for N=16,
C=128, 64x64, 3x3 in float32. See docs/benchmarks.md.
"""
from __future__ import annotations

from ..backend import get_array_module
from .conv_utils import ConvGeometry

__all__ = ["im2col", "col2im", "pad_input"]


def _tap(g: ConvGeometry, i, j):
    """The slice of the padded input that kernel tap (i, j) reads for every output pixel."""
    top, left = i * g.DH, j * g.DW
    return (slice(None), slice(None),
            slice(top, top + g.SH * (g.OH - 1) + 1, g.SH),
            slice(left, left + g.SW * (g.OW - 1) + 1, g.SW))


def pad_input(x, g: ConvGeometry):
    """Zero-pad the spatial axes by (PT, PB, PL, PR)."""
    if not (g.PT or g.PB or g.PL or g.PR):
        return x
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (g.PT, g.PB), (g.PL, g.PR)))


def im2col(x, g: ConvGeometry):
    """(N, C, H, W) -> columns (C, KH, KW, N, OH, OW)."""
    xp = get_array_module(x)
    padded = pad_input(x, g).transpose(1, 0, 2, 3)       # (C, N, H', W') view
    n, c = x.shape[:2]
    cols = xp.empty((c, g.KH, g.KW, n, g.OH, g.OW), dtype=x.dtype)
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
