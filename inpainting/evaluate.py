"""Evaluation in the manner of the paper's Table 1: the model against classical baselines.

Every method fills the same held-out images with the same centred hole; the
metrics (``metrics.evaluate_pair``) are computed on the whole image and inside
the hole. Baselines: mean fill, harmonic (diffusion) fill and biharmonic inpainting
(scikit-image).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .baselines import biharmonic_fill, harmonic_fill, mean_fill
from .metrics import evaluate_pair, to_unit

__all__ = ["evaluation_images", "evaluate_methods", "score_methods", "format_markdown",
           "format_per_image", "write_table", "COLUMNS"]

COLUMNS = ["l1_hole", "l2_hole", "psnr_hole", "ssim_hole", "tv_hole", "l1_all", "psnr_all",
           "ssim_all"]


def evaluation_images(source="heldout", image_size=256):
    """Images to evaluate on: the bundled held-out split, or every image of a folder/flist,
    each resized to ``image_size`` (float32 (N, 3, S, S) in [-1, 1])."""
    from .data import ImageFolder, demo_corpus

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
    with open(path, "w", newline="") as handle:
        handle.write(text)
    return path
