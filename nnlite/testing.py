"""Numerical gradient checks, with PyTorch's names and defaults.

``gradcheck(fn, inputs)`` compares the analytic vector-Jacobian product
``v^T J`` (what backward computes) with central finite differences of
``<v, fn(x)>`` for a *random* ``v`` — random, because ``v = ones`` cannot see a
missing transpose of the incoming gradient. ``gradgradcheck`` is the same check
applied to the function ``x, v -> backward(v)`` built with ``create_graph=True``:
it verifies second derivatives, which the WGAN-GP penalty relies on.

Both require float64 inputs: in float32 a finite difference with eps = 1e-6 is
noise.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import grad as autograd_grad
from .autograd import enable_grad
from .tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree."""


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _check_inputs(inputs, name):
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            raise TypeError(f"{name}: input {i} is {x.dtype}; numerical checks need float64 "
                            "(finite differences in float32 are dominated by rounding)")
    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        raise ValueError(f"{name}: no input has requires_grad=True; nothing to check")


def _random_like(array, rng):
    xp = backend.get_array_module(array)
    return xp.asarray(rng.standard_normal(array.shape)).astype(array.dtype)


def _compare(name, index, analytic, numeric, atol, rtol, raise_exception):
    analytic = backend.to_device(analytic, "cpu")
    numeric = backend.to_device(numeric, "cpu")
    error = np.abs(analytic - numeric)
    limit = atol + rtol * np.abs(numeric)
    if np.all(error <= limit):
        return True
    worst = np.unravel_index(np.argmax(error - limit), error.shape) if error.ndim else ()
    message = (f"{name}: gradient mismatch for input {index} at element {tuple(int(i) for i in worst)}: "
               f"analytic {analytic[worst]:.8g}, numeric {numeric[worst]:.8g} "
               f"(|diff| {error[worst]:.3g} > atol {atol} + rtol {rtol} * |numeric|); "
               f"{int(np.sum(error > limit))} of {error.size} elements disagree")
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              fast_mode=False, seed=0):
    """Check the first derivatives of ``fn`` at ``inputs`` against finite differences.

    Args:
        fn: a function of the tensors in ``inputs`` returning a Tensor or a tuple of Tensors.
        inputs: a Tensor or sequence; the float64 tensors with ``requires_grad`` are checked.
        eps: the central-difference step. atol, rtol: tolerance per element.
        fast_mode: check only along one random direction per input (a directional
            derivative) instead of element by element: much cheaper for big inputs.
        seed: seeds the random ``grad_outputs`` and directions.

    Returns True, or raises ``GradcheckError`` naming the input, the worst
    element and both values (returns False when ``raise_exception=False``).
    """
    inputs = _as_tuple(inputs)
    _check_inputs(inputs, "gradcheck")
    rng = np.random.default_rng(seed)
    outputs = _as_tuple(fn(*inputs))
    outputs = [y for y in outputs if isinstance(y, Tensor) and y.requires_grad]
    if not outputs:
        raise ValueError("gradcheck: fn returned no output that requires grad")
    vs = [Tensor(_random_like(y.data, rng)) for y in outputs]
    checked = [(i, x) for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    analytic = autograd_grad(outputs, [x for _, x in checked], vs, allow_unused=True)

    def objective():
        # Not under no_grad: fn may itself take gradients (a gradient penalty does).
        ys = [y for y in _as_tuple(fn(*inputs)) if isinstance(y, Tensor) and y.requires_grad]
        return sum(float((y.data * v.data).sum()) for y, v in zip(ys, vs))

    ok = True
    for (index, x), g in zip(checked, analytic):
        g = np.zeros(x.shape) if g is None else backend.to_device(g.data, "cpu")
        original = x.data.copy()
        if fast_mode:
            direction = _random_like(x.data, rng)
            x.data = original + eps * direction
            plus = objective()
            x.data = original - eps * direction
            minus = objective()
            x.data = original
            numeric = np.asarray((plus - minus) / (2 * eps))
            analytic_value = np.asarray(float((g * backend.to_device(direction, "cpu")).sum()))
            ok &= _compare("gradcheck", index, analytic_value, numeric, atol, rtol,
                           raise_exception)
            continue
        numeric = np.zeros(x.shape)
        x.data = original.copy()   # C-contiguous, so the flat view below writes into x.data
        flat = x.data.reshape(-1)
        for k in range(flat.size):
            saved = flat[k].item()
            flat[k] = saved + eps
            plus = objective()
            flat[k] = saved - eps
            minus = objective()
            flat[k] = saved
            numeric.reshape(-1)[k] = (plus - minus) / (2 * eps)
        x.data = original
        ok &= _compare("gradcheck", index, g, numeric, atol, rtol, raise_exception)
    return bool(ok)


def gradgradcheck(fn, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, fast_mode=False, seed=0):
    """Check second derivatives: ``gradcheck`` of ``(x, v) -> d<v, fn(x)>/dx``.

    As in PyTorch, the ``grad_outputs`` ``v`` (random when not given) are
    inputs of the checked function too, so the check also verifies that each
    backward is linear in, and really uses, its incoming gradient.
    """
    inputs = _as_tuple(inputs)
    _check_inputs(inputs, "gradgradcheck")
    rng = np.random.default_rng(seed + 1)
    outputs = [y for y in _as_tuple(fn(*inputs)) if isinstance(y, Tensor) and y.requires_grad]
    if grad_outputs is None:
        grad_outputs = [_random_like(y.data, rng) for y in outputs]
    vs = [Tensor(v.data if isinstance(v, Tensor) else v, requires_grad=True)
          for v in _as_tuple(grad_outputs)]
    _check_inputs(vs, "gradgradcheck (grad_outputs)")
    count = len(inputs)
    differentiable = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_derivative(*values):
        xs, v = values[:count], list(values[count:])
        with enable_grad():
            ys = [y for y in _as_tuple(fn(*xs)) if isinstance(y, Tensor) and y.requires_grad]
            wanted = [xs[i] for i in differentiable]
            grads = autograd_grad(ys, wanted, v, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivative, tuple(inputs) + tuple(vs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, fast_mode=fast_mode, seed=seed + 2)
