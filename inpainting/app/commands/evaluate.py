"""``inpainting evaluate --data DIR``: the evaluation protocol against classical baselines."""
from __future__ import annotations

from pathlib import Path

from .common import add_common_options, load_weights


def add_parser(commands):
    """Add ``evaluate`` and its options to ``commands`` (argparse's subparsers)."""
    evaluate = commands.add_parser(
        "evaluate", help="the evaluation protocol: model against classical baselines",
        description="Score the model and classical baselines on seeded crops with centred "
                    "and/or random holes (docs/training.md, 'Evaluation protocol'). Without "
                    "--data the built-in periodic texture suite is evaluated.")
    add_common_options(evaluate)
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


def cmd_evaluate(args):
    """The evaluation protocol (inpainting/evaluate.py): crops, holes, methods, tables."""
    from ...evaluation.evaluate import HOLE_KINDS, choose_baselines, image_sources, run_protocol
    from ...evaluation.evaluation_report import (PAIRED_COLUMNS, PRINTED_COLUMNS, markdown,
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
    generator = None if args.baselines_only else load_weights(args)
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
