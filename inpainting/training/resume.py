"""A ``Trainer``'s state and its checkpoints: what a checkpoint holds (weights, optimisers,
random state, data position, configuration), writing one, and resuming from the newest one
of a run folder, refused in one line when the checkpoint cannot continue this run exactly.

``Resumable`` is a base class of ``inpainting.training.train.Trainer``; its methods use the
trainer's networks, optimisers, ``rng``, ``dataset``, ``config``, ``step`` and ``out_dir``.
"""
from __future__ import annotations

import json

import numpy as np

from ..weights import checkpoint as ckpt
from . import run_files

__all__ = ["DATA_FIELDS", "RESUME_FIELDS", "Resumable"]

#: configuration fields that decide the networks' shapes: a checkpoint can only be resumed by
#: a run that has the same values (any other recipe field: the same unless forced)
RESUME_FIELDS = ("cnum", "attention", "critic_cnum", "image_size", "bbox_size")
#: recipe fields that name the training images: a forced change restarts the data order
DATA_FIELDS = ("data", "data_manifest_sha256")


class Resumable:
    """Save and restore everything a run needs to continue exactly (a ``Trainer`` base class)."""

    def state(self):
        """Everything needed to continue exactly: weights, optimisers, RNG, data position."""
        return {
            "step": np.asarray(self.step),
            "generator": self.generator.state_dict(),
            "local_critic": self.local_critic.state_dict(),
            "global_critic": self.global_critic.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "rng": np.asarray(json.dumps(self.rng.bit_generator.state)),
            "data": self.dataset.state_dict(),
            "config": np.asarray(json.dumps(self.config.to_dict())),
        }

    def load_state(self, state, *, new_data=False):
        """Restore a checkpoint's state. ``new_data``: the checkpoint was trained on another
        data set (a forced recipe change): the data order starts a fresh epoch of this one."""
        self.step = int(state["step"])
        self.generator.load_state_dict(state["generator"])
        self.local_critic.load_state_dict(state["local_critic"])
        self.global_critic.load_state_dict(state["global_critic"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.rng.bit_generator.state = json.loads(str(state["rng"]))
        data = {k: int(v) for k, v in state["data"].items()}
        if new_data:     # the old position means nothing in another list of images
            data = dict(self.dataset.state_dict(), epoch=data["epoch"] + 1, position=0)
        self.dataset.load_state_dict(data)

    def save_checkpoint(self):
        path = ckpt.save(self.out_dir / "checkpoints", self.step, self.state(),
                         keep=self.config.keep_checkpoints)
        return path

    def read_checkpoint(self, path):
        """The checkpoint file ``path`` as the nested dict ``resume`` restores
        (``checkpoint.load``); a subclass may read it another way. ``resume`` turns any
        error raised here into a ``CheckpointError`` that names the file."""
        return ckpt.load(path)

    def resume(self, force=False):
        """Load the newest checkpoint of ``out_dir``; returns its path (None if none).

        A checkpoint that cannot be read, or was written by a run whose networks have other
        shapes (``RESUME_FIELDS``), raises ``CheckpointError`` (a ValueError) naming the file;
        so does one written with another recipe (any field but ``run_files.FREE_FIELDS``:
        batch size, data, learning rate, ...) unless ``force``.
        """
        found = ckpt.latest(self.out_dir / "checkpoints")
        if found is None:
            return None
        try:
            state = self.read_checkpoint(found)
        except ckpt.CheckpointError:
            raise
        except Exception as error:     # whatever nnlite.load raises on a foreign file
            raise ckpt.CheckpointError(f"{found} is not a readable training checkpoint "
                                       f"({_short(error)}); delete it to resume from the "
                                       "previous one") from None
        new_data = self._check_resume_config(found, state, force)
        try:
            self.load_state(state, new_data=new_data)
        except (KeyError, ValueError, TypeError, IndexError) as error:   # StateDictError too
            reason = (f"it has no {error.args[0]!r} entry" if type(error) is KeyError
                      else _short(error))
            raise ckpt.CheckpointError(f"cannot resume from {found}: {reason}") from None
        return found

    def _check_resume_config(self, path, state, force=False):
        """One line naming the file and every differing shape (or, unless ``force``, recipe)
        field, before any weight moves. Returns whether the forced change is of the data
        (``DATA_FIELDS``)."""
        try:
            saved = json.loads(str(state["config"]))
        except (KeyError, ValueError, TypeError):
            return False               # no stored configuration: load_state_dict will tell
        if not isinstance(saved, dict):
            return False
        differing = [name for name in RESUME_FIELDS
                     if name in saved and saved[name] != getattr(self.config, name)]
        if differing:
            was = ", ".join(f"{name}={saved[name]!r}" for name in differing)
            now = ", ".join(f"{name}={getattr(self.config, name)!r}" for name in differing)
            flags = " ".join(f"--{name.replace('_', '-')} {saved[name]}" if name != "attention"
                             else "--no-attention" if not saved[name] else "no --no-attention"
                             for name in differing)
            raise ckpt.CheckpointError(f"{path} was trained with {was}, this run has {now}: "
                                       f"pass {flags} (or the same --config) to resume it")
        changed = run_files.recipe_changes(saved, self.config)
        if changed and not force:
            was = ", ".join(f"{name}={old!r}" for name, old, _ in changed)
            now = ", ".join(f"{name}={new!r}" for name, _, new in changed)
            raise ckpt.CheckpointError(f"{path} was trained with {was}, this run has {now}: "
                                       "the run would not continue exactly; resume with the "
                                       "recorded values, or with force=True (--force) to "
                                       "change the recipe")
        return any(name in DATA_FIELDS for name, _, _ in changed)


def _short(error, limit=300):
    """An exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
