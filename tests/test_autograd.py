"""Graph mechanics of the autograd engine: diamonds, reuse, leaves, grad modes,
``grad`` vs ``backward``, higher orders, the gradient-penalty pattern, backend
mixing, the checks on every returned gradient, and random composite graphs.
"""
import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from nnlite import DoubleBackwardError, Function, Tensor, backend, enable_grad, fake_device, grad, no_grad
from nnlite.testing import gradcheck, gradgradcheck


def _scalar(xp, value, requires_grad=True):
    return Tensor(xp.asarray(value, dtype=xp.float64), requires_grad=requires_grad)


# ------------------------------------------------------------------ graph shapes
def test_diamond_graph(xp):
    x = _scalar(xp, 1.5)
    b, c = x * 2, x ** 2          # two paths from x ...
    d = b * c                     # ... meet again: d = 2 x^3
    d.backward()
    assert x.grad.item() == pytest.approx(6 * 1.5 ** 2)


def test_paths_of_different_lengths_are_complete_before_propagation(xp):
    # a feeds y directly and through a 4-op chain: the heap must wait for both.
    x = _scalar(xp, 0.3)
    a = F.exp(x)
    chain = F.tanh(a * a * 0.5 + 1.0)
    y = a + chain
    y.backward()
    ea = np.exp(0.3)
    expected = ea + (1 - np.tanh(0.5 * ea ** 2 + 1) ** 2) * ea ** 2
    assert x.grad.item() == pytest.approx(expected, rel=1e-12)


def test_reused_tensor_accumulates(xp):
    x = _scalar(xp, 2.0)
    y = x * x * x + x + x
    y.backward()
    assert x.grad.item() == pytest.approx(3 * 4.0 + 2)


def test_backward_on_a_leaf(xp):
    x = Tensor(xp.asarray([3.0]), requires_grad=True)
    x.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0])
    x.backward()  # a second backward accumulates
    np.testing.assert_array_equal(x.grad.numpy(), [2.0])


def test_intermediates_get_no_grad_and_the_incoming_gradient_is_not_mutated(xp):
    x = Tensor(xp.asarray([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    y = h + x
    g = Tensor(xp.asarray([1.0, -1.0]))
    y.backward(g)
    assert h.grad is None
    np.testing.assert_array_equal(g.numpy(), [1.0, -1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, -4.0])
    assert x.grad.creator is None and not x.grad.requires_grad


def test_backward_argument_errors(xp):
    x = Tensor(xp.asarray([1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(Tensor(xp.ones(3)))
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(xp.ones(2)).sum().backward()
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(xp.arange(3), requires_grad=True)


def test_unused_output_of_a_two_output_function_gets_zero_gradient(xp):
    class Split(Function):
        def forward(self, x):
            return x * 2, x * 3

        def backward(self, g_first, g_second):
            return g_first * 2 + g_second * 3

    x = Tensor(xp.asarray([1.0, 2.0]), requires_grad=True)
    first, second = Split()(x)          # second alive but unused
    first.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    x.grad = None
    only_second = Split()(x)[1]         # first already garbage: zeros of its recorded shape
    only_second.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_only_needed_input_gradients_are_requested(xp):
    seen = []

    class Probe(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            seen.append(self.needs_input_grad)
            a, b = self.inputs
            return (gy * b if self.needs_input_grad[0] else None,
                    gy * a if self.needs_input_grad[1] else None)

    a = Tensor(xp.asarray([2.0]), requires_grad=True)
    b = Tensor(xp.asarray([5.0]))
    Probe()(a, b).backward()
    assert seen == [(True, False)]
    assert a.grad.item() == 5.0 and b.grad is None


# ------------------------------------------------------------------ grad modes
def test_no_grad_records_nothing_and_enable_grad_reenables(xp):
    x = _scalar(xp, 1.0)
    with no_grad():
        y = x * 2
        with enable_grad():
            z = x * 3
        assert not nnlite.is_grad_enabled()
    assert nnlite.is_grad_enabled()
    assert y.creator is None and not y.requires_grad
    assert z.creator is not None and z.requires_grad


def test_grad_agrees_with_backward_and_leaves_dot_grad_alone(xp, rng):
    w = Tensor(xp.asarray(rng.standard_normal((3, 2))), requires_grad=True)
    x = Tensor(xp.asarray(rng.standard_normal((4, 3))), requires_grad=True)

    def loss():
        return (F.tanh(x @ w) ** 2).sum()

    gw, gx = grad(loss(), [w, x])
    assert w.grad is None and x.grad is None
    loss().backward()
    np.testing.assert_allclose(gw.numpy(), w.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(gx.numpy(), x.grad.numpy(), rtol=1e-14)
    before = w.grad.numpy().copy()
    grad(loss(), w)
    np.testing.assert_array_equal(w.grad.numpy(), before)


def test_grad_argument_rules(xp):
    x, unused = _scalar(xp, 1.0), _scalar(xp, 2.0)
    y = x * x
    with pytest.raises(ValueError, match="allow_unused"):
        grad(y, [x, unused])
    gx, gu = grad(x * x, [x, unused], allow_unused=True)
    assert gx.item() == 2.0 and gu is None
    v = Tensor(xp.asarray([1.0, 2.0]), requires_grad=True)
    with pytest.raises(ValueError, match="grad_outputs must be given"):
        grad(v * 2, v)
    with pytest.raises(ValueError, match="requires_grad"):
        grad(y, Tensor(xp.asarray(1.0)))


def test_third_derivative_with_create_graph(xp):
    # f = x^3 e^x; f' = (3x^2 + x^3) e^x; f'' = (6x + 6x^2 + x^3) e^x;
    # f''' = (6 + 18x + 9x^2 + x^3) e^x.
    x0 = 0.7
    x = _scalar(xp, x0)
    f = x ** 3 * F.exp(x)
    (d1,) = grad(f, x, create_graph=True)
    (d2,) = grad(d1, x, create_graph=True)
    (d3,) = grad(d2, x)
    e = np.exp(x0)
    assert d1.item() == pytest.approx((3 * x0 ** 2 + x0 ** 3) * e, rel=1e-12)
    assert d2.item() == pytest.approx((6 * x0 + 6 * x0 ** 2 + x0 ** 3) * e, rel=1e-12)
    assert d3.item() == pytest.approx((6 + 18 * x0 + 9 * x0 ** 2 + x0 ** 3) * e, rel=1e-12)
    assert d3.creator is None


def test_backward_with_create_graph_keeps_a_differentiable_grad(xp):
    x = _scalar(xp, 0.5)
    (x ** 3).backward(create_graph=True)
    first = x.grad
    assert first.creator is not None
    x.grad = None
    first.backward()
    assert x.grad.item() == pytest.approx(6 * 0.5)


def test_no_parameter_grad_keeps_a_graph_after_a_penalty_step(xp, rng):
    # The WGAN-GP pattern: d|grad_x D|^2 / dp via grad(create_graph=True) then backward.
    p = Tensor(xp.asarray(rng.standard_normal((3, 1))), requires_grad=True)
    x = Tensor(xp.asarray(rng.standard_normal((4, 3))), requires_grad=True)
    score = F.tanh(x @ p).sum()
    (gx,) = grad(score, x, create_graph=True)
    penalty = ((F.sqrt((gx * gx).sum(axis=1) + 1e-12) - 1.0) ** 2).mean()
    (score + penalty).backward()
    for leaf in (p, x):
        assert leaf.grad.creator is None and not leaf.grad.requires_grad
    assert np.all(np.isfinite(p.grad.numpy()))


# ------------------------------------------------------------------ backends and dtypes
def test_mixed_backends_are_rejected_naming_the_op():
    device = fake_device.cupy           # the fake device: CuPy's semantics, no GPU needed
    assert backend.get_array_module(np.zeros(2), 3.0) is np
    with pytest.raises(backend.BackendMismatchError, match="in Mul"):
        backend.get_array_module(np.zeros(2), device.zeros(2), op="Mul")
    host = Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(backend.BackendMismatchError, match="in Add"):
        F.add(host, Tensor(device.zeros(2)))
    with pytest.raises(backend.BackendMismatchError, match="in MatMul"):
        F.matmul(host.reshape(1, 2), Tensor(device.zeros((2, 1))))


def test_a_function_may_return_an_array_of_the_other_backend():
    # What ToDevice does: host input, device output. The engine must not convert it back.
    class Upload(Function):
        def forward(self, x):
            return fake_device.cupy.asarray(x)

    y = Upload()(Tensor(np.zeros(2), requires_grad=True))
    assert isinstance(y.data, fake_device.FakeArray) and y.device == "fake"


@pytest.mark.skipif(not nnlite.cuda_available(), reason="needs a CUDA device for real CuPy arrays")
def test_mixed_real_arrays_are_rejected():
    with pytest.raises(backend.BackendMismatchError, match="in Mul"):
        Tensor(np.ones(2)) * Tensor(backend.cupy.ones(2))


def test_float32_graph_stays_float32_with_python_scalars(xp, rng):
    x = Tensor(xp.asarray(rng.standard_normal((3, 4)), dtype=xp.float32), requires_grad=True)
    w = Tensor(xp.asarray(rng.standard_normal((4, 2)), dtype=xp.float32), requires_grad=True)
    y = F.elu(x @ w * 0.5 + 1.0) ** 2 / 3.0 - 0.25
    loss = F.mse_loss(y, xp.zeros((3, 2), dtype=xp.float32)) * 2
    assert y.dtype == np.float32 and loss.dtype == np.float32
    (gw,) = grad(loss, w, create_graph=True)
    (gx,) = grad((gw * gw).sum(), x)
    assert gw.dtype == np.float32 and gx.dtype == np.float32


# ------------------------------------------------------------------ gradient checks in the engine
class _WrongShape(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy.sum()


class _WrongDtype(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return F.cast(gy, np.float32)


class _WrongCount(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy, gy


class _NotATensor(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy.data


@pytest.mark.parametrize("function, error, message", [
    (_WrongShape, ValueError, r"_WrongShape.backward returned a gradient of shape \(\)"),
    (_WrongDtype, TypeError, "_WrongDtype.backward returned a gradient of dtype float32"),
    (_WrongCount, ValueError, "_WrongCount.backward returned 2 gradients for 1 inputs"),
    (_NotATensor, TypeError, "_NotATensor.backward returned ndarray"),
])
def test_a_broken_backward_is_blamed_by_name(function, error, message):
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        function()(x).sum().backward()


class _ConstantSlope(Function):
    """d/dx x^2 with the slope 2x frozen as an array: right once, wrong twice."""
    double_backward = False

    def forward(self, x):
        self.slope = 2 * x
        return x * x

    def backward(self, gy):
        return gy * self.slope


def test_double_backward_error_under_create_graph(xp):
    x = Tensor(xp.asarray([1.0, 2.0]), requires_grad=True)
    (g,) = grad(_ConstantSlope()(x).sum(), x)      # first order is fine
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    with pytest.raises(DoubleBackwardError, match="_ConstantSlope"):
        grad(_ConstantSlope()(x).sum(), x, create_graph=True)
    with pytest.raises(DoubleBackwardError, match="_ConstantSlope"):
        _ConstantSlope()(x).sum().backward(create_graph=True)


# ------------------------------------------------------------------ random composite graphs
_UNARY = [F.tanh, F.sigmoid, F.elu, lambda t: F.exp(t * 0.3), lambda t: t * t,
          lambda t: F.softmax(t, axis=-1), lambda t: F.sqrt(t * t + 1.0)]
_BINARY = [F.add, F.sub, F.mul, lambda a, b: a / (b * b + 1.0), lambda a, b: a @ F.transpose(b)]


def _random_graph(seed):
    """A function of two (3, 3) tensors built from a seeded random sequence of ops; every
    intermediate may be reused (diamonds) and the result mixes several of them."""
    choices = np.random.default_rng(seed)
    plan = []
    for _ in range(6):
        if choices.random() < 0.5:
            plan.append(("unary", int(choices.integers(len(_UNARY))), int(choices.integers(8))))
        else:
            plan.append(("binary", int(choices.integers(len(_BINARY))),
                         int(choices.integers(8)), int(choices.integers(8))))

    def fn(a, b):
        values = [a, b]
        for step in plan:
            if step[0] == "unary":
                values.append(_UNARY[step[1]](values[step[2] % len(values)]))
            else:
                values.append(_BINARY[step[1]](values[step[2] % len(values)],
                                               values[step[3] % len(values)]))
        return values[-1] + values[-2] * 0.5 + values[len(values) // 2]

    return fn


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_first_and_second_derivatives(seed, xp):
    rng = np.random.default_rng(100 + seed)
    fn = _random_graph(seed)
    inputs = [Tensor(xp.asarray(rng.standard_normal((3, 3)) * 0.5), requires_grad=True)
              for _ in range(2)]
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_the_nnlite_demo_fits_and_prints_exact_derivatives(capsys):
    """``python -m nnlite.demo``: the fit's loss falls and d/dt t^3, d2/dt2 t^3 at 0.5 are
    3t^2 = 0.75 and 6t = 3.0."""
    from nnlite import demo

    demo.main()
    lines = capsys.readouterr().out.splitlines()
    losses = [float(line.split("mse")[1]) for line in lines if line.startswith("step")]
    assert len(losses) == 4 and losses[-1] < 0.2 * losses[0]
    assert lines[-1] == "d/dt t^3 at 0.5 = 0.750 (3t^2 = 0.75); d2/dt2 = 3.000 (6t = 3.0)"


def test_grad_argument_errors_say_what_is_wrong():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x * 2
    with pytest.raises(ValueError, match="grad: 2 grad_outputs for 1 outputs"):
        grad(y, x, grad_outputs=[np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match=r"grad: grad_output of shape \(2,\) for output \(3,\)"):
        grad(y, x, grad_outputs=np.ones(2))
    with pytest.raises(ValueError, match="must be given for an output of shape"):
        grad(y, x)
    with pytest.raises(ValueError, match="an output does not require grad"):
        grad(Tensor(np.ones(3)).sum(), x)
    with pytest.raises(ValueError, match="every input must be a Tensor with requires_grad=True"):
        grad(y.sum(), Tensor(np.ones(3)))
    (gx,) = grad(y, x, grad_outputs=np.array([1.0, 2.0, 3.0]))   # given: any shape-matching array
    np.testing.assert_array_equal(gx.numpy(), [2.0, 4.0, 6.0])


def test_a_function_without_forward_or_backward_names_itself():
    class NoForward(Function):
        pass

    class NoBackward(Function):
        def forward(self, x):
            return x * 2

    with pytest.raises(NotImplementedError, match="NoForward must implement forward"):
        NoForward()(Tensor(np.ones(2), requires_grad=True))
    with pytest.raises(NotImplementedError, match="NoBackward must implement backward"):
        NoBackward()(Tensor(np.ones(2), requires_grad=True)).sum().backward()


# ------------------------------------------------------------------ engine and tensor rules
def test_backward_from_a_leaf_stores_a_detached_gradient(xp):
    """Without create_graph the stored .grad holds no graph, even when the given grad does."""
    x = Tensor(xp.asarray([1.0, 2.0]), requires_grad=True)
    v = Tensor(xp.asarray([3.0, -4.0]), requires_grad=True)
    x.backward(v)
    assert x.grad is not v
    assert not x.grad.requires_grad and x.grad.creator is None
    np.testing.assert_array_equal(backend.to_device(x.grad.data, "cpu"), [3.0, -4.0])


def test_grad_with_respect_to_an_intermediate_tensor(xp):
    """grad() may ask for a non-leaf input: its gradient is kept, not freed after use."""
    x = Tensor(xp.asarray([1.0, -2.0]), requires_grad=True)
    y = x * 3.0                       # y = [3, -6]
    z = (y * y).sum()                 # dz/dy = 2 y
    gy, gx = grad(z, [y, x])
    np.testing.assert_array_equal(gy.numpy(), [6.0, -12.0])
    np.testing.assert_array_equal(gx.numpy(), [18.0, -36.0])   # 2 * 3 * 3x


def test_grad_without_create_graph_returns_detached_gradients(xp):
    """grad(create_graph=False) returns gradients with no graph, whatever grad_outputs carry."""
    x = Tensor(xp.asarray([1.0, 2.0]), requires_grad=True)
    y = x * 2.0
    v = Tensor(xp.asarray([1.0, 1.0]), requires_grad=True)
    gy, gx = grad(y, [y, x], grad_outputs=v)
    for g in (gy, gx):
        assert not g.requires_grad and g.creator is None
    assert gy is not v
    np.testing.assert_array_equal(gx.numpy(), [2.0, 2.0])


def test_backward_refuses_a_grad_of_another_shape_even_when_it_would_broadcast(xp):
    """backward(grad) needs grad.shape == self.shape exactly: (1,) is refused for a 0-d sum."""
    x = Tensor(xp.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        x.sum().backward(Tensor(xp.ones(1)))
    assert x.grad is None


def test_python_floats_and_lists_default_to_float32():
    """Tensor(python float / list of floats) is float32 (PyTorch's default); arrays keep float64."""
    assert Tensor(0.5).dtype == np.float32
    assert Tensor([1.0, 2.5]).dtype == np.float32
    assert Tensor([[1.0], [2.0]]).dtype == np.float32
    assert Tensor(np.ones(2)).dtype == np.float64


def test_comparisons_are_plain_boolean_arrays_with_the_usual_meaning():
    """<, <=, >, >=, ==, != compare elementwise (inclusive ones include ties) and give bool arrays."""
    x = Tensor(np.asarray([1.0, 2.0, 3.0]))
    y = np.asarray([2.0, 2.0, 2.0])
    assert (x >= y).tolist() == [False, True, True]
    assert (x > y).tolist() == [False, False, True]
    assert (x <= y).tolist() == [True, True, False]
    assert (x < y).tolist() == [True, False, False]
    assert (x == 2.0).tolist() == [False, True, False]
    assert (x != 2.0).tolist() == [True, False, True]
    assert (x >= 2.0).dtype == bool


def test_gradients_at_the_kink_zero():
    """At x = 0 (PyTorch's convention): abs' = 0, relu' = 0, leaky_relu' = slope,
    elu' = alpha (the x <= 0 branch y + alpha with y = 0)."""
    def derivative(fn):
        x = Tensor(np.zeros(1), requires_grad=True)
        fn(x).sum().backward()
        return float(x.grad.numpy()[0])

    assert derivative(F.abs) == 0.0
    assert derivative(F.relu) == 0.0
    assert derivative(lambda t: F.leaky_relu(t, 0.2)) == pytest.approx(0.2)
    assert derivative(lambda t: F.elu(t, alpha=0.5)) == pytest.approx(0.5)
    assert derivative(lambda t: F.elu(t, alpha=1.0)) == pytest.approx(1.0)


def test_softmax_refuses_an_axis_out_of_range():
    """softmax(axis) needs -ndim <= axis < ndim; it does not wrap an out-of-range axis."""
    x = Tensor(np.zeros((2, 3)))
    for axis in (2, -3):
        with pytest.raises(ValueError, match="out of range"):
            F.softmax(x, axis=axis)


# ------------------------------------------------------------------ gradient pruning
def test_grad_computes_only_the_gradients_on_a_path_to_its_inputs(rng):
    """grad(y, x) with a weight that requires grad: the weight gradient is not computed
    (it leads to no requested input), and the input gradient is the same as when both
    are requested. A test-local Conv2d records which gradients its backward returns."""
    from nnlite.functional.conv import Conv2d
    from nnlite.conv_geometry import conv_geometry

    returned = []

    class RecordedConv2d(Conv2d):
        def backward(self, gy):
            grads = super().backward(gy)
            returned.append(tuple(g is not None for g in grads))
            return grads

    x = Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    v = Tensor(rng.standard_normal((2, 4, 6, 6)))
    geometry = conv_geometry(x.shape, w.shape, 1, 1, 1, "conv2d")

    def forward():
        return RecordedConv2d(geometry)(F.tanh(x), w)

    np.testing.assert_array_equal(forward().data, F.conv2d(F.tanh(x), w, padding=1).data)
    both = grad(forward(), [x, w], v)
    assert returned == [(True, True)]
    gx, = grad(forward(), [x], v)
    assert returned[1:] == [(True, False)]          # no weight gradient computed
    np.testing.assert_array_equal(gx.data, both[0].data)
    gw, = grad(forward(), [w], v)     # and the other way round
    assert returned[2:] == [(False, True)]
    np.testing.assert_array_equal(gw.data, both[1].data)


def test_pruned_inner_gradient_keeps_second_derivatives_exact(rng):
    """The WGAN-GP shape: an inner grad w.r.t. the input only (create_graph=True), then
    the outer gradient w.r.t. the weights through it, checked against finite differences."""
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3)) * 0.5

    def penalty(w_, x_):
        inner, = grad(F.tanh(F.conv2d(x_, w_, padding=1)).sum(), [x_], create_graph=True)
        return (inner * inner).sum()

    assert gradcheck(penalty, [Tensor(w, requires_grad=True), Tensor(x, requires_grad=True)])
    assert gradgradcheck(lambda w_, x_: penalty(w_, x_),
                         [Tensor(w, requires_grad=True), Tensor(x, requires_grad=True)])


def test_an_intermediate_input_stops_the_walk(rng):
    """grad w.r.t. a non-leaf: nothing upstream of it is differentiated (a test-local Exp
    counts its backward calls)."""
    from nnlite.functional.basic import Exp

    calls = []

    class CountedExp(Exp):
        def backward(self, gy):
            calls.append(1)
            return super().backward(gy)

    a = Tensor(rng.standard_normal(4), requires_grad=True)
    hidden = CountedExp()(a)
    g, = grad((hidden * hidden).sum(), [hidden])
    np.testing.assert_allclose(g.data, 2 * hidden.data)
    assert calls == []
    grad((hidden * hidden).sum(), [a])       # the counter does count when on the path
    assert calls == [1]
