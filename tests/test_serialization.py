"""``nnlite.save`` / ``nnlite.load``: nested dicts, scalars and strings, no pickle,
atomic writes, clear errors on missing and corrupt files."""
import zipfile

import numpy as np
import pytest

import nnlite
from nnlite import Tensor, serialization
from nnlite.serialization import SerializationError


def test_nested_round_trip_with_scalars_strings_and_tensors(tmp_path):
    tree = {"model": {"conv1.weight": np.arange(6.0, dtype=np.float32).reshape(2, 3),
                      "flag": True},
            "step": 12, "lr": 1e-4, "note": "résumé", "t": Tensor(np.ones(2)),
            "file": np.zeros(1), "allow_pickle": np.ones(1)}   # numpy.savez's reserved names
    nnlite.save(tmp_path / "a.npz", tree)
    back = nnlite.load(tmp_path / "a.npz")
    assert list(back) == ["model", "step", "lr", "note", "t", "file", "allow_pickle"]
    weight = back["model"]["conv1.weight"]
    assert weight.dtype == np.float32
    np.testing.assert_array_equal(weight, tree["model"]["conv1.weight"])
    assert bool(back["model"]["flag"]) is True and back["model"]["flag"].shape == ()
    assert int(back["step"]) == 12 and float(back["lr"]) == 1e-4 and str(back["note"]) == "résumé"
    np.testing.assert_array_equal(back["t"], np.ones(2))
    flat = nnlite.load(tmp_path / "a.npz", nested=False)
    assert "model/conv1.weight" in flat


def test_files_open_without_pickle(tmp_path):
    nnlite.save(tmp_path / "a.npz", {"x": np.ones(3)})
    with np.load(tmp_path / "a.npz", allow_pickle=False) as archive:
        assert archive.files == ["x"]


def test_objects_that_would_need_pickle_are_refused(tmp_path):
    with pytest.raises(SerializationError, match="'bad/thing' is a dict_values"):
        nnlite.save(tmp_path / "a.npz", {"bad": {"thing": {1: 2}.values()}})
    with pytest.raises(ValueError, match="contains '/'"):
        nnlite.save(tmp_path / "a.npz", {"a/b": np.ones(1)})
    assert not (tmp_path / "a.npz").exists()


def test_pickled_payloads_are_not_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"x": 1}], dtype=object))   # an object array needs pickle
    with pytest.raises(SerializationError, match="not a readable pickle-free .npz"):
        nnlite.load(path)


def test_missing_truncated_and_foreign_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        nnlite.load(tmp_path / "absent.npz")
    nnlite.save(tmp_path / "good.npz", {"x": np.arange(1000.0)})
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SerializationError, match="cut.npz"):
        nnlite.load(tmp_path / "cut.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(SerializationError, match="text.npz' is not an .npz archive .*b'not an'"):
        nnlite.load(tmp_path / "text.npz")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(SerializationError, match="not an .npz archive") as info:
        nnlite.load(tmp_path / "picture.png")
    assert "pickle" not in str(info.value)
    np.save(tmp_path / "single.npy", np.ones(2))
    with pytest.raises(SerializationError, match="single .npy array"):
        nnlite.load(tmp_path / "single.npy")
    with zipfile.ZipFile(tmp_path / "zip.npz", "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY garbage")
    with pytest.raises(SerializationError):
        nnlite.load(tmp_path / "zip.npz")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "state.npz"
    nnlite.save(path, {"version": 1})

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", explode)      # NumPy's, not nnlite's
    with pytest.raises(OSError, match="disk full"):
        nnlite.save(path, {"version": 2})
    monkeypatch.undo()
    assert int(nnlite.load(path)["version"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.npz"]


def test_empty_keys_are_refused_at_every_level(tmp_path):
    """An empty key cannot round-trip ('a//b' would not split back); save refuses it."""
    for tree in ({"": np.ones(2)}, {"a": {"": np.ones(2)}}):
        with pytest.raises(ValueError, match="empty"):
            nnlite.save(tmp_path / "x.npz", tree)
    assert not (tmp_path / "x.npz").exists()
