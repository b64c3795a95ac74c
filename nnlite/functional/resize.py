"""Nearest-neighbour resizing with both index rules DeepFill meets.

* ``align_corners=False`` — floor rule (PyTorch's legacy ``nearest``):
  ``src(y) = min(floor(float32(y) * float32(in / out)), in - 1)``. For an integer
  upscale this is pixel duplication (DeepFill's "upsample conv").
* ``align_corners=True`` — TensorFlow 1's ``resize_nearest_neighbor(align_corners=True)``
  (spec §1): ``src(y) = min(roundf(float32(y) * float32(in-1)/float32(out-1)), in-1)``
  with roundf rounding half away from zero. 64 -> 32 picks rows 0, 2, ..., 30, 33, 35, ..., 63
  (not 2y). DeepFill resizes masks and contextual-attention inputs with this rule.

The op is a gather; its backward is the matching scatter-add (segment sums, since both
index maps are non-decreasing), whose backward is the gather again. For an integer upscale
(every source copied k times in a row) the segment sums are k strided slices added in order.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import as_tensor

__all__ = ["nearest_indices", "interpolate_nearest"]


def nearest_indices(in_size, out_size, align_corners=False):
    """Source index of every output position along one axis (an int64 NumPy array)."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"nearest_indices: sizes must be positive, got {in_size} -> {out_size}")
    y = np.arange(out_size, dtype=np.float32)
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
        position = (y * scale).astype(np.float64)          # the float32 product, exactly
        source = np.floor(position + 0.5)                   # roundf: half away from zero (>= 0)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
        source = np.floor((y * scale).astype(np.float64))
    return np.minimum(source.astype(np.int64), in_size - 1)


def _segments(index):
    """For a non-decreasing index map: (distinct sources, start of each run)."""
    sources, starts = np.unique(index, return_index=True)
    return sources, starts


def _sum_segments(array, axis, index, in_size):
    """Any non-decreasing index map: sum each run of equal sources along ``axis`` of a 4-D
    array (``add.reduceat``) and scatter the sums onto ``in_size`` positions (zeros where
    no output read a source)."""
    xp = get_array_module(array)
    sources, starts = _segments(index)
    summed = xp.add.reduceat(array, xp.asarray(starts), axis=axis)
    shape = list(array.shape)
    shape[axis] = in_size
    full = xp.zeros(shape, dtype=array.dtype)
    where = [slice(None)] * 4
    where[axis] = xp.asarray(sources)
    full[tuple(where)] = summed
    return full


def _duplication_factor(index, in_size):
    """k when ``index`` is ``repeat(arange(in_size), k)`` (an integer upscale: every source
    pixel copied k times in a row), else None."""
    k, rest = divmod(len(index), in_size)
    if rest or k < 1 or not np.array_equal(index, np.repeat(np.arange(in_size), k)):
        return None
    return k


def _sum_runs(array, axis, k):
    """Sum each run of k consecutive entries along ``axis`` (2 or 3) of a 4-D array, in order
    (x0 + x1 + ... : the same additions as ``add.reduceat`` over runs of k)."""
    shape = array.shape
    if axis == 2:
        runs = array.reshape(shape[0], shape[1], shape[2] // k, k, shape[3])
        parts = [runs[:, :, :, j] for j in range(k)]
    else:
        runs = array.reshape(shape[0], shape[1], shape[2], shape[3] // k, k)
        parts = [runs[..., j] for j in range(k)]
    total = parts[0] + parts[1] if k > 1 else parts[0].copy()
    for part in parts[2:]:
        total += part
    return total


class NearestGather(Function):
    """out[..., i, j] = x[..., rows[i], cols[j]]."""

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols

    def forward(self, x):
        self.in_shape = x.shape
        xp = get_array_module(x)
        return xp.take(xp.take(x, xp.asarray(self.rows), axis=2), xp.asarray(self.cols), axis=3)

    def backward(self, gy):
        return NearestScatter(self.rows, self.cols, self.in_shape)(gy)


class NearestScatter(Function):
    """Adjoint of ``NearestGather``: sum each run of equal source indices back onto it."""

    def __init__(self, rows, cols, shape):
        self.rows, self.cols, self.shape = rows, cols, shape

    def forward(self, gy):
        out = gy
        for axis, index in ((2, self.rows), (3, self.cols)):
            k = _duplication_factor(index, self.shape[axis])
            if k is not None:          # integer upscale: reshape and add, ~20x faster
                out = _sum_runs(out, axis, k)
            else:
                out = _sum_segments(out, axis, index, self.shape[axis])
        return out

    def backward(self, ggx):
        return NearestGather(self.rows, self.cols)(ggx)


def interpolate_nearest(x, size=None, scale_factor=None, *, align_corners=False):
    """Resize (N, C, H, W) to ``size`` = (OH, OW) or by ``scale_factor`` (OH = floor(H * s)).

    ``align_corners`` chooses the index rule (see the module docstring).
    """
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"interpolate_nearest: input must be (N, C, H, W), got {x.shape}")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate_nearest: give exactly one of size and scale_factor")
    if size is None:
        sh, sw = (scale_factor, scale_factor) if np.isscalar(scale_factor) else scale_factor
        if not (np.isfinite(sh) and np.isfinite(sw) and sh > 0 and sw > 0):
            raise ValueError(f"interpolate_nearest: scale_factor must be positive and finite, "
                             f"got {scale_factor}")
        size = (int(np.floor(x.shape[2] * sh)), int(np.floor(x.shape[3] * sw)))
    elif np.isscalar(size):
        size = (int(size), int(size))
    out_h, out_w = int(size[0]), int(size[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"interpolate_nearest: output size must be positive, got {size}")
    if (out_h, out_w) == tuple(x.shape[2:]):
        return x
    rows = nearest_indices(x.shape[2], out_h, align_corners)
    cols = nearest_indices(x.shape[3], out_w, align_corners)
    return NearestGather(rows, cols)(x)
