"""What several commands share: the ``--weights`` and ``--device`` options and the model they
name."""
from __future__ import annotations


def add_common_options(parser, weights=True):
    """``--weights`` (unless ``weights`` is False) and ``--device``, the options of every
    command that runs a model."""
    if weights:
        parser.add_argument("--weights", help="model file, training checkpoint or released TF "
                            "checkpoint (default: the shipped demo model)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")


def load_weights(args):
    """The generator of ``--weights`` (default: the shipped model) on ``--device``, or the
    one given to ``cli.main(..., generator=...)``."""
    from ...weights.model_io import load_generator, shipped_model_path

    if getattr(args, "generator", None) is not None:    # main(..., generator=...)
        return args.generator
    path = args.weights or shipped_model_path()
    return load_generator(path, device=args.device)
