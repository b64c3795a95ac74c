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
* Reads check before they allocate: ``inspect`` reads only the archive's directory
  and each array's header (shape, dtype), and ``load`` refuses an entry whose
  header declares more bytes than the entry holds and, with ``max_bytes``, a total
  larger than the caller expects (a compressed entry can expand a thousandfold: a zip
  bomb), all before any array is materialised.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["save", "load", "inspect", "ArrayInfo", "flatten", "unflatten", "atomic_write",
           "SerializationError", "TEMPORARY_NAME"]

#: the name of a file ``atomic_write`` has not finished: ``.<name>.<mkstemp's 8 characters>.tmp``
TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")

#: Longest ``.npy`` header accepted (NumPy's own default limit).
MAX_HEADER_BYTES = 10_000


class SerializationError(ValueError):
    """A file is not a readable pickle-free ``.npz`` archive, or a value cannot be stored."""


class ArrayInfo(NamedTuple):
    """What an archive entry declares, read from its header alone: ``shape``, ``dtype``,
    ``nbytes`` (the array's size once loaded) and ``stored_bytes`` (its share of the file)."""
    shape: tuple
    dtype: np.dtype
    nbytes: int
    stored_bytes: int


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


def _check_signature(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"load: no such file {str(path)!r}")
    with open(path, "rb") as stream:
        magic = stream.read(6)
    if magic == b"\x93NUMPY":
        raise SerializationError(f"load: {str(path)!r} holds a single .npy array, not "
                                 "an .npz archive of named arrays")
    if not magic.startswith(b"PK"):
        raise SerializationError(f"load: {str(path)!r} is not an .npz archive (an .npz file "
                                 f"starts with the zip signature 'PK'; this one starts with "
                                 f"{magic!r})")


def _entry_info(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str) -> ArrayInfo:
    """Header of one ``.npy`` entry, checked against the bytes the entry really holds."""
    with archive.open(info) as entry:
        version = np.lib.format.read_magic(entry)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(
                entry, max_header_size=MAX_HEADER_BYTES)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(
                entry, max_header_size=MAX_HEADER_BYTES)
        header = entry.tell()
    where = f"{str(path)!r} entry {name!r}"
    if dtype.hasobject:
        raise SerializationError(f"load: {str(path)!r} is not a readable pickle-free .npz file: "
                                 f"entry {name!r} holds Python objects (dtype {dtype}), which "
                                 "would need pickle")
    count = 1
    for side in shape:
        count *= int(side)
    nbytes = count * dtype.itemsize
    if header + nbytes != info.file_size:
        raise SerializationError(
            f"load: {where} declares shape {tuple(shape)} of {dtype} = {nbytes:,} bytes, but the "
            f"entry holds {info.file_size - header:,} bytes: the file is corrupt or crafted")
    return ArrayInfo(tuple(int(side) for side in shape), dtype, nbytes, info.compress_size)


def inspect(path) -> dict:
    """``{name: ArrayInfo}`` for every entry of the archive at ``path``, read from the zip
    directory and the ``.npy`` headers only: no array is loaded, so this takes milliseconds
    whatever the file declares.

    Raises FileNotFoundError, or ``SerializationError`` when the file is not an ``.npz``
    archive, an entry is not an ``.npy`` array or holds Python objects, or a header
    declares more (or fewer) bytes than its entry holds.
    """
    path = Path(path)
    _check_signature(path)
    infos = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise SerializationError(f"load: {str(path)!r} holds {info.filename!r}, "
                                             "which is not an .npy array")
                name = info.filename[:-len(".npy")]
                infos[name] = _entry_info(archive, info, path, name)
    except SerializationError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise SerializationError(f"load: {str(path)!r} is not a readable pickle-free .npz "
                                 f"file ({type(error).__name__}: {error})") from error
    return infos


def load(path, *, nested: bool = True, names=None, max_bytes=None) -> dict:
    """Read a file written by ``save``: a nested dict (or the flat one with ``nested=False``)
    of NumPy arrays. Never unpickles.

    ``names``: load only these flat entries (e.g. ``["cnum", "generator/conv1.weight"]``).
    ``max_bytes``: refuse, before reading any array, a file whose selected entries would
    take more memory than this. Every entry is checked first (``inspect``), so a crafted
    header cannot make ``load`` allocate more than the file holds.

    Raises FileNotFoundError for a missing file and ``SerializationError`` for one
    that is truncated, not an ``.npz`` archive, crafted, too large, or holds pickled objects.
    """
    path = Path(path)
    infos = inspect(path)
    wanted = list(infos) if names is None else [name for name in names if name in infos]
    total = sum(infos[name].nbytes for name in wanted)
    if max_bytes is not None and total > max_bytes:
        raise SerializationError(f"load: {str(path)!r} would take {total:,} bytes of memory, "
                                 f"more than the {int(max_bytes):,} expected")
    try:
        with np.load(path, allow_pickle=False) as archive:
            flat = {name: archive[name] for name in wanted}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise SerializationError(f"load: {str(path)!r} is not a readable pickle-free .npz "
                                 f"file ({type(error).__name__}: {error})") from error
    return unflatten(flat) if nested else flat
