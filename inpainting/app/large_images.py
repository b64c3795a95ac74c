"""Large images: crops around the holes at the model's scale, or the whole image in bounded memory.

A generator is trained on images of one size (``meta["image_size"]``: 256 for the release,
128 for the shipped model) with holes up to half of it. Run on a 4000x3000 photograph as a
whole, it sees a hole at a scale it never met, and contextual attention needs
(H*W/64)^2 scores: 131 GiB. ``inpaint_large`` therefore works, by default, the way the
popular inpainting tools do:

1. **Plan** (``plan_crops``): every connected hole region (8-connected) gets a window
   centred on it, of side ``max(2 * hole extent, working size)`` (so the hole is at most half
   the window, as in training), clipped to the image; windows that overlap or touch are
   merged into one around their holes, until none do.
2. **Inpaint each window at the model's scale**: a window larger than the working size is
   downscaled (bicubic, antialiased) so its longer side is the working size, its hole by
   "any hole pixel in the cell" (no hole pixel is lost); then ``inference.inpaint``.
3. **Put back**: the window's result (known pixels outside, fill inside) is upscaled
   (bicubic) to the window's size and used inside the original hole only; every pixel
   outside the hole is the input's own.

``mode="full"`` runs the whole image instead, with contextual attention's memory bounded
from the memory available (``available_memory``). Both modes estimate the peak memory first
(``estimate_bytes``) and refuse, in one line naming the estimate and the option that helps,
what cannot fit. An image no larger than the working size runs whole either way, exactly as
``inference.inpaint``.
"""
from __future__ import annotations

import math
import os
import threading
import warnings
from typing import NamedTuple

import numpy as np

from ..model.inference import InpaintResult, inpaint

__all__ = ["inpaint_large", "plan_crops", "any_pool", "estimate_bytes", "available_memory",
           "working_size_of", "Window", "DEFAULT_WORKING_SIZE", "MemoryEstimateError"]

#: Working size of a generator that does not say what it was trained at (the release's).
DEFAULT_WORKING_SIZE = 256
#: Peak floats per (padded) pixel of the generator's convolutions: ``36 * cnum + 80`` bounds
#: the ``~34 * cnum + 65`` measured with tracemalloc (cnum 4, 16, 32; 256-512 px). Half of the
#: per-cnum part (18 cnum: the im2col columns of the full-resolution 3x3 conv from 2 cnum
#: channels) is built in blocks of at most ``WIDE_BLOCK_BYTES``, so large images cost less.
CONV_FLOATS_PER_PIXEL = (36, 80)
#: Share of the available memory ``mode="full"`` plans to use.
MEMORY_SHARE = 0.75


class MemoryEstimateError(ValueError):
    """The estimated peak memory exceeds what is available; the message names both."""


class Window(NamedTuple):
    """A crop ``image[:, top:bottom, left:right]`` holding one or more whole hole regions."""
    top: int
    left: int
    bottom: int
    right: int


def working_size_of(generator) -> int:
    """The size the generator was trained at (its file's ``image_size``), else 256."""
    size = getattr(generator, "meta", {}).get("image_size")
    return int(size) if size else DEFAULT_WORKING_SIZE


def _window_around(box, working_size, height, width):
    top, left, bottom, right = box
    extent = max(bottom - top, right - left)
    side = max(2 * extent, working_size)
    rows, cols = min(side, height), min(side, width)
    y0 = min(max((top + bottom - rows) // 2, 0), height - rows)
    x0 = min(max((left + right - cols) // 2, 0), width - cols)
    return Window(y0, x0, y0 + rows, x0 + cols)


def plan_crops(hole, working_size):
    """Windows covering every hole pixel of the bool (H, W) ``hole``: one per hole region,
    merged where windows overlap or touch (see the module docstring). Sorted top to bottom."""
    from scipy import ndimage

    hole = np.asarray(hole, dtype=bool)
    if hole.ndim != 2:
        raise ValueError(f"plan_crops: hole must be a 2-D (H, W) array, got shape {hole.shape}")
    height, width = hole.shape
    labels, count = ndimage.label(hole, structure=np.ones((3, 3), bool))
    boxes = [(s[0].start, s[1].start, s[0].stop, s[1].stop)
             for s in ndimage.find_objects(labels)]
    while True:
        windows = [_window_around(box, working_size, height, width) for box in boxes]
        painted = np.zeros((height, width), bool)
        for w in windows:
            painted[w.top:w.bottom, w.left:w.right] = True
        groups, group_count = ndimage.label(painted)
        if group_count == len(windows):
            return sorted(windows)
        merged = {}
        for box, w in zip(boxes, windows):
            key = groups[w.top, w.left]
            old = merged.get(key, box)
            merged[key] = (min(old[0], box[0]), min(old[1], box[1]),
                           max(old[2], box[2]), max(old[3], box[3]))
        boxes = list(merged.values())


def any_pool(hole, rows, cols):
    """Downscale the bool (h, w) ``hole`` to (rows, cols): a cell is hole when any source pixel
    it overlaps is (cell i covers source rows floor(i h / rows) .. ceil((i + 1) h / rows))."""
    hole = np.asarray(hole, dtype=bool)
    if hole.ndim != 2 or min(rows, cols) < 1:
        raise ValueError(f"any_pool: needs a 2-D hole and a positive size, got shape "
                         f"{hole.shape} -> ({rows}, {cols})")
    h, w = hole.shape
    integral = np.zeros((h + 1, w + 1), np.int64)
    integral[1:, 1:] = hole.cumsum(0).cumsum(1)
    r0 = np.arange(rows) * h // rows
    r1 = -(-(np.arange(rows) + 1) * h // rows)
    c0 = np.arange(cols) * w // cols
    c1 = -(-(np.arange(cols) + 1) * w // cols)
    counts = (integral[np.ix_(r1, c1)] - integral[np.ix_(r0, c1)]
              - integral[np.ix_(r1, c0)] + integral[np.ix_(r0, c0)])
    return counts > 0


def _resize(array, rows, cols):
    """Bicubic resize of a float (C, h, w) array in [-1, 1] with Pillow (antialiased when
    shrinking), clipped back to [-1, 1] (bicubic overshoots at edges)."""
    from PIL import Image

    if array.shape[1:] == (rows, cols):
        return np.array(array, dtype=np.float32)
    resized = np.stack([np.asarray(Image.fromarray(np.asarray(channel, np.float32)).resize(
        (cols, rows), Image.Resampling.BICUBIC)) for channel in array])
    return np.clip(resized, -1.0, 1.0)


def estimate_bytes(height, width, cnum, *, itemsize=4, attention_chunk=None):
    """Estimated peak bytes of ``inference.inpaint`` on one (height, width) image: the
    convolutions (``CONV_FLOATS_PER_PIXEL`` per padded pixel, the column part capped at
    ``WIDE_BLOCK_BYTES``) plus contextual attention's
    scores (``CHUNK_BYTES_PER_SCORE`` per score: L x L direct, (R + 2w + 4) x L chunked,
    L = (H/8)(W/8), w = W/8), plus the weights. An upper bound of the measured peak."""
    from ..model.attention import CHUNK_BYTES_PER_SCORE
    from ..model.networks import gen_conv_table

    from nnlite.kernels.conv_strategy import WIDE_BLOCK_BYTES

    padded_h, padded_w = -(-height // 8) * 8, -(-width // 8) * 8
    per_cnum, constant = CONV_FLOATS_PER_PIXEL
    pixels = padded_h * padded_w
    columns = itemsize * (per_cnum // 2) * cnum * pixels
    convs = itemsize * (per_cnum // 2 * cnum + constant) * pixels + min(columns,
                                                                       WIDE_BLOCK_BYTES)
    w = padded_w // 8
    length = (padded_h // 8) * w
    rows = length if attention_chunk is None else min(attention_chunk + 2 * w + 4, length)
    scores = CHUNK_BYTES_PER_SCORE * itemsize * rows * length
    weights = itemsize * sum(cout * (cin * k * k + 1) for _, cin, cout, k, *_ in
                             gen_conv_table(cnum))
    return convs + scores + weights


def available_memory(device="cpu"):
    """Bytes that can be allocated now: ``MemAvailable`` of /proc/meminfo on Linux (else the
    free physical pages), or the free memory of the current CUDA device.

    The environment variable ``INPAINTING_MEMORY_LIMIT`` (a whole number of bytes), when
    set, caps the figure: the runs then plan for at most that much."""
    text = os.environ.get("INPAINTING_MEMORY_LIMIT", "").strip()
    if text:
        if not text.isdigit():
            raise ValueError(f"INPAINTING_MEMORY_LIMIT must be a whole number of bytes, "
                             f"got {text!r}")
        return min(int(text), _free_memory(device))
    return _free_memory(device)


def _free_memory(device):
    if device == "cuda":
        from nnlite.backend import cupy
        free, _ = cupy.cuda.runtime.memGetInfo()
        return int(free + cupy.get_default_memory_pool().free_bytes())
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(nbytes):
    return f"{nbytes / 2**30:.1f} GiB"


class _Ticker:
    """An elapsed-time bar for one long step, drawn after ``delay`` seconds (tqdm, stderr)."""

    def __init__(self, description, enabled, delay=3.0):
        self.description, self.enabled, self.delay = description, enabled, delay
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        if self.done.wait(self.delay):
            return
        from tqdm import tqdm
        with tqdm(total=None, desc=self.description, bar_format="{desc}: {elapsed}",
                  dynamic_ncols=True) as bar:
            while not self.done.wait(1.0):
                bar.refresh()

    def __enter__(self):
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        if self.enabled:
            self.thread.join()


def _device_of(generator):
    return generator.conv1.weight.device


def _run_window(generator, image, hole, window, working_size, attention_memory=None,
                knockout_attention=False):
    """Inpaint one window at the working scale: (fill, coarse, offsets, scale) at window size,
    ``fill`` the window's composite (its known pixels outside the hole)."""
    from nnlite.backend import to_device

    crop = image[:, window.top:window.bottom, window.left:window.right]
    crop_hole = hole[window.top:window.bottom, window.left:window.right]
    rows, cols = crop.shape[1:]
    scale = min(1.0, working_size / max(rows, cols))
    small_rows, small_cols = max(8, round(rows * scale)), max(8, round(cols * scale))
    if scale < 1:
        small, small_hole = _resize(crop, small_rows, small_cols), any_pool(
            crop_hole, small_rows, small_cols)
    else:
        small, small_hole = crop, crop_hole
    device = _device_of(generator)
    with warnings.catch_warnings():           # a bright crop of a valid image
        warnings.filterwarnings("ignore", message="inpaint: the image has no value below 0")
        result = inpaint(generator, to_device(np.ascontiguousarray(small), device),
                         to_device(small_hole[None].astype(np.float32), device),
                         attention_memory=attention_memory,
                         knockout_attention=knockout_attention)
    fill = _resize(to_device(result.output, "cpu")[0], rows, cols)
    coarse = _resize(to_device(result.coarse, "cpu")[0], rows, cols)
    offsets = None if result.offsets is None else np.asarray(to_device(result.offsets, "cpu"))[0]
    return fill, coarse, offsets, small_rows / rows     # offsets None: the attention=False model


def _place_offsets(offsets, small_offsets, window, scale):
    """Write a window's attention offsets (at 1/8 of its scaled size) into the full image's
    1/8 grid, nearest cell, lengths divided by the scale (full-resolution eighths)."""
    grid_rows, grid_cols = offsets.shape[1:]
    r0, r1 = window.top // 8, min(-(-window.bottom // 8), grid_rows)
    c0, c1 = window.left // 8, min(-(-window.right // 8), grid_cols)
    src_r = np.clip(((np.arange(r0, r1) * 8 + 4 - window.top) * scale) // 8, 0,
                    small_offsets.shape[1] - 1).astype(int)
    src_c = np.clip(((np.arange(c0, c1) * 8 + 4 - window.left) * scale) // 8, 0,
                    small_offsets.shape[2] - 1).astype(int)
    picked = small_offsets[:, src_r][:, :, src_c]
    offsets[:, r0:r1, c0:c1] = np.round(picked / scale).astype(offsets.dtype)


def inpaint_large(generator, image, mask, *, mode="auto", working_size=None,
                  attention_memory=None, memory_limit=None, progress=False,
                  knockout_attention=False, on_window=None):
    """Inpaint one image of any size without running out of memory (see the module docstring).

    Args:
        generator: an ``InpaintGenerator``.
        image: float (3, H, W) in [-1, 1] (NumPy, or CuPy: brought to the host).
        mask: (1, H, W) or (H, W), 1 (above 0.5) = hole.
        mode: "auto" (crops when max(H, W) > working size, else the whole image), "crop"
            or "full" (the whole image; attention bounded from the available memory).
        working_size: the side the model works at (default: ``working_size_of(generator)``).
        attention_memory: bytes for contextual attention (default: in "full" mode what the
            available memory leaves after the convolutions, the direct evaluation if it fits;
            crops at the working size use the direct evaluation).
        memory_limit: bytes the run may use (default: ``available_memory``).
        progress: draw a progress bar (stderr) when the run takes more than a few seconds.
        knockout_attention: passed to ``inference.inpaint`` for every window (the probe).
        on_window: called as ``on_window(done, total)`` when the crops are planned (done 0)
            and after each window (for a caller's own progress display); not called when
            the image runs whole.

    Returns an ``InpaintResult`` of NumPy arrays of the full size, batch 1: ``output`` the
    composite (the input's values outside the hole), ``coarse`` and ``refined`` the windows'
    coarse and composited results put back at full size (the input elsewhere), ``offsets``
    the attention offsets on the full image's 1/8 grid (zero outside the windows). Raises
    ``MemoryEstimateError`` (a ValueError) before any heavy allocation when the estimate
    exceeds the memory, ValueError for bad arguments (as ``inference.inpaint``).
    """
    from nnlite.backend import to_device

    from ..model.inference import _check_generator, _prepare_arrays

    _check_generator(generator, "inpaint_large")
    if mode not in ("auto", "crop", "full"):
        raise ValueError(f"inpaint_large: mode must be 'auto', 'crop' or 'full', got {mode!r}")
    import nnlite

    image, mask = (value.data if isinstance(value, nnlite.Tensor) else value
                   for value in (image, mask))
    if hasattr(image, "ndim") and hasattr(mask, "ndim"):      # else _prepare_arrays names it
        image, mask = np.asarray(to_device(image, "cpu")), np.asarray(to_device(mask, "cpu"))
    mask = mask[None] if getattr(mask, "ndim", 0) == 2 else mask
    image, mask = _prepare_arrays(image, mask, "inpaint_large", single=True)
    hole = mask[0, 0] > 0.5
    height, width = hole.shape
    working = working_size_of(generator) if working_size is None else working_size
    if isinstance(working, bool) or not isinstance(working, (int, np.integer)) or working < 16:
        raise ValueError(f"inpaint_large: working_size must be an integer >= 16, got {working!r}")
    limit = available_memory(_device_of(generator)) if memory_limit is None else memory_limit
    itemsize = generator.conv1.weight.dtype.itemsize
    cnum = generator.cnum
    image_bytes = 12 * image.nbytes            # the image, its composites and copies
    if mode == "full" or (mode == "auto" and max(height, width) <= working):
        return _inpaint_whole(generator, image, mask, attention_memory, limit, itemsize,
                              image_bytes, progress, mode, knockout_attention)
    windows = plan_crops(hole, working)
    peak = estimate_bytes(working, working, cnum, itemsize=itemsize) + image_bytes
    if peak > limit:
        raise MemoryEstimateError(
            f"inpaint: crops at working size {working} need about {_gib(peak)}, more than the "
            f"{_gib(limit)} available; choose a smaller --working-size")
    output, coarse, refined = image.copy(), image.copy(), image.copy()
    offsets = np.zeros((2, -(-height // 8), -(-width // 8)), np.int64)
    from tqdm import tqdm

    if on_window is not None:
        on_window(0, len(windows))
    with tqdm(windows, desc="inpainting crops", unit="crop", disable=not progress,
              delay=3.0, dynamic_ncols=True) as bar:
        for done, window in enumerate(bar, 1):
            fill, window_coarse, small_offsets, scale = _run_window(
                generator, image[0], hole, window, working, attention_memory,
                knockout_attention)
            rows = slice(window.top, window.bottom)
            cols = slice(window.left, window.right)
            inside = hole[rows, cols]
            output[0, :, rows, cols] = np.where(inside, fill, image[0, :, rows, cols])
            refined[0, :, rows, cols] = fill
            coarse[0, :, rows, cols] = window_coarse
            if small_offsets is not None:
                _place_offsets(offsets, small_offsets, window, scale)
            if on_window is not None:
                on_window(done, len(windows))
    return InpaintResult(output, coarse, refined, offsets[None])


def _inpaint_whole(generator, image, mask, attention_memory, limit, itemsize, image_bytes,
                   progress, mode, knockout_attention=False):
    from nnlite.backend import to_device

    from ..model.attention import chunk_size_for_memory

    height, width = image.shape[2:]
    padded_h, padded_w = -(-height // 8) * 8, -(-width // 8) * 8
    cnum = generator.cnum
    direct = estimate_bytes(height, width, cnum, itemsize=itemsize) + image_bytes
    convs = estimate_bytes(height, width, cnum, itemsize=itemsize, attention_chunk=1) \
        + image_bytes
    hint = ("drop --full-image to inpaint crops around the holes" if mode == "full" else
            "inpaint crops around the holes (mode='crop')")
    if convs > limit:
        raise MemoryEstimateError(
            f"inpaint: the whole {width}x{height} image needs about {_gib(convs)} even with "
            f"the attention bounded, more than the {_gib(limit)} available; {hint}")
    if attention_memory is None and direct > MEMORY_SHARE * limit:
        from ..model.attention import CHUNK_BYTES_PER_SCORE
        w, length = padded_w // 8, (padded_h // 8) * (padded_w // 8)
        one_chunk = CHUNK_BYTES_PER_SCORE * itemsize * min(1 + 2 * w + 4, length) * length
        attention_memory = MEMORY_SHARE * limit - (convs - one_chunk)
        try:
            chunk_size_for_memory(attention_memory, padded_h // 4, padded_w // 4,
                                  itemsize=itemsize)
        except ValueError:
            raise MemoryEstimateError(
                f"inpaint: the whole {width}x{height} image needs about {_gib(convs)} with its "
                f"attention bounded, more than {MEMORY_SHARE:.0%} of the {_gib(limit)} "
                f"available; {hint}") from None
    device = _device_of(generator)
    with _Ticker(f"inpainting the whole {width}x{height} image", progress):
        result = inpaint(generator, to_device(image, device), to_device(mask, device),
                         attention_memory=attention_memory,
                         knockout_attention=knockout_attention)
    return InpaintResult(*(np.asarray(to_device(array, "cpu")) for array in result))
