"""The hole's artefact scores (colour bias, seam, grid blockiness) against plain loops and on
images whose defect is known."""
import math

import numpy as np
import pytest

from inpainting.evaluation.metrics import colour_bias, evaluate_pair, grid_blockiness, seam


def _pair(seed=0, size=24):
    rng = np.random.default_rng(seed)
    target = rng.uniform(0, 1, (3, size, size))
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1)
    mask = np.zeros((size, size))
    mask[5:19, 3:20] = 1
    pred = pred * mask + target * (1 - mask)
    return pred, target, mask


def _neighbour_pairs(height, width):
    for y in range(height):
        for x in range(width):
            if y + 1 < height:
                yield (y, x), (y + 1, x)
            if x + 1 < width:
                yield (y, x), (y, x + 1)


def _loop_colour_bias(pred, target, mask):
    total = 0.0
    for c in range(pred.shape[0]):
        diffs = [pred[c, y, x] - target[c, y, x] for y in range(mask.shape[0])
                 for x in range(mask.shape[1]) if mask[y, x] > 0.5]
        total += abs(sum(diffs) / len(diffs))
    return 100 * total / pred.shape[0]


def _loop_seam(pred, target, mask):
    excess, count = 0.0, 0
    for p, q in _neighbour_pairs(*mask.shape):
        if (mask[p] > 0.5) != (mask[q] > 0.5):
            for c in range(pred.shape[0]):
                excess += abs(pred[(c, *p)] - pred[(c, *q)]) - abs(target[(c, *p)]
                                                                  - target[(c, *q)])
                count += 1
    return 100 * excess / count


def _loop_blockiness(image, mask):
    on, off = [], []
    for p, q in _neighbour_pairs(*mask.shape):
        if mask[p] > 0.5 and mask[q] > 0.5:
            first = p[0] if p[0] != q[0] else p[1]          # pair (i, i + 1) along its axis
            for c in range(image.shape[0]):
                step = abs(image[(c, *p)] - image[(c, *q)])
                (on if first % 8 == 7 else off).append(step)
    return np.mean(on) / np.mean(off)


def test_artefact_scores_equal_plain_loops():
    for seed in range(3):
        pred, target, mask = _pair(seed)
        assert colour_bias(pred, target, mask) == pytest.approx(
            _loop_colour_bias(pred, target, mask), rel=1e-10)
        assert seam(pred, target, mask) == pytest.approx(_loop_seam(pred, target, mask),
                                                         rel=1e-10, abs=1e-12)
        assert grid_blockiness(pred, target, mask) == pytest.approx(
            _loop_blockiness(pred, mask) - _loop_blockiness(target, mask), rel=1e-10)


def test_a_colour_cast_a_seam_and_a_grid_are_seen_where_they_are():
    rng = np.random.default_rng(1)
    target = np.full((3, 32, 32), 0.5) + rng.normal(0, 0.02, (3, 32, 32))
    mask = np.zeros((32, 32))
    mask[8:24, 8:24] = 1
    hole = mask > 0.5
    cast = target.copy()
    cast[0][hole] += 0.06                     # red +6 % inside the hole: a cast and a seam
    assert colour_bias(cast, target, mask) == pytest.approx(2.0, abs=1e-9)
    assert seam(cast, target, mask) > 1.0
    assert colour_bias(target, target, mask) == 0 and seam(target, target, mask) == 0
    blocks = target.copy()
    offsets = rng.uniform(-0.1, 0.1, (4, 4))   # a constant step per 8x8 block in the hole
    blocks[:, 8:24, 8:24] += np.kron(offsets[1:3, 1:3], np.ones((8, 8)))[None]
    assert grid_blockiness(blocks, target, mask) > 1.0
    shifted = target + 0.1 * hole             # a flat shift: no grid inside the hole
    assert abs(grid_blockiness(shifted, target, mask)) < 1e-9


def test_artefact_scores_in_evaluate_pair_and_their_errors():
    pred, target, mask = _pair(4)
    scores = evaluate_pair(pred, target, mask)
    assert scores["colour_bias_hole"] == colour_bias(pred, target, mask)
    assert scores["seam_hole"] == seam(pred, target, mask)
    assert scores["grid_hole"] == grid_blockiness(pred, target, mask)
    small = np.zeros((24, 24))
    small[1:6, 1:6] = 1                       # crosses no 8-pixel line: grid undefined
    assert math.isnan(evaluate_pair(pred, target, small)["grid_hole"])
    with pytest.raises(ValueError, match="block line"):
        grid_blockiness(pred, target, small)
    with pytest.raises(ValueError, match="no border"):
        seam(pred, target, np.ones((24, 24)))
    with pytest.raises(ValueError, match="no hole"):
        colour_bias(pred, target, np.zeros((24, 24)))
