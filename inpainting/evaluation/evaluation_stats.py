"""Summaries of an evaluation: means, pooled PSNR, wins, and the paired bootstrap over images.

The protocol (``inpainting.evaluate``) scores every method on every crop; a *record* is one
crop's scores: ``{"image": i, "method": name, "l1_hole": ..., "l2_hole": ..., ...}`` with the
keys of ``metrics.evaluate_pair`` (and ``attention_hits`` for a model with attention).

* ``summarise(records)``: per method, the mean of every metric over the crops; PSNR both as
  the mean of the per-crop PSNRs (each capped at ``PSNR_CAP`` dB, so one exact fill cannot make
  the mean infinite) and *pooled*: ``10 log10(1 / mean MSE)`` from the crops' mean squared
  error, which one smooth crop cannot dominate; ``wins_l1``: on how many crops the method has
  the lowest hole L1 (a tie gives each tied method the win).
  The hole's artefact scores (``colour_bias_hole``, ``seam_hole``, ``grid_hole``) are means
  over crops too (``grid_hole`` over the crops whose hole crosses an 8-pixel line).
* ``paired_bootstrap``: model minus baseline with a percentile 95 % interval from resampling
  *images* (all crops of a drawn image move together, since crops of one photo are not
  independent evidence).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["PSNR_CAP", "REGIONS", "summarise", "wins", "per_image_sums", "bootstrap_indices",
           "paired_bootstrap", "paired_table"]

#: the most a single crop's PSNR counts in a mean (dB): an MSE floor of 1e-10
PSNR_CAP = 100.0
REGIONS = ("hole", "all")


def _pooled_psnr(mse):
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def wins(records, key="l1_hole"):
    """{method: crops on which it has the lowest ``key``} (ties: each tied method wins)."""
    by_crop, methods = {}, []
    for record in records:
        by_crop.setdefault(record["crop_id"], []).append(record)
        if record["method"] not in methods:
            methods.append(record["method"])
    count = dict.fromkeys(methods, 0)
    for rows in by_crop.values():
        best = min(row[key] for row in rows)
        for row in rows:
            count[row["method"]] += row[key] == best
    return count


def summarise(records):
    """{method: {column: value}}: the per-method table of the protocol (module docstring).

    Columns for r in hole, all: ``l1_r``, ``l2_r``, ``psnr_r``, ``psnr_r_pooled``,
    ``ssim_r``, ``tv_r``, ``tv_r_target``; then ``wins_l1``, ``n`` (crops) and
    ``attention_hits`` (mean over crops, NaN for methods without attention).
    """
    won = wins(records)
    table = {}
    for method in won:
        rows = [r for r in records if r["method"] == method]
        entry = {}
        for region in REGIONS:
            mean = lambda key: float(np.mean([r[key] for r in rows]))   # noqa: E731
            entry[f"l1_{region}"] = mean(f"l1_{region}")
            entry[f"l2_{region}"] = mean(f"l2_{region}")
            entry[f"psnr_{region}"] = float(np.mean([min(r[f"psnr_{region}"], PSNR_CAP)
                                                     for r in rows]))
            entry[f"psnr_{region}_pooled"] = _pooled_psnr(entry[f"l2_{region}"] / 100.0)
            entry[f"ssim_{region}"] = mean(f"ssim_{region}")
            entry[f"tv_{region}"] = mean(f"tv_{region}")
            entry[f"tv_{region}_target"] = mean(f"tv_target_{region}")
        for key in ("colour_bias_hole", "seam_hole", "grid_hole"):   # artefacts of the fill
            values = [r[key] for r in rows if key in r and not math.isnan(r[key])]
            entry[key] = float(np.mean(values)) if values else math.nan
        entry["wins_l1"] = won[method]
        entry["n"] = len(rows)
        hits = [r["attention_hits"] for r in rows if r.get("attention_hits") is not None]
        entry["attention_hits"] = float(np.mean(hits)) if hits else math.nan
        table[method] = entry
    return table


def per_image_sums(records, method, key):
    """(images, sums, counts): the sum of ``key`` over each image's crops for ``method``."""
    sums = {}
    for record in records:
        if record["method"] == method:
            total, count = sums.get(record["image"], (0.0, 0))
            sums[record["image"]] = (total + record[key], count + 1)
    images = sorted(sums)
    return images, np.array([sums[i][0] for i in images]), np.array([sums[i][1] for i in images])


def bootstrap_indices(num_images, resamples, seed):
    """(resamples, num_images) image indices drawn with replacement:
    ``numpy.random.default_rng([seed, 1414]).integers(0, num_images, (resamples, num_images))``."""
    rng = np.random.default_rng([seed, 1414])
    return rng.integers(0, num_images, (resamples, num_images))


def paired_bootstrap(model_sums, base_sums, counts, indices, *, pooled_psnr=False):
    """Point estimate and 95 % percentile interval of model minus baseline.

    ``model_sums``, ``base_sums``: per image, the sum over its crops of a per-crop value
    (hole L1, capped PSNR, or MSE for ``pooled_psnr``); ``counts``: crops per image;
    ``indices``: (B, n) resampled images (``bootstrap_indices``). For one draw d the
    statistic is ``sum_i model[d_i] / sum_i counts[d_i]`` minus the same for the baseline
    (a mean over the drawn images' crops); with ``pooled_psnr`` the two means are MSEs
    and the statistic is ``PSNR(model MSE) - PSNR(baseline MSE)``.
    Returns (estimate, low, high): the statistic on all images, and the 2.5th and 97.5th
    percentiles (``numpy.percentile``, linear interpolation) over the draws.
    """
    model_sums, base_sums = np.asarray(model_sums, float), np.asarray(base_sums, float)
    counts, indices = np.asarray(counts, float), np.asarray(indices)

    def statistic(model_total, base_total, count):
        model_mean, base_mean = model_total / count, base_total / count
        if pooled_psnr:
            return 10 * np.log10(base_mean / model_mean)   # = PSNR(model) - PSNR(base)
        return model_mean - base_mean

    estimate = statistic(model_sums.sum(), base_sums.sum(), counts.sum())
    draws = statistic(model_sums[indices].sum(axis=1), base_sums[indices].sum(axis=1),
                      counts[indices].sum(axis=1))
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(estimate), float(low), float(high)


def paired_table(records, model, baselines, *, resamples=2000, seed=0):
    """Rows ``{baseline, metric, model_minus_baseline, ci_low, ci_high, images}`` for hole L1,
    hole PSNR (mean of capped per-crop values), pooled hole PSNR, the hole's colour bias and
    seam, model minus each baseline, with the same image draws for every row."""
    rows, indices = [], None
    capped = [dict(r, psnr_capped=min(r["psnr_hole"], PSNR_CAP), mse_hole=r["l2_hole"] / 100)
              for r in records]
    metrics = [(metric, key, pooled) for metric, key, pooled in (
        ("l1_hole", "l1_hole", False), ("psnr_hole", "psnr_capped", False),
        ("psnr_hole_pooled", "mse_hole", True), ("colour_bias_hole", "colour_bias_hole", False),
        ("seam_hole", "seam_hole", False))
        if all(key in r for r in capped)]       # records scored without artefacts lack some
    for baseline in baselines:
        for metric, key, pooled in metrics:
            images, model_sums, counts = per_image_sums(capped, model, key)
            base_images, base_sums, _ = per_image_sums(capped, baseline, key)
            if images != base_images:
                raise ValueError(f"paired_table: {model} and {baseline} were scored on "
                                 "different images")
            if indices is None:
                indices = bootstrap_indices(len(images), resamples, seed)
            estimate, low, high = paired_bootstrap(model_sums, base_sums, counts, indices,
                                                   pooled_psnr=pooled)
            rows.append({"baseline": baseline, "metric": metric,
                         "model_minus_baseline": estimate, "ci_low": low, "ci_high": high,
                         "images": len(images)})
    return rows
