"""Draw a training run's evidence in one figure: the training loss and the validation table.

    python scripts/plot_training_curves.py \
        --log "attention=training/corpus_cnum16_log.jsonl,training/corpus_cnum16_part2_log.jsonl@3500" \
        --log "no attention=training/corpus_cnum16_noattn_log.jsonl,training/corpus_cnum16_noattn_part2_log.jsonl@3250" \
        --selection "attention=training/corpus_cnum16_selection.csv" \
        --selection "no attention=training/corpus_cnum16_noattn_selection.csv" \
        --out docs/images/corpus_cnum16_curves.png

Left panel: the reconstruction loss ``l1`` of each run's ``log.jsonl`` against the generator
step, as a running mean over ``--smooth`` logged points (batches of 8 make single points
noisy). A run made of several parts lists their logs separated by commas; ``LOG@K`` adds K
to that part's steps (a part that started from ``--init-weights`` counts from 0 again).

Other panels, one per validation set of ``scripts/evaluate_checkpoints.py`` (suite, textures,
photos): each run's hole L1 (%) against the step, and harmonic's hole L1 as a dashed line —
the level a trained model has to get under.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from matplotlib.figure import Figure

from nnlite.serialization import atomic_write

SETS = ("suite", "textures", "photos")
TITLES = {"suite": "periodic texture suite", "textures": "validation textures",
          "photos": "validation photos"}


def named(text, flag):
    """'name=value' -> (name, value), with a one-line error naming the flag."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise SystemExit(f"{flag} {text!r}: expected NAME=VALUE")
    return name, value


def read_parts(spec):
    """'a.jsonl,b.jsonl@3500' -> [(step, l1)] of both logs, b's steps shifted by 3500."""
    points = []
    for part in spec.split(","):
        path, _, offset = part.partition("@")
        path = Path(path)
        if not path.is_file():
            raise SystemExit(f"--log: no file {path}")
        shift = int(offset) if offset else 0
        with open(path) as stream:
            for line in stream:
                if line.strip():
                    record = json.loads(line)
                    if "l1" in record:
                        points.append((record["step"] + shift, record["l1"]))
    return sorted(points)


def running_mean(values, window):
    """Mean of the last ``window`` values at each position (fewer at the start)."""
    out, total = [], 0.0
    for k, value in enumerate(values):
        total += value
        if k >= window:
            total -= values[k - window]
        out.append(total / min(k + 1, window))
    return out


def read_selection(path):
    """{set: ([step], [model hole L1], harmonic hole L1)} from an evaluate_checkpoints CSV."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"--selection: no file {path}")
    table = {}
    with open(path, newline="") as stream:
        for row in csv.DictReader(stream):
            steps, l1, _ = table.setdefault(row["set"], ([], [], float(row["harmonic_l1_hole"])))
            steps.append(int(row["step"]))
            l1.append(float(row["l1_hole"]))
    for name, (steps, l1, harmonic) in table.items():
        order = sorted(range(len(steps)), key=steps.__getitem__)
        table[name] = ([steps[k] for k in order], [l1[k] for k in order], harmonic)
    return table


def curves_figure(logs, selections, smooth=20):
    """The figure (module docstring). ``logs``: [(run name, [(step, l1)])];
    ``selections``: [(run name, read_selection table)]."""
    figure = Figure(figsize=(4 * (1 + len(SETS)), 3.2))
    axes = figure.subplots(1, 1 + len(SETS))
    for name, points in logs:
        if points:
            steps, values = zip(*points)
            axes[0].plot(steps, running_mean(list(values), smooth), label=name)
    axes[0].set_title(f"training l1 (running mean of {smooth} logs)")
    axes[0].set_xlabel("generator step")
    for axis, set_name in zip(axes[1:], SETS):
        harmonic = None
        for name, table in selections:
            if set_name in table:
                steps, l1, harmonic = table[set_name]
                axis.plot(steps, l1, marker="o", markersize=3, label=name)
        if harmonic is not None:
            axis.axhline(harmonic, color="gray", linestyle="--", linewidth=1, label="harmonic")
        axis.set_title(f"{TITLES[set_name]}: hole L1 %")
        axis.set_xlabel("generator step")
    for axis in axes:
        if axis.lines:
            axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", action="append", default=[],
                        help="NAME=LOG[,LOG@OFFSET...]: a run's training logs (repeatable)")
    parser.add_argument("--selection", action="append", default=[],
                        help="NAME=CSV: a run's evaluate_checkpoints table (repeatable)")
    parser.add_argument("--smooth", type=int, default=20, help="running-mean window (default 20)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    if not args.log and not args.selection:
        raise SystemExit("give at least one --log or --selection")
    if args.smooth < 1:
        raise SystemExit("--smooth must be at least 1")
    logs = [(name, read_parts(spec)) for name, spec in (named(t, "--log") for t in args.log)]
    selections = [(name, read_selection(path))
                  for name, path in (named(t, "--selection") for t in args.selection)]
    figure = curves_figure(logs, selections, args.smooth)
    with atomic_write(args.out) as stream:          # never a half-written picture
        figure.savefig(stream, format="png", dpi=80)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
