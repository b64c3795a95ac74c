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

``tests/test_notebooks.py`` checks that every committed ``.ipynb`` has exactly the cells
its source produces, and executes all of them in quick mode.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
ROOT = HERE.parent
QUICK_ENV = "DEEPFILL_NOTEBOOK_QUICK"
CELL_MARKER = "# %%"
MARKDOWN_MARKER = "# %% [markdown]"

__all__ = ["parse_cells", "build_notebook", "execute_notebook", "notebook_sources",
           "notebook_path"]


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


def parse_cells(text: str, source: Path = Path("<string>")):
    """Split a source file into ``[(kind, text)]`` with kind "markdown" or "code".

    Text before the first marker (a module docstring, say) is ignored; blank lines around
    a cell are dropped.
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
        elif stripped.startswith(CELL_MARKER):
            raise ValueError(f"{source}:{number}: unknown cell marker {stripped!r}; use "
                             f"{CELL_MARKER!r} or {MARKDOWN_MARKER!r}")
        elif kind == "markdown":
            lines.append(_markdown_line(stripped, source, number) if stripped else "")
        elif kind == "code":
            lines.append(stripped)
    flush()
    if not cells:
        raise ValueError(f"{source}: no cells found (cells start with {CELL_MARKER!r})")
    return cells


def build_notebook(source: Path):
    """An nbformat v4 notebook with the cells of ``source`` and no outputs."""
    notebook = nbformat.v4.new_notebook()
    for kind, body in parse_cells(source.read_text(), source):
        if kind == "markdown":
            notebook.cells.append(nbformat.v4.new_markdown_cell(body))
        else:
            notebook.cells.append(nbformat.v4.new_code_cell(body))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):   # stable ids: small, reproducible diffs
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
    args = parser.parse_args(argv)
    for source in notebook_sources(args.names):
        notebook = build_notebook(source)
        started = time.perf_counter()
        if args.execute:
            execute_notebook(notebook, quick=args.quick)
        path = notebook_path(source)
        nbformat.write(notebook, path)
        took = f" (ran in {time.perf_counter() - started:.1f} s)" if args.execute else ""
        print(f"wrote {path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KiB{took}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
