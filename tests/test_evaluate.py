"""The evaluation protocol: crops and holes, summaries against slow references, the paired
bootstrap against a hand computation, attention_hits where the answer is known, the texture
suite, the OpenCV baselines and the ``inpainting evaluate`` command."""
import csv
import math
import sys

import numpy as np
import pytest
from PIL import Image

from inpainting.app import cli
from inpainting.evaluation.baselines import MissingExtraError, exemplar_fill, ns_fill, telea_fill
from inpainting.evaluation.evaluate import (choose_baselines, crop_windows, hole_mask, image_sources,
                                 run_protocol)
from inpainting.evaluation.evaluation_stats import (PSNR_CAP, bootstrap_indices, paired_bootstrap,
                                         paired_table, summarise)
from inpainting.evaluation.metrics import attention_hits, evaluate_pair, to_unit, valid_attention_cells
from inpainting.weights.model_io import save_generator
from inpainting.model.networks import InpaintGenerator
from inpainting.data.textures import TEXTURE_SUITE, texture_suite


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    save_generator(path, InpaintGenerator(4, rng=np.random.default_rng(0)), image_size=32)
    return path


def _folder(tmp_path, sizes=((40, 52), (20, 30))):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, size in enumerate(sizes):
        pixels = np.random.default_rng(k).integers(0, 256, size + (3,), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{k}.png")
    return folder


# ----------------------------------------------------------------------------- crops and holes

def test_crops_are_windows_at_the_images_own_scale():
    """Each crop is pixels[top:top+S, left:left+S] of the image (no resize); corners are the
    generator's draws, uniform over every position; a small image is scaled up keeping its
    aspect ratio (sides rounded up) until it covers S x S."""
    pixels = np.random.default_rng(0).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    crops = crop_windows(pixels, 32, 50, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    corners = set()
    for crop, top, left, scale in crops:
        assert (top, left) == (int(rng.integers(0, 9)), int(rng.integers(0, 39))) and scale == 1
        np.testing.assert_array_equal(crop, pixels[top:top + 32, left:left + 32]
                                      .transpose(2, 0, 1) / np.float32(127.5) - 1)
        corners.add((top, left))
    assert len(corners) > 40
    small = pixels[:20, :30]                              # 20 x 30 -> scale 1.6 -> 32 x 48
    (crop, top, left, scale), = crop_windows(small, 32, 1, np.random.default_rng(1))
    big = np.asarray(Image.fromarray(small).resize((48, 32), Image.BILINEAR))
    assert scale == pytest.approx(1.6) and top == 0
    np.testing.assert_array_equal(crop, big[:, left:left + 32].transpose(2, 0, 1)
                                  / np.float32(127.5) - 1)


def test_holes_are_half_size_squares():
    mask, box = hole_mask("centre", 32, None)
    assert box == (8, 8, 16, 16) and mask.sum() == 256 and mask[0, 0, 8:24, 8:24].all()
    tops = set()
    for seed in range(40):
        mask, (top, left, h, w) = hole_mask("random", 32, np.random.default_rng(seed))
        assert (h, w) == (16, 16) and 0 <= top <= 16 and 0 <= left <= 16
        assert mask[0, 0, top:top + 16, left:left + 16].all() and mask.sum() == 256
        tops.add(top)
    assert {0, 16} <= tops
    with pytest.raises(ValueError, match="hole must be one of"):
        hole_mask("square", 32, None)


def test_protocol_scores_equal_evaluate_pair_on_each_crop(tiny_model):
    """Every record is evaluate_pair of that method's fill of that crop (recomputed here from
    the recorded corner and hole); records = images x K x holes x methods; seeded."""
    from inpainting.evaluation.baselines import harmonic_fill
    from inpainting.weights.model_io import load_generator

    sources = [("a", lambda: np.random.default_rng(1).integers(0, 256, (40, 48, 3), np.uint8)),
               ("b", lambda: np.random.default_rng(2).integers(0, 256, (32, 32, 3), np.uint8))]
    generator = load_generator(tiny_model)
    args = dict(size=32, holes=("centre", "random"), crops_per_image=2, seed=3,
                baselines=["harmonic"], generator=generator)
    records, crops = run_protocol(sources, **args)
    assert len(records) == 2 * 2 * 2 * 2 and len(crops) == 8
    again, _ = run_protocol(sources, **args)
    assert [r["l1_hole"] for r in again] == [r["l1_hole"] for r in records]
    for record in records:
        where = crops[record["crop_id"]]
        pixels = sources[where["image"]][1]()
        crop = pixels[where["top"]:where["top"] + 32, where["left"]:where["left"] + 32]
        crop = crop.transpose(2, 0, 1) / np.float32(127.5) - 1
        mask = np.zeros((1, 32, 32), np.float32)
        top, left, h, w = where["hole_box"]
        mask[0, top:top + h, left:left + w] = 1
        if record["method"] == "harmonic":
            expected = evaluate_pair(to_unit(harmonic_fill(crop, mask)), to_unit(crop), mask)
            assert {k: record[k] for k in expected} == pytest.approx(expected)
        else:
            assert 0 <= record["attention_hits"] <= 1


# ----------------------------------------------------------------------------- summaries

def _records():
    """Two images (3 crops and 1 crop), two methods; psnr from l2 except one exact crop."""
    rows = []
    values = {"m": [(2.0, 0.5), (4.0, 1.0), (6.0, 0.0), (8.0, 2.0)],
              "b": [(3.0, 1.0), (4.0, 0.25), (5.0, 0.5), (9.0, 4.0)]}
    for method, pairs in values.items():
        for crop_id, (l1, l2) in enumerate(pairs):
            scores = {}
            for region in ("hole", "all"):
                scores.update({f"l1_{region}": l1, f"l2_{region}": l2,
                               f"psnr_{region}": math.inf if l2 == 0 else 10 * math.log10(100 / l2),
                               f"ssim_{region}": l1 / 10, f"tv_{region}": l2,
                               f"tv_target_{region}": 1.0})
            rows.append({"image": 0 if crop_id < 3 else 1, "crop_id": crop_id, "method": method,
                         "hole": "centre", **scores})
    return rows


def test_summary_against_a_hand_computation():
    table = summarise(_records())
    m, b = table["m"], table["b"]
    assert m["l1_hole"] == pytest.approx(5.0) and m["n"] == 4
    # mean of per-crop PSNRs, the exact crop capped at PSNR_CAP
    expected = (10 * math.log10(200) + 10 * math.log10(100) + PSNR_CAP + 10 * math.log10(50)) / 4
    assert m["psnr_hole"] == pytest.approx(expected)
    # pooled: 10 log10(1 / mean MSE), MSE = l2 / 100
    assert m["psnr_hole_pooled"] == pytest.approx(10 * math.log10(1 / (0.875 / 100)))
    assert b["psnr_hole_pooled"] == pytest.approx(10 * math.log10(1 / (1.4375 / 100)))
    # hole L1 per crop: m 2<3, 4=4 (tie: both win), 6>5, 8<9
    assert (m["wins_l1"], b["wins_l1"]) == (3, 2)
    assert m["tv_hole_target"] == 1.0 and math.isnan(m["attention_hits"])


def test_paired_bootstrap_against_a_hand_computation():
    """Three images with 1, 2 and 1 crops; four explicit draws of images. Each draw's
    statistic is (sum of the drawn images' model sums - baseline sums) / drawn crops."""
    model, base, counts = [1.0, 5.0, 2.0], [2.0, 3.0, 2.5], [1, 2, 1]
    draws = np.array([[0, 0, 1], [1, 2, 2], [2, 0, 1], [0, 1, 2]])
    by_hand = [(1 + 1 + 5 - (2 + 2 + 3)) / 4,          # images 0, 0, 1: 4 crops
               (5 + 2 + 2 - (3 + 2.5 + 2.5)) / 4,      # images 1, 2, 2
               (2 + 1 + 5 - (2.5 + 2 + 3)) / 4,        # images 2, 0, 1
               (1 + 5 + 2 - (2 + 3 + 2.5)) / 4]        # images 0, 1, 2
    estimate, low, high = paired_bootstrap(model, base, counts, draws)
    assert estimate == pytest.approx((8 - 7.5) / 4)
    # numpy's linear percentile of the sorted by_hand values [-0.25, 0.125, 0.125, 0.25]
    ordered = sorted(by_hand)
    assert low == pytest.approx(ordered[0] + 0.075 * (ordered[1] - ordered[0]))
    assert high == pytest.approx(ordered[2] + 0.925 * (ordered[3] - ordered[2]))
    # pooled PSNR: the sums are MSEs; 10 log10(base mean / model mean)
    estimate, _, _ = paired_bootstrap(model, base, counts, draws, pooled_psnr=True)
    assert estimate == pytest.approx(10 * math.log10(7.5 / 8))
    np.testing.assert_array_equal(bootstrap_indices(3, 4, 7),
                                  np.random.default_rng([7, 1414]).integers(0, 3, (4, 3)))


def test_the_bootstrap_resamples_images_not_crops():
    """With one image holding three crops and another one, a draw takes all three crops of
    image 0 or none: the interval's ends are statistics of whole-image draws."""
    rows = paired_table(_records(), "m", ["b"], resamples=500, seed=0)
    l1 = next(r for r in rows if r["metric"] == "l1_hole")
    assert l1["images"] == 2 and l1["model_minus_baseline"] == pytest.approx((20 - 21) / 4)
    # possible draws: (0, 0): (12-12)/3*... every value of the form (k0*0 + k1*(-1)) / (3 k0 + k1)
    possible = {round((k1 * -1.0) / (3 * k0 + k1), 9) for k0, k1 in ((2, 0), (1, 1), (0, 2))}
    assert round(l1["ci_low"], 9) in possible and round(l1["ci_high"], 9) in possible
    assert {r["metric"] for r in rows} == {"l1_hole", "psnr_hole", "psnr_hole_pooled"}


# ----------------------------------------------------------------------------- attention_hits

def test_attention_hits_on_stripes_where_the_answer_is_known():
    """Horizontal stripes of period 16 px = 2 attention cells: a source an even number of
    cells above or below copies the same window (a hit); an odd number of cells is half a
    period off (a miss); an invalid source (in or next to the hole) is a miss."""
    names, images = texture_suite(64)
    stripes = to_unit(images[names.index("stripes-0-p16")])
    np.testing.assert_array_equal(stripes[:, 16:], stripes[:, :-16])     # period 16 exactly
    assert np.abs(stripes[:, 8:] - stripes[:, :-8]).mean() > 0.05       # not period 8
    mask = np.zeros((1, 64, 64))
    mask[0, 16:48, 16:48] = 1                                            # cells 2..5
    h = w = 8
    valid = valid_attention_cells(mask).reshape(h, w)
    assert not valid[1:7, 1:7].any() and valid[0].all() and valid[:, 7].all()

    def one_hot(source):
        attention = np.zeros((h, w, h, w))
        for i in range(h):
            for j in range(w):
                attention[(i, j) + source(i, j)] = 1.0
        return attention

    hole = [(i, j) for i in range(2, 6) for j in range(2, 6)]
    # rows 2, 4 copy from row 0, rows 3, 5 from row 7 (7 - 3 = 4 cells, 7 - 5 = 2): all hits
    even = one_hot(lambda i, j: (0, j) if i % 2 == 0 else (7, j))
    assert attention_hits(even, stripes, mask) == 1.0
    odd = one_hot(lambda i, j: (0, j) if i % 2 == 1 else (7, j))         # half a period off
    assert attention_hits(odd, stripes, mask) == 0.0
    half = one_hot(lambda i, j: (0, j) if i in (2, 3) else (7, j))       # rows 2, 5 right
    assert attention_hits(half, stripes, mask) == 0.5
    invalid = one_hot(lambda i, j: (i, j))                               # itself: in the hole
    assert attention_hits(invalid, stripes, mask) == 0.0
    assert len(hole) == 16
    with pytest.raises(ValueError, match="no attention cell lies wholly in the hole"):
        attention_hits(even, stripes, np.pad(np.ones((1, 4, 4)), ((0, 0), (2, 58), (2, 58))))


def test_attention_hits_uses_the_tolerance_against_the_best_valid_window():
    """A slow reference over all (hole cell, source) pairs with the 1 % rule."""
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 1, (3, 48, 48))
    target[:, :, 40:] = target[:, :, 16:24].mean(axis=2, keepdims=True)   # a near copy
    mask = np.zeros((1, 48, 48))
    mask[0, 14:28, 16:32] = 1                       # whole cells (2, 2) and (2, 3) only
    scores = rng.uniform(0, 1, (36, 36))
    scores[14, 5] = scores[15, 11] = 5.0            # argmax sources of the two hole cells
    valid = valid_attention_cells(mask)
    assert valid[5] and valid[11] and 0 < valid.sum() < 36
    blocks = [target[:, 8 * (c // 6):8 * (c // 6) + 8, 8 * (c % 6):8 * (c % 6) + 8]
              for c in range(36)]
    hits = cells = 0
    for p in range(36):
        if mask[0, 8 * (p // 6):8 * (p // 6) + 8, 8 * (p % 6):8 * (p % 6) + 8].min() < 1:
            continue
        cells += 1
        errors = [100 * np.abs(blocks[q] - blocks[p]).mean() for q in range(36)]
        best = min(errors[q] for q in range(36) if valid[q])
        chosen = int(np.argmax(scores[p]))
        hits += valid[chosen] and errors[chosen] <= best + 1.0
    assert cells == 2
    attention = scores.reshape(6, 6, 6, 6)
    assert attention_hits(attention, target, mask) == hits / cells
    assert attention_hits(attention, target, mask, tolerance=1e6) == 1.0


# ----------------------------------------------------------------------------- textures

def test_texture_suite_is_seeded_periodic_and_not_the_training_textures():
    names, images = texture_suite(96)
    again_names, again = texture_suite(96)
    assert names == again_names == [row[0] for row in TEXTURE_SUITE] and len(set(names)) == 17
    np.testing.assert_array_equal(images, again)
    assert images.shape == (17, 3, 96, 96) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    assert not np.array_equal(texture_suite(96, seed=1)[1], images)
    for name, dy, dx in (("stripes-0-p16", 16, 1), ("stripes-90-p20", 1, 20),
                         ("brick-running-32x16", 32, 32), ("brick-stack-24x12", 12, 24),
                         ("tiles-square-24", 24, 24), ("weave-plain-10", 20, 20),
                         ("dots-square-16", 16, 16), ("checker-12x20", 40, 24),
                         ("noise-tile-32", 32, 32), ("noise-tile-20", 20, 20)):
        image = images[names.index(name)]
        np.testing.assert_array_equal(image[:, dy:], image[:, :-dy], err_msg=name)
        np.testing.assert_array_equal(image[:, :, dx:], image[:, :, :-dx], err_msg=name)
        assert image.std() > 0.05, name
    with pytest.raises(ValueError, match="size must be an integer >= 8"):
        texture_suite(4)


# ----------------------------------------------------------------------------- OpenCV baselines

def test_opencv_baselines_keep_known_pixels_and_exemplar_copies_a_texture():
    names, images = texture_suite(64)
    image = images[names.index("weave-plain-10")]
    mask = np.zeros((1, 64, 64), np.float32)
    mask[0, 16:48, 16:48] = 1
    for fill in (telea_fill, ns_fill, exemplar_fill):
        out = fill(image, mask)
        assert out.shape == image.shape and out.dtype == np.float32
        np.testing.assert_array_equal(out[:, mask[0] == 0], image[:, mask[0] == 0])
    l1 = lambda out: 100 * np.abs(out - image)[:, mask[0] > 0].mean() / 2   # noqa: E731
    assert l1(exemplar_fill(image, mask)) < 3 < l1(telea_fill(image, mask))


def test_missing_opencv_is_one_line_naming_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "cv2", None)                # import cv2 -> ImportError
    image, mask = np.zeros((3, 16, 16), np.float32), np.zeros((1, 16, 16), np.float32)
    mask[0, 4:8, 4:8] = 1
    for fill in (telea_fill, ns_fill, exemplar_fill):
        with pytest.raises(MissingExtraError, match=r"deepfill-nnlite\[eval\]"):
            fill(image, mask)
    assert "telea" not in choose_baselines(None) and "harmonic" in choose_baselines(None)
    folder = _folder(tmp_path)
    assert cli.main(["evaluate", "--data", str(folder), "--size", "16", "--baselines-only",
                     "--baselines", "harmonic,exemplar"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[eval]" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- the command

def test_evaluate_command_writes_the_tables_and_the_figure(tmp_path, tiny_model, capsys):
    folder = _folder(tmp_path)
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "results.csv"
    argv = ["evaluate", "--data", str(folder), "--size", "32", "--hole", "both",
            "--crops-per-image", "2", "--seed", "4", "--weights", str(tiny_model),
            "--baselines", "mean,harmonic", "--out", str(out), "--per-image",
            "--figure", str(tmp_path / "fig.png"), "--bootstrap", "200"]
    with pytest.warns(RuntimeWarning, match="skipping unreadable image .*broken.png"):
        assert cli.main(argv) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    required = "method,l1_hole,l2_hole,psnr_hole,psnr_hole_pooled,ssim_hole,tv_hole," \
               "tv_hole_target,wins_l1,n".split(",")
    assert set(required) <= set(rows[0])
    assert [(r["hole"], r["method"]) for r in rows] == [
        (h, m) for h in ("centre", "random", "all") for m in ("model", "mean", "harmonic")]
    assert {r["n"] for r in rows} == {"4", "8"} and rows[0]["seed"] == "4"
    assert rows[0]["attention_hits"] != "" and rows[1]["attention_hits"] == ""
    for hole in ("centre", "random"):
        wins = sum(int(r["wins_l1"]) for r in rows if r["hole"] == hole)
        assert wins >= 4
    with open(tmp_path / "results_paired.csv", newline="") as handle:
        paired = list(csv.DictReader(handle))
    metrics = ["l1_hole", "psnr_hole", "psnr_hole_pooled", "colour_bias_hole", "seam_hole"]
    assert [r["metric"] for r in paired[:5]] == metrics
    assert len(paired) == 3 * 2 * len(metrics) and paired[0]["images"] == "2"
    with open(tmp_path / "results_per_image.csv", newline="") as handle:
        per_crop = list(csv.DictReader(handle))
    assert len(per_crop) == 2 * 2 * 2 * 3
    model_l1 = [float(r["l1_hole"]) for r in per_crop
                if r["method"] == "model" and r["hole"] == "centre"]
    assert float(rows[0]["l1_hole"]) == pytest.approx(np.mean(model_l1), rel=1e-5)
    assert Image.open(tmp_path / "fig.png").size[0] > 100
    import os
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.csv", "results_paired.csv", "fig.png"):       # not mkstemp's 0600
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    first = out.read_text()
    with pytest.warns(RuntimeWarning, match="skipping"):
        assert cli.main(argv) == 0                                  # seeded: same tables
    assert out.read_text() == first


def test_evaluate_defaults_to_the_texture_suite(capsys):
    assert cli.main(["evaluate", "--size", "16", "--crops-per-image", "1", "--baselines-only",
                     "--baselines", "mean"]) == 0
    out = capsys.readouterr().out
    assert "17 images (the built-in texture suite)" in out and "| mean | centre |" in out


def test_evaluate_bad_input_is_one_line(tmp_path, capsys):
    folder = _folder(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["evaluate", "--baselines-only", "--baselines", "mean"]
    for argv, message in (
            (["--data", str(empty)], "no images found"),
            (["--data", str(folder), "--size", "20"], "multiple of 8"),
            (["--data", str(folder), "--crops-per-image", "0"], "--crops-per-image must be at "
                                                                "least 1, got 0"),
            (["--data", str(tmp_path / "nowhere")], "does not exist"),
            (["--data", str(folder), "--baselines", "patchmatch"], "unknown 'patchmatch'"),
            (["--data", str(folder), "--out", str(tmp_path / "t.xlsx")], ".csv"),
            (["--data", str(folder), "--figure", str(tmp_path / "f.png")], "--figure")):
        assert cli.main(base + argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="skipping"):
        assert cli.main(base + ["--data", str(bad), "--size", "16"]) == 2
    assert "none of the 1 images could be read" in capsys.readouterr().err


def test_image_sources_cover_textures_and_folders(tmp_path):
    folder = _folder(tmp_path)
    sources = image_sources(str(folder), textures=True, size=16)
    assert len(sources) == 17 + 2 and sources[0][0] == "suite:stripes-0-p16"
    assert sources[0][1]().shape == (32, 32, 3) and sources[-1][1]().shape == (20, 30, 3)


def test_the_ablation_is_evaluated_like_the_full_model(tmp_path, capsys):
    """A model file saved with attention=False runs through the protocol; it has no
    attention, so its attention_hits cell is empty."""
    path = save_generator(tmp_path / "ablated.npz",
                          InpaintGenerator(4, attention=False, rng=np.random.default_rng(0)))
    out = tmp_path / "r.csv"
    assert cli.main(["evaluate", "--data", str(_folder(tmp_path)), "--size", "32",
                     "--crops-per-image", "1", "--weights", str(path), "--baselines", "mean",
                     "--out", str(out), "--bootstrap", "50"]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["method"] for r in rows] == ["model", "mean"]
    assert rows[0]["attention_hits"] == "" and rows[0]["n"] == "2"
