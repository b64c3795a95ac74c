"""Kernels of the two score-matrix ops attention needs, each beside its plain twin.

``masked_softmax_forward``: A = m * softmax(scale * m * s) row by row, into one output
buffer, rows split over the cores. ``diagonal_sum_forward``: y[n, p, q] = sum over d of
x[n, p + d, q + d], one copy and in-place adds of shifted slices, also on column-major
indices of an h x w grid without transposed copies. The (L, L) score matrices are the
largest arrays of an attention layer (64 MiB at a 512x512 input), so every temporary
counts. The ``*_plain`` twins say the same in a few obvious NumPy lines;
``tests/test_masked_ops.py`` compares each kernel with its twin.
"""
from __future__ import annotations

from ..backend import get_array_module
from .elementwise import softmax_into, softmax_plain
from .parallel import parallel_slices


def masked_softmax_plain(scores, mask, scale):
    """Plain twin: mask * softmax(scale * mask * scores) along the last axis;
    scores (N, R, L), mask (M, L) with M = 1 or N."""
    m = mask[:, None, :]
    return m * softmax_plain(scale * (m * scores), axis=-1)


def masked_softmax_forward(scores, mask, scale):
    """The masked softmax into one (N, R, L) buffer, rows split over the cores."""
    xp = get_array_module(scores)
    n, rows, length = scores.shape
    flat_scores = xp.ascontiguousarray(scores).reshape(n * rows, length)
    out = xp.empty((n * rows, length), dtype=scores.dtype)
    scale = scores.dtype.type(scale)

    def softmax_rows(lo, hi):                   # rows [lo, hi) of the (N*R, L) matrix
        while lo < hi:                          # one sample (one mask row) at a time
            sample = lo // rows
            stop = min(hi, (sample + 1) * rows)
            m = mask[sample if len(mask) > 1 else 0][None, :]   # (1, L)
            y = out[lo:stop]
            xp.multiply(flat_scores[lo:stop], m * scale, out=y)   # logits
            softmax_into(y, y)
            y *= m
            lo = stop

    parallel_slices(softmax_rows, n * rows, nbytes=2 * out.nbytes, xp=xp)
    return out.reshape(n, rows, length)


def column_major(x, h, w):
    """Re-index both last axes of (..., L, L), L = h * w, from row-major to column-major
    positions of the h x w grid (a transposed copy). ``column_major(., w, h)`` undoes it."""
    shape = x.shape[:-2]
    grid = x.reshape(shape + (h, w, h, w))
    axes = tuple(range(len(shape)))
    k = len(shape)
    return grid.transpose(axes + (k + 1, k, k + 3, k + 2)).reshape(shape + (h * w, h * w))


def diagonal_sum_plain(x, shifts, grid=None):
    """Plain twin: a zero-padded shifted copy added per shift; with ``grid=(h, w)`` the same
    on column-major indices, by transposing there and back."""
    xp = get_array_module(x)
    if grid is not None:
        h, w = grid
        return column_major(diagonal_sum_plain(column_major(x, h, w), shifts), w, h)
    length = x.shape[-1]
    y = xp.zeros_like(x)
    for d in shifts:
        if abs(d) >= length:
            continue
        lo, hi = max(d, 0), length + min(d, 0)           # source rows/cols [lo, hi)
        y[..., lo - d:hi - d, lo - d:hi - d] += x[..., lo:hi, lo:hi]
    return y


def _column_major_slices(d, h, w):
    """Where position (i, j) of an h x w grid reads its partner cm^-1(cm(i, j) + d), |d| < h.

    cm(i, j) = j*h + i. Returns [(target (i, j) slices, source (i, j) slices)]: the rows
    that stay in column j, and the rows that wrap into column j + 1 (j - 1 for d < 0)."""
    if d >= 0:
        return [((slice(0, h - d), slice(None)), (slice(d, h), slice(None))),
                ((slice(h - d, h), slice(0, w - 1)), (slice(0, d), slice(1, w)))]
    d = -d
    return [((slice(d, h), slice(None)), (slice(0, h - d), slice(None))),
            ((slice(0, d), slice(1, w)), (slice(h - d, h), slice(0, w - 1)))]


def diagonal_sum_forward(x, shifts, grid=None):
    """The diagonal sum as one copy and in-place adds of shifted slices. With
    ``grid=(h, w)`` (every |shift| < h) each shift becomes 4 slice pairs on the
    (N, h, w, h, w) view, for rows that stay in their column or wrap into the next, so the
    row-major matrix is never transposed."""
    xp = get_array_module(x)
    length = x.shape[-1]
    y = x.copy() if 0 in shifts else xp.zeros(x.shape, dtype=x.dtype)  # C order
    for d in shifts:
        if d == 0 or abs(d) >= length:
            continue
        if grid is not None:
            h, w = grid
            shape = x.shape[:-2] + (h, w, h, w)
            y5, x5 = y.reshape(shape), x.reshape(shape)
            for p_target, p_source in _column_major_slices(d, h, w):
                for q_target, q_source in _column_major_slices(d, h, w):
                    y5[(..., *p_target, *q_target)] += x5[(..., *p_source, *q_source)]
        elif d > 0:
            y[..., :length - d, :length - d] += x[..., d:, d:]
        else:
            y[..., -d:, -d:] += x[..., :length + d, :length + d]
    return y
