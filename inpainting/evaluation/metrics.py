"""Image quality metrics of the paper's Table 1, on the whole image and inside the hole.

Inputs are float arrays (C, H, W) in [0, 1] (``to_unit`` converts the project's [-1, 1]); the
mask is (1, H, W) or (H, W) with 1 = hole. For a mask M, "inside the hole" means a mean weighted
by M over pixels and channels. With e = pred - target, over the K = C * H * W values
(or the C * sum(M) hole values):

* mean L1 error (%)  = 100 * mean |e|
* mean L2 error (%)  = 100 * mean e^2           (the mean squared error, as a percentage)
* PSNR (dB)          = 10 * log10(1 / mean e^2) (data range 1); identical images give +inf
* TV (%)             = 100 * mean over neighbouring pixel pairs (p, q) and channels of |x_p - x_q|,
  the pairs being the (H-1)*W vertical and H*(W-1) horizontal 4-neighbours, each counted once;
  inside the hole a pair counts when at least one of its pixels is in the hole (so the seam
  along the hole's border is included). It measures how smooth the *prediction* is; the
  paper reports a "TV loss" without a formula, so this definition is ours and its absolute
  values are not comparable with the paper's column. ``evaluate_pair`` also reports the
  target's TV as a reference.
* SSIM: ``skimage.metrics.structural_similarity(..., channel_axis=0, data_range=1)``: its mean
  (skimage's value) on the whole image, the mean of its SSIM map over hole pixels inside.

Three artefact scores of the hole (ours; the defects an inpainting model's fills show):

* colour bias (%)  = 100 * mean over channels c of |mean_hole pred_c - mean_hole target_c|:
  a colour cast of the fill as a whole, whatever its texture.
* seam (%)         = 100 * (mean |pred_p - pred_q| - mean |target_p - target_q|) over the
  4-neighbour pairs (p, q) that cross the hole's border (one pixel in, one out) and channels:
  > 0 when the fill steps away from its surroundings more than the truth does.
* grid             = b(pred) - b(target), with b(x) = mean |x_p - x_q| over neighbour pairs
  inside the hole that cross an 8-pixel block line (x = 8k - 1 | 8k, same for y) divided by the
  mean over the other pairs inside the hole (b = 1 when the image has no edges there): > 0
  when the fill is blocky on the generator's stride-8 grid.

A batch score is the mean of per-image scores (PSNR is averaged in dB, per image, as is usual).
"""
from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

__all__ = ["attention_hits", "colour_bias", "evaluate_pair", "grid_blockiness", "seam", "l1_error", "l2_error", "psnr", "ssim", "to_unit",
           "total_variation", "valid_attention_cells", "whole_hole_cells"]


def to_unit(image: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [0, 1]: ``(y + 1) / 2``, float64."""
    return (np.asarray(image, dtype=np.float64) + 1.0) / 2.0


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"{name} must be a (C, H, W) image, got shape {image.shape}")
    if image.size and (image.min() < -1e-6 or image.max() > 1 + 1e-6):
        raise ValueError(f"{name} has values in [{image.min():.3g}, {image.max():.3g}]; metrics "
                         "expect [0, 1] (convert [-1, 1] images with to_unit)")
    return image


def _check_pair(pred, target):
    pred, target = _check_image(pred, "pred"), _check_image(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {pred.shape} vs {target.shape}")
    return pred, target


def _hole_weights(mask, shape: tuple[int, ...]) -> np.ndarray | None:
    """Mask (1, H, W) or (H, W) -> (1, H, W) float64 weights matching ``shape`` (C, H, W)."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=np.float64)
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3 or mask.shape[0] != 1 or mask.shape[1:] != tuple(shape[1:]):
        raise ValueError(f"mask must be (1, H, W) or (H, W) with (H, W) = {tuple(shape[1:])}, "
                         f"got shape {mask.shape}")
    if mask.sum() <= 0:
        raise ValueError("mask has no hole pixels: hole metrics are undefined")
    return mask


def _mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    """Mean of (C, H, W) values, weighted by (1, H, W) weights over pixels when given."""
    if weights is None:
        return float(values.mean())
    weights = np.broadcast_to(weights, values.shape)
    return float((values * weights).sum() / weights.sum())


def l1_error(pred, target, mask=None) -> float:
    """Mean L1 error in percent: ``100 * mean |pred - target|`` (hole-weighted if mask given)."""
    pred, target = _check_pair(pred, target)
    return 100.0 * _mean(np.abs(pred - target), _hole_weights(mask, pred.shape))


def l2_error(pred, target, mask=None) -> float:
    """Mean L2 error in percent: ``100 * mean (pred - target)^2`` (hole-weighted if mask given)."""
    pred, target = _check_pair(pred, target)
    return 100.0 * _mean((pred - target) ** 2, _hole_weights(mask, pred.shape))


def psnr(pred, target, mask=None) -> float:
    """PSNR in dB with data range 1: ``10 log10(1 / MSE)``; ``inf`` when MSE is 0."""
    mse = l2_error(pred, target, mask) / 100.0
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def total_variation(image, mask=None) -> float:
    """TV in percent: ``100 * mean |x_p - x_q|`` over 4-neighbour pairs (p, q) and channels.

    With a mask, the pair (p, q) has weight ``max(M_p, M_q)`` (pairs touching the hole).
    """
    image = _check_image(image, "image")
    weights = _hole_weights(mask, image.shape)
    vertical = np.abs(image[:, 1:, :] - image[:, :-1, :])
    horizontal = np.abs(image[:, :, 1:] - image[:, :, :-1])
    if vertical.size + horizontal.size == 0:
        raise ValueError(f"total_variation needs at least two pixels, got shape {image.shape}")
    if weights is None:
        total, count = vertical.sum() + horizontal.sum(), vertical.size + horizontal.size
        return 100.0 * float(total / count)
    weight_v = np.maximum(weights[:, 1:, :], weights[:, :-1, :])
    weight_h = np.maximum(weights[:, :, 1:], weights[:, :, :-1])
    total = (vertical * weight_v).sum() + (horizontal * weight_h).sum()
    count = image.shape[0] * (weight_v.sum() + weight_h.sum())
    return 100.0 * float(total / count)


def ssim(pred, target, mask=None) -> float:
    """SSIM (skimage defaults: 7x7 uniform window; data_range 1, channel_axis 0).

    Without a mask: skimage's mean SSIM. With a mask: the SSIM map averaged over hole pixels.
    Both sides must be at least 7 pixels.
    """
    pred, target = _check_pair(pred, target)
    if min(pred.shape[1:]) < 7:
        raise ValueError(f"ssim needs images of at least 7x7 pixels, got {pred.shape[1:]}")
    weights = _hole_weights(mask, pred.shape)
    mean_ssim, ssim_map = structural_similarity(pred, target, channel_axis=0, data_range=1.0,
                                                full=True)
    return float(mean_ssim) if weights is None else _mean(ssim_map, weights)


def _hole_bool(mask, shape) -> np.ndarray:
    """(H, W) bool of the hole (mask > 0.5); ValueError if it is empty."""
    return _hole_weights(mask, shape)[0] > 0.5


def colour_bias(pred, target, mask) -> float:
    """Colour cast of the fill in percent: mean over channels of |mean_hole(pred_c - target_c)|."""
    pred, target = _check_pair(pred, target)
    hole = _hole_bool(mask, pred.shape)
    return 100.0 * float(np.abs((pred - target)[:, hole].mean(axis=1)).mean())


def _pair_steps(image, axis):
    """|x_p - x_q| for the neighbour pairs (i, i + 1) along ``axis`` (1 = rows, 2 = columns)."""
    return np.abs(np.diff(image, axis=axis))


def seam(pred, target, mask) -> float:
    """Excess step across the hole's border in percent (module docstring); > 0 = a seam."""
    pred, target = _check_pair(pred, target)
    hole = _hole_bool(mask, pred.shape)
    excess, count = 0.0, 0
    for axis in (1, 2):
        inside_a = hole[:-1, :] if axis == 1 else hole[:, :-1]
        inside_b = hole[1:, :] if axis == 1 else hole[:, 1:]
        crossing = inside_a != inside_b
        steps_pred = _pair_steps(pred, axis)[:, crossing]
        steps_target = _pair_steps(target, axis)[:, crossing]
        excess += float((steps_pred - steps_target).sum())
        count += steps_pred.size
    if count == 0:
        raise ValueError("seam: the hole has no border inside the image (it covers it all)")
    return 100.0 * excess / count


def _blockiness(image, hole) -> float:
    """Mean step across 8-pixel block lines / mean step elsewhere, for pairs inside the hole."""
    on_line, off_line = [], []
    for axis in (1, 2):
        steps = _pair_steps(image, axis)
        both = (hole[:-1, :] & hole[1:, :]) if axis == 1 else (hole[:, :-1] & hole[:, 1:])
        index = np.arange(steps.shape[axis])                 # pair (i, i + 1) along axis
        line = (index % 8 == 7)
        line = line[:, None] if axis == 1 else line[None, :]
        on_line.append(steps[:, both & line])
        off_line.append(steps[:, both & ~line])
    on_line, off_line = np.concatenate(on_line, 1), np.concatenate(off_line, 1)
    if on_line.size == 0 or off_line.size == 0:
        raise ValueError("grid_blockiness: the hole must span an 8-pixel block line "
                         "(at least 9 pixels across)")
    on_mean, off_mean = float(on_line.mean()), float(off_line.mean())
    return 1.0 if off_mean == 0.0 and on_mean == 0.0 else on_mean / max(off_mean, 1e-12)


def grid_blockiness(pred, target, mask) -> float:
    """b(pred) - b(target): excess blockiness of the fill on the stride-8 grid (> 0 = a grid)."""
    pred, target = _check_pair(pred, target)
    hole = _hole_bool(mask, pred.shape)
    return _blockiness(pred, hole) - _blockiness(target, hole)


def evaluate_pair(pred, target, mask) -> dict[str, float]:
    """All metrics for one (C, H, W) pair in [0, 1] and its hole mask.

    Keys: ``l1``, ``l2``, ``psnr``, ``tv``, ``tv_target``, ``ssim``, each suffixed ``_all``
    (whole image) or ``_hole`` (inside the hole); l1 / l2 / tv in percent, psnr in dB; and
    the hole's artefact scores ``colour_bias_hole``, ``seam_hole`` (percent), ``grid_hole``
    (when the hole spans a block line).
    """
    scores = {}
    for region, region_mask in (("all", None), ("hole", mask)):
        scores[f"l1_{region}"] = l1_error(pred, target, region_mask)
        scores[f"l2_{region}"] = l2_error(pred, target, region_mask)
        scores[f"psnr_{region}"] = psnr(pred, target, region_mask)
        scores[f"tv_{region}"] = total_variation(pred, region_mask)
        scores[f"tv_target_{region}"] = total_variation(target, region_mask)
        scores[f"ssim_{region}"] = ssim(pred, target, region_mask)
    scores["colour_bias_hole"] = colour_bias(pred, target, mask)
    scores["seam_hole"] = seam(pred, target, mask)
    try:
        scores["grid_hole"] = grid_blockiness(pred, target, mask)
    except ValueError:          # a hole too small to cross a block line: no grid to see
        scores["grid_hole"] = math.nan
    return scores


def valid_attention_cells(mask) -> np.ndarray:
    """Which attention-grid cells contextual attention may copy from, for a (1, H, W) or (H, W)
    hole mask with H, W multiples of 8: bool (H/8 * W/8,), row-major. The generator's own rule
    (spec §2-§3): the mask resized to 1/4 (nearest, align corners), then by 1/2, and a cell is
    valid when its 3x3 neighbourhood there holds no hole."""
    import nnlite.functional as F
    from nnlite import Tensor

    from ..model.attention_steps import downsample, valid_patches

    mask = np.asarray(mask, dtype=np.float32).reshape(1, 1, *np.shape(mask)[-2:])
    height, width = mask.shape[2:]
    if height % 8 or width % 8:
        raise ValueError(f"valid_attention_cells: the mask must be a multiple of 8 on each side, "
                         f"got {height}x{width}")
    quarter = F.interpolate_nearest(Tensor(mask), size=(height // 4, width // 4),
                                    align_corners=True)
    return valid_patches(downsample(quarter, 2), 3)[0] > 0


def whole_hole_cells(mask) -> np.ndarray:
    """bool (H/8 * W/8,): the attention-grid cells whose 8x8 footprint is all hole."""
    mask = np.asarray(mask).reshape(np.shape(mask)[-2:])
    height, width = mask.shape
    return (mask.reshape(height // 8, 8, width // 8, 8).min(axis=(1, 3)) > 0.5).ravel()


def attention_hits(attention, target, mask, *, tolerance=1.0) -> float:
    """The fraction of hole cells whose attention copies a right source (the paper's claim).

    Args:
        attention: (h, w, h, w) scores of one image (``InpaintResult.attention[n]``).
        target: the ground truth (C, 8h, 8w) in [0, 1].
        mask: (1, 8h, 8w) or (8h, 8w), 1 = hole.
        tolerance: in L1 percentage points.

    Cell (i, j) of the attention grid has the 8x8 footprint ``target[:, 8i:8i+8, 8j:8j+8]``.
    For each hole cell p (footprint entirely in the hole) let ``e(q)`` = 100 * mean |footprint
    q - footprint p| of the ground truth. The argmax source ``a = argmax_q attention[p]`` is a
    hit when it is a valid source (``valid_attention_cells``) and ``e(a) <= min over valid q
    of e(q) + tolerance``: it copies a window within 1 % L1 of the best window there was.
    Returns hits / hole cells; ValueError when no cell lies wholly in the hole.
    """
    attention = np.asarray(attention)
    target = _check_image(target, "target")
    if attention.ndim != 4 or attention.shape[:2] != attention.shape[2:]:
        raise ValueError(f"attention_hits: attention must be (h, w, h, w), got shape "
                         f"{attention.shape}")
    h, w = attention.shape[:2]
    if target.shape[1:] != (8 * h, 8 * w):
        raise ValueError(f"attention_hits: target must be (C, {8 * h}, {8 * w}) for a {h}x{w} "
                         f"attention grid, got {target.shape}")
    weights = _hole_weights(mask, target.shape)[0]
    channels = target.shape[0]
    footprints = target.reshape(channels, h, 8, w, 8).transpose(1, 3, 0, 2, 4).reshape(h * w, -1)
    hole_cells = np.flatnonzero(whole_hole_cells(weights))
    if len(hole_cells) == 0:
        raise ValueError("attention_hits: no attention cell lies wholly in the hole")
    valid = valid_attention_cells(weights)
    if not valid.any():
        return 0.0
    scores = attention.reshape(h * w, h * w)
    hits = 0
    for p in hole_cells:
        errors = 100.0 * np.abs(footprints - footprints[p]).mean(axis=1)
        chosen = int(np.argmax(scores[p]))
        hits += bool(valid[chosen] and errors[chosen] <= errors[valid].min() + tolerance)
    return hits / len(hole_cells)
