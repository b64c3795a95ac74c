"""Layers without convolution: ``Linear``, activations as modules, ``Flatten``, ``Sequential``.

Each is a thin ``Module`` around an op of ``nnlite.functional``; the maths lives
there. Convolution layers are in ``conv.py``.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..tensor import as_tensor
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "ReLU", "LeakyReLU", "ELU", "Tanh", "Sigmoid", "Flatten", "Sequential"]


class Linear(Module):
    """Fully connected layer: ``y = x W^T + b``.

    Shapes: x (..., in_features) -> y (..., out_features); ``weight`` is
    (out_features, in_features) (PyTorch's layout; a TensorFlow dense kernel is
    its transpose), ``bias`` is (out_features,).

    Initialisation: Glorot uniform weight (TensorFlow's dense default, which
    the DeepFill release uses), zero bias. ``rng`` is a ``numpy.random.Generator``;
    without one a fresh, unseeded generator is used (pass one for reproducible runs).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None, dtype=np.float32):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: in_features and out_features must be >= 1, got "
                             f"{in_features} and {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = np.random.default_rng() if rng is None else rng
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        init.xavier_uniform_(self.weight, rng=rng)
        if bias:
            self.bias = Parameter(np.zeros(out_features, dtype=dtype))
        else:
            self.bias = None

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input must be (..., {self.in_features}), got {x.shape}")
        y = F.matmul(x, F.transpose(self.weight))
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W): merge every axis from ``start_dim`` on."""

    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}"


class Sequential(Module):
    """Modules applied one after the other; registered as '0', '1', ... (so
    ``state_dict`` names read ``0.weight``)."""

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: item {index} is {type(module).__name__}, "
                                "not a Module")
            setattr(self, str(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x
