"""Elementwise arithmetic, broadcasting and reductions.

Each op is a ``Function`` whose ``forward`` works on arrays and whose
``backward`` is written with these same ops, so every gradient here can be
differentiated again. Derivatives that are piecewise constant (abs, clip,
maximum, max) use a constant selection mask, which is exactly right away from
the kinks: their second derivative is zero almost everywhere.

Broadcasting: a binary op's gradient is summed back to each input's shape
(``sum_to``) and cast back to its dtype.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor, as_tensor

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs",
           "maximum", "minimum", "where", "clip", "cast", "sum", "mean", "max",
           "sum_to", "broadcast_to"]


def _pair(x, y):
    """Two tensors; a Python scalar takes the dtype of the tensor beside it."""
    if isinstance(x, Tensor):
        return x, as_tensor(y, like=x)
    y = as_tensor(y)
    return as_tensor(x, like=y), y


def _reduce_to(gradient: Tensor, x: Tensor) -> Tensor:
    """Undo broadcasting: sum ``gradient`` to ``x``'s shape, cast to its dtype."""
    if gradient.shape != x.shape:
        gradient = sum_to(gradient, x.shape)
    if gradient.dtype != x.dtype:
        gradient = cast(gradient, x.dtype)
    return gradient


# ---------------------------------------------------------------- arithmetic
class Add(Function):
    def forward(self, x, y):
        return x + y

    def backward(self, gy):
        x, y = self.inputs
        return _reduce_to(gy, x), _reduce_to(gy, y)


class Mul(Function):
    def forward(self, x, y):
        return x * y

    def backward(self, gy):
        x, y = self.inputs
        gx = _reduce_to(gy * y, x) if self.needs_input_grad[0] else None
        gw = _reduce_to(gy * x, y) if self.needs_input_grad[1] else None
        return gx, gw


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Div(Function):
    def forward(self, x, y):
        return x / y

    def backward(self, gy):
        x, y = self.inputs
        gx = _reduce_to(gy / y, x) if self.needs_input_grad[0] else None
        gw = _reduce_to(-gy * x / (y * y), y) if self.needs_input_grad[1] else None
        return gx, gw


class PowConstant(Function):
    """x ** c for a constant exponent c: d/dx = c * x ** (c - 1)."""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        return x ** self.exponent

    def backward(self, gy):
        x, = self.inputs
        c = self.exponent
        return gy * (c * pow(x, c - 1))


class Exp(Function):
    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.outputs[0]()


class Log(Function):
    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(Function):
    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.outputs[0]())


class Abs(Function):
    """|x|; the gradient at 0 is taken as 0 (sign(0) = 0)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.sign = xp.sign(x)
        return xp.abs(x)

    def backward(self, gy):
        return gy * self.sign


class Select(Function):
    """Shared machinery of where/maximum/minimum: out = cond ? x : y (cond constant)."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, x, y):
        return backend.get_array_module(x, y).where(self.condition, x, y)

    def backward(self, gy):
        x, y = self.inputs
        zero = gy * 0
        gx = _reduce_to(where(self.condition, gy, zero), x) if self.needs_input_grad[0] else None
        gw = _reduce_to(where(self.condition, zero, gy), y) if self.needs_input_grad[1] else None
        return gx, gw


class Cast(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.source_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return cast(gy, self.source_dtype)


class ToDevice(Function):
    """Copy between host and GPU; the gradient is copied back."""

    def __init__(self, device):
        self.device = device

    def __call__(self, x):
        self.source = x.device
        out = super().__call__(x)
        return out

    def forward(self, x):
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return ToDevice(self.source)(gy)


def add(x, y):
    return Add()(*_pair(x, y))


def sub(x, y):
    x, y = _pair(x, y)
    return Add()(x, Neg()(y))


def mul(x, y):
    return Mul()(*_pair(x, y))


def div(x, y):
    return Div()(*_pair(x, y))


def neg(x):
    return Neg()(as_tensor(x))


def pow(x, exponent):
    """x ** exponent. A constant exponent uses c * x**(c-1); a tensor exponent
    goes through exp(exponent * log(x)) and so needs x > 0."""
    if isinstance(exponent, Tensor):
        x, exponent = _pair(x, exponent)
        return exp(exponent * log(x))
    if not np.isscalar(exponent):
        raise TypeError("pow: the exponent must be a Python number or a Tensor, "
                        f"got {type(exponent).__name__}")
    return PowConstant(exponent)(as_tensor(x))


def exp(x):
    return Exp()(as_tensor(x))


def log(x):
    return Log()(as_tensor(x))


def sqrt(x):
    return Sqrt()(as_tensor(x))


def abs(x):
    return Abs()(as_tensor(x))


def where(condition, x, y):
    """Elementwise ``condition ? x : y``; ``condition`` is a constant boolean array."""
    x, y = _pair(x, y)
    condition = condition.data if isinstance(condition, Tensor) else condition
    return Select(condition)(x, y)


def maximum(x, y):
    """Elementwise max; on ties the gradient goes to ``x``."""
    x, y = _pair(x, y)
    return Select(x.data >= y.data)(x, y)


def minimum(x, y):
    """Elementwise min; on ties the gradient goes to ``x``."""
    x, y = _pair(x, y)
    return Select(x.data <= y.data)(x, y)


def clip(x, min=None, max=None):
    """Clamp to [min, max]. Gradient 1 strictly inside and at the bounds, 0 outside."""
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    inside = xp.ones(x.shape, dtype=bool)
    if min is not None:
        inside &= x.data >= min
    if max is not None:
        inside &= x.data <= max
    clipped = xp.clip(x.data, min, max).astype(x.dtype, copy=False)
    return Select(inside)(x, Tensor(clipped))


def cast(x, dtype):
    x = as_tensor(x)
    if x.dtype == dtype:
        return x
    return Cast(dtype)(x)


# ---------------------------------------------------------------- broadcasting
class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.source_shape = x.shape
        xp = backend.get_array_module(x)
        return xp.broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.source_shape)


class SumTo(Function):
    """Sum over the broadcast axes so the result has ``shape``."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.source_shape = x.shape
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        if lead:
            y = y.reshape(self.shape)
        return y

    def backward(self, gy):
        return broadcast_to(gy, self.source_shape)


def broadcast_to(x, shape):
    x = as_tensor(x)
    if x.shape == tuple(shape):
        return x
    return BroadcastTo(shape)(x)


def sum_to(x, shape):
    x = as_tensor(x)
    if x.shape == tuple(shape):
        return x
    return SumTo(shape)(x)


# ---------------------------------------------------------------- reductions
def _normalise_axes(axis, ndim):
    """``axis`` (None, an int or a sequence; negative counts from the end) as sorted axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"axis {a} is out of range for a {ndim}-d tensor")
    normalised = sorted(int(a) % ndim for a in axes)
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"axis {axis} names an axis twice")
    return tuple(normalised)


class Sum(Function):
    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.source_shape = x.shape
        self.axes = _normalise_axes(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        kept = list(self.source_shape)
        for a in self.axes:
            kept[a] = 1
        from .shape import reshape
        return broadcast_to(reshape(gy, tuple(kept)), self.source_shape)


class Max(Function):
    """Maximum over ``axis``. Ties: the whole gradient goes to the FIRST maximal
    element in row-major order over the reduced axes (the element ``argmax`` returns)."""

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.source_shape = x.shape
        self.axes = _normalise_axes(self.axis, x.ndim)
        kept_axes = [a for a in range(x.ndim) if a not in self.axes]
        moved = xp.transpose(x, kept_axes + list(self.axes))
        flat = moved.reshape(moved.shape[:len(kept_axes)] + (-1,))
        first = xp.argmax(flat, axis=-1)
        one_hot = xp.arange(flat.shape[-1]) == first[..., None]
        inverse = np.argsort(kept_axes + list(self.axes))
        self.mask = xp.transpose(one_hot.reshape(moved.shape), tuple(inverse))
        return x.max(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        kept = list(self.source_shape)
        for a in self.axes:
            kept[a] = 1
        from .shape import reshape
        g = broadcast_to(reshape(gy, tuple(kept)), self.source_shape)
        return where(self.mask, g, g * 0)


def sum(x, axis=None, keepdims=False):
    return Sum(axis, keepdims)(as_tensor(x))


def mean(x, axis=None, keepdims=False):
    x = as_tensor(x)
    count = int(np.prod([x.shape[a] for a in _normalise_axes(axis, x.ndim)]))
    return sum(x, axis, keepdims) * (1.0 / count)


def max(x, axis=None, keepdims=False):
    return Max(axis, keepdims)(as_tensor(x))
