"""Find code that monkeypatches the library (``nnlite``, ``inpainting``), read from its syntax.

    python tools/patch_detector.py     # list every patch in the repository's scripts, or none

The library is changed through its supported doors (arguments, ``return_attention``,
``Module.register_forward_hook``, a subclass), never by rewriting it from outside. A test
that patches a module proves something about code that does not exist; a notebook that
does teaches the learner to. ``patches(text)`` lists, by line, every form of patch it sees:

* ``module``: an assignment, augmented assignment or ``del`` of an attribute or item of a
  name imported from the library (``attention.contextual_attention = f``, ``del F.relu``,
  ``InpaintGenerator.forward = f``, ``vars(F)["relu"] = f``), or of
  ``sys.modules["inpainting..."]``;
* ``setattr``: ``setattr`` / ``delattr`` on such a name;
* ``monkeypatch``: a ``.setattr`` / ``.delattr`` / ``patch`` / ``patch.object`` /
  ``.setitem`` call (pytest's ``monkeypatch``, ``unittest.mock``) aimed at such a name or
  at a dotted string ``"inpainting..."`` / ``"nnlite..."``;
* ``method``: a method replaced on an object (``model.forward = record(model.forward)``,
  ``corpus.sample = counted``): assigning a function (a lambda, a function of the file, a
  method, or a call given one of those) to an attribute named ``forward``, ``__call__`` or
  like any method a library class defines, or the same through ``setattr`` /
  ``monkeypatch.setattr`` with the name as a string. Not counted: ``self`` / ``cls``, the
  file's own classes, and objects of other packages (``Image.Image``, ``np.lib.format``:
  not the library); data assigned to such a name (``bit_generator.state = saved``) is not
  a method.

``repository_patches()`` runs it on every Python file outside the two packages (tests,
benchmarks, scripts, tools, notebooks) and on the fenced ``python`` blocks of the README and
docs; ``tests/test_no_patching.py`` wants that
list empty, and the notebook tests use ``patches`` on the notebooks' sources.
"""
from __future__ import annotations

import ast
import builtins
import re
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("nnlite", "inpainting")
#: What is scanned: every Python file of the repository but the library's own and those in
#: hidden or generated folders, and the python blocks of these Markdown files.
NOT_SOURCE = {"__pycache__", "build", "dist", "runs", "out", "test-artifacts"}
MARKDOWN = ("README.md", "docs/*.md", "notebooks/*.md")
#: Calls that patch their first argument (setattr, pytest's monkeypatch, unittest.mock).
PATCHING_CALLS = {"setattr", "delattr", "patch", "object", "setitem", "delitem"}


@lru_cache(maxsize=None)
def library_method_names(root: Path = ROOT) -> frozenset:
    """The names of the methods the library's classes define, plus ``forward`` and ``__call__``."""
    names = {"forward", "__call__"}
    for package in LIBRARIES:
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    names |= {item.name for item in node.body
                              if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return frozenset(names)


def _is_library(dotted) -> bool:
    return isinstance(dotted, str) and dotted.split(".")[0] in LIBRARIES


def _imported_names(tree):
    """``({names bound to library objects}, {names bound to other packages' objects})``."""
    library, other = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                (library if _is_library(alias.name) else other).add(bound)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                (library if _is_library(node.module) else other).add(alias.asname or alias.name)
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
              and getattr(node.value.func, "attr", getattr(node.value.func, "id", None))
              == "import_module" and node.value.args
              and _is_library(getattr(node.value.args[0], "value", None))):
            library |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return library, other - library


def _functions(tree):
    """Names that hold functions: the file's ``def`` statements and ``name = lambda ...``,
    what it imports, and Python's built-in functions (``print``)."""
    names = {name for name in dir(builtins) if callable(getattr(builtins, name))}
    names |= {node.name for node in ast.walk(tree)
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    names |= {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    names |= {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
              and isinstance(node.value, ast.Lambda)
              for target in node.targets if isinstance(target, ast.Name)}
    return names


def _is_function(node, functions, methods) -> bool:
    """Whether ``node`` evaluates to a function, as far as the syntax shows."""
    if isinstance(node, ast.Lambda):
        return True
    if isinstance(node, ast.Name):
        return node.id in functions
    if isinstance(node, ast.Attribute):
        return node.attr in methods                    # obj.forward = other.forward
    if isinstance(node, ast.Call):                     # a wrapper: record(name, module.forward)
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        return "Mock" in name or any(_is_function(arg, functions, methods)
                                     for arg in [*node.args, *(k.value for k in node.keywords)])
    return False


def _root(node):
    """The name an attribute chain starts from (``a`` of ``a.b[0].c``, of ``vars(a)[k]``)."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "vars" and node.args:
            node = node.args[0]
        else:
            return node.id if isinstance(node, ast.Name) else None


def _text(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def patches(text: str, root: Path = ROOT, runs_in: str = ""):
    """``[(line, kind, code)]``: every library patch in the Python source ``text``.

    ``runs_in``: the source ``text`` runs inside, whose imports, functions and classes it
    uses (a notebook's solutions run in the notebook).
    """
    tree = ast.parse(text)
    context = ast.Module(body=ast.parse(runs_in).body + tree.body, type_ignores=[])
    library, other = _imported_names(context)
    methods, functions = library_method_names(root), _functions(context)
    own = {"self", "cls"} | other | {node.name for node in ast.walk(context)
                                     if isinstance(node, ast.ClassDef)}
    found = []

    def report(node, kind):
        found.append((node.lineno, kind, ast.get_source_segment(text, node) or ""))

    def replaces_a_method(target_root, name, value):
        return (name in methods and target_root not in own
                and (value is None or _is_function(value, functions, methods)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        else:
            targets = []
        value = getattr(node, "value", None)                 # None for del
        for target in targets:
            if isinstance(target, (ast.Attribute, ast.Subscript)) and _root(target) in library:
                report(node, "module")                        # F.relu = f, vars(F)["relu"] = f
            elif isinstance(target, ast.Attribute) and value is not None \
                    and replaces_a_method(_root(target), target.attr, value):
                report(node, "method")
            elif (isinstance(target, ast.Subscript) and _is_library(_text(target.slice))
                  and isinstance(target.value, ast.Attribute) and target.value.attr == "modules"):
                report(node, "module")                        # sys.modules["inpainting.x"] = ...
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", None))
        if name not in PATCHING_CALLS:
            continue
        first, second = node.args[0], node.args[1] if len(node.args) > 1 else None
        builtin = isinstance(node.func, ast.Name)              # setattr(...), delattr(...)
        kind = "setattr" if builtin else "monkeypatch"
        if _root(first) in library or _is_library(_text(first)):
            report(node, kind)
        elif not builtin and name in ("setitem", "delitem") and _is_library(_text(second)):
            report(node, kind)                     # monkeypatch.setitem(sys.modules, "nnlite.x", m)
        elif name in ("setattr", "delattr", "object") and second is not None \
                and replaces_a_method(_root(first), _text(second),
                                      node.args[2] if len(node.args) > 2 else None):
            report(node, "method")
    return sorted(found)


def python_blocks(markdown: str):
    """``[(first line, code)]``: the fenced ```python blocks of a Markdown text."""
    return [(markdown[:match.start(1)].count("\n") + 1, match.group(1))
            for match in re.finditer(r"^```python\n(.*?)^```", markdown, re.S | re.M)]


def runs_in(path: Path, root: Path = ROOT) -> str:
    """The source ``path`` runs inside: a notebook solution's notebook source, else ''."""
    source = root / "notebooks" / "src" / path.name
    inside = path.parent == root / "notebooks" / "solutions" and source.is_file()
    return source.read_text(encoding="utf-8") if inside else ""


def scanned_files(root: Path = ROOT):
    """``(Python files, Markdown files)`` that ``repository_patches`` reads."""
    def is_source(parts):
        return parts[0] not in LIBRARIES and not any(
            part.startswith(".") or part in NOT_SOURCE or part.endswith(".egg-info")
            for part in parts[:-1])

    files = sorted(path for path in root.rglob("*.py") if is_source(path.relative_to(root).parts))
    markdown = sorted({path for pattern in MARKDOWN for path in root.glob(pattern)})
    return files, markdown


def repository_patches(root: Path = ROOT):
    """``["path:line: kind: code"]`` for every patch in the scanned files and python blocks."""
    files, markdown = scanned_files(root)
    sources = [(path, 1, path.read_text(encoding="utf-8"), runs_in(path, root)) for path in files]
    sources += [(path, first, code, "") for path in markdown
                for first, code in python_blocks(path.read_text(encoding="utf-8"))]
    return [f"{path.relative_to(root)}:{first + line - 1}: {kind}: {patch.splitlines()[0]}"
            for path, first, code, context in sources
            for line, kind, patch in patches(code, root, context)]


if __name__ == "__main__":
    found = repository_patches()
    print("\n".join(found) or "no library patches")
    sys.exit(1 if found else 0)
