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

from .commands import (average_weights, convert_release, demo, evaluate, inpaint, train,
                       web_app)
# the handlers and tables, importable from here as before the split (app/commands/)
from .commands.average_weights import cmd_average_weights
from .commands.convert_release import cmd_convert_release
from .commands.demo import cmd_demo
from .commands.evaluate import cmd_evaluate
from .commands.inpaint import IMAGE_SUFFIXES, cmd_inpaint
from .commands.train import TRAIN_FLAGS, cmd_train
from .commands.web_app import cmd_app

__all__ = ["main"]

#: the subcommands in the order ``inpainting --help`` lists them; each module adds its own
#: parser (``add_parser``) whose ``run`` default is the function that carries it out
COMMANDS = (demo, inpaint, train, evaluate, convert_release, average_weights, web_app)


def build_parser():
    """The ``inpainting`` argument parser: one subparser per module of ``COMMANDS``."""
    parser = argparse.ArgumentParser(prog="inpainting", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
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
