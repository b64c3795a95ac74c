"""Hole masks for training and evaluation (spec §6): random boxes, the centred box, free-form strokes.

Every mask is float32 with 1 = hole and 0 = known, shaped (M, 1, H, W) (NCHW; M = 1 means "one
mask shared by the whole batch", which is what the release does). Boxes are ``(top, left, h, w)``
in pixels. All randomness comes from an explicit ``numpy.random.Generator`` passed as ``rng``.

The release's training rule (spec §6), with its numbers at 256 x 256:

* bbox: h = w = 128, top t and left l uniform integers in ``[margin, 256 - margin - 128)`` = [0, 128);
* hole: the bbox shrunk by dh on the top and bottom and by dw on the left and right, dh and dw
  uniform in {0, ..., 16} (the release's config says MAX_DELTA = 32 and draws from ``32 // 2 + 1``
  values), so the hole is (128 - 2 dh) x (128 - 2 dw), between 96 x 96 and 128 x 128;
* the local critic and the spatially discounted L1 see the whole bbox, not the shrunk hole;
* validation: the centred bbox with no shrink.

Free-form masks follow DeepFill v2's stroke algorithm (Yu et al. 2019, Algorithm 1); DeepFill v1
itself trains on boxes only. With them the local critic sees ``bboxes_around_holes``: a box of
the bbox size centred on each hole.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "bbox_to_mask",
    "bboxes_around_holes",
    "centered_bbox_mask",
    "free_form_mask",
    "random_bbox",
    "random_bbox_mask",
]


def _pair(value, name: str) -> tuple[int, int]:
    """int or (h, w) -> (h, w) of non-negative ints, with a clear error otherwise."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < 0 for v in pair):
        raise ValueError(f"{name} must be a non-negative int or a pair (h, w) of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(0)), "
                        f"got {type(rng).__name__}")
    return rng


def random_bbox(image_size=256, bbox_size=128, margin=0, *, rng) -> tuple[int, int, int, int]:
    """Random box ``(top, left, h, w)`` (spec §6; ``random_bbox`` in the release).

    ``top ~ U{margin_h, ..., H - margin_h - h - 1}`` and ``left`` likewise: the upper bound is
    exclusive, as in the release (``tf.random_uniform(minval, maxval)``), so at 256 / 128 / 0 the
    corner is uniform in [0, 128). Sizes and margin are ints or (h, w) pairs.
    """
    rng = _check_rng(rng)
    (height, width), (h, w), (margin_h, margin_w) = (
        _pair(image_size, "image_size"), _pair(bbox_size, "bbox_size"), _pair(margin, "margin"))
    max_top, max_left = height - margin_h - h, width - margin_w - w
    if max_top <= margin_h or max_left <= margin_w:
        raise ValueError(
            f"random_bbox: a {h}x{w} box with margin ({margin_h}, {margin_w}) leaves no room in a "
            f"{height}x{width} image; need image_size - 2*margin - bbox_size >= 1 on both axes")
    top = int(rng.integers(margin_h, max_top))
    left = int(rng.integers(margin_w, max_left))
    return top, left, h, w


def bbox_to_mask(bbox, image_size=256, max_delta=(16, 16), *, rng) -> np.ndarray:
    """Hole mask (1, 1, H, W) for one bbox: the box shrunk by dh / dw on every side (spec §6).

    ``dh ~ U{0, ..., max_delta[0]}``, ``dw ~ U{0, ..., max_delta[1]}`` (inclusive); the hole is
    rows ``[t + dh, t + h - dh)`` and columns ``[l + dw, l + w - dw)``, i.e. (h - 2 dh) x (w - 2 dw).
    ``max_delta = 0`` gives the box itself. The release's ``bbox2mask`` (``npmask``).
    """
    rng = _check_rng(rng)
    height, width = _pair(image_size, "image_size")
    top, left, h, w = (int(v) for v in bbox)
    if top < 0 or left < 0 or h <= 0 or w <= 0 or top + h > height or left + w > width:
        raise ValueError(f"bbox (top, left, h, w) = {tuple(bbox)} does not lie inside a "
                         f"{height}x{width} image")
    delta_h, delta_w = _pair(max_delta, "max_delta")
    if 2 * delta_h >= h or 2 * delta_w >= w:
        raise ValueError(f"max_delta {(delta_h, delta_w)} would shrink a {h}x{w} box to nothing; "
                         "need 2 * max_delta < bbox size")
    dh = int(rng.integers(0, delta_h + 1))
    dw = int(rng.integers(0, delta_w + 1))
    mask = np.zeros((1, 1, height, width), np.float32)
    mask[:, :, top + dh:top + h - dh, left + dw:left + w - dw] = 1.0
    return mask


def random_bbox_mask(batch_size=1, image_size=256, bbox_size=128, margin=0, max_delta=(16, 16),
                     *, per_sample=False, rng) -> tuple[np.ndarray, np.ndarray]:
    """Training masks and their boxes: ``(mask (M, 1, H, W), bboxes (M, 4) int64)`` (spec §6).

    By default M = 1: one bbox and one hole for the whole batch, as the release (the mask
    broadcasts over the batch). ``per_sample=True`` draws M = ``batch_size`` independent boxes.
    Row m of ``bboxes`` is ``(top, left, h, w)`` of mask m, for cropping the local critic's patch.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    count = int(batch_size) if per_sample else 1
    bboxes = np.zeros((count, 4), np.int64)
    masks = np.zeros((count, 1) + _pair(image_size, "image_size"), np.float32)
    for m in range(count):
        bboxes[m] = random_bbox(image_size, bbox_size, margin, rng=rng)
        masks[m] = bbox_to_mask(bboxes[m], image_size, max_delta, rng=rng)[0]
    return masks, bboxes


def centered_bbox_mask(image_size=256, bbox_size=128) -> tuple[np.ndarray, np.ndarray]:
    """Validation mask: the centred bbox, no shrink -> ``(mask (1, 1, H, W), bboxes (1, 4))``.

    ``top = (H - h) // 2``, ``left = (W - w) // 2``; at 256 / 128 this is the release's
    ``(HEIGHT // 2, WIDTH // 2, HEIGHT, WIDTH)`` box, rows and columns 64..191.
    """
    (height, width), (h, w) = _pair(image_size, "image_size"), _pair(bbox_size, "bbox_size")
    if not (0 < h <= height and 0 < w <= width):
        raise ValueError(f"bbox_size {(h, w)} must be positive and fit in image_size {(height, width)}")
    top, left = (height - h) // 2, (width - w) // 2
    mask = np.zeros((1, 1, height, width), np.float32)
    mask[:, :, top:top + h, left:left + w] = 1.0
    return mask, np.array([[top, left, h, w]], np.int64)


def free_form_mask(image_size=256, *, rng, max_strokes=3, max_vertex=12, max_length=None,
                   min_brush_width=None, max_brush_width=None, max_angle=2 * math.pi / 5) -> np.ndarray:
    """Free-form brush-stroke mask (1, 1, H, W), DeepFill v2's Algorithm 1.

    For each of ``U{1..max_strokes}`` strokes: a start point uniform in the image, a brush
    ``width ~ U{min_brush_width..max_brush_width}`` pixels, then ``U{1..max_vertex}`` segments;
    segment i heads at ``angle ~ U[0, max_angle)``, mirrored to ``2 pi - angle`` for even i (the
    zig-zag), and runs ``length ~ U[0, max_length)`` pixels. Segments are drawn with round joints
    and ends (a disc of the brush's diameter at every vertex; Pillow ``ImageDraw``); points are
    clipped to the image. The mask is then flipped left-right and top-bottom, each with
    probability 1/2. One width per stroke follows the v2 release (the paper's Algorithm 1 draws
    a width per segment).

    Lengths and widths left as None scale with ``min(H, W) / 256`` from the values at 256:
    max_length 90 (twice the v2 release's mean radius sqrt(H^2 + W^2) / 8), brush width 12..40
    (the v2 release's widths).
    """
    rng = _check_rng(rng)
    height, width = _pair(image_size, "image_size")
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {(height, width)}")
    scale = min(height, width) / 256.0
    max_length = 90 * scale if max_length is None else max_length
    min_brush_width = max(1, round(12 * scale)) if min_brush_width is None else min_brush_width
    max_brush_width = max(1, round(40 * scale)) if max_brush_width is None else max_brush_width
    if not (1 <= min_brush_width <= max_brush_width):
        raise ValueError(f"need 1 <= min_brush_width <= max_brush_width, got "
                         f"{min_brush_width}, {max_brush_width}")
    if max_strokes < 1 or max_vertex < 1 or max_length <= 0 or max_angle <= 0:
        raise ValueError("max_strokes, max_vertex, max_length and max_angle must be positive")

    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, max_strokes + 1))):
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        brush = int(rng.integers(min_brush_width, max_brush_width + 1))
        for i in range(int(rng.integers(1, max_vertex + 1))):
            angle = float(rng.uniform(0, max_angle))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = float(rng.uniform(0, max_length))
            new_x = min(max(x + length * math.cos(angle), 0.0), width - 1.0)
            new_y = min(max(y + length * math.sin(angle), 0.0), height - 1.0)
            draw.line([(x, y), (new_x, new_y)], fill=255, width=brush)
            radius = brush / 2.0
            for cx, cy in ((x, y), (new_x, new_y)):
                draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
            x, y = new_x, new_y
    mask = np.asarray(canvas, dtype=np.float32) / 255.0
    if rng.random() < 0.5:
        mask = mask[:, ::-1]
    if rng.random() < 0.5:
        mask = mask[::-1, :]
    return np.ascontiguousarray(mask)[None, None]


def bboxes_around_holes(masks, bbox_size=128) -> np.ndarray:
    """The box the local critic sees around each free-form hole (not in the release).

    Free-form masks have no bbox; this one is ``bbox_size`` square, centred on the hole's
    centroid (integer part of the mean row and column of its pixels; the image centre for an
    empty mask) and moved inside the image. masks (M, 1, H, W) -> int64 (M, 4) rows
    ``(top, left, bbox_size, bbox_size)``.
    """
    height, width = masks.shape[2:]
    if not 0 < bbox_size <= min(height, width):
        raise ValueError(f"bboxes_around_holes: bbox_size {bbox_size} must be positive and fit "
                         f"in the {height}x{width} masks")
    boxes = []
    for mask in masks:
        rows, cols = np.nonzero(mask[0])
        centre_y = int(rows.mean()) if rows.size else height // 2
        centre_x = int(cols.mean()) if cols.size else width // 2
        top = min(max(centre_y - bbox_size // 2, 0), height - bbox_size)
        left = min(max(centre_x - bbox_size // 2, 0), width - bbox_size)
        boxes.append((top, left, bbox_size, bbox_size))
    return np.asarray(boxes, np.int64).reshape(len(boxes), 4)
