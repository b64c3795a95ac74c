"""scripts/plot_training_curves.py: the training run's loss and validation figure."""
import csv
import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "plot_training_curves",
    Path(__file__).resolve().parents[1] / "scripts" / "plot_training_curves.py")
curves = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(curves)


def _log(path, steps):
    with open(path, "w") as stream:
        for step in steps:
            stream.write(json.dumps({"step": step, "l1": step / 100, "ae": 0.1}) + "\n")
        stream.write(json.dumps({"step": steps[-1], "event": "stopped"}) + "\n")   # no l1


def test_parts_are_joined_on_one_step_axis(tmp_path):
    _log(tmp_path / "a.jsonl", [25, 50])
    _log(tmp_path / "b.jsonl", [25, 50])
    points = curves.read_parts(f"{tmp_path / 'a.jsonl'},{tmp_path / 'b.jsonl'}@50")
    assert points == [(25, 0.25), (50, 0.5), (75, 0.25), (100, 0.5)]


def test_running_mean_against_a_plain_loop():
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]
    for window in (1, 2, 3, 10):
        expected = [sum(values[max(0, k - window + 1):k + 1]) / len(values[max(0, k - window + 1):k + 1])
                    for k in range(len(values))]
        assert curves.running_mean(values, window) == pytest.approx(expected)


def test_selection_rows_sorted_by_step_with_harmonic(tmp_path):
    path = tmp_path / "sel.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, ["step", "set", "l1_hole", "harmonic_l1_hole"])
        writer.writeheader()
        for step, value in ((1000, 9.0), (500, 11.0)):
            writer.writerow({"step": step, "set": "suite", "l1_hole": value,
                             "harmonic_l1_hole": 12.0})
    assert curves.read_selection(path) == {"suite": ([500, 1000], [11.0, 9.0], 12.0)}


def test_the_command_writes_a_png_and_bad_arguments_are_one_line(tmp_path):
    _log(tmp_path / "a.jsonl", [25, 50, 75])
    out = tmp_path / "curves.png"
    with open(tmp_path / "sel.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, ["step", "set", "l1_hole", "harmonic_l1_hole"])
        writer.writeheader()
        writer.writerow({"step": 50, "set": "photos", "l1_hole": 7, "harmonic_l1_hole": 4})
    assert curves.main(["--log", f"run={tmp_path / 'a.jsonl'}",
                        "--selection", f"run={tmp_path / 'sel.csv'}", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "curves.png", "sel.csv"]
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        curves.main(["--log", str(tmp_path / "a.jsonl"), "--out", str(out)])
    with pytest.raises(SystemExit, match="no file"):
        curves.main(["--log", f"run={tmp_path / 'missing.jsonl'}", "--out", str(out)])
    with pytest.raises(SystemExit, match="at least one"):
        curves.main(["--out", str(out)])
