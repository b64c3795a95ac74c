"""``inpainting convert-release CKPT OUT``: the authors' TensorFlow weights -> .npz."""
from __future__ import annotations


def add_parser(commands):
    """Add ``convert-release`` and its arguments to ``commands`` (argparse's subparsers)."""
    convert = commands.add_parser("convert-release", help="released TF checkpoint -> .npz model")
    convert.add_argument("checkpoint", help="checkpoint directory, prefix or .index file "
                                            "(required)")
    convert.add_argument("output", help="output .npz model file (required)")
    convert.set_defaults(run=cmd_convert_release)


def cmd_convert_release(args):
    from ...weights.model_io import save_generator
    from ...weights.release import load_release_checkpoint

    generator = load_release_checkpoint(args.checkpoint)
    path = save_generator(args.output, generator, source=str(args.checkpoint))
    print(f"converted {args.checkpoint} (cnum={generator.cnum}, "
          f"{generator.num_parameters():,} parameters) -> {path}")
