"""Inpainting an image of any size with a generator (spec §7, improved at the borders).

The release crops the image to a multiple of 8 and loses the border pixels.
``inpaint`` pads instead (reflect padding of the image, the padding counted as
known pixels) and crops the result back, so every pixel of the input is kept.
``border="crop"`` does what the release does (the result is the cropped size);
for sizes that are multiples of 8 the two are the same. The output is the
composite ``x2 * M + x * (1 - M)``: known pixels are the input's own.
"""
from __future__ import annotations

import numbers
import os
import warnings
from typing import NamedTuple

import nnlite
from nnlite.backend import get_array_module

from .attention import chunk_size_for_memory
from .networks import InpaintGenerator

__all__ = ["InpaintResult", "inpaint", "pad_to_multiple"]


class InpaintResult(NamedTuple):
    """Arrays on the generator's device: ``output`` = composite, ``coarse`` = x1,
    ``refined`` = x2, all (N, 3, H, W) in [-1, 1]; ``offsets`` (N, 2, h, w) integers
    (None for a generator built with ``attention=False``); ``attention`` (N, h, w, h, w)
    softmax scores when ``inpaint(..., return_attention=True)``, else None.

    On the attention grid (h, w) = (ceil(H/8), ceil(W/8)), one cell per 8x8 block of the
    padded input: ``attention[n, i, j, y, x]`` is the weight foreground cell (i, j) gives
    background cell (y, x), after propagation and masking (spec §3 step 7: invalid
    background cells have weight 0, so a row sums to at most 1), and
    ``offsets[n, :, i, j]`` = argmax_(y, x) attention[n, i, j] - (i, j)."""
    output: object
    coarse: object
    refined: object
    offsets: object
    attention: object = None


def pad_to_multiple(array, multiple=8, mode="reflect"):
    """Pad the last two axes of ``array`` at the bottom/right to multiples of ``multiple``.

    Returns ``(padded, (height, width))`` with the original size for cropping back.
    Reflect padding needs the image to be larger than the padding; tiny images
    fall back to edge padding.
    """
    if not hasattr(array, "ndim") or array.ndim < 2:
        raise TypeError(f"pad_to_multiple: array must be a NumPy/CuPy array with at least two "
                        f"axes, got {type(array).__name__}")
    if isinstance(multiple, bool) or not isinstance(multiple, numbers.Integral) or multiple < 1:
        raise ValueError(f"pad_to_multiple: multiple must be a positive integer, got {multiple!r}")
    if mode not in ("reflect", "edge", "constant"):
        raise ValueError(f"pad_to_multiple: mode must be 'reflect', 'edge' or 'constant', "
                         f"got {mode!r}")
    xp = get_array_module(array)
    height, width = array.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return array, (height, width)
    if mode == "reflect" and (pad_h >= height or pad_w >= width):
        mode = "edge"
    widths = [(0, 0)] * (array.ndim - 2) + [(0, pad_h), (0, pad_w)]
    if mode == "constant":
        return xp.pad(array, widths, mode="constant"), (height, width)
    return xp.pad(array, widths, mode=mode), (height, width)


def _as_batch(array, name, channels):
    array = array.data if isinstance(array, nnlite.Tensor) else array
    if not hasattr(array, "ndim") or not hasattr(array, "dtype"):
        raise ValueError(f"inpaint: {name} must be a NumPy/CuPy array or Tensor, "
                         f"got {type(array).__name__}")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1] != channels:
        raise ValueError(f"inpaint: {name} must be ({channels}, H, W) or (N, {channels}, H, W), "
                         f"got {tuple(array.shape)}")
    return array


def _check_generator(generator, caller):
    if not isinstance(generator, InpaintGenerator):
        raise ValueError(f"{caller}: generator must be an InpaintGenerator (load a model file "
                         f"with inpainting.model_io.load_generator), got "
                         f"{type(generator).__name__}")


def _prepare_arrays(image, mask, caller, single=False):
    """``inpaint``'s checks of the image and the mask, as batches: (image, mask)."""
    image = _as_batch(image, "image", 3)
    mask = _as_batch(mask, "mask", 1)
    if single and image.shape[0] != 1:
        raise ValueError(f"{caller}: one image at a time, got a batch of {image.shape[0]}")
    _check_values(image, mask, get_array_module(image, mask))
    if image.shape[2:] != mask.shape[2:]:
        raise ValueError(f"{caller}: the mask is {tuple(mask.shape[2:])} but the image is "
                         f"{tuple(image.shape[2:])}; they must be the same size")
    if mask.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"{caller}: {mask.shape[0]} masks for {image.shape[0]} images")
    return image, mask


def _check_values(image, mask, xp):
    """Floats in [-1, 1] without NaN: a uint8 or 0-255 image would be filled with nonsense.
    A mask that is all hole leaves nothing to condition on (an error); an image with no value
    below 0 is most likely [0, 1] data (a warning: a very bright photo can be legitimate)."""
    if image.dtype.kind != "f":
        raise ValueError(f"inpaint: image must be floats in [-1, 1] (inpainting.load_image gives "
                         f"that; from uint8 use from_uint8), got dtype {image.dtype}")
    if mask.dtype.kind not in "fiub":
        raise ValueError(f"inpaint: mask must hold numbers (1 = hole), got dtype {mask.dtype}")
    if not bool(xp.isfinite(image).all()) or not bool(xp.isfinite(mask).all()):
        which = "image" if not bool(xp.isfinite(image).all()) else "mask"
        raise ValueError(f"inpaint: the {which} holds NaN or infinite values")
    low, high = float(image.min()), float(image.max())
    if low < -1.001 or high > 1.001:
        raise ValueError(f"inpaint: image values must be in [-1, 1], got [{low:.4g}, {high:.4g}] "
                         "(a 0-255 image? convert with inpainting.imageio.from_uint8)")
    if image.size and bool((mask > 0.5).all(axis=(1, 2, 3)).any()):
        raise ValueError("inpaint: the mask is all hole, so there is nothing to condition the "
                         "fill on; leave some known pixels (mask 0)")
    if image.size and low >= 0:
        warnings.warn(f"inpaint: the image has no value below 0 (range [{low:.4g}, {high:.4g}]);"
                      f" images are expected in [-1, 1]: [0, 1] data must be converted with "
                      f"2 * x - 1", UserWarning, stacklevel=3)


def _chunk_size(chunk_size, attention_memory, padded_image):
    """The attention chunk ``inpaint`` passes to the generator: given, from the byte
    budget, or None (direct)."""
    if chunk_size is not None and attention_memory is not None:
        raise ValueError("inpaint: give attention_chunk_size or attention_memory, not both")
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) \
                or chunk_size < 1:
            raise ValueError(f"inpaint: attention_chunk_size must be a positive integer or "
                             f"None, got {chunk_size!r}")
        return int(chunk_size)
    if attention_memory is None:
        return None
    if isinstance(attention_memory, bool) or not isinstance(attention_memory, numbers.Real) \
            or not 0 < attention_memory < float("inf"):
        raise ValueError(f"inpaint: attention_memory must be a positive, finite number of "
                         f"bytes, got {attention_memory!r}")
    feature_h, feature_w = padded_image.shape[2] // 4, padded_image.shape[3] // 4
    return chunk_size_for_memory(attention_memory, feature_h, feature_w,
                                 itemsize=padded_image.dtype.itemsize)


def inpaint(generator, image, mask, *, attention_memory=None, attention_chunk_size=None,
            border="pad", return_attention=False, knockout_attention=False):
    """Fill the hole of ``image`` with ``generator``; any H, W.

    Args:
        generator: an ``InpaintGenerator`` (its device decides where this runs).
        image: (3, H, W) or (N, 3, H, W) float array or Tensor in [-1, 1].
        mask: (1, H, W) or (1 or N, 1, H, W), 1 = hole (values are thresholded at 0.5).
        attention_memory: optional byte budget for contextual attention's scores; the
            layer then runs in its memory-bounded (chunked) mode with the same result.
            The release needs L x L scores (L = H*W/64): ~1e9 floats at 1080p.
        attention_chunk_size: or the chunk itself (foreground rows scored at once), passed
            to the generator's call; None with no ``attention_memory``: the direct layer.
        border: "pad" (default: reflect-pad to a multiple of 8, crop the result back to
            (H, W)) or "crop" (the release, spec §7: drop the bottom/right rows and columns
            beyond the last multiple of 8; the result is (8*floor(H/8), 8*floor(W/8))).
        return_attention: also return contextual attention's scores as ``result.attention``
            (see ``InpaintResult``); works with ``attention_memory`` too, but the returned
            array itself holds (h*w)^2 floats per image. A generator built with
            ``attention=False`` has none: ValueError.
        knockout_attention: a probe of what the attention branch contributes: the branch
            runs, but the decoder receives zeros in place of its features (see
            ``InpaintGenerator.forward``). Not the paper's ablation, which is a generator
            trained with ``attention=False``; such a generator has no branch: ValueError.

    Returns an ``InpaintResult`` of arrays of the output size. Raises ValueError (with what
    was expected) for a non-generator, non-array inputs, wrong shapes or sizes, a non-float
    image, NaN/inf values, values outside [-1, 1] and a bad ``border`` or memory budget.
    """
    _check_generator(generator, "inpaint")
    for flag, value in (("return_attention", return_attention),
                        ("knockout_attention", knockout_attention)):
        if value and not generator.attention:
            raise ValueError(f"inpaint: {flag}=True, but this generator was built with "
                             "attention=False (the ablation has no contextual attention)")
    image = _as_batch(image, "image", 3)
    mask = _as_batch(mask, "mask", 1)
    xp = get_array_module(image, mask)
    _check_values(image, mask, xp)
    if image.shape[2:] != mask.shape[2:]:
        raise ValueError(f"inpaint: the mask is {tuple(mask.shape[2:])} but the image is "
                         f"{tuple(image.shape[2:])}; they must be the same size")
    if border not in ("pad", "crop"):
        raise ValueError(f"inpaint: border must be 'pad' or 'crop', got {border!r}")
    if border == "crop":
        height, width = (size - size % 8 for size in image.shape[2:])
        if height == 0 or width == 0:
            raise ValueError(f"inpaint: border='crop' needs an image of at least 8x8 pixels, "
                             f"got {tuple(image.shape[2:])}")
        image, mask = image[..., :height, :width], mask[..., :height, :width]
    if mask.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"inpaint: {mask.shape[0]} masks for {image.shape[0]} images")
    dtype = generator.conv1.weight.dtype
    image = image.astype(dtype, copy=False)
    mask = (mask > 0.5).astype(dtype)
    padded_image, (height, width) = pad_to_multiple(image, 8, mode="reflect")
    padded_mask, _ = pad_to_multiple(mask, 8, mode="constant")
    incomplete = padded_image * (1 - padded_mask)
    chunk_size = _chunk_size(attention_chunk_size, attention_memory, padded_image)
    with nnlite.no_grad():
        extra = {"return_attention": True} if return_attention else {}
        if knockout_attention:
            extra["knockout_attention"] = True
        x1, x2, offsets, *scores = generator(nnlite.Tensor(incomplete),
                                             nnlite.Tensor(padded_mask),
                                             attention_chunk_size=chunk_size, **extra)
    x1, x2 = x1.data[..., :height, :width], x2.data[..., :height, :width]
    output = x2 * mask + image * (1 - mask)
    rows = -(-height // 8)
    cols = -(-width // 8)
    attention = None
    if scores:        # (N, L, L) on the padded grid, whose size is (rows, cols) here
        grid_h, grid_w = padded_image.shape[2] // 8, padded_image.shape[3] // 8
        attention = scores[0].reshape(-1, grid_h, grid_w, grid_h, grid_w)
    if offsets is not None:
        offsets = xp.asarray(offsets)[..., :rows, :cols]
    return InpaintResult(output, x1, x2, offsets, attention)

