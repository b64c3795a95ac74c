"""Meta-tests: the gradient checkers must catch wrong derivatives and say where.

A checker that passes everything is worse than none, so each check here is run
on a deliberately broken Function and must fail, and on the correct one and
must pass.
"""
import re

import numpy as np
import pytest

import nnlite.functional as F
from nnlite import Function, Tensor
from nnlite.testing import GradcheckError, gradcheck, gradgradcheck


class _Square(Function):
    """x^2 with a correct, differentiable backward: 2 x gy."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * 2 * self.inputs[0]


class _SquareFrozenSlope(Function):
    """x^2 whose backward multiplies by a saved array 2x: the first derivative is right,
    but the graph of the gradient sees 2x as a constant, so d/dx of it is 0, not 2."""

    def forward(self, x):
        self.slope = 2 * x
        return x * x

    def backward(self, gy):
        return gy * self.slope


class _SquareIgnoresIncoming(Function):
    """x^2 whose backward forgets to multiply by the incoming gradient."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return 2 * self.inputs[0]


class _MatMulMissingTranspose(Function):
    """a @ b with gb = a @ gy instead of a^T @ gy: right shapes (square), wrong values."""

    def forward(self, a, b):
        return a @ b

    def backward(self, gy):
        a, b = self.inputs
        return gy @ F.transpose(b), a @ gy


class _SquareOneWrongElement(Function):
    """x^2 whose gradient is off by +1 at element (1, 2) only."""

    def forward(self, x):
        self.bump = np.zeros(x.shape)
        self.bump[1, 2] = 1.0
        return x * x

    def backward(self, gy):
        return gy * 2 * self.inputs[0] + self.bump


def _x(rng, shape=(2, 3), dtype=np.float64):
    return Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)


def test_correct_function_passes_both_checks(rng):
    x = _x(rng)
    assert gradcheck(lambda t: _Square()(t), x)
    assert gradgradcheck(lambda t: _Square()(t), x)
    assert gradcheck(lambda t: _Square()(t), x, fast_mode=True)
    assert gradgradcheck(lambda t: _Square()(t), x, fast_mode=True)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradcheck_catches_a_backward_that_ignores_its_incoming_gradient(rng, fast_mode):
    with pytest.raises(GradcheckError, match="gradient mismatch for input 0"):
        gradcheck(lambda t: _SquareIgnoresIncoming()(t), _x(rng), fast_mode=fast_mode)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradcheck_catches_a_missing_transpose(rng, fast_mode):
    a, b = _x(rng, (3, 3)), _x(rng, (3, 3))
    with pytest.raises(GradcheckError, match="for input 1"):
        gradcheck(lambda p, q: _MatMulMissingTranspose()(p, q), [a, b], fast_mode=fast_mode)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradgradcheck_catches_a_wrong_second_derivative(rng, fast_mode):
    x = _x(rng)
    assert gradcheck(lambda t: _SquareFrozenSlope()(t), x)          # first order is right...
    with pytest.raises(GradcheckError, match="gradient mismatch for input 0"):
        gradgradcheck(lambda t: _SquareFrozenSlope()(t), x, fast_mode=fast_mode)  # ...second not


def test_gradgradcheck_with_given_grad_outputs(rng):
    x = _x(rng)
    v = rng.standard_normal((2, 3))
    assert gradgradcheck(lambda t: _Square()(t), x, grad_outputs=[v])
    with pytest.raises(GradcheckError):
        gradgradcheck(lambda t: _SquareFrozenSlope()(t), x, grad_outputs=[Tensor(v)])


def test_report_names_the_input_the_element_and_both_values(rng):
    x = _x(rng)
    other = _x(rng)
    with pytest.raises(GradcheckError) as caught:
        gradcheck(lambda a, b: a * 1.0 + _SquareOneWrongElement()(b), [x, other])
    message = str(caught.value)
    assert "input 1 at element (1, 2)" in message
    found = re.search(r"analytic (\S+), numeric (\S+)", message)
    analytic, numeric = float(found.group(1)), float(found.group(2))
    assert analytic - numeric == pytest.approx(1.0, abs=1e-6)
    assert "1 of 6 elements disagree" in message


def test_raise_exception_false_returns_false(rng):
    assert gradcheck(lambda t: _SquareIgnoresIncoming()(t), _x(rng),
                     raise_exception=False) is False
    assert gradgradcheck(lambda t: _SquareFrozenSlope()(t), _x(rng),
                         raise_exception=False) is False


def test_float32_inputs_are_refused_with_a_reason(rng):
    x = _x(rng, dtype=np.float32)
    with pytest.raises(TypeError, match="input 0 is float32.*float64"):
        gradcheck(F.tanh, x)
    with pytest.raises(TypeError, match="float64"):
        gradgradcheck(F.tanh, x)


def test_nothing_to_check_is_an_error(rng):
    with pytest.raises(ValueError, match="no input has requires_grad"):
        gradcheck(F.tanh, Tensor(rng.standard_normal(3)))


def test_fast_mode_checks_one_direction_per_input(rng):
    # Big enough that element-wise would need 2 * 400 evaluations; fast mode needs 2.
    calls = []

    def fn(t):
        calls.append(1)
        return F.tanh(t)

    x = _x(rng, (20, 20))
    assert gradcheck(fn, x, fast_mode=True)
    assert len(calls) <= 4


def test_non_contiguous_inputs_are_perturbed_correctly(rng):
    x = Tensor(rng.standard_normal((3, 2)).T, requires_grad=True)   # a transposed view
    assert not x.data.flags.c_contiguous
    assert gradcheck(F.tanh, x)
    assert gradgradcheck(F.tanh, x)


# ------------------------------------------------- the checkers must fail on wrong gradients
class _IdentityFlippedGradient(Function):
    """y = x on a vector, with backward returning gy reversed: right along the all-ones
    direction (sum(flip(v)) = sum(v)), wrong along a random one."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return F.getitem(gy, slice(None, None, -1))


class _ScaledWrongSlope(Function):
    """y = k x whose backward uses slope ``k_wrong`` instead of k."""

    def __init__(self, k, k_wrong):
        self.k, self.k_wrong = k, k_wrong

    def forward(self, x):
        return x * self.k

    def backward(self, gy):
        return gy * self.k_wrong


class _IdentityFakeCurvature(Function):
    """y = x whose backward is gy + scale * gy * mask * (x - x.detach()): the value is gy
    (first derivative right) but its graph has d/dx = scale * gy * mask instead of 0.
    ``threshold`` makes the mask (gy > threshold) so the fault shows only for large gy."""

    def __init__(self, scale, threshold=-np.inf):
        self.scale, self.threshold = scale, threshold

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        x, = self.inputs
        mask = Tensor((gy.data > self.threshold).astype(gy.dtype))
        return gy + gy * mask * self.scale * (x - x.detach())


def test_fast_mode_uses_a_random_direction_not_ones(rng):
    """fast_mode checks along a random direction: a gradient that is right only along
    all-ones (a reversed vector) is caught."""
    x = _x(rng, (6,))
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: _IdentityFlippedGradient()(t), x, fast_mode=True)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: _IdentityFlippedGradient()(t), x)


def test_raise_exception_false_reports_an_earlier_failing_input_in_fast_mode(rng):
    """The result is False when ANY input fails, even if a later input passes (fast mode too)."""
    a, b = _x(rng, (3, 3)), _x(rng, (3, 3))
    # b (wrong gradient) is checked first, a (right gradient) last
    fn = lambda q, p: _MatMulMissingTranspose()(p, q)   # noqa: E731
    for fast_mode in (False, True):
        assert gradcheck(fn, [b, a], fast_mode=fast_mode, raise_exception=False) is False


def test_default_absolute_tolerance_is_1e_5(rng):
    """Default atol is 1e-5: a gradient of 1e-3 where the true one is 0 fails."""
    x = _x(rng, (4,))
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: _ScaledWrongSlope(0.0, 1e-3)(t), x)
    assert gradcheck(lambda t: _ScaledWrongSlope(0.0, 1e-9)(t), x)


def test_default_relative_tolerance_is_1e_3(rng):
    """Default rtol is 1e-3: a gradient 2 % too large fails, one 1e-5 too large passes."""
    x = _x(rng, (4,))
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: _ScaledWrongSlope(1.0, 1.02)(t), x)
    assert gradcheck(lambda t: _ScaledWrongSlope(1.0, 1.0 + 1e-5)(t), x)


def test_gradgradcheck_default_absolute_tolerance_is_1e_5(rng):
    """gradgradcheck's default atol is 1e-5: a fake second derivative of 1e-3 * v fails."""
    x = _x(rng, (4,))
    assert gradcheck(lambda t: _IdentityFakeCurvature(1e-3)(t), x)     # first order is right
    with pytest.raises(GradcheckError):
        gradgradcheck(lambda t: _IdentityFakeCurvature(1e-3)(t), x)


def test_gradgradcheck_uses_the_given_grad_outputs(rng):
    """Given grad_outputs are the v of the check, not replaced by random ones: a fault
    that appears only for v > 100 passes with random v and fails with v = 200."""
    x = _x(rng, (4,))
    fn = lambda t: _IdentityFakeCurvature(1.0, threshold=100.0)(t)     # noqa: E731
    assert gradgradcheck(fn, x)
    with pytest.raises(GradcheckError):
        gradgradcheck(fn, x, grad_outputs=Tensor(np.full(4, 200.0)))
