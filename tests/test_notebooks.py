"""The teaching notebooks: in sync with their sources, executed top to bottom, small.

* Every ``notebooks/NN_name.ipynb`` has exactly the cells ``notebooks/src/NN_name.py``
  produces (``python notebooks/build_notebooks.py --execute`` rebuilds them), so editing
  one without the other fails here.
* Every notebook runs without error in quick mode (``DEEPFILL_NOTEBOOK_QUICK=1``: smaller
  sizes, fewer steps) with nbclient on the ``python3`` kernel (the current interpreter);
  a failing cell fails the test with the cell's traceback.
* The committed notebooks carry the outputs of a full (not quick) run and stay under 1 MB
  each; the only errors in them are the ``AssertionError`` of every check cell, whose
  exercise is unsolved there (the learner's starting point).
* Exercises: every ``exercise`` cell is followed by a ``check`` cell and has a solution in
  ``notebooks/solutions/``; the quick run fills the solutions in (every cell must pass),
  then runs each stub again followed by its check, which must fail with AssertionError.
* Each notebook opens by saying what the learner will be able to do after it.
* No notebook patches the library (``tools/patch_detector.py``: assigns to an attribute of
  an ``nnlite`` or ``inpainting`` module, or replaces a method of a model object): they
  use the supported outputs (``return_attention``, the named attention steps,
  ``knockout_attention``, forward hooks) instead of spying on the library.
"""
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load("build_notebooks", NOTEBOOKS / "build_notebooks.py")
patch_detector = _load("patch_detector", ROOT / "tools" / "patch_detector.py")
SOURCES = build.notebook_sources()
IDS = [source.stem for source in SOURCES]
EXPECTED = ["01_autograd", "02_convolutions", "03_contextual_attention", "04_network",
            "05_losses", "06_training_and_results"]


def _committed(source):
    path = build.notebook_path(source)
    assert path.is_file(), (f"{path.name} is missing; run python notebooks/build_notebooks.py "
                            f"--execute {source.stem[:2]}")
    return nbformat.read(path, as_version=4)


def test_every_notebook_of_the_course_has_a_source():
    assert [source.stem for source in SOURCES] == EXPECTED


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_committed_notebook_matches_its_source(source):
    built = build.build_notebook(source)
    committed = _committed(source)
    def cells(notebook):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in notebook.cells]

    assert cells(committed) == cells(built), (
        f"{source.stem}.ipynb differs from src/{source.name}; rebuild it with "
        f"python notebooks/build_notebooks.py --execute {source.stem[:2]}")


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_committed_notebook_has_full_run_outputs_and_is_small(source):
    path = build.notebook_path(source)
    committed = _committed(source)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), f"{path.name} was not executed"
    first = "".join(o.get("text", "") for o in code[0].outputs)
    assert "QUICK = False" in first, f"{path.name}: outputs must come from a full run"
    errors = [o for c in code if "check" not in c.metadata.get("tags", [])
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} holds an error output: {errors[0].get('ename')}"
    for cell in code:
        if "check" in cell.metadata.get("tags", []):
            names = [o.ename for o in cell.outputs if o.output_type == "error"]
            assert names == ["AssertionError"], (
                f"{path.name}: the check after an unsolved exercise must fail with "
                f"AssertionError, got {names}: {cell.source[:80]!r}")
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 2, f"{path.name} shows {images} figures"
    assert path.stat().st_size < 1_000_000, f"{path.name} is {path.stat().st_size} bytes"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_relative_links_in_markdown_cells_resolve(source):
    links = [link for cell in build.build_notebook(source).cells if cell.cell_type == "markdown"
             for link in re.findall(r"\]\(([^)\s]+)\)", cell.source)
             if not re.match(r"[a-z]+://", link)]
    broken = [link for link in links if not (NOTEBOOKS / link.split("#")[0]).exists()]
    assert not broken, f"{source.stem}: broken links {broken}"


def test_every_notebook_says_what_the_learner_will_be_able_to_do():
    for source in SOURCES:
        first = build.build_notebook(source).cells[0]
        assert first.cell_type == "markdown" and "you will be able to" in first.source, source.stem


def test_exercises_have_checks_and_solutions():
    labels = {}
    for source in SOURCES:
        cells = build.parse_cells(source.read_text(), source)
        found = [build.exercise_label(text) for kind, text in cells if kind == "exercise"]
        assert all(label.startswith(str(int(source.stem[:2])) + ".") for label in found), found
        assert sorted(build.load_solutions(source)) == sorted(found)
        labels[source.stem] = found
    assert sum(map(len, labels.values())) >= 12, labels
    assert all(len(found) >= 2 for found in labels.values()), labels


def test_parse_cells_rules():
    cells = build.parse_cells("'''doc'''\n# %% [markdown]\n# # Title\n#\n# text\n# %%\nx = 1\n\n")
    assert cells == [("markdown", "# Title\n\ntext"), ("code", "x = 1")]
    with pytest.raises(ValueError, match="must start with '# '"):
        build.parse_cells("# %% [markdown]\nnot a comment\n")
    with pytest.raises(ValueError, match="unknown cell marker"):
        build.parse_cells("# %% [raw]\n")
    with pytest.raises(ValueError, match="no cells"):
        build.parse_cells("x = 1\n")
    cells = build.parse_cells("# %% [exercise]\n# Exercise 1.1: do it\nx = None\n"
                              "# %% [check]\nassert x\n")
    assert cells == [("exercise", "# Exercise 1.1: do it\nx = None"), ("check", "assert x")]
    with pytest.raises(ValueError, match="must be followed by"):
        build.parse_cells("# %% [exercise]\n# Exercise 1.1: do it\n# %%\nx = 1\n")
    with pytest.raises(ValueError, match="must follow an exercise"):
        build.parse_cells("# %%\nx = 1\n# %% [check]\nassert x\n")
    with pytest.raises(ValueError, match="must start with '# Exercise N.M"):
        build.parse_cells("# %% [exercise]\nx = None\n# %% [check]\nassert x\n")


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebook_runs_in_quick_mode_solved_and_unsolved_checks_fail(source):
    notebook = build.unsolved_checks_notebook(source)
    build.execute_notebook(notebook, quick=True, timeout=300)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert any("QUICK = True" in o.get("text", "") for o in outputs)
    assert json.dumps(nbformat.validate(notebook) or {}) == "{}"
    unsolved = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if "unsolved-check" in cell.metadata.get("tags", []):
            unsolved += 1
            assert [o.ename for o in errors] == ["AssertionError"], (
                f"{source.stem}: this check passed (or failed otherwise) with the exercise "
                f"unsolved: {cell.source[:80]!r} -> {[o.ename for o in errors]}")
        else:
            assert not errors, (f"{source.stem}: {errors[0].ename}: {errors[0].evalue} in "
                                f"{cell.source[:80]!r}")
    assert unsolved == len(build.load_solutions(source))


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebooks_do_not_patch_library_modules(source):
    """tools/patch_detector.py (its own tests: tests/test_no_patching.py) on the notebook's
    source and on its solutions, read as running inside the notebook."""
    text = source.read_text()
    assert patch_detector.patches(text) == [], f"{source.name} patches the library"
    solutions = build.solution_path(source)
    if solutions.exists():
        assert patch_detector.patches(solutions.read_text(), runs_in=text) == [], (
            f"{solutions.name} patches the library")
