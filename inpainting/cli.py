"""The ``inpainting`` command line (also ``python -m inpainting``).

    inpainting demo                      # the README's main job, bundled defaults
    inpainting inpaint IMAGE MASK -o OUT # one image, or folders of images and masks
    inpainting train --data FOLDER       # the release's recipe on your images
    inpainting evaluate                  # Table-1 metrics against classical baselines
    inpainting convert-release CKPT OUT  # the authors' TensorFlow weights -> .npz
    inpainting average-weights CKPT... -o OUT  # mean of a run's checkpoints

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
               ("init-weights", str), ("min-crop-scale", float))


def _weights(args):
    from .model_io import load_generator, shipped_model_path

    path = args.weights or shipped_model_path()
    return load_generator(path, device=args.device)


def cmd_demo(args):
    """Inpaint a held-out bundled photograph with the shipped model and save a figure."""
    from nnlite.backend import to_device

    from .data import demo_corpus
    from .inference import inpaint
    from .masks import centered_bbox_mask
    from .viz import save_demo_figure

    from .data import DEMO_HELDOUT_PHOTOS

    if args.image not in DEMO_HELDOUT_PHOTOS:
        raise ValueError(f"--image must be one of the held-out photos {', '.join(DEMO_HELDOUT_PHOTOS)}"
                         f", got {args.image!r} (for your own picture use `inpainting inpaint`)")
    if args.size is not None:
        _check_size("--size", args.size)
    generator = _weights(args)
    args.size = args.size or int(getattr(generator, "meta", {}).get("image_size", 256))
    dataset = demo_corpus("heldout", args.size, resize=True)
    index = dataset.names.index(f"skimage:{args.image}")
    image = dataset.sample(index, 0)
    mask, _ = centered_bbox_mask(args.size, args.size // 2)
    result = inpaint(generator, to_device(image[None], args.device),
                     to_device(mask, args.device))
    path = save_demo_figure(args.out, image, mask[0], result)
    from .metrics import evaluate_pair, to_unit
    scores = evaluate_pair(to_unit(to_device(result.output, "cpu")[0]), to_unit(image), mask[0])
    print(f"inpainted {dataset.names[index]} ({args.size}x{args.size}, centred "
          f"{args.size // 2}x{args.size // 2} hole): L1 in hole {scores['l1_hole']:.2f}%, "
          f"PSNR in hole {scores['psnr_hole']:.2f} dB")
    print(f"figure written to {path}")


def _check_size(flag, size):
    if size < 16 or size % 8:
        raise ValueError(f"{flag} must be a multiple of 8 and at least 16, got {size}")


def _images_in(folder):
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _pairs(image, mask):
    """(image, mask) file pairs: one pair, or every image of a folder with the mask of the
    same stem in the mask folder (results are named by stem, so stems must be unique)."""
    image, mask = Path(image), Path(mask)
    if image.is_dir():
        if not mask.is_dir():
            raise ValueError(f"{image} is a folder, so the mask {mask} must be a folder too")
        images, masks = _images_in(image), _images_in(mask)
        for found, folder in ((images, image), (masks, mask)):
            repeated = sorted(stem for stem, count in Counter(p.stem for p in found).items()
                              if count > 1)
            if repeated:
                names = [p.name for p in found if p.stem == repeated[0]]
                raise ValueError(f"{folder} holds {' and '.join(names)}: files are matched and "
                                 "results named by stem, so each stem must appear once")
        by_stem = {p.stem: p for p in masks}
        pairs = []
        for path in images:
            if path.stem not in by_stem:
                raise FileNotFoundError(f"no mask named {path.stem}.* in {mask} for {path}")
            pairs.append((path, by_stem[path.stem]))
        if not pairs:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image}")
        return pairs
    return [(image, mask)]


def cmd_inpaint(args):
    from .inference import inpaint_image

    generator = _weights(args)
    pairs = _pairs(args.image, args.mask)
    out = Path(args.output)
    many = len(pairs) > 1 or Path(args.image).is_dir()
    memory = None
    if args.attention_memory is not None:
        if not 0 < args.attention_memory < float("inf"):
            raise ValueError(f"--attention-memory must be a positive, finite number of GiB, "
                             f"got {args.attention_memory}")
        memory = int(args.attention_memory * 2**30)
    if many:
        for flag, folder in (("-o", out), ("--coarse", args.coarse), ("--attention", args.attention)):
            if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
                raise ValueError(f"{flag} {folder} is a file; with a folder of images it must "
                                 "name a folder")
            if folder is not None:
                Path(folder).mkdir(parents=True, exist_ok=True)

    def target(folder_or_file, stem):
        if folder_or_file is None:
            return None
        return Path(folder_or_file) / f"{stem}.png" if many else folder_or_file

    for image_path, mask_path in pairs:
        output = target(out, image_path.stem)
        inpaint_image(image_path, mask_path, output, weights=generator,
                      coarse_path=target(args.coarse, image_path.stem),
                      attention_path=target(args.attention, image_path.stem),
                      attention_memory=memory, border=args.border)
        print(f"{image_path} -> {output}")


def cmd_train(args):
    from . import checkpoint as ckpt
    from .config import load_config
    from .run_files import describe, resume_config
    from .train import NothingToTrain, Trainer

    flags = {key: getattr(args, key) for key in
             ["data", "device", "out_dir"] + [flag.replace("-", "_") for flag, _ in TRAIN_FLAGS]}
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
    trainer = Trainer(config)
    if args.resume:
        found = trainer.resume(force=args.force)
        print(f"resumed from {found} at step {trainer.step}" if found else
              f"no checkpoint in {config.out_dir}/checkpoints; starting from step 0")

    try:
        last = trainer.run(progress=not args.quiet)
    except KeyboardInterrupt as stop:        # Ctrl-C: 130, SIGTERM: 143 (128 + signal)
        return 128 + getattr(stop, "signum", 2)
    except NothingToTrain as finished:         # re-running a finished command: not an error
        print(f"inpainting train: {finished}")
        return 0
    from .model_io import save_generator
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
    from .config import TrainConfig

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
    from nnlite.backend import to_device

    from .evaluate import (baseline_methods, evaluate_methods, evaluation_images,
                           format_markdown, format_per_image, score_methods, write_table)
    from .inference import inpaint
    from .masks import centered_bbox_mask

    _check_size("--size", args.size)
    if args.hole is not None and not 0 < args.hole <= args.size - 2:
        raise ValueError(f"--hole must be between 1 and --size - 2 = {args.size - 2} (a known "
                         f"border is needed), got {args.hole}")
    for path in args.out or []:
        if Path(path).suffix.lower() not in (".md", ".csv"):
            raise ValueError(f"--out {path}: the table is written as Markdown (.md) or CSV "
                             "(.csv); choose one of those extensions")
    images, names = evaluation_images(args.data, args.size)
    mask, _ = centered_bbox_mask(args.size, args.hole or args.size // 2)
    methods = baseline_methods()
    if not args.baselines_only:
        generator = _weights(args)

        def model(batch, hole):
            result = inpaint(generator, to_device(batch, args.device), to_device(hole, args.device))
            return to_device(result.output, "cpu")
        methods = {"DeepFill v1 (this model)": model, **methods}
    scores = score_methods(methods, images, mask)
    table = evaluate_methods(methods, images, mask, scores=scores)
    print(f"{len(images)} images from {args.data}, {args.size}x{args.size}, centred hole "
          f"{mask[0, 0].sum():.0f} px")
    print(format_markdown(table))
    if args.per_image:
        print()
        print(format_per_image(scores, names))
    for path in args.out or []:
        write_table(table, path)
        print(f"written {path}")


def cmd_convert_release(args):
    from .model_io import save_generator
    from .release import load_release_checkpoint

    generator = load_release_checkpoint(args.checkpoint)
    path = save_generator(args.output, generator, source=str(args.checkpoint))
    print(f"converted {args.checkpoint} (cnum={generator.cnum}, "
          f"{generator.num_parameters():,} parameters) -> {path}")


def cmd_average_weights(args):
    from .model_io import average_generators, save_generator

    generator = average_generators(args.models)
    path = save_generator(args.output, generator, **generator.meta)
    print(f"averaged {len(args.models)} generators (cnum={generator.cnum}) -> {path}")


def build_parser():
    parser = argparse.ArgumentParser(prog="inpainting", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p, weights=True):
        if weights:
            p.add_argument("--weights", help="model file, training checkpoint or released TF "
                           "checkpoint (default: the shipped demo model)")
        p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")

    demo = commands.add_parser("demo", help="inpaint a held-out bundled photo and save a figure")
    common(demo)
    demo.add_argument("--out", default="demo.png", help="figure path (default: demo.png)")
    demo.add_argument("--image", default="astronaut", help="held-out photo (astronaut, coffee)")
    demo.add_argument("--size", type=int, help="image size (default: the model's training size)")
    demo.set_defaults(run=cmd_demo)

    paint = commands.add_parser("inpaint", help="fill the holes of images (white mask = hole)")
    common(paint)
    paint.add_argument("image", help="image file or folder")
    paint.add_argument("mask", help="mask file or folder (same stems); white = hole")
    paint.add_argument("-o", "--output", required=True, help="output PNG (or folder)")
    paint.add_argument("--coarse", help="also save the coarse result here")
    paint.add_argument("--attention", help="also save the colour-coded attention map here")
    paint.add_argument("--attention-memory", dest="attention_memory", type=float, metavar="GIB",
                       help="bound contextual attention's score buffers to this many GiB "
                            "(same result; for large images: the release needs (H*W/64)^2 "
                            "floats, 17 GB at 2048x2048)")
    paint.add_argument("--border", choices=("pad", "crop"), default="pad",
                       help="sizes that are not multiples of 8: 'pad' keeps every pixel "
                            "(default), 'crop' drops the extra rows/columns as the release did")
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
    train.set_defaults(run=cmd_train, device=None)

    evaluate = commands.add_parser("evaluate", help="metrics against mean-fill and biharmonic")
    common(evaluate)
    evaluate.add_argument("--data", default="heldout", help="'heldout' (bundled) or a folder")
    evaluate.add_argument("--size", type=int, default=256)
    evaluate.add_argument("--hole", type=int, help="centred hole size (default: size / 2)")
    evaluate.add_argument("--out", nargs="*", help="write the table (.md or .csv)")
    evaluate.add_argument("--baselines-only", action="store_true")
    evaluate.add_argument("--per-image", action="store_true",
                          help="also print L1 and PSNR in the hole for every image")
    evaluate.set_defaults(run=cmd_evaluate)

    convert = commands.add_parser("convert-release", help="released TF checkpoint -> .npz model")
    convert.add_argument("checkpoint", help="checkpoint directory, prefix or .index file")
    convert.add_argument("output", help="output .npz")
    convert.set_defaults(run=cmd_convert_release)

    average = commands.add_parser(
        "average-weights", help="parameter-wise mean of checkpoints (weight averaging)",
        description="Write the parameter-wise mean of several generators of the same width: "
                    "model files or training checkpoints, e.g. the last checkpoints of a run.")
    average.add_argument("models", nargs="+", help="model files or training checkpoints")
    average.add_argument("-o", "--output", required=True, help="output .npz model file")
    average.set_defaults(run=cmd_average_weights)
    return parser


def main(argv=None):
    from nnlite.nn import StateDictError

    args = build_parser().parse_args(argv)
    from nnlite.memory import reuse_freed_memory, reuse_memory_requested

    if reuse_memory_requested():     # large arrays without fresh page faults (nnlite/memory.py)
        reuse_freed_memory()
    try:
        code = args.run(args)
    except (ValueError, OSError, StateDictError, RuntimeError) as error:
        print(f"inpainting {args.command}: error: {error}", file=sys.stderr)
        return 2
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
