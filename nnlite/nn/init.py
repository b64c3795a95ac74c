"""Weight initialisers, filling a tensor in place (PyTorch's ``torch.nn.init`` names).

Every random initialiser takes an explicit ``numpy.random.Generator`` as ``rng``:
the same generator state gives the same weights on every machine and backend
(values are drawn on the host in float64, then cast and copied to the tensor's
device). Each returns the tensor it filled.

Fans (PyTorch's ``_calculate_fan_in_and_fan_out``), for a weight of shape
(d0, d1, k...): receptive field ``R = prod(k...)``, ``fan_in = d1 * R``,
``fan_out = d0 * R``. So a Linear weight (out, in) has fan_in = in, fan_out = out;
a Conv2d weight OIHW has fan_in = in*KH*KW, fan_out = out*KH*KW.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["calculate_fans", "calculate_gain", "xavier_uniform_", "xavier_normal_",
           "glorot_uniform_", "kaiming_uniform_", "kaiming_normal_", "uniform_", "normal_",
           "zeros_", "ones_", "constant_"]


def calculate_fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (see the module docstring)."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fans need a weight with at least 2 axes (out, in, ...), got shape "
                         f"{shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (PyTorch's table).

    linear/conv/sigmoid: 1, tanh: 5/3, relu: sqrt(2),
    leaky_relu: sqrt(2 / (1 + slope^2)) with ``param`` the slope (default 0.01).
    """
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv_transpose2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}; expected linear, conv2d, "
                     "sigmoid, tanh, relu or leaky_relu")


def _check_rng(rng, name):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: pass an explicit numpy.random.Generator as rng= "
                        f"(e.g. numpy.random.default_rng(0)), got {type(rng).__name__}")


def _fill(tensor: Tensor, values) -> Tensor:
    """Write host ``values`` into ``tensor.data`` in place, on its device and in its dtype."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"initialisers fill a Tensor in place, got {type(tensor).__name__}")
    values = np.asarray(values, dtype=np.dtype(str(tensor.dtype)))
    xp = backend.get_array_module(tensor.data)
    tensor.data[...] = xp.asarray(values)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, *, rng) -> Tensor:
    """Fill with U(a, b)."""
    _check_rng(rng, "uniform_")
    return _fill(tensor, rng.uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, *, rng) -> Tensor:
    """Fill with N(mean, std^2)."""
    _check_rng(rng, "normal_")
    return _fill(tensor, rng.normal(mean, std, size=tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, *, rng) -> Tensor:
    """Glorot uniform (Glorot & Bengio 2010, eq. 16): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).

    TensorFlow's default ``glorot_uniform`` initialiser, used by the DeepFill release.
    """
    fan_in, fan_out = calculate_fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    _check_rng(rng, "xavier_uniform_")
    return _fill(tensor, rng.uniform(-bound, bound, size=tensor.shape))


glorot_uniform_ = xavier_uniform_


def xavier_normal_(tensor: Tensor, gain: float = 1.0, *, rng) -> Tensor:
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fans(tensor.shape)
    _check_rng(rng, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, rng.normal(0.0, std, size=tensor.shape))


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan_in, fan_out = calculate_fans(tensor.shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", *, rng) -> Tensor:
    """He uniform (He et al. 2015): U(-b, b), b = gain * sqrt(3 / fan), gain from ``nonlinearity``
    (``a`` is the leaky_relu slope)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    _check_rng(rng, "kaiming_uniform_")
    return _fill(tensor, rng.uniform(-bound, bound, size=tensor.shape))


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", *, rng) -> Tensor:
    """He normal: N(0, std^2), std = gain / sqrt(fan)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    _check_rng(rng, "kaiming_normal_")
    return _fill(tensor, rng.normal(0.0, std, size=tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, np.full(tensor.shape, value))


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)
