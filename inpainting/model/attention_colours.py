"""Colour coding of contextual-attention offsets (spec §4): the paper's attention maps.

Each foreground position p attends mostly to one background position a(p); the offset
``(dy, dx) = a(p) - p`` is drawn with the Middlebury optical-flow colour wheel, exactly
as the released code does it:

* hue = direction: ``atan2(-dx, -dy) / pi`` picks a place on a 55-colour wheel
  (segments red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11, blue-magenta 13,
  magenta-red 6), interpolated linearly between neighbouring entries;
* saturation = length: offsets are divided by the largest radius seen *so far in the
  batch* (a running maximum over samples 0..i, plus float64 eps), and inside the unit
  radius ``col = 1 - rad * (1 - col)``: a zero offset is white, the longest one is the
  pure wheel colour; outside it (which the running max never produces) ``col *= 0.75``;
* ``uint8(floor(255 * col))``.

So white = "copies from right here", red = from below (dy > 0), cyan-blue = from above,
orange-yellow = from the right (dx > 0), violet = from the left; see ``color_wheel_legend``.

This file holds only NumPy display code (no autograd): ``make_color_wheel``,
``compute_color``, ``flow_to_image``, ``upsample_nearest``, ``overlay_flow``,
``color_wheel_legend``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["make_color_wheel", "compute_color", "flow_to_image", "upsample_nearest",
           "overlay_flow", "color_wheel_legend", "WHEEL_SEGMENTS"]

#: (name, length) of the six wheel segments, in wheel order (spec §4).
WHEEL_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def make_color_wheel():
    """The (55, 3) float64 RGB wheel in 0..255; each ramp is ``floor(255 * i / n)``, i < n."""
    wheel = np.zeros((sum(n for _, n in WHEEL_SEGMENTS), 3))
    # For each segment: (channel held at 255, channel ramping, ramp up (+1) or down (-1)).
    plan = {"RY": (0, 1, +1), "YG": (1, 0, -1), "GC": (1, 2, +1),
            "CB": (2, 1, -1), "BM": (2, 0, +1), "MR": (0, 2, -1)}
    start = 0
    for name, n in WHEEL_SEGMENTS:
        full, ramp_channel, direction = plan[name]
        ramp = np.floor(255 * np.arange(n) / n)
        wheel[start:start + n, full] = 255
        wheel[start:start + n, ramp_channel] = ramp if direction > 0 else 255 - ramp
        start += n
    return wheel


def compute_color(u, v):
    """Colour of normalised offsets: ``u`` = dy, ``v`` = dx, float arrays (h, w) -> (h, w, 3)
    uint8. NaNs are drawn black, as in the release."""
    u = np.array(u, dtype=np.float64)
    v = np.array(v, dtype=np.float64)
    nan = np.isnan(u) | np.isnan(v)
    u[nan] = 0
    v[nan] = 0
    wheel = make_color_wheel()
    ncols = wheel.shape[0]
    rad = np.sqrt(u ** 2 + v ** 2)
    angle = np.arctan2(-v, -u) / np.pi                 # in [-1, 1]
    fk = (angle + 1) / 2 * (ncols - 1) + 1             # 1-based position on the wheel
    k0 = np.floor(fk).astype(int)
    k1 = k0 + 1
    k1[k1 == ncols + 1] = 1
    frac = fk - k0
    image = np.zeros(u.shape + (3,), dtype=np.uint8)
    inside = rad <= 1
    for channel in range(3):
        col0 = wheel[k0 - 1, channel] / 255
        col1 = wheel[k1 - 1, channel] / 255
        col = (1 - frac) * col0 + frac * col1
        col[inside] = 1 - rad[inside] * (1 - col[inside])   # towards white near zero
        col[~inside] *= 0.75
        image[..., channel] = np.floor(255 * col * (1 - nan)).astype(np.uint8)
    return image


def flow_to_image(offsets):
    """Offsets (N, 2, h, w) of (dy, dx) -> colour images (N, h, w, 3) uint8 (spec §4).

    ``offsets`` may be a NumPy or CuPy array or an nnlite Tensor (it is copied to the
    host). Sample i is normalised by the largest offset radius among samples 0..i (the
    release's running maximum), plus float64 eps so that all-zero offsets stay white.
    Entries with |offset| > 1e7 are treated as unknown and drawn as zero (release).
    """
    from nnlite.backend import to_device

    array = getattr(offsets, "data", offsets)
    array = np.asarray(to_device(array, "cpu"))
    if array.ndim != 4 or array.shape[1] != 2:
        raise ValueError(f"flow_to_image: offsets must be (N, 2, h, w) of (dy, dx), "
                         f"got shape {array.shape}")
    images = []
    max_rad = -1.0
    for sample in array:
        u = sample[0].astype(np.float64)
        v = sample[1].astype(np.float64)
        unknown = (np.abs(u) > 1e7) | (np.abs(v) > 1e7)
        u[unknown] = 0
        v[unknown] = 0
        max_rad = max(max_rad, float(np.max(np.sqrt(u ** 2 + v ** 2))))
        eps = np.finfo(float).eps
        images.append(compute_color(u / (max_rad + eps), v / (max_rad + eps)))
    return np.stack(images) if images else np.zeros((0,) + array.shape[2:] + (3,), np.uint8)


def upsample_nearest(images, height, width, align_corners=True):
    """(N, h, w, C) -> (N, height, width, C) by nearest neighbour, for display.

    ``align_corners=True`` is the release's rule (spec §1, the one its flow image is
    resized with); ``False`` duplicates pixels (``floor(y * h / height)``).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"upsample_nearest: expected (N, h, w, C), got shape {images.shape}")
    rows = _source_indices(images.shape[1], height, align_corners)
    cols = _source_indices(images.shape[2], width, align_corners)
    return images[:, rows][:, :, cols]


def _source_indices(in_size, out_size, align_corners):
    if align_corners:
        from nnlite.functional.resize import nearest_indices
        return np.asarray(nearest_indices(in_size, out_size, align_corners=True))
    return (np.arange(out_size) * in_size) // out_size


def overlay_flow(image, offsets, alpha=0.6, mask=None, align_corners=True):
    """Blend the colour-coded offsets over an image, for figures.

    Args:
        image: (N, H, W, 3) uint8 (or (H, W, 3) for one image).
        offsets: (N, 2, h, w) attention offsets, h and w dividing into H and W.
        alpha: weight of the colours (0 = image only, 1 = colours only).
        mask: optional (N or 1, 1, H, W) hole mask; colours are drawn only where it is 1
            (the hole, where attention actually fills in), the image elsewhere.

    Returns (N, H, W, 3) uint8.
    """
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"overlay_flow: image must be (N, H, W, 3), got {image.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay_flow: alpha must be in [0, 1], got {alpha}")
    colours = upsample_nearest(flow_to_image(offsets), image.shape[1], image.shape[2],
                               align_corners)
    if colours.shape[0] != image.shape[0]:
        raise ValueError(f"overlay_flow: {image.shape[0]} images but {colours.shape[0]} "
                         "offset maps")
    weight = np.full(image.shape[:3] + (1,), alpha)
    if mask is not None:
        from nnlite.backend import to_device
        hole = np.asarray(to_device(getattr(mask, "data", mask), "cpu"))
        if hole.ndim != 4 or hole.shape[1] != 1 or hole.shape[2:] != image.shape[1:3]:
            raise ValueError(f"overlay_flow: mask must be (N or 1, 1, {image.shape[1]}, "
                             f"{image.shape[2]}), got {hole.shape}")
        weight = weight * (hole[:, 0, :, :, None] > 0.5)
    blended = (1 - weight) * image + weight * colours
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def color_wheel_legend(size=129, max_offset=None):
    """A (size, size, 3) uint8 legend: the pixel at (dy, dx) from the centre shows the colour
    of the offset (dy, dx), normalised by ``max_offset`` (default: the half-size, so the
    inscribed circle is fully saturated). Read a map by finding its colour here: the
    direction from the centre is where a hole pixel copies from."""
    if size < 3:
        raise ValueError(f"color_wheel_legend: size must be at least 3, got {size}")
    half = (size - 1) / 2
    radius = half if max_offset is None else float(max_offset)
    if radius <= 0:
        raise ValueError(f"color_wheel_legend: max_offset must be positive, got {max_offset}")
    dy, dx = np.meshgrid(np.arange(size) - half, np.arange(size) - half, indexing="ij")
    return compute_color(dy / radius, dx / radius)
