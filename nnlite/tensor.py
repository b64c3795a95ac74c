"""``Tensor``: an array plus what autograd needs to know about it.

A Tensor wraps a NumPy or CuPy array (``.data``). When it was produced by a
``Function`` while gradients were enabled, ``.creator`` points at that function
and ``.generation`` orders it in the graph (see ``autograd.py``). Leaves (tensors
you create) have no creator; ``backward()`` stores their gradients in ``.grad``.

Python operators and methods forward to ``nnlite.functional``, so ``x * y`` and
``F.mul(x, y)`` are the same op. Comparisons return plain boolean arrays: they
are not differentiable. Python scalars adopt the tensor's dtype, so a float32
tensor stays float32 (``x * 0.5``), as under NumPy 2's promotion rules.
"""
from __future__ import annotations

import numpy as np

from . import backend

__all__ = ["Tensor", "as_tensor", "as_array", "zeros_like", "ones_like"]


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: a NumPy or CuPy array, a Python scalar or a (nested) list. Python
            floats and lists of floats become float32 (PyTorch's default);
            arrays keep their dtype.
        requires_grad: whether ``backward`` should compute a gradient for it.
    """

    __array_ufunc__ = None  # make ``ndarray + Tensor`` call Tensor.__radd__
    __array_priority__ = 1000

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Tensor):
            raise TypeError("Tensor(data): data is already a Tensor; use .detach() or .data")
        if isinstance(data, np.generic):
            data = np.asarray(data)
        elif not (isinstance(data, np.ndarray) or backend.is_cupy_array(data)):
            data = np.asarray(data)
            if data.dtype == np.float64:
                data = data.astype(np.float32)
        if data.dtype.kind not in "biuf":
            raise TypeError(f"Tensor needs numbers (bool, int or float), got an array of dtype "
                            f"{data.dtype}")
        self.data = data
        self.grad = None
        self.creator = None
        self.generation = 0
        self.requires_grad = bool(requires_grad)
        if self.requires_grad and not self._is_floating():
            raise TypeError(f"only floating-point tensors can require grad, got {self.dtype}")

    # ----------------------------------------------------------- array facts
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return int(self.data.size)

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    def _is_floating(self):
        return np.issubdtype(np.dtype(str(self.data.dtype)), np.floating)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = str(backend.to_device(self.data, "cpu")).replace("\n", "\n       ")
        return f"Tensor({body}, dtype={self.dtype}, device={self.device}{grad})"

    # ----------------------------------------------------------- conversion
    def numpy(self):
        """The data as a NumPy array (copied from the GPU when needed)."""
        return backend.to_device(self.data, "cpu")

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def detach(self):
        """A new leaf sharing the data, cut from the graph."""
        return Tensor(self.data)

    def to(self, device):
        """Move to 'cpu' or 'cuda'; differentiable (the gradient moves back)."""
        if backend.device_of(self.data) == backend._normalise_device(device):
            return self
        from .functional.basic import ToDevice
        return ToDevice(device)(self)

    def astype(self, dtype):
        from .functional.basic import cast
        return cast(self, dtype)

    # ----------------------------------------------------------- autograd
    def backward(self, grad=None, *, create_graph: bool = False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` is the incoming gradient (defaults to 1 for one-element
        tensors). With ``create_graph=True`` the stored gradients keep a graph.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward(): grad can be implied only for one-element "
                                   f"tensors, this one has shape {self.shape}")
            grad = ones_like(self)
        grad = as_tensor(grad)
        if grad.shape != self.shape:
            raise ValueError(f"backward(): grad of shape {grad.shape} for a tensor of "
                             f"shape {self.shape}")
        from .autograd import run_backward   # the engine builds on Tensor, not the reverse
        run_backward([self], [grad], create_graph=create_graph)

    # ----------------------------------------------------------- operators
    def __add__(self, other): return _F().add(self, other)
    def __radd__(self, other): return _F().add(other, self)
    def __sub__(self, other): return _F().sub(self, other)
    def __rsub__(self, other): return _F().sub(other, self)
    def __mul__(self, other): return _F().mul(self, other)
    def __rmul__(self, other): return _F().mul(other, self)
    def __truediv__(self, other): return _F().div(self, other)
    def __rtruediv__(self, other): return _F().div(other, self)
    def __pow__(self, other): return _F().pow(self, other)
    def __rpow__(self, other): return _F().pow(other, self)
    def __matmul__(self, other): return _F().matmul(self, other)
    def __rmatmul__(self, other): return _F().matmul(other, self)
    def __neg__(self): return _F().neg(self)
    def __pos__(self): return self
    def __abs__(self): return _F().abs(self)
    def __getitem__(self, index): return _F().getitem(self, index)

    # Comparisons give plain boolean arrays (not differentiable).
    def __lt__(self, other): return self.data < as_array(other, self)
    def __le__(self, other): return self.data <= as_array(other, self)
    def __gt__(self, other): return self.data > as_array(other, self)
    def __ge__(self, other): return self.data >= as_array(other, self)
    def __eq__(self, other): return self.data == as_array(other, self)
    def __ne__(self, other): return self.data != as_array(other, self)
    __hash__ = object.__hash__  # tensors are dictionary keys (optimizer state)

    # ----------------------------------------------------------- methods
    def sum(self, axis=None, keepdims=False): return _F().sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _F().mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _F().max(self, axis, keepdims)
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _F().reshape(self, shape)
    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _F().transpose(self, axes or None)
    def permute(self, *axes): return self.transpose(*axes)
    @property
    def T(self): return _F().transpose(self, None)
    def exp(self): return _F().exp(self)
    def log(self): return _F().log(self)
    def sqrt(self): return _F().sqrt(self)
    def abs(self): return _F().abs(self)
    def tanh(self): return _F().tanh(self)
    def sigmoid(self): return _F().sigmoid(self)
    def relu(self): return _F().relu(self)
    def clip(self, min=None, max=None): return _F().clip(self, min, max)
    def broadcast_to(self, shape): return _F().broadcast_to(self, shape)


def _F():
    from . import functional
    return functional


def as_array(value, like: Tensor | None = None):
    """The raw array behind ``value``; Python scalars take ``like``'s dtype."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        return value
    if like is not None and np.isscalar(value):
        xp = backend.get_array_module(like.data)   # device constants are cached: no upload
        if isinstance(value, (bool, np.bool_)) or not like._is_floating():
            return backend.constant(value, None, xp)
        return backend.constant(value, like.dtype, xp)
    return np.asarray(value)


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """``value`` itself if it is a Tensor, else a constant Tensor around it."""
    if isinstance(value, Tensor):
        return value
    array = as_array(value, like)
    if isinstance(value, (float, list, tuple)) and like is None and array.dtype == np.float64:
        array = array.astype(np.float32)
    return Tensor(array)


def zeros_like(tensor: Tensor) -> Tensor:
    xp = backend.get_array_module(tensor.data)
    return Tensor(xp.zeros(tensor.shape, dtype=tensor.dtype))


def ones_like(tensor: Tensor) -> Tensor:
    xp = backend.get_array_module(tensor.data)
    return Tensor(xp.ones(tensor.shape, dtype=tensor.dtype))

