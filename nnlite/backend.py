"""Array backends: NumPy always, CuPy when it is installed and a GPU exists.

nnlite never picks a backend behind your back. Every op looks at the arrays it
is given and calls ``xp = get_array_module(*arrays)``; ``xp`` is then either the
``numpy`` or the ``cupy`` module, and the op's code is written once against it.
Mixing the two in one op is an error that names the op, and nothing is copied
between host and device implicitly: use ``Tensor.to("cuda")`` / ``Module.to``.

This file holds only that plumbing (module lookup, device names, transfers,
``scatter_add``); it knows nothing about tensors or gradients.
"""
from __future__ import annotations

import os

import numpy as np

try:  # CuPy is optional; importing it works on CPU-only machines.
    import cupy as _cupy
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None

__all__ = [
    "cupy", "cuda_available", "get_array_module", "is_cupy_array", "device_of",
    "to_device", "default_device", "scatter_add", "BackendMismatchError",
]

cupy = _cupy


class BackendMismatchError(TypeError):
    """Raised when NumPy and CuPy arrays meet in one op."""


def cuda_available() -> bool:
    """True when CuPy is importable and at least one CUDA device answers."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def is_cupy_array(array) -> bool:
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def get_array_module(*arrays, op: str | None = None):
    """Return ``numpy`` or ``cupy`` for ``arrays`` (non-arrays are ignored).

    Raises ``BackendMismatchError`` naming ``op`` when both kinds are present.
    """
    has_cupy = has_numpy = False
    for a in arrays:
        if is_cupy_array(a):
            has_cupy = True
        elif isinstance(a, np.ndarray):
            has_numpy = True
    if has_cupy and has_numpy:
        where = f" in {op}" if op else ""
        raise BackendMismatchError(
            f"NumPy and CuPy arrays mixed{where}: move every input to the same device "
            f"first with .to('cpu') or .to('cuda'); nnlite never copies implicitly.")
    return _cupy if has_cupy else np


def device_of(array) -> str:
    """'cuda' for CuPy arrays, 'cpu' otherwise."""
    return "cuda" if is_cupy_array(array) else "cpu"


def to_device(array, device: str):
    """Copy ``array`` to ``device`` ('cpu' or 'cuda'); a no-op when it is already there."""
    device = _normalise_device(device)
    if device == "cpu":
        return _cupy.asnumpy(array) if is_cupy_array(array) else np.asarray(array)
    if not cuda_available():
        raise RuntimeError("device 'cuda' requested but no CUDA device is available "
                           "(is cupy installed and a GPU present?)")
    return _cupy.asarray(array)


def _normalise_device(device) -> str:
    name = str(device).lower()
    if name.startswith("cuda") or name == "gpu":
        return "cuda"
    if name == "cpu":
        return "cpu"
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def default_device(requested: str | None = None) -> str:
    """Choose a device for scripts: ``requested``, else $NNLITE_DEVICE, else 'cpu'.

    'auto' picks 'cuda' when a GPU is available and 'cpu' otherwise.
    """
    name = requested or os.environ.get("NNLITE_DEVICE", "cpu")
    if name == "auto":
        return "cuda" if cuda_available() else "cpu"
    name = _normalise_device(name)
    if name == "cuda" and not cuda_available():
        raise RuntimeError("device 'cuda' requested but no CUDA device is available")
    return name


def scatter_add(target, index, values) -> None:
    """In place ``target[index] += values`` with repeated indices accumulated.

    NumPy's ``np.add.at`` and CuPy's ``cupyx.scatter_add`` are the same operation.
    """
    if is_cupy_array(target):
        import cupyx
        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)
