"""Two ops on (N, L, L) score matrices that contextual attention is built from.

``masked_softmax``: A = m * softmax(scale * m * s) along the last axis, for a 0/1 mask m
over the columns. Masked-out columns get logit 0 (not -inf) and then probability 0, so a
row may sum to less than 1 (the DeepFill release's rule).

``diagonal_sum``: y[n, p, q] = sum over d in ``shifts`` of x[n, p + d, q + d], zero outside
the matrix; with ``grid=(h, w)`` the indices p, q are read as column-major positions of an
h x w grid. Attention propagation is this sum (an identity-kernel convolution).

Both forwards call a kernel from ``nnlite.kernels.attention``; both backwards are written
with differentiable ops, so second derivatives come out right.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from ..kernels.attention import diagonal_sum_forward, masked_softmax_forward
from ..kernels.elementwise import flush_denormals_
from ..tensor import as_tensor
from .basic import sum
from .subnormal import flush_denormals

__all__ = ["masked_softmax", "diagonal_sum"]


class MaskedSoftmax(Function):
    """A = m * softmax(scale * m * s) along the last axis, for a 0/1 mask m.

    Backward: with P = softmax(z), z = scale * m * s, the chain rule gives
    ds = scale * m * P * (m * gA - sum(m * gA * P)); because m * m = m and A = m * P
    this is ``scale * A * (gA - sum(gA * A))``: it needs only the output A (part of the
    graph, so the second derivative is right). A and its gradient are flushed of subnormal
    numbers (``nnlite.functional.subnormal``): logits 90 apart give exp(-90), and the CPU's
    products with such entries run several times slower, for no visible difference.
    """

    def __init__(self, mask, scale):
        self.mask, self.scale = mask, scale                        # mask: (M, L) array

    def forward(self, scores):
        return flush_denormals_(masked_softmax_forward(scores, self.mask, self.scale))

    def backward(self, g_attention):
        attention = self.outputs[0]()
        inner = sum(g_attention * attention, axis=-1, keepdims=True)
        return flush_denormals((attention * (g_attention - inner)) * self.scale)


def masked_softmax(scores, mask, scale=1.0, *, check=True):
    """mask * softmax(scale * mask * scores) along the last axis.

    ``scores``: (N, R, L); ``mask``: (M, L) array with M = 1 or N, entries 0 or 1.
    ``check=False`` skips verifying the 0/1 entries (a host synchronisation on a GPU)
    where the caller built the mask so."""
    scores = as_tensor(scores)
    if scores.ndim != 3:
        raise ValueError(f"masked_softmax: scores must be (N, R, L), got shape {scores.shape}")
    xp = get_array_module(scores.data)
    mask = xp.asarray(getattr(mask, "data", mask), dtype=scores.dtype)
    n, _, length = scores.shape
    if mask.ndim != 2 or mask.shape[1] != length or mask.shape[0] not in (1, n):
        raise ValueError(f"masked_softmax: mask must be (1, {length}) or ({n}, {length}), "
                         f"got shape {mask.shape}")
    if check and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("masked_softmax: mm must hold only 0 (invalid) and 1 (valid) "
                         "(the backward relies on mm * mm = mm)")
    return MaskedSoftmax(mask, scale)(scores)


class DiagonalSum(Function):
    """y[n, p, q] = sum over d in ``shifts`` of x[n, p + d, q + d], zero outside.

    Linear, and its adjoint is the same sum with the shifts negated, so the backward is
    this Function again (differentiable to any order).
    """

    def __init__(self, shifts, grid=None):
        self.shifts = tuple(int(d) for d in shifts)
        self.grid = grid

    def forward(self, x):
        return diagonal_sum_forward(x, self.shifts, self.grid)

    def backward(self, gy):
        return DiagonalSum(tuple(-d for d in self.shifts), self.grid)(gy)


def diagonal_sum(x, shifts, grid=None):
    """sum over d in ``shifts`` of x shifted by d along both last axes (..., L, L), zero
    outside; ``grid=(h, w)``: on column-major indices of the h x w grid (h * w = L, every
    |d| < h)."""
    x = as_tensor(x)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"diagonal_sum: x must be (..., L, L), got shape {x.shape}")
    shifts = tuple(int(d) for d in shifts)
    if grid is not None:
        h, w = (int(v) for v in grid)
        if h * w != x.shape[-1]:
            raise ValueError(f"diagonal_sum: grid {h}x{w} does not match L = {x.shape[-1]}")
        if any(abs(d) >= h for d in shifts):
            raise ValueError(f"diagonal_sum: with grid=({h}, {w}) every shift must be "
                             f"smaller than h = {h} in size, got {shifts}")
        grid = (h, w)
    return DiagonalSum(shifts, grid)(x)
