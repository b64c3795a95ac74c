"""A strict stand-in for CuPy, so the GPU code path runs (and is counted) on any machine.

``Tensor.to("fake")`` / ``Module.to("fake")`` put arrays on this "device". Its arrays
(``FakeArray``) hold NumPy arrays inside, but behave like CuPy's where CuPy differs
from NumPy, so a test on the fake device fails where the code would fail on a GPU:

* implicit conversion to NumPy raises CuPy's TypeError (``np.asarray(x)``, a device
  array inside ``np.<function>`` that CuPy cannot dispatch): use ``.get()`` /
  ``to_device(x, "cpu")``;
* a NumPy array inside a device op (operand, index, assigned value, function argument)
  is refused, as CuPy refuses it: only ``xp.asarray`` / ``xp.array`` copy host data in;
* reductions return 0-d device arrays, never Python or NumPy scalars;
* only names, ndarray methods and keyword arguments that exist in real CuPy are there,
  read from ``cupy_names.json`` (generated from a real CuPy by
  ``tools/generate_cupy_names.py``; no GPU wheel is needed to use it);
* raw CUDA kernels (``xp.RawKernel``) run through the NumPy twin registered for their
  name (``register_kernel_twin``); compiling the CUDA source is a separate check.

What costs on a GPU is counted in ``counters``: host synchronisations (every value
fetched to the host: ``float()``, ``bool()``, ``.item()``, ``.get()``), kernel-launching
ops (every op that writes new device memory; views and ``empty`` launch nothing),
bytes moved each way, and uploads of single Python/NumPy scalars.

It is a test device: it runs at NumPy speed plus bookkeeping, and it does not model
streams or memory pools.
"""
from __future__ import annotations

import json
import numbers
import operator
from pathlib import Path

import numpy as np

__all__ = ["FakeArray", "FakeCupy", "FakeRawKernel", "cupy", "cupyx", "counters", "Counters",
           "register_kernel_twin", "IMPLICIT_CONVERSION_MESSAGE"]

IMPLICIT_CONVERSION_MESSAGE = ("Implicit conversion to a NumPy array is not allowed. "
                               "Please use `.get()` to construct a NumPy array explicitly.")
NAMES = json.loads((Path(__file__).with_name("cupy_names.json")).read_text())
#: functions that copy host data to the device (everything else refuses NumPy arrays)
HOST_INPUT = {"asarray", "array", "asanyarray"}
#: allocations that launch no kernel
NO_LAUNCH = {"empty", "empty_like", "ndarray"}


class Counters:
    """Running totals; ``reset()`` between the things you measure, ``snapshot()`` to read."""

    FIELDS = ("host_syncs", "launches", "bytes_to_device", "bytes_to_host", "scalar_uploads")

    def __init__(self):
        self.reset()

    def reset(self):
        for name in self.FIELDS:
            setattr(self, name, 0)

    def snapshot(self):
        return {name: getattr(self, name) for name in self.FIELDS}


counters = Counters()


# ------------------------------------------------------------------ argument checks
def _refuse_numpy(value, where):
    raise TypeError(f"Unsupported type {type(value)} in {where}: a NumPy array inside a device "
                    "op (CuPy refuses it); copy it first with xp.asarray")


def _unwrap(value, where):
    """FakeArray -> its NumPy array; a NumPy array is refused; containers recursively."""
    if type(value) is FakeArray:
        return value._a
    if isinstance(value, np.ndarray):
        _refuse_numpy(value, where)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, where) for k, v in value.items()}
    return value


def _check_keywords(spec, kwargs, where):
    if spec is None or spec["varkw"]:
        return
    unknown = sorted(set(kwargs) - set(spec["params"]))
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {unknown}: real CuPy's "
                        f"{where} takes {spec['params']}")


def _launched(result, inputs):
    """True when ``result`` is fresh device memory (not a view of an input)."""
    if not isinstance(result, np.ndarray):
        return False
    return not any(isinstance(a, np.ndarray) and np.may_share_memory(result, a) for a in inputs)


def _wrap(result, inputs=(), launch=True):
    """NumPy results -> FakeArray (scalars become 0-d arrays), counting new memory."""
    if isinstance(result, np.generic):
        result = np.asarray(result)
    if isinstance(result, np.ndarray):
        if launch and _launched(result, inputs):
            counters.launches += 1
        return FakeArray(result)
    if isinstance(result, tuple):
        return tuple(_wrap(r, inputs, launch) for r in result)
    if isinstance(result, list):
        return [_wrap(r, inputs, launch) for r in result]
    return result


def _flat_arrays(values):
    for v in values:
        if isinstance(v, np.ndarray):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _flat_arrays(v)


def _call(fn, where, args, kwargs, spec=None, launch=True):
    _check_keywords(spec, kwargs, where)
    args, kwargs = _unwrap(args, where), _unwrap(kwargs, where)
    inputs = list(_flat_arrays(list(args) + list(kwargs.values())))
    return _wrap(fn(*args, **kwargs), inputs, launch)


def _sync(nbytes=0):
    counters.host_syncs += 1
    counters.bytes_to_host += nbytes


def _device_key(key):
    """An index with its NumPy arrays uploaded, as CuPy does (an implicit transfer)."""
    if isinstance(key, tuple):
        return tuple(_device_key(k) for k in key)
    if isinstance(key, np.ndarray):
        counters.bytes_to_device += key.nbytes
        counters.launches += 1
        return FakeArray(key)
    return key


# ------------------------------------------------------------------ the array
def _binary(fn, name):
    def method(self, other):
        if isinstance(other, np.ndarray):
            _refuse_numpy(other, f"ndarray.{name}")
        if type(other) is not FakeArray and not isinstance(other, (numbers.Number, np.generic)):
            return NotImplemented
        return _call(fn, f"ndarray.{name}", (self, other), {})
    method.__name__ = name
    return method


def _inplace(fn, name):
    def method(self, other):
        _call(fn, f"ndarray.{name}", (self, other), {}, launch=False)
        counters.launches += 1
        return self
    method.__name__ = name
    return method


class FakeArray:
    """A device array of the fake device: a NumPy array that refuses to leave implicitly."""

    __slots__ = ("_a",)
    __array_priority__ = 100   # CuPy's

    def __init__(self, array):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"FakeArray wraps a NumPy array, got {type(array).__name__}")
        self._a = array

    # facts (no data movement)
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: FakeArray(self._a.T))
    device = property(lambda self: "fake")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # leaving the device: explicit, counted
    def __array__(self, *args, **kwargs):
        raise TypeError(IMPLICIT_CONVERSION_MESSAGE)

    def get(self, stream=None, order="C", out=None, blocking=True):
        _sync(self._a.nbytes)
        return np.array(self._a, order=order)

    def item(self):
        _sync(self._a.itemsize)
        return self._a.item()

    def tolist(self):
        _sync(self._a.nbytes)
        return self._a.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._a.size != 1:
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous. Use a.any() or a.all()")
        return bool(self.item())

    def __repr__(self):
        _sync(self._a.nbytes)
        return repr(self._a)

    __str__ = __repr__

    def set(self, arr, stream=None):
        """CuPy's host -> device copy into this array."""
        if not isinstance(arr, np.ndarray) or arr.shape != self._a.shape:
            raise ValueError("set: a NumPy array of the same shape is required")
        counters.bytes_to_device += arr.nbytes
        self._a[...] = arr

    # indexing: CuPy copies NumPy index arrays to the device (counted); values must be there
    def __getitem__(self, key):
        return _call(operator.getitem, "ndarray.__getitem__", (self, _device_key(key)), {})

    def __setitem__(self, key, value):
        _call(operator.setitem, "ndarray.__setitem__", (self, _device_key(key), value), {},
              launch=False)
        counters.launches += 1

    # methods: those CuPy's ndarray has, with its keywords
    def __getattr__(self, name):
        spec = NAMES["ndarray"].get(name, "missing")
        if spec == "missing" or not hasattr(self._a, name):
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} (the fake "
                                 "device offers only what real CuPy's ndarray has)")
        method = getattr(self._a, name)
        if not callable(method):
            return _wrap(method, (), launch=False)
        free = name in ("reshape", "transpose", "view", "ravel", "squeeze", "swapaxes")
        return lambda *args, **kwargs: _call(method, f"ndarray.{name}", args, kwargs, spec,
                                             launch=not free)

    # NumPy protocols: dispatch to the fake module, as CuPy dispatches to cupy
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or ufunc.__name__ not in NAMES["modules"]["cupy"]:
            return NotImplemented
        return getattr(cupy, ufunc.__name__)(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        if func.__name__ not in NAMES["modules"]["cupy"]:
            return NotImplemented
        return getattr(cupy, func.__name__)(*args, **kwargs)

    __add__, __radd__ = _binary(operator.add, "__add__"), _binary(lambda a, b: b + a, "__radd__")
    __sub__, __rsub__ = _binary(operator.sub, "__sub__"), _binary(lambda a, b: b - a, "__rsub__")
    __mul__, __rmul__ = _binary(operator.mul, "__mul__"), _binary(lambda a, b: b * a, "__rmul__")
    __truediv__ = _binary(operator.truediv, "__truediv__")
    __rtruediv__ = _binary(lambda a, b: b / a, "__rtruediv__")
    __floordiv__ = _binary(operator.floordiv, "__floordiv__")
    __mod__ = _binary(operator.mod, "__mod__")
    __pow__, __rpow__ = _binary(operator.pow, "__pow__"), _binary(lambda a, b: b ** a, "__rpow__")
    __matmul__ = _binary(operator.matmul, "__matmul__")
    __rmatmul__ = _binary(lambda a, b: b @ a, "__rmatmul__")
    __and__, __or__ = _binary(operator.and_, "__and__"), _binary(operator.or_, "__or__")
    __xor__ = _binary(operator.xor, "__xor__")
    __lt__, __le__ = _binary(operator.lt, "__lt__"), _binary(operator.le, "__le__")
    __gt__, __ge__ = _binary(operator.gt, "__gt__"), _binary(operator.ge, "__ge__")
    __eq__, __ne__ = _binary(operator.eq, "__eq__"), _binary(operator.ne, "__ne__")
    __iadd__, __isub__ = _inplace(operator.iadd, "__iadd__"), _inplace(operator.isub, "__isub__")
    __imul__ = _inplace(operator.imul, "__imul__")
    __itruediv__ = _inplace(operator.itruediv, "__itruediv__")
    __hash__ = None

    def __neg__(self):
        return _call(operator.neg, "ndarray.__neg__", (self,), {})

    def __abs__(self):
        return _call(abs, "ndarray.__abs__", (self,), {})

    def __invert__(self):
        return _call(operator.invert, "ndarray.__invert__", (self,), {})

    def __pos__(self):
        return self


# ------------------------------------------------------------------ raw kernels
_TWINS: dict = {}


def register_kernel_twin(name, twin):
    """Let ``RawKernel(source, name)`` run ``twin(grid, block, args)`` on NumPy arrays."""
    _TWINS[name] = twin



# the module objects (``cupy``, ``cupyx``) live in fake_cupy.py, which builds on the above
from .fake_cupy import FakeCupy, FakeRawKernel, cupy, cupyx  # noqa: E402
