"""Score a training run's checkpoints on the validation split: the table checkpoints are chosen by.

    python scripts/evaluate_checkpoints.py ../runs/corpus_cnum16 --val corpus/val \
        --every 1000 --out training/corpus_cnum16_selection.csv

For each checkpoint whose step is a multiple of ``--every`` (and the newest), the evaluation
protocol (``inpainting evaluate``: seeded 128x128 crops, centred and random 64x64 holes) runs on
three validation sets, never on training images and never on the external test set:

* ``suite``: the built-in periodic texture suite (``inpainting/data/textures.py``);
* ``textures``: every ``--texture-stride``-th image of ``VAL/textures`` (sorted paths);
* ``photos``: every image of ``VAL/photos``.

One CSV row per (checkpoint, set): the model's hole L1 (%), pooled hole PSNR (dB), attention
hits, colour bias, seam and grid scores, with harmonic's beside them (computed once: the crops
are the same for every checkpoint). The choice of the shipped checkpoint is made on this table
only. Rows are appended as each checkpoint finishes, so an interrupted call keeps its work and
a second call skips the (step, set) rows already in ``--out``.

A run that started from another run's weights (``--init-weights``) counts its steps from 0;
``--step-offset K`` adds the K steps those weights had trained, so both runs share one step
axis in the table. ``run`` may also be a single model file (the shipped model, a committed
generator): it is scored as one row per set at step ``--step-offset``.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from inpainting.weights.checkpoint import list_checkpoints
from inpainting.evaluation.evaluate import image_sources, run_protocol
from inpainting.evaluation.evaluation_stats import summarise
from inpainting.weights.model_io import load_generator

COLUMNS = ["step", "set", "images", "crops", "l1_hole", "harmonic_l1_hole", "psnr_hole_pooled",
           "harmonic_psnr_hole_pooled", "attention_hits", "colour_bias_hole",
           "harmonic_colour_bias_hole", "seam_hole", "harmonic_seam_hole", "grid_hole",
           "harmonic_grid_hole"]
HOLES = ("centre", "random")


def validation_sets(val, texture_stride, size):
    """{name: [(image name, loader)]}: the three validation sets (module docstring)."""
    val = Path(val)
    for folder in ("photos", "textures"):
        if not (val / folder).is_dir():
            raise SystemExit(f"--val {val}: expected the corpus's validation split with "
                             f"photos/ and textures/ inside, found no {folder}/")
    return {"suite": image_sources(None, True, size),
            "textures": image_sources(val / "textures", False, size)[::texture_stride],
            "photos": image_sources(val / "photos", False, size)}


def score(sources, *, size, seed, generator=None, baselines=()):
    records, _ = run_protocol(sources, size=size, holes=HOLES, crops_per_image=2, seed=seed,
                              baselines=list(baselines), generator=generator)
    return summarise(records)


def row(step, name, sources, model, harmonic):
    value = lambda table, key: table.get(key, math.nan)   # noqa: E731
    out = {"step": step, "set": name, "images": len(sources), "crops": model["n"]}
    for key in ("l1_hole", "psnr_hole_pooled", "colour_bias_hole", "seam_hole", "grid_hole"):
        out[key] = value(model, key)
        out[f"harmonic_{key}"] = value(harmonic, key)
    out["attention_hits"] = value(model, "attention_hits")
    return {key: (f"{v:.4g}" if isinstance(v, float) else v) for key, v in out.items()}


def chosen_checkpoints(run, every, offset):
    """[(step on the table's axis, model file)]: the checkpoints whose step on the table's axis
    (offset + own step) is a multiple of ``every``, and the newest;
    a model file given instead of a run folder is one entry at step ``offset``."""
    if run.is_file():
        return [(offset, run)]
    paths = list_checkpoints(run / "checkpoints")
    if not paths:
        raise SystemExit(f"{run}: no checkpoints in {run / 'checkpoints'}")
    steps = [int(path.stem.split("_")[1]) for path in paths]     # step_0001000.npz
    return [(offset + step, path) for step, path in zip(steps, paths)
            if (offset + step) % every == 0 or path == paths[-1]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path,
                        help="a training run folder (holds checkpoints/) or one model file")
    parser.add_argument("--val", type=Path, required=True,
                        help="the corpus's validation split (photos/ and textures/)")
    parser.add_argument("--every", type=int, default=1000,
                        help="score checkpoints whose step is a multiple of this (default 1000)")
    parser.add_argument("--texture-stride", type=int, default=8,
                        help="score every k-th validation texture (default 8)")
    parser.add_argument("--size", type=int, default=128, help="crop side (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="crop and hole seed (default 0)")
    parser.add_argument("--step-offset", type=int, default=0,
                        help="steps the run's initial weights had trained, added to each "
                             "checkpoint's step (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="CSV to append rows to")
    args = parser.parse_args(argv)
    if args.every < 1 or args.texture_stride < 1 or args.step_offset < 0:
        raise SystemExit("--every and --texture-stride must be at least 1, --step-offset at "
                         "least 0")
    chosen = chosen_checkpoints(args.run, args.every, args.step_offset)
    done = set()
    if args.out.is_file():
        with open(args.out, newline="") as stream:
            done = {(int(r["step"]), r["set"]) for r in csv.DictReader(stream)}
    sets = validation_sets(args.val, args.texture_stride, args.size)
    harmonic = {name: score(sources, size=args.size, seed=args.seed,
                            baselines=["harmonic"])["harmonic"]
                for name, sources in sets.items()}
    new_file = not args.out.is_file()
    with open(args.out, "a", newline="") as stream:
        writer = csv.DictWriter(stream, COLUMNS)
        if new_file:
            writer.writeheader()
        for step, path in chosen:
            if all((step, name) in done for name in sets):
                continue
            generator = load_generator(path)
            for name, sources in sets.items():
                if (step, name) in done:
                    continue
                model = score(sources, size=args.size, seed=args.seed,
                              generator=generator)["model"]
                entry = row(step, name, sources, model, harmonic[name])
                writer.writerow(entry)
                stream.flush()
                print(", ".join(f"{k} {v}" for k, v in entry.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
