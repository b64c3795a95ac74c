"""Elementwise and row-wise kernels of the activations, each beside its plain twin.

``nnlite.functional.activation`` defines ELU and softmax readably and calls these for the
forward pass. The fast versions work in place on preallocated buffers and split the
elements (or rows) over the cores (``parallel``); the ``*_plain`` twins say the same thing
in one NumPy line and are what ``tests/test_kernels.py`` compares the fast ones with.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .parallel import parallel_slices


def elu_plain(x, alpha):
    """Plain twin: (alpha * expm1(x) where x <= 0 else x, x > 0)."""
    xp = get_array_module(x)
    positive = x > 0
    y = xp.where(positive, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)
    return y, positive


def elu_forward(x, alpha):
    """ELU's forward, threaded and in place: returns (y, x > 0), as ``elu_plain``."""
    xp = get_array_module(x)
    flat = xp.ascontiguousarray(x).reshape(-1)
    y = xp.empty_like(flat)
    positive = xp.empty(flat.shape, dtype=bool)

    def elu(lo, hi):
        # alpha * expm1(min(x, 0)) + max(x, 0): exact on both sides (expm1(0) = 0,
        # x + 0 = x), in place; 4x faster than where()/copyto(where=) selections
        part, out = flat[lo:hi], y[lo:hi]
        xp.greater(part, 0, out=positive[lo:hi])
        xp.minimum(part, 0, out=out)
        xp.expm1(out, out=out)
        if alpha != 1:
            out *= alpha
        out += xp.maximum(part, 0)

    parallel_slices(elu, flat.size, nbytes=3 * flat.nbytes, xp=xp)
    return y.reshape(x.shape), positive.reshape(x.shape)


def softmax_plain(logits, axis=-1):
    """Plain twin: exp(logits - max) / sum(exp(logits - max)) along ``axis``."""
    xp = get_array_module(logits)
    e = xp.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_into(logits, out, axis=-1):
    """Array kernel: ``out = exp(logits - max) / sum(exp(logits - max))`` along ``axis``,
    written into ``out`` (which may be ``logits`` itself). The forward of ``Softmax``, and of
    the masked softmax. Returns ``out``."""
    xp = get_array_module(logits)
    xp.subtract(logits, logits.max(axis=axis, keepdims=True), out=out)
    xp.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)
    return out


def softmax_forward(x, axis):
    """Softmax along ``axis`` into one new buffer; along the last axis the rows are split
    over the cores. Same values as ``softmax_plain``."""
    xp = get_array_module(x)
    axis = axis % x.ndim
    if axis != x.ndim - 1:
        return softmax_into(x, xp.empty_like(x), axis)
    rows = xp.ascontiguousarray(x).reshape(-1, x.shape[-1])
    y = xp.empty_like(rows)
    parallel_slices(lambda lo, hi: softmax_into(rows[lo:hi], y[lo:hi]), rows.shape[0],
                    nbytes=2 * rows.nbytes, xp=xp)
    return y.reshape(x.shape)


def flush_denormals_(array):
    """In place: set the subnormal entries (0 < |x| < finfo(dtype).tiny) of a float array to 0.

    The plain twin is a loop (tests/test_subnormal.py); why it exists:
    ``nnlite.functional.subnormal``. NaN and inf stay. Returns ``array``."""
    xp = get_array_module(array)
    tiny = np.finfo(array.dtype).tiny
    return xp.multiply(array, xp.abs(array) >= tiny, out=array)
