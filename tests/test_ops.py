"""Every op of ``nnlite.functional`` (basic, shape, activation): forward against NumPy,
gradcheck and gradgradcheck in float64 with random grad_outputs, on broadcasting
shapes, with inputs drawn away from kinks. Then the rules each op documents:
max's tie rule, reflect pad's adjoint, clip's gradient, softmax, float32 with
scalars, matmul's 1-d cases. Convolution ops are tested in their own files.
"""
from collections import namedtuple

import numpy as np
import pytest

import nnlite.functional as F
from nnlite import Tensor, backend, grad
from nnlite.functional import activation, basic, shape
from nnlite.testing import gradcheck, gradgradcheck


def _draw(rng, size, kind):
    """normal: N(0,1); positive: U(0.5, 2); away: |x| in [0.2, 1.5] with a random sign
    (away from the kink at 0); clip: away from 0 and from the bounds +-0.5."""
    if kind == "normal":
        return rng.standard_normal(size)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size)
    if kind == "away":
        return rng.choice([-1.0, 1.0], size) * rng.uniform(0.2, 1.5, size)
    if kind == "clip":
        return rng.choice([-1.0, 1.0], size) * rng.choice([0.25, 0.75, 1.2], size)
    raise ValueError(kind)


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_elu(x, alpha):
    return np.where(x > 0, x, alpha * (np.exp(x) - 1))


def _np_reflect_pad(x, widths):
    """Loop reference of reflect padding for 2-d x: index i of the padded axis reads
    x[reflect(i - before)], reflect(k) = -k for k < 0, 2(n-1) - k for k > n-1."""
    def reflect(k, n):
        return -k if k < 0 else (2 * (n - 1) - k if k > n - 1 else k)
    (t, b), (l, r) = widths
    h, w = x.shape
    out = np.empty((h + t + b, w + l + r))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = x[reflect(i - t, h), reflect(j - l, w)]
    return out


_CONDITION = np.array([True, False, True])
_BOOL_INDEX = np.array([[True, False, True], [False, True, True]])
_CONSTANT = np.random.default_rng(99).standard_normal((2, 2))
_ONE_SIDED = ((0, 0), (0, 0), (2, 0), (0, 1))     # zero widths and one-sided reflection


def _on(like, array):
    """``array`` on the device of the tensor ``like`` (NumPy or CuPy)."""
    return backend.get_array_module(like.data).asarray(array)

Case = namedtuple("Case", "name fn ref inputs")
# inputs: (shape, kind) per argument; every argument is a float64 tensor requiring grad.
CASES = [
    Case("add", F.add, np.add, [((2, 3), "normal"), ((3,), "normal")]),
    Case("add_outer", F.add, np.add, [((2, 1, 3), "normal"), ((4, 1), "normal")]),
    Case("sub", F.sub, np.subtract, [((2, 1), "normal"), ((1, 3), "normal")]),
    Case("mul", F.mul, np.multiply, [((2, 3), "normal"), ((2, 1), "normal")]),
    Case("div", F.div, np.divide, [((2, 3), "normal"), ((3,), "positive")]),
    Case("neg", F.neg, np.negative, [((2, 3), "normal")]),
    Case("pow_int", lambda x: F.pow(x, 3), lambda x: x ** 3, [((2, 3), "normal")]),
    Case("pow_half", lambda x: F.pow(x, 0.5), np.sqrt, [((2, 3), "positive")]),
    Case("pow_negative", lambda x: x ** -2.0, lambda x: x ** -2.0, [((2, 3), "positive")]),
    Case("pow_tensor", F.pow, np.power, [((2, 3), "positive"), ((3,), "normal")]),
    Case("exp", F.exp, np.exp, [((2, 3), "normal")]),
    Case("log", F.log, np.log, [((2, 3), "positive")]),
    Case("sqrt", F.sqrt, np.sqrt, [((2, 3), "positive")]),
    Case("abs", F.abs, np.abs, [((2, 3), "away")]),
    Case("maximum", F.maximum, np.maximum, [((2, 3), "normal"), ((3,), "normal")]),
    Case("minimum", F.minimum, np.minimum, [((2, 1), "normal"), ((2, 3), "normal")]),
    Case("where", lambda x, y: F.where(x.data > 0, x, y), lambda x, y: np.where(x > 0, x, y),
         [((2, 3), "away"), ((3,), "normal")]),
    Case("clip", lambda x: F.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
         [((3, 4), "clip")]),
    Case("clip_min_only", lambda x: F.clip(x, min=-0.5), lambda x: np.maximum(x, -0.5),
         [((3, 4), "clip")]),
    Case("sum_all", F.sum, np.sum, [((2, 3), "normal")]),
    Case("sum_axis", lambda x: F.sum(x, axis=1), lambda x: x.sum(axis=1), [((2, 3, 2), "normal")]),
    Case("sum_axes_keepdims", lambda x: F.sum(x, axis=(0, 2), keepdims=True),
         lambda x: x.sum(axis=(0, 2), keepdims=True), [((2, 3, 2), "normal")]),
    Case("mean", lambda x: F.mean(x, axis=-1), lambda x: x.mean(axis=-1), [((2, 3), "normal")]),
    Case("mean_all", F.mean, np.mean, [((2, 3), "normal")]),
    Case("max_all", F.max, np.max, [((2, 3), "normal")]),
    Case("max_axis", lambda x: F.max(x, axis=1), lambda x: x.max(axis=1), [((2, 3, 2), "normal")]),
    Case("max_axes_keepdims", lambda x: F.max(x, axis=(0, 2), keepdims=True),
         lambda x: x.max(axis=(0, 2), keepdims=True), [((2, 3, 2), "normal")]),
    Case("sum_to", lambda x: F.sum_to(x, (1, 3)), lambda x: x.sum(axis=0, keepdims=True),
         [((2, 3), "normal")]),
    Case("sum_to_drop_lead", lambda x: F.sum_to(x, (3,)), lambda x: x.sum(axis=0),
         [((2, 3), "normal")]),
    Case("broadcast_to", lambda x: F.broadcast_to(x, (2, 4, 3)),
         lambda x: np.broadcast_to(x, (2, 4, 3)), [((4, 1), "normal")]),
    Case("reshape", lambda x: F.reshape(x, (3, 2)), lambda x: x.reshape(3, 2),
         [((2, 3), "normal")]),
    Case("flatten", F.flatten, lambda x: x.reshape(2, -1), [((2, 3, 2), "normal")]),
    Case("transpose", lambda x: F.transpose(x, (2, 0, 1)), lambda x: x.transpose(2, 0, 1),
         [((2, 3, 4), "normal")]),
    Case("transpose_reverse", F.transpose, np.transpose, [((2, 3, 4), "normal")]),
    Case("permute", lambda x: F.permute(x, 1, 0, 2), lambda x: x.transpose(1, 0, 2),
         [((2, 3, 2), "normal")]),
    Case("getitem_slice", lambda x: x[1:, ::2], lambda x: x[1:, ::2], [((3, 5), "normal")]),
    Case("getitem_int_ellipsis", lambda x: x[..., -1, None], lambda x: x[..., -1, None],
         [((2, 3, 4), "normal")]),
    Case("getitem_repeats", lambda x: F.getitem(x, np.array([0, 2, 0, 0])),
         lambda x: x[np.array([0, 2, 0, 0])], [((3, 2), "normal")]),
    Case("concat", lambda a, b: F.concat([a, b], axis=0), lambda a, b: np.concatenate([a, b]),
         [((2, 3), "normal"), ((1, 3), "normal")]),
    Case("concat_last", lambda a, b: F.concat([a, b], axis=-1),
         lambda a, b: np.concatenate([a, b], axis=-1), [((2, 1), "normal"), ((2, 3), "normal")]),
    Case("stack", lambda a, b: F.stack([a, b], axis=1), lambda a, b: np.stack([a, b], axis=1),
         [((2, 3), "normal"), ((2, 3), "normal")]),
    Case("pad_constant", lambda x: F.pad(x, ((1, 0), (2, 1)), value=0.5),
         lambda x: np.pad(x, ((1, 0), (2, 1)), constant_values=0.5), [((2, 3), "normal")]),
    Case("pad_reflect", lambda x: F.pad(x, ((2, 1), (1, 3)), mode="reflect"),
         lambda x: _np_reflect_pad(x, ((2, 1), (1, 3))), [((3, 4), "normal")]),
    Case("matmul", F.matmul, np.matmul, [((2, 3), "normal"), ((3, 4), "normal")]),
    Case("matmul_batched", F.matmul, np.matmul, [((2, 2, 3), "normal"), ((3, 2), "normal")]),
    Case("matmul_vec_vec", F.matmul, np.matmul, [((3,), "normal"), ((3,), "normal")]),
    Case("matmul_vec_mat", F.matmul, np.matmul, [((3,), "normal"), ((2, 3, 4), "normal")]),
    Case("matmul_mat_vec", F.matmul, np.matmul, [((2, 3), "normal"), ((3,), "normal")]),
    Case("relu", F.relu, lambda x: np.maximum(x, 0), [((2, 3), "away")]),
    Case("leaky_relu", F.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), [((2, 3), "away")]),
    Case("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
         [((2, 3), "away")]),
    Case("elu", F.elu, lambda x: _np_elu(x, 1.0), [((2, 3), "away")]),
    Case("elu_alpha", lambda x: F.elu(x, alpha=0.5), lambda x: _np_elu(x, 0.5),
         [((2, 3), "away")]),
    Case("tanh", F.tanh, np.tanh, [((2, 3), "normal")]),
    Case("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [((2, 3), "normal")]),
    Case("softmax", F.softmax, lambda x: _np_softmax(x, -1), [((2, 3), "normal")]),
    Case("softmax_axis0", lambda x: F.softmax(x, axis=0), lambda x: _np_softmax(x, 0),
         [((3, 2), "normal")]),
    Case("softmax_3d_last", lambda x: F.softmax(x, axis=2), lambda x: _np_softmax(x, -1),
         [((2, 3, 4), "normal")]),
    Case("softmax_3d_middle", lambda x: F.softmax(x, axis=-2), lambda x: _np_softmax(x, 1),
         [((2, 3, 4), "normal")]),
    Case("log_softmax", lambda x: F.log_softmax(x, axis=1),
         lambda x: np.log(_np_softmax(x, 1)), [((2, 3), "normal")]),
    Case("l1_loss", F.l1_loss, lambda a, b: np.abs(a - b).mean(),
         [((2, 3), "away"), ((2, 3), "normal")]),
    Case("l1_loss_none", lambda a, b: F.l1_loss(a, b, reduction="none"),
         lambda a, b: np.abs(a - b), [((2, 3), "away"), ((2, 3), "normal")]),
    Case("mse_loss", F.mse_loss, lambda a, b: ((a - b) ** 2).mean(),
         [((2, 3), "normal"), ((2, 3), "normal")]),
    Case("mse_loss_sum", lambda a, b: F.mse_loss(a, b, reduction="sum"),
         lambda a, b: ((a - b) ** 2).sum(), [((2, 3), "normal"), ((2, 3), "normal")]),
    # parameter classes beyond the first cases (an audit of what the cases above miss)
    Case("clip_max_only", lambda x: F.clip(x, max=0.5), lambda x: np.minimum(x, 0.5),
         [((3, 4), "clip")]),
    Case("where_tensor_condition", lambda x, y: F.where(Tensor(_on(x, _CONDITION)), x, y),
         lambda x, y: np.where(_CONDITION, x, y), [((2, 3), "normal"), ((2, 3), "normal")]),
    Case("sum_all_keepdims", lambda x: F.sum(x, keepdims=True), lambda x: x.sum(keepdims=True),
         [((2, 3), "normal")]),
    Case("max_negative_axis_keepdims", lambda x: F.max(x, axis=-1, keepdims=True),
         lambda x: x.max(axis=-1, keepdims=True), [((2, 3), "normal")]),
    Case("mean_axes_keepdims", lambda x: F.mean(x, axis=(0, 2), keepdims=True),
         lambda x: x.mean(axis=(0, 2), keepdims=True), [((2, 3, 2), "normal")]),
    Case("sum_to_drop_lead_keep_inner", lambda x: F.sum_to(x, (3, 1)),
         lambda x: x.sum(axis=(0, 2)).reshape(3, 1), [((2, 3, 4), "normal")]),
    Case("getitem_bool_mask", lambda x: F.getitem(x, _on(x, _BOOL_INDEX)), lambda x: x[_BOOL_INDEX],
         [((2, 3), "normal")]),
    Case("getitem_slice_and_array", lambda x: F.getitem(x, (slice(None), np.array([1, 0, 1]))),
         lambda x: x[:, np.array([1, 0, 1])], [((2, 3), "normal")]),
    Case("getitem_negative_step", lambda x: x[::-1, 1:], lambda x: x[::-1, 1:],
         [((3, 3), "normal")]),
    Case("flatten_from_0", lambda x: F.flatten(x, 0), lambda x: x.reshape(-1),
         [((2, 3), "normal")]),
    Case("transpose_negative_axes", lambda x: F.transpose(x, (-1, 0, 1)),
         lambda x: x.transpose(2, 0, 1), [((2, 3, 4), "normal")]),
    Case("concat_with_a_constant", lambda a, c: F.concat([a, Tensor(_on(a, _CONSTANT)), c], axis=1),
         lambda a, c: np.concatenate([a, _CONSTANT, c], axis=1),
         [((2, 3), "normal"), ((2, 1), "normal")]),
    Case("matmul_both_batched", F.matmul, np.matmul,
         [((2, 1, 2, 3), "normal"), ((1, 3, 3, 2), "normal")]),
    Case("pad_reflect_one_sided_4d", lambda x: F.pad(x, _ONE_SIDED, mode="reflect"),
         lambda x: np.pad(x, _ONE_SIDED, mode="reflect"), [((1, 2, 4, 5), "normal")]),
    Case("log_softmax_3d_last", F.log_softmax,
         lambda x: x - np.log(np.exp(x).sum(axis=-1, keepdims=True)), [((2, 3, 4), "normal")]),
    Case("l1_loss_sum", lambda a, b: F.l1_loss(a, b, reduction="sum"),
         lambda a, b: np.abs(a - b).sum(), [((2, 3), "away"), ((2, 3), "normal")]),
    Case("mse_loss_none", lambda a, b: F.mse_loss(a, b, reduction="none"),
         lambda a, b: (a - b) ** 2, [((2, 3), "normal"), ((2, 3), "normal")]),
]
IDS = [case.name for case in CASES]


def _inputs(case, xp, rng):
    """(host arrays, float64 tensors on xp). For l1_loss the first input is target + away."""
    arrays = [_draw(rng, size, kind) for size, kind in case.inputs]
    if case.name.startswith("l1_loss"):
        arrays[0] = arrays[1] + arrays[0]  # input - target stays away from the kink
    tensors = [Tensor(xp.asarray(a), requires_grad=True) for a in arrays]
    return arrays, tensors


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy(case, xp, rng):
    arrays, tensors = _inputs(case, xp, rng)
    out = case.fn(*tensors)
    expected = case.ref(*arrays)
    assert out.shape == np.shape(expected)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case, xp, rng):
    _, tensors = _inputs(case, xp, rng)
    assert gradcheck(case.fn, tensors)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradgradcheck(case, xp, rng):
    _, tensors = _inputs(case, xp, rng)
    assert gradgradcheck(case.fn, tensors)


def test_every_op_is_covered():
    """Each name exported by basic/shape/activation appears in CASES (or is cast, below)."""
    covered = {case.name.split("_")[0] for case in CASES} | {case.name for case in CASES}
    covered.add("cast")  # float64 -> float32 cannot be gradchecked; see test_cast_*
    exported = set(basic.__all__) | set(shape.__all__) | set(activation.__all__)
    assert exported - covered == set()


# ------------------------------------------------------------------ documented rules
def _first_max_mask(x, axes):
    """Loop reference of the tie rule: per kept index, the first maximal element in
    row-major order over the reduced axes gets the gradient."""
    kept = [a for a in range(x.ndim) if a not in axes]
    mask = np.zeros(x.shape)
    for kept_index in np.ndindex(*[x.shape[a] for a in kept]):
        best, where_best = -np.inf, None
        for reduced_index in np.ndindex(*[x.shape[a] for a in axes]):
            full = [0] * x.ndim
            for a, i in zip(kept, kept_index):
                full[a] = i
            for a, i in zip(axes, reduced_index):
                full[a] = i
            if x[tuple(full)] > best:
                best, where_best = x[tuple(full)], tuple(full)
        mask[where_best] = 1
    return mask


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), (1, 2)])
def test_max_ties_send_the_gradient_to_the_first_maximum(xp, axis):
    x_host = np.array([[[1., 3.], [3., 0.], [3., 2.]], [[2., 2.], [0., 2.], [1., 1.]]])
    x = Tensor(xp.asarray(x_host), requires_grad=True)
    y = F.max(x, axis=axis)
    (g,) = grad(y.sum(), x)
    axes = tuple(range(3)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    np.testing.assert_array_equal(g.numpy(), _first_max_mask(x_host, axes))


def test_maximum_and_minimum_ties_go_to_the_first_argument(xp):
    x = Tensor(xp.asarray([1.0, 2.0, 3.0]), requires_grad=True)
    y = Tensor(xp.asarray([1.0, 0.0, 3.0]), requires_grad=True)
    for op in (F.maximum, F.minimum):
        gx, gy = grad(op(x, y).sum(), [x, y])
        if op is F.maximum:
            np.testing.assert_array_equal(gx.numpy(), [1, 1, 1])
            np.testing.assert_array_equal(gy.numpy(), [0, 0, 0])
        else:
            np.testing.assert_array_equal(gx.numpy(), [1, 0, 1])
            np.testing.assert_array_equal(gy.numpy(), [0, 1, 0])


def test_reflect_pad_backward_is_the_transpose_of_its_matrix(xp, rng):
    widths = ((2, 1), (1, 3))
    x = Tensor(xp.asarray(rng.standard_normal((3, 4))), requires_grad=True)
    y = rng.standard_normal((6, 8))
    # The matrix P of the linear map x -> pad(x): column k is pad(e_k).
    P = np.stack([_np_reflect_pad(e.reshape(3, 4), widths).ravel() for e in np.eye(12)], axis=1)
    (g,) = grad(F.pad(x, widths, mode="reflect"), x, Tensor(xp.asarray(y)))
    np.testing.assert_allclose(g.numpy().ravel(), P.T @ y.ravel(), rtol=1e-12)


def test_reflect_pad_rejects_widths_not_smaller_than_the_axis():
    with pytest.raises(ValueError, match="smaller than the axis size"):
        F.pad(Tensor(np.zeros((2, 3))), ((0, 0), (3, 0)), mode="reflect")
    with pytest.raises(ValueError, match="unknown mode"):
        F.pad(Tensor(np.zeros((2, 3))), ((0, 0), (1, 0)), mode="edge")


def test_clip_gradient_is_one_inside_and_at_the_bounds_zero_outside(xp):
    x = Tensor(xp.asarray([-2.0, -0.5, 0.0, 0.3, 0.5, 2.0]), requires_grad=True)
    y = F.clip(x, -0.5, 0.5)
    np.testing.assert_array_equal(y.numpy(), [-0.5, -0.5, 0.0, 0.3, 0.5, 0.5])
    (g,) = grad(y.sum(), x)
    np.testing.assert_array_equal(g.numpy(), [0, 1, 1, 1, 1, 0])


def test_softmax_rows_sum_to_one_and_survive_large_inputs(xp, rng):
    x = Tensor(xp.asarray(rng.standard_normal((4, 5)) * 3 + 1000.0))
    p = F.softmax(x, axis=1).numpy()
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), np.ones(4), rtol=1e-12)
    logp = F.log_softmax(x, axis=1).numpy()
    np.testing.assert_allclose(np.exp(logp), p, rtol=1e-10)


def test_python_scalars_keep_float32(xp, rng):
    x = Tensor(xp.asarray(rng.standard_normal((2, 3)), dtype=xp.float32), requires_grad=True)
    results = [x * 0.5, 0.5 * x, x + 1, 2 - x, x / 3.0, 1.0 / (x * x + 1), x ** 2, 2.0 ** x,
               F.maximum(x, 0.0), F.minimum(0.1, x), F.where(x.data > 0, x, 0.0),
               F.clip(x, -0.5, 0.5), F.elu(x), F.leaky_relu(x, 0.2), F.sigmoid(x),
               F.softmax(x), F.mse_loss(x, 0.0 * x.data), F.mean(x)]
    for y in results:
        assert y.dtype == np.float32
        (g,) = grad(y.sum(), x)
        assert g.dtype == np.float32


def test_cast_forward_and_gradient_dtype(xp, rng):
    x = Tensor(xp.asarray(rng.standard_normal((2, 3))), requires_grad=True)
    y = F.cast(x, np.float32)
    assert y.dtype == np.float32 and F.cast(x, np.float64) is x
    np.testing.assert_array_equal(y.numpy(), x.numpy().astype(np.float32))
    (g,) = grad((y * y).sum(), x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g.numpy(), 2 * x.numpy().astype(np.float32), rtol=1e-6)


def test_cast_is_twice_differentiable(xp, rng):
    """Second order through a float64 -> float32 -> float64 round trip: d2/dx2 sum(y^2) = 2."""
    x = Tensor(xp.asarray(rng.standard_normal(4)), requires_grad=True)
    y = F.cast(F.cast(x, np.float32), np.float64)
    (g,) = grad((y * y).sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    assert g.dtype == h.dtype == np.float64
    np.testing.assert_allclose(h.numpy(), np.full(4, 2.0), rtol=1e-6)


def test_matmul_one_dimensional_shapes_and_errors(xp, rng):
    a, b = rng.standard_normal(3), rng.standard_normal((3, 4))
    assert F.matmul(Tensor(xp.asarray(a)), Tensor(xp.asarray(a))).shape == ()
    assert F.matmul(Tensor(xp.asarray(a)), Tensor(xp.asarray(b))).shape == (4,)
    assert F.matmul(Tensor(xp.asarray(b.T)), Tensor(xp.asarray(a))).shape == (4,)
    with pytest.raises(ValueError, match="do not align"):
        F.matmul(Tensor(xp.asarray(b)), Tensor(xp.asarray(b)))
    with pytest.raises(ValueError, match="scalars"):
        F.matmul(Tensor(xp.asarray(a)), 2.0)


def test_tensor_operators_are_the_functional_ops(xp, rng):
    a_host, b_host = rng.uniform(0.5, 2, (2, 3)), rng.uniform(0.5, 2, (3,))
    a, b = Tensor(xp.asarray(a_host)), Tensor(xp.asarray(b_host))
    pairs = [(a + b, a_host + b_host), (a - b, a_host - b_host), (a * b, a_host * b_host),
             (a / b, a_host / b_host), (a ** 2, a_host ** 2), (-a, -a_host),
             (2.0 - a, 2.0 - a_host), (1.0 / a, 1.0 / a_host), (a @ a.T, a_host @ a_host.T),
             (abs(-a), a_host), (a.T, a_host.T), (a.reshape(3, 2), a_host.reshape(3, 2)),
             (a.sum(axis=0), a_host.sum(axis=0)), (a.mean(), a_host.mean()),
             (a.max(axis=1, keepdims=True), a_host.max(axis=1, keepdims=True)),
             (a.transpose(1, 0), a_host.T), (a.exp().log(), a_host), (a.sqrt(), np.sqrt(a_host))]
    for got, expected in pairs:
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    assert isinstance(a > 1.0, type(a.data)) and (a > 1.0).dtype == bool
    # comparisons give device arrays: fetched explicitly (an implicit conversion fails on CuPy)
    np.testing.assert_array_equal(backend.to_device(a > b, "cpu"), a_host > b_host)


def test_shape_op_spellings_and_argument_errors():
    """transpose() with no axes reverses them (NumPy's rule); permute and reshape take axes
    as separate ints or one tuple (PyTorch's spellings); empty and malformed arguments are
    named errors."""
    rng = np.random.default_rng(11)
    data = rng.standard_normal((2, 3, 4))
    x = Tensor(data, requires_grad=True)
    np.testing.assert_array_equal(x.transpose().data, data.T)
    np.testing.assert_array_equal(F.transpose(x).data, data.T)
    np.testing.assert_array_equal(F.permute(x, (2, 0, 1)).data, data.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, data.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.reshape((4, 6)).data, x.reshape(4, 6).data)
    assert gradcheck(lambda t: t.transpose(), (x,))
    with pytest.raises(ValueError, match="not a permutation"):
        x.transpose(0, 0, 1)
    with pytest.raises(ValueError, match="concat: needs at least one tensor"):
        F.concat([])
    with pytest.raises(ValueError, match="stack: needs at least one tensor"):
        F.stack([])
    with pytest.raises(ValueError, match=r"pad: 2 \(before, after\) pairs for a 3-d tensor"):
        F.pad(x, ((1, 1), (1, 1)))
    with pytest.raises(ValueError, match="pad: negative widths"):
        F.pad(x, ((0, 0), (0, -1), (1, 1)))
    with pytest.raises(ValueError, match="concat: axis 3 is out of range for 3 axes"):
        F.concat([x, x], axis=3)
    with pytest.raises(ValueError, match="stack: axis 4 is out of range for 4 axes"):
        F.stack([x, x], axis=4)
    assert F.stack([x, x], axis=3).shape == (2, 3, 4, 2) == F.stack([x, x], axis=-1).shape
    for reduce in (F.sum, F.mean, F.max):
        with pytest.raises(ValueError, match="axis 3 is out of range for a 3-d tensor"):
            reduce(x, axis=3)
        with pytest.raises(ValueError, match="axis -4 is out of range for a 3-d tensor"):
            reduce(x, axis=-4)
        with pytest.raises(ValueError, match=r"axis \(0, -3\) names an axis twice"):
            reduce(x, axis=(0, -3))
    with pytest.raises(ValueError, match="scale_factor must be positive and finite, got nan"):
        F.interpolate_nearest(x.reshape(1, 2, 3, 4), scale_factor=float("nan"))
    for bad in (np.array(["a", "b"]), [1, "a"], np.ones(2, complex), np.array([None])):
        with pytest.raises(TypeError, match="Tensor needs numbers .bool, int or float., got an "
                                            "array of dtype"):
            Tensor(bad)
    with pytest.raises(TypeError, match="pow: the exponent must be a Python number or a Tensor, "
                                        "got list"):
        F.pow(x, [2, 3])
