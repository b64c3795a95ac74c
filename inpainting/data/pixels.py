"""A file's own pixel values: read them as stored, put a fill into the hole, write them back.

The model sees every image as float RGB in [-1, 1] (``inpainting.imageio``); converting its
result back to 8-bit RGB would change pixels the user never asked to change (a 16-bit or
gray file becomes 8-bit RGB, an alpha channel is lost, and the release's truncation turns a
200 into a 199 for about one value in nine). So the file-level commands composite in the
file's own values instead:

* ``read_native(path)`` -> ``NativeImage(pixels, mode)``: the stored samples, uint8 or uint16,
  (H, W) for gray or (H, W, C) with C = 2 (gray + alpha), 3 (RGB) or 4 (RGBA), and the
  Pillow mode that writes them back ("L", "LA", "RGB", "RGBA", "I;16").
* ``model_input(native)``: the (3, H, W) float image the model sees (the same as
  ``imageio.load_image`` gives for that file).
* ``composite(native, fill, hole)``: every pixel outside ``hole`` unchanged; inside, ``fill``
  (float RGB in [-1, 1]) rounded to the nearest value of the file's scale (0..255 or 0..65535),
  turned to gray with the ITU-R 601 luma weights for gray files; alpha is kept everywhere.
* ``write_native(path, pixels, mode)``: atomic write in the format of the extension;
  ``check_writable`` tells beforehand whether that format can hold the mode.

Files whose samples Pillow cannot give as stored (CMYK, YCbCr, LAB, float, palette) are read as
the RGB (or RGBA) Pillow converts them to, and written back as that. A lossy output format
(JPEG, lossy WebP) re-encodes every pixel: keep the pixels with PNG or TIFF.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from .imageio import (_WIDE_GRAY_MODES, as_rgb_uint8, check_path, hwc_uint8_to_chw,
                      opened_image)

__all__ = ["NativeImage", "read_native", "model_input", "composite", "write_native",
           "check_writable", "to_pil", "LUMA_WEIGHTS"]

#: ITU-R 601-2 luma, what Pillow's RGB -> L conversion uses.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


class NativeImage(NamedTuple):
    """``pixels``: uint8 or uint16 samples as stored; ``mode``: the Pillow mode writing them."""
    pixels: np.ndarray
    mode: str


def read_native(path) -> NativeImage:
    """Read ``path`` keeping its samples (8 or 16 bits, gray or RGB, alpha) as stored.

    The EXIF orientation is applied, as everywhere in the project. Raises ImageReadError
    (a ValueError) naming the path for a missing or undecodable file.
    """
    with opened_image(check_path(path, "read_native")) as image:
        if image.mode in _WIDE_GRAY_MODES:
            wide = np.asarray(image)
            return NativeImage(np.clip(wide, 0, 65535).astype(np.uint16), "I;16")
        if image.mode == "1":
            image = image.convert("L")
        elif image.mode in ("P", "PA"):
            has_alpha = image.mode == "PA" or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
        elif image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGB")
        return NativeImage(np.array(image, dtype=np.uint8), image.mode)


def _as_uint8(native: NativeImage) -> np.ndarray:
    if native.pixels.dtype == np.uint16:      # 16 bits -> 8, as imageio.load_image does
        return np.clip(np.round(native.pixels / 257.0), 0, 255).astype(np.uint8)
    return native.pixels


def model_input(native: NativeImage) -> np.ndarray:
    """The float32 (3, H, W) RGB image in [-1, 1] the model sees (gray replicated, alpha
    dropped, 16 bits reduced to 8): what ``imageio.load_image`` reads from the same file."""
    return hwc_uint8_to_chw(as_rgb_uint8(_as_uint8(native)))


def composite(native: NativeImage, fill, hole) -> np.ndarray:
    """The file's pixels with ``fill`` inside ``hole``: a new array of ``native.pixels``' shape
    and dtype, equal to it wherever ``hole`` is False.

    ``fill``: float (3, H, W) RGB in [-1, 1]; ``hole``: bool (H, W). Inside the hole each
    sample is ``(fill + 1) / 2 * top`` (top = 255 or 65535) clipped and rounded to nearest;
    gray files take ``0.299 R + 0.587 G + 0.114 B`` of the unrounded values, rounded; an alpha
    channel is kept as stored, inside the hole too.
    """
    pixels = native.pixels
    fill = np.asarray(fill, dtype=np.float64)
    hole = np.asarray(hole, dtype=bool)
    if fill.ndim != 3 or fill.shape[0] != 3 or fill.shape[1:] != pixels.shape[:2]:
        raise ValueError(f"composite: fill must be (3, {pixels.shape[0]}, {pixels.shape[1]}), "
                         f"got {fill.shape}")
    if hole.shape != pixels.shape[:2]:
        raise ValueError(f"composite: hole must be {pixels.shape[:2]}, got {hole.shape}")
    top = float(np.iinfo(pixels.dtype).max)
    scaled = np.clip((fill[:, hole] + 1.0) * (top / 2.0), 0.0, top)      # (3, holes)
    out = pixels.copy()
    if native.mode in ("RGB", "RGBA"):
        out[hole, :3] = np.floor(scaled.T + 0.5).astype(pixels.dtype)
    else:                                                               # L, LA, I;16
        gray = np.tensordot(np.asarray(LUMA_WEIGHTS), scaled, axes=1)
        gray = np.floor(np.clip(gray, 0.0, top) + 0.5).astype(pixels.dtype)
        if out.ndim == 2:
            out[hole] = gray
        else:
            out[hole, 0] = gray
    return out


def to_pil(pixels: np.ndarray, mode: str) -> Image.Image:
    """A Pillow image of ``pixels`` (uint8, or uint16 for "I;16") in ``mode``."""
    if mode == "I;16":
        return Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint16))
    return Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))


def _format_for(path: Path) -> str:
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown image extension {path.suffix!r} in {str(path)!r}; use one "
                         "of .png, .tif, .bmp, .jpg, .webp")
    return fmt


def check_writable(path, mode: str) -> None:
    """Raise ValueError (naming the file, the mode and what to use) when the format of
    ``path``'s extension cannot hold ``mode`` (e.g. 16-bit gray or alpha in a JPEG), or
    FileNotFoundError when its folder does not exist; writes nothing."""
    path = Path(path)
    fmt = _format_for(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    sample = {"I;16": np.zeros((1, 1), np.uint16), "L": np.zeros((1, 1), np.uint8),
              "LA": np.zeros((1, 1, 2), np.uint8), "RGB": np.zeros((1, 1, 3), np.uint8),
              "RGBA": np.zeros((1, 1, 4), np.uint8)}[mode]
    try:
        to_pil(sample, mode).save(io.BytesIO(), format=fmt)
    except (OSError, ValueError, KeyError) as error:
        described = {"I;16": "16-bit gray", "LA": "gray with alpha",
                     "RGBA": "RGB with alpha"}.get(mode, mode)
        raise ValueError(f"cannot write {path}: {fmt} cannot hold the input's {described} "
                         f"pixels ({error}); use .png") from None


def write_native(path, pixels: np.ndarray, mode: str) -> None:
    """Write ``pixels`` in ``mode`` to ``path`` (format from the extension), atomically: a
    temporary file in the same folder renamed over ``path``."""
    path = Path(path)
    fmt = _format_for(path)
    image = to_pil(pixels, mode)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, format=fmt)
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.remove(temp_name)
        raise
