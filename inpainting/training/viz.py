"""Figures for people: sample grids, loss curves (matplotlib + Pillow; the demo's teaching
figure is inpainting/app/demo_figure.py).

* ``sample_grid``: rows of [input with hole | coarse x1 | refined result | attention map | truth].
* ``save_loss_plot``: the training losses of a ``log.jsonl`` over generator steps.
* ``attention_rgb``: the colour-coded offsets (spec §4) upsampled to image size.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure   # drawn without pyplot: no global backend switch

from nnlite.serialization import atomic_write

__all__ = ["to_display", "attention_rgb", "sample_grid", "save_sample_grid", "loss_figure",
           "save_loss_plot"]


def to_display(chw):
    """(3, H, W) in [-1, 1] (NumPy or CuPy) -> (H, W, 3) uint8, saturated as the release (§7)."""
    from nnlite.backend import to_device

    array = to_device(chw.data if hasattr(chw, "creator") else chw, "cpu")
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"to_display: expected one (3, H, W) image, got shape {array.shape}")
    return np.clip((array.transpose(1, 2, 0) + 1.0) * 127.5, 0, 255).astype(np.uint8)


def attention_rgb(offsets, height, width, count=1):
    """Colour-coded attention offsets (N, 2, h, w) -> (N, height, width, 3) uint8: the
    release's ``flow_to_image`` upsampled with its align-corners nearest rule.
    ``offsets`` None (a generator without attention): ``count`` plain gray panels."""
    from nnlite.backend import to_device

    from ..model.attention_colours import flow_to_image, upsample_nearest

    if offsets is None:
        return np.full((count, height, width, 3), 128, np.uint8)
    colours = flow_to_image(np.asarray(to_device(offsets, "cpu")))
    return upsample_nearest(colours, height, width, align_corners=True)


def _hole_overlay(image_u8, mask):
    shown = image_u8.copy()
    shown[mask > 0.5] = 255
    return shown


def sample_grid(images, masks, coarse, output, offsets):
    """One uint8 picture: a row per sample of [input | coarse | result | attention | truth].

    All arrays are NumPy: images/coarse/output (N, 3, H, W) in [-1, 1], masks
    (1 or N, 1, H, W), offsets (N, 2, h, w) or None (no attention branch: a gray panel).
    """
    n, _, height, width = images.shape
    attention = attention_rgb(offsets, height, width, n)
    rows = []
    for i in range(n):
        mask = masks[min(i, masks.shape[0] - 1), 0]
        truth = to_display(images[i])
        rows.append(np.concatenate([_hole_overlay(truth, mask), to_display(coarse[i]),
                                    to_display(output[i]), attention[i], truth], axis=1))
    return np.concatenate(rows, axis=0)


def save_sample_grid(trainer, path, count=4):
    """Inpaint ``count`` fixed training images (centred hole) and save the grid PNG.

    Unreadable images are skipped (warned about once), as the training batches skip them.
    """
    from PIL import Image

    from nnlite.backend import to_device

    from ..model.inference import inpaint
    from ..data.masks import centered_bbox_mask

    if not hasattr(trainer, "_sample_images"):
        dataset = trainer.dataset
        if hasattr(dataset, "fixed_samples"):    # skips unreadable files, as batches do
            trainer._sample_images = dataset.fixed_samples(count)
        else:
            picks = [dataset.sample(i % len(dataset), 0) for i in range(count)]
            trainer._sample_images = np.stack(picks)
    images = trainer._sample_images
    size = images.shape[-1]
    mask, _ = centered_bbox_mask(size, trainer.config.bbox_size)
    result = inpaint(trainer.generator, to_device(images, trainer.device),
                     to_device(mask, trainer.device))
    offsets = None if result.offsets is None else to_device(result.offsets, "cpu")
    grid = sample_grid(images, mask, to_device(result.coarse, "cpu"),
                       to_device(result.output, "cpu"), offsets)
    with atomic_write(path) as stream:          # a killed run leaves no half image
        Image.fromarray(grid).save(stream, format="PNG")
    return path


def save_loss_plot(log_path, path):
    """Plot every loss term of a ``log.jsonl`` against the generator step.

    A term missing from some records (the critic terms during the warm-up) is plotted
    over the steps that have it; a dashed line marks where the adversarial phase starts.
    Nothing is drawn (None) while the log is missing or empty.
    """
    figure = loss_figure(log_path)
    if figure is None:
        return None
    with atomic_write(path) as stream:
        figure.savefig(stream, format="png", dpi=80)
    return path


def loss_figure(log_path):
    """The matplotlib ``Figure`` that ``save_loss_plot`` writes: one panel per group of loss
    terms (critic, penalty, generator, reconstruction) against the generator step, with a
    dashed line at the first step that logs the critic when the run began with a warm-up.
    None while the log is missing or empty."""
    from .run_files import read_log

    records = read_log(log_path)    # [] before the first line (log_every > sample_every)
    if not records:
        return None
    groups = [("critic", ["d_loss", "d_local", "d_global"]), ("penalty", ["gp_local", "gp_global"]),
              ("generator", ["g_local", "g_global"]), ("reconstruction", ["l1", "ae"])]
    adversarial = [r["step"] for r in records if "d_loss" in r]
    warmup_end = adversarial[0] if adversarial and "d_loss" not in records[0] else None
    figure = Figure(figsize=(4 * len(groups), 3))
    axes = figure.subplots(1, len(groups), sharex=True)
    for axis, (title, keys) in zip(axes, groups):
        for key in keys:
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                axis.plot(*zip(*points), label=key)
        if warmup_end is not None:
            axis.axvline(warmup_end, color="gray", linestyle="--", linewidth=0.8)
        axis.set_title(title)
        axis.set_xlabel("generator step")
        if axis.lines:
            axis.legend(fontsize=8)
        else:
            axis.text(0.5, 0.5, "not logged yet\n(reconstruction warm-up)", ha="center",
                      va="center", transform=axis.transAxes, color="gray")
    figure.tight_layout()
    return figure

