"""nnlite.kernels.elementwise: each fast kernel gives what its plain NumPy twin gives."""
import numpy as np
import pytest

from nnlite.kernels import elementwise


@pytest.mark.parametrize("alpha", [1.0, 0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elu_kernel_equals_its_plain_twin(alpha, dtype):
    x = np.random.default_rng(0).standard_normal((3, 5, 7, 9)).astype(dtype)
    x[0, 0, 0, :3] = 0.0
    y, positive = elementwise.elu_forward(x, alpha)
    y_plain, positive_plain = elementwise.elu_plain(x, alpha)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(positive, positive_plain)
    np.testing.assert_allclose(y, y_plain, rtol=1e-6 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_kernel_equals_its_plain_twin(axis):
    x = np.random.default_rng(1).standard_normal((4, 6, 5)) * 5
    np.testing.assert_allclose(elementwise.softmax_forward(x, axis),
                               elementwise.softmax_plain(x, axis), rtol=1e-14)
    out = x.copy()
    assert elementwise.softmax_into(out, out, axis) is out      # in place
    np.testing.assert_allclose(out, elementwise.softmax_plain(x, axis), rtol=1e-14)
