"""Training checkpoints: atomic, pickle-free ``.npz`` files, the last K kept.

A checkpoint is a nested dict of arrays (weights, optimiser moments, random
state as JSON text, data position) flattened to ``"a/b/c"`` keys and written
with ``numpy.savez`` to a temporary file that is renamed into place only when
complete: a run killed at any moment leaves either the old or the new file,
never half of one. Files are named ``step_0001000.npz``.
"""
from __future__ import annotations

import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from nnlite.backend import to_device

__all__ = ["save", "load", "latest", "list_checkpoints", "CheckpointError",
           "flatten", "unflatten"]

_NAME = re.compile(r"^step_(\d+)\.npz$")


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or not one of ours."""


def flatten(tree, prefix=""):
    """``{"a": {"b": x}}`` -> ``{"a/b": x}``; leaves become NumPy arrays (GPU data is copied)."""
    flat = {}
    for key, value in tree.items():
        key = str(key)
        if "/" in key:
            raise ValueError(f"checkpoint keys may not contain '/': {key!r}")
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        else:
            flat[name] = np.asarray(to_device(value.data if hasattr(value, "creator") else value,
                                              "cpu"))
    return flat


def unflatten(flat):
    """Inverse of ``flatten``; 0-d arrays stay 0-d arrays."""
    tree = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def list_checkpoints(directory):
    """Checkpoint files of ``directory``, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest(directory):
    files = list_checkpoints(directory)
    return files[-1] if files else None


def save(directory, step, state, *, keep=3):
    """Write ``state`` as ``directory/step_<step>.npz`` atomically; keep the newest ``keep``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"step_{int(step):07d}.npz"
    handle, temporary = tempfile.mkstemp(prefix=".tmp_", suffix=".npz", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **flatten(state))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink()
    return target


def load(path):
    """Read a checkpoint written by ``save`` into a nested dict of arrays."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            flat = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({error}); "
                              "delete it to resume from the previous one") from None
    if "step" not in flat:
        raise CheckpointError(f"{path} is not a training checkpoint (no 'step' entry)")
    return unflatten(flat)
