"""Colour coding of attention offsets (spec §4) against hand-computed colours."""
import numpy as np
import pytest

from inpainting.model.attention_colours import (color_wheel_legend, compute_color, flow_to_image, make_color_wheel,
                             overlay_flow, upsample_nearest)
from nnlite import Tensor


def test_color_wheel_segments_and_ramps():
    wheel = make_color_wheel()
    assert wheel.shape == (55, 3)
    # Segment starts: RY 0, YG 15, GC 21, CB 25, BM 36, MR 49 (lengths 15, 6, 4, 11, 13, 6).
    assert wheel[0].tolist() == [255, 0, 0]        # red
    assert wheel[15].tolist() == [255, 255, 0]     # yellow
    assert wheel[21].tolist() == [0, 255, 0]       # green
    assert wheel[25].tolist() == [0, 255, 255]     # cyan
    assert wheel[36].tolist() == [0, 0, 255]       # blue
    assert wheel[49].tolist() == [255, 0, 255]     # magenta
    # Ramps are floor(255 * i / n): RY i=1 -> 17, YG i=1 -> 255-42, GC i=1 -> 63,
    # CB i=1 -> 255-23, BM i=1 -> 19, MR i=5 -> 255-212.
    assert wheel[1, 1] == 17 and wheel[16, 0] == 213 and wheel[22, 2] == 63
    assert wheel[26, 1] == 232 and wheel[37, 0] == 19 and wheel[54, 2] == 43


def _row(*offsets):
    """One sample, one row of offsets (dy, dx) -> (1, 2, 1, len) int array."""
    array = np.zeros((1, 2, 1, len(offsets)), dtype=np.int64)
    for i, (dy, dx) in enumerate(offsets):
        array[0, :, 0, i] = dy, dx
    return array


def test_zero_offset_is_white_and_shifts_give_documented_hues():
    image = flow_to_image(_row((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)))
    assert image.dtype == np.uint8 and image.shape == (1, 1, 5, 3)
    colours = [tuple(int(c) for c in px) for px in image[0, 0]]
    # Radius 2 is the largest, so these four are on the unit circle (rad = 1/(1+eps)).
    assert colours[0] == (255, 255, 255)   # no offset: white
    # dy > 0 (from below): atan2(-0.0, -1) = -pi -> wheel entry 0: red.
    assert colours[1] == (255, 0, 0)
    # dy < 0 (from above): atan2(-0.0, 1) = -0 -> fk = 28 -> entry 27 = (0, 209, 255).
    assert colours[2] == (0, 209, 255)
    # dx > 0 (from the right): atan2(-1, -0) = -pi/2 -> fk = 14.5: halfway between
    # entries 13 (255, 221, 0) and 14 (255, 238, 0): G = floor(229.5 * (1 - eps)) = 229.
    assert colours[3] == (255, 229, 0)
    # dx < 0 (from the left): +pi/2 -> fk = 41.5: entries 40 (78, 0, 255), 41 (98, 0, 255).
    assert colours[4] == (88, 0, 255)


def test_half_radius_is_halfway_to_white():
    image = flow_to_image(_row((2, 0), (1, 0), (0, 1)))
    # rad 0.5: col = 1 - 0.5 * (1 - c): red -> (255, 127, 127) (floor(127.5)).
    assert tuple(image[0, 0, 1]) == (255, 127, 127)
    # right at rad 0.5: G = 1 - 0.5 * (1 - 229.5/255) -> floor(242.25) = 242, B = 127.
    assert tuple(image[0, 0, 2]) == (255, 242, 127)


def test_normalisation_is_a_running_max_over_the_batch():
    small, large = _row((1, 0)), _row((4, 0))
    # [small, large]: each sample is at its own running max -> both saturated red.
    image = flow_to_image(np.concatenate([small, large]))
    assert tuple(image[0, 0, 0]) == (255, 0, 0) and tuple(image[1, 0, 0]) == (255, 0, 0)
    # [large, small]: the second is divided by 4 (the max so far): rad 0.25 ->
    # G = B = floor(255 * 0.75) = 191.
    image = flow_to_image(np.concatenate([large, small]))
    assert tuple(image[1, 0, 0]) == (255, 191, 191)


def test_all_zero_offsets_are_white_and_inputs_may_be_tensors():
    offsets = np.zeros((2, 2, 3, 4), dtype=np.int32)
    image = flow_to_image(Tensor(offsets.astype(np.float32)))
    assert image.shape == (2, 3, 4, 3) and np.all(image == 255)


def test_outside_unit_radius_is_darkened_and_nan_is_black():
    image = compute_color(np.array([[2.0, np.nan]]), np.array([[0.0, 0.0]]))
    # rad 2 > 1: col *= 0.75 on the red entry (255, 0, 0) -> floor(191.25) = 191.
    assert tuple(image[0, 0]) == (191, 0, 0)
    assert tuple(image[0, 1]) == (0, 0, 0)


def test_flow_to_image_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, 2, h, w\)"):
        flow_to_image(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"\(N, 2, h, w\)"):
        flow_to_image(np.zeros((2, 4, 4)))


def test_upsample_nearest_both_rules():
    images = np.arange(4).reshape(1, 1, 4, 1)
    duplicated = upsample_nearest(images, 1, 8, align_corners=False)
    assert duplicated[0, 0, :, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # align corners: src(x) = round(x * 3/7) -> 0, 0, 1, 1, 2, 2, 3, 3 rounded half away:
    # x*3/7 = 0, .43, .86, 1.29, 1.71, 2.14, 2.57, 3 -> 0, 0, 1, 1, 2, 2, 3, 3.
    aligned = upsample_nearest(images, 1, 8, align_corners=True)
    assert aligned[0, 0, :, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # 4 -> 7: x * 3/6 = 0, .5, 1, 1.5, 2, 2.5, 3 -> 0, 1, 1, 2, 2, 3, 3 (half away from 0).
    aligned = upsample_nearest(images, 1, 7, align_corners=True)
    assert aligned[0, 0, :, 0].tolist() == [0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="N, h, w, C"):
        upsample_nearest(np.zeros((4, 4, 3)), 8, 8)


def test_overlay_flow_blends_only_inside_the_hole():
    image = np.full((1, 4, 4, 3), 100, dtype=np.uint8)
    offsets = _row((1, 0), (1, 0))          # (1, 2, 1, 2): red everywhere
    mask = np.zeros((1, 1, 4, 4))
    mask[..., :2, :] = 1
    shown = overlay_flow(image, offsets, alpha=0.5, mask=mask, align_corners=False)
    assert shown.shape == (1, 4, 4, 3)
    assert shown[0, 0, 0].tolist() == [178, 50, 50]    # round(0.5 * 100 + 0.5 * (255, 0, 0))
    assert shown[0, 3, 3].tolist() == [100, 100, 100]  # outside the hole: untouched
    full = overlay_flow(image[0], offsets, alpha=1.0, align_corners=False)
    assert np.all(full[0, ..., 0] == 255) and np.all(full[0, ..., 1:] == 0)
    with pytest.raises(ValueError, match="alpha"):
        overlay_flow(image, offsets, alpha=2.0)
    with pytest.raises(ValueError, match="mask"):
        overlay_flow(image, offsets, mask=np.zeros((1, 1, 2, 2)))


def test_legend_centre_white_and_directions():
    legend = color_wheel_legend(size=9)
    assert legend.shape == (9, 9, 3) and legend.dtype == np.uint8
    assert tuple(legend[4, 4]) == (255, 255, 255)
    assert tuple(legend[8, 4]) == (255, 0, 0)      # below the centre: dy = +4 = radius: red
    assert tuple(legend[0, 4]) == (0, 209, 255)    # above: as flow_to_image's "up"
    assert tuple(legend[4, 8]) == (255, 229, 0)    # right
    assert tuple(legend[4, 0]) == (88, 0, 255)     # left
    with pytest.raises(ValueError, match="size"):
        color_wheel_legend(size=1)


def test_huge_dx_alone_marks_an_offset_unknown():
    """|dy| > 1e7 or |dx| > 1e7 means "unknown" (the release's rule): drawn as a zero offset
    (white) and left out of the normalising radius, whichever component is huge."""
    image = flow_to_image(_row((0, 10 ** 8), (2, 0), (10 ** 8, 0)))
    assert tuple(image[0, 0, 0]) == (255, 255, 255)
    assert tuple(image[0, 0, 2]) == (255, 255, 255)
    assert tuple(image[0, 0, 1]) == (255, 0, 0)      # radius 2 is the largest: saturated red
