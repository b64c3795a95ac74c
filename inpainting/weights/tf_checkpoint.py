"""Read TensorFlow "V2" checkpoints with only the standard library and NumPy (spec §8).

A V2 checkpoint with prefix ``P`` is two or more files:

* ``P.index`` — an SSTable (the LevelDB table format, as used by TensorFlow) mapping each
  variable name to a ``BundleEntryProto`` (dtype, shape, shard_id, offset, size, crc32c).
  The empty key holds the ``BundleHeaderProto`` (number of shards, byte order, version).
* ``P.data-SSSSS-of-NNNNN`` — the raw tensor bytes, one shard per file.

SSTable layout (all integers little-endian)::

    [data block 0][trailer] ... [data block k][trailer] [metaindex block][trailer]
    [index block][trailer] [footer: 48 bytes]
    footer  = varint64 handles (metaindex offset, size, index offset, size), zero-padded to
              40 bytes, then the 8-byte magic 0xdb4775248b80fb57
    trailer = 1 byte compression type (0 = none) + 4 bytes masked crc32c(block + type byte)
    block   = entries, then uint32 restart offsets, then uint32 number of restarts
    entry   = varint32 shared, varint32 non_shared, varint32 value_length,
              key[shared:] (the first `shared` bytes are the previous key's), value

The index block maps a separator key to the BlockHandle (varint64 offset, varint64 size) of
each data block. Protobuf messages are decoded by hand from the wire format.

Every block and every tensor read is checked with crc32c (Castagnoli) in TensorFlow's masked
form (inpainting/crc32c.py). What this module does not do: compressed (snappy) blocks, string
tensors, partitioned (sliced) variables and the old single-file V1 format — each gives a clear
CheckpointError.
"""
from __future__ import annotations

import os
import re
import struct

import numpy as np

from inpainting.weights.crc32c import crc32c, unmask_crc
from inpainting.weights.errors import CheckpointError

__all__ = ["CheckpointError", "CheckpointNotFoundError", "CheckpointReader", "read_checkpoint"]


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint file, data shard or variable that was asked for does not exist."""


# ---------------------------------------------------------------------------------------------
# Varints and the protobuf wire format
# ---------------------------------------------------------------------------------------------
def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    """Decode an unsigned LEB128 varint at buf[pos]; return (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError(f"{where}: varint runs past the end of its buffer")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CheckpointError(f"{where}: varint longer than 10 bytes")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _proto_fields(buf: bytes, where: str) -> list[tuple[int, int | bytes]]:
    """Decode one protobuf message into [(field number, value)] in wire order.

    Wire types: 0 varint -> int, 1 fixed64 -> int, 2 length-delimited -> bytes,
    5 fixed32 -> int. Groups (3, 4) do not occur in checkpoint protos and are rejected.
    """
    fields, pos = [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos, where)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, where)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise CheckpointError(f"{where}: truncated fixed{8 * width} field {number}")
            value = int.from_bytes(buf[pos:pos + width], "little")
            pos += width
        elif wire == 2:
            size, pos = _varint(buf, pos, where)
            if pos + size > len(buf):
                raise CheckpointError(f"{where}: truncated length-delimited field {number}")
            value = bytes(buf[pos:pos + size])
            pos += size
        else:
            raise CheckpointError(f"{where}: unsupported protobuf wire type {wire} "
                                  f"(field {number})")
        fields.append((number, value))
    return fields


# TensorFlow DataType enum (types.proto) -> NumPy dtype (little-endian form).
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
           8: np.complex64, 9: np.int64, 10: np.bool_, 17: np.uint16, 18: np.complex128,
           19: np.float16, 22: np.uint32, 23: np.uint64}
_DTYPE_NAMES = {7: "string", 14: "bfloat16", 20: "resource", 21: "variant"}


class _Entry:
    """A decoded BundleEntryProto: where one tensor's bytes are and how to read them."""

    __slots__ = ("dtype_enum", "shape", "shard_id", "offset", "size", "crc32c", "sliced")

    def __init__(self, value: bytes, where: str):
        self.dtype_enum, self.shape, self.shard_id = 0, (), 0
        self.offset = self.size = 0
        self.crc32c, self.sliced = None, False
        for number, v in _proto_fields(value, where):
            if number == 1:
                self.dtype_enum = v
            elif number == 2:                        # TensorShapeProto: repeated Dim dim = 2
                dims = []
                for n2, dim in _proto_fields(v, where):
                    if n2 == 3 and dim:
                        raise CheckpointError(f"{where}: tensor of unknown rank")
                    if n2 == 2:                      # Dim: int64 size = 1
                        dims.append(_signed64(dict(_proto_fields(dim, where)).get(1, 0)))
                self.shape = tuple(dims)
            elif number == 3:
                self.shard_id = v
            elif number == 4:
                self.offset = v
            elif number == 5:
                self.size = v
            elif number == 6:
                self.crc32c = v
            elif number == 7:
                self.sliced = True


# ---------------------------------------------------------------------------------------------
# The SSTable (.index file)
# ---------------------------------------------------------------------------------------------
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5
_LFS_POINTER = b"version https://git-lfs"
_LFS_HINT = ("a Git LFS pointer file, not the checkpoint data (the repository was cloned "
             "without LFS); download the real file (e.g. `git lfs pull`)")


def _read_block(data: bytes, handle: tuple[int, int], path: str, what: str) -> bytes:
    """Return the contents of the block at handle (offset, size), checking type and crc."""
    offset, size = handle
    end = offset + size + _BLOCK_TRAILER_SIZE
    if end > len(data):
        raise CheckpointError(f"{path}: truncated — the {what} block needs bytes up to {end}, "
                              f"the file has {len(data)}")
    contents = data[offset:offset + size]
    kind = data[offset + size]
    stored = int.from_bytes(data[offset + size + 1:end], "little")
    if unmask_crc(stored) != crc32c(data[offset:offset + size + 1]):
        raise CheckpointError(f"{path}: crc32c mismatch in the {what} block at byte {offset} "
                              f"(the file is corrupted)")
    if kind != 0:
        codec = {1: "snappy", 2: "zlib"}.get(kind, f"unknown type {kind}")
        raise CheckpointError(f"{path}: the {what} block is compressed with {codec}; only "
                              f"uncompressed tables are supported (re-save without compression)")
    return contents


def _block_entries(block: bytes, path: str, what: str):
    """Yield (key, value) of a block, undoing the prefix compression of keys."""
    where = f"{path} ({what} block)"
    if len(block) < 4:
        raise CheckpointError(f"{where}: block too short for its restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 * (1 + num_restarts)
    if limit < 0:
        raise CheckpointError(f"{where}: restart array ({num_restarts}) larger than the block")
    key, pos = b"", 0
    while pos < limit:
        shared, pos = _varint(block, pos, where)
        non_shared, pos = _varint(block, pos, where)
        value_length, pos = _varint(block, pos, where)
        if shared > len(key) or pos + non_shared + value_length > limit:
            raise CheckpointError(f"{where}: corrupted entry at byte {pos}")
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        yield key, block[pos:pos + value_length]
        pos += value_length


def _read_table(path: str) -> dict[bytes, bytes]:
    """Read every (key, value) of the SSTable at `path`."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(_LFS_POINTER):
        raise CheckpointError(f"{path}: {_LFS_HINT}")
    if len(data) < _FOOTER_SIZE:
        raise CheckpointError(f"{path}: not a TensorFlow checkpoint index ({len(data)} bytes, "
                              f"shorter than the {_FOOTER_SIZE}-byte table footer)")
    footer = data[-_FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
        raise CheckpointError(f"{path}: not a TensorFlow checkpoint index (bad table magic "
                              f"number; truncated or a different kind of file)")
    where = f"{path} (footer)"
    meta_offset, pos = _varint(footer, 0, where)
    meta_size, pos = _varint(footer, pos, where)
    index_offset, pos = _varint(footer, pos, where)
    index_size, pos = _varint(footer, pos, where)
    # The metaindex block names filter blocks; bundles have none, but check it is intact.
    list(_block_entries(_read_block(data, (meta_offset, meta_size), path, "metaindex"),
                        path, "metaindex"))
    table = {}
    index = _read_block(data, (index_offset, index_size), path, "index")
    for _, handle in _block_entries(index, path, "index"):
        offset, p = _varint(handle, 0, where)
        size, _ = _varint(handle, p, where)
        table.update(_block_entries(_read_block(data, (offset, size), path, "data"),
                                    path, "data"))
    return table


# ---------------------------------------------------------------------------------------------
# Locating the files
# ---------------------------------------------------------------------------------------------
def _resolve_prefix(path: str | os.PathLike) -> str:
    """Turn a directory, a prefix, a .index path or a .data path into the checkpoint prefix."""
    path = os.fspath(path)
    if os.path.isdir(path):
        state_file = os.path.join(path, "checkpoint")
        if os.path.isfile(state_file):
            with open(state_file, encoding="utf-8", errors="replace") as f:
                match = re.search(r'^model_checkpoint_path:\s*"(.*)"', f.read(), re.M)
            if not match:
                raise CheckpointError(f"{state_file}: no model_checkpoint_path line")
            named = match.group(1)
            candidates = [os.path.join(path, named), os.path.join(path, os.path.basename(named))]
            for prefix in candidates:             # a moved directory keeps the basename valid
                if os.path.isfile(prefix + ".index"):
                    return prefix
            raise CheckpointNotFoundError(f"{state_file} names {named!r}, but "
                                          f"{candidates[-1]}.index does not exist")
        indices = sorted(name for name in os.listdir(path) if name.endswith(".index"))
        if len(indices) == 1:
            return os.path.join(path, indices[0][:-len(".index")])
        raise CheckpointNotFoundError(
            f"{path}: directory has no 'checkpoint' file and {len(indices)} .index files "
            f"({', '.join(indices) or 'none'}); pass the checkpoint prefix instead")
    if path.endswith(".index"):
        path = path[:-len(".index")]
    path = re.sub(r"\.data-\d{5}-of-\d{5}$", "", path)
    if os.path.isfile(path + ".index"):
        return path
    if os.path.isfile(path):
        raise CheckpointError(f"{path}: not a TensorFlow V2 checkpoint (expected {path}.index "
                              f"next to it; the old single-file V1 format is not supported)")
    raise CheckpointNotFoundError(f"{path}.index: no such checkpoint file")


# ---------------------------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------------------------
class CheckpointReader:
    """Read the variables of a TensorFlow V2 checkpoint without TensorFlow.

    `path` may be the checkpoint directory (with its `checkpoint` state file), the prefix
    (e.g. ``model_logs/snap-0``), or the ``.index`` / ``.data-*`` file. The index is read and
    checked at construction; tensor bytes are read (and their crc32c verified) by `get`.
    """

    def __init__(self, path: str | os.PathLike):
        self.prefix = _resolve_prefix(path)
        self.index_path = self.prefix + ".index"
        table = _read_table(self.index_path)
        if b"" not in table:
            raise CheckpointError(f"{self.index_path}: no bundle header (empty key); "
                                  f"not a tensor bundle")
        header = dict(_proto_fields(table.pop(b""), f"{self.index_path} (header)"))
        self.num_shards = header.get(1, 1)
        self.byte_order = "<" if header.get(2, 0) == 0 else ">"
        self._entries: dict[str, _Entry] = {}
        for key, value in table.items():
            if key.startswith(b"\x00"):          # slices of a partitioned variable, not names
                continue
            name = key.decode("utf-8", errors="replace")
            self._entries[name] = _Entry(value, f"{self.index_path} (entry {name!r})")

    def names(self) -> list[str]:
        """All variable names in the checkpoint, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def _entry(self, name: str) -> _Entry:
        if name not in self._entries:
            raise CheckpointNotFoundError(f"{self.index_path}: no variable named {name!r}")
        return self._entries[name]

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of variable `name`, in the checkpoint's own layout (NHWC / HWIO)."""
        return self._entry(name).shape

    def supported(self, name: str) -> bool:
        """Whether `get(name)` can decode this variable's dtype and layout."""
        entry = self._entry(name)
        return entry.dtype_enum in _DTYPES and not entry.sliced

    def dtype(self, name: str) -> np.dtype:
        """The NumPy dtype `get(name)` returns; CheckpointError for types NumPy cannot hold."""
        entry = self._entry(name)
        if entry.dtype_enum not in _DTYPES:
            kind = _DTYPE_NAMES.get(entry.dtype_enum, f"DataType enum {entry.dtype_enum}")
            raise CheckpointError(f"{self.index_path}: variable {name!r} has dtype {kind}, "
                                  f"which this reader does not support")
        return np.dtype(_DTYPES[entry.dtype_enum])

    def shard_path(self, shard_id: int) -> str:
        """Path of data shard `shard_id`: ``<prefix>.data-SSSSS-of-NNNNN``."""
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    def get(self, name: str) -> np.ndarray:
        """Read variable `name` as a new native-byte-order array; verifies its crc32c."""
        entry = self._entry(name)
        dtype = self.dtype(name)
        if entry.sliced:
            raise CheckpointError(f"{self.index_path}: variable {name!r} is partitioned into "
                                  f"slices, which this reader does not support")
        expected = int(np.prod(entry.shape, dtype=np.int64)) * dtype.itemsize
        if entry.size != expected:
            raise CheckpointError(f"{self.index_path}: variable {name!r} stores {entry.size} "
                                  f"bytes, but shape {entry.shape} of {dtype} needs {expected}")
        shard = self.shard_path(entry.shard_id)
        try:
            with open(shard, "rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except FileNotFoundError:
            raise CheckpointNotFoundError(f"{shard}: missing data shard (needed for "
                                          f"{name!r})") from None
        if len(raw) != entry.size:
            with open(shard, "rb") as f:
                if f.read(len(_LFS_POINTER)) == _LFS_POINTER:
                    raise CheckpointError(f"{shard}: {_LFS_HINT}")
            raise CheckpointError(f"{shard}: truncated — {name!r} needs bytes "
                                  f"{entry.offset}..{entry.offset + entry.size}, the file ends "
                                  f"at {entry.offset + len(raw)}")
        if entry.crc32c is not None and unmask_crc(entry.crc32c) != crc32c(raw):
            raise CheckpointError(f"{shard}: crc32c mismatch for {name!r} (the data file is "
                                  f"corrupted)")
        array = np.frombuffer(raw, dtype=dtype.newbyteorder(self.byte_order))
        return array.reshape(entry.shape).astype(dtype, copy=True)


def read_checkpoint(path: str | os.PathLike, names=None) -> dict[str, np.ndarray]:
    """Read the named variables into {name: array}.

    `names=None` reads every variable this reader can decode (string, bfloat16, resource and
    sliced entries are then skipped); a requested name that cannot be decoded is an error.
    Raises CheckpointNotFoundError listing every requested name that is absent.
    """
    reader = CheckpointReader(path)
    if names is None:
        names = [name for name in reader.names() if reader.supported(name)]
    missing = [n for n in names if n not in reader]
    if missing:
        raise CheckpointNotFoundError(f"{reader.index_path}: missing variable(s): "
                                      f"{', '.join(missing)}")
    return {name: reader.get(name) for name in names}
