"""Ops that move elements around: reshape, transpose, indexing, concat, stack, pad, matmul.

Each comes with its adjoint as backward: reshape <-> reshape, transpose <->
inverse transpose, getitem <-> scatter-add into zeros, concat <-> slices,
constant pad <-> crop, reflect pad <-> fold the reflected borders back.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor, as_tensor
from .basic import _pair, _reduce_to

__all__ = ["reshape", "transpose", "permute", "getitem", "concat", "stack", "pad", "matmul",
           "flatten"]


class Reshape(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.source_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.source_shape)


class Transpose(Function):
    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        xp = backend.get_array_module(x)
        if self.axes is None:
            self.axes = tuple(reversed(range(x.ndim)))
        if sorted(int(a) % x.ndim for a in self.axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {self.axes} are not a permutation of "
                             f"{x.ndim} axes")
        return xp.transpose(x, self.axes)

    def backward(self, gy):
        inverse = tuple(int(i) for i in np.argsort([a % gy.ndim for a in self.axes]))
        return transpose(gy, inverse)


def _index_data(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, tuple):
        return tuple(_index_data(i) for i in index)
    return index.data if isinstance(index, Tensor) else index


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer))
               for p in parts)


class GetItem(Function):
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.source_shape = x.shape
        return x[self.index]

    def backward(self, gy):
        return GetItemGrad(self.index, self.source_shape)(gy)


class GetItemGrad(Function):
    """Adjoint of ``x[index]``: scatter-add ``gy`` into zeros of the source shape."""

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _is_basic(self.index):
            gx[self.index] = gy  # basic indexing never repeats an element
        else:
            backend.scatter_add(gx, self.index, gy)
        return gx

    def backward(self, ggx):
        return getitem(ggx, self.index)


class Concat(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        xp = backend.get_array_module(*xs)
        self.sizes = [x.shape[self.axis] for x in xs]
        return xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        grads, start = [], 0
        axis = self.axis % gy.ndim
        for size, needed in zip(self.sizes, self.needs_input_grad):
            index = (slice(None),) * axis + (slice(start, start + size),)
            grads.append(getitem(gy, index) if needed else None)
            start += size
        return tuple(grads)


class PadConstant(Function):
    def __init__(self, widths, value):
        self.widths, self.value = widths, value

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.pad(x, self.widths, mode="constant", constant_values=self.value)

    def backward(self, gy):
        index = tuple(slice(before, gy.shape[i] - after)
                      for i, (before, after) in enumerate(self.widths))
        return getitem(gy, index)


class PadReflect(Function):
    """Reflect padding (the edge pixel is not repeated), ``numpy.pad(mode='reflect')``."""

    def __init__(self, widths):
        self.widths = widths

    def forward(self, x):
        for n, (before, after) in zip(x.shape, self.widths):
            if before >= n or after >= n:
                raise ValueError(f"pad(mode='reflect'): padding {(before, after)} must be "
                                 f"smaller than the axis size {n}")
        return backend.get_array_module(x).pad(x, self.widths, mode="reflect")

    def backward(self, gy):
        return ReflectPadAdjoint(self.widths)(gy)


class ReflectPadAdjoint(Function):
    """Adjoint of reflect padding: crop, and add each mirrored border back onto
    the pixels it was copied from (axis by axis, in reverse order)."""

    def __init__(self, widths):
        self.widths = widths

    def forward(self, gy):
        xp = backend.get_array_module(gy)
        g = gy
        for axis in reversed(range(g.ndim)):
            before, after = self.widths[axis]
            if before == 0 and after == 0:
                continue
            n = g.shape[axis] - before - after

            def part(array, start, stop):
                return array[(slice(None),) * axis + (slice(start, stop),)]

            core = part(g, before, before + n).copy()
            if before:   # padded[before - k] was x[k], k = 1..before
                part(core, 1, before + 1)[...] += xp.flip(part(g, 0, before), axis)
            if after:    # padded[before + n - 1 + k] was x[n - 1 - k], k = 1..after
                part(core, n - 1 - after, n - 1)[...] += xp.flip(
                    part(g, before + n, before + n + after), axis)
            g = core
        return g

    def backward(self, ggx):
        return PadReflect(self.widths)(ggx)


class MatMul(Function):
    """Batched matrix product over the last two axes (NumPy broadcasting rules)."""

    def forward(self, a, b):
        return backend.get_array_module(a, b).matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        ga = _reduce_to(matmul(gy, transpose(b, _swap_last(b.ndim))), a) \
            if self.needs_input_grad[0] else None
        gb = _reduce_to(matmul(transpose(a, _swap_last(a.ndim)), gy), b) \
            if self.needs_input_grad[1] else None
        return ga, gb


def _swap_last(ndim):
    axes = list(range(ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return tuple(axes)


def reshape(x, shape):
    x = as_tensor(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return Reshape(shape)(x)


def flatten(x, start_dim=1):
    """Merge every axis from ``start_dim`` on (NCHW -> (N, C*H*W) by default)."""
    x = as_tensor(x)
    return reshape(x, x.shape[:start_dim] + (-1,))


def transpose(x, axes=None):
    return Transpose(None if axes is None else tuple(axes))(as_tensor(x))


def permute(x, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return transpose(x, axes)


def getitem(x, index):
    """``x[index]`` with basic slicing or integer-array indexing (repeats accumulate)."""
    return GetItem(_index_data(index))(as_tensor(x))


def _check_axis(name, axis, ndim):
    if not -ndim <= int(axis) < ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for {ndim} axes")


def concat(xs, axis=0):
    xs = [as_tensor(x) for x in xs]
    if not xs:
        raise ValueError("concat: needs at least one tensor")
    _check_axis("concat", axis, xs[0].ndim)
    return Concat(axis)(*xs)


def stack(xs, axis=0):
    xs = [as_tensor(x) for x in xs]
    if not xs:
        raise ValueError("stack: needs at least one tensor")
    _check_axis("stack", axis, xs[0].ndim + 1)     # the new axis can go after the last one
    axis = axis % (xs[0].ndim + 1)
    expanded = [reshape(x, x.shape[:axis] + (1,) + x.shape[axis:]) for x in xs]
    return concat(expanded, axis)


def pad(x, widths, mode="constant", value=0.0):
    """Pad with ``widths`` = ((before, after), ...) per axis, NumPy style.

    ``mode`` is 'constant' (with ``value``) or 'reflect' (the edge is not repeated).
    """
    x = as_tensor(x)
    widths = tuple((int(a), int(b)) for a, b in widths)
    if len(widths) != x.ndim:
        raise ValueError(f"pad: {len(widths)} (before, after) pairs for a {x.ndim}-d tensor")
    if any(a < 0 or b < 0 for a, b in widths):
        raise ValueError(f"pad: negative widths {widths}")
    if mode == "constant":
        return PadConstant(widths, value)(x)
    if mode == "reflect":
        return PadReflect(widths)(x)
    raise ValueError(f"pad: unknown mode {mode!r}; expected 'constant' or 'reflect'")


def matmul(a, b):
    """Matrix product with NumPy semantics; 1-d operands are promoted and squeezed."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: scalars are not matrices; use * instead")
    if a.ndim == 1 and b.ndim == 1:
        return reshape(MatMul()(reshape(a, (1, -1)), reshape(b, (-1, 1))), ())
    if a.ndim == 1:
        out = MatMul()(reshape(a, (1, -1)), b)
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = MatMul()(a, reshape(b, (-1, 1)))
        return reshape(out, out.shape[:-1])
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align "
                         f"({a.shape[-1]} != {b.shape[-2]})")
    return MatMul()(a, b)
