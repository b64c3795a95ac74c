"""The NumPy/CuPy backend: every ``xp.<name>`` the code uses exists in CuPy, device
choice for scripts, explicit transfers, and ``scatter_add``.

The CuPy API check reads the committed list of CuPy's names (``nnlite/cupy_names.json``,
made from a real CuPy by ``tools/generate_cupy_names.py``), so it runs on every machine
without a GPU wheel; where CuPy itself is importable, the same scan is also resolved
against it. (The fake device enforces the same list at run time, keywords included.)
"""
import importlib
import io
import os
import tokenize
from pathlib import Path

import numpy as np
import pytest

import nnlite
import nnlite.nn as nn
from nnlite import Tensor, backend

ROOT = Path(__file__).resolve().parent.parent
MODULE_NAMES = {"xp": "cupy", "cupy": "cupy", "_cupy": "cupy", "cupyx": "cupyx"}


def _attribute_chains(path):
    """``(line, root, ("a", "b"))`` for each ``root.a.b`` in the CODE of ``path`` (strings and
    comments are skipped, so a docstring may mention a name CuPy lacks)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    found = []
    for i, token in enumerate(tokens):
        if token.type != tokenize.NAME or token.string not in MODULE_NAMES:
            continue
        if i and tokens[i - 1].type == tokenize.OP and tokens[i - 1].string == ".":
            continue  # self.xp / module.cupy: an attribute, not the module itself
        chain, j = [], i + 1
        while (j + 1 < len(tokens) and tokens[j].string == "."
               and tokens[j + 1].type == tokenize.NAME):
            chain.append(tokens[j + 1].string)
            j += 2
        if chain:
            found.append((token.start[0], token.string, tuple(chain)))
    return found


def _resolve(module, chain):
    """Follow ``chain`` from ``module``, importing submodules (cupyx.scipy.ndimage) as needed."""
    value, name = module, module.__name__
    for part in chain:
        name = f"{name}.{part}"
        if hasattr(value, part):
            value = getattr(value, part)
        else:
            value = importlib.import_module(name)
    return value


def _python_files():
    return sorted(p for folder in ("nnlite", "inpainting") for p in (ROOT / folder).rglob("*.py"))


def test_the_scanner_finds_chains_in_code_only(tmp_path):
    source = ("y = xp.asarray(x)  # xp.commented_out\n"
              "s = 'xp.in_a_string'\n"
              "z = xp.random.default_rng(0).integers\n"
              "w = self.xp.not_the_module\n")
    path = tmp_path / "probe.py"
    path.write_text(source)
    chains = [(root, chain) for _, root, chain in _attribute_chains(path)]
    assert chains == [("xp", ("asarray",)), ("xp", ("random", "default_rng"))]


def _in_committed_list(root, chain):
    """Whether ``root.chain`` names something in the committed CuPy list."""
    from nnlite.fake_device import NAMES

    table = "cupyx" if root == "cupyx" else "cupy"
    if chain == ("_core",):                            # from cupy._core import _routines_linalg
        return "cupy._core._routines_linalg" in NAMES["private"]
    if chain[0] not in NAMES["modules"][table]:
        return False
    if len(chain) == 1:
        return True
    inner = f"{table}.{chain[0]}"
    if inner in NAMES["modules"]:                      # cupy.random.default_rng, ...
        return chain[1] in NAMES["modules"][inner]
    if chain[0] == "cuda":
        return chain[1] in ("Device", "runtime", "Stream")   # used by benchmarks only
    return chain[1] in NAMES["ufunc"]                  # xp.add.reduceat


def test_every_xp_and_cupyx_name_is_in_the_committed_cupy_list():
    missing, count = [], 0
    for path in _python_files():
        for line, root, chain in _attribute_chains(path):
            count += 1
            if not _in_committed_list(root, chain):
                missing.append(f"{path.relative_to(ROOT)}:{line}: {root}.{'.'.join(chain)}")
    assert not _in_committed_list("xp", ("scatter_add",))   # removed from CuPy: it can say no
    assert not _in_committed_list("xp", ("add", "no_such_method"))
    assert count > 20, f"scanner found only {count} xp/cupy uses; is it still looking?"
    assert not missing, "used on the array module but not in CuPy's list:\n" + "\n".join(missing)


def test_the_committed_list_was_read_from_cupy():
    from nnlite.fake_device import NAMES

    assert NAMES["cupy_version"].split(".")[0].isdigit()
    assert {"asarray", "matmul", "RawKernel", "ndarray"} <= set(NAMES["modules"]["cupy"])
    assert NAMES["ndarray"]["sum"]["params"] == ["axis", "dtype", "out", "keepdims"]
    assert "scatter_add" in NAMES["modules"]["cupyx"]


def test_the_generator_reproduces_the_committed_list(tmp_path):
    """tools/generate_cupy_names.py on the installed CuPy: the same file when the version is
    the committed one, else at least every name nnlite uses (checked by the test below)."""
    pytest.importorskip("cupy", reason="CuPy is not installed: the list cannot be regenerated")
    import json
    import runpy
    import sys

    output = tmp_path / "names.json"
    argv = sys.argv
    sys.argv = ["generate_cupy_names.py", "--output", str(output)]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(ROOT / "tools" / "generate_cupy_names.py"), run_name="__main__")
    finally:
        sys.argv = argv
    assert done.value.code == 0
    fresh = json.loads(output.read_text())
    committed = json.loads((ROOT / "nnlite" / "cupy_names.json").read_text())
    if fresh["cupy_version"] == committed["cupy_version"]:
        assert fresh == committed, "nnlite/cupy_names.json is stale: regenerate it"
    assert set(fresh) == set(committed)


def test_every_xp_and_cupyx_name_exists_in_cupy():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install -e '.[gpu]' "
                                              "or the test extra), so its API cannot be checked")
    modules = {"cupy": cupy}
    missing, count = [], 0
    for path in _python_files():
        for line, root, chain in _attribute_chains(path):
            count += 1
            target = MODULE_NAMES[root]
            if target not in modules:
                modules[target] = importlib.import_module(target)
            try:
                _resolve(modules[target], chain)
            except (AttributeError, ImportError):
                missing.append(f"{path.relative_to(ROOT)}:{line}: {root}.{'.'.join(chain)} "
                               f"(not in {target})")
    with pytest.raises(ImportError):  # the resolver really can say no
        _resolve(cupy, ("scatter_add",))     # removed from CuPy: cupyx.scatter_add instead
    assert count > 20, f"scanner found only {count} xp/cupy uses; is it still looking?"
    assert not missing, "used on the array module but missing in CuPy:\n" + "\n".join(missing)


# ------------------------------------------------------------------ device choice
def test_default_device_reads_argument_then_environment(monkeypatch):
    monkeypatch.delenv("NNLITE_DEVICE", raising=False)
    assert backend.default_device() == "cpu"
    assert backend.default_device("CPU") == "cpu"
    monkeypatch.setenv("NNLITE_DEVICE", "cpu")
    assert backend.default_device() == "cpu"
    with backend.simulated_cuda(0):
        assert backend.default_device("auto") == "cpu"
        assert backend.default_device("fake") == "fake"
        with pytest.raises(RuntimeError, match="no CUDA device"):
            backend.default_device("cuda")
        monkeypatch.setenv("NNLITE_DEVICE", "cuda:0")
        with pytest.raises(RuntimeError, match="no CUDA device"):
            backend.default_device()
    with backend.simulated_cuda(1):
        assert backend.default_device("auto") == "cuda"
        assert backend.default_device() == "cuda"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        backend.default_device("tpu")


def test_a_device_index_is_honoured_or_refused():
    """'cuda:1' names device 1: refused in one line when only one device answers (never
    run on device 0 instead); 'cuda' and 'cuda:0' are the same device."""
    with backend.simulated_cuda(1):
        for name in ("cuda:1", "CUDA:3"):
            with pytest.raises(ValueError, match=r"only 1 CUDA device\(s\) answer"):
                backend.default_device(name)
            with pytest.raises(ValueError, match=r"only 1 CUDA device\(s\) answer"):
                backend.to_device(np.zeros(2), name)
    assert backend.parse_device("cuda:0") == backend.parse_device("cuda") == ("cuda", 0)
    assert backend.parse_device("cuda:2") == ("cuda", 2)
    assert backend._normalise_device("cuda:0") == "cuda"
    assert backend._normalise_device("cuda:2") == "cuda:2"
    with pytest.raises(ValueError, match="'cuda:N' with N a device number"):
        backend.parse_device("cuda:x")


def test_cuda_available_is_false_without_cupy():
    """In a fresh interpreter where ``import cupy`` fails, nnlite imports and says False."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['cupy'] = None\n"        # makes `import cupy` fail
            "import nnlite\n"
            "from nnlite import backend\n"
            "print(backend.cupy is None, backend.cuda_available(), backend.cuda_device_count())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.stdout.split() == ["True", "False", "0"], done.stderr
    assert isinstance(nnlite.cuda_available(), bool)


def test_simulated_cuda_is_followed_and_restored():
    real = backend.cuda_device_count()
    with backend.simulated_cuda(2):
        assert backend.cuda_device_count() == 2 and backend.cuda_available() is True
        with backend.simulated_cuda(0):
            assert backend.cuda_available() is False
        assert backend.cuda_device_count() == 2
    assert backend.cuda_device_count() == real
    with pytest.raises(ValueError, match="device_count must be an int >= 0"):
        with backend.simulated_cuda(-1):
            pass
    with pytest.raises(TypeError, match="tf32_switch must be callable"):
        with backend.simulated_cuda(1, tf32_switch=True):
            pass


@pytest.mark.skipif(nnlite.cuda_available(), reason="checks the no-GPU error path")
def test_transfers_to_cuda_fail_clearly_without_a_gpu():
    x = np.ones(3)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        backend.to_device(x, "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        Tensor(x).to("cuda")
    layer = nn.Linear(2, 2, rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="no CUDA device"):
        layer.to("cuda")


def test_cpu_transfers_are_no_ops(xp):
    x = xp.ones(3)
    t = Tensor(x)
    assert t.to(t.device) is t
    host = backend.to_device(x, "cpu")
    assert isinstance(host, np.ndarray)
    if xp is np:
        assert host is x and t.device == "cpu"
    with pytest.raises(ValueError, match="expected 'cpu', 'cuda', 'cuda:N' or 'fake'"):
        backend.to_device(x, "metal")


@pytest.mark.skipif(not nnlite.cuda_available(), reason="needs a CUDA device")
def test_tensor_round_trip_through_the_gpu_is_differentiable():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.to("cuda") * 3.0).sum()
    assert y.device == "cuda"
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_get_array_module_and_device_of(xp):
    a = xp.zeros(2)
    assert backend.get_array_module(a, 1.0, None) is xp
    assert backend.get_array_module() is np
    assert backend.device_of(a) == {np: "cpu", backend.cupy: "cuda"}.get(xp, "fake")


def test_scatter_add_accumulates_repeated_indices(xp):
    target = xp.zeros(4)
    backend.scatter_add(target, xp.asarray([0, 2, 0, 0]), xp.asarray([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(backend.to_device(target, "cpu"), [8.0, 0.0, 2.0, 0.0])


def test_tf32_is_opt_in_by_call_or_environment():
    """Off by default (tight-tolerance tests rely on it); nnlite.set_tf32 or NNLITE_TF32=1
    turns it on; once CuPy has been configured, a change is applied at once."""
    import subprocess
    import sys

    assert nnlite.tf32_enabled() is False
    applied = []
    with backend.simulated_cuda(1, tf32_switch=applied.append):   # CuPy already configured
        try:
            nnlite.set_tf32(True)
            assert nnlite.tf32_enabled() is True and applied == [True]
        finally:
            nnlite.set_tf32(False)
    assert applied == [True, False]
    for value, expected in (("1", "True"), ("0", "False"), ("", "False")):
        done = subprocess.run([sys.executable, "-c", "import nnlite; print(nnlite.tf32_enabled())"],
                              capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "NNLITE_TF32": value})
        assert done.stdout.strip() == expected, done.stderr
