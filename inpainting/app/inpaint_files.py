"""Files in, files out: what ``inpainting inpaint`` and ``inpainting.inpaint_image`` do.

For one image file and its mask file:

1. check every output path before any work: not an input (unless ``overwrite``), distinct,
   its folder exists, its format can hold the pixels (16-bit, alpha);
2. read the image in its own values (``pixels.read_native``) and the mask; optionally
   ``erode`` then ``dilate`` the hole by whole pixels (a 3x3 square, N times);
3. inpaint through ``large_images.inpaint_large`` (crops around the holes for images larger
   than the model's working size, the whole image otherwise or with ``mode="full"``);
4. composite in the file's values (``pixels.composite``: every pixel outside the hole
   unchanged, the fill rounded to nearest) — or, with ``release_rounding``, convert the whole
   float result with the release's truncation to 8-bit RGB (spec §7), as the release did;
5. write every output to a temporary file first and rename them into place only when all
   were written, so a failure leaves none of them.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

__all__ = ["inpaint_image", "inpaint_file", "adjust_hole", "check_output_paths"]


def adjust_hole(hole, *, dilate=0, erode=0):
    """The bool (H, W) ``hole`` eroded by ``erode`` pixels, then dilated by ``dilate`` pixels
    (each step a 3x3 square: a pixel joins the hole when any of its 8 neighbours is hole)."""
    from scipy import ndimage

    for name, value in (("dilate", dilate), ("erode", erode)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a whole number of pixels >= 0, got {value!r}")
    hole = np.asarray(hole, dtype=bool)
    square = np.ones((3, 3), bool)
    if erode:
        hole = ndimage.binary_erosion(hole, square, iterations=int(erode), border_value=1)
    if dilate:
        hole = ndimage.binary_dilation(hole, square, iterations=int(dilate))
    return hole


def _same_file(a, b):
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_paths(outputs, inputs, *, overwrite=False):
    """Refuse (ValueError) outputs that are one of the ``inputs`` (unless ``overwrite``) or
    name the same file twice. ``outputs``: {flag: path or None}; ``inputs``: paths."""
    given = {flag: Path(path) for flag, path in outputs.items() if path is not None}
    flags = list(given)
    for i, flag in enumerate(flags):
        for other in flags[i + 1:]:
            if _same_file(given[flag], given[other]):
                raise ValueError(f"{flag} and {other} both name {given[flag]}; each output "
                                 "needs its own file")
        if not overwrite:
            for source in inputs:
                if _same_file(given[flag], source):
                    raise ValueError(f"{flag} {given[flag]} is an input file; it would be "
                                     "overwritten (pass --overwrite / overwrite=True to allow it)")


def _check_path_argument(value, name, optional=False):
    if value is None and optional:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"inpaint_image: {name} must be a file path (str or Path), "
                         f"got {type(value).__name__}")
    return value


def _write_all(images):
    """Write [(path, PIL image)] each to a temporary file, then rename all into place."""
    from PIL import Image

    done = []
    try:
        for path, image in images:
            path = Path(path)
            fmt = Image.registered_extensions()[path.suffix.lower()]
            folder = path.parent if str(path.parent) else Path(".")
            handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
            done.append((temp, path))
            with os.fdopen(handle, "wb") as stream:
                image.save(stream, format=fmt)
        for temp, path in done:
            os.replace(temp, path)
    except BaseException:
        for temp, _ in done:
            if os.path.exists(temp):
                os.remove(temp)
        raise


def inpaint_file(image_path, mask_path, output_path, *, weights=None, device="cpu",
                 coarse_path=None, attention_path=None, attention_memory=None, border="pad",
                 mode="auto", working_size=None, release_rounding=False, overwrite=False,
                 dilate=0, erode=0, progress=False):
    """The body of ``inpaint_image`` (see there and the module docstring)."""
    from PIL import Image

    from nnlite.backend import to_device

    from ..data.imageio import load_mask, to_uint8
    from .large_images import inpaint_large
    from ..weights.model_io import load_generator, shipped_model_path
    from ..model.networks import InpaintGenerator
    from ..data.pixels import check_writable, composite, model_input, read_native

    for name, value in (("image_path", image_path), ("mask_path", mask_path),
                        ("output_path", output_path)):
        _check_path_argument(value, name)
    for name, value in (("coarse_path", coarse_path), ("attention_path", attention_path)):
        _check_path_argument(value, name, optional=True)
    if border not in ("pad", "crop"):
        raise ValueError(f"inpaint_image: border must be 'pad' or 'crop', got {border!r}")
    if not (weights is None or isinstance(weights, (str, os.PathLike, InpaintGenerator))):
        raise TypeError(f"inpaint_image: weights must be an InpaintGenerator, a model path or "
                        f"None (the shipped model), got {type(weights).__name__}")
    outputs = {"output": output_path, "--coarse": coarse_path, "--attention": attention_path}
    check_output_paths(outputs, [image_path, mask_path], overwrite=overwrite)
    hole = adjust_hole(np.zeros((1, 1), bool), dilate=dilate, erode=erode)  # checks the counts
    native = read_native(image_path)
    for flag, path in outputs.items():
        if path is not None:
            check_writable(path, native.mode if flag == "output" and not release_rounding
                           else "RGB")
    image = model_input(native)
    hole = adjust_hole(load_mask(mask_path, size=image.shape[1:])[0] > 0.5, dilate=dilate,
                       erode=erode)
    generator = weights if isinstance(weights, InpaintGenerator) else \
        load_generator(weights or shipped_model_path(), device=device)
    if attention_path is not None and not generator.attention:
        raise ValueError("inpaint_image: attention_path was given, but this generator was "
                         "built with attention=False and has no attention map")
    mask = hole[None].astype(np.float32)
    try:
        with warnings.catch_warnings():       # a bright file is not [0, 1] data
            warnings.filterwarnings("ignore", message="inpaint: the image has no value below 0")
            if border == "crop":
                from ..model.inference import inpaint
                from .large_images import (MemoryEstimateError, _gib, available_memory,
                                           estimate_bytes)
                device = generator.conv1.weight.device
                chunk = None if attention_memory is None else 1
                need = estimate_bytes(*image.shape[1:], generator.cnum, attention_chunk=chunk)
                if need > available_memory(device):
                    raise MemoryEstimateError(
                        f"--border crop runs the whole image, which needs about {_gib(need)}, "
                        f"more than the {_gib(available_memory(device))} available; use "
                        "--border pad (crops around the holes)")
                result = inpaint(generator, to_device(image, device), to_device(mask, device),
                                 attention_memory=attention_memory, border="crop")
                result = type(result)(*(np.asarray(to_device(a, "cpu")) for a in result))
            else:
                result = inpaint_large(generator, image, mask, mode=mode,
                                       working_size=working_size,
                                       attention_memory=attention_memory, progress=progress)
    except ValueError as error:        # e.g. a memory budget too small for one chunk
        raise ValueError(f"{image_path}: {error}") from None
    height, width = result.output.shape[2:]
    writes = []
    if coarse_path is not None:
        coarse = to_uint8(result.coarse[0], "truncate" if release_rounding else "nearest")
        writes.append((coarse_path, Image.fromarray(coarse.transpose(1, 2, 0))))
    if attention_path is not None:
        from ..training.viz import attention_rgb
        writes.append((attention_path,
                       Image.fromarray(attention_rgb(result.offsets, height, width)[0])))
    if release_rounding:
        pixels = to_uint8(result.output[0], "truncate").transpose(1, 2, 0)
        writes.append((output_path, Image.fromarray(pixels)))
    else:
        from ..data.pixels import NativeImage, to_pil
        cropped = NativeImage(native.pixels[:height, :width], native.mode)
        pixels = composite(cropped, result.output[0], hole[:height, :width])
        writes.append((output_path, to_pil(pixels, native.mode)))
    _write_all(writes)
    return result


def inpaint_image(image_path, mask_path, output_path, *, weights=None, device="cpu",
                  coarse_path=None, attention_path=None, attention_memory=None, border="pad",
                  mode="auto", working_size=None, release_rounding=False, overwrite=False,
                  dilate=0, erode=0, progress=False):
    """Files in, files out: inpaint the image at ``image_path`` where its mask is white.

    Every pixel outside the hole keeps the file's own value (8 or 16 bits, gray, RGB, alpha);
    inside it the fill is rounded to nearest. Images larger than the model's working size are
    inpainted on crops around the holes (``inpainting.app.large_images``).

    Args:
        image_path: any image Pillow reads.
        mask_path: image of the same size; white (above the middle gray, first channel) =
            hole. A size mismatch is a ValueError naming both sizes.
        output_path: where the result is written, in the input's mode (use PNG to keep it).
        weights: an ``InpaintGenerator``, or a model file / training checkpoint / released
            TF checkpoint path, or None for the shipped demo model.
        device: "cpu" or "cuda" (used when ``weights`` is a path or None).
        coarse_path, attention_path: optionally also write the coarse result and the
            colour-coded attention map (``flow_to_image`` colours, at the image's size).
        attention_memory: byte budget for contextual attention (see ``inpaint``).
        border: "pad" (every pixel kept) or "crop" (the release's rule, whole image); see
            ``inpaint``.
        mode: "auto", "crop" or "full" (see ``large_images.inpaint_large``).
        working_size: the side crops are brought to (default: the model's training size).
        release_rounding: write the whole float result as 8-bit RGB with the release's
            truncation (spec §7) instead of compositing in the file's values.
        overwrite: allow an output path that is the image or the mask.
        dilate, erode: grow / shrink the hole by that many pixels (erosion first).
        progress: draw a progress bar (stderr) for runs longer than a few seconds.

    Every output path is checked before the work starts, and the outputs are written together
    at the end (all or none). Returns the ``InpaintResult`` (NumPy arrays of the output size).
    """
    return inpaint_file(image_path, mask_path, output_path, weights=weights, device=device,
                        coarse_path=coarse_path, attention_path=attention_path,
                        attention_memory=attention_memory, border=border, mode=mode,
                        working_size=working_size, release_rounding=release_rounding,
                        overwrite=overwrite, dilate=dilate, erode=erode, progress=progress)
