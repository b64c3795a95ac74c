"""Shared fixtures: the array backend (``xp``) and a seeded random generator (``rng``).

Every backend-sensitive test takes ``xp``: it runs with NumPy always and again
with CuPy when a CUDA device is present (one suite, parametrised; no copied GPU tests).
"""
import numpy as np
import pytest

import nnlite
from nnlite import backend

BACKENDS = ["numpy"] + (["cupy"] if nnlite.cuda_available() else [])


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module under test: ``numpy`` or ``cupy``."""
    return np if request.param == "numpy" else backend.cupy


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test draws the same numbers."""
    return np.random.default_rng(1234)
