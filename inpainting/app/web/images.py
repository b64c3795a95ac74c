"""Pixels for the app: reading uploads safely, the bundled samples, PNG bytes, the composite.

Everything here works on bytes and uint8 arrays in memory; nothing reads a path that a
client sent (the samples are generated or come from scikit-image by a fixed name).

* ``Limits``: the upload size and pixel-count limits (and the smallest size the model takes);
* ``decode_upload(data, limits, what)``: bytes -> (H, W, 3) uint8 RGB, or an ``UploadError``
  with a message for the page and an HTTP status (413 too large, 415 not an image, 400 broken);
* ``decode_mask(data, size, limits)``: a PNG of the brushed hole -> (H, W) bool;
* ``composite(original, filled, hole)``: the download, byte-identical outside the hole;
* ``encode_png``, ``SAMPLES`` / ``sample_png``, ``legend_png``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ...data.imageio import _WIDE_GRAY_MODES, as_rgb_uint8

__all__ = ["Limits", "UploadError", "IMAGE_FORMATS", "SAMPLES", "decode_upload", "decode_mask",
           "composite", "encode_png", "sample_png", "legend_png", "size_text"]

#: Pillow formats an upload may be in; anything else (EPS, PDF, ICO, ...) is refused unread.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")


@dataclass(frozen=True)
class Limits:
    """What one request may hold. ``max_pixels`` bounds H * W: large images are inpainted on
    crops around the hole, so the model's time and memory follow the hole, but the server
    keeps about a dozen float copies of the whole image and the page's canvas keeps 30
    undo steps of it; ``min_side`` is the smallest side the generator's downsampling takes
    sensibly."""
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 2048 * 2048
    min_side: int = 16

    def describe(self):
        return (f"files up to {size_text(self.max_upload_bytes)}, images up to "
                f"{self.max_pixels:,} pixels (e.g. {_square(self.max_pixels)}), "
                f"sides of at least {self.min_side} pixels")


def _square(pixels):
    side = int(pixels ** 0.5)
    return f"{side}x{side}"


class UploadError(ValueError):
    """A request the app refuses; ``status`` is the HTTP status, the message is for people."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def size_text(count):
    """A byte count for people: '812 bytes', '3.4 MB'."""
    return f"{count:,} bytes" if count < 2**20 else f"{count / 2**20:.1f} MB"


def _open(data, what, limits):
    if len(data) == 0:
        raise UploadError(f"the {what} is empty (0 bytes)")
    if len(data) > limits.max_upload_bytes:
        raise UploadError(f"the {what} is {size_text(len(data))}; the limit is "
                          f"{size_text(limits.max_upload_bytes)}", status=413)
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except UnidentifiedImageError:
        raise UploadError(f"the {what} is not an image type the app reads "
                          f"({', '.join(IMAGE_FORMATS)})", status=415) from None
    except Image.DecompressionBombError:
        raise UploadError(f"the {what} has far more than the limit of {limits.max_pixels:,} "
                          "pixels", status=413) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise UploadError(f"the {what} could not be decoded: {error}") from None
    width, height = image.size          # from the header: nothing decoded yet
    if width * height > limits.max_pixels:
        raise UploadError(f"the {what} is {width}x{height} = {width * height:,} pixels; the "
                          f"limit is {limits.max_pixels:,} pixels ({_square(limits.max_pixels)})"
                          " - scale it down first", status=413)
    if min(width, height) < limits.min_side:
        raise UploadError(f"the {what} is {width}x{height}; both sides must be at least "
                          f"{limits.min_side} pixels")
    return image


def decode_upload(data, limits=Limits(), what="image"):
    """Bytes of an image file -> (H, W, 3) uint8 RGB (EXIF orientation applied, alpha dropped,
    gray replicated, as ``inpainting.imageio`` reads files). Raises ``UploadError``."""
    image = _open(data, what, limits)
    try:
        with image:
            image = ImageOps.exif_transpose(image)
            if image.mode in _WIDE_GRAY_MODES:      # 16-bit gray: scaled to 8 bits
                wide = np.asarray(image, dtype=np.float64)
                return as_rgb_uint8(np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8))
            if image.mode in ("P", "PA"):
                image = image.convert("RGBA")
            elif image.mode not in ("L", "LA", "RGB", "RGBA"):
                image = image.convert("RGB")        # 1-bit, CMYK, YCbCr, float, ...
            pixels = np.asarray(image)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise UploadError(f"the {what} could not be decoded: {error}") from None
    return as_rgb_uint8(pixels)


def decode_mask(data, size, limits=Limits()):
    """A PNG of the brushed hole -> (H, W) bool, True = hole: any pixel with alpha >= 128
    (the page paints the hole on a transparent canvas). ``size`` = (H, W) of the image."""
    image = _open(data, "mask", limits)
    try:
        with image:
            rgba = np.asarray(image.convert("RGBA"))
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise UploadError(f"the mask could not be decoded: {error}") from None
    if rgba.shape[:2] != tuple(size):
        raise UploadError(f"the mask is {rgba.shape[1]}x{rgba.shape[0]} but the image is "
                          f"{size[1]}x{size[0]}; they must be the same size")
    hole = rgba[:, :, 3] >= 128
    if not hole.any():
        raise UploadError("the mask is empty: brush over the part of the image to fill first")
    if hole.all():
        raise UploadError("the mask covers the whole image: leave some of it for the model "
                          "to copy from")
    return hole


def composite(original, filled, hole):
    """The result to keep: ``filled`` where ``hole``, ``original`` elsewhere, in uint8, so every
    pixel outside the hole is byte-identical to the upload. (H, W, 3) uint8 x2, (H, W) bool."""
    if original.shape != filled.shape or original.shape[:2] != hole.shape:
        raise ValueError(f"composite: shapes {original.shape}, {filled.shape}, {hole.shape} "
                         "do not match")
    return np.where(hole[:, :, None], filled, original)


def encode_png(pixels):
    """(H, W, 3) or (H, W) uint8 -> PNG bytes (lossless)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def _photo(name):
    import skimage.data
    return lambda: as_rgb_uint8(getattr(skimage.data, name)())


def _texture(kind):
    from ...data.datasets import procedural_texture
    return lambda: procedural_texture(kind, 1000, 256)


#: Bundled sample images by name (the held-out photographs and textures of the demo corpus,
#: which the shipped model did not train on). Only these names are ever served.
SAMPLES = {"astronaut (512x512)": _photo("astronaut"), "coffee (600x400)": _photo("coffee"),
           **{f"texture: {kind} (256x256)": _texture(kind)
              for kind in ("stripes", "checker", "gradient", "blobs")}}


def sample_png(name):
    """PNG bytes of the sample called ``name``; KeyError for any other name."""
    return encode_png(SAMPLES[name]())


def legend_png(size=129):
    """The colour-wheel legend of the attention map
    (``inpainting.model.attention_colours.color_wheel_legend``)."""
    from ...model.attention_colours import color_wheel_legend
    return encode_png(color_wheel_legend(size))
