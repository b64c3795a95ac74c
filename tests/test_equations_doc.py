"""docs/equations.md cannot drift from the code: every name in it must exist.

The page maps each equation to the function implementing it and the test checking it,
as Markdown links: [`package.module.function`](../package/module.py) and
[`tests/test_x.py::test_name`](../tests/test_x.py). This file checks that

* every dotted name imports (longest importable module prefix, then ``getattr``) and its
  link points at the file that defines it;
* every ``tests/...py::test_name`` names a ``def test_name`` in that file;
* every relative link of docs/equations.md and docs/index.md resolves to a file;
* the page mentions every public loss and every contextual-attention stage, so a row
  cannot be dropped silently;
* every link into a notebook names, after ``#``, the Jupyter anchor of a heading of that
  notebook (the heading's text without Markdown marks, spaces as ``-``), and every
  notebook is linked.
"""
import importlib
import inspect
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "equations.md"
INDEX = ROOT / "docs" / "index.md"

CODE_LINK = re.compile(r"\[`([A-Za-z_][\w.]*)`\]\(([^)\s]+)\)")
TEST_LINK = re.compile(r"\[`(tests/[\w/]+\.py)::(\w+)`\]\(([^)\s]+)\)")
ANY_LINK = re.compile(r"\]\(([^)\s]+)\)")
NOTEBOOK_LINK = re.compile(r"\]\(\.\./notebooks/(\d\d_\w+)\.ipynb#([^)\s]+)\)")


def _text(path=DOC):
    return path.read_text(encoding="utf-8")


def resolve(dotted):
    """Import the longest module prefix of ``dotted`` and getattr the rest: (module, object)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        obj = module
        for name in parts[cut:]:
            obj = getattr(obj, name)       # AttributeError names the missing piece
        return module, obj
    raise ModuleNotFoundError(f"no importable prefix in {dotted!r}")


def _defining_file(module, obj):
    target = inspect.unwrap(obj)
    try:
        return Path(inspect.getsourcefile(target)).resolve()
    except TypeError:                      # e.g. a constant: the module's own file
        return Path(module.__file__).resolve()


CODE_REFS = CODE_LINK.findall(_text())
TEST_REFS = TEST_LINK.findall(_text())


def test_the_page_references_code_and_tests():
    assert len(CODE_REFS) >= 50 and len(TEST_REFS) >= 50


@pytest.mark.parametrize("dotted, link", sorted(set(CODE_REFS)), ids=lambda v: str(v))
def test_every_referenced_function_exists_where_the_link_points(dotted, link):
    module, obj = resolve(dotted)
    linked = (DOC.parent / link).resolve()
    assert linked.is_file(), f"{dotted}: link {link} does not resolve"
    assert _defining_file(module, obj) == linked, (
        f"{dotted} is defined in {_defining_file(module, obj).relative_to(ROOT)}, "
        f"but the page links {link}")


@pytest.mark.parametrize("path, name, link", sorted(set(TEST_REFS)), ids=lambda v: str(v))
def test_every_referenced_test_exists(path, name, link):
    test_file = ROOT / path
    assert test_file.is_file(), f"{path} does not exist"
    assert (DOC.parent / link).resolve() == test_file.resolve(), f"{path}: link {link} points elsewhere"
    assert re.search(rf"^def {name}\(", test_file.read_text(encoding="utf-8"), re.M), \
        f"{path} has no 'def {name}('"


@pytest.mark.parametrize("page", [DOC, INDEX], ids=["equations", "index"])
def test_every_relative_link_resolves(page):
    broken = []
    for link in ANY_LINK.findall(_text(page)):
        if re.match(r"[a-z]+://", link) or link.startswith("#"):
            continue
        if not (page.parent / link.split("#")[0]).resolve().exists():
            broken.append(link)
    assert not broken, f"{page.name}: broken links {broken}"


def test_every_public_loss_and_attention_stage_is_on_the_page():
    from inpainting.model import attention_steps, losses

    text = _text()
    wanted = [f"inpainting.model.losses.{name}" for name in losses.__all__ if name != "LossWeights"]
    stages = ["raw_patches", "downsample", "matching_patches", "valid_patches", "patch_scores",
              "propagate", "masked_softmax", "attention_offsets", "reconstruct"]
    assert set(stages) <= set(attention_steps.__all__)
    wanted += [f"inpainting.model.attention_steps.{name}" for name in stages]
    missing = [name for name in wanted if f"`{name}`" not in text]
    assert not missing, f"docs/equations.md does not mention {missing}"


def test_resolve_reports_what_is_missing():
    with pytest.raises(AttributeError, match="no_such_function"):
        resolve("inpainting.model.losses.no_such_function")
    with pytest.raises(ModuleNotFoundError):
        resolve("no_such_package.f")


def _notebook_anchors(stem):
    """Jupyter's heading anchors of notebooks/src/<stem>.py's Markdown headings."""
    source = ROOT / "notebooks" / "src" / f"{stem}.py"
    headings = re.findall(r"^# #+ (.+)$", source.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[`*]", "", heading).strip().replace(" ", "-") for heading in headings}


NOTEBOOK_REFS = NOTEBOOK_LINK.findall(_text())


def test_equations_link_the_notebook_sections_that_derive_them():
    assert len(NOTEBOOK_REFS) >= 20
    stems = {p.stem for p in (ROOT / "notebooks" / "src").glob("0*.py")}
    assert {stem for stem, _ in NOTEBOOK_REFS} == stems
    for stem, fragment in NOTEBOOK_REFS:
        assert (ROOT / "notebooks" / f"{stem}.ipynb").is_file(), stem
        assert unquote(fragment) in _notebook_anchors(stem), (
            f"docs/equations.md links {stem}.ipynb#{unquote(fragment)}, which is no heading there")
