"""The ``inpainting`` command line (also ``python -m inpainting``).

    inpainting demo                      # the README's main job, bundled defaults
    inpainting inpaint IMAGE MASK -o OUT # one image, or folders of images and masks
    inpainting train --data FOLDER       # the release's recipe on your images
    inpainting evaluate                  # Table-1 metrics against classical baselines
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
    from .config import load_config
    from .train import Trainer

    overrides = {key: getattr(args, key) for key in
                 ["data", "device", "out_dir"] + [flag.replace("-", "_") for flag, _ in TRAIN_FLAGS]}
    config = load_config(args.config, **overrides)
    if Path(config.out_dir).exists() and not Path(config.out_dir).is_dir():
        raise ValueError(f"--out-dir {config.out_dir} is a file; the run needs a folder")
    trainer = Trainer(config)
    if args.resume:
        found = trainer.resume()
        print(f"resumed from {found} at step {trainer.step}" if found else
              f"no checkpoint in {config.out_dir}/checkpoints; starting from step 0")
    from .train import NothingToTrain

    try:
        last = trainer.run(progress=not args.quiet)
    except KeyboardInterrupt:
        return 130
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


def cmd_app(args):
    """Serve the local web page (inpainting/app/, docs/app.md) until Ctrl-C."""
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535 (0: any free port), got {args.port}")
    try:
        from .app.server import serve
    except ImportError as error:
        raise ValueError(f"the app needs its extra (Starlette, uvicorn): pip install -e "
                         f"\".[app]\" ({error})") from None
    generator = _weights(args)
    name = f"{args.weights or 'the shipped demo model'} (cnum {generator.cnum}, {args.device})"
    try:
        serve(generator, args.host, args.port, model_name=name)
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

    train = commands.add_parser("train", help="train with the release's WGAN-GP recipe")
    common(train, weights=False)
    train.add_argument("--config", help="TOML file overriding the release defaults")
    train.add_argument("--data", help="'demo', an image folder or an flist file")
    train.add_argument("--out-dir", dest="out_dir", help="run folder (checkpoints, logs, samples)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    for name, kind in TRAIN_FLAGS:
        train.add_argument(f"--{name}", dest=name.replace("-", "_"), type=kind)
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

    app = commands.add_parser("app", help="local web page: brush a hole, see the fill and "
                              "where attention copied from")
    common(app)
    app.add_argument("--host", default="127.0.0.1", help="address to serve on (default "
                     "127.0.0.1: this machine only; another address warns)")
    app.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free)")
    app.set_defaults(run=cmd_app)
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
