"""Tests of inpainting.weights.tf_checkpoint: reading TensorFlow V2 checkpoints without TensorFlow.

The fixture in tests/fixtures/tf_checkpoint/ was written by TensorFlow itself
(tests/fixtures/make_tf_checkpoint.py, not run here); expected.npz holds what TensorFlow reads
back. Hand-built tables below cover what TensorFlow's writer does not produce by default
(several data blocks, a compressed block, big-endian data, unsupported dtypes).
"""
import os
import shutil
import struct

import numpy as np
import pytest

from inpainting.weights.crc32c import crc32c, crc32c_reference, mask_crc, unmask_crc
from inpainting.weights.tf_checkpoint import (CheckpointError, CheckpointNotFoundError,
                                      CheckpointReader, read_checkpoint)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "tf_checkpoint")
PREFIX = "snap-7"
DATA = PREFIX + ".data-00000-of-00001"


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(FIXTURE, "expected.npz")) as npz:
        return {name: npz[name] for name in npz.files}


@pytest.fixture
def copy(tmp_path):
    """A private copy of the fixture checkpoint directory, safe to corrupt."""
    target = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, target)
    return target


def _flip_byte(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x40
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------
# crc32c
# ---------------------------------------------------------------------------------------------
def test_crc32c_known_values():
    # Check value of CRC-32C and the RFC 3720 (iSCSI) appendix B.4 vectors.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C


@pytest.mark.parametrize("size", [0, 1, 8191, 8192, 20000, 65536 + 77])
def test_crc32c_vectorised_matches_bytewise_loop(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc32c(data) == crc32c_reference(data)


def test_crc_mask_is_tensorflow_rotation_plus_delta():
    for crc in [0, 1, 0x80000000, 0xE3069283, 0xFFFFFFFF]:
        rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
        assert mask_crc(crc) == (rotated + 0xA282EAD8) & 0xFFFFFFFF
        assert unmask_crc(mask_crc(crc)) == crc


# ---------------------------------------------------------------------------------------------
# Reading what TensorFlow wrote
# ---------------------------------------------------------------------------------------------
def test_every_variable_equals_what_tensorflow_reads(expected):
    tensors = read_checkpoint(FIXTURE)
    assert sorted(tensors) == sorted(expected)
    for name, value in expected.items():
        assert tensors[name].dtype == value.dtype, name
        assert tensors[name].shape == value.shape, name
        np.testing.assert_array_equal(tensors[name], value, err_msg=name)


def test_names_shapes_dtypes(expected):
    reader = CheckpointReader(FIXTURE)
    assert reader.names() == sorted(expected)
    assert "inpaint_net/conv1/kernel/Adam" in reader.names()
    assert reader.shape("inpaint_net/conv1/kernel") == (5, 5, 5, 2)           # HWIO
    assert reader.shape("inpaint_net/conv13_upsample/conv13_upsample_conv/kernel") == (3, 3, 2, 2)
    assert reader.shape("global_step") == ()
    assert reader.dtype("global_step") == np.int64
    assert reader.dtype("extra/float64_var") == np.float64
    assert reader.dtype("extra/int32_var") == np.int32
    assert reader.dtype("extra/bool_var") == np.bool_
    assert reader.dtype("extra/int8_var") == np.int8
    assert reader.dtype("extra/uint8_var") == np.uint8
    assert reader.get("global_step") == 7
    for name in reader.names():
        assert reader.get(name).shape == reader.shape(name)


@pytest.mark.parametrize("form", ["dir", "prefix", "index", "data"])
def test_path_forms_resolve_to_the_same_prefix(form):
    path = {"dir": FIXTURE, "prefix": os.path.join(FIXTURE, PREFIX),
            "index": os.path.join(FIXTURE, PREFIX + ".index"),
            "data": os.path.join(FIXTURE, DATA)}[form]
    assert CheckpointReader(path).prefix == os.path.join(FIXTURE, PREFIX)


def test_state_file_with_foreign_absolute_path_falls_back_to_basename(copy):
    (copy / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/model_logs/snap-7"\n')
    assert CheckpointReader(copy).prefix == str(copy / PREFIX)


def test_directory_without_state_file_uses_its_single_index(copy):
    (copy / "checkpoint").unlink()
    assert CheckpointReader(copy).prefix == str(copy / PREFIX)


def test_read_only_requested_names(expected):
    names = ["inpaint_net/conv1/bias", "global_step"]
    tensors = read_checkpoint(FIXTURE, names)
    assert list(tensors) == names
    np.testing.assert_array_equal(tensors["inpaint_net/conv1/bias"],
                                  expected["inpaint_net/conv1/bias"])


# ---------------------------------------------------------------------------------------------
# Damaged or wrong inputs give clear errors
# ---------------------------------------------------------------------------------------------
def test_truncated_data_file(copy):
    data = copy / DATA
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    reader = CheckpointReader(copy)
    with pytest.raises(CheckpointError, match="truncated") as info:
        read_checkpoint(copy)
    assert DATA in str(info.value)
    assert reader.get("extra/int32_var").shape == (4,)   # bytes before the cut still read


def test_git_lfs_pointer_files_are_named(copy):
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 86466\n"
    (copy / DATA).write_bytes(pointer)
    with pytest.raises(CheckpointError, match="Git LFS pointer"):
        CheckpointReader(copy).get("inpaint_net/conv1/kernel")
    (copy / (PREFIX + ".index")).write_bytes(pointer)
    with pytest.raises(CheckpointError, match="Git LFS pointer"):
        CheckpointReader(copy)


def test_flipped_data_byte_fails_that_variables_checksum(copy, expected):
    name = "inpaint_net/conv2_downsample/kernel"          # large: vectorised crc path
    reader = CheckpointReader(copy)
    entry = reader._entries[name]
    _flip_byte(copy / DATA, entry.offset + entry.size // 3)
    with pytest.raises(CheckpointError, match="crc32c mismatch") as info:
        reader.get(name)
    assert name in str(info.value) and DATA in str(info.value)
    np.testing.assert_array_equal(reader.get("inpaint_net/conv1/kernel"),
                                  expected["inpaint_net/conv1/kernel"])


def test_every_flipped_index_byte_is_detected(copy):
    index = copy / (PREFIX + ".index")
    original = index.read_bytes()
    checked = len(original) - 48         # data, metaindex and index blocks with their trailers
    for position in range(checked):
        _flip_byte(index, position)
        with pytest.raises(CheckpointError, match=PREFIX + ".index"):
            CheckpointReader(copy)
        index.write_bytes(original)


def test_flipped_magic_number_is_not_a_checkpoint(copy):
    index = copy / (PREFIX + ".index")
    _flip_byte(index, index.stat().st_size - 1)
    with pytest.raises(CheckpointError, match="magic"):
        CheckpointReader(copy)


def test_truncated_index(copy):
    index = copy / (PREFIX + ".index")
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint index"):
        CheckpointReader(copy)


def test_missing_data_shard(copy):
    (copy / DATA).unlink()
    reader = CheckpointReader(copy)
    with pytest.raises(CheckpointNotFoundError, match="missing data shard") as info:
        reader.get("inpaint_net/conv1/kernel")
    assert isinstance(info.value, FileNotFoundError) and DATA in str(info.value)


def test_missing_variable_lists_every_absent_name():
    with pytest.raises(CheckpointNotFoundError, match="inpaint_net/nope.*inpaint_net/gone"):
        read_checkpoint(FIXTURE, ["inpaint_net/conv1/kernel", "inpaint_net/nope",
                                  "inpaint_net/gone"])
    with pytest.raises(CheckpointNotFoundError, match="no variable named 'x'"):
        CheckpointReader(FIXTURE).get("x")
    with pytest.raises(CheckpointNotFoundError):
        CheckpointReader(FIXTURE).shape("x")


def test_non_checkpoint_files(tmp_path):
    text = tmp_path / "notes.index"
    text.write_text("this is not an sstable, just some text long enough for a footer\n" * 2)
    with pytest.raises(CheckpointError, match="notes.index.*bad table magic"):
        CheckpointReader(text)
    tiny = tmp_path / "tiny.index"
    tiny.write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="shorter than"):
        CheckpointReader(tiny)
    v1_style = tmp_path / "model.ckpt"
    v1_style.write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match="not a TensorFlow V2 checkpoint"):
        CheckpointReader(v1_style)
    with pytest.raises(CheckpointNotFoundError, match="no such checkpoint"):
        CheckpointReader(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no 'checkpoint' file"):
        CheckpointReader(tmp_path)                     # two .index files, no state file


# ---------------------------------------------------------------------------------------------
# Hand-built tables: several blocks, compression flag, big-endian data, unsupported dtypes
# ---------------------------------------------------------------------------------------------
def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number, wire, payload):
    tag = _varint(number << 3 | wire)
    if wire == 2:
        return tag + _varint(len(payload)) + payload
    if wire == 5:
        return tag + struct.pack("<I", payload)
    return tag + _varint(payload)


def _entry(dtype, shape, offset, raw):
    dims = b"".join(_field(2, 2, _field(1, 0, d)) for d in shape)
    return (_field(1, 0, dtype) + _field(2, 2, dims) + _field(4, 0, offset)
            + _field(5, 0, len(raw)) + _field(6, 5, mask_crc(crc32c(raw))))


def _block(items, restart_interval=2):
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(items):
        shared = 0
        if i % restart_interval:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        out += key[shared:] + value
        previous = key
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def _write_table(path, items, per_block=2, kind=0):
    out, index = bytearray(), []
    for start in range(0, len(items), per_block):
        chunk = items[start:start + per_block]
        block = _block(chunk) + bytes([kind])
        index.append((chunk[-1][0], _varint(len(out)) + _varint(len(block) - 1)))
        out += block + struct.pack("<I", mask_crc(crc32c(block)))
    handles = []
    for block in [_block([]), _block(index)]:          # metaindex (empty), then index
        handles.append(_varint(len(out)) + _varint(len(block)))
        block += b"\0"
        out += block + struct.pack("<I", mask_crc(crc32c(block)))
    footer = b"".join(handles).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    path.write_bytes(bytes(out + footer))


def _write_bundle(tmp_path, big_endian=False, kind=0):
    arrays = {b"a/kernel": np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5,
              b"a/kernel/Adam": np.array([1, -2], dtype=np.int64),
              b"b/step": np.array(9, dtype=np.int32),
              b"c/double": np.linspace(0, 1, 5)}
    order = ">" if big_endian else "<"
    data, items = bytearray(), []
    for key, array in arrays.items():
        raw = array.astype(array.dtype.newbyteorder(order)).tobytes()
        dtype = {np.float32: 1, np.int64: 9, np.int32: 3, np.float64: 2}[array.dtype.type]
        items.append((key, _entry(dtype, array.shape, len(data), raw)))
        data += raw
    items.append((b"d/text", _entry(7, (1,), 0, b"")))
    header = _field(1, 0, 1) + _field(2, 0, int(big_endian))
    slice_key = (b"\x00\x01c/double", b"")          # how TF keys a partitioned slice
    _write_table(tmp_path / "hand.index", [(b"", header), slice_key] + items, kind=kind)
    (tmp_path / "hand.data-00000-of-00001").write_bytes(bytes(data))
    return {k.decode(): v for k, v in arrays.items()}


@pytest.mark.parametrize("big_endian", [False, True])
def test_hand_built_multi_block_bundle(tmp_path, big_endian):
    arrays = _write_bundle(tmp_path, big_endian=big_endian)
    reader = CheckpointReader(tmp_path / "hand")
    assert reader.names() == sorted(list(arrays) + ["d/text"])
    assert reader.byte_order == (">" if big_endian else "<")
    assert reader.dtype("a/kernel") == np.float32 and reader.dtype("a/kernel").isnative
    tensors = read_checkpoint(tmp_path / "hand")         # skips the undecodable string entry
    assert sorted(tensors) == sorted(arrays)
    for name, array in arrays.items():
        assert tensors[name].dtype == array.dtype and tensors[name].dtype.isnative
        np.testing.assert_array_equal(tensors[name], array)
    with pytest.raises(CheckpointError, match="'d/text' has dtype string"):
        read_checkpoint(tmp_path / "hand", ["d/text"])


def test_compressed_block_is_refused_clearly(tmp_path):
    _write_bundle(tmp_path, kind=1)
    with pytest.raises(CheckpointError, match="compressed with snappy"):
        CheckpointReader(tmp_path / "hand")
