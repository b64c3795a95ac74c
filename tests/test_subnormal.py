"""flush_denormals: subnormal numbers set to 0, gradient passed through; the masked softmax of
contextual attention returns none, with values unchanged beyond what float32 can show."""
import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from inpainting.model.attention_steps import masked_softmax
from nnlite.kernels.elementwise import flush_denormals_
from nnlite.testing import gradcheck, gradgradcheck

TINY32 = np.finfo(np.float32).tiny


def _loop_flush(array):
    out = array.copy()
    for index in np.ndindex(array.shape):
        if 0 < abs(float(array[index])) < np.finfo(array.dtype).tiny:
            out[index] = 0
    return out


def test_flush_equals_a_loop_and_keeps_normal_values_nan_and_inf():
    values = np.array([0.0, -0.0, 1e-39, -1e-40, TINY32, -TINY32, 1e-30, 1.0, np.inf, -np.inf,
                       np.nan, 3e-45], np.float32)
    flushed = F.flush_denormals(values).data
    expected = _loop_flush(values)
    np.testing.assert_array_equal(flushed, expected)          # NaN == NaN here
    assert np.count_nonzero(values != flushed) == 4           # the four subnormals (3e-45 too)
    assert values[2] == np.float32(1e-39)                     # the input is not changed
    array = values.copy()
    assert flush_denormals_(array) is array
    np.testing.assert_array_equal(array, expected)
    doubles = np.array([1e-39, 1e-300, 1e-310], np.float64)   # float64's tiny is 2.2e-308
    np.testing.assert_array_equal(F.flush_denormals(doubles).data, [1e-39, 1e-300, 0.0])


def test_flush_gradcheck_and_gradgradcheck_float64():
    x = nnlite.Tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)
    assert gradcheck(F.flush_denormals, (x,))
    assert gradgradcheck(lambda t: F.flush_denormals(t) ** 2, (x,))


def test_flush_gradient_is_flushed_too():
    x = nnlite.Tensor(np.ones(3, np.float32), requires_grad=True)
    y = F.flush_denormals(x) * np.array([1e-39, 1.0, 2.0], np.float32)
    (g,) = nnlite.grad(F.sum(y), x)
    np.testing.assert_array_equal(g.data, [0.0, 1.0, 2.0])


def test_masked_softmax_has_no_subnormals_and_the_same_values():
    rng = np.random.default_rng(1)
    scores = rng.uniform(-1, 1, (2, 16, 16)).astype(np.float32)
    scores[:, :, 0] = 12.0                      # scale 10: exp(-130) and below appear
    mm = (rng.uniform(size=(1, 16)) > 0.2).astype(np.float32)
    s = nnlite.Tensor(scores, requires_grad=True)
    attention = masked_softmax(s, mm, 10.0)
    a = attention.data
    assert not ((a != 0) & (np.abs(a) < TINY32)).any()
    z = 10.0 * scores.astype(np.float64) * mm[:, None, :]
    p = np.exp(z - z.max(-1, keepdims=True))
    reference = p / p.sum(-1, keepdims=True) * mm[:, None, :]
    assert ((reference > 0) & (reference < TINY32)).any()    # the test meets subnormals
    np.testing.assert_allclose(a, reference, rtol=1e-5, atol=TINY32)
    upstream = rng.normal(size=a.shape).astype(np.float32) * 1e-6
    (g,) = nnlite.grad(F.sum(attention * upstream), s)
    assert not ((g.data != 0) & (np.abs(g.data) < TINY32)).any()
    expected = 10.0 * reference * (upstream - (upstream * reference).sum(-1, keepdims=True))
    np.testing.assert_allclose(g.data, expected, rtol=1e-4, atol=1e-30)
