"""``inpainting inpaint IMAGE MASK -o OUT``: one image, or folders of images and masks."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from .common import add_common_options, load_weights

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def add_parser(commands):
    """Add ``inpaint`` and its options to ``commands`` (argparse's subparsers)."""
    paint = commands.add_parser(
        "inpaint", help="fill the holes of images (white mask = hole)",
        description="Fill the holes of an image, or of every image of a folder. Pixels outside "
                    "the hole keep the file's own values; images larger than the model's "
                    "working size are inpainted on crops around each hole.")
    add_common_options(paint)
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

    from ..inpaint_files import adjust_hole, check_output_paths, inpaint_file

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
    generator = load_weights(args)
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
