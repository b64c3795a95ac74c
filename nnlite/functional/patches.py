"""unfold / fold: patch extraction (im2col) and its adjoint (col2im) as differentiable ops.

PyTorch's names and layout: ``unfold(x)`` is (N, C*KH*KW, L) with L = OH*OW,
row index ``c*KH*KW + i*KW + j``; ``fold`` sums such columns back into an image.
Each is the other's backward. Padding accepts everything conv2d accepts,
including "same" (TensorFlow SAME), which contextual attention uses.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from ..conv_geometry import ConvGeometry, conv_geometry, pair
from ..tensor import as_tensor
from ..kernels.im2col import col2im, im2col

__all__ = ["unfold", "fold"]


class Unfold(Function):
    """x (N, C, H, W) -> cols (N, C*KH*KW, OH*OW); backward: ``Fold``."""

    def __init__(self, g: ConvGeometry):
        self.g = g

    def forward(self, x):
        g, (n, c) = self.g, x.shape[:2]
        xp = get_array_module(x)
        cols = xp.empty((n, c, g.KH, g.KW, g.OH, g.OW), dtype=x.dtype)
        im2col(x, g, out=cols.transpose(1, 2, 3, 0, 4, 5))    # written in place, (N, C, ...) order
        return cols.reshape(n, c * g.KH * g.KW, g.OH * g.OW)

    def backward(self, gcols):
        return Fold(self.g)(gcols)


class Fold(Function):
    """cols (N, C*KH*KW, OH*OW) -> x (N, C, H, W), adding overlaps; backward: ``Unfold``."""

    def __init__(self, g: ConvGeometry):
        self.g = g

    def forward(self, cols):
        g = self.g
        n = cols.shape[0]
        c = cols.shape[1] // (g.KH * g.KW)
        cols = cols.reshape(n, c, g.KH, g.KW, g.OH, g.OW).transpose(1, 2, 3, 0, 4, 5)
        return col2im(cols, g)

    def backward(self, gx):
        return Unfold(self.g)(gx)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Patches of (N, C, H, W) as columns (N, C*KH*KW, L)."""
    x = as_tensor(input)
    kh, kw = pair(kernel_size, "kernel_size")
    g = conv_geometry(x.shape, (1, x.shape[1] if x.ndim == 4 else 1, kh, kw), stride, padding,
                      dilation, "unfold")
    return Unfold(g)(x)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns (N, C*KH*KW, L) back into (N, C, H, W) with (H, W) = ``output_size``."""
    cols = as_tensor(input)
    kh, kw = pair(kernel_size, "kernel_size")
    height, width = pair(output_size, "output_size")
    if cols.ndim != 3 or cols.shape[1] % (kh * kw):
        raise ValueError(f"fold: input must be (N, C*{kh}*{kw}, L), got {cols.shape}")
    c = cols.shape[1] // (kh * kw)
    g = conv_geometry((cols.shape[0], c, height, width), (1, c, kh, kw), stride, padding,
                      dilation, "fold")
    if cols.shape[2] != g.OH * g.OW:
        raise ValueError(f"fold: {cols.shape[2]} columns but output_size {output_size} with "
                         f"these arguments gives L = {g.OH}*{g.OW} = {g.OH * g.OW}")
    return Fold(g)(cols)
