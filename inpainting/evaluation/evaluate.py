"""The evaluation protocol of ``inpainting evaluate``: the model against classical baselines.

    sources = image_sources(data="photos/", textures=False, size=128)
    records, crops = run_protocol(sources, size=128, holes=("centre",), crops_per_image=2,
                                  seed=0, baselines=["harmonic"], generator=g)

* **Crops**: K windows of S x S pixels per image, at the image's own scale (an image smaller
  than S on a side is first scaled up, keeping its aspect ratio, until it covers S x S). The
  corners of image i are drawn from ``default_rng([seed, i, 0, 0])``, uniform over every
  position; nothing is squashed.
* **Holes**: ``centre``, the centred S/2 x S/2 square; ``random``, one S/2 x S/2 box per crop
  with its corner uniform in {0..S/2} x {0..S/2}, from ``default_rng([seed, i, k + 1, 1])``.
* **Methods**: the model (``inpaint``), and the baselines of ``BASELINES``; every method
  fills the same crops with the same holes. Per crop: the metrics of
  ``metrics.evaluate_pair`` in the hole and on the whole image, and for a model with
  contextual attention ``metrics.attention_hits`` (when a whole 8x8 cell lies in the hole).
* **Textures**: ``textures.texture_suite`` rendered at 2S, cropped like any image.

Summaries and the paired bootstrap are in ``evaluation_stats``; ``inpainting evaluate``
writes them (docs/training.md, "Evaluation protocol"). The older whole-image helpers below
(``evaluation_images`` ... ``write_table``) resize whole images to S x S and remain for the
teaching notebook; the protocol does not use them.
"""
from __future__ import annotations

import csv
import io
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from .baselines import (biharmonic_fill, exemplar_fill, harmonic_fill, mean_fill, ns_fill,
                        opencv, telea_fill)
from .metrics import attention_hits, evaluate_pair, to_unit, whole_hole_cells
from ..data.textures import SUITE_SEED, texture_suite

__all__ = ["BASELINES", "OPENCV_BASELINES", "HOLE_KINDS", "choose_baselines", "image_sources",
           "crop_windows", "hole_mask", "run_protocol", "fill_crop", "texture_suite",
           "evaluation_images", "evaluate_methods", "score_methods", "format_markdown",
           "format_per_image", "write_table", "write_text", "COLUMNS"]

#: baseline name -> fill(image (3, S, S) in [-1, 1], mask (1, S, S)) -> filled image
BASELINES = {"mean": mean_fill, "harmonic": harmonic_fill, "biharmonic": biharmonic_fill,
             "telea": telea_fill, "ns": ns_fill, "exemplar": exemplar_fill}
OPENCV_BASELINES = ("telea", "ns", "exemplar")
HOLE_KINDS = ("centre", "random")
MODEL = "model"


def choose_baselines(spec=None):
    """Baseline names from ``--baselines``: None = all installed (the OpenCV ones only when
    OpenCV is), "none" = none, else a comma-separated list of ``BASELINES`` names (an OpenCV
    one without OpenCV: ``MissingExtraError`` naming the extra)."""
    if spec is None:
        try:
            opencv()
            return list(BASELINES)
        except RuntimeError:
            return [name for name in BASELINES if name not in OPENCV_BASELINES]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if names == ["none"]:
        return []
    unknown = [name for name in names if name not in BASELINES]
    if unknown or not names:
        raise ValueError(f"--baselines: unknown {', '.join(map(repr, unknown)) or 'empty list'}; "
                         f"choose from {', '.join(BASELINES)} (comma-separated) or 'none'")
    if any(name in OPENCV_BASELINES for name in names):
        opencv()
    return list(dict.fromkeys(names))


def image_sources(data=None, textures=False, size=128):
    """[(name, loader)] of the images to evaluate; ``loader()`` -> (H, W, 3) uint8.

    ``textures``: the built-in suite at 2 * ``size`` (names ``suite:<name>``); ``data``: every
    image of a folder (recursive) or flist (``data.list_images``), read on demand.
    """
    from ..data.datasets import list_images
    from ..data.imageio import read_rgb_uint8

    sources = []
    if textures:
        names, images = texture_suite(2 * size, SUITE_SEED)
        for name, image in zip(names, images):
            pixels = np.clip(np.rint((image.transpose(1, 2, 0) + 1) * 127.5), 0, 255)
            sources.append((f"suite:{name}", lambda p=pixels.astype(np.uint8): p))
    if data is not None:
        sources += [(str(path), lambda path=path: read_rgb_uint8(path))
                    for path in list_images(data)]
    return sources


def _cover(pixels, size):
    """Scale (H, W, 3) uint8 up (bilinear, aspect kept, sizes rounded up) to cover size x size;
    returns (pixels, scale)."""
    height, width = pixels.shape[:2]
    if height >= size and width >= size:
        return pixels, 1.0
    scale = max(size / height, size / width)
    shape = (math.ceil(width * scale), math.ceil(height * scale))
    return np.asarray(Image.fromarray(pixels).resize(shape, Image.BILINEAR)), scale


def crop_windows(pixels, size, count, rng):
    """``count`` seeded S x S crops of one image: [(crop float32 (3, S, S), top, left, scale)]."""
    from ..data.imageio import hwc_uint8_to_chw

    pixels, scale = _cover(pixels, size)
    height, width = pixels.shape[:2]
    crops = []
    for _ in range(count):
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        crops.append((hwc_uint8_to_chw(pixels[top:top + size, left:left + size]), top, left,
                      scale))
    return crops


def hole_mask(kind, size, rng):
    """(mask float32 (1, 1, S, S), (top, left, side, side)) for a ``centre`` or ``random`` hole
    of side S/2 (``random`` draws its corner from ``rng``)."""
    side = size // 2
    if kind == "centre":
        top = left = (size - side) // 2
    elif kind == "random":
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
    else:
        raise ValueError(f"hole must be one of {HOLE_KINDS}, got {kind!r}")
    mask = np.zeros((1, 1, size, size), np.float32)
    mask[..., top:top + side, left:left + side] = 1.0
    return mask, (top, left, side, side)


def fill_crop(method, crop, mask, generator=None, device="cpu", with_attention=False):
    """One method's fill of one crop: (filled (3, S, S) float32, attention (h, w, h, w) or None)."""
    if method != MODEL:
        return BASELINES[method](crop, mask[0]), None
    from nnlite.backend import to_device

    from ..model.inference import inpaint

    with warnings.catch_warnings():   # a bright crop is in [-1, 1] here, not [0, 1] data
        warnings.filterwarnings("ignore", message="inpaint: the image has no value below 0")
        result = inpaint(generator, to_device(crop[None], device), to_device(mask, device),
                         return_attention=with_attention)
    attention = None if result.attention is None else to_device(result.attention, "cpu")[0]
    return to_device(result.output, "cpu")[0], attention


def run_protocol(sources, *, size, holes, crops_per_image, seed, baselines, generator=None,
                 device="cpu", progress=None):
    """Score every method on every crop and hole: ``(records, crops)``.

    ``records``: one dict per (crop, hole, method) with ``image`` (index), ``crop_id``,
    ``method``, ``hole`` and the scores (module docstring). ``crops``: per crop_id, where it
    came from (``name``, ``image``, ``crop``, ``hole``, ``top``, ``left``, ``scale``,
    ``hole_box``). Unreadable images are warned about (RuntimeWarning) and skipped; if none
    can be read, ValueError.
    """
    from ..data.imageio import ImageReadError

    methods = ([MODEL] if generator is not None else []) + list(baselines)
    if not methods:
        raise ValueError("nothing to evaluate: no model and no baseline")
    with_attention = generator is not None and generator.attention
    records, crops, read = [], {}, 0
    for index, (name, load) in enumerate(sources):
        try:
            pixels = load()
        except (ImageReadError, OSError, ValueError) as error:
            warnings.warn(f"skipping unreadable image {name}: {error}", RuntimeWarning,
                          stacklevel=2)
            continue
        read += 1
        windows = crop_windows(pixels, size, crops_per_image,
                               np.random.default_rng([seed, index, 0, 0]))
        for k, (crop, top, left, scale) in enumerate(windows):
            hole_rng = np.random.default_rng([seed, index, k + 1, 1])
            for kind in holes:
                mask, box = hole_mask(kind, size, hole_rng)
                crop_id = len(crops)
                crops[crop_id] = {"name": name, "image": index, "crop": k, "hole": kind,
                                  "top": top, "left": left, "scale": scale, "hole_box": box}
                for method in methods:
                    filled, attention = fill_crop(method, crop, mask, generator, device,
                                                  with_attention)
                    scores = evaluate_pair(to_unit(filled), to_unit(crop), mask[0])
                    if attention is not None and whole_hole_cells(mask).any():
                        scores["attention_hits"] = attention_hits(attention, to_unit(crop),
                                                                  mask[0])
                    records.append({"image": index, "crop_id": crop_id, "method": method,
                                    "hole": kind, **scores})
        if progress is not None:
            progress(index + 1, len(sources))
    if read == 0:
        raise ValueError(f"none of the {len(sources)} images could be read")
    return records, crops


def write_text(path, text):
    """Write ``text`` (str, or bytes for a binary file) atomically: a temporary file in the
    same folder, then ``os.replace``; the file gets the usual permissions (0o666 - umask)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        with os.fdopen(handle, "wb" if isinstance(text, bytes) else "w",
                       **({} if isinstance(text, bytes) else {"newline": ""})) as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


# ---------------------------------------------------------------------------------------------
# Whole-image helpers (resize to S x S, centred hole), kept for notebook 06.

COLUMNS = ["l1_hole", "l2_hole", "psnr_hole", "ssim_hole", "tv_hole", "l1_all", "psnr_all",
           "ssim_all"]

def evaluation_images(source="heldout", image_size=256):
    """Images to evaluate on: the bundled held-out split, or every image of a folder/flist,
    each resized to ``image_size`` (float32 (N, 3, S, S) in [-1, 1])."""
    from ..data.datasets import ImageFolder, demo_corpus

    if source == "heldout":
        dataset = demo_corpus("heldout", image_size, resize=True)
    else:
        dataset = ImageFolder(source, image_size, resize=True)
    return np.stack([dataset.sample(i, 0) for i in range(len(dataset))]), dataset.names


def score_methods(methods, images, mask):
    """Per-image scores: ``methods`` maps a name to ``fill(images, mask) -> images``.

    ``images`` (N, 3, H, W) in [-1, 1]; ``mask`` (1, 1, H, W).
    Returns {name: [{metric: value} for each image]}.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"score_methods: images must be a non-empty (N, 3, H, W) batch, got "
                         f"shape {images.shape}")
    return {name: [evaluate_pair(to_unit(p), to_unit(t), mask[0])
                   for p, t in zip(fill(images, mask), images)]
            for name, fill in methods.items()}


def evaluate_methods(methods, images, mask, *, scores=None):
    """Mean scores per method (each metric averaged over the images, PSNR included).

    Same arguments as ``score_methods`` (or its result as ``scores``, to avoid filling
    twice). Returns {name: {metric: mean}}.
    """
    scores = score_methods(methods, images, mask) if scores is None else scores
    return {name: {key: float(np.mean([s[key] for s in rows])) for key in rows[0]}
            for name, rows in scores.items()}


def format_per_image(scores, names, columns=("l1_hole", "psnr_hole")):
    """Markdown: one row per image, ``columns`` of every method side by side."""
    methods = list(scores)
    header = "| image | " + " | ".join(f"{m}: {c}" for m in methods for c in columns) + " |"
    rule = "|---|" + "---:|" * (len(methods) * len(columns))
    rows = [f"| {name} | " + " | ".join(f"{scores[m][i][c]:.3f}" for m in methods
                                        for c in columns) + " |"
            for i, name in enumerate(names)]
    return "\n".join([header, rule] + rows)


def baseline_methods():
    def per_image(fill):
        return lambda images, mask: np.stack([fill(image, mask[0]) for image in images])
    return {"mean fill": per_image(mean_fill), "harmonic (diffusion)": per_image(harmonic_fill),
            "biharmonic": per_image(biharmonic_fill)}


def _check_columns(table, columns):
    for name, scores in table.items():
        missing = [c for c in columns if c not in scores]
        if missing:
            raise ValueError(f"the scores of {name!r} lack the columns {missing} "
                             f"(it has {sorted(scores)})")


def format_markdown(table, columns=COLUMNS):
    _check_columns(table, columns)
    header = "| method | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    rows = [f"| {name} | " + " | ".join(f"{scores[c]:.3f}" for c in columns) + " |"
            for name, scores in table.items()]
    return "\n".join([header, rule] + rows)


def write_table(table, path, columns=COLUMNS):
    """Write the table as Markdown (``.md``) or CSV (anything else); the whole text is built
    before the file is opened, so a bad table leaves an existing file as it was."""
    path = Path(path)
    if path.suffix == ".md":
        text = format_markdown(table, columns) + "\n"
    else:
        _check_columns(table, columns)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["method"] + list(columns))
        for name, scores in table.items():
            writer.writerow([name] + [f"{scores[c]:.6g}" for c in columns])
        text = buffer.getvalue()
    return write_text(path, text)
