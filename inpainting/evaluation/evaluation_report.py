"""What ``inpainting evaluate`` writes: the summary table, the paired table, per-crop rows, the
figure. The protocol itself is ``inpainting.evaluate``; the statistics ``evaluation_stats``.

Files for ``--out results.csv``: ``results.csv`` (one row per hole kind and method, with the
settings on every row), ``results_paired.csv`` (model minus each baseline, bootstrap CI) and,
with ``--per-image``, ``results_per_image.csv`` (one row per crop, hole and method). With
``--out results.md`` the same tables as Markdown in one file. Every write is atomic.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from .evaluate import MODEL, crop_windows, fill_crop, hole_mask, write_text
from .evaluation_stats import paired_table, summarise

__all__ = ["SUMMARY_COLUMNS", "PAIRED_COLUMNS", "PRINTED_COLUMNS", "SETTINGS", "summary_rows", "paired_rows",
           "per_crop_rows", "markdown", "write_outputs", "figure_crops", "save_figure"]

SUMMARY_COLUMNS = ["method", "hole", "l1_hole", "l2_hole", "psnr_hole", "psnr_hole_pooled",
                   "ssim_hole", "tv_hole", "tv_hole_target", "colour_bias_hole", "seam_hole",
                   "grid_hole", "wins_l1", "n", "attention_hits", "l1_all", "l2_all", "psnr_all", "psnr_all_pooled", "ssim_all", "tv_all",
                   "tv_all_target"]
PAIRED_COLUMNS = ["hole", "baseline", "metric", "model_minus_baseline", "ci_low", "ci_high",
                  "images"]
#: settings recorded on every summary row
SETTINGS = ["data", "size", "crops_per_image", "seed", "weights", "bootstrap"]
PRINTED_COLUMNS = ["method", "hole", "l1_hole", "l2_hole", "psnr_hole", "psnr_hole_pooled",
            "ssim_hole", "colour_bias_hole", "seam_hole", "grid_hole", "wins_l1", "n",
            "attention_hits"]


def _groups(records, holes):
    """(hole label, records): each hole kind, and with several kinds also ``all`` together."""
    groups = [(kind, [r for r in records if r["hole"] == kind]) for kind in holes]
    return groups + ([("all", records)] if len(holes) > 1 else [])


def summary_rows(records, holes):
    return [{"method": method, "hole": label, **values}
            for label, group in _groups(records, holes)
            for method, values in summarise(group).items()]


def paired_rows(records, holes, *, resamples, seed):
    methods = list(dict.fromkeys(r["method"] for r in records))
    if MODEL not in methods:
        return []
    baselines = [m for m in methods if m != MODEL]
    return [{"hole": label, **row} for label, group in _groups(records, holes)
            for row in paired_table(group, MODEL, baselines, resamples=resamples, seed=seed)]


def per_crop_rows(records, crops):
    keys = ["l1_hole", "l2_hole", "psnr_hole", "ssim_hole", "tv_hole", "tv_target_hole",
            "l1_all", "psnr_all", "ssim_all", "attention_hits"]
    rows = []
    for record in records:
        where = crops[record["crop_id"]]
        rows.append({"image": where["name"], "crop": where["crop"], "top": where["top"],
                     "left": where["left"], "scale": where["scale"], "hole": where["hole"],
                     "hole_top": where["hole_box"][0], "hole_left": where["hole_box"][1],
                     "method": record["method"],
                     **{key: record.get(key, math.nan) for key in keys}})
    return rows


def _text(value, digits):
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{digits}f}" if digits else f"{value:.6g}"
    return str(value)


def _csv(rows, columns):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(c, ""), 0) for c in columns])
    return buffer.getvalue()


def markdown(rows, columns, digits=3):
    """A Markdown table of ``rows`` (dicts) in ``columns``; NaN shows as an empty cell."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_text(row.get(c, ""), digits) for c in columns) + " |"
              for row in rows]
    return "\n".join(lines)


def write_outputs(out, settings, summary, paired, per_crop=None):
    """Write the tables (module docstring); returns the paths written."""
    out = Path(out)
    if out.suffix.lower() == ".md":
        parts = ["Settings: " + ", ".join(f"{k} = {settings[k]}" for k in SETTINGS), "",
                 markdown(summary, SUMMARY_COLUMNS), ""]
        if paired:
            parts += ["Model minus baseline, 95 % paired bootstrap CI over images:", "",
                      markdown(paired, PAIRED_COLUMNS), ""]
        if per_crop is not None:
            parts += [markdown(per_crop, list(per_crop[0])), ""]
        return [write_text(out, "\n".join(parts))]
    rows = [{**row, **settings} for row in summary]
    paths = [write_text(out, _csv(rows, SUMMARY_COLUMNS + SETTINGS))]
    if paired:
        paths.append(write_text(out.with_name(out.stem + "_paired.csv"),
                                _csv(paired, PAIRED_COLUMNS)))
    if per_crop is not None:
        paths.append(write_text(out.with_name(out.stem + "_per_image.csv"),
                                _csv(per_crop, list(per_crop[0]))))
    return paths


def figure_crops(records, reference="harmonic"):
    """The crop ids where the model does best, median and worst against ``reference`` on hole
    L1 (model minus reference: lowest, middle of the sorted list, highest)."""
    model = {r["crop_id"]: r["l1_hole"] for r in records if r["method"] == MODEL}
    other = {r["crop_id"]: r["l1_hole"] for r in records if r["method"] == reference}
    if not model or not other:
        raise ValueError(f"--figure compares the model with {reference}: evaluate both "
                         f"(a model and --baselines including {reference})")
    ranked = sorted(model, key=lambda crop_id: (model[crop_id] - other[crop_id], crop_id))
    return {"best": ranked[0], "median": ranked[len(ranked) // 2], "worst": ranked[-1]}


def save_figure(path, records, crops, sources, size, seed, generator, device="cpu"):
    """The side-by-side figure: rows best / median / worst crop (model against harmonic),
    columns input | each method | truth, each titled with its hole L1 (%)."""
    from matplotlib.figure import Figure

    from ..training.viz import to_display

    picks = figure_crops(records)
    methods = list(dict.fromkeys(r["method"] for r in records))
    scores = {(r["crop_id"], r["method"]): r["l1_hole"] for r in records}
    figure = Figure(figsize=(1.6 * (len(methods) + 2), 1.8 * len(picks)))
    axes = figure.subplots(len(picks), len(methods) + 2, squeeze=False)
    for row, (label, crop_id) in enumerate(picks.items()):
        where = crops[crop_id]
        name, load = sources[where["image"]]
        window = crop_windows(load(), size, where["crop"] + 1,
                              np.random.default_rng([seed, where["image"], 0, 0]))[-1][0]
        mask, _ = hole_mask(where["hole"], size,
                            np.random.default_rng([seed, where["image"], where["crop"] + 1, 1]))
        shown = to_display(window)
        holed = shown.copy()
        holed[mask[0, 0] > 0.5] = 255
        panels = [(f"{label}: {Path(name).name[:24]}", holed)]
        for method in methods:
            filled, _ = fill_crop(method, window, mask, generator, device)
            panels.append((f"{method} {scores[crop_id, method]:.1f}", to_display(filled)))
        panels.append(("truth", shown))
        for axis, (title, picture) in zip(axes[row], panels):
            axis.imshow(picture)
            axis.set_title(title, fontsize=7)
            axis.axis("off")
    figure.tight_layout()
    path = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=90)
    write_text(path, buffer.getvalue())
    return path
