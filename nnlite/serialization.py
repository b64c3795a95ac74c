"""``nnlite.save`` / ``nnlite.load``: nested dicts of arrays in ``.npz`` files, without pickle.

A file written here holds only plain arrays (``numpy.lib.format``), so opening
one from a stranger cannot run code: ``load`` reads with ``allow_pickle=False``.

* Nested dicts are flattened with '/' between levels: ``{"model": {"w": a}}`` is
  stored as the entry ``model/w`` and comes back nested. Keys may not contain '/'.
* Leaves may be NumPy or CuPy arrays, Tensors (their data), Python numbers,
  booleans or strings; scalars and strings are stored as 0-d arrays and come
  back as 0-d arrays (``int(x)``, ``float(x)``, ``str(x)`` read them).
* Writes are atomic: the file is written under a temporary name in the same
  folder (``.<name>.<8 random characters>.tmp``, ``TEMPORARY_NAME``) and renamed into
  place with ``os.replace``, so a crash leaves either the old file or the new one, never
  half of one. The file gets the permissions an ordinary ``open`` would give it (0666
  less the process's umask), not the 0600 of a bare temporary file. ``atomic_write`` is
  the same writer for any file (images, text).
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["save", "load", "flatten", "unflatten", "atomic_write", "SerializationError",
           "TEMPORARY_NAME"]

#: the name of a file ``atomic_write`` has not finished: ``.<name>.<mkstemp's 8 characters>.tmp``
TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class SerializationError(ValueError):
    """A file is not a readable pickle-free ``.npz`` archive, or a value cannot be stored."""


def flatten(tree, prefix: str = "") -> dict:
    """``{"a": {"b": x}}`` -> ``{"a/b": array(x)}``, host NumPy arrays, insertion order kept."""
    if not hasattr(tree, "items"):
        raise TypeError(f"save: expected a dict of arrays, got {type(tree).__name__}")
    flat = {}
    for key, value in tree.items():
        key = str(key)
        if not key or "/" in key:
            raise ValueError(f"save: key {prefix + key!r} is empty or contains '/', which "
                             "separates nesting levels")
        name = prefix + key
        if hasattr(value, "items"):
            flat.update(flatten(value, name + "/"))
            continue
        array = np.asarray(backend.to_device(value.data if isinstance(value, Tensor) else value,
                                             "cpu"))
        if array.dtype == object:
            raise SerializationError(f"save: {name!r} is a {type(value).__name__} that is not "
                                     "a plain array, number or string (it would need pickle)")
        flat[name] = array
    return flat


def unflatten(flat) -> dict:
    """Inverse of ``flatten``."""
    tree = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _umask():
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """``with atomic_write(path) as stream:`` writes ``path`` all at once or not at all.

    The stream is a temporary file next to ``path``; on a clean exit it is flushed, synced,
    given the permissions ``open`` would give (0666 & ~umask) and renamed over ``path``. On
    an exception it is removed and ``path`` is untouched. A process killed midway leaves the
    temporary file (named as ``TEMPORARY_NAME`` matches), which the next run can remove.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def save(path, tree) -> None:
    """Write the nested dict ``tree`` to ``path`` (an ``.npz`` archive), atomically."""
    flat = flatten(tree)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as stream:
        # What numpy.savez does, minus its reserved keyword names ('file', 'allow_pickle').
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, array in flat.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array(entry, array, allow_pickle=False)


def load(path, *, nested: bool = True) -> dict:
    """Read a file written by ``save``: a nested dict (or the flat one with ``nested=False``)
    of NumPy arrays. Never unpickles.

    Raises FileNotFoundError for a missing file and ``SerializationError`` for one
    that is truncated, not an ``.npz`` archive, or holds pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load: no such file {str(path)!r}")
    with open(path, "rb") as stream:
        magic = stream.read(6)
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
        raise SerializationError(f"load: {str(path)!r} is not an .npz archive (an .npz file "
                                 f"starts with the zip signature 'PK'; this one starts with "
                                 f"{magic!r})")
    try:
        archive = np.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise SerializationError(f"load: {str(path)!r} holds a single .npy array, not "
                                     "an .npz archive of named arrays")
        with archive:
            flat = {name: archive[name] for name in archive.files}
    except SerializationError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise SerializationError(f"load: {str(path)!r} is not a readable pickle-free .npz "
                                 f"file ({type(error).__name__}: {error})") from error
    return unflatten(flat) if nested else flat
