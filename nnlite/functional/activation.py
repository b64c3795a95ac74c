"""Activations, softmax and the simple losses.

relu / leaky_relu multiply the gradient by a constant slope mask (their second
derivative is zero away from 0). elu, tanh and sigmoid express their derivative
through their own output tensor, which is part of the graph, so the second
derivative comes out right; softmax does the same (gx = y * (gy - sum(gy * y))).
log_softmax is a composite of exp/sum/log, so it needs no backward of its own.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..kernels.elementwise import elu_forward, softmax_forward
from ..tensor import as_tensor
from .basic import abs, exp, log, max, mean, sum, where

__all__ = ["relu", "leaky_relu", "elu", "tanh", "sigmoid", "softmax", "log_softmax",
           "l1_loss", "mse_loss"]


class Slope(Function):
    """out = x * slope(x) where slope is 1 for x > 0 and ``negative_slope`` otherwise."""

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, x):
        xp = backend.get_array_module(x)
        one, slope = x.dtype.type(1), x.dtype.type(self.negative_slope)   # no float64 temporary
        self.slope = xp.where(x > 0, one, slope).astype(x.dtype, copy=False)
        return x * self.slope

    def backward(self, gy):
        return gy * self.slope


class ELU(Function):
    """ELU: x for x > 0, alpha * (exp(x) - 1) otherwise; d/dx = 1 or y + alpha."""

    def __init__(self, alpha):
        self.alpha = alpha

    def forward(self, x):
        y, self.positive = elu_forward(x, self.alpha)      # threaded kernel (kernels/)
        return y

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * where(self.positive, 1.0, y + self.alpha)


class Tanh(Function):
    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (1 - y * y)


class Sigmoid(Function):
    def forward(self, x):
        xp = backend.get_array_module(x)
        return (xp.tanh(x * 0.5) * 0.5 + 0.5).astype(x.dtype, copy=False)  # overflow-free

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y * (1 - y)


def relu(x):
    return Slope(0.0)(as_tensor(x))


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, ``negative_slope * x`` otherwise (PyTorch's default slope 0.01)."""
    return Slope(negative_slope)(as_tensor(x))


def elu(x, alpha=1.0):
    return ELU(alpha)(as_tensor(x))


def tanh(x):
    return Tanh()(as_tensor(x))


def sigmoid(x):
    return Sigmoid()(as_tensor(x))


class Softmax(Function):
    """y = exp(x - max) / sum(exp(x - max)) along ``axis``; d/dx: gx = y * (gy - sum(gy * y)).

    One Function rather than a composite of exp/sum/div so that large inputs (score
    matrices such as attention's) cost one output buffer and no temporaries
    (``nnlite.kernels.elementwise.softmax_forward``). The backward is written with nnlite ops on the output y, which
    is part of the graph, so second derivatives come out right.
    """

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        return softmax_forward(x, self.axis)               # threaded kernel (kernels/)

    def backward(self, gy):
        y = self.outputs[0]()
        return y * (gy - sum(gy * y, axis=self.axis, keepdims=True))


def softmax(x, axis=-1):
    """exp(x - max) / sum(exp(x - max)) along ``axis`` (the max shift cancels exactly)."""
    x = as_tensor(x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"softmax: axis {axis} is out of range for a {x.ndim}-d tensor")
    return Softmax(axis)(x)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along ``axis``, computed stably."""
    x = as_tensor(x)
    shifted = x - max(x, axis=axis, keepdims=True).detach()
    return shifted - log(sum(exp(shifted), axis=axis, keepdims=True))


def _reduce(loss, reduction):
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean', 'sum' or 'none'")


def l1_loss(input, target, reduction="mean"):
    """|input - target|, reduced ('mean' | 'sum' | 'none')."""
    input, target = as_tensor(input), as_tensor(target, like=as_tensor(input))
    if input.shape != target.shape:
        raise ValueError(f"l1_loss: input {input.shape} and target {target.shape} differ")
    return _reduce(abs(input - target), reduction)


def mse_loss(input, target, reduction="mean"):
    """(input - target)**2, reduced ('mean' | 'sum' | 'none')."""
    input, target = as_tensor(input), as_tensor(target, like=as_tensor(input))
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input {input.shape} and target {target.shape} differ")
    diff = input - target
    return _reduce(diff * diff, reduction)
