"""Array backends: NumPy always, CuPy when it is installed and a GPU exists, and the fake device.

nnlite never picks a backend behind your back. Every op looks at the arrays it
is given and calls ``xp = get_array_module(*arrays)``; ``xp`` is then either the
``numpy`` or the ``cupy`` module, and the op's code is written once against it.
Mixing the two in one op is an error that names the op, and nothing is copied
between host and device implicitly: use ``Tensor.to("cuda")`` / ``Module.to``.

Devices are named like PyTorch's: ``"cpu"``, ``"cuda"`` (= ``"cuda:0"``), ``"cuda:1"``, ...
and ``"fake"``, the strict CuPy stand-in of ``fake_device.py`` that runs the GPU code
path on NumPy and counts what would cost on a GPU (tests and benchmarks use it).

This file holds only that plumbing (module lookup, device names, transfers,
``scatter_add``); it knows nothing about tensors or gradients.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from . import fake_device

try:  # CuPy is optional; importing it works on CPU-only machines.
    import cupy as _cupy
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None

__all__ = [
    "cupy", "cuda_available", "get_array_module", "is_cupy_array", "device_of",
    "to_device", "default_device", "scatter_add", "BackendMismatchError", "is_device_module",
    "cuda_device_count", "parse_device", "constant", "set_tf32", "tf32_enabled",
    "simulated_cuda",
]

cupy = _cupy


class BackendMismatchError(TypeError):
    """Raised when NumPy and CuPy arrays meet in one op."""


#: set by simulated_cuda(): the device count to answer and the TF32 switch (None: real)
_SIMULATED = {"count": None, "tf32_switch": None}


def cuda_device_count() -> int:
    """How many CUDA devices answer (0 without CuPy or without a GPU)."""
    if _SIMULATED["count"] is not None:
        return _SIMULATED["count"]
    if _cupy is None:
        return 0
    try:
        return int(_cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def cuda_available() -> bool:
    """True when CuPy is importable and at least one CUDA device answers."""
    return cuda_device_count() > 0


def is_cupy_array(array) -> bool:
    """True for a device array: a CuPy array, or one of the fake device's."""
    return type(array) is fake_device.FakeArray or (
        _cupy is not None and isinstance(array, _cupy.ndarray))


def is_device_module(xp) -> bool:
    """True when ``xp`` is CuPy or the fake device's module (the GPU code path)."""
    return xp is not np


def get_array_module(*arrays, op: str | None = None):
    """Return ``numpy`` or ``cupy`` for ``arrays`` (non-arrays are ignored).

    Raises ``BackendMismatchError`` naming ``op`` when both kinds are present.
    """
    kinds = set()
    for a in arrays:
        if type(a) is fake_device.FakeArray:
            kinds.add("fake")
        elif is_cupy_array(a):
            kinds.add("cuda")
        elif isinstance(a, np.ndarray):
            kinds.add("cpu")
    if len(kinds) > 1:
        where = f" in {op}" if op else ""
        raise BackendMismatchError(
            f"arrays of devices {sorted(kinds)} mixed{where} (NumPy and CuPy arrays): move "
            f"every input to the same device first with .to('cpu') or .to('cuda'); nnlite "
            f"never copies implicitly.")
    if "fake" in kinds:
        return fake_device.cupy
    return _cupy if "cuda" in kinds else np


def device_of(array) -> str:
    """'cpu', 'cuda' (device 0), 'cuda:N' (device N > 0) or 'fake'."""
    if type(array) is fake_device.FakeArray:
        return "fake"
    if is_cupy_array(array):
        index = array.device.id
        return "cuda" if index == 0 else f"cuda:{index}"
    return "cpu"


def to_device(array, device: str):
    """Copy ``array`` to ``device`` ('cpu', 'cuda', 'cuda:N' or 'fake'); a no-op when it is
    already there. 'cuda:N' also makes device N CuPy's current device, so the ops that
    follow run there."""
    device = _normalise_device(device)
    here = device_of(array) if isinstance(array, np.ndarray) or is_cupy_array(array) else "cpu"
    if device == "cpu":
        if here == "fake":
            return array.get()
        return _cupy.asnumpy(array) if here != "cpu" else np.asarray(array)
    if device == "fake":
        if here.startswith("cuda"):
            raise ValueError("to_device: move a CUDA array to 'cpu' before 'fake'")
        return fake_device.cupy.asarray(array)
    if here == "fake":
        raise ValueError("to_device: move a fake-device array to 'cpu' before 'cuda'")
    _, index = parse_device(device)
    count = cuda_device_count()
    if count == 0:
        raise RuntimeError(f"device {device!r} requested but no CUDA device is available "
                           "(is cupy installed and a GPU present?)")
    if index >= count:
        raise ValueError(f"device {device!r} requested but only {count} CUDA device(s) "
                         f"answer (cuda:0 to cuda:{count - 1})")
    _cupy.cuda.Device(index).use()
    _apply_tf32()
    return _cupy.asarray(array)


def parse_device(device) -> tuple[str, int]:
    """``("cpu", 0)``, ``("cuda", N)`` or ``("fake", 0)`` for a device name."""
    name = str(device).strip().lower()
    if name in ("cuda", "gpu"):
        return "cuda", 0
    if name.startswith("cuda:"):
        index = name[5:]
        if not index.isdigit():
            raise ValueError(f"unknown device {device!r}: expected 'cuda:N' with N a device "
                             "number, like 'cuda:1'")
        return "cuda", int(index)
    if name in ("cpu", "fake"):
        return name, 0
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda', 'cuda:N' or 'fake'")


_TF32 = {"wanted": os.environ.get("NNLITE_TF32", "0").strip().lower() in ("1", "true", "yes"),
         "applied": None}


def set_tf32(enabled: bool) -> None:
    """Let float32 matrix products on the GPU use TF32 tensor cores (10-bit mantissa inputs,
    float32 accumulation: several times faster on Ampere and later, ~1e-3 relative error).

    Off by default (tight-tolerance tests rely on that); ``NNLITE_TF32=1`` turns it on for
    a whole process (the CLI, benchmarks). Applied to CuPy's cuBLAS calls when arrays
    first go to a CUDA device, or at once if one is in use. No effect on NumPy."""
    _TF32["wanted"] = bool(enabled)
    if _TF32["applied"] is not None:
        _apply_tf32()


def tf32_enabled() -> bool:
    return _TF32["wanted"]


def _apply_tf32():
    if _TF32["applied"] == _TF32["wanted"]:
        return
    if _SIMULATED["tf32_switch"] is not None:
        _SIMULATED["tf32_switch"](_TF32["wanted"])
        _TF32["applied"] = _TF32["wanted"]
        return
    from cupy._core import _routines_linalg as linalg   # CuPy's cuBLAS compute-type switch

    mode = linalg.COMPUTE_TYPE_TF32 if _TF32["wanted"] else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(np.float32, mode)
    _TF32["applied"] = _TF32["wanted"]


@contextlib.contextmanager
def simulated_cuda(device_count: int, *, tf32_switch=None):
    """Answer as if ``device_count`` CUDA devices were present, inside the block: tests of
    device choice ('auto', refusals of 'cuda' and 'cuda:N') on any machine.

    ``cuda_device_count()``, ``cuda_available()``, ``default_device()`` and the checks of
    ``to_device()`` follow it; nothing runs on a simulated device (a transfer to one still
    needs CuPy). With ``tf32_switch``, CuPy counts as already configured and each TF32
    change is handed to ``tf32_switch(enabled)`` instead of CuPy's cuBLAS, so that
    ``set_tf32`` applying at once can be observed. Everything is restored on exit."""
    if isinstance(device_count, bool) or not isinstance(device_count, int) or device_count < 0:
        raise ValueError(f"simulated_cuda: device_count must be an int >= 0, "
                         f"got {device_count!r}")
    if tf32_switch is not None and not callable(tf32_switch):
        raise TypeError(f"simulated_cuda: tf32_switch must be callable, "
                        f"got {type(tf32_switch).__name__}")
    previous, applied = dict(_SIMULATED), _TF32["applied"]
    _SIMULATED.update(count=device_count, tf32_switch=tf32_switch)
    if tf32_switch is not None:
        _TF32["applied"] = _TF32["wanted"]        # as after a first transfer
    try:
        yield
    finally:
        _SIMULATED.update(previous)
        _TF32["applied"] = applied


def _normalise_device(device) -> str:
    """The canonical name: 'cpu', 'fake', 'cuda' for device 0, 'cuda:N' for N > 0."""
    kind, index = parse_device(device)
    return f"cuda:{index}" if kind == "cuda" and index else kind


def default_device(requested: str | None = None) -> str:
    """Choose a device for scripts: ``requested``, else $NNLITE_DEVICE, else 'cpu'.

    'auto' picks 'cuda' when a GPU is available and 'cpu' otherwise.
    """
    name = requested or os.environ.get("NNLITE_DEVICE", "cpu")
    if name == "auto":
        return "cuda" if cuda_available() else "cpu"
    name = _normalise_device(name)
    if name.startswith("cuda"):
        count = cuda_device_count()
        if count == 0:
            raise RuntimeError(f"device {name!r} requested but no CUDA device is available")
        if parse_device(name)[1] >= count:
            raise ValueError(f"device {name!r} requested but only {count} CUDA device(s) "
                             "answer")
    return name


_CONSTANTS: dict = {}
_MAX_CONSTANTS = 4096


def constant(value, dtype, xp):
    """A 0-d array of the Python scalar ``value`` on ``xp``'s device, made once and reused.

    ``x * 0.5`` needs 0.5 as an array of x's dtype. On NumPy that costs nothing; on a GPU
    each new one is an allocation and a host-to-device copy, so device constants are
    cached (per device, dtype and value). Callers must not write into them.
    """
    if xp is np:
        return np.asarray(value, dtype=dtype)
    device = xp.cuda.Device().id if xp is _cupy else 0
    key = (id(xp), device, None if dtype is None else np.dtype(dtype).str,
           type(value).__name__, value)
    array = _CONSTANTS.get(key)
    if array is None:
        if len(_CONSTANTS) >= _MAX_CONSTANTS:
            _CONSTANTS.clear()
        array = _CONSTANTS[key] = xp.asarray(value, dtype=dtype)
    return array


def scatter_add(target, index, values) -> None:
    """In place ``target[index] += values`` with repeated indices accumulated.

    NumPy's ``np.add.at`` and CuPy's ``cupyx.scatter_add`` are the same operation.
    """
    if type(target) is fake_device.FakeArray:
        fake_device.cupyx.scatter_add(target, index, values)
    elif is_cupy_array(target):
        import cupyx
        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)
