"""The NumPy/CuPy backend: every ``xp.<name>`` the code uses exists in CuPy, device
choice for scripts, explicit transfers, and ``scatter_add``.

``import cupy`` works on machines without a GPU when the package is installed, so
the CuPy API check runs on every CI machine that has cupy-cuda12x (the test
extra installs it); it is skipped, with the reason, only where CuPy is missing.
"""
import importlib
import io
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
    monkeypatch.setattr(backend, "cuda_device_count", lambda: 0)
    assert backend.default_device("auto") == "cpu"
    assert backend.default_device("fake") == "fake"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        backend.default_device("cuda")
    monkeypatch.setenv("NNLITE_DEVICE", "cuda:0")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        backend.default_device()
    monkeypatch.setattr(backend, "cuda_device_count", lambda: 1)
    assert backend.default_device("auto") == "cuda"
    assert backend.default_device() == "cuda"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        backend.default_device("tpu")


def test_a_device_index_is_honoured_or_refused(monkeypatch):
    """'cuda:1' names device 1: refused in one line when only one device answers (never
    run on device 0 instead); 'cuda' and 'cuda:0' are the same device."""
    monkeypatch.setattr(backend, "cuda_device_count", lambda: 1)
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


def test_cuda_available_is_false_without_cupy(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    assert backend.cuda_available() is False
    assert isinstance(nnlite.cuda_available(), bool)


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
