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


#: run in a fresh interpreter: the command line, then whether a 64 MiB array came from an
#: mmap (glibc's default for anything above 32 MiB) or from malloc's heap (the setting)
_CHILD = """
import ctypes, ctypes.util, sys
import numpy as np
from inpainting.app.cli import main

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = Info
code = main(sys.argv[1:])
before = libc.mallinfo2().hblkhd
a = np.ones(8 * 2**20)                        # 64 MiB
print(code, libc.mallinfo2().hblkhd - before >= a.nbytes)
"""


def _glibc_version():
    name, version = platform.libc_ver()
    return tuple(int(part) for part in version.split(".")[:2]) if name == "glibc" else (0, 0)


@pytest.mark.skipif(_glibc_version() < (2, 33), reason="reads glibc's mallinfo2 (glibc 2.33+)")
@pytest.mark.parametrize("setting, mapped", [("1", "False"), ("0", "True")])
def test_the_command_line_applies_it_unless_told_not_to(tmp_path, setting, mapped):
    """The ``inpainting`` command (which fails cleanly here: no such image) has applied the
    setting unless NNLITE_REUSE_MEMORY=0: seen in glibc's own count of mmapped bytes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "NNLITE_REUSE_MEMORY": setting,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _CHILD, "inpaint", str(tmp_path / "missing.png"),
                           str(tmp_path / "mask.png"), "-o", str(tmp_path / "out.png")],
                          capture_output=True, text=True, cwd=root, env=env)
    assert "error" in done.stderr, done.stderr                   # the run itself failed cleanly
    assert done.stdout.split() == ["2", mapped], done.stdout + done.stderr
