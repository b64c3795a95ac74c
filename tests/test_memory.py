"""nnlite.kernels.memory: glibc malloc settings for large arrays, and the CLI applying them."""
import platform

import numpy as np
import pytest

import nnlite.kernels.memory as memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is a glibc function")
def test_glibc_accepts_the_settings_and_arrays_still_work():
    assert memory.reuse_freed_memory() is True
    a = np.arange(10 * 2**20, dtype=np.int64)            # 80 MB: now from malloc's heap
    assert int(a[-1]) == 10 * 2**20 - 1
    del a
    b = np.ones(10 * 2**20, dtype=np.int64)               # reuses the freed block
    assert int(b.sum()) == 10 * 2**20


@pytest.mark.parametrize("kwargs", [{"mmap_threshold": 0}, {"trim_threshold": 2**31},
                                    {"mmap_threshold": 1.5}, {"trim_threshold": True}])
def test_bad_thresholds_are_named(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        memory.reuse_freed_memory(**kwargs)


def test_environment_can_turn_it_off(monkeypatch):
    monkeypatch.delenv("NNLITE_REUSE_MEMORY", raising=False)
    assert memory.reuse_memory_requested()
    monkeypatch.setenv("NNLITE_REUSE_MEMORY", "0")
    assert not memory.reuse_memory_requested()


@pytest.mark.parametrize("setting, expected_calls", [("1", 1), ("0", 0)])
def test_the_command_line_applies_it_unless_told_not_to(monkeypatch, tmp_path, capsys,
                                                        setting, expected_calls):
    from inpainting.app.cli import main

    calls = []
    monkeypatch.setattr(memory, "reuse_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setenv("NNLITE_REUSE_MEMORY", setting)
    code = main(["inpaint", str(tmp_path / "missing.png"), str(tmp_path / "mask.png"),
                 "-o", str(tmp_path / "out.png")])
    assert code == 2 and "error" in capsys.readouterr().err     # the run itself failed cleanly
    assert len(calls) == expected_calls
