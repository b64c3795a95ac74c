"""Tests for inpainting.data.masks: the release's bbox rule (spec §6), the centred box, free-form strokes."""
import numpy as np
import pytest

from inpainting.data.masks import (bbox_to_mask, bboxes_around_holes, centered_bbox_mask,
                              free_form_mask, random_bbox, random_bbox_mask)


def _hole_extent(mask2d):
    """(top, left, h, w) of the hole's bounding rectangle, asserting the hole is that rectangle."""
    rows, cols = np.nonzero(mask2d)
    top, left = rows.min(), cols.min()
    h, w = rows.max() - top + 1, cols.max() - left + 1
    assert mask2d.sum() == h * w, "the hole must be one filled rectangle"
    return top, left, h, w


def test_random_bbox_corner_is_uniform_over_0_to_127():
    rng = np.random.default_rng(0)
    boxes = np.array([random_bbox(rng=rng) for _ in range(4000)])
    assert (boxes[:, 2:] == 128).all()
    assert boxes[:, :2].min() == 0 and boxes[:, :2].max() == 127  # [0, 128): 128 excluded
    counts = np.bincount(boxes[:, 0] // 32, minlength=4)  # four equal bins of the 128 values
    assert counts.min() > 850 and counts.max() < 1150


def test_random_bbox_margin_and_rectangular_sizes():
    rng = np.random.default_rng(1)
    boxes = np.array([random_bbox((64, 80), (16, 24), (4, 6), rng=rng) for _ in range(2000)])
    assert boxes[:, 0].min() == 4 and boxes[:, 0].max() == 64 - 4 - 16 - 1
    assert boxes[:, 1].min() == 6 and boxes[:, 1].max() == 80 - 6 - 24 - 1
    assert (boxes[:, 2] == 16).all() and (boxes[:, 3] == 24).all()


def test_random_bbox_errors():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="no room"):
        random_bbox(128, 128, rng=rng)
    with pytest.raises(TypeError, match="Generator"):
        random_bbox(rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="bbox_size"):
        random_bbox(256, -3, rng=rng)


def test_bbox_to_mask_shrinks_by_0_to_16_on_every_side():
    rng = np.random.default_rng(3)
    shrinks = set()
    for _ in range(300):
        bbox = random_bbox(rng=rng)
        mask = bbox_to_mask(bbox, rng=rng)
        assert mask.shape == (1, 1, 256, 256) and mask.dtype == np.float32
        assert set(np.unique(mask)) == {0.0, 1.0}
        top, left, h, w = _hole_extent(mask[0, 0])
        dh, dw = top - bbox[0], left - bbox[1]
        assert (h, w) == (128 - 2 * dh, 128 - 2 * dw)  # symmetric: (128 - 2dh) x (128 - 2dw)
        shrinks.update((dh, dw))
    assert shrinks == set(range(17))  # every value 0..16, nothing else: holes 96..128 wide


def test_bbox_to_mask_without_shrink_is_the_box_and_checks_inputs():
    rng = np.random.default_rng(4)
    mask = bbox_to_mask((3, 5, 4, 6), (10, 12), max_delta=0, rng=rng)
    expected = np.zeros((10, 12), np.float32)
    expected[3:7, 5:11] = 1
    np.testing.assert_array_equal(mask[0, 0], expected)
    with pytest.raises(ValueError, match="inside"):
        bbox_to_mask((8, 0, 4, 4), 10, max_delta=0, rng=rng)
    with pytest.raises(ValueError, match="max_delta"):
        bbox_to_mask((0, 0, 8, 8), 10, max_delta=4, rng=rng)


def test_random_bbox_mask_batch_modes():
    rng = np.random.default_rng(5)
    mask, bboxes = random_bbox_mask(8, 64, 32, max_delta=(4, 4), rng=rng)
    assert mask.shape == (1, 1, 64, 64) and bboxes.shape == (1, 4)  # one per batch (release)
    masks, bboxes = random_bbox_mask(8, 64, 32, max_delta=(4, 4), per_sample=True, rng=rng)
    assert masks.shape == (8, 1, 64, 64) and bboxes.shape == (8, 4)
    for m, (top, left, h, w) in zip(masks, bboxes):
        hole = m[0]
        assert hole[top:top + h, left:left + w].sum() == hole.sum()  # hole inside its bbox
        assert (24 * 24) <= hole.sum() <= 32 * 32
    assert len({tuple(b) for b in bboxes}) > 1
    again = random_bbox_mask(8, 64, 32, max_delta=(4, 4), rng=np.random.default_rng(5))
    np.testing.assert_array_equal(again[0], mask)


def test_centered_bbox_mask_matches_the_release_box():
    mask, bboxes = centered_bbox_mask()
    np.testing.assert_array_equal(bboxes, [[64, 64, 128, 128]])
    assert _hole_extent(mask[0, 0]) == (64, 64, 128, 128)
    mask, bboxes = centered_bbox_mask((9, 12), (4, 5))
    assert _hole_extent(mask[0, 0]) == (2, 3, 4, 5) and tuple(bboxes[0]) == (2, 3, 4, 5)
    with pytest.raises(ValueError, match="fit"):
        centered_bbox_mask(16, 32)


def test_free_form_mask_statistics_and_determinism():
    rng = np.random.default_rng(6)
    fractions = []
    for _ in range(40):
        mask = free_form_mask(64, rng=rng)
        assert mask.shape == (1, 1, 64, 64) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        fractions.append(mask.mean())
    fractions = np.array(fractions)
    assert fractions.min() > 0 and fractions.max() < 0.8  # never empty, never the whole image
    assert 0.02 < fractions.mean() < 0.4
    a = free_form_mask((48, 40), rng=np.random.default_rng(7))
    b = free_form_mask((48, 40), rng=np.random.default_rng(7))
    assert a.shape == (1, 1, 48, 40) and np.array_equal(a, b)


def test_free_form_single_segment_is_a_capsule():
    # one stroke of one horizontal segment (max_angle tiny), width 9: round ends, 9 px tall
    checked = 0
    for seed in range(30):
        mask = free_form_mask(64, rng=np.random.default_rng(seed), max_strokes=1, max_vertex=1,
                              max_angle=1e-9, min_brush_width=9, max_brush_width=9,
                              max_length=30)[0, 0]
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if rows[0] == 0 or rows[-1] == 63 or cols[0] == 0 or cols[-1] == 63 or len(cols) < 14:
            continue  # touches the border (clipped) or too short to have a middle
        checked += 1
        assert 8 <= len(rows) <= 11
        heights = mask[:, cols].sum(axis=0)
        assert heights[0] < heights[len(cols) // 2] and heights[-1] < heights[len(cols) // 2]
    assert checked >= 5


def test_free_form_mask_errors():
    with pytest.raises(ValueError, match="brush"):
        free_form_mask(64, rng=np.random.default_rng(0), min_brush_width=10, max_brush_width=5)
    with pytest.raises(TypeError):
        free_form_mask(64, rng=0)


def test_bboxes_around_holes_centre_each_box_on_its_hole_inside_the_image():
    """Reference: the hole's centroid summed pixel by pixel, the box slid inside by hand."""
    size, box = 64, 16
    rng = np.random.default_rng(5)
    masks = np.concatenate([free_form_mask(size, rng=rng) for _ in range(5)]
                           + [np.zeros((1, 1, size, size), np.float32)])   # an empty mask too
    masks[0] = 0
    masks[0, 0, 0:3, 60:64] = 1                    # a hole in the top-right corner: clamped
    boxes = bboxes_around_holes(masks, box)
    assert boxes.shape == (6, 4) and boxes.dtype == np.int64
    for mask, (top, left, height, width) in zip(masks, boxes):
        total = sum_y = sum_x = 0
        for y in range(size):
            for x in range(size):
                if mask[0, y, x]:
                    total, sum_y, sum_x = total + 1, sum_y + y, sum_x + x
        centre_y, centre_x = (sum_y // total, sum_x // total) if total else (size // 2, size // 2)
        want_top = centre_y - box // 2
        want_left = centre_x - box // 2
        want_top = 0 if want_top < 0 else size - box if want_top > size - box else want_top
        want_left = 0 if want_left < 0 else size - box if want_left > size - box else want_left
        assert (top, left, height, width) == (want_top, want_left, box, box)
    assert tuple(boxes[0]) == (0, size - box, box, box)
    assert tuple(boxes[5]) == (size // 2 - box // 2,) * 2 + (box, box)
    with pytest.raises(ValueError, match="bbox_size 80 must be positive and fit in the 64x64"):
        bboxes_around_holes(masks, 80)


# --------------------------------------------------------- exact rules: strokes, shrinks, boxes

class _Recording(np.random.Generator):
    """A real generator that records the (low, high) of every integers / uniform draw."""

    def __init__(self, seed):
        super().__init__(np.random.PCG64(seed))
        self.calls = set()

    def integers(self, low, high=None, *args, **kwargs):
        self.calls.add(("integers", low, high))
        return super().integers(low, high, *args, **kwargs)

    def uniform(self, low=0.0, high=1.0, *args, **kwargs):
        self.calls.add(("uniform", low, high))
        return super().uniform(low, high, *args, **kwargs)


class _Scripted(np.random.Generator):
    """Draws given in advance: integers from ``ints`` (checked to lie in [low, high)),
    uniform(low, high) = low + f (high - low) for f in ``fracs``, random() from ``randoms``."""

    def __init__(self, ints, fracs, randoms):
        super().__init__(np.random.PCG64(0))
        self.ints, self.fracs, self.randoms = list(ints), list(fracs), list(randoms)

    def integers(self, low, high=None, *args, **kwargs):
        value = self.ints.pop(0)
        assert low <= value < high
        return value

    def uniform(self, low=0.0, high=1.0, *args, **kwargs):
        return low + self.fracs.pop(0) * (high - low)

    def random(self, *args, **kwargs):
        return self.randoms.pop(0)


@pytest.mark.parametrize("size, widths, length", [
    (256, (12, 40), 90.0),                       # the documented values at 256
    ((32, 256), (2, 5), 90.0 * 32 / 256),        # scaled by min(H, W) / 256: 1.5 -> 2, 5, 11.25
])
def test_free_form_default_widths_and_lengths_scale_with_the_short_side(size, widths, length):
    """Defaults: brush width ~ U{round(12 s)..round(40 s)}, length ~ U[0, 90 s) with
    s = min(H, W) / 256; the start point is uniform over the whole image (x in [0, W),
    y in [0, H))."""
    rng = _Recording(0)
    free_form_mask(size, rng=rng)
    height, width = (size, size) if np.isscalar(size) else size
    assert ("integers", widths[0], widths[1] + 1) in rng.calls
    assert ("uniform", 0, length) in rng.calls
    assert ("uniform", 0, width) in rng.calls and ("uniform", 0, height) in rng.calls
    assert not any(kind == "integers" and low not in (1, widths[0])
                   for kind, low, _ in rng.calls)


def test_free_form_strokes_start_anywhere_along_the_long_side():
    """Start x ~ U[0, W): on a 16 x 256 image short strokes reach the middle columns (which
    they could not if x were drawn over the height)."""
    rng = np.random.default_rng(3)
    covered = np.zeros(256, bool)
    for _ in range(40):
        mask = free_form_mask((16, 256), rng=rng, max_length=8)
        covered |= mask[0, 0].any(axis=0)
    assert covered[64:192].mean() > 0.5


def test_free_form_zig_zag_mirrors_even_segments():
    """Segment i heads at 2 pi - angle for even i (the first one) and at angle for odd i: with
    angle = pi / 2 both times the stroke goes up 20 px and comes back, never below its start."""
    rng = _Scripted(ints=[1, 5, 2],                          # 1 stroke, width 5, 2 segments
                    fracs=[0.5, 0.5, 0.5, 20 / 40, 0.5, 20 / 40],   # start (32, 32); pi/2; 20 px
                    randoms=[0.9, 0.9])                      # no flips
    mask = free_form_mask(64, rng=rng, max_angle=np.pi, max_length=40,
                          min_brush_width=5, max_brush_width=5)[0, 0]
    rows, cols = np.nonzero(mask)
    assert mask[12, 32] == 1 and mask[22, 32] == 1 and mask[32, 32] == 1
    assert rows.min() >= 12 - 3 and rows.max() <= 32 + 3      # up from the start, not down
    assert cols.min() >= 32 - 3 and cols.max() <= 32 + 3


@pytest.mark.parametrize("flip_lr, flip_ud", [(False, False), (True, False), (False, True),
                                              (True, True)])
def test_free_form_flips_left_right_then_top_bottom(flip_lr, flip_ud):
    """After drawing, random() < 1/2 flips left-right, the next random() < 1/2 top-bottom."""
    script = dict(ints=[1, 5, 1], fracs=[0.25, 0.125, 0.0, 0.5])    # one 10 px segment
    rng = _Scripted(randoms=[0.1 if flip_lr else 0.9, 0.1 if flip_ud else 0.9], **script)
    mask = free_form_mask(64, rng=rng, max_angle=np.pi, max_length=20,
                          min_brush_width=5, max_brush_width=5)[0, 0]
    plain = free_form_mask(64, rng=_Scripted(randoms=[0.9, 0.9], **script), max_angle=np.pi,
                           max_length=20, min_brush_width=5, max_brush_width=5)[0, 0]
    expected = plain[:, ::-1] if flip_lr else plain
    expected = expected[::-1, :] if flip_ud else expected
    np.testing.assert_array_equal(mask, expected)
    rows, cols = np.nonzero(plain)                  # start (16, 8), heads right 10 px
    assert cols.min() < 32 and rows.max() < 32      # the unflipped stroke is in the top-left


def test_free_form_points_are_clipped_to_the_last_column():
    """A segment running off the right edge ends at x = W - 1 (clipped into the image): the
    next segment, straight down from there, is centred on the last column (width 7: columns
    W - 4 .. W - 1 are covered)."""
    rng = _Scripted(ints=[1, 7, 2], fracs=[0.5, 0.5, 0.0, 60 / 64, 0.5, 20 / 64],
                    randoms=[0.9, 0.9])     # start (32, 32); right 60 px; then down 20 px
    mask = free_form_mask(64, rng=rng, max_angle=np.pi, max_length=64,
                          min_brush_width=7, max_brush_width=7)[0, 0]
    assert np.nonzero(mask[45])[0].tolist() == [60, 61, 62, 63]
    assert mask[52, 63] == 1 and mask[58, 63] == 0


def test_bbox_to_mask_draws_the_two_shrinks_independently():
    """dh shrinks rows only, dw columns only: with max_delta (0, 4) the rows are never shrunk
    and the columns sometimes are; with (4, 0) the other way round."""
    for max_delta, shrunk_axis in (((0, 4), 1), ((4, 0), 0)):
        rng = np.random.default_rng(8)
        shrinks = set()
        for _ in range(30):
            mask = bbox_to_mask((2, 3, 12, 14), (20, 24), max_delta=max_delta, rng=rng)[0, 0]
            top, left, h, w = _hole_extent(mask)
            fixed = (top, h) if shrunk_axis == 1 else (left, w)
            assert fixed == ((2, 12) if shrunk_axis == 1 else (3, 14))
            shrinks.add(left - 3 if shrunk_axis == 1 else top - 2)
        assert shrinks == set(range(5))


def test_bboxes_around_holes_truncate_the_centroid_and_clamp_at_the_bottom():
    """The centre is the integer part of the mean (10.75 -> 10, not 11); a hole at the bottom
    edge slides its box up to H - size; a box as large as the image is allowed (0, 0)."""
    masks = np.zeros((3, 1, 32, 32), np.float32)
    masks[0, 0, 10, 5] = masks[0, 0, 11, 5] = masks[0, 0, 11, 6] = masks[0, 0, 11, 7] = 1
    # rows mean (10 + 11 * 3) / 4 = 10.75 -> 10; cols mean (5 + 5 + 6 + 7) / 4 = 5.75 -> 5
    masks[1, 0, 30:32, 0:2] = 1                      # bottom-left corner
    masks[2, 0, 16, 16] = 1
    boxes = bboxes_around_holes(masks[:2], 8)
    assert tuple(boxes[0]) == (10 - 4, 5 - 4, 8, 8)
    assert tuple(boxes[1]) == (32 - 8, 0, 8, 8)
    assert tuple(bboxes_around_holes(masks[2:], 32)[0]) == (0, 0, 32, 32)
