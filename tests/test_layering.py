"""The floors of ``inpainting/`` (docs/architecture.md): no import runs from a lower floor up to
a higher one, function-local imports included, and the picture in the docs is the one
``tools/package_layers.py`` draws from the code."""
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
layers = runpy.run_path(str(ROOT / "tools" / "package_layers.py"), run_name="package_layers")


def test_no_import_runs_from_a_lower_floor_to_a_higher_one():
    graph = layers["import_graph"]()
    assert layers["layering_errors"](graph) == []
    # the graph saw every module and the function-local imports inside them
    assert {"inpainting.model.networks", "inpainting.app.cli", "inpainting.app.web.server",
            "inpainting.weights.model_io"} <= set(graph)
    assert any(target == "inpainting.model.attention"
               for _, target in graph["inpainting.model.networks"])


def test_no_modules_import_one_another_in_a_circle():
    assert layers["import_cycles"](layers["import_graph"]()) == []


def test_a_synthetic_cycle_hidden_by_a_function_local_import_is_caught(tmp_path):
    package = tmp_path / "inpainting"
    _write(package / "__init__.py", "")
    _write(package / "model" / "__init__.py", "")
    _write(package / "model" / "inference.py", "from .viz import draw\n")
    _write(package / "model" / "viz.py", "def draw():\n    from .inference import inpaint\n")
    _write(package / "model" / "networks.py", "from .inference import inpaint\n")
    assert layers["import_cycles"](layers["import_graph"](package)) == [
        ["inpainting.model.inference", "inpainting.model.viz"]]


def test_every_module_sits_on_a_floor():
    floors = set(layers["FLOORS"]) | {layers["FRONT_DOOR"]}
    for module in layers["import_graph"]():
        floor = layers["floor_of"](module)
        assert floor in floors
        if floor == layers["FRONT_DOOR"]:   # only the package's own top files
            assert module.count(".") <= 1, module


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_synthetic_upward_import_is_caught(tmp_path):
    """A fake package with the same floors: a model module importing the app (at the top and
    inside a function, absolute and relative) is reported, line by line; downward ones are not."""
    package = tmp_path / "inpainting"
    for floor in layers["FLOORS"]:
        _write(package / floor / "__init__.py", "")
    _write(package / "__init__.py", "from .app import cli\n")
    _write(package / "data" / "masks.py", "import numpy\n")
    _write(package / "app" / "cli.py", "from ..model.networks import Net\n"
                                       "from inpainting.data import masks\n")
    _write(package / "model" / "networks.py",
           "from ..data.masks import box\n"
           "from . import attention\n"
           "def forward():\n"
           "    from ..app.cli import main\n"
           "    return main\n")
    _write(package / "model" / "attention.py", "import inpainting.training.train\n")
    _write(package / "training" / "train.py", "from ..evaluation import metrics\n")
    _write(package / "evaluation" / "metrics.py", "")
    graph = layers["import_graph"](package)
    errors = layers["layering_errors"](graph)
    assert len(errors) == 3, errors
    assert errors[0].startswith("inpainting.model.attention (line 1) imports "
                                "inpainting.training.train")
    assert errors[1].startswith("inpainting.model.networks (line 4) imports inpainting.app.cli")
    assert "floor 'training' may not import from the higher floor 'evaluation'" in errors[2]


def test_the_architecture_picture_is_generated_from_the_code():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = layers["generated_block"]()
    assert block in doc, "docs/architecture.md is stale: run python tools/package_layers.py --write"
    # the picture names every module of every floor, and every function on the data path exists
    for module in layers["import_graph"]():
        if module.count(".") >= 2:
            assert module.split(".", 2)[2] in block, module
    import importlib

    for _, dotted in layers["DATA_PATH"]:
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for name in parts[cut:]:
                target = getattr(target, name)
            assert callable(target), dotted
            break
        else:
            raise AssertionError(f"{dotted} does not import")


#: the most lines a module of the library may have: files by concept, each one readable whole
MAX_MODULE_LINES = 400


def oversized_modules(*packages, limit=MAX_MODULE_LINES):
    """'folder/file.py: N lines' for every ``.py`` file under ``packages`` (at any depth) that
    has more than ``limit`` lines."""
    found = []
    for package in map(Path, packages):
        for path in sorted(package.rglob("*.py")):
            count = len(path.read_text(encoding="utf-8").splitlines())
            if count > limit:
                found.append(f"{path.relative_to(package.parent).as_posix()}: {count} lines")
    return found


def test_every_module_of_inpainting_and_nnlite_has_at_most_400_lines():
    offenders = oversized_modules(ROOT / "inpainting", ROOT / "nnlite")
    assert offenders == [], (f"modules over {MAX_MODULE_LINES} lines; split each by concept: "
                             + "; ".join(offenders))


def test_a_synthetic_module_over_the_limit_is_named(tmp_path):
    _write(tmp_path / "pkg" / "short.py", "x = 1\n" * MAX_MODULE_LINES)
    _write(tmp_path / "pkg" / "sub" / "long.py", "x = 1\n" * (MAX_MODULE_LINES + 1))
    _write(tmp_path / "pkg" / "notes.txt", "x\n" * 1000)          # only Python modules count
    assert oversized_modules(tmp_path / "pkg") == [f"pkg/sub/long.py: {MAX_MODULE_LINES + 1} lines"]
