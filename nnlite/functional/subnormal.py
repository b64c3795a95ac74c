"""Flush subnormal numbers to zero: the one op that exists because of how CPUs do arithmetic.

A float is *subnormal* (denormal) when 0 < |x| < ``finfo(dtype).tiny`` (1.2e-38 in float32).
x86 CPUs compute with such numbers in microcode, tens of times slower than with normal ones,
and a BLAS matrix product that meets a few percent of them runs 4-8x slower (measured on
contextual attention's (N, L, L) softmax, where exp(-100) = 4e-44 is common: docs/benchmarks.md,
"Subnormal numbers"). Hardware has a switch for it (flush-to-zero); TensorFlow turns it on for
its CPU threads, NumPy cannot. ``flush_denormals`` does the same in software for one array:

    y = 0 where |x| < tiny, else x;     dy/dx = 1 (the gradient is flushed the same way)

Values this small change no result that float32 can show: a sum of a million of them is still
below 1e-31. In float64 (tiny = 2.2e-308) it is an identity for any value gradcheck uses.
"""
from __future__ import annotations

from ..autograd import Function
from ..kernels.elementwise import flush_denormals_
from ..tensor import as_tensor

__all__ = ["flush_denormals", "flush_denormals_"]


class FlushDenormals(Function):
    """y = x with subnormals set to 0; the gradient passes through, flushed the same way."""

    def forward(self, x):
        return flush_denormals_(x.copy())

    def backward(self, gy):
        return flush_denormals(gy)


def flush_denormals(x):
    """``x`` with every subnormal value (0 < |x| < finfo(dtype).tiny) replaced by 0."""
    return FlushDenormals()(as_tensor(x))
