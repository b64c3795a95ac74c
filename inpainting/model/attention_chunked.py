"""Contextual attention's memory-bounded mode: the same result, R foreground rows at a time.

``contextual_attention(..., chunk_size=R)`` (``attention.py``) hands steps 5-9 to
``attend_in_chunks`` here: one image at a time and R foreground positions at a time, so only
about (R + 2w + 4) x L scores exist at once instead of the whole (L, L) matrix.
Propagation (step 6) couples a row of the score matrix to its neighbours in row-major and
in column-major order (including the release's wrap-around), so each chunk also scores a
halo of neighbouring rows (``chunk_plan``). Peak memory is bounded under ``no_grad``
(inference); with gradients, every chunk's softmax is kept for backward.
``chunk_size_for_memory`` turns a byte budget into R. See docs/contextual_attention.md.
"""
from __future__ import annotations

import numpy as np

import nnlite.functional as F
from nnlite.backend import get_array_module

from .attention_steps import (fold_patches, foreground_patch_matrix, masked_softmax,
                              matching_patches, normalised_patch_matrix)

__all__ = ["contextual_attention_chunked", "attend_in_chunks", "chunk_plan",
           "chunk_size_for_memory", "CHUNK_BYTES_PER_SCORE"]

#: Measured peak bytes per score entry of one chunk (rows incl. halo x L), in units of the
#: dtype's item size, under no_grad (see docs/contextual_attention.md, "Memory").
CHUNK_BYTES_PER_SCORE = 8


def contextual_attention_chunked(raw, f_small, b_small, mm, chunk_size, *, ksize=3, rate=2,
                                 fuse=True, fuse_k=3, softmax_scale=10.0,
                                 return_attention=False):
    """Steps 5-9 of contextual attention, one image and ``chunk_size`` foreground rows at a time.

    raw (N, L, C, 2r, 2r), f_small and b_small (N, C, h, w) and mm (M, L) are steps 1, 2
    and 4 (``attention_steps``). Returns ``(y, offsets)`` (and the gathered attention
    (N, L, L) with ``return_attention``), equal to the direct evaluation up to rounding.
    """
    n, length = raw.shape[:2]
    h, w = f_small.shape[2:]
    height, width = h * rate, w * rate
    fg = foreground_patch_matrix(f_small, ksize)                     # (N, L, Ckk)
    bg = normalised_patch_matrix(matching_patches(b_small, ksize))   # steps 3, 5: (N, Ckk, L)
    raw_matrix = F.reshape(raw, (n, length, -1))                     # (N, L, C*K*K)
    outputs, offsets, scores = [], [], []
    for i in range(n):
        sample_mm = mm[i:i + 1] if mm.shape[0] > 1 else mm
        cols, best = attend_in_chunks(fg[i], bg[i], raw_matrix[i], sample_mm, h, w,
                                      chunk_size, fuse, fuse_k, softmax_scale,
                                      scores if return_attention else None)
        outputs.append(fold_patches(F.reshape(cols, (1,) + cols.shape), rate, height, width))
        xp = get_array_module(best)
        position = xp.arange(length)
        offsets.append(xp.stack([best // w - position // w, best % w - position % w])
                       .reshape(1, 2, h, w))
    xp = get_array_module(offsets[0])
    y, offsets = F.concat(outputs, axis=0) * 0.25, xp.concatenate(offsets).astype(xp.int64)
    if return_attention:
        return y, offsets, xp.concatenate(scores).reshape(n, length, length)
    return y, offsets


def _shifts(fuse_k):
    before = (fuse_k - 1) // 2
    return [u - before for u in range(fuse_k)]


def chunk_plan(start, stop, h, w, fuse_k=3, fuse=True):
    """Which score rows the foreground rows [start, stop) (row-major) depend on.

    Propagation (spec §3 step 6) is two diagonal-sum passes: the row-major pass reads
    row p + d of S, the column-major pass reads row cm^-1(cm(p) + e) of the first pass's
    result, for d, e in -1..1 (fuse_k = 3); cm(i*w + j) = j*h + i is the column-major
    index, and indices outside [0, L) read zeros (that is the release's wrap-around).

    Returns a dict of NumPy int64 arrays:
        rows1: the S rows to score (sorted);
        rows2: the first-pass rows needed (sorted);
        gather1[k]: for shift d_k, the position of row rows2 + d_k in rows1, or len(rows1)
            (a zero row) when it falls outside [0, L);
        gather2[k]: for shift e_k, the position of row cm^-1(cm(p) + e_k) in rows2 for each
            p in the chunk, or len(rows2) when outside.
    Without fuse, rows1 = rows2 = the chunk and the gathers are empty.
    """
    chunk = np.arange(start, stop, dtype=np.int64)
    if not fuse:
        return {"rows1": chunk, "rows2": chunk, "gather1": [], "gather2": []}
    length = h * w
    column_major = (chunk % w) * h + chunk // w
    needed2 = []
    for e in _shifts(fuse_k):
        k = column_major + e
        inside = (k >= 0) & (k < length)
        needed2.append(np.where(inside, (k % h) * w + k // h, -1))
    rows2 = np.unique(np.concatenate(needed2))
    rows2 = rows2[rows2 >= 0]
    needed1 = []
    for d in _shifts(fuse_k):
        r = rows2 + d
        needed1.append(np.where((r >= 0) & (r < length), r, -1))
    rows1 = np.unique(np.concatenate(needed1))
    rows1 = rows1[rows1 >= 0]

    def positions(needed, rows):
        found = np.searchsorted(rows, needed)
        return np.where(needed >= 0, found, len(rows))

    return {"rows1": rows1, "rows2": rows2,
            "gather1": [positions(r, rows1) for r in needed1],
            "gather2": [positions(r, rows2) for r in needed2]}


def _shift_columns(x, d, fuse_k):
    """out[:, q] = x[:, q + d], zero where q + d is outside [0, L)."""
    before = (fuse_k - 1) // 2
    length = x.shape[1]
    padded = F.pad(x, ((0, 0), (before, fuse_k - 1 - before)))
    return padded[:, d + before:d + before + length]


def _diagonal_rows(x, gathers, fuse_k):
    """sum_k shift_{d_k}(x[gather_k]) with a zero row appended for outside indices."""
    padded = F.pad(x, ((0, 1), (0, 0)))
    total = None
    for d, index in zip(_shifts(fuse_k), gathers):
        term = _shift_columns(F.getitem(padded, index), d, fuse_k)
        total = term if total is None else total + term
    return total


def _to_column_major(x, rows, cols):
    """Re-index the columns of (R, rows*cols) from row-major to column-major order."""
    grid = F.reshape(x, (x.shape[0], rows, cols))
    return F.reshape(F.transpose(grid, (0, 2, 1)), x.shape)


def attend_in_chunks(fg, bg, raw_matrix, mm, h, w, chunk_size, fuse, fuse_k, scale,
                     keep=None):
    """Steps 5-9 for one image, ``chunk_size`` foreground rows at a time.

    fg (L, Ckk), bg (Ckk, L), raw_matrix (L, C*K*K), mm (1, L).
    Returns the pasted patches (L, C*K*K) and the argmax background index (L,); with a
    list ``keep``, each chunk's attention rows (R, L) are appended to it.
    """
    length = h * w
    xp = get_array_module(fg.data)
    cols, best = [], []
    for start in range(0, length, chunk_size):
        stop = min(start + chunk_size, length)
        plan = chunk_plan(start, stop, h, w, fuse_k, fuse)
        scores = F.matmul(F.getitem(fg, xp.asarray(plan["rows1"])), bg)   # step 5: (R1, L)
        if fuse:                                                          # step 6
            gather1 = [xp.asarray(g) for g in plan["gather1"]]
            gather2 = [xp.asarray(g) for g in plan["gather2"]]
            first = _diagonal_rows(scores, gather1, fuse_k)          # row-major pass
            del scores
            first = _to_column_major(first, h, w)
            second = _diagonal_rows(first, gather2, fuse_k)          # column-major pass
            del first
            scores = _to_column_major(second, w, h)                  # back to row-major
            del second
        attention = masked_softmax(F.reshape(scores, (1,) + scores.shape), mm, scale,
                                   check=False)     # mm from valid_patches: 0/1
        del scores
        best.append(xp.argmax(attention.data[0], axis=-1))           # step 8
        if keep is not None:
            keep.append(attention.data[0])
        cols.append(F.matmul(attention[0], raw_matrix))               # step 9: (R, C*K*K)
    return F.concat(cols, axis=0), xp.concatenate(best)


def chunk_size_for_memory(max_bytes, height, width, *, rate=2, itemsize=4):
    """The largest ``chunk_size`` whose score buffers fit in ``max_bytes`` (no_grad, fuse_k=3).

    For features (H, W) at ``rate``: w = W/r, L = (H/r)(W/r); a chunk of R rows scores
    about R + 2w + 4 rows (the propagation halo) against L patches, and the peak is about
    ``CHUNK_BYTES_PER_SCORE * itemsize * (R + 2w + 4) * L`` bytes (measured, see docs).
    Raises ValueError when even one row does not fit.
    """
    w = width // rate
    length = (height // rate) * w
    rows = int(max_bytes // (CHUNK_BYTES_PER_SCORE * itemsize * length)) - (2 * w + 4)
    if rows < 1:
        raise ValueError(f"chunk_size_for_memory: {max_bytes} bytes cannot hold even one "
                         f"chunk for features {height}x{width} at rate {rate} (L = {length})")
    return min(rows, length)
