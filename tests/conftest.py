"""Shared fixtures: the array backend (``xp``) and a seeded random generator (``rng``).

Every backend-sensitive test takes ``xp``: it runs with NumPy, with the fake device
(``nnlite.fake_device``: CuPy's semantics on NumPy, so the GPU code path runs on every
machine) and again with CuPy when a CUDA device is present (one suite, parametrised;
no copied GPU tests).
"""
import numpy as np
import pytest

import nnlite
from nnlite import backend, fake_device

BACKENDS = ["numpy", "fake"] + (["cupy"] if nnlite.cuda_available() else [])
MODULES = {"numpy": np, "fake": fake_device.cupy, "cupy": backend.cupy}


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module under test: ``numpy``, the fake device's CuPy, or ``cupy``."""
    return MODULES[request.param]


@pytest.fixture
def fake_counters():
    """The fake device's counters, reset for this test."""
    fake_device.counters.reset()
    return fake_device.counters


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test draws the same numbers."""
    return np.random.default_rng(1234)
