"""Reading and writing images and masks, and the [-1, 1] <-> uint8 conversions.

Conventions (spec §7 and the top of the spec): an image inside the project is a float32 array of
shape (3, H, W), RGB, in [-1, 1]; a mask is float32 (1, H, W) with 1 = hole, 0 = known.

* ``from_uint8(u) = u / 127.5 - 1``  (how the release scaled images read from disk);
* ``to_uint8(y) = saturate_cast_uint8((y + 1) * 127.5)``: clip to [0, 255], then truncate, as
  TensorFlow's ``saturate_cast`` does in the release's inference graph (spec §7); optional
  round-to-nearest for exact round trips;
* mask file -> hole: ``channel 0 > 127.5`` (white = hole, threshold at middle gray).

The release read files with OpenCV (BGR, EXIF orientation applied); here Pillow reads them as RGB
and the EXIF orientation is applied too. This module holds no model code and no training data
logic (see ``inpainting.data``).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from nnlite.serialization import atomic_write

__all__ = [
    "ImageReadError",
    "as_rgb_uint8",
    "from_uint8",
    "hwc_uint8_to_chw",
    "load_image",
    "load_mask",
    "read_rgb_uint8",
    "save_image",
    "to_uint8",
]

# Pillow modes holding 16-bit (or 32-bit integer) grayscale samples: scaled by 1/257 to 8 bits.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageReadError(ValueError):
    """A file could not be read as an image; the message names the path and the reason."""


def check_path(value, caller: str, name: str = "path") -> Path:
    """``Path(value)``, or a TypeError naming the function and the argument when ``value``
    is not a str or os.PathLike (None, a number, an array, ...)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{caller}: {name} must be a file path (str or Path), "
                        f"got {type(value).__name__}")
    return Path(value)


def from_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 values u in [0, 255] -> float32 ``u / 127.5 - 1`` in [-1, 1] (same shape)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"from_uint8 expects a uint8 array, got dtype {array.dtype}")
    return array.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def hwc_uint8_to_chw(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 pixels -> the project's image layout, float32 (3, H, W) in [-1, 1]."""
    return np.ascontiguousarray(from_uint8(pixels).transpose(2, 0, 1))


def to_uint8(array: np.ndarray, rounding: str = "truncate") -> np.ndarray:
    """Values y in [-1, 1] -> uint8 ``saturate_cast((y + 1) * 127.5)`` (same shape), spec §7.

    ``(y + 1) * 127.5`` is computed in the array's float type (float32 as in the release), clipped
    to [0, 255], then ``rounding="truncate"`` drops the fraction (TensorFlow's ``saturate_cast``,
    the release's behaviour) or ``rounding="nearest"`` rounds half up. With truncation a pixel
    read from disk as u in 1..63 comes back as u - 1 (``u / 127.5 - 1`` is not exact in binary);
    "nearest" gives ``to_uint8(from_uint8(u)) == u`` for every u. Non-finite values are rejected.
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"to_uint8 expects a floating array in [-1, 1], got dtype {array.dtype}")
    if rounding not in ("truncate", "nearest"):
        raise ValueError(f"rounding must be 'truncate' or 'nearest', got {rounding!r}")
    if not np.all(np.isfinite(array)):
        raise ValueError("to_uint8: the array holds NaN or infinite values")
    array = array.astype(np.promote_types(array.dtype, np.float32), copy=False)
    one, half_range = array.dtype.type(1.0), array.dtype.type(127.5)
    scaled = np.clip((array + one) * half_range, 0.0, 255.0)
    if rounding == "nearest":
        scaled = np.floor(scaled + array.dtype.type(0.5))
    return scaled.astype(np.uint8)


def as_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Any (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8/bool array -> (H, W, 3) uint8 RGB.

    Grayscale is replicated over three channels, an alpha channel is dropped (as OpenCV's
    ``imread`` does in the release), bool becomes 0 / 255.
    """
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * np.uint8(255)
    if array.dtype != np.uint8:
        raise TypeError(f"as_rgb_uint8 expects uint8 or bool pixels, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W) or (H, W, C) image with C in 1..4, got shape {array.shape}")
    if array.shape[2] in (1, 2):  # gray, gray + alpha
        array = np.repeat(array[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def _read_pixels(path: str | os.PathLike) -> np.ndarray:
    """Decode a file into an (H, W) or (H, W, C) uint8 array, channels as stored (RGB order).

    Palette images are expanded to RGB(A), 1-bit images to 0 / 255, 16-bit grayscale to 8 bits.
    Raises ImageReadError naming the path for any missing, unreadable or truncated file.
    """
    with opened_image(check_path(path, "read image")) as image:
        if image.mode in ("P", "PA"):
            image = image.convert("RGBA")
        elif image.mode == "1":
            image = image.convert("L")
        elif image.mode in _WIDE_GRAY_MODES:
            wide = np.asarray(image, dtype=np.float64)
            return np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8)
        elif image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, float, ...
        pixels = np.asarray(image)
    return np.array(pixels, dtype=np.uint8)


@contextlib.contextmanager
def opened_image(path: Path):
    """``Image.open(path)`` with its EXIF orientation applied. Any failure to open or decode
    it, inside the ``with`` block too, becomes an ImageReadError naming the path."""
    try:
        with Image.open(path) as image:
            yield ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ImageReadError(f"cannot read image {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"cannot read image {str(path)!r}: it is a directory") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"cannot read image {str(path)!r}: {error}") from error


def read_rgb_uint8(path: str | os.PathLike) -> np.ndarray:
    """Read a file as (H, W, 3) uint8 RGB (grayscale, RGBA and palette images converted)."""
    return as_rgb_uint8(_read_pixels(path))


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as float32 (3, H, W) RGB in [-1, 1].

    Raises ImageReadError (a ValueError) naming the path and the reason when the file is missing
    or cannot be decoded.
    """
    return hwc_uint8_to_chw(read_rgb_uint8(path))


def load_mask(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask file as float32 (1, H, W): 1 (hole) where channel 0 > 127.5, else 0 (spec §7).

    White = hole, black = known; any channel count is accepted and only the first stored channel
    is read (the gray level, or red for RGB files; the release, reading BGR, used blue, which is
    the same for black-and-white masks). ``size = (H, W)``, when given, must equal the file's
    size, else a ValueError states both.
    """
    check_path(path, "load_mask")
    if size is not None:
        try:
            expected = tuple(int(s) for s in size)
        except (TypeError, ValueError):
            expected = ()
        if len(expected) != 2:
            raise ValueError(f"load_mask: size must be (H, W), got {size!r}")
    pixels = _read_pixels(path)
    channel0 = pixels if pixels.ndim == 2 else pixels[:, :, 0]
    if size is not None:
        if channel0.shape != expected:
            raise ValueError(
                f"mask {str(path)!r} has size (H, W) = {channel0.shape}, "
                f"but the image it goes with has size {expected}")
    return (channel0 > 127.5).astype(np.float32)[None]


def _format_for(path: Path) -> str:
    """Pillow's format name for the file's extension (e.g. '.png' -> 'PNG')."""
    extensions = Image.registered_extensions()
    fmt = extensions.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(e for e in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".webp")
                                 if e in extensions))
        raise ValueError(f"save_image: unknown image extension {path.suffix!r} in {str(path)!r}; "
                         f"use one of {known}")
    return fmt


def save_image(path: str | os.PathLike, image: np.ndarray, rounding: str = "truncate") -> None:
    """Write a float (3, H, W) or (1, H, W) image in [-1, 1] to ``path`` (format from extension).

    Pixels are ``to_uint8(image, rounding)`` (saturated and truncated as the release by default,
    spec §7; "nearest" makes load/save round trips exact). The file is written to a
    temporary name in the same folder and renamed over ``path``, so a reader never sees half a file.
    """
    path = check_path(path, "save_image")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"save_image expects a (3, H, W) or (1, H, W) array, got shape {array.shape}")
    pixels = to_uint8(array, rounding).transpose(1, 2, 0)
    pil_image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    fmt = _format_for(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    with atomic_write(path) as stream:      # honours the umask, like open()
        pil_image.save(stream, format=fmt)
