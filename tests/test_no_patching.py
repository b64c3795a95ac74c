"""No file of the repository monkeypatches the library (``tools/patch_detector.py``).

Tests, benchmarks, scripts, tools, the notebooks and the python blocks of the README and
docs use the library through its supported doors (arguments, ``register_forward_hook``,
a subclass, a wrapper passed in); none rewrites a module of ``nnlite`` / ``inpainting`` or
a method of one of its objects. The synthetic sources below prove the detector sees every
form it claims to, and lets the look-alikes that patch nothing pass.
"""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("patch_detector", ROOT / "tools" / "patch_detector.py")
detector = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(detector)


def test_no_file_of_the_repository_patches_the_library():
    found = detector.repository_patches()
    assert found == [], "library patches (use a forward hook, a subclass or an argument):\n" \
        + "\n".join(found)


def test_the_scan_reaches_every_kind_of_file():
    files, markdown = detector.scanned_files()
    folders = {path.relative_to(ROOT).parent.as_posix() for path in files}
    assert {"tests", "benchmarks", "scripts", "tools", "notebooks/src",
            "notebooks/solutions"} <= folders
    assert ROOT / "tests" / "test_fake_device.py" in files
    assert not any(path.relative_to(ROOT).parts[0] in ("nnlite", "inpainting") for path in files)
    assert ROOT / "README.md" in markdown and ROOT / "docs" / "autograd.md" in markdown
    readme = detector.python_blocks((ROOT / "README.md").read_text())
    assert len(readme) >= 3 and all(code.strip() for _, code in readme)


def test_python_blocks_and_their_line_numbers():
    text = "intro\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n```python\ny = 2\nz = 3\n```\n"
    assert detector.python_blocks(text) == [(4, "x = 1\n"), (11, "y = 2\nz = 3\n")]


PATCHES = [
    # assignments to a library module, class or function
    ("import inpainting.model.attention as a\na.contextual_attention = print\n", 2, "module"),
    ("import inpainting\ninpainting.model.attention.knockout = 1\n", 2, "module"),
    ("from nnlite import Tensor\nTensor.__add__ = lambda a, b: a\n", 2, "module"),
    ("import nnlite.functional as F\nF.relu += 0\n", 2, "module"),
    ("from nnlite import functional as F\ndel F.relu\n", 2, "module"),
    ("import nnlite.functional as F\nvars(F)['relu'] = abs\n", 2, "module"),
    ("import importlib\nm = importlib.import_module('inpainting.model.attention')\nm.x = 1\n", 3,
     "module"),
    ("import sys\nsys.modules['inpainting.model.attention'] = None\n", 2, "module"),
    # setattr / delattr
    ("from inpainting.model import attention\nsetattr(attention, 'x', 1)\n", 2, "setattr"),
    ("import nnlite\ndelattr(nnlite, 'grad')\n", 2, "setattr"),
    # pytest's monkeypatch and unittest.mock
    ("def test(monkeypatch):\n"
     "    monkeypatch.setattr('inpainting.model.attention.contextual_attention', print)\n", 2,
     "monkeypatch"),
    ("import nnlite.backend as backend\ndef test(monkeypatch):\n"
     "    monkeypatch.setattr(backend, 'default_device', lambda: 'cpu')\n", 3, "monkeypatch"),
    ("import sys\ndef test(monkeypatch):\n"
     "    monkeypatch.setitem(sys.modules, 'nnlite.fake_device', None)\n", 3, "monkeypatch"),
    ("from unittest import mock\n@mock.patch('nnlite.grad')\ndef test(grad):\n    pass\n", 2,
     "monkeypatch"),
    ("from unittest import mock\nfrom inpainting.model import attention\n"
     "with mock.patch.object(attention, 'knockout', 1):\n    pass\n", 3, "monkeypatch"),
    # a method replaced on an object
    ("model.forward = lambda x: x\n", 1, "method"),
    ("def record(name, forward):\n    return forward\n"
     "for name, module in model.named_children():\n"
     "    module.forward = record(name, module.forward)\n", 4, "method"),
    ("def counted(index, epoch):\n    return index\ncorpus.sample = counted\n", 3, "method"),
    ("trainer.dataset.next_batch = lambda n: n\n", 1, "method"),
    ("trainer.generator_step = other.generator_step\n", 1, "method"),
    ("type(model).forward = lambda self, x: x\n", 1, "method"),
    ("from unittest import mock\nmodel.forward = mock.MagicMock()\n", 2, "method"),
    ("setattr(model, 'forward', print)\n", 1, "method"),
    ("def test(monkeypatch):\n    monkeypatch.setattr(trainer, 'critic_step', lambda: {})\n", 2,
     "method"),
]


@pytest.mark.parametrize("source, line, kind", PATCHES, ids=[str(i) for i in range(len(PATCHES))])
def test_the_detector_finds_each_form_of_patch(source, line, kind):
    assert [(found_line, found_kind) for found_line, found_kind, _ in detector.patches(source)] \
        == [(line, kind)]


NOT_PATCHES = [
    "import nnlite.functional as F\nx = F.relu\nmodel.training = False\n",
    "handle = model.conv1.register_forward_hook(lambda module, inputs, output: output)\n",
    "class Value:\n    pass\ndef value_exp(self):\n    return self\nValue.exp = value_exp\n",
    "class Wrapper:\n    def __init__(self, forward):\n        self.forward = forward\n",
    "import copy\ntrainer.rng.bit_generator.state = copy.deepcopy(saved)\n",
    "trainer.step = 3\ntrainer.discount = weights\n",
    "import numpy as np\ndef test(monkeypatch):\n"
    "    monkeypatch.setattr(np.lib.format, 'write_array', print)\n",
    "from PIL import Image\ndef save(self, stream):\n    pass\ndef test(monkeypatch):\n"
    "    monkeypatch.setattr(Image.Image, 'save', save)\n",
    "def test(monkeypatch):\n    monkeypatch.setenv('NNLITE_DEVICE', 'cpu')\n",
    "corpus._loaders[0] = broken\n",
]


@pytest.mark.parametrize("source", NOT_PATCHES, ids=[str(i) for i in range(len(NOT_PATCHES))])
def test_the_detector_passes_what_patches_nothing(source):
    assert detector.patches(source) == []


def test_a_notebook_solution_is_read_inside_its_notebook():
    """The solution's names come from the notebook: its own class may gain a method there,
    and a module the notebook imported is still the library's."""
    notebook = "import nnlite.functional as F\nclass Value:\n    pass\n"
    solution = "def value_exp(self):\n    return self\nValue.exp = value_exp\n"
    assert [kind for _, kind, _ in detector.patches(solution)] == ["method"]
    assert detector.patches(solution, runs_in=notebook) == []
    assert [kind for _, kind, _ in detector.patches("F.relu = abs\n", runs_in=notebook)] == ["module"]


def test_the_method_names_come_from_the_library():
    names = detector.library_method_names()
    assert {"forward", "__call__", "generator_step", "next_batch", "sample", "state_dict"} <= names
    assert "register_forward_hook" in names
