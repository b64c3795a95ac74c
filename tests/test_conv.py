"""conv2d, conv_transpose2d and conv2d_grad_weight: forward against the loop reference,
the adjoint identities, first and second derivatives over a covering grid of
stride / dilation / padding / kernel / size parity, TF SAME numbers, layers and errors.

The default run uses a pairwise covering subset of the grid (every pair of values
of any two factors occurs in some case); ``-m slow`` runs the full cross product in
a reduced form, and with DEEPFILL_FULL_TESTS=1 the whole of it.
"""
import itertools
import os

import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from nnlite import Tensor, nn
from nnlite.functional import conv as conv_module
from nnlite.kernels.conv_arrays import choose_strategy, use_strategy
from nnlite.functional.conv_reference import conv2d_reference, conv_transpose2d_reference
from nnlite.conv_geometry import same_padding
from nnlite.testing import gradcheck, gradgradcheck

STRIDES = (1, 2, 3)
DILATIONS = (1, 2, 4)
PADDINGS = (0, 1, (0, 2, 1, 0), "same")        # (top, bottom, left, right) is the asymmetric one
KERNELS = (1, 3, 4, 5)
PARITIES = ("odd", "even")                      # of H; W = H + 1 has the other parity
FACTORS = (STRIDES, DILATIONS, PADDINGS, KERNELS, PARITIES)
FULL = os.environ.get("DEEPFILL_FULL_TESTS") == "1"


def pairwise_cases(factors):
    """A greedy covering array: rows of the cross product until every value pair occurs."""
    def pairs(row):
        return {(a, row[a], b, row[b]) for a, b in itertools.combinations(range(len(row)), 2)}

    candidates = list(itertools.product(*(range(len(f)) for f in factors)))
    uncovered = set().union(*(pairs(row) for row in candidates))
    chosen = []
    while uncovered:
        best = max(candidates, key=lambda row: len(pairs(row) & uncovered))
        uncovered -= pairs(best)
        chosen.append(tuple(f[k] for f, k in zip(factors, best)))
    return chosen


def tf_same(size, kernel, stride, dilation):
    """spec §1, written out again: out = ceil(n/s), total = max((out-1)s + (k-1)d + 1 - n, 0)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, h, w, k, s, d):
    if padding == "same":
        return tf_same(h, k, s, d) + tf_same(w, k, s, d)
    if isinstance(padding, tuple):
        return padding
    return (padding,) * 4


def case_arrays(rng, stride, dilation, padding, kernel, parity, n=2, c=2, o=3):
    """Tensors (x, w, b) in float64 for one grid case, as small as the case allows."""
    reach = dilation * (kernel - 1) + 1
    pads = (0, 0, 0, 0) if padding == "same" else explicit_pads(padding, 1, 1, 1, 1, 1)
    h = max(reach - min(pads[0] + pads[1], pads[2] + pads[3]), stride + 1, 3)
    h += (h % 2 == 0) == (parity == "odd")
    shape_x, shape_w = (n, c, h, h + 1), (o, c, kernel, kernel)
    return (Tensor(rng.standard_normal(shape_x), requires_grad=True),
            Tensor(rng.standard_normal(shape_w), requires_grad=True),
            Tensor(rng.standard_normal(o), requires_grad=True))


GRID = pairwise_cases(FACTORS)
FULL_GRID = list(itertools.product(*FACTORS))


@pytest.fixture(params=["wide", "strided"])
def strategy(request):
    """Run the test with each array strategy forced (conv_arrays.py)."""
    with use_strategy(request.param):
        yield request.param


def test_pairwise_grid_covers_every_pair():
    assert len(GRID) < len(FULL_GRID) // 8
    for (a, fa), (b, fb) in itertools.combinations(enumerate(FACTORS), 2):
        seen = {(case[a], case[b]) for case in GRID}
        assert seen == set(itertools.product(fa, fb)), (a, b)


# ---------------------------------------------------------------- forward
@pytest.mark.parametrize("case", GRID, ids=str)
def test_conv2d_matches_loop_reference(case, rng, strategy):
    x, w, b = case_arrays(rng, *case)
    stride, dilation, padding, kernel, _ = case
    pads = explicit_pads(padding, x.shape[2], x.shape[3], kernel, stride, dilation)
    expected = conv2d_reference(x.data, w.data, b.data, stride, pads, dilation)
    got = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,padding,output_padding,dilation,kernel", [
    (1, 0, 0, 1, 3), (2, 1, 1, 1, 3), (2, (1, 0, 2, 1), 0, 2, 3), (3, 2, 2, 1, 4),
    (2, 1, 0, 1, 4), (1, 1, 0, 4, 2), (3, 0, (1, 2), 2, 5), (1, 1, 0, 1, 1), (1, (3, 0, 0, 1), 0, 1, 3)])
def test_conv_transpose2d_matches_loop_reference(stride, padding, output_padding, dilation,
                                                 kernel, rng, strategy):
    y = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((3, 2, kernel, kernel))
    b = rng.standard_normal(2)
    expected = conv_transpose2d_reference(y, w, b, stride, padding, output_padding, dilation)
    got = F.conv_transpose2d(Tensor(y), Tensor(w), Tensor(b), stride=stride, padding=padding,
                             output_padding=output_padding, dilation=dilation)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)


# output_padding below the dilation but not the stride (PyTorch allows either): the cut of the
# output moves inside the bottom padding, past it, and past every tap (zero rows + bias)
LARGE_OUTPUT_PADDING = [
    # stride, padding, output_padding, dilation, kernel
    (1, 0, 1, 2, 3), (1, 2, 1, 2, 3), (1, (0, 3, 1, 1), (2, 1), 3, 3), (2, 0, 2, 3, 3),
    (2, (1, 1, 0, 2), (3, 1), 4, 2), ((1, 2), 1, (1, 0), (2, 1), 3)]


def _pytorch_output_size(size, stride, pad_before, pad_after, dilation, kernel, output_padding):
    """PyTorch's documented ConvTranspose2d size, written with separate paddings per side:
    (H_in - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1."""
    return (size - 1) * stride - (pad_before + pad_after) + dilation * (kernel - 1) \
        + output_padding + 1


@pytest.mark.parametrize("stride,padding,output_padding,dilation,kernel", LARGE_OUTPUT_PADDING)
def test_output_padding_may_reach_the_stride_when_below_the_dilation(
        stride, padding, output_padding, dilation, kernel, rng, strategy):
    from nnlite.conv_geometry import pair, parse_padding

    y = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((3, 2, kernel, kernel))
    b = rng.standard_normal(2)
    expected = conv_transpose2d_reference(y, w, b, stride, padding, output_padding, dilation)
    got = F.conv_transpose2d(Tensor(y), Tensor(w), Tensor(b), stride=stride, padding=padding,
                             output_padding=output_padding, dilation=dilation)
    (SH, SW), (DH, DW) = pair(stride, "s"), pair(dilation, "d")
    (OPH, OPW), (PT, PB, PL, PR) = pair(output_padding, "o", 0), parse_padding(padding, *[0] * 8)
    assert got.shape == (2, 2, _pytorch_output_size(4, SH, PT, PB, DH, kernel, OPH),
                         _pytorch_output_size(5, SW, PL, PR, DW, kernel, OPW))
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
    without_bias = F.conv_transpose2d(Tensor(y), Tensor(w), stride=stride, padding=padding,
                                      output_padding=output_padding, dilation=dilation)
    np.testing.assert_allclose(without_bias.data,
                               conv_transpose2d_reference(y, w, None, stride, padding,
                                                          output_padding, dilation),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,padding,output_padding,dilation,kernel",
                         LARGE_OUTPUT_PADDING[::2] + LARGE_OUTPUT_PADDING[3:4])
def test_large_output_padding_gradcheck_and_gradgradcheck(stride, padding, output_padding,
                                                          dilation, kernel, rng, strategy):
    y = Tensor(rng.standard_normal((1, 2, 3, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 2, kernel, kernel)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)

    def fn(y, w, b):
        return F.conv_transpose2d(y, w, b, stride=stride, padding=padding,
                                  output_padding=output_padding, dilation=dilation)

    assert gradcheck(fn, (y, w, b))
    assert gradgradcheck(fn, (y, w, b))


def test_the_issue_case_stride_1_dilation_2_output_padding_1(rng):
    """PyTorch computes conv_transpose2d(stride=1, dilation=2, output_padding=1); so does
    nnlite, and the layer too; output_padding 2 (not below the stride nor the dilation) is not."""
    layer = nn.ConvTranspose2d(3, 2, 3, stride=1, dilation=2, output_padding=1, rng=rng,
                               dtype=np.float64)
    y = rng.standard_normal((1, 3, 5, 5))
    out = layer(Tensor(y))
    assert out.shape == (1, 2, 10, 10)                     # (5-1)*1 - 0 + 2*(3-1) + 1 + 1
    np.testing.assert_allclose(out.data, conv_transpose2d_reference(
        y, layer.weight.data, layer.bias.data, 1, 0, 1, 2), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"output_padding \(2\) must be smaller than the stride "
                                         r"\(1\) or the dilation \(2\) along H"):
        F.conv_transpose2d(Tensor(y), layer.weight, stride=1, dilation=2, output_padding=2)


def test_strategy_choice_follows_the_waste_of_the_wide_grid():
    from nnlite.conv_geometry import conv_geometry
    big = conv_geometry((8, 128, 64, 64), (128, 128, 3, 3), 1, "same", 1)
    dilated = conv_geometry((8, 128, 64, 64), (128, 128, 3, 3), 1, "same", 16)
    tiny = conv_geometry((8, 256, 8, 8), (512, 256, 5, 5), 2, "same", 1)
    assert choose_strategy(big, 8) == "wide"          # 66*66 grid for 64*64 pixels: 1.07
    assert choose_strategy(dilated, 8) == "strided"   # 96*96 grid for 64*64 pixels
    assert choose_strategy(tiny, 8) == "strided"      # 6*6 grid for 4*4 pixels
    with use_strategy("wide"):
        assert choose_strategy(dilated, 8) == "wide"
    with pytest.raises(ValueError, match="strategy must be"):
        with use_strategy("fast"):
            pass


@pytest.mark.parametrize("case", GRID[::4], ids=str)
def test_blocked_wide_columns_give_the_same_conv(case, rng):
    """Large images build the wide columns a block at a time (WIDE_BLOCK_BYTES): same result."""
    from nnlite.kernels.conv_arrays import wide_block_bytes

    x, w, b = case_arrays(rng, *case)
    stride, dilation, padding, kernel, _ = case
    pads = explicit_pads(padding, x.shape[2], x.shape[3], kernel, stride, dilation)
    expected = conv2d_reference(x.data, w.data, b.data, stride, pads, dilation)
    k = w.shape[1] * kernel * kernel
    with use_strategy("wide"), wide_block_bytes(7 * k * 8):            # 7 columns a block
        got = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="nbytes must be a positive int"):
        with wide_block_bytes(0):
            pass


def test_workspace_never_leaks_into_results(rng):
    """Outputs are fresh arrays even when the wide output view is contiguous (1x1, N=1)."""
    x = Tensor(rng.standard_normal((1, 2, 3, 4)))
    w = Tensor(rng.standard_normal((3, 2, 1, 1)))
    with use_strategy("wide"):
        first = F.conv2d(x, w)
        kept = first.data.copy()
        F.conv2d(Tensor(rng.standard_normal((1, 2, 3, 4))), w)
    np.testing.assert_array_equal(first.data, kept)


def test_float32_stays_float32_and_matches_float64(rng):
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    y = F.conv2d(Tensor(x), Tensor(w), padding="same", stride=2)
    assert y.dtype == np.float32
    expected = F.conv2d(Tensor(x.astype(np.float64)), Tensor(w.astype(np.float64)),
                        padding="same", stride=2)
    np.testing.assert_allclose(y.data, expected.data, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- adjoint identities
@pytest.mark.parametrize("case", GRID[::2], ids=str)
def test_adjoint_identities(case, rng, strategy):
    """<conv(x, W), y> = <x, conv^T(y, W)> = <W, gradW(x, y)> (the three ops are one bilinear form)."""
    x, w, _ = case_arrays(rng, *case)
    stride, dilation, padding, kernel, _ = case
    pads = explicit_pads(padding, x.shape[2], x.shape[3], kernel, stride, dilation)
    y = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    v = rng.standard_normal(y.shape)
    h, wd = x.shape[2:]
    out_pad = [size - ((o - 1) * stride - p0 - p1 + dilation * (kernel - 1) + 1)
               for size, o, p0, p1 in ((h, y.shape[2], pads[0], pads[1]),
                                       (wd, y.shape[3], pads[2], pads[3]))]
    xt = F.conv_transpose2d(Tensor(v), w, stride=stride, padding=pads,
                            output_padding=tuple(out_pad), dilation=dilation)
    gw = F.conv2d_grad_weight(x, Tensor(v), w.shape, stride=stride, padding=padding,
                              dilation=dilation)
    lhs = float(np.sum(y.data * v))
    assert np.isclose(lhs, float(np.sum(x.data * xt.data)), rtol=1e-12, atol=1e-10)
    assert np.isclose(lhs, float(np.sum(w.data * gw.data)), rtol=1e-12, atol=1e-10)


# ---------------------------------------------------------------- derivatives
def _conv_fn(stride, dilation, padding):
    return lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)


@pytest.mark.parametrize("case", GRID, ids=str)
def test_conv2d_gradcheck(case, rng, strategy):
    x, w, b = case_arrays(rng, *case, n=1)
    assert gradcheck(_conv_fn(*case[:3]), (x, w, b))


@pytest.mark.parametrize("case", GRID, ids=str)
def test_conv2d_gradgradcheck(case, rng, strategy):
    x, w, b = case_arrays(rng, *case, n=1, o=2)
    assert gradgradcheck(_conv_fn(*case[:3]), (x, w, b))


@pytest.mark.parametrize("stride,padding,output_padding,dilation", [
    (1, 0, 0, 1), (2, 1, 1, 1), (2, (0, 1, 1, 0), 0, 2), (3, 1, (2, 1), 1)])
def test_conv_transpose2d_gradcheck_and_gradgradcheck(stride, padding, output_padding,
                                                      dilation, rng, strategy):
    y = Tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)

    def fn(y, w, b):
        return F.conv_transpose2d(y, w, b, stride=stride, padding=padding,
                                  output_padding=output_padding, dilation=dilation)

    assert gradcheck(fn, (y, w, b))
    assert gradgradcheck(fn, (y, w, b))


@pytest.mark.parametrize("stride,padding,dilation", [(1, "same", 1), (2, "same", 2),
                                                     (3, (1, 0, 0, 2), 1)])
def test_grad_weight_op_gradcheck_and_gradgradcheck(stride, padding, dilation, rng, strategy):
    """The third member of the family, differentiated on its own (DeZero's bug lived here)."""
    x = Tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    w_shape = (3, 2, 3, 3)
    y_shape = F.conv2d(x, Tensor(np.zeros(w_shape)), stride=stride, padding=padding,
                       dilation=dilation).shape
    gy = Tensor(rng.standard_normal(y_shape), requires_grad=True)

    def fn(x, gy):
        return F.conv2d_grad_weight(x, gy, w_shape, stride=stride, padding=padding,
                                    dilation=dilation)

    assert gradcheck(fn, (x, gy))
    assert gradgradcheck(fn, (x, gy))


def test_third_derivative_through_conv(rng):
    """d/dW of a gradient-penalty-like quantity that itself contains a gradient w.r.t. x."""
    x = Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)

    def penalty(x, w):
        y = F.conv2d(x, w, stride=2, padding="same")
        (gx,) = nnlite.grad((y * y).sum(), [x], create_graph=True)
        return (gx * gx).sum()

    assert gradgradcheck(penalty, (x, w))


@pytest.mark.slow
@pytest.mark.parametrize("case", FULL_GRID if FULL else FULL_GRID[::23], ids=str)
def test_full_grid_gradients(case, rng):
    x, w, b = case_arrays(rng, *case, n=1, c=1, o=2)
    fn = _conv_fn(*case[:3])
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b), fast_mode=not FULL)
    stride, dilation, padding, kernel, _ = case
    pads = explicit_pads(padding, x.shape[2], x.shape[3], kernel, stride, dilation)
    np.testing.assert_allclose(fn(x, w, b).data,
                               conv2d_reference(x.data, w.data, b.data, stride, pads, dilation),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- TF SAME padding (spec §1)
@pytest.mark.parametrize("size,kernel,stride,dilation,expected", [
    (256, 3, 2, 1, (0, 1)),     # stride 2, k3, even n: the odd pixel goes after
    (64, 3, 2, 1, (0, 1)),
    (256, 5, 2, 1, (1, 2)),     # the critics' 5x5 stride-2 convs
    (7, 3, 2, 1, (1, 1)),       # odd n: symmetric
    (64, 3, 1, 16, (16, 16)),   # conv10_atrous: stride 1 gives (k-1)d/2 on each side
    (64, 5, 1, 1, (2, 2)),
    (10, 4, 1, 1, (1, 2)),      # even kernel, stride 1
    (5, 3, 3, 2, (1, 2)),       # stride 3 with dilation: out 2, total 3
    (9, 1, 3, 1, (0, 0)),
])
def test_same_padding_numbers(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected
    assert tf_same(size, kernel, stride, dilation) == expected


def test_same_padding_gives_ceil_output_and_matches_explicit_pads(rng):
    x = Tensor(rng.standard_normal((1, 2, 8, 7)))
    w = Tensor(rng.standard_normal((3, 2, 3, 3)))
    y = F.conv2d(x, w, stride=2, padding="same")
    assert y.shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(y.data, F.conv2d(x, w, stride=2, padding=(0, 1, 1, 1)).data)
    # The symmetric alternative differs: this is the error the spec warns about.
    assert not np.allclose(y.data, F.conv2d(x, w, stride=2, padding=1).data)


# ---------------------------------------------------------------- layers
def test_conv2d_layer_init_and_forward(rng):
    layer = nn.Conv2d(4, 6, 5, stride=2, padding="same", dilation=1, rng=rng)
    assert layer.weight.shape == (6, 4, 5, 5) and layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.bias.data, np.zeros(6, np.float32))
    limit = np.sqrt(6.0 / (4 * 25 + 6 * 25))            # Glorot uniform, fans of an OIHW kernel
    assert np.abs(layer.weight.data).max() <= limit
    assert np.abs(layer.weight.data).max() > 0.9 * limit
    x = Tensor(rng.standard_normal((2, 4, 16, 16)).astype(np.float32))
    y = layer(x)
    assert y.shape == (2, 6, 8, 8)
    np.testing.assert_allclose(y.data, F.conv2d(x, layer.weight, layer.bias, stride=2,
                                                padding="same").data)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert nn.Conv2d(4, 6, 3, bias=False, rng=rng).bias is None


def test_conv2d_layer_same_seed_same_weights():
    a = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(5))
    b = nn.Conv2d(3, 4, 3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)


def test_numpy_integer_arguments_are_accepted(rng):
    x = Tensor(rng.standard_normal((1, 2, 5, 5)))
    w = Tensor(rng.standard_normal((2, 3, 3, 3)))
    y = F.conv_transpose2d(x, w, stride=np.int64(2), padding=np.int64(1),
                           output_padding=np.int64(1))
    assert y.shape == (1, 3, 10, 10)


def test_conv_transpose2d_layer(rng):
    layer = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, output_padding=1, rng=rng)
    assert layer.weight.shape == (4, 2, 4, 4)
    x = Tensor(rng.standard_normal((1, 4, 5, 5)).astype(np.float32))
    assert layer(x).shape == (1, 2, 11, 11)              # (5-1)*2 - 2 + 3 + 1 + 1


# ---------------------------------------------------------------- errors
def _t(w):
    """The (C_in, C_out, KH, KW) weight of the transposed conv that undoes conv2d with ``w``."""
    return Tensor(w.data.transpose(1, 0, 2, 3).copy())


@pytest.mark.parametrize("call,match", [
    (lambda x, w: F.conv2d(x, w, padding=0, dilation=4),
     r"dilated kernel \(9 = 4\*\(3-1\)\+1\) is larger than the padded input along H "
     r"\(6 = 6 \+ 0 \+ 0\)"),
    (lambda x, w: F.conv2d(x[:, :1], w), r"input has 1 channels but weight .* expects 2"),
    (lambda x, w: F.conv2d(x, w, padding=-1), r"padding must be non-negative"),
    (lambda x, w: F.conv2d(x, w, padding="valid"), r"'same'"),
    (lambda x, w: F.conv2d(x, w, padding=(1, 2, 3)), r"\(top, bottom, left, right\)"),
    (lambda x, w: F.conv2d(x, w, stride=0), r"stride must be positive"),
    (lambda x, w: F.conv2d(x, w, dilation=(1, 2, 3)), r"dilation must be an int or a pair"),
    (lambda x, w: F.conv2d(x[0], w), r"input must be \(N, C, H, W\)"),
    (lambda x, w: F.conv2d(x, w, Tensor(np.zeros(2))), r"bias must have shape \(3,\)"),
    (lambda x, w: F.conv2d(x, Tensor(w.data.astype(np.float32))), r"float64 but weight is float32"),
    (lambda x, w: F.conv2d(x[:, :, :0], w, padding=1), r"input size along H is 0"),
    (lambda x, w: F.conv_transpose2d(x, _t(w), stride=2, output_padding=2),
     r"output_padding \(2\) must be smaller than the stride \(2\)"),
    (lambda x, w: F.conv_transpose2d(x[:, :1], w), r"input has 1 channels but weight"),
    (lambda x, w: F.conv_transpose2d(x, _t(w), output_padding=-1),
     r"output_padding must be integers >= 0"),
    (lambda x, w: F.conv2d_grad_weight(x, Tensor(np.zeros((1, 3, 4, 4), np.float32)), w.shape),
     r"input is float64 but grad_output is float32"),
    (lambda x, w: F.conv2d_grad_weight(x, Tensor(np.zeros((1, 3, 5, 4))), w.shape),
     r"grad_output must be \(1, 3, 4, 4\)"),
    (lambda x, w: F.conv_transpose2d(x, _t(w), padding="same"), r"ambiguous"),
    (lambda x, w: F.conv_transpose2d(x[:, :, :1, :1], _t(w), padding=2),
     r"output size along H would be -1 = \(1 - 1\) \* 1 - 2 - 2 \+ 1 \* \(3 - 1\) \+ 1 \+ 0"),
])
def test_bad_arguments_explain_themselves(call, match, rng):
    x = Tensor(rng.standard_normal((1, 2, 6, 6)))
    w = Tensor(rng.standard_normal((3, 2, 3, 3)))
    with pytest.raises((ValueError, TypeError), match=match):
        call(x, w)


def test_conv_module_exports_the_family():
    assert {"conv2d", "conv_transpose2d", "conv2d_grad_weight"} <= set(conv_module.__all__)


# ---------------------------------------------------------------- anisotropic parameters
# (sh, sw) strides, (dh, dw) dilations, (PH, PW) paddings and KH != KW, with and without bias:
# the grid above is square in every parameter.
ANISOTROPIC = [((1, 2), (2, 1), (1, 2), (2, 3), True),
               ((2, 1), (1, 1), (0, 1, 2, 0), (3, 1), True),
               ((3, 2), (1, 2), "same", (2, 4), True),
               (1, 1, 1, (3, 3), False)]


def _anisotropic_pads(padding, h, w, kernel, stride, dilation):
    pair = lambda v: v if isinstance(v, tuple) else (v, v)   # noqa: E731
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if padding == "same":
        return tf_same(h, kernel[0], sh, dh) + tf_same(w, kernel[1], sw, dw)
    if isinstance(padding, tuple) and len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return padding if isinstance(padding, tuple) else (padding,) * 4


@pytest.mark.parametrize("stride,dilation,padding,kernel,with_bias", ANISOTROPIC, ids=str)
def test_anisotropic_conv2d_against_the_loop_and_twice_differentiable(
        stride, dilation, padding, kernel, with_bias, rng, strategy):
    x = Tensor(rng.standard_normal((1, 2, 7, 8)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 2) + kernel), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    inputs = (x, w, b) if with_bias else (x, w)

    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)

    pads = _anisotropic_pads(padding, 7, 8, kernel, stride, dilation)
    expected = conv2d_reference(x.data, w.data, b.data if with_bias else None, stride, pads,
                                dilation)
    np.testing.assert_allclose(fn(*inputs).data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("with_bias", [True, False])
def test_anisotropic_conv_transpose2d_against_the_loop_and_twice_differentiable(
        with_bias, rng, strategy):
    y = Tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 3, 2, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    inputs = (y, w, b) if with_bias else (y, w)
    settings = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2))

    def fn(y, w, b=None):
        return F.conv_transpose2d(y, w, b, **settings)

    expected = conv_transpose2d_reference(y.data, w.data, b.data if with_bias else None,
                                          (2, 1), (1, 0), (1, 0), (1, 2))
    np.testing.assert_allclose(fn(*inputs).data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("padding", [0, 1, "same"])
def test_grad_weight_entries_against_the_loop(padding, rng, strategy):
    """G[o, c, i, j] = sum(conv(x, E_ocij) * gy), E_ocij the one-hot weight: each entry of the
    weight gradient computed on its own with the loop convolution."""
    x = rng.standard_normal((2, 2, 6, 5))
    w_shape = (3, 2, 3, 3)
    pads = explicit_pads(padding, 6, 5, 3, 1, 1)
    gy = rng.standard_normal(conv2d_reference(x, np.zeros(w_shape), None, 1, pads, 1).shape)
    expected = np.zeros(w_shape)
    for index in np.ndindex(*w_shape):
        one_hot = np.zeros(w_shape)
        one_hot[index] = 1.0
        expected[index] = np.sum(conv2d_reference(x, one_hot, None, 1, pads, 1) * gy)
    got = F.conv2d_grad_weight(Tensor(x), Tensor(gy), w_shape, padding=padding)
    np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-10)
    if padding == 1:
        x_t, gy_t = Tensor(x, requires_grad=True), Tensor(gy, requires_grad=True)
        fn = lambda a, g: F.conv2d_grad_weight(a, g, w_shape, padding=1)   # noqa: E731
        assert gradcheck(fn, (x_t, gy_t)) and gradgradcheck(fn, (x_t, gy_t))


def test_output_size_counts_the_window_positions():
    """OH = floor((H + pt + pb - d(k-1) - 1) / s) + 1, against counting by hand the top rows
    y = i*s (in padded coordinates) whose dilated window ends inside the padded input."""
    from nnlite.conv_geometry import conv_output_size

    for size, kernel, stride, before, after, dilation in itertools.product(
            (1, 2, 5, 8, 9), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (0, 1, 3), (1, 2)):
        padded = size + before + after
        count = 0
        while count * stride + dilation * (kernel - 1) <= padded - 1:
            count += 1
        if count == 0:
            with pytest.raises(ValueError, match="larger than the padded input"):
                conv_output_size(size, kernel, stride, before, after, dilation)
        else:
            assert conv_output_size(size, kernel, stride, before, after, dilation) == count
