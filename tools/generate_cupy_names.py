"""Write ``nnlite/cupy_names.json``: the names and keyword arguments of the installed CuPy.

    python tools/generate_cupy_names.py              # needs `import cupy` (no GPU needed)
    python tools/generate_cupy_names.py --check      # exit 1 if the committed file is stale

The fake device (``nnlite/fake_device.py``) reads this list so that code tested on it may
use only the functions, ndarray methods and keywords real CuPy has, on machines where CuPy
is not installed (CI installs no GPU wheel). Regenerate it after a CuPy upgrade.

For every public callable of ``cupy``, ``cupy.random``, ``cupy.linalg``, ``cupy.fft``,
``cupyx`` and of ``cupy.ndarray`` / ``cupy.ufunc`` the file records its parameters:
``{"params": [...], "varargs": bool, "varkw": bool}``, read from ``inspect.signature`` or,
for compiled (Cython) functions, from the signature line CuPy puts first in each docstring.
``null`` means the signature could not be read (names are still checked, keywords not).
Non-callables (dtypes, constants, submodules) are recorded with ``null`` too. The one
private module nnlite uses (``cupy._core._routines_linalg``, CuPy's switch of the cuBLAS
compute type, for TF32) is listed under ``private``.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import re
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "nnlite" / "cupy_names.json"
MODULES = ("cupy", "cupy.random", "cupy.linalg", "cupy.fft", "cupy.cuda", "cupyx")


def _from_signature(sig):
    params, varargs, varkw = [], False, False
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            varargs = True
        elif p.kind is p.VAR_KEYWORD:
            varkw = True
        elif p.name != "self":
            params.append(p.name)
    return {"params": params, "varargs": varargs, "varkw": varkw}


def _from_docstring(obj):
    """Parse ``name(self, a, b=None, *, c=1)`` from the first docstring line (Cython)."""
    doc = (getattr(obj, "__doc__", None) or "").strip().split("\n")[0].replace("\\*", "*")
    match = re.match(r"^[\w.]*?(\w+)\((.*)\)(\s*->.*)?$", doc)
    if not match:
        return None
    try:
        tree = ast.parse(f"def f({match.group(2)}): pass")
    except SyntaxError:
        return None
    a = tree.body[0].args
    params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg != "self"]
    return {"params": params, "varargs": a.vararg is not None, "varkw": a.kwarg is not None}


def describe(obj):
    if not callable(obj) or isinstance(obj, type) and not hasattr(obj, "__call__"):
        return None
    try:
        return _from_signature(inspect.signature(obj))
    except (TypeError, ValueError):
        return _from_docstring(obj)


def collect():
    import importlib

    import cupy

    names = {"cupy_version": cupy.__version__, "modules": {}}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        entries = {}
        for name in sorted(dir(module)):
            if name.startswith("_"):
                continue
            value = getattr(module, name)
            entries[name] = None if isinstance(value, type) or inspect.ismodule(value) \
                else describe(value)
        names["modules"][module_name] = entries
    # the one private module nnlite uses: cuBLAS's compute type (the TF32 switch)
    from cupy._core import _routines_linalg as linalg
    names["private"] = {"cupy._core._routines_linalg": sorted(
        n for n in ("set_compute_type", "get_compute_type", "COMPUTE_TYPE_TF32",
                    "COMPUTE_TYPE_DEFAULT") if hasattr(linalg, n))}
    for cls_name, cls in (("ndarray", cupy.ndarray), ("ufunc", cupy.ufunc)):
        names[cls_name] = {name: describe(getattr(cls, name)) for name in sorted(dir(cls))
                           if not name.startswith("_") or name in ("__array__",)}
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed file instead of writing it")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    try:
        names = collect()
    except ImportError as error:
        parser.exit(2, f"generate_cupy_names: cannot import CuPy ({error}); install it "
                       "(pip install -e '.[gpu]') to generate the list\n")
    text = json.dumps(names, indent=1, sort_keys=True) + "\n"
    if args.check:
        same = args.output.exists() and args.output.read_text() == text
        print(f"{args.output}: {'up to date' if same else 'STALE, regenerate it'}")
        return 0 if same else 1
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(text)
    os.replace(tmp, args.output)
    counts = {m: len(v) for m, v in names["modules"].items()}
    print(f"wrote {args.output} (CuPy {names['cupy_version']}): {counts}, "
          f"{len(names['ndarray'])} ndarray and {len(names['ufunc'])} ufunc attributes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
