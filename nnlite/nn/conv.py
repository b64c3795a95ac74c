"""Convolution layers: ``Conv2d`` and ``ConvTranspose2d`` (PyTorch argument names).

Thin ``Module`` wrappers around ``F.conv2d`` / ``F.conv_transpose2d``: they own
the weight (Glorot uniform, as the DeepFill release initialises its kernels)
and the bias (zeros). ``padding="same"`` is TensorFlow's SAME rule.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Conv2d", "ConvTranspose2d"]


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class Conv2d(Module):
    """``y = conv2d(x, weight, bias)``; weight (out, in, kh, kw), bias (out,).

    Shapes: (N, in_channels, H, W) -> (N, out_channels, OH, OW); see
    ``nnlite.conv_geometry`` for OH/OW and the SAME rule.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2d: channel counts must be >= 1, got {in_channels} -> "
                             f"{out_channels}")
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = (kh, kw), stride
        self.padding, self.dilation = padding, dilation
        rng = np.random.default_rng() if rng is None else rng
        self.weight = Parameter(np.empty((out_channels, in_channels, kh, kw), dtype=dtype))
        init.xavier_uniform_(self.weight, rng=rng)
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                        dilation=self.dilation)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation}")


class ConvTranspose2d(Module):
    """``y = conv_transpose2d(x, weight, bias)``; weight (in, out, kh, kw), bias (out,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.output_padding, self.dilation = output_padding, dilation
        rng = np.random.default_rng() if rng is None else rng
        self.weight = Parameter(np.empty((in_channels, out_channels, kh, kw), dtype=dtype))
        init.xavier_uniform_(self.weight, rng=rng)
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride,
                                  padding=self.padding, output_padding=self.output_padding,
                                  dilation=self.dilation)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, "
                f"output_padding={self.output_padding}, dilation={self.dilation}")
