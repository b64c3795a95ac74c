"""Model files are checked against the architecture they declare before any array is read.

Hostile or inconsistent files (a small file whose header declares a huge array, a compressed
entry that expands to far more than the model needs, a width beyond ``MAX_CNUM``, missing or
misshapen weights) are refused with a message naming the file and the problem, while the
memory traced during the refusal stays far below what the file declares.
"""
import io
import tracemalloc
import zipfile

import numpy as np
import pytest

import nnlite
from inpainting.weights.checkpoint import CheckpointError
from inpainting.weights.model_io import MAX_CNUM, generator_shapes, load_generator, save_generator
from inpainting.model.networks import InpaintGenerator
from nnlite.serialization import SerializationError


def _npy_header(shape, descr="<f4"):
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False,
                                                  "shape": tuple(shape)})
    return stream.getvalue()


def _write_zip(path, entries, compression=zipfile.ZIP_STORED):
    """``entries``: {name: bytes of an .npy file}."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, payload in entries.items():
            archive.writestr(name + ".npy", payload)


def _npy(array):
    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.asarray(array), allow_pickle=False)
    return stream.getvalue()


def _peak_while(function):
    """(exception raised by ``function``, peak bytes traced meanwhile)."""
    tracemalloc.start()
    try:
        function()
    except Exception as error:           # noqa: BLE001 - returned to the test
        raised = error
    else:
        raised = None
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return raised, peak


def test_generator_shapes_are_the_architectures_own():
    for cnum in (2, 6, 32):
        generator = InpaintGenerator(cnum)
        assert generator_shapes(cnum) == {name: tuple(value.shape) for name, value in
                                          generator.state_dict().items()}


def test_a_small_file_declaring_a_huge_array_is_refused_without_allocating(tmp_path):
    """3.6 MB of data under a header that declares a (25000, 20000) float32 array (2 GB): the
    header and the entry's size disagree, so the file is refused before reading."""
    path = tmp_path / "huge.npz"
    payload = _npy_header((25000, 20000)) + bytes(3_600_000)
    _write_zip(path, {"cnum": _npy(np.asarray(4)), "generator/conv1.weight": payload})
    raised, peak = _peak_while(lambda: load_generator(path))
    assert isinstance(raised, CheckpointError), raised
    assert "huge.npz" in str(raised) and "declares shape (25000, 20000)" in str(raised)
    assert peak < 2_000_000, peak
    with pytest.raises(SerializationError, match="2,000,000,000 bytes"):
        nnlite.serialization.inspect(path)


def test_a_compressed_entry_larger_than_the_architecture_is_refused_unread(tmp_path):
    """A deflated entry of 64 MB of zeros (a zip bomb in small) where conv1's weight of a
    cnum-4 generator, 2 KB, belongs: refused from its header, nothing decompressed."""
    path = tmp_path / "bomb.npz"
    tree = nnlite.load(save_generator(tmp_path / "ok.npz", InpaintGenerator(4)), nested=False)
    entries = {name: _npy(value) for name, value in tree.items()}
    entries["generator/conv1.weight"] = _npy(np.zeros((4, 5, 5, 5 * 32768), np.float32))
    _write_zip(path, entries, compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1_000_000
    raised, peak = _peak_while(lambda: load_generator(path))
    assert isinstance(raised, CheckpointError), raised
    assert "conv1.weight has shape (4, 5, 5, 163840), the architecture needs (4, 5, 5, 5)" \
        in str(raised)
    assert peak < 2_000_000, peak


def test_inconsistent_widths_and_weight_sets_are_named(tmp_path):
    tree = nnlite.load(save_generator(tmp_path / "ok.npz", InpaintGenerator(4)), nested=False)

    def write(name, **changes):
        flat = {**tree, **changes}
        flat = {key: value for key, value in flat.items() if value is not None}
        _write_zip(tmp_path / name, {key: _npy(value) for key, value in flat.items()})
        return tmp_path / name

    huge = {"cnum": np.asarray(100_000),
            "generator/conv1.weight": np.zeros((100_000, 5, 1, 1), np.float32)}
    cases = [
        (write("wide.npz", **huge), f"declares cnum=100000; a generator has an even width "
                                    f"from 2 to {MAX_CNUM}"),
        (write("odd.npz", cnum=np.asarray(5)), "declares cnum=5"),
        (write("missing.npz", **{"generator/conv3.weight": None}), "missing conv3.weight"),
        (write("extra.npz", **{"generator/conv99.weight": np.zeros(2, np.float32)}),
         "unexpected conv99.weight"),
        (write("shape.npz", **{"generator/conv5.bias": np.zeros(3, np.float32)}),
         r"conv5.bias has shape \(3,\), the architecture needs \(16,\)"),
        (write("text.npz", meta=np.asarray("x" * 300_000)), "'meta' entry declares 1,200,000"),
    ]
    for path, message in cases:
        with pytest.raises(CheckpointError, match=message) as info:
            load_generator(path)
        assert path.name in str(info.value)


def test_load_reads_only_the_named_entries_and_honours_a_byte_limit(tmp_path):
    path = tmp_path / "two.npz"
    nnlite.save(path, {"a": np.ones(1000, np.float32), "b": {"c": np.arange(3)}})
    assert nnlite.serialization.inspect(path)["a"].nbytes == 4000
    partial = nnlite.load(path, names=["b/c"])
    assert list(partial) == ["b"] and partial["b"]["c"].tolist() == [0, 1, 2]
    with pytest.raises(SerializationError, match="would take 4,024 bytes .* than the 4,000"):
        nnlite.load(path, max_bytes=4000)
    assert set(nnlite.load(path, max_bytes=4024)) == {"a", "b"}
