"""nnlite's floors: no module imports from a floor above its own, and functional/ (the
readable definitions) never meets a thread, a workspace or a strategy switch.

Floors, lowest first (docs/architecture.md, "nnlite's floors"):
  0 backend, fake_device, fake_cupy     arrays and devices
    conv_geometry                       shape arithmetic of convolutions (pure Python)
  1 tensor < autograd                   Tensor; the graph engine built on it
  2 kernels/                            speed: im2col, workspaces, threads, raw CUDA kernels
  3 functional/                         one readable definition per op
  4 nn/, testing                        layers, gradient checks
  5 optim, serialization, dot           built on the above
  6 the package __init__, and demo (a script that imports it whole)
The floors are checked on module-level imports. A function-local import may reach up only
where it is listed in ``LAZY_UPWARD`` (Tensor's operators forward to functional ops).
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nnlite"

FLOORS = {"nnlite.backend": 0, "nnlite.fake_device": 0, "nnlite.fake_cupy": 0,
          "nnlite.conv_geometry": 0,
          "nnlite.tensor": 1, "nnlite.autograd": 1.5, "nnlite.kernels": 2,
          "nnlite.functional": 3, "nnlite.nn": 4, "nnlite.testing": 4, "nnlite.optim": 5,
          "nnlite.serialization": 5, "nnlite.dot": 5, "nnlite.demo": 6, "nnlite": 6}
LAZY_UPWARD = {("nnlite.tensor", "nnlite.functional"), ("nnlite.tensor", "nnlite.autograd")}
#: what functional/ must not import (modules, or names from any module)
FUNCTIONAL_FORBIDDEN_MODULES = ("threading", "concurrent", "multiprocessing",
                                "nnlite.kernels.workspace", "nnlite.kernels.parallel",
                                "nnlite.kernels.threads", "nnlite.kernels.memory",
                                "nnlite.kernels.conv_strategy")
FUNCTIONAL_FORBIDDEN_NAMES = {"use_strategy", "choose_strategy", "wide_block_bytes",
                              "wide_block_limit", "prefers_flipped_conv", "scratch",
                              "release_workspace", "parallel_slices", "ThreadPoolExecutor",
                              "Thread"}


def floor(module):
    """The floor of the longest FLOORS key that is ``module`` or a package above it."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in FLOORS:
            return FLOORS[key]
    return None                                     # not nnlite: numpy, cupy, stdlib


def module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source, module, is_package=False):
    """[(imported module, imported names, module-level?)] of one file, relative imports
    resolved against ``module``."""
    tree = ast.parse(source)
    top = set(map(id, tree.body))
    for node in tree.body:                           # if/try blocks at module level count too
        if isinstance(node, (ast.If, ast.Try)):
            top.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, (), id(node) in top))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names = tuple(a.name for a in node.names)
            if node.module is None:                  # from . import x: each x is a module
                for name in names:
                    found.append((f"{target}.{name}", (), id(node) in top))
            else:
                found.append((target, names, id(node) in top))
    return found


def violations(source, module, is_package=False):
    """Every broken rule of one file, as readable lines (empty: the file keeps its floor)."""
    problems = []
    own = floor(module)
    for target, names, module_level in imports(source, module, is_package):
        up = floor(target)
        if own is not None and up is not None and up > own and not target.startswith(module + "."):
            if module_level or (module, ".".join(target.split(".")[:2])) not in LAZY_UPWARD:
                problems.append(f"{module} imports {target} from a higher floor ({own} < {up})")
        if module.startswith("nnlite.functional"):
            # ``from ..kernels import workspace`` imports the module nnlite.kernels.workspace
            for imported in [target] + [f"{target}.{name}" for name in names]:
                if any(imported == m or imported.startswith(m + ".")
                       for m in FUNCTIONAL_FORBIDDEN_MODULES):
                    problems.append(f"{module} imports {imported}: threads/workspaces/strategies "
                                    "belong in kernels/")
            for name in FUNCTIONAL_FORBIDDEN_NAMES.intersection(names):
                problems.append(f"{module} imports {name} from {target}: that belongs in kernels/")
    return problems


def package_files():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_nnlite_module_has_a_floor():
    assert package_files()
    for path in package_files():
        assert floor(module_name(path)) is not None, f"{path}: add it to FLOORS"


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_from_a_higher_floor(path):
    assert violations(path.read_text(), module_name(path), path.name == "__init__.py") == []


@pytest.mark.parametrize("source, module, expected", [
    ("from ..functional import conv2d\n", "nnlite.kernels.im2col", "higher floor"),
    ("from .tensor import Tensor\n", "nnlite.backend", "higher floor"),
    ("from .kernels.im2col import im2col\n", "nnlite.conv_geometry", "higher floor"),
    ("from . import autograd\n", "nnlite.tensor", "higher floor"),
    ("def f():\n    from ..nn import Module\n", "nnlite.functional.conv", "higher floor"),
    ("import threading\n", "nnlite.functional.activation", "kernels/"),
    ("from concurrent.futures import ThreadPoolExecutor\n", "nnlite.functional.basic", "kernels/"),
    ("from ..kernels.workspace import scratch\n", "nnlite.functional.conv", "kernels/"),
    ("from ..kernels.conv_arrays import use_strategy\n", "nnlite.functional.conv", "use_strategy"),
    ("from ..kernels import conv_strategy\n", "nnlite.functional.conv", "kernels/"),
    ("from ..kernels import elementwise, workspace\n", "nnlite.functional.basic", "workspace"),
    ("from ..kernels.conv_strategy import WIDE_WASTE_LIMIT\n", "nnlite.functional.x", "kernels/"),
    ("def f():\n    from ..kernels.parallel import parallel_slices\n", "nnlite.functional.x", "kernels/"),
])
def test_the_checker_catches_a_bad_import(source, module, expected):
    problems = violations(source, module)
    assert problems and expected in problems[0], problems


def test_the_checker_accepts_a_good_import():
    assert violations("from ..kernels.elementwise import elu_forward\n", "nnlite.functional.a") == []
    assert violations("def f():\n    from .functional import cast\n", "nnlite.tensor") == []
    assert violations("from .tensor import Tensor\n", "nnlite.autograd") == []
    assert violations("from ..conv_geometry import ConvGeometry\n", "nnlite.kernels.im2col") == []
    assert violations("from ..conv_geometry import pair\n", "nnlite.functional.conv") == []
