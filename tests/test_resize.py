"""Nearest-neighbour resizing: both index rules (spec §1), the op against a loop
reference, its scatter-add backward, derivatives and argument errors."""
import math
from fractions import Fraction

import numpy as np
import pytest

import nnlite.functional as F
from nnlite import Tensor
from nnlite.functional.conv_reference import (interpolate_nearest_reference,
                                              nearest_index_reference)
from nnlite.testing import gradcheck, gradgradcheck


# ---------------------------------------------------------------- index rules
def test_spec_example_64_to_32_align_corners():
    expected = list(range(0, 31, 2)) + list(range(33, 64, 2))
    assert F.nearest_indices(64, 32, align_corners=True).tolist() == expected


def test_spec_example_mask_path_256_to_64_to_32():
    """The model's mask path: two align-corners resizes composed."""
    first = F.nearest_indices(256, 64, align_corners=True)
    second = F.nearest_indices(64, 32, align_corners=True)
    picked = first[second].tolist()
    assert picked[:6] == [0, 8, 16, 24, 32, 40]
    assert picked[6:9] == [49, 57, 65]
    assert picked[14:17] == [113, 121, 134]
    assert picked[17:19] == [142, 150]
    assert picked[-1] == 255 and len(picked) == 32
    # and through the op itself, on an image whose pixel value is its row index
    rows = np.arange(256, dtype=np.float32).reshape(1, 1, 256, 1).repeat(2, axis=3)
    mask = Tensor(rows)
    small = F.interpolate_nearest(F.interpolate_nearest(mask, size=(64, 2), align_corners=True),
                                  size=(32, 2), align_corners=True)
    assert small.data[0, 0, :, 0].tolist() == picked


def test_align_corners_is_not_twice_y_nor_round_half_even():
    index = F.nearest_indices(64, 32, align_corners=True)
    assert not np.array_equal(index, 2 * np.arange(32))
    # y = 16: 16 * 63/31 = 32.516 -> 33. Half-way cases round away from zero:
    # 2 -> 3 has scale 0.5 and y = 1 lands on 0.5 -> 1 (round-half-even would give 0);
    # 4 -> 3 has scale 1.5 and y = 1 lands on 1.5 -> 2.
    assert F.nearest_indices(2, 3, align_corners=True).tolist() == [0, 1, 1]
    assert F.nearest_indices(4, 3, align_corners=True).tolist() == [0, 2, 3]   # 1.5 -> 2


def test_align_corners_products_are_float32():
    """2 -> 83: y = 41 gives 41 * float32(1/82), just below 0.5 in float32, so row 0;
    exact arithmetic (0.5, rounded away from zero) would pick row 1."""
    assert F.nearest_indices(2, 83, align_corners=True)[41] == 0
    assert math.floor(Fraction(41, 82) + Fraction(1, 2)) == 1


@pytest.mark.parametrize("align_corners", [False, True])
def test_indices_match_scalar_reference(align_corners):
    for in_size in (1, 2, 3, 5, 7, 8, 31, 32, 64, 100, 256):
        for out_size in (1, 2, 3, 4, 9, 16, 32, 63, 64, 83, 128, 200):
            got = F.nearest_indices(in_size, out_size, align_corners).tolist()
            assert got == nearest_index_reference(in_size, out_size, align_corners), \
                (in_size, out_size)


def test_floor_rule_integer_upscale_duplicates_pixels(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = F.interpolate_nearest(Tensor(x), scale_factor=2)
    np.testing.assert_array_equal(y.data, x.repeat(2, axis=2).repeat(2, axis=3))
    assert F.nearest_indices(8, 4, align_corners=False).tolist() == [0, 2, 4, 6]


# ---------------------------------------------------------------- the op
@pytest.mark.parametrize("size,align_corners", [((3, 7), False), ((3, 7), True),
                                                ((9, 4), True), ((10, 11), False),
                                                ((1, 1), True), ((5, 5), False)])
def test_forward_matches_loop_reference(size, align_corners, rng):
    x = rng.standard_normal((2, 3, 5, 6))
    got = F.interpolate_nearest(Tensor(x), size=size, align_corners=align_corners)
    np.testing.assert_array_equal(got.data, interpolate_nearest_reference(x, *size,
                                                                          align_corners))


@pytest.mark.parametrize("size,align_corners", [((3, 7), False), ((9, 4), True),
                                                ((2, 13), True), ((4, 3), False)])
def test_backward_is_scatter_add_of_the_gather(size, align_corners, rng):
    x = Tensor(rng.standard_normal((1, 2, 5, 6)), requires_grad=True)
    g = rng.standard_normal((1, 2) + size)
    F.interpolate_nearest(x, size=size, align_corners=align_corners).backward(Tensor(g))
    rows = nearest_index_reference(5, size[0], align_corners)
    cols = nearest_index_reference(6, size[1], align_corners)
    expected = np.zeros(x.shape)
    for y, r in enumerate(rows):
        for v, c in enumerate(cols):
            expected[:, :, r, c] += g[:, :, y, v]
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [(10, 12), (15, 6), (5, 24), (10, 7)])
def test_integer_upscale_backward_equals_the_segment_sums_bit_for_bit(size, rng):
    """The fast path (k-fold duplication on an axis: reshape and add k slices in order) gives
    the loop reference's scatter-add and the generic ``add.reduceat`` sums, in float32: bit for
    bit for k = 2 (DeepFill's x2 upsampling; a + b can only be added one way), to rounding for
    k = 3, 4 (reduceat groups the additions its own way); (10, 7) mixes x2 with a generic axis."""
    x = Tensor(rng.standard_normal((2, 3, 5, 6)).astype(np.float32), requires_grad=True)
    g = rng.standard_normal((2, 3) + size).astype(np.float32)
    F.interpolate_nearest(x, size=size).backward(Tensor(g))
    rows, cols = nearest_index_reference(5, size[0], False), nearest_index_reference(6, size[1], False)
    expected = np.zeros(x.shape)
    for y, r in enumerate(rows):
        for v, c in enumerate(cols):
            expected[:, :, r, c] += g[:, :, y, v]
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-5, atol=1e-5)
    generic = g
    for axis, index in ((2, rows), (3, cols)):
        generic = np.add.reduceat(generic, np.unique(index, return_index=True)[1], axis=axis)
    if size in ((10, 12), (10, 7)):
        np.testing.assert_array_equal(x.grad.data, generic)
    else:
        np.testing.assert_allclose(x.grad.data, generic, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size,align_corners", [((3, 7), False), ((8, 4), True),
                                                ((2, 9), True), ((10, 18), False)])
def test_gradcheck_and_gradgradcheck(size, align_corners, rng):
    x = Tensor(rng.standard_normal((2, 2, 5, 6)), requires_grad=True)

    def fn(x):
        return F.interpolate_nearest(x, size=size, align_corners=align_corners)

    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_same_size_is_identity_and_dtype_kept(rng):
    x = Tensor(rng.standard_normal((1, 1, 4, 4)).astype(np.float32))
    assert F.interpolate_nearest(x, size=(4, 4)).data is x.data
    assert F.interpolate_nearest(x, size=(2, 8), align_corners=True).dtype == np.float32


def test_scale_factor_path_against_the_loop_and_twice_differentiable(rng):
    """scale_factor=(0.5, 1.5): OH = floor(5 * 0.5) = 2, OW = floor(6 * 1.5) = 9, then the
    same index rule as size=(2, 9)."""
    x = Tensor(rng.standard_normal((1, 2, 5, 6)), requires_grad=True)
    fn = lambda t: F.interpolate_nearest(t, scale_factor=(0.5, 1.5))   # noqa: E731
    np.testing.assert_array_equal(fn(x).data, interpolate_nearest_reference(x.data, 2, 9, False))
    assert gradcheck(fn, (x,)) and gradgradcheck(fn, (x,))


def test_scale_factor_pair_and_int_size(rng):
    x = Tensor(rng.standard_normal((1, 1, 4, 6)))
    assert F.interpolate_nearest(x, scale_factor=(0.5, 2)).shape == (1, 1, 2, 12)
    assert F.interpolate_nearest(x, size=3).shape == (1, 1, 3, 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(), "exactly one of size and scale_factor"),
    (dict(size=(2, 2), scale_factor=2), "exactly one of size and scale_factor"),
    (dict(size=(0, 2)), "output size must be positive"),
    (dict(scale_factor=0.1), "output size must be positive"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.interpolate_nearest(Tensor(np.zeros((1, 1, 4, 4))), **kwargs)


def test_bad_input_rank_and_sizes():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.interpolate_nearest(Tensor(np.zeros((4, 4))), size=(2, 2))
    with pytest.raises(ValueError, match="sizes must be positive"):
        F.nearest_indices(0, 3)


def test_floor_rule_products_are_float32():
    """Floor rule: src(y) = floor(float32(y) * float32(in / out)). For 2 -> 82 at y = 41
    that product is 0.99999994 (source 0) although 41 * 2 / 82 = 1 exactly; for 2 -> 98
    at y = 49 float32 rounds up to 1.0 where float64 gives 0.9999999999999999."""
    assert F.nearest_indices(2, 82).tolist()[40:43] == [0, 0, 1]
    assert F.nearest_indices(2, 98).tolist()[48:51] == [0, 1, 1]
