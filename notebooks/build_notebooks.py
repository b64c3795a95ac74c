"""Build the teaching notebooks from their plain-Python sources, and optionally run them.

Each notebook is written as an ordinary Python file in ``notebooks/src/`` (easy to read,
diff and edit), split into cells by marker lines::

    # %% [markdown]
    # # A title
    # Some *Markdown* text, each line behind "# ".
    # %%
    x = 1 + 1          # a code cell

``python notebooks/build_notebooks.py`` writes ``notebooks/<name>.ipynb`` for every source
(cells only, no outputs); ``--execute`` also runs each notebook top to bottom with nbclient
and stores the outputs (figures included), which is how the committed notebooks are made.
``--quick`` sets ``DEEPFILL_NOTEBOOK_QUICK=1`` (smaller sizes and fewer steps; CI uses it).
Names select notebooks: ``python notebooks/build_notebooks.py --execute 03``.

Exercises. ``# %% [exercise]`` starts a code cell tagged ``exercise`` whose first line
names it (``# Exercise 1.2: ...``) and holds the task and a stub; the ``# %% [check]`` cell
right after it is tagged ``check`` (and ``raises-exception``, so an unsolved notebook still
runs to the end) and fails with an ``AssertionError`` until the exercise is solved.
``notebooks/solutions/NN_name.py`` holds one ``# %% [exercise]`` cell per exercise, with the
same first line; ``--solutions`` builds the notebooks with them filled in.

``tests/test_notebooks.py`` checks that every committed ``.ipynb`` has exactly the cells
its source produces, executes all of them in quick mode with the solutions filled in, and
checks that every check cell fails on the unsolved stub.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
SOLUTIONS = HERE / "solutions"
ROOT = HERE.parent
QUICK_ENV = "DEEPFILL_NOTEBOOK_QUICK"
CELL_MARKER = "# %%"
MARKDOWN_MARKER = "# %% [markdown]"
EXERCISE_MARKER = "# %% [exercise]"
CHECK_MARKER = "# %% [check]"
EXERCISE_LABEL = re.compile(r"# Exercise (\d+\.\d+)\b")
#: the cell tags of each kind of code cell; "raises-exception" lets nbclient go on after it
TAGS = {"exercise": ["exercise"], "check": ["check", "raises-exception"]}

__all__ = ["parse_cells", "build_notebook", "execute_notebook", "notebook_sources",
           "notebook_path", "exercise_label", "solution_path", "load_solutions",
           "unsolved_checks_notebook"]


def notebook_sources(selection=()):
    """The source files (``src/NN_name.py``), sorted; ``selection`` keeps names starting
    with any of the given prefixes (e.g. ``("01", "05")``)."""
    paths = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if selection:
        paths = [p for p in paths if any(p.stem.startswith(s) for s in selection)]
        if not paths:
            raise SystemExit(f"no notebook source matches {list(selection)} in {SOURCES}")
    return paths


def notebook_path(source: Path) -> Path:
    return HERE / f"{source.stem}.ipynb"


def _markdown_line(line: str, source: Path, number: int) -> str:
    if line == "#":
        return ""
    if line.startswith("# "):
        return line[2:]
    raise ValueError(f"{source}:{number}: a Markdown cell's lines must start with '# ' "
                     f"(or be a lone '#'), got {line!r}")


def parse_cells(text: str, source: Path = Path("<string>"), *, exercises_checked=True):
    """Split a source file into ``[(kind, text)]`` with kind "markdown", "code",
    "exercise" or "check".

    Text before the first marker (a module docstring, say) is ignored; blank lines around
    a cell are dropped. Every exercise must be followed by a check (not in a solutions
    file: ``exercises_checked=False``).
    """
    cells, kind, lines = [], None, []

    def flush():
        body = "\n".join(lines).strip("\n")
        if kind is not None and body.strip():
            cells.append((kind, body))

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.rstrip()
        if stripped == MARKDOWN_MARKER:
            flush()
            kind, lines = "markdown", []
        elif stripped == CELL_MARKER:
            flush()
            kind, lines = "code", []
        elif stripped in (EXERCISE_MARKER, CHECK_MARKER):
            flush()
            kind, lines = ("exercise" if stripped == EXERCISE_MARKER else "check"), []
        elif stripped.startswith(CELL_MARKER):
            raise ValueError(f"{source}:{number}: unknown cell marker {stripped!r}; use "
                             f"{CELL_MARKER!r}, {MARKDOWN_MARKER!r}, {EXERCISE_MARKER!r} or "
                             f"{CHECK_MARKER!r}")
        elif kind == "markdown":
            lines.append(_markdown_line(stripped, source, number) if stripped else "")
        elif kind in ("code", "exercise", "check"):
            lines.append(stripped)
    flush()
    if not cells:
        raise ValueError(f"{source}: no cells found (cells start with {CELL_MARKER!r})")
    if exercises_checked:
        _check_exercises(cells, source)
    return cells


def exercise_label(text: str) -> str:
    """"1.2" from an exercise cell whose first line is ``# Exercise 1.2: ...``."""
    match = EXERCISE_LABEL.match(text)
    if match is None:
        raise ValueError(f"an exercise cell must start with '# Exercise N.M: <task>', got "
                         f"{text.splitlines()[0]!r}")
    return match.group(1)


def _check_exercises(cells, source):
    labels = []
    for index, (kind, text) in enumerate(cells):
        if kind == "exercise":
            labels.append(exercise_label(text))
            if index + 1 == len(cells) or cells[index + 1][0] != "check":
                raise ValueError(f"{source}: exercise {labels[-1]} must be followed by a "
                                 f"{CHECK_MARKER!r} cell")
        elif kind == "check" and (index == 0 or cells[index - 1][0] != "exercise"):
            raise ValueError(f"{source}: a {CHECK_MARKER!r} cell must follow an exercise")
    if len(set(labels)) != len(labels):
        raise ValueError(f"{source}: exercise labels repeat: {labels}")


def solution_path(source: Path) -> Path:
    return SOLUTIONS / source.name


def load_solutions(source: Path):
    """``{label: code}`` from ``solutions/<source name>``; every exercise of ``source`` must
    have exactly one solution and every solution an exercise."""
    wanted = [exercise_label(text) for kind, text in parse_cells(source.read_text(), source)
              if kind == "exercise"]
    path = solution_path(source)
    if not path.is_file():
        if wanted:
            raise ValueError(f"{source.name} has exercises {wanted} but {path} is missing")
        return {}
    solutions = {}
    for kind, text in parse_cells(path.read_text(), path, exercises_checked=False):
        if kind != "exercise":
            raise ValueError(f"{path}: solutions are {EXERCISE_MARKER!r} cells only")
        solutions[exercise_label(text)] = text
    if sorted(solutions) != sorted(wanted):
        raise ValueError(f"{path}: solutions for {sorted(solutions)}, exercises {sorted(wanted)}")
    return solutions


def _new_cell(kind, body):
    if kind == "markdown":
        return nbformat.v4.new_markdown_cell(body)
    cell = nbformat.v4.new_code_cell(body)
    if kind in TAGS:
        cell.metadata["tags"] = list(TAGS[kind])
    return cell


def build_notebook(source: Path, *, solutions: bool = False):
    """An nbformat v4 notebook with the cells of ``source`` and no outputs; with
    ``solutions=True`` every exercise cell holds its solution instead of its stub."""
    notebook = nbformat.v4.new_notebook()
    filled = load_solutions(source) if solutions else {}
    for kind, body in parse_cells(source.read_text(), source):
        if kind == "exercise" and solutions:
            body = filled[exercise_label(body)]
        notebook.cells.append(_new_cell(kind, body))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):   # stable ids: small, reproducible diffs
        cell["id"] = f"{source.stem[:2]}-{index:03d}"
    return notebook


def unsolved_checks_notebook(source: Path):
    """The notebook with its solutions, followed, for every exercise, by its stub, its check
    (which must then fail) and its solution again: one run shows that the solutions pass and
    that each check fails while its exercise is unsolved. The appended cells are tagged
    ``unsolved-exercise``, ``unsolved-check`` and ``solution``."""
    notebook = build_notebook(source, solutions=True)
    solutions = load_solutions(source)
    cells = parse_cells(source.read_text(), source)
    for (kind, stub), (_, check) in zip(cells, cells[1:]):
        if kind != "exercise":
            continue
        for tag, body in (("unsolved-exercise", stub), ("unsolved-check", check),
                          ("solution", solutions[exercise_label(stub)])):
            cell = nbformat.v4.new_code_cell(body)
            cell.metadata["tags"] = [tag] + (["raises-exception"] if tag == "unsolved-check"
                                             else [])
            notebook.cells.append(cell)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{source.stem[:2]}-{index:03d}"
    return notebook


def execute_notebook(notebook, *, quick: bool, timeout: int = 600):
    """Run ``notebook`` in place with nbclient (working directory ``notebooks/``).

    The kernel is the ``python3`` kernelspec, which jupyter_client starts with the current
    interpreter; ``PYTHONPATH`` gets the repository root so an uninstalled checkout works.
    A failing cell raises ``nbclient.exceptions.CellExecutionError``.
    """
    from nbclient import NotebookClient

    saved = {key: os.environ.get(key) for key in (QUICK_ENV, "PYTHONPATH", "MPLBACKEND")}
    os.environ[QUICK_ENV] = "1" if quick else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else []))
    os.environ.pop("MPLBACKEND", None)              # let ipykernel choose the inline backend
    try:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                record_timing=False,
                                resources={"metadata": {"path": str(HERE)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--execute", action="store_true", help="run and store outputs")
    parser.add_argument("--quick", action="store_true",
                        help=f"run with {QUICK_ENV}=1 (reduced sizes, as CI)")
    parser.add_argument("--solutions", action="store_true",
                        help="fill the exercises in from notebooks/solutions/ and write "
                             "notebooks/solutions/<name>.ipynb (not committed; the course's "
                             "notebooks are built without)")
    args = parser.parse_args(argv)
    for source in notebook_sources(args.names):
        notebook = build_notebook(source, solutions=args.solutions)
        started = time.perf_counter()
        if args.execute:
            execute_notebook(notebook, quick=args.quick)
        path = SOLUTIONS / f"{source.stem}.ipynb" if args.solutions else notebook_path(source)
        nbformat.write(notebook, path)
        took = f" (ran in {time.perf_counter() - started:.1f} s)" if args.execute else ""
        print(f"wrote {path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KiB{took}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
