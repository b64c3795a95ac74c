"""conv2d and conv_transpose2d: a family of three ops closed under differentiation.

With ``<a, b>`` the sum of elementwise products, the three linear maps are

* ``Conv2d``:          y  = conv(x, W)            (N, C, H, W) -> (N, O, OH, OW)
* ``ConvTranspose2d``: x' = conv^T(y, W)          the adjoint in x:  <conv(x, W), y> = <x, conv^T(y, W)>
* ``Conv2dGradWeight``: G = gradW(x, y)           the adjoint in W:  <conv(x, W), y> = <W, gradW(x, y)>

and each one's backward is written with the other two, always consuming the
incoming gradient ``g``:

| op | d/d(first input) | d/d(second input) |
|---|---|---|
| conv(x, W)     | conv^T(g, W) | gradW(x, g) |
| conv^T(y, W)   | conv(g, W)   | gradW(g, y) |
| gradW(x, y)    | conv^T(y, g) | conv(x, g)  |

so derivatives of any order come out right (the WGAN-GP penalty needs the
second). All three share one ``ConvGeometry`` (shapes, stride, padding,
dilation: see ``nnlite/conv_geometry.py``); the array work (im2col + one GEMM)
is in ``nnlite/kernels/conv_arrays.py``.
Weight layouts are PyTorch's: conv2d (O, C, KH, KW); conv_transpose2d
(C_in, C_out, KH, KW) — the very same array as the conv it is the adjoint of.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import as_tensor
from ..conv_geometry import (ConvGeometry, conv_geometry, parse_padding, pair, split_output_padding,
                             transposed_input_size)
from ..kernels.conv_arrays import conv2d_array, conv2d_grad_weight_array, conv_transpose2d_array
from .basic import sum
from .shape import pad, reshape

__all__ = ["conv2d", "conv_transpose2d", "conv2d_grad_weight", "Conv2d", "ConvTranspose2d",
           "Conv2dGradWeight"]


def _add_bias_in_place(y, bias):
    """y[:, k] += b[k] on the op's own fresh output (no extra pass, no new array)."""
    if bias:
        y += bias[0].reshape(1, -1, 1, 1)
    return y


def _bias_grad(function, g):
    """(d/db,) when the op was called with a bias: sum of g over N, H, W; else ()."""
    if len(function.inputs) < 3:
        return ()
    return (sum(g, axis=(0, 2, 3)) if function.needs_input_grad[2] else None,)


class Conv2d(Function):
    """y = conv(x, W) (+ b); backward: conv^T(g, W), gradW(x, g) (and sum of g for b)."""

    def __init__(self, g: ConvGeometry):
        self.g = g

    def forward(self, x, w, *bias):
        return _add_bias_in_place(conv2d_array(x, w, self.g), bias)

    def backward(self, gy):
        x, w = self.inputs[:2]
        gx = ConvTranspose2d(self.g)(gy, w) if self.needs_input_grad[0] else None
        gw = Conv2dGradWeight(self.g)(x, gy) if self.needs_input_grad[1] else None
        return (gx, gw) + _bias_grad(self, gy)


class ConvTranspose2d(Function):
    """x' = conv^T(y, W) (+ b), the adjoint of ``Conv2d``; backward: conv(g, W), gradW(g, y)."""

    def __init__(self, g: ConvGeometry):
        self.g = g

    def forward(self, y, w, *bias):
        return _add_bias_in_place(conv_transpose2d_array(y, w, self.g), bias)

    def backward(self, gx):
        y, w = self.inputs[:2]
        gy = Conv2d(self.g)(gx, w) if self.needs_input_grad[0] else None
        gw = Conv2dGradWeight(self.g)(gx, y) if self.needs_input_grad[1] else None
        return (gy, gw) + _bias_grad(self, gx)


class Conv2dGradWeight(Function):
    """G = gradW(x, y): (O, C, KH, KW); backward: conv^T(y, g) and conv(x, g)."""

    def __init__(self, g: ConvGeometry):
        self.g = g

    def forward(self, x, y):
        return conv2d_grad_weight_array(x, y, self.g)

    def backward(self, gg):
        x, y = self.inputs
        gx = ConvTranspose2d(self.g)(y, gg) if self.needs_input_grad[0] else None
        gy = Conv2d(self.g)(x, gg) if self.needs_input_grad[1] else None
        return gx, gy


def _operands(op, x, w, bias, channels):
    """(x, w) or (x, w, b), checked: one dtype, one backend, bias of shape (channels,)."""
    if x.dtype != w.dtype:
        raise TypeError(f"{op}: input is {x.dtype} but weight is {w.dtype}; cast one of them")
    if bias is None:
        get_array_module(x.data, w.data, op=op)
        return x, w
    bias = as_tensor(bias)
    if bias.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},), got {bias.shape}")
    if bias.dtype != x.dtype:
        raise TypeError(f"{op}: bias is {bias.dtype} but input is {x.dtype}; cast one of them")
    get_array_module(x.data, w.data, bias.data, op=op)
    return x, w, bias


def conv2d(input, weight, bias=None, *, stride=1, padding=0, dilation=1):
    """2-D convolution (cross-correlation, as PyTorch and TensorFlow), NCHW / OIHW.

    Args:
        input: (N, C, H, W). weight: (O, C, KH, KW). bias: (O,) or None.
        stride, dilation: int or (h, w).
        padding: int, (PH, PW), (PT, PB, PL, PR), or "same" (TensorFlow SAME for any
            stride and dilation: the odd pixel of padding goes to the bottom/right).

    Returns (N, O, OH, OW) with OH = (H + PT + PB - DH*(KH-1) - 1) // SH + 1.
    """
    x, w = as_tensor(input), as_tensor(weight)
    g = conv_geometry(x.shape, w.shape, stride, padding, dilation, "conv2d")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels but weight {w.shape} "
                         f"expects {w.shape[1]} (weight is (O, C, KH, KW))")
    return Conv2d(g)(*_operands("conv2d", x, w, bias, w.shape[0]))


def conv_transpose2d(input, weight, bias=None, *, stride=1, padding=0, output_padding=0,
                     dilation=1):
    """Transposed convolution: the adjoint of ``conv2d`` with the same weight and arguments.

    Args:
        input: (N, C_in, H, W). weight: (C_in, C_out, KH, KW) (PyTorch layout). bias: (C_out,).
        padding: int, (PH, PW) or (PT, PB, PL, PR) — the conv2d padding it undoes.
        output_padding: extra rows/columns at the bottom/right, each smaller than the stride
            or the dilation (as PyTorch); rows beyond every tap are zeros (plus the bias).

    Returns (N, C_out, OH, OW) with OH = (H - 1)*SH - PT - PB + DH*(KH-1) + 1 + output_padding.
    """
    y, w = as_tensor(input), as_tensor(weight)
    if y.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv_transpose2d: input (N, C_in, H, W) and weight "
                         f"(C_in, C_out, KH, KW) must be 4-d, got {y.shape} and {w.shape}")
    if w.shape[0] != y.shape[1]:
        raise ValueError(f"conv_transpose2d: input has {y.shape[1]} channels but weight "
                         f"{w.shape} expects {w.shape[0]} (weight is (C_in, C_out, KH, KW))")
    if isinstance(padding, str):
        raise ValueError("conv_transpose2d: padding='same' is ambiguous for a transposed conv; "
                         "pass the explicit (top, bottom, left, right) of the conv it undoes")
    operands = _operands("conv_transpose2d", y, w, bias, w.shape[1])
    KH, KW = w.shape[2:]
    SH, SW = pair(stride, "stride")
    DH, DW = pair(dilation, "dilation")
    OPH, OPW = pair(output_padding, "output_padding", minimum=0)
    PT, PB, PL, PR = parse_padding(padding, 1, 1, KH, KW, SH, SW, DH, DW)
    H = transposed_input_size(y.shape[2], KH, SH, PT, PB, DH, OPH, "H")
    W = transposed_input_size(y.shape[3], KW, SW, PL, PR, DW, OPW, "W")
    if OPH < SH and OPW < SW:
        g = ConvGeometry(KH, KW, SH, SW, DH, DW, PT, PB, PL, PR, H, W,
                         y.shape[2], y.shape[3])
        return ConvTranspose2d(g)(*operands)
    # output_padding >= stride (allowed below the dilation): an ordinary transposed conv with
    # the bottom/right cut moved, then the rows/columns no tap reaches as zeros, then the bias
    PB, OPH, ZH = split_output_padding(OPH, SH, PB)
    PR, OPW, ZW = split_output_padding(OPW, SW, PR)
    g = ConvGeometry(KH, KW, SH, SW, DH, DW, PT, PB, PL, PR, H - ZH, W - ZW,
                     y.shape[2], y.shape[3])
    out = ConvTranspose2d(g)(*operands[:2])
    if ZH or ZW:
        out = pad(out, ((0, 0), (0, 0), (0, ZH), (0, ZW)))
    if bias is not None:
        out = out + reshape(operands[2], (1, -1, 1, 1))
    return out


def conv2d_grad_weight(input, grad_output, weight_shape, *, stride=1, padding=0, dilation=1):
    """The gradient of ``conv2d`` w.r.t. its weight, as a differentiable op of its own."""
    x, gy = as_tensor(input), as_tensor(grad_output)
    if x.dtype != gy.dtype:
        raise TypeError(f"conv2d_grad_weight: input is {x.dtype} but grad_output is {gy.dtype}")
    get_array_module(x.data, gy.data, op="conv2d_grad_weight")
    g = conv_geometry(x.shape, weight_shape, stride, padding, dilation, "conv2d_grad_weight")
    if gy.shape != (x.shape[0], weight_shape[0], g.OH, g.OW):
        raise ValueError(f"conv2d_grad_weight: grad_output must be "
                         f"{(x.shape[0], weight_shape[0], g.OH, g.OW)}, got {gy.shape}")
    return Conv2dGradWeight(g)(x, gy)

