"""The README's code blocks run as written.

Every fenced ``python`` block and every indented (four-space) block of README.md is run, in
order, in one temporary folder holding the small files the examples name (tiny images and
masks, a tiny model as ``places2.npz``, a tiny released TensorFlow checkpoint as
``release_model/`` and ``model_logs/release_places2_256``, a run's checkpoints):

* a shell line is split at ``&&`` and its ``# comment`` dropped; each ``inpainting ...``
  command runs through ``inpainting.app.cli.main`` (globs expanded as a shell would) and must
  exit 0; ``pip install -e .`` / ``pip install -e ".[extra]"`` is checked instead of run:
  the package and the extra's requirements must be importable; any other command fails;
* a python block is executed as a script.

A block that needs what no test machine has (a GPU-size training run, this suite itself) is
preceded in README.md by ``<!-- not run by tests/test_readme.py: <reason> -->``; the reason
is required and such blocks are listed by ``test_blocks_not_run_say_why``.
"""
import glob
import importlib.util
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpainting.app import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIXTURES = ROOT / "tests" / "fixtures"
NOT_RUN = re.compile(r"<!-- not run by tests/test_readme\.py: (.*?) -->")


def readme_blocks(text):
    """``[(kind, code, reason_not_run)]`` in README order: kind 'python' or 'shell'."""
    blocks, lines, i, reason = [], text.splitlines(), 0, None
    while i < len(lines):
        line = lines[i]
        marker = NOT_RUN.search(line)
        if marker:
            reason = marker.group(1).strip()
            i += 1
            continue
        if line.startswith("```"):
            language, body = line[3:].strip(), []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if language not in ("python", "bash", "sh", "shell"):
                raise AssertionError(f"README.md: a ```{language} block; the README test runs "
                                     "python and shell blocks only")
            blocks.append(("python" if language == "python" else "shell", "\n".join(body),
                           reason))
            reason = None
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()) \
                and not lines[i - 1 if i else 0].lstrip().startswith(("*", "-", "|")):
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            blocks.append(("shell", "\n".join(body).strip("\n"), reason))
            reason = None
            continue
        elif line.strip() and reason is not None and not line.startswith("<!--"):
            raise AssertionError(f"README.md: the marker 'not run ... {reason}' is not "
                                 f"followed by a code block (next line: {line!r})")
        i += 1
    return blocks


def _image(path, size, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(path)


def _mask(path, size):
    mask = np.zeros(size, np.uint8)
    mask[size[0] // 4:size[0] // 2, size[1] // 4:size[1] // 2] = 255
    Image.fromarray(mask).save(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The files the README's examples name, small."""
    from inpainting.weights.model_io import load_generator, save_generator

    here = tmp_path_factory.mktemp("readme")
    _image(here / "photo.png", (40, 48), 0)
    _mask(here / "mask.png", (40, 48))
    _image(here / "big.png", (48, 64), 1)
    _mask(here / "big_mask.png", (48, 64))
    _mask(here / "one_mask.png", (32, 40))
    for folder_name in ("photos", "masks", "val_photos"):
        (here / folder_name).mkdir()
    for seed, stem in enumerate(("a", "b")):
        _image(here / "photos" / f"{stem}.png", (32, 40), seed + 2)
        _mask(here / "masks" / f"{stem}.png", (32, 40))
        _image(here / "val_photos" / f"{stem}.png", (64, 72), seed + 5)
    for release in ("release_model", "model_logs/release_places2_256"):
        shutil.copytree(FIXTURES / "tf_release_tiny", here / release)
    tiny = load_generator(FIXTURES / "tf_release_tiny")          # cnum 2
    save_generator(here / "places2.npz", tiny, image_size=256)
    for step in (1, 2):
        path = here / "runs" / "mine" / "checkpoints" / f"step_{step:07d}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_generator(path, tiny, step=step)
    return here


def _check_pip(words):
    """``pip install -e .`` or ``pip install -e ".[extra]"``: already done for this test
    run; the package and the extra's requirements must import."""
    assert words[:3] == ["pip", "install", "-e"] and len(words) == 4, words
    target = words[3]
    match = re.fullmatch(r"\.(?:\[(\w+)\])?", target)
    assert match, f"README: pip installs {target!r}, not this project"
    assert importlib.util.find_spec("inpainting") and importlib.util.find_spec("nnlite")
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {})
    if match.group(1):
        assert match.group(1) in extras, f"README names the extra {match.group(1)!r}"
        for requirement in extras[match.group(1)]:
            module = re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].replace("-", "_")
            assert importlib.util.find_spec(module), f"{requirement} is not installed"


def _run_shell(block, capsys):
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        for command in filter(None, (part.strip() for part in line.split("&&"))):
            words = shlex.split(command)
            if words[0] == "pip":
                _check_pip(words)
                continue
            assert words[0] == "inpainting", f"README: unknown command {command!r}"
            args = []
            for word in words[1:]:
                args += sorted(glob.glob(word)) or [word] if any(c in word for c in "*?[") \
                    else [word]
            code = cli.main(args)
            error = capsys.readouterr().err
            assert code == 0, f"README: `{command}` exited {code}: {error}"


BLOCKS = readme_blocks(README.read_text())


def test_the_readme_has_blocks_to_run():
    kinds = [kind for kind, _, reason in BLOCKS if reason is None]
    assert kinds.count("python") >= 3 and kinds.count("shell") >= 3


def test_blocks_not_run_say_why():
    """The only blocks not run are marked, each with its reason (listed here, not hidden)."""
    marked = [(code.splitlines()[0], reason) for _, code, reason in BLOCKS if reason]
    assert all(len(reason) > 10 for _, reason in marked), marked
    assert [first for first, _ in marked] == [
        'pip install -e ".[test]" && python -m pytest -q',
        "inpainting train --data /data/places2/train.flist --out-dir runs/places2",
        'pip install -e ".[app]" && inpainting app      # then open http://127.0.0.1:7860/']


def test_readme_code_blocks_run_as_written(folder, monkeypatch, capsys):
    monkeypatch.chdir(folder)
    ran = 0
    for number, (kind, code, reason) in enumerate(BLOCKS, 1):
        if reason is not None:
            continue
        if kind == "python":
            exec(compile(code, f"README.md block {number}", "exec"), {"__name__": "__readme__"})
        else:
            _run_shell(code, capsys)
        ran += 1
    assert ran == len([b for b in BLOCKS if b[2] is None])
    for written in ("demo.png", "filled.png", "attention.png", "filled/a.png", "filled/b.png",
                    "out.png", "results.csv", "cmp.png", "mine_avg.npz", "filled.png", "att.png",
                    "ckpt.npz"):
        assert (folder / written).is_file(), written


def test_the_block_reader_finds_fenced_indented_and_marked_blocks():
    text = ("Intro\n\n    inpainting demo\n    inpainting evaluate  # note\n\n"
            "* a list item\n\n"
            "<!-- not run by tests/test_readme.py: needs a GPU for hours -->\n\n"
            "    inpainting train\n\n```python\nx = 1\n```\n")
    assert readme_blocks(text) == [
        ("shell", "inpainting demo\ninpainting evaluate  # note", None),
        ("shell", "inpainting train", "needs a GPU for hours"), ("python", "x = 1", None)]
    with pytest.raises(AssertionError, match="not followed by a code block"):
        readme_blocks("<!-- not run by tests/test_readme.py: a reason here -->\n\nText\n")
