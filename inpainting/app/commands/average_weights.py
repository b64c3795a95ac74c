"""``inpainting average-weights CKPT... -o OUT``: the parameter-wise mean of a run's checkpoints."""
from __future__ import annotations


def add_parser(commands):
    """Add ``average-weights`` and its arguments to ``commands`` (argparse's subparsers)."""
    average = commands.add_parser(
        "average-weights", help="parameter-wise mean of checkpoints (weight averaging)",
        description="Write the parameter-wise mean of several generators of the same width: "
                    "model files or training checkpoints, e.g. the last checkpoints of a run.")
    average.add_argument("models", nargs="+", help="model files or training checkpoints "
                                                   "(one or more)")
    average.add_argument("-o", "--output", required=True,
                         help="output .npz model file (required)")
    average.set_defaults(run=cmd_average_weights)


def cmd_average_weights(args):
    from ...weights.model_io import average_generators, save_generator

    generator = average_generators(args.models)
    path = save_generator(args.output, generator, **generator.meta)
    print(f"averaged {len(args.models)} generators (cnum={generator.cnum}) -> {path}")
