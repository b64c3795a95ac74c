"""scripts/evaluate_checkpoints.py: the validation table checkpoints are chosen by."""
import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpainting.training.config import TrainConfig
from inpainting.evaluation.evaluate import run_protocol
from inpainting.evaluation.evaluation_stats import summarise
from inpainting.weights.model_io import load_generator
from inpainting.training.train import Trainer

_spec = importlib.util.spec_from_file_location(
    "evaluate_checkpoints",
    Path(__file__).resolve().parents[1] / "scripts" / "evaluate_checkpoints.py")
selection = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(selection)

FAST = dict(image_size=32, bbox_size=16, max_delta=2, batch_size=2, cnum=4, critic_cnum=4,
            checkpoint_every=2, sample_every=1000, log_every=1, warmup_iterations=4,
            iterations=4)


@pytest.fixture(scope="module")
def run_and_val(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    Trainer(TrainConfig(out_dir=str(root / "run"), **FAST)).run(progress=False)
    rng = np.random.default_rng(0)
    for folder, count in (("photos", 2), ("textures", 3)):
        (root / "val" / folder).mkdir(parents=True)
        for k in range(count):
            pixels = rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "val" / folder / f"{k}.png")
    return root / "run", root / "val"


def _rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_rows_per_checkpoint_and_set_equal_the_protocol(run_and_val, tmp_path):
    run, val = run_and_val
    out = tmp_path / "selection.csv"
    argv = [str(run), "--val", str(val), "--every", "2", "--texture-stride", "2",
            "--size", "32", "--out", str(out)]
    assert selection.main(argv) == 0
    rows = _rows(out)
    assert [(r["step"], r["set"]) for r in rows] == [
        (step, name) for step in ("2", "4") for name in ("suite", "textures", "photos")]
    assert {r["images"] for r in rows if r["set"] == "textures"} == {"2"}   # every 2nd of 3
    photos = [r for r in rows if r["set"] == "photos"]
    assert photos[0]["harmonic_l1_hole"] == photos[1]["harmonic_l1_hole"]  # same crops
    generator = load_generator(run / "checkpoints" / "step_0000004.npz")
    sources = selection.image_sources(val / "photos", False, 32)
    records, _ = run_protocol(sources, size=32, holes=("centre", "random"), crops_per_image=2,
                              seed=0, baselines=[], generator=generator)
    expected = summarise(records)["model"]
    assert float(photos[1]["l1_hole"]) == pytest.approx(expected["l1_hole"], rel=1e-3)
    assert float(photos[1]["attention_hits"]) == pytest.approx(expected["attention_hits"],
                                                               rel=1e-3)
    assert selection.main(argv) == 0            # a second call adds nothing
    assert len(_rows(out)) == len(rows)


def test_bad_folders_are_one_line_errors(run_and_val, tmp_path):
    run, val = run_and_val
    with pytest.raises(SystemExit, match="photos/ and textures/"):
        selection.main([str(run), "--val", str(tmp_path), "--out", str(tmp_path / "x.csv")])
    with pytest.raises(SystemExit, match="no checkpoints"):
        selection.main([str(tmp_path), "--val", str(val), "--out", str(tmp_path / "x.csv")])


def test_step_offset_and_a_single_model_file(run_and_val, tmp_path):
    """A run continued from weights trained K steps files its rows at K + step; a model file
    is one row per set at step K, scoring exactly what the same checkpoint in a run scores."""
    run, val = run_and_val
    common = ["--val", str(val), "--texture-stride", "3", "--size", "32"]
    assert selection.main([str(run), *common, "--every", "4", "--step-offset", "100",
                           "--out", str(tmp_path / "run.csv")]) == 0
    in_run = _rows(tmp_path / "run.csv")
    assert [(r["step"], r["set"]) for r in in_run] == [
        ("104", name) for name in ("suite", "textures", "photos")]
    # --every counts on the table's axis: offset 98 puts local steps 2 and 4 at 100 and 102
    assert [step for step, _ in selection.chosen_checkpoints(run, 50, 98)] == [100, 102]
    assert [step for step, _ in selection.chosen_checkpoints(run, 50, 100)] == [104]  # newest only
    model_file = run / "checkpoints" / "step_0000004.npz"
    assert selection.main([str(model_file), *common, "--step-offset", "104",
                           "--out", str(tmp_path / "file.csv")]) == 0
    assert _rows(tmp_path / "file.csv") == in_run
    with pytest.raises(SystemExit, match="--step-offset"):
        selection.main([str(model_file), *common, "--step-offset", "-1",
                        "--out", str(tmp_path / "x.csv")])
