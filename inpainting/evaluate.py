"""Evaluation in the manner of the paper's Table 1: the model against classical baselines.

Every method fills the same held-out images with the same centred hole; the
metrics (``metrics.evaluate_pair``) are computed on the whole image and inside
the hole. Baselines: mean fill, harmonic (diffusion) fill and biharmonic inpainting
(scikit-image).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .baselines import biharmonic_fill, harmonic_fill, mean_fill
from .metrics import evaluate_pair, to_unit

__all__ = ["evaluation_images", "evaluate_methods", "format_markdown", "write_table", "COLUMNS"]

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


def evaluate_methods(methods, images, mask):
    """Mean scores per method: ``methods`` maps a name to ``fill(images, mask) -> images``.

    ``images`` (N, 3, H, W) in [-1, 1]; ``mask`` (1, 1, H, W). Returns {name: {metric: mean}}.
    """
    table = {}
    for name, fill in methods.items():
        filled = fill(images, mask)
        scores = [evaluate_pair(to_unit(p), to_unit(t), mask[0])
                  for p, t in zip(filled, images)]
        table[name] = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
    return table


def baseline_methods():
    def per_image(fill):
        return lambda images, mask: np.stack([fill(image, mask[0]) for image in images])
    return {"mean fill": per_image(mean_fill), "harmonic (diffusion)": per_image(harmonic_fill),
            "biharmonic": per_image(biharmonic_fill)}


def format_markdown(table, columns=COLUMNS):
    header = "| method | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    rows = [f"| {name} | " + " | ".join(f"{scores[c]:.3f}" for c in columns) + " |"
            for name, scores in table.items()]
    return "\n".join([header, rule] + rows)


def write_table(table, path, columns=COLUMNS):
    """Write the table as Markdown (``.md``) or CSV (anything else)."""
    path = Path(path)
    if path.suffix == ".md":
        path.write_text(format_markdown(table, columns) + "\n")
        return path
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method"] + list(columns))
        for name, scores in table.items():
            writer.writerow([name] + [f"{scores[c]:.6g}" for c in columns])
    return path
