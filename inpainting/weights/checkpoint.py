"""Training checkpoints: atomic, pickle-free ``.npz`` files, the last K kept.

A checkpoint is a nested dict of arrays (weights, optimiser moments, random
state as JSON text, data position) written by ``nnlite.save``, which writes to a
temporary file and renames it into place only when complete: a run killed at
any moment leaves either the old or the new file, never half of one. Files are
named ``step_0001000.npz``; ``save`` keeps the newest ``keep`` of them.

``StopRequest`` is the Ctrl-C and SIGTERM handler of a training run: the first signal lets
the current iteration finish so that the checkpoint written next can be resumed exactly.
SIGTERM is what ``kill``, Docker and Slurm send before they stop a process for good, so it
is treated like Ctrl-C.
"""
from __future__ import annotations

import contextlib
import re
import signal
from pathlib import Path

import nnlite
from nnlite.serialization import SerializationError

from .errors import CheckpointError

__all__ = ["save", "load", "latest", "list_checkpoints", "CheckpointError", "StopRequest",
           "Stopped"]

_NAME = re.compile(r"^step_(\d+)\.npz$")


def list_checkpoints(directory):
    """Checkpoint files of ``directory``, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest(directory):
    """The newest checkpoint file of ``directory``, or None."""
    files = list_checkpoints(directory)
    return files[-1] if files else None


def save(directory, step, state, *, keep=3):
    """Write ``state`` as ``directory/step_<step>.npz`` atomically; keep the newest ``keep``."""
    target = Path(directory) / f"step_{int(step):07d}.npz"
    nnlite.save(target, state)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink()
    return target


def load(path):
    """Read a checkpoint written by ``save`` into a nested dict of arrays."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = nnlite.load(path)
    except SerializationError as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({error}); "
                              "delete it to resume from the previous one") from None
    if "step" not in state:
        raise CheckpointError(f"{path} is not a training checkpoint (no 'step' entry)")
    return state


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal after checkpointing; ``signum`` says which (exit status
    128 + signum: 130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class StopRequest:
    """Ctrl-C or SIGTERM during ``Trainer.run``: finish the current iteration, checkpoint,
    then stop.

    A checkpoint taken halfway through an iteration (after some critic updates) could not
    be resumed exactly, so the first signal only sets a flag (``signum`` remembers which);
    a second one stops at once, keeping the newest periodic checkpoint.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signum = None

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        again = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{signal.Signals(signum).name}: stopping after this iteration ({again} again "
              "to stop at once)", flush=True)

    @contextlib.contextmanager
    def installed(self):
        try:
            previous = [(number, signal.signal(number, self)) for number in self.SIGNALS]
        except ValueError:        # not the main thread: leave the signals alone
            yield
            return
        try:
            yield
        finally:
            for number, handler in previous:
                signal.signal(number, handler)
