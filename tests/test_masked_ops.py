"""nnlite's score-matrix ops (masked_softmax, diagonal_sum): plain-loop references,
first and second derivatives in float64, and each kernel against its plain twin."""
import math

import numpy as np
import pytest

import nnlite.functional as F
from nnlite import Tensor
from nnlite.kernels import attention as kernels
from nnlite.testing import gradcheck, gradgradcheck


def masked_softmax_loop(scores, mask, scale):
    """A[n, r, q] = m[q] e^{z_q} / sum_k e^{z_k}, z_q = scale * m[q] * s[n, r, q]."""
    n_, rows, length = scores.shape
    out = np.zeros_like(scores)
    for n in range(n_):
        m = mask[n if len(mask) > 1 else 0]
        for r in range(rows):
            z = [scale * m[q] * scores[n, r, q] for q in range(length)]
            total = sum(math.exp(v) for v in z)
            for q in range(length):
                out[n, r, q] = m[q] * math.exp(z[q]) / total
    return out


def diagonal_sum_loop(x, shifts, grid=None):
    """y[n, p, q] = sum_d x[n, p+d, q+d] (inside the matrix); with grid=(h, w) the +d walks
    column-major positions cm(i, j) = j*h + i of the h x w grid."""
    n_, length, _ = x.shape

    def step(p, d):
        if grid is None:
            k = p + d
            return k if 0 <= k < length else None
        h, w = grid
        k = (p % w) * h + p // w + d
        return (k % h) * w + k // h if 0 <= k < length else None

    y = np.zeros_like(x)
    for n in range(n_):
        for p in range(length):
            for q in range(length):
                for d in shifts:
                    i, j = step(p, d), step(q, d)
                    if i is not None and j is not None:
                        y[n, p, q] += x[n, i, j]
    return y


@pytest.mark.parametrize("mask_rows", [1, 2])
def test_masked_softmax_matches_the_loop(mask_rows):
    rng = np.random.default_rng(mask_rows)
    scores = rng.standard_normal((2, 5, 6))
    mask = (rng.random((mask_rows, 6)) > 0.4).astype(np.float64)
    got = F.masked_softmax(Tensor(scores), mask, 10.0).data
    np.testing.assert_allclose(got, masked_softmax_loop(scores, mask, 10.0), rtol=1e-12, atol=1e-15)


def test_masked_softmax_gradients_in_float64():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((2, 3, 5)), requires_grad=True)
    mask = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 1, 1]], dtype=np.float64)
    assert gradcheck(lambda t: F.masked_softmax(t, mask, 2.0), (x,))
    assert gradgradcheck(lambda t: F.masked_softmax(t, mask, 2.0), (x,))


def test_masked_softmax_rejects_bad_masks():
    scores = Tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="only 0"):
        F.masked_softmax(scores, np.full((1, 4), 0.5))
    with pytest.raises(ValueError, match="mask must be"):
        F.masked_softmax(scores, np.ones((3, 4)))
    with pytest.raises(ValueError, match="scores must be"):
        F.masked_softmax(Tensor(np.zeros((3, 4))), np.ones((1, 4)))


CASES = [((-1, 0, 1), None), ((0, 1), None), ((-2, 0, 3), None),
         ((-1, 0, 1), (3, 4)), ((0, 1), (4, 3)), ((-1, 0, 1, 2), (5, 2))]


@pytest.mark.parametrize("shifts, grid", CASES)
def test_diagonal_sum_matches_the_loop(shifts, grid):
    rng = np.random.default_rng(len(shifts))
    length = 12 if grid is None else grid[0] * grid[1]
    x = rng.standard_normal((2, length, length))
    got = F.diagonal_sum(Tensor(x), shifts, grid=grid).data
    np.testing.assert_allclose(got, diagonal_sum_loop(x, shifts, grid), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("shifts, grid", [((-1, 0, 1), None), ((-1, 0, 1), (2, 3))])
def test_diagonal_sum_gradients_in_float64(shifts, grid):
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((1, 6, 6)), requires_grad=True)
    assert gradcheck(lambda t: F.diagonal_sum(t, shifts, grid=grid), (x,))
    assert gradgradcheck(lambda t: F.diagonal_sum(t, shifts, grid=grid) ** 2, (x,))


def test_diagonal_sum_rejects_bad_shapes():
    with pytest.raises(ValueError, match="does not match"):
        F.diagonal_sum(Tensor(np.zeros((1, 6, 6))), (0, 1), grid=(2, 2))
    with pytest.raises(ValueError, match="smaller than h"):
        F.diagonal_sum(Tensor(np.zeros((1, 6, 6))), (0, 2), grid=(2, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., L, L\)"):
        F.diagonal_sum(Tensor(np.zeros((1, 6, 5))), (0,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_softmax_kernel_equals_its_plain_twin(dtype):
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((3, 40, 40)).astype(dtype)
    mask = (rng.random((3, 40)) > 0.3).astype(dtype)
    fast = kernels.masked_softmax_forward(scores, mask, 10.0)
    plain = kernels.masked_softmax_plain(scores, mask, dtype(10.0))
    assert fast.dtype == dtype
    np.testing.assert_allclose(fast, plain, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-7)


@pytest.mark.parametrize("shifts, grid", CASES)
def test_diagonal_sum_kernel_equals_its_plain_twin(shifts, grid):
    rng = np.random.default_rng(6)
    length = 12 if grid is None else grid[0] * grid[1]
    x = rng.standard_normal((2, length, length))
    np.testing.assert_allclose(kernels.diagonal_sum_forward(x, shifts, grid),
                               kernels.diagonal_sum_plain(x, shifts, grid), rtol=1e-13, atol=1e-13)
