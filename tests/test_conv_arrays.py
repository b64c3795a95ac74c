"""The conv kernels on raw arrays (nnlite/kernels/conv_arrays.py, im2col.py), each against
its plain loop twin (nnlite/functional/conv_reference.py), in float64 on small shapes with
every layout forced by ``use_strategy``; and the strategy module (conv_strategy.py) that
chooses the layout.

tests/test_conv.py checks the differentiable ops built on these kernels; here the kernels
are called directly, so the weight gradient and the wide im2col/col2im meet a loop too.
"""
import numpy as np
import pytest

from nnlite.functional.conv_reference import (conv2d_grad_weight_reference, conv2d_reference,
                                              conv_transpose2d_reference, fold_reference,
                                              unfold_reference)
from nnlite.kernels import conv_arrays, conv_strategy
from nnlite.kernels.conv_arrays import (conv2d_array, conv2d_grad_weight_array,
                                        conv_transpose2d_array, use_strategy, wide_block_bytes)
from nnlite.conv_geometry import conv_geometry
from nnlite.kernels.im2col import col2im, col2im_wide, im2col, im2col_wide, to_wide, wide_plan

# (stride, dilation, padding (PT, PB, PL, PR), kernel, (H, W)), each a (h, w) pair
CASES = [
    ((1, 1), (1, 1), (1, 1, 1, 1), (3, 3), (5, 6)),      # SAME 3x3
    ((1, 1), (2, 2), (0, 2, 1, 0), (3, 3), (6, 5)),      # dilated, asymmetric padding
    ((1, 1), (1, 1), (1, 0, 0, 1), (1, 1), (4, 5)),      # 1x1 with padding: conv^T not a conv
    ((2, 2), (1, 1), (0, 1, 1, 1), (3, 3), (7, 6)),      # stride 2: two phases per axis
    ((2, 2), (2, 2), (1, 1, 0, 2), (4, 4), (9, 8)),      # even kernel, stride and dilation
    ((3, 3), (1, 1), (2, 0, 1, 1), (5, 5), (8, 9)),
    ((2, 1), (1, 2), (1, 2, 0, 1), (2, 3), (6, 7)),      # different along H and W
]
CHANNELS = [(3, 2), (4, 2)]     # (O, C): O <= 1.5 C runs a stride-1 conv^T as a flipped conv


def geometry(case, n=2, c=2, o=3):
    stride, dilation, pads, kernel, (h, w) = case
    return conv_geometry((n, c, h, w), (o, c) + kernel, stride, pads, dilation)


@pytest.fixture(params=["wide", "strided"])
def strategy(request):
    with use_strategy(request.param):
        yield request.param


# ---------------------------------------------------------------- the three maps
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_array_matches_the_loop_reference(case, strategy, rng):
    stride, dilation, pads, kernel, (h, w) = case
    x = rng.standard_normal((2, 2, h, w))
    weight = rng.standard_normal((3, 2) + kernel)
    got = conv2d_array(x, weight, geometry(case))
    np.testing.assert_allclose(got, conv2d_reference(x, weight, None, stride, pads, dilation),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_blocked_wide_conv2d_array_matches_the_loop_reference(case, rng):
    stride, dilation, pads, kernel, (h, w) = case
    x = rng.standard_normal((2, 2, h, w))
    weight = rng.standard_normal((3, 2) + kernel)
    k = 2 * kernel[0] * kernel[1]
    with use_strategy("wide"), wide_block_bytes(5 * k * 8):            # 5 columns a block
        got = conv2d_array(x, weight, geometry(case))
    np.testing.assert_allclose(got, conv2d_reference(x, weight, None, stride, pads, dilation),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("o, c", CHANNELS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv_transpose2d_array_matches_the_loop_reference(case, o, c, strategy, rng):
    stride, dilation, pads, kernel, _ = case
    g = geometry(case, c=c, o=o)
    y = rng.standard_normal((2, o, g.OH, g.OW))
    weight = rng.standard_normal((o, c) + kernel)
    # the output_padding that gives back the conv's input size (below the stride)
    output_padding = (g.H - ((g.OH - 1) * g.SH - g.PT - g.PB + g.DH * (g.KH - 1) + 1),
                      g.W - ((g.OW - 1) * g.SW - g.PL - g.PR + g.DW * (g.KW - 1) + 1))
    expected = conv_transpose2d_reference(y, weight, None, stride, pads, output_padding,
                                          dilation)
    got = conv_transpose2d_array(y, weight, g)
    assert got.shape == (2, c, g.H, g.W)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_the_cases_reach_every_wide_transposed_path():
    """Stride-1 conv^T runs as a flipped conv or as GEMM + col2im_wide; both occur above."""
    paths = set()
    for case in CASES:
        for o, c in CHANNELS:
            g = geometry(case, c=c, o=o)
            flipped = conv_arrays._flipped_conv_geometry(g) is not None
            paths.add(flipped and conv_strategy.prefers_flipped_conv(o, c))
    assert paths == {True, False}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_grad_weight_array_matches_the_loop_reference(case, strategy, rng):
    stride, dilation, pads, kernel, (h, w) = case
    g = geometry(case)
    x = rng.standard_normal((2, 2, h, w))
    gy = rng.standard_normal((2, 3, g.OH, g.OW))
    got = conv2d_grad_weight_array(x, gy, g)
    expected = conv2d_grad_weight_reference(x, gy, kernel, stride, pads, dilation)
    assert got.shape == (3, 2) + kernel
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- the two layouts' columns
def _as_unfold(cols, g, n):
    """Columns (C, KH*KW, N, OH, OW) -> unfold's (N, C*KH*KW, OH*OW)."""
    c = cols.shape[0]
    return cols.reshape(c * g.KH * g.KW, n, g.OH * g.OW).transpose(1, 0, 2)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_strided_im2col_and_col2im_match_the_loops(case, rng):
    stride, dilation, pads, kernel, (h, w) = case
    g = geometry(case)
    x = rng.standard_normal((2, 2, h, w))
    cols = im2col(x, g)                                        # (C, KH, KW, N, OH, OW)
    np.testing.assert_array_equal(_as_unfold(cols, g, 2),
                                  unfold_reference(x, kernel, dilation, pads, stride))
    c = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(col2im(c, g), fold_reference(_as_unfold(c, g, 2), (h, w), kernel,
                                                            dilation, pads, stride),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_wide_im2col_matches_the_loop_at_every_output_pixel(case, rng):
    stride, dilation, pads, kernel, (h, w) = case
    g = geometry(case)
    plan = wide_plan(g, 2)
    x = rng.standard_normal((2, 2, h, w))
    cols = im2col_wide(to_wide(x, g, plan), plan).copy()      # (C, KH*KW, L), L = N*HG*WG
    pixels = cols.reshape(2, -1, 2, plan.HG, plan.WG)[..., :g.OH, :g.OW]
    np.testing.assert_array_equal(_as_unfold(pixels, g, 2),
                                  unfold_reference(x, kernel, dilation, pads, stride))
    start, stop = plan.L // 3, plan.L // 3 + 5                 # a block of the grid positions
    np.testing.assert_array_equal(im2col_wide(to_wide(x, g, plan), plan, start=start, stop=stop),
                                  cols[:, :, start:stop])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_wide_col2im_matches_the_loop_and_is_the_adjoint(case, rng):
    stride, dilation, pads, kernel, (h, w) = case
    g = geometry(case)
    plan = wide_plan(g, 2)
    taps = kernel[0] * kernel[1]
    grid = np.zeros((2, taps, 2, plan.HG, plan.WG))            # zeros where no output pixel is
    grid[..., :g.OH, :g.OW] = rng.standard_normal((2, taps, 2, g.OH, g.OW))
    got = col2im_wide(grid.reshape(2, taps, plan.L), g, plan)
    expected = fold_reference(_as_unfold(grid[..., :g.OH, :g.OW], g, 2), (h, w), kernel,
                              dilation, pads, stride)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # <im2col_wide(to_wide(x)), c> = <x, col2im_wide(c)> for any c, wasted positions included
    x = rng.standard_normal((2, 2, h, w))
    c = rng.standard_normal((2, taps, plan.L))
    lhs = float(np.sum(im2col_wide(to_wide(x, g, plan), plan) * c))
    assert np.isclose(lhs, float(np.sum(x * col2im_wide(c, g, plan))), rtol=1e-12, atol=1e-10)


# ---------------------------------------------------------------- the strategy module
def test_conv_arrays_re_exports_the_strategy():
    for name in ("choose_strategy", "use_strategy", "wide_block_bytes", "WIDE_WASTE_LIMIT",
                 "WIDE_BLOCK_BYTES", "FLIPPED_MAX_RATIO"):
        assert getattr(conv_arrays, name) is getattr(conv_strategy, name), name
        assert name in conv_arrays.__all__


def test_forcing_knobs_restore_the_previous_setting_even_after_an_error():
    g = geometry(CASES[0])
    automatic = conv_strategy.choose_strategy(g, 2)
    with pytest.raises(RuntimeError):
        with use_strategy("strided"), wide_block_bytes(64):
            assert conv_strategy.choose_strategy(g, 2) == "strided"
            with use_strategy("wide"), wide_block_bytes(32):
                assert conv_strategy.choose_strategy(g, 2) == "wide"
                assert conv_strategy.wide_block_limit() == 32
            assert conv_strategy.choose_strategy(g, 2) == "strided"
            assert conv_strategy.wide_block_limit() == 64
            raise RuntimeError
    assert conv_strategy.choose_strategy(g, 2) == automatic
    assert conv_strategy.wide_block_limit() == conv_strategy.WIDE_BLOCK_BYTES


def test_flipped_conv_while_o_is_at_most_one_and_a_half_c():
    assert conv_strategy.prefers_flipped_conv(3, 2)
    assert not conv_strategy.prefers_flipped_conv(4, 2)
    assert conv_strategy.prefers_flipped_conv(1, 1) and not conv_strategy.prefers_flipped_conv(2, 1)


def test_device_arrays_take_the_strided_layout():
    from nnlite import fake_device

    g = conv_geometry((8, 16, 64, 64), (16, 16, 3, 3), 1, "same", 1)   # waste 66*66 / 64*64
    assert conv_strategy.choose_strategy(g, 8) == "wide"
    assert conv_strategy.choose_strategy(g, 8, np) == "wide"
    assert conv_strategy.choose_strategy(g, 8, fake_device.cupy) == "strided"
