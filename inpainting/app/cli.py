"""The ``inpainting`` command line (also ``python -m inpainting``).

    inpainting demo                      # the README's main job, bundled defaults
    inpainting inpaint IMAGE MASK -o OUT # one image, or folders of images and masks
    inpainting train --data FOLDER       # the release's recipe on your images
    inpainting evaluate --data DIR       # the evaluation protocol against classical baselines
    inpainting convert-release CKPT OUT  # the authors' TensorFlow weights -> .npz
    inpainting average-weights CKPT... -o OUT  # mean of a run's checkpoints
    inpainting app                       # a local web page: brush a hole, see the fill

User mistakes (missing files, wrong sizes, bad options) print one line and exit
with status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

__all__ = ["main"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: ``inpainting train`` flags that override a ``TrainConfig`` field of the same name
TRAIN_FLAGS = (("image-size", int), ("batch-size", int), ("cnum", int), ("critic-cnum", int),
               ("iterations", int), ("seed", int), ("checkpoint-every", int),
               ("sample-every", int), ("log-every", int), ("mask", str), ("lr", float),
               ("bbox-size", int), ("max-delta", int), ("warmup-iterations", int),
               ("init-weights", str), ("min-crop-scale", float), ("periodic-fraction", float))


def _weights(args):
    from ..weights.model_io import load_generator, shipped_model_path

    if getattr(args, "generator", None) is not None:    # main(..., generator=...)
        return args.generator
    path = args.weights or shipped_model_path()
    return load_generator(path, device=args.device)


def cmd_demo(args):
    """Inpaint a periodic texture and a held-out photo with the shipped model (or --weights)
    and save the teaching figure: where hole cells copy from (inpainting/app/demo_figure.py)."""
    from ..data.datasets import DEMO_HELDOUT_PHOTOS
    from .demo_figure import DEMO_TEXTURE, attention_sources, demo_rows, exact_sources, \
        save_demo_figure
    from ..data.textures import TEXTURE_SUITE
    from ..evaluation.metrics import evaluate_pair, to_unit

    textures = [name for name, _, _ in TEXTURE_SUITE]
    args.texture = args.texture or DEMO_TEXTURE
    if args.image not in DEMO_HELDOUT_PHOTOS:
        raise ValueError(f"--image must be one of the held-out photos {', '.join(DEMO_HELDOUT_PHOTOS)}"
                         f", got {args.image!r} (for your own picture use `inpainting inpaint`)")
    if args.texture not in textures:
        raise ValueError(f"--texture must be one of the suite's textures {', '.join(textures)}, "
                         f"got {args.texture!r}")
    if args.size is not None:
        _check_size("--size", args.size)
    generator = _weights(args)
    args.size = args.size or int(getattr(generator, "meta", {}).get("image_size", 256))
    rows = demo_rows(generator, args.size, args.texture, args.image, args.probe)
    path, _ = save_demo_figure(args.out, rows)
    for row in rows:
        scores = evaluate_pair(to_unit(row.output), to_unit(row.image), row.mask[None])
        print(f"inpainted {row.label} ({args.size}x{args.size}, centred {args.size // 2}x"
              f"{args.size // 2} hole): L1 in hole {scores['l1_hole']:.2f}%, "
              f"PSNR in hole {scores['psnr_hole']:.2f} dB")
        if row.attention is not None:
            pairs = attention_sources(row.attention, row.mask, count=row.attention[..., 0, 0].size)
            print(f"  attention peaks on a block identical to the hidden one for "
                  f"{exact_sources(row.image, pairs)} of {len(pairs)} hole cells")
    print(f"figure written to {path}")


def _check_size(flag, size):
    if size < 16 or size % 8:
        raise ValueError(f"{flag} must be a multiple of 8 and at least 16, got {size}")


def _images_in(folder):
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _pairs(image, mask):
    """(image, mask or None) file pairs: one pair; every image of a folder with the mask of
    the same stem in the mask folder (None when it has none: skipped and reported); or every
    image of a folder with one mask file. Results are named by stem, so stems must be unique."""
    image, mask = Path(image), Path(mask)
    if not image.is_dir():
        if mask.is_dir():
            raise ValueError(f"{image} is a file, so the mask {mask} must be a file too")
        return [(image, mask)]
    images = [p for p in _images_in(image) if not (mask.is_file() and p.resolve() == mask.resolve())]
    masks = _images_in(mask) if mask.is_dir() else []
    for found, folder in ((images, image), (masks, mask)):
        repeated = sorted(stem for stem, count in Counter(p.stem for p in found).items()
                          if count > 1)
        if repeated:
            names = [p.name for p in found if p.stem == repeated[0]]
            raise ValueError(f"{folder} holds {' and '.join(names)}: files are matched and "
                             "results named by stem, so each stem must appear once")
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image}")
    if not mask.is_dir():
        if not mask.is_file():
            raise FileNotFoundError(f"the mask {mask} does not exist (give one mask file for "
                                    f"the whole folder {image}, or a folder of masks)")
        return [(path, mask) for path in images]
    by_stem = {p.stem: p for p in masks}
    return [(path, by_stem.get(path.stem)) for path in images]


def _inside(path, folder):
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def cmd_inpaint(args):
    from tqdm import tqdm

    from .inpaint_files import adjust_hole, check_output_paths, inpaint_file

    adjust_hole([[False]], dilate=args.dilate, erode=args.erode)     # checks the counts
    if args.working_size is not None and args.working_size < 16:
        raise ValueError(f"--working-size must be at least 16, got {args.working_size}")
    pairs = _pairs(args.image, args.mask)
    out = Path(args.output)
    many = Path(args.image).is_dir()
    memory = None
    if args.attention_memory is not None:
        if not 0 < args.attention_memory < float("inf"):
            raise ValueError(f"--attention-memory must be a positive, finite number of GiB, "
                             f"got {args.attention_memory}")
        memory = int(args.attention_memory * 2**30)
    extras = (("-o", out), ("--coarse", args.coarse), ("--attention", args.attention))
    if many:
        inputs = [Path(args.image)] + ([Path(args.mask)] if Path(args.mask).is_dir() else [])
        for flag, folder in extras:
            if folder is None:
                continue
            if Path(folder).exists() and not Path(folder).is_dir():
                raise ValueError(f"{flag} {folder} is a file; with a folder of images it must "
                                 "name a folder")
            for source in inputs:
                if not args.overwrite and _inside(folder, source):
                    raise ValueError(f"{flag} {folder} is inside the input folder {source}; "
                                     "results would mix with (or replace) the inputs (pass "
                                     "--overwrite to allow it)")

    def target(folder_or_file, stem):
        if folder_or_file is None:
            return None
        return Path(folder_or_file) / f"{stem}.png" if many else folder_or_file

    for image_path, mask_path in pairs:           # every output path, before any work
        check_output_paths({flag: target(path, image_path.stem) for flag, path in extras},
                           [p for p in (image_path, mask_path) if p is not None],
                           overwrite=args.overwrite)
    if many:
        for _, folder in extras:
            if folder is not None:
                Path(folder).mkdir(parents=True, exist_ok=True)
    generator = _weights(args)
    skipped, done = [], 0
    bar = tqdm(pairs, unit="image", disable=args.quiet or not many, delay=2.0,
               dynamic_ncols=True)
    for image_path, mask_path in bar:
        output = target(out, image_path.stem)
        if mask_path is None:
            skipped.append((image_path, f"no mask named {image_path.stem}.* in {args.mask}"))
            continue
        try:
            inpaint_file(image_path, mask_path, output, weights=generator,
                         coarse_path=target(args.coarse, image_path.stem),
                         attention_path=target(args.attention, image_path.stem),
                         attention_memory=memory, border=args.border,
                         mode="full" if args.full_image else "auto",
                         working_size=args.working_size, release_rounding=args.release_rounding,
                         overwrite=args.overwrite, dilate=args.dilate, erode=args.erode,
                         progress=not args.quiet)
        except (ValueError, OSError) as error:
            if not many:
                raise
            skipped.append((image_path, str(error)))
            continue
        done += 1
        if many:
            bar.set_postfix_str(image_path.name, refresh=False)
        else:
            print(f"{image_path} -> {output}")
    bar.close()
    if many:
        print(f"inpainted {done} of {len(pairs)} images from {args.image} -> {out}")
    if skipped:
        print(f"skipped {len(skipped)} of {len(pairs)} images:", file=sys.stderr)
        for path, reason in skipped:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0


def cmd_train(args):
    from ..weights import checkpoint as ckpt
    from ..training.config import load_config
    from ..training.run_files import describe, resume_config
    from ..training.train import NothingToTrain, Trainer

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
    from ..training.distributed import communicator

    root = communicator(config.device).is_root  # rank 0 of a data-parallel run speaks for all
    trainer = (args.trainer_class or Trainer)(config)
    if args.resume:
        found = trainer.resume(force=args.force)
        if root:
            print(f"resumed from {found} at step {trainer.step}" if found else
                  f"no checkpoint in {config.out_dir}/checkpoints; starting from step 0")
    from ..training.train import NothingToTrain

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
    from ..weights.model_io import save_generator
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
    from ..training.config import TrainConfig

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


def cmd_evaluate(args):
    """The evaluation protocol (inpainting/evaluate.py): crops, holes, methods, tables."""
    from ..evaluation.evaluate import HOLE_KINDS, choose_baselines, image_sources, run_protocol
    from ..evaluation.evaluation_report import (PAIRED_COLUMNS, PRINTED_COLUMNS, markdown,
                                                paired_rows, per_crop_rows, save_figure,
                                                summary_rows, write_outputs)

    if args.size % 8 or args.size < 16:
        raise ValueError(f"--size must be a multiple of 8 and at least 16, got {args.size}")
    if args.crops_per_image < 1:
        raise ValueError(f"--crops-per-image must be at least 1, got {args.crops_per_image}")
    if args.seed < 0 or args.bootstrap < 1:
        raise ValueError(f"--seed must be >= 0 and --bootstrap >= 1, got {args.seed} and "
                         f"{args.bootstrap}")
    if args.out is not None and Path(args.out).suffix.lower() not in (".md", ".csv"):
        raise ValueError(f"--out {args.out}: the tables are written as CSV (.csv) or Markdown "
                         "(.md); choose one of those extensions")
    for flag, path in (("--out", args.out), ("--figure", args.figure)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise ValueError(f"{flag} {path}: the folder {Path(path).parent} does not exist")
    if args.data is not None and not Path(args.data).exists():
        raise ValueError(f"--data {args.data} does not exist (a folder of images or an flist)")
    holes = HOLE_KINDS if args.hole == "both" else (args.hole,)
    baselines = choose_baselines(args.baselines)
    generator = None if args.baselines_only else _weights(args)
    if args.figure is not None and (generator is None or "harmonic" not in baselines):
        raise ValueError("--figure compares the model with harmonic: drop --baselines-only "
                         "and keep harmonic in --baselines")
    textures = args.textures or args.data is None
    sources = image_sources(args.data, textures, args.size)
    what = " + ".join((["the built-in texture suite"] if textures else [])
                      + ([args.data] if args.data is not None else []))
    print(f"evaluating {len(sources)} images ({what}): {args.crops_per_image} crop(s) of "
          f"{args.size}x{args.size} each, {' and '.join(holes)} {args.size // 2}x"
          f"{args.size // 2} hole(s), seed {args.seed}; methods: "
          f"{', '.join((['model'] if generator is not None else []) + baselines)}")
    records, crops = run_protocol(sources, size=args.size, holes=holes,
                                  crops_per_image=args.crops_per_image, seed=args.seed,
                                  baselines=baselines, generator=generator, device=args.device)
    summary = summary_rows(records, holes)
    paired = paired_rows(records, holes, resamples=args.bootstrap, seed=args.seed)
    print(markdown(summary, PRINTED_COLUMNS))
    if paired:
        print("\nmodel minus baseline (95 % paired bootstrap CI, resampling images):")
        print(markdown(paired, PAIRED_COLUMNS))
    per_crop = per_crop_rows(records, crops) if args.per_image else None
    if per_crop is not None and args.out is None:
        print()
        print(markdown(per_crop, list(per_crop[0])))
    if args.out is not None:
        settings = {"data": what, "size": args.size, "crops_per_image": args.crops_per_image,
                    "seed": args.seed, "bootstrap": args.bootstrap,
                    "weights": "" if generator is None else str(args.weights or "shipped")}
        for path in write_outputs(args.out, settings, summary, paired, per_crop):
            print(f"written {path}")
    if args.figure is not None:
        path = save_figure(args.figure, records, crops, sources, args.size, args.seed,
                           generator, args.device)
        print(f"figure written to {path}")


def cmd_convert_release(args):
    from ..weights.model_io import save_generator
    from ..weights.release import load_release_checkpoint

    generator = load_release_checkpoint(args.checkpoint)
    path = save_generator(args.output, generator, source=str(args.checkpoint))
    print(f"converted {args.checkpoint} (cnum={generator.cnum}, "
          f"{generator.num_parameters():,} parameters) -> {path}")


def cmd_average_weights(args):
    from ..weights.model_io import average_generators, save_generator

    generator = average_generators(args.models)
    path = save_generator(args.output, generator, **generator.meta)
    print(f"averaged {len(args.models)} generators (cnum={generator.cnum}) -> {path}")


def cmd_app(args):
    """Serve the local web page (inpainting/app/web/, docs/app.md) until Ctrl-C."""
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535 (0: any free port), got {args.port}")
    try:
        from .web.server import serve
    except ImportError as error:
        raise ValueError(f"the app needs its extra (Starlette, uvicorn): pip install -e "
                         f"\".[app]\" ({error})") from None
    generator = _weights(args)
    name = f"{args.weights or 'the shipped demo model'} (cnum {generator.cnum}, {args.device})"
    ablation = None
    if args.ablation_weights:
        from ..weights.model_io import load_generator

        ablation = load_generator(args.ablation_weights, device=args.device)
        if ablation.attention:
            raise ValueError(f"--ablation-weights: {args.ablation_weights} holds a generator "
                             "with contextual attention; it must be one built and trained with "
                             "attention=False (inpainting train --no-attention)")
    try:
        serve(generator, args.host, args.port, model_name=name, ablation=ablation,
              ablation_name=f"{args.ablation_weights} (cnum {ablation.cnum})" if ablation
              else "")
    except KeyboardInterrupt:
        return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="inpainting", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p, weights=True):
        if weights:
            p.add_argument("--weights", help="model file, training checkpoint or released TF "
                           "checkpoint (default: the shipped demo model)")
        p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")

    demo = commands.add_parser("demo", help="inpaint a periodic texture and a held-out photo "
                               "and save a figure of where the hole copies from")
    common(demo)
    demo.add_argument("--out", default="demo.png", help="figure path (default: %(default)s)")
    demo.add_argument("--image", default="astronaut",
                      help="held-out photo: astronaut or coffee (default: %(default)s)")
    demo.add_argument("--texture", help="periodic texture of the evaluation suite "
                      "(default: dots-square-16)")
    demo.add_argument("--size", type=int, help="image size (default: the model's training size)")
    demo.add_argument("--no-probe", dest="probe", action="store_false",
                      help="leave out the probe column (the fill with the attention branch's "
                      "features zeroed before the decoder; default: shown)")
    demo.set_defaults(run=cmd_demo)

    paint = commands.add_parser(
        "inpaint", help="fill the holes of images (white mask = hole)",
        description="Fill the holes of an image, or of every image of a folder. Pixels outside "
                    "the hole keep the file's own values; images larger than the model's "
                    "working size are inpainted on crops around each hole.")
    common(paint)
    paint.add_argument("image", help="image file or folder")
    paint.add_argument("mask", help="mask file (also: one mask for a whole folder) or folder of "
                                    "masks with the images' stems; white = hole")
    paint.add_argument("-o", "--output", required=True,
                       help="output file (PNG keeps every pixel), or folder for a folder (required)")
    paint.add_argument("--coarse", help="also save the coarse result here (default: not saved)")
    paint.add_argument("--attention", help="also save the colour-coded attention map here "
                                           "(default: not saved)")
    paint.add_argument("--attention-memory", dest="attention_memory", type=float, metavar="GIB",
                       help="bound contextual attention's score buffers to this many GiB "
                            "(same result; default: the direct evaluation, or with "
                            "--full-image a bound from the available memory)")
    paint.add_argument("--border", choices=("pad", "crop"), default="pad",
                       help="sizes that are not multiples of 8: 'pad' keeps every pixel, 'crop' "
                            "drops the extra rows/columns as the release did and runs the "
                            "whole image (default: %(default)s)")
    paint.add_argument("--full-image", dest="full_image", action="store_true",
                       help="run the whole image at its size instead of crops around the holes, "
                            "attention memory bounded automatically (default: off)")
    paint.add_argument("--working-size", dest="working_size", type=int, metavar="PX",
                       help="crops are scaled so that their longer side is at most this "
                            "(default: the size the model was trained at, else 256)")
    paint.add_argument("--release-rounding", dest="release_rounding", action="store_true",
                       help="fidelity to the release: write the whole result as 8-bit RGB with "
                            "its truncating conversion (known pixels may drop by 1) instead of "
                            "keeping the file's pixels (default: off)")
    paint.add_argument("--dilate", type=int, default=0, metavar="N",
                       help="grow every hole by N pixels (default: %(default)s)")
    paint.add_argument("--erode", type=int, default=0, metavar="N",
                       help="shrink every hole by N pixels, before --dilate (default: "
                            "%(default)s)")
    paint.add_argument("--overwrite", action="store_true",
                       help="allow outputs that are inputs or inside an input folder "
                            "(default: refused)")
    paint.add_argument("--quiet", action="store_true", help="no progress bars (default: off)")
    paint.set_defaults(run=cmd_inpaint)

    train = commands.add_parser(
        "train", help="train with the release's WGAN-GP recipe",
        description="Train DeepFill v1 with the release's WGAN-GP recipe. Defaults are the "
                    "release's; a --config TOML file overrides them and flags override the "
                    "file. With --resume, the run's recorded config.toml is the starting point "
                    "instead and flags change only what they name.")
    common(train, weights=False)
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

    evaluate = commands.add_parser(
        "evaluate", help="the evaluation protocol: model against classical baselines",
        description="Score the model and classical baselines on seeded crops with centred "
                    "and/or random holes (docs/training.md, 'Evaluation protocol'). Without "
                    "--data the built-in periodic texture suite is evaluated.")
    common(evaluate)
    evaluate.add_argument("--data", help="folder (searched recursively) or flist of images "
                          "never used for training or selection (default: none; the texture "
                          "suite is used instead)")
    evaluate.add_argument("--textures", action="store_true",
                          help="also evaluate the built-in periodic texture suite (default: "
                               "only when --data is not given)")
    evaluate.add_argument("--size", type=int, default=128,
                          help="crop side S, a multiple of 8 (default: 128)")
    evaluate.add_argument("--hole", choices=("centre", "random", "both"), default="centre",
                          help="the S/2 x S/2 hole: centred, at a seeded random position, or "
                               "both (default: centre)")
    evaluate.add_argument("--crops-per-image", dest="crops_per_image", type=int, default=2,
                          metavar="K", help="seeded S x S crops per image (default: 2)")
    evaluate.add_argument("--seed", type=int, default=0,
                          help="seed of crops, random holes and the bootstrap (default: 0)")
    evaluate.add_argument("--baselines", metavar="LIST",
                          help="comma-separated from mean, harmonic, biharmonic, telea, ns, "
                               "exemplar, or 'none' (default: all installed; telea, ns and "
                               "exemplar need the [eval] extra)")
    evaluate.add_argument("--baselines-only", action="store_true",
                          help="evaluate the baselines without a model (default: off)")
    evaluate.add_argument("--out", help="write the tables: results.csv (+ results_paired.csv, "
                          "results_per_image.csv) or results.md (default: print only)")
    evaluate.add_argument("--per-image", action="store_true",
                          help="also the scores of every crop (default: off)")
    evaluate.add_argument("--figure", metavar="PATH",
                          help="save input | each method | truth for the model's best, median "
                               "and worst crops against harmonic (default: none)")
    evaluate.add_argument("--bootstrap", type=int, default=2000, metavar="B",
                          help="bootstrap resamples of the images (default: 2000)")
    evaluate.set_defaults(run=cmd_evaluate)

    convert = commands.add_parser("convert-release", help="released TF checkpoint -> .npz model")
    convert.add_argument("checkpoint", help="checkpoint directory, prefix or .index file "
                                            "(required)")
    convert.add_argument("output", help="output .npz model file (required)")
    convert.set_defaults(run=cmd_convert_release)

    average = commands.add_parser(
        "average-weights", help="parameter-wise mean of checkpoints (weight averaging)",
        description="Write the parameter-wise mean of several generators of the same width: "
                    "model files or training checkpoints, e.g. the last checkpoints of a run.")
    average.add_argument("models", nargs="+", help="model files or training checkpoints "
                                                   "(one or more)")
    average.add_argument("-o", "--output", required=True,
                         help="output .npz model file (required)")
    average.set_defaults(run=cmd_average_weights)

    app = commands.add_parser("app", help="local web page: brush a hole, see the fill and "
                              "where attention copied from")
    common(app)
    app.add_argument("--host", default="127.0.0.1", help="address to serve on (default "
                     "127.0.0.1: this machine only; another address warns)")
    app.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free)")
    app.add_argument("--ablation-weights", help="a generator trained without contextual "
                     "attention (attention=False) for the page's 'without attention' toggle "
                     "(default: a probe that zeroes the attention branch's output)")
    app.set_defaults(run=cmd_app)
    return parser


def main(argv=None, *, trainer_class=None, generator=None):
    """Run the ``inpainting`` command with ``argv`` (default: ``sys.argv[1:]``); the exit status.

    ``trainer_class``: what ``inpainting train`` builds instead of ``Trainer`` (a subclass
    that, say, injects a failure at a given step; tests/mpi_train.py uses it).
    ``generator``: the model that the commands which load one (``demo``, ``inpaint``, ...)
    use instead of loading ``--weights`` or the shipped model (a subclass of
    ``InpaintGenerator`` that, say, records or refuses its calls); None (the default) loads
    the file as usual."""
    from nnlite.nn import StateDictError

    args = build_parser().parse_args(argv)
    args.trainer_class = trainer_class
    args.generator = generator
    from nnlite.kernels.memory import reuse_freed_memory, reuse_memory_requested

    if reuse_memory_requested():     # large arrays without fresh page faults (nnlite/kernels/memory.py)
        reuse_freed_memory()
    from ..training.distributed import failure_ends_all

    try:
        with failure_ends_all(f"inpainting {args.command}"):   # ranks of mpirun: one fails, all end
            code = args.run(args)
    except (ValueError, OSError, StateDictError, RuntimeError) as error:
        print(f"inpainting {args.command}: error: {error}", file=sys.stderr)
        return 2
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
