"""Tests for inpainting.evaluation.metrics (paper Table 1 metrics) and inpainting.evaluation.baselines (classical fills).

Every metric is checked against a plain loop over pixels (and SSIM against its formula); every
baseline against the property that defines it.
"""
import math

import numpy as np
import pytest

from inpainting.evaluation.baselines import biharmonic_fill, harmonic_fill, mean_fill
from inpainting.evaluation.metrics import (evaluate_pair, l1_error, l2_error, psnr, ssim, to_unit,
                                total_variation)


def _pair(seed=0, shape=(2, 10, 11)):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, shape), rng.uniform(0, 1, shape)


def _interior_hole(h=10, w=11):
    mask = np.zeros((1, h, w))
    mask[0, 3:6, 4:7] = 1.0
    mask[0, 5, 3] = 1.0
    return mask


def _loop_mean(values_fn, shape, mask=None):
    total = count = 0.0
    for c in range(shape[0]):
        for i in range(shape[1]):
            for j in range(shape[2]):
                weight = 1.0 if mask is None else mask[0, i, j]
                total += weight * values_fn(c, i, j)
                count += weight
    return total / count


@pytest.mark.parametrize("masked", [False, True])
def test_l1_l2_psnr_against_loops(masked):
    pred, target = _pair(1)
    mask = _interior_hole() if masked else None
    l1 = _loop_mean(lambda c, i, j: abs(pred[c, i, j] - target[c, i, j]), pred.shape, mask)
    l2 = _loop_mean(lambda c, i, j: (pred[c, i, j] - target[c, i, j]) ** 2, pred.shape, mask)
    assert l1_error(pred, target, mask) == pytest.approx(100 * l1, rel=1e-12)
    assert l2_error(pred, target, mask) == pytest.approx(100 * l2, rel=1e-12)
    assert psnr(pred, target, mask) == pytest.approx(10 * math.log10(1 / l2), rel=1e-12)


def test_known_psnr_and_identical_images():
    target = np.random.default_rng(2).uniform(0.2, 0.8, (3, 8, 8))
    pred = target + 0.1  # constant error 0.1: MSE 0.01, PSNR exactly 20 dB
    assert psnr(pred, target) == pytest.approx(20.0, abs=1e-9)
    assert l2_error(pred, target) == pytest.approx(1.0, abs=1e-9)
    assert l1_error(pred, target) == pytest.approx(10.0, abs=1e-9)
    scores = evaluate_pair(target, target, _interior_hole(8, 8))
    assert scores["l1_all"] == scores["l2_hole"] == 0.0
    assert scores["psnr_all"] == scores["psnr_hole"] == math.inf
    assert scores["ssim_all"] == pytest.approx(1.0) and scores["ssim_hole"] == pytest.approx(1.0)


@pytest.mark.parametrize("masked", [False, True])
def test_total_variation_against_pair_loop(masked):
    image = np.random.default_rng(3).uniform(0, 1, (2, 6, 7))
    mask = _interior_hole(6, 7) if masked else np.ones((1, 6, 7))
    total = count = 0.0
    for c in range(2):
        for i in range(6):
            for j in range(7):
                for di, dj in ((1, 0), (0, 1)):  # each unordered neighbour pair once
                    if i + di < 6 and j + dj < 7:
                        weight = max(mask[0, i, j], mask[0, i + di, j + dj])
                        total += weight * abs(image[c, i, j] - image[c, i + di, j + dj])
                        count += weight
    expected = 100 * total / count
    assert total_variation(image, mask if masked else None) == pytest.approx(expected, rel=1e-12)


def test_total_variation_simple_values():
    stripes = np.zeros((1, 4, 4))
    stripes[:, :, 1::2] = 1.0  # every horizontal pair differs by 1, no vertical pair does
    assert total_variation(stripes) == pytest.approx(100 * 12 / 24)
    assert total_variation(np.full((3, 5, 5), 0.3)) == 0.0


def _ssim_loop(x, y, i, j, c):
    """SSIM at pixel (i, j) of channel c from its formula: 7x7 window, sample covariance."""
    a, b = x[c, i - 3:i + 4, j - 3:j + 4].ravel(), y[c, i - 3:i + 4, j - 3:j + 4].ravel()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_a, mu_b = a.mean(), b.mean()
    var_a, var_b = a.var(ddof=1), b.var(ddof=1)
    cov = ((a - mu_a) * (b - mu_b)).sum() / (a.size - 1)
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def test_ssim_against_formula():
    target = np.random.default_rng(4).uniform(0, 1, (2, 10, 11))
    pred = np.clip(target + np.random.default_rng(5).normal(0, 0.1, target.shape), 0, 1)
    # whole image: skimage's mean over pixels whose window fits (borders cropped by 3)
    expected = np.mean([_ssim_loop(pred, target, i, j, c)
                        for c in range(2) for i in range(3, 7) for j in range(3, 8)])
    assert ssim(pred, target) == pytest.approx(expected, rel=1e-9)
    mask = _interior_hole()  # every hole pixel has a full window
    hole = [(i, j) for i in range(10) for j in range(11) if mask[0, i, j]]
    expected_hole = np.mean([_ssim_loop(pred, target, i, j, c) for c in range(2) for i, j in hole])
    assert ssim(pred, target, mask) == pytest.approx(expected_hole, rel=1e-9)


def test_evaluate_pair_keys_and_regions():
    target = np.random.default_rng(6).uniform(0, 1, (3, 12, 12))
    mask = _interior_hole(12, 12)
    pred = np.where(mask > 0, 1 - target, target)  # wrong only inside the hole
    scores = evaluate_pair(pred, target, mask)
    names = ["l1", "l2", "psnr", "tv", "tv_target", "ssim"]
    artefacts = {"colour_bias_hole", "seam_hole", "grid_hole"}
    assert set(scores) == {f"{n}_{r}" for n in names for r in ("all", "hole")} | artefacts
    assert scores["l1_hole"] == pytest.approx(scores["l1_all"] * 144 / mask.sum())
    assert scores["psnr_hole"] < scores["psnr_all"]
    assert scores["tv_target_all"] == pytest.approx(total_variation(target))


def test_metric_input_errors():
    image = np.zeros((3, 8, 8))
    with pytest.raises(ValueError, match="to_unit"):
        l1_error(image - 1, image)
    with pytest.raises(ValueError, match="shapes differ"):
        l2_error(image, np.zeros((3, 8, 9)))
    with pytest.raises(ValueError, match="no hole"):
        psnr(image, image, np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="mask"):
        l1_error(image, image, np.ones((2, 8, 8)))
    with pytest.raises(ValueError, match="7x7"):
        ssim(np.zeros((3, 5, 5)), np.zeros((3, 5, 5)))
    np.testing.assert_allclose(to_unit(np.array([-1.0, 0.0, 1.0])), [0.0, 0.5, 1.0])


# ----------------------------------------------------------------------------- baselines

def _ramp(h=12, w=13):
    i, j = np.mgrid[0:h, 0:w]
    return np.stack([i / h - 0.5, j / w - 0.5, (i + j) / (h + w) - 0.3]).astype(np.float32)


def test_mean_fill_uses_the_known_mean_colour():
    image = np.random.default_rng(7).uniform(-1, 1, (3, 9, 8)).astype(np.float32)
    mask = np.zeros((1, 9, 8), np.float32)
    mask[0, 2:5, 1:6] = 1
    out = mean_fill(image, mask)
    assert out.dtype == np.float32 and out.shape == image.shape
    known = mask[0] == 0
    np.testing.assert_array_equal(out[:, known], image[:, known])
    for c in range(3):
        np.testing.assert_allclose(out[c, ~known], image[c, known].mean(), rtol=1e-6)


def test_harmonic_fill_solves_the_discrete_laplace_equation():
    image = np.random.default_rng(8).uniform(-1, 1, (3, 9, 10)).astype(np.float32)
    mask = np.zeros((9, 10))
    mask[0:4, 3:8] = 1  # touches the top border: Neumann there
    mask[6, 1] = 1
    out = harmonic_fill(image, mask).astype(np.float64)
    np.testing.assert_array_equal(out[:, mask == 0], image[:, mask == 0])
    for i, j in zip(*np.nonzero(mask)):
        neighbours = [(i + di, j + dj) for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))
                      if 0 <= i + di < 9 and 0 <= j + dj < 10]
        average = np.mean([out[:, a, b] for a, b in neighbours], axis=0)
        np.testing.assert_allclose(out[:, i, j], average, atol=1e-5)


@pytest.mark.parametrize("fill", [harmonic_fill, biharmonic_fill])
def test_smooth_fills_reproduce_a_linear_ramp(fill):
    image, mask = _ramp(), np.zeros((1, 12, 13))
    mask[0, 4:8, 3:9] = 1
    out = fill(image, mask)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, image, atol=2e-3)
    assert np.abs(mean_fill(image, mask) - image).max() > 0.1  # the ramp is not trivial


def test_baseline_errors():
    image = np.zeros((3, 6, 6), np.float32)
    with pytest.raises(ValueError, match="no known pixels"):
        mean_fill(image, np.ones((6, 6)))
    with pytest.raises(ValueError, match="mask"):
        harmonic_fill(image, np.zeros((1, 5, 6)))
    with pytest.raises(ValueError, match="image"):
        biharmonic_fill(np.zeros((6, 6)), np.zeros((6, 6)))


def test_evaluation_tables_are_checked_before_any_file_is_touched(tmp_path):
    """write_table builds the whole text first: a table that lacks a column is a named error
    and leaves an existing results file as it was. score_methods wants a real batch."""
    from inpainting.evaluation.evaluate import baseline_methods, score_methods, write_table

    for name in ("results.csv", "results.md"):
        path = tmp_path / name
        path.write_text("previous results\n")
        with pytest.raises(ValueError, match=r"the scores of 'model' lack the columns \['l2_hole'"):
            write_table({"model": {"l1_hole": 1.0}}, path, columns=["l1_hole", "l2_hole"])
        assert path.read_text() == "previous results\n"
        write_table({"model": {"l1_hole": 1.0}}, path, columns=["l1_hole"])
        assert "1" in path.read_text() and "previous" not in path.read_text()
    mask = np.zeros((1, 1, 16, 16), np.float32)
    mask[..., 4:12, 4:12] = 1
    with pytest.raises(ValueError, match=r"images must be a non-empty \(N, 3, H, W\) batch, "
                                         r"got shape \(0, 3, 16, 16\)"):
        score_methods(baseline_methods(), np.zeros((0, 3, 16, 16), np.float32), mask)


def test_to_display_wants_one_image():
    from inpainting.training.viz import to_display

    image = np.linspace(-1, 1, 3 * 2 * 2).reshape(3, 2, 2)
    np.testing.assert_array_equal(to_display(image)[..., 0],
                                  np.clip((image[0] + 1) * 127.5, 0, 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"expected one \(3, H, W\) image, got shape \(2, 3, 2, 2\)"):
        to_display(np.stack([image, image]))


# ----------------------------------------------------------------------------- edge rules

def test_values_just_outside_unit_range_are_refused_but_rounding_noise_is_not():
    """Metrics expect [0, 1]: 1.005 or -0.005 is refused (a [-1, 1] or 0-255 image slipped in),
    while a float error of 1e-9 beyond the range is accepted."""
    image = np.full((3, 8, 8), 0.5)
    for bad in (1.005, -0.005):
        wrong = image.copy()
        wrong[1, 2, 3] = bad
        with pytest.raises(ValueError, match="to_unit"):
            l1_error(wrong, image)
        with pytest.raises(ValueError, match="to_unit"):
            l1_error(image, wrong)
    edge = image.copy()
    edge[0, 0, 0], edge[0, 0, 1] = 1 + 1e-9, -1e-9
    assert l1_error(edge, image) == pytest.approx(100 * (0.5 + 1e-9 + 0.5 + 1e-9) / 192)


def test_masked_total_variation_counts_pairs_on_every_side_of_an_interior_hole():
    """A pair (p, q) weighs max(M_p, M_q): the seam pairs to the left, right, above and below a
    hole that touches no image border all count, checked against a loop over pairs."""
    rng = np.random.default_rng(11)
    image = rng.uniform(0, 1, (2, 9, 10))
    mask = np.zeros((1, 9, 10))
    mask[0, 3:6, 4:7] = 1.0                      # interior: a known pixel on every side
    total = count = 0.0
    for c in range(2):
        for i in range(9):
            for j in range(10):
                for di, dj in ((1, 0), (0, 1)):
                    if i + di < 9 and j + dj < 10:
                        weight = max(mask[0, i, j], mask[0, i + di, j + dj])
                        total += weight * abs(image[c, i, j] - image[c, i + di, j + dj])
                        count += weight
    assert count == 2 * (12 + 12)       # per channel: 12 pairs inside, 12 across the seam
    assert total_variation(image, mask) == pytest.approx(100 * total / count, rel=1e-12)


def test_total_variation_of_a_single_row_or_column():
    """A 1-pixel-high (or -wide) image has only horizontal (or vertical) pairs: its TV is their
    mean, not an error; a single pixel has no pair at all and is refused."""
    row = np.array([[[0.0, 0.5, 0.25, 1.0]]])              # (1, 1, 4)
    expected = 100 * (0.5 + 0.25 + 0.75) / 3
    assert total_variation(row) == pytest.approx(expected)
    assert total_variation(row.transpose(0, 2, 1)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="two pixels"):
        total_variation(np.zeros((3, 1, 1)))


def test_ssim_accepts_exactly_seven_pixels():
    """The 7x7 window fits a 7x7 image: one SSIM value per channel (the centre pixel)."""
    target = np.random.default_rng(12).uniform(0, 1, (2, 7, 7))
    pred = np.clip(target + np.random.default_rng(13).normal(0, 0.1, target.shape), 0, 1)
    expected = np.mean([_ssim_loop(pred, target, 3, 3, c) for c in range(2)])
    assert ssim(pred, target) == pytest.approx(expected, rel=1e-9)


def test_evaluate_pair_hole_ssim_is_averaged_over_the_hole():
    """ssim_hole is the SSIM map averaged over hole pixels (formula loop), not the whole-image
    value; ssim_all is the mean over pixels whose window fits."""
    target = np.random.default_rng(14).uniform(0, 1, (2, 10, 11))
    mask = _interior_hole()
    pred = np.where(mask > 0, np.clip(target + 0.3, 0, 1), target)   # wrong only in the hole
    scores = evaluate_pair(pred, target, mask)
    hole = [(i, j) for i in range(10) for j in range(11) if mask[0, i, j]]
    expected_hole = np.mean([_ssim_loop(pred, target, i, j, c) for c in range(2) for i, j in hole])
    expected_all = np.mean([_ssim_loop(pred, target, i, j, c)
                            for c in range(2) for i in range(3, 7) for j in range(3, 8)])
    assert scores["ssim_hole"] == pytest.approx(expected_hole, rel=1e-9)
    assert scores["ssim_all"] == pytest.approx(expected_all, rel=1e-9)
    assert abs(expected_hole - expected_all) > 1e-3
