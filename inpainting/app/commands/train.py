"""``inpainting train --data FOLDER``: the release's recipe on your images (a new run, or
``--resume`` of one)."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import add_common_options

#: ``inpainting train`` flags that override a ``TrainConfig`` field of the same name
TRAIN_FLAGS = (("image-size", int), ("batch-size", int), ("cnum", int), ("critic-cnum", int),
               ("iterations", int), ("seed", int), ("checkpoint-every", int),
               ("sample-every", int), ("log-every", int), ("mask", str), ("lr", float),
               ("bbox-size", int), ("max-delta", int), ("warmup-iterations", int),
               ("init-weights", str), ("min-crop-scale", float), ("periodic-fraction", float))


def add_parser(commands):
    """Add ``train`` and its options to ``commands`` (argparse's subparsers)."""
    train = commands.add_parser(
        "train", help="train with the release's WGAN-GP recipe",
        description="Train DeepFill v1 with the release's WGAN-GP recipe. Defaults are the "
                    "release's; a --config TOML file overrides them and flags override the "
                    "file. With --resume, the run's recorded config.toml is the starting point "
                    "instead and flags change only what they name.")
    add_common_options(train, weights=False)
    train.add_argument("--config", help="TOML file overriding the release defaults (default: "
                       "none)")
    train.add_argument("--data", help="'demo' (the bundled corpus), an image folder or an "
                       "flist file (default: demo)")
    train.add_argument("--out-dir", dest="out_dir", help="run folder: checkpoints, log, "
                       "samples, config.toml (default: runs/deepfill)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out-dir from its newest checkpoint with its "
                            "recorded config.toml; flags given change only what they name "
                            "(default: off, start a new run)")
    train.add_argument("--force", action="store_true",
                       help="with --resume: allow flags that change the recipe (batch, sizes, "
                            "data, seed, lr, ...), so the run no longer continues exactly "
                            "(default: off, refused)")
    train.add_argument("--quiet", action="store_true", help="no progress bar (default: off)")
    helps = _train_help()
    for name, kind in TRAIN_FLAGS:
        train.add_argument(f"--{name}", dest=name.replace("-", "_"), type=kind,
                           help=helps.get(name))     # test_runs: every flag has its help
    train.add_argument("--no-attention", dest="no_attention", action="store_true",
                       help="train the ablation without contextual attention (attention = "
                            "false in TOML; default: the full model)")
    train.set_defaults(run=cmd_train, device=None)


def cmd_train(args):
    from ...weights import checkpoint as ckpt
    from ...training.config import load_config
    from ...training.run_files import describe, resume_config
    from ...training.train import NothingToTrain, Trainer

    flags = {key: getattr(args, key) for key in
             ["data", "device", "out_dir"] + [flag.replace("-", "_") for flag, _ in TRAIN_FLAGS]}
    flags["attention"] = False if args.no_attention else None
    if args.force and not args.resume:
        raise ValueError("--force only applies with --resume (it allows a resumed run to "
                         "change its recipe)")
    config = None
    if args.resume:        # the run's own recorded configuration, overridden by what is named
        out_dir = args.out_dir or load_config(args.config).out_dir
        _check_run_folder(out_dir)
        config, source, changes = resume_config(out_dir, args.config, flags, force=args.force)
        if config is not None:
            print(f"resuming {out_dir} with the configuration recorded in {source}"
                  + (f"; changed: {describe(changes)}" if changes else ""))
    if config is None:
        config = load_config(args.config, **flags)
        _check_run_folder(config.out_dir)
        newest = ckpt.latest(Path(config.out_dir) / "checkpoints")
        if not args.resume and newest is not None:
            raise ValueError(f"{config.out_dir} already holds a run (newest checkpoint "
                             f"{newest.name}): continue it with --resume --out-dir "
                             f"{config.out_dir}, or choose another --out-dir")
    from ...training.distributed import communicator

    root = communicator(config.device).is_root  # rank 0 of a data-parallel run speaks for all
    trainer = (args.trainer_class or Trainer)(config)
    if args.resume:
        found = trainer.resume(force=args.force)
        if root:
            print(f"resumed from {found} at step {trainer.step}" if found else
                  f"no checkpoint in {config.out_dir}/checkpoints; starting from step 0")
    from ...training.train import NothingToTrain

    try:
        last = trainer.run(progress=not args.quiet)
    except KeyboardInterrupt as stop:        # Ctrl-C: 130, SIGTERM: 143 (128 + signal)
        return 128 + getattr(stop, "signum", 2)
    except NothingToTrain as finished:         # re-running a finished command: not an error
        if root:
            print(f"inpainting train: {finished}")
        return 0
    if not root:                               # only rank 0 writes
        return 0
    from ...weights.model_io import save_generator
    path = save_generator(Path(config.out_dir) / "generator.npz", trainer.generator,
                          command=" ".join(["inpainting"] + sys.argv[1:]), step=trainer.step,
                          image_size=config.image_size, config=config.to_dict())
    print(f"done at step {trainer.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
    print(f"generator written to {path}")
    return 0


def _check_run_folder(out_dir):
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ValueError(f"--out-dir {out_dir} is a file; the run needs a folder")


def _train_help():
    """Help for every ``train`` flag of ``TRAIN_FLAGS``, with the release's default."""
    from ...training.config import TrainConfig

    d = TrainConfig()
    return {
        "image-size": f"training crop size, a multiple of 16 (default: {d.image_size})",
        "batch-size": f"images per batch (default: {d.batch_size})",
        "cnum": f"generator width, even (default: {d.cnum}, the release's)",
        "critic-cnum": f"critics' width (default: {d.critic_cnum})",
        "iterations": f"generator steps in total (default: {d.iterations:,})",
        "seed": f"seed of weights, data order, boxes and holes (default: {d.seed})",
        "checkpoint-every": f"steps between checkpoints (default: {d.checkpoint_every})",
        "sample-every": f"steps between sample grids and loss plots (default: {d.sample_every})",
        "log-every": f"steps between log.jsonl lines (default: {d.log_every})",
        "mask": f"holes: 'bbox' (release) or 'free_form' strokes (default: {d.mask})",
        "lr": f"Adam learning rate of both networks (default: {d.lr:g})",
        "bbox-size": "local critic's box, a multiple of 16 (default: image size / 2 in "
                     f"multiples of 16: {d.bbox_size} at {d.image_size})",
        "max-delta": "the hole is the box shrunk by up to this many pixels per side "
                     f"(default: box size / 8: {d.max_delta} at {d.image_size})",
        "warmup-iterations": "first steps on the reconstruction losses alone, no critic "
                             f"(not in the release; default: {d.warmup_iterations})",
        "init-weights": "start the generator from this model file, checkpoint or released "
                        "TF checkpoint (default: random initialisation)",
        "min-crop-scale": "train on random squares of this to 1 times the shorter side, "
                          f"resized (not in the release; default: {d.min_crop_scale:g} = off)",
        "periodic-fraction": "share of training crops made periodic, a tile repeated (not in "
                             "the release; default: 0 = off)",
    }
