"""The fake device's module objects: ``cupy`` and ``cupyx`` as real CuPy names them, over NumPy.

``fake_device.py`` holds the array (``FakeArray``), the argument checks and the counters;
this file holds what code reaches through ``xp``: functions and ufuncs (only those in the
committed list of CuPy's names, with CuPy's keywords), ``asarray``/``array`` (the only
way host data comes in), ``asnumpy``, ``RawKernel`` (runs a registered NumPy twin),
``cuda.Device`` and ``cupyx.scatter_add``.
"""
from __future__ import annotations

import types

import numpy as np

from .fake_device import (NAMES, NO_LAUNCH, HOST_INPUT, FakeArray, _TWINS, _call, _check_keywords,
                          _device_key, _refuse_numpy, _sync, _unwrap, counters)

__all__ = ["FakeCupy", "FakeRawKernel", "cupy", "cupyx"]


class _Ufunc:
    """A CuPy ufunc: called like a function; ``reduce``/``reduceat``/... only where CuPy has them."""

    def __init__(self, name, ufunc):
        self.__name__, self._u = name, ufunc

    def __call__(self, *args, **kwargs):
        return _call(self._u, self.__name__, args, kwargs, NAMES["modules"]["cupy"][self.__name__])

    def __getattr__(self, name):
        if name not in NAMES["ufunc"]:
            raise AttributeError(f"cupy ufunc {self.__name__!r} has no attribute {name!r}")
        method = getattr(self._u, name)
        if not callable(method):
            return method
        return lambda *a, **k: _call(method, f"{self.__name__}.{name}", a, k, NAMES["ufunc"][name])


class FakeRawKernel:
    """``cupy.RawKernel(source, name)``: runs the NumPy twin registered for ``name``."""

    def __init__(self, code, name, options=(), **kwargs):
        if name not in _TWINS:
            raise TypeError(f"fake device: no NumPy twin registered for kernel {name!r} "
                            "(nnlite.fake_device.register_kernel_twin)")
        self.code, self.name, self._twin = code, name, _TWINS[name]

    def __call__(self, grid, block, args, **kwargs):
        for a in args:   # CuPy passes device arrays and NumPy scalars; anything else fails
            if isinstance(a, np.ndarray):
                _refuse_numpy(a, f"RawKernel {self.name}")
            if not isinstance(a, (FakeArray, np.generic)):
                raise TypeError(f"RawKernel {self.name}: unsupported argument type "
                                f"{type(a).__name__} (pass device arrays or NumPy scalars)")
        counters.launches += 1
        self._twin(grid, block, tuple(a._a if type(a) is FakeArray else a for a in args))


class _Device:
    def __init__(self, device=0):
        if int(device) != 0:
            raise ValueError(f"the fake device has one device (0), not {device}")
        self.id = 0

    def synchronize(self):
        _sync()

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeCupy(types.ModuleType):
    """A module object whose attributes are the real CuPy's names over NumPy."""

    def __init__(self, name, numpy_module, table):
        super().__init__(name, f"fake device: {table} over NumPy")
        self._numpy, self._table, self._cache = numpy_module, table, {}

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cache = self.__dict__["_cache"]
        if name not in cache:
            cache[name] = self._lookup(name)
        return cache[name]

    def _lookup(self, name):
        names = NAMES["modules"][self._table]
        if name not in names:
            raise AttributeError(f"module {self._table!r} has no attribute {name!r} (the fake "
                                 "device offers only what real CuPy has)")
        special = self._special(name)
        if special is not None:
            return special
        value = getattr(self._numpy, name, None)
        if value is None:
            raise AttributeError(f"fake device: {self._table}.{name} exists in CuPy but has no "
                                 "NumPy counterpart here")
        if isinstance(value, np.ufunc):
            return _Ufunc(name, value)
        if isinstance(value, type) or not callable(value):
            return value
        spec = names[name]
        launch = name not in NO_LAUNCH

        def function(*args, **kwargs):
            return _call(value, name, args, kwargs, spec, launch)
        function.__name__ = name
        return function

    def _special(self, name):
        if self._table == "cupy":
            if name in HOST_INPUT:
                return _host_input(getattr(np, name), NAMES["modules"]["cupy"][name], name)
            if name == "asnumpy":
                return _asnumpy
            if name == "RawKernel":
                return FakeRawKernel
            if name == "cuda":
                return types.SimpleNamespace(Device=_Device)
            if name in ("ElementwiseKernel", "ReductionKernel", "RawModule"):
                return _unsupported(name)
            if name in ("random", "linalg", "fft"):
                return FakeCupy(f"cupy.{name}", getattr(np, name), f"cupy.{name}")
        if self._table == "cupyx" and name == "scatter_add":
            return _scatter_add
        return None


def _host_input(fn, spec, name):
    def function(a, *args, **kwargs):
        _check_keywords(spec, kwargs, name)
        kwargs.pop("blocking", None)
        if type(a) is FakeArray:
            return _call(fn, name, (a,) + args, kwargs, spec)
        host = fn(_unwrap(a, name) if isinstance(a, (list, tuple)) else a, *args, **kwargs)
        counters.bytes_to_device += host.nbytes
        if host.ndim == 0:
            counters.scalar_uploads += 1
        counters.launches += 1
        return FakeArray(np.array(host, copy=True))
    function.__name__ = name
    return function


def _scatter_add(a, slices, value):
    """``cupyx.scatter_add``: ``a[slices] += value`` with repeated indices accumulated."""
    _call(np.add.at, "cupyx.scatter_add", (a, _device_key(slices), value), {}, launch=False)
    counters.launches += 1


def _asnumpy(a, stream=None, order="C", out=None, blocking=True):
    return a.get(order=order) if type(a) is FakeArray else np.asarray(a, order=order)


def _unsupported(name):
    def refuse(*args, **kwargs):
        raise TypeError(f"fake device: cupy.{name} compiles CUDA code it cannot run; use "
                        "RawKernel with a registered NumPy twin")
    return refuse


cupy = FakeCupy("cupy", np, "cupy")
cupyx = FakeCupy("cupyx", types.SimpleNamespace(), "cupyx")
