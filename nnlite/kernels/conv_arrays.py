"""The three convolution maps on raw arrays, each as im2col/col2im plus GEMMs.

``conv.py`` wraps these in autograd Functions; this file only computes. With the
notation of ``nnlite.conv_geometry`` and ``<a, b>`` the sum of elementwise products:

* ``conv2d_array(x, w, g)``          y  = conv(x, W):      (N, C, H, W) -> (N, O, OH, OW)
* ``conv_transpose2d_array(y, w, g)`` x' = conv^T(y, W):    (N, O, OH, OW) -> (N, C, H, W)
* ``conv2d_grad_weight_array(x, y, g)`` G = gradW(x, y):    -> (O, C, KH, KW)

with ``w`` always the conv's (O, C, KH, KW) array (conv_transpose2d's (C_in, C_out, KH, KW)
weight is that very array). Every map is one of two strategies (``im2col.py``):

* ``"wide"``: flat shifted views of the padded input. conv: KH*KW row copies then
  ONE GEMM (O, C*KH*KW) @ (C*KH*KW, L) (in blocks of L when the columns would exceed
  ``WIDE_BLOCK_BYTES``: large images); gradW: the same columns, one GEMM.
  conv^T: for stride 1 it is itself a conv — of y padded by (EK-1-PT, EK-1-PB, ...)
  with the kernel flipped and C, O swapped — while O <= 1.5 C, else one GEMM and
  KH*KW shifted row adds.
* ``"strided"``: classic im2col of exactly N*OH*OW columns (no wasted positions,
  slower strided copies); the choice when the wide grid wastes too much (big
  dilation on small images, deep stride-2 layers), and the GPU path.

Which layout a call uses, the flipped-conv choice and the wide block bound come from
``conv_strategy.py`` (``choose_strategy``, ``prefers_flipped_conv``, ``wide_block_limit``;
forced there by ``use_strategy`` and ``wide_block_bytes``, re-exported here for the tests
and benchmarks that import them from this module); this file only computes in the layout
it is given. GEMM operand orientations are chosen for OpenBLAS: the weight gradient is
computed as (C*KH*KW, M) @ (M, O) — the (O, M) @ (M, C*KH*KW) orientation is 5x slower.
(One GEMM per tap on the shifted views would avoid the columns for gradW, but such
thin GEMMs with a huge inner dimension measured no faster on 2 cores and collapse
when other processes load the machine.)
"""
from __future__ import annotations

from ..backend import get_array_module, is_device_module
from ..conv_geometry import ConvGeometry
from .conv_strategy import (FLIPPED_MAX_RATIO, WIDE_BLOCK_BYTES, WIDE_WASTE_LIMIT, choose_strategy,
                            prefers_flipped_conv, use_strategy, wide_block_bytes, wide_block_limit)
from .im2col import (col2im, col2im_wide, from_wide, im2col, im2col_wide, output_to_wide,
                     to_wide, wide_plan)
from .workspace import scratch

__all__ = ["conv2d_array", "conv_transpose2d_array", "conv2d_grad_weight_array",
           # the strategy, defined in conv_strategy.py and importable from here too
           "choose_strategy", "use_strategy", "wide_block_bytes", "WIDE_WASTE_LIMIT",
           "WIDE_BLOCK_BYTES", "FLIPPED_MAX_RATIO"]


def _cupy_kernels(xp):
    if not is_device_module(xp):
        return None
    from . import im2col_cupy
    return im2col_cupy


def _im2col_strided(x, g, xp):
    """Strided columns as a (C*KH*KW, N*OH*OW) matrix, in the pooled workspace."""
    n, c = x.shape[:2]
    kernels = _cupy_kernels(xp)
    if kernels is not None:
        return kernels.im2col_gpu(x, g).reshape(c * g.KH * g.KW, -1)
    cols = scratch(xp, "cols", (c, g.KH, g.KW, n, g.OH, g.OW), x.dtype)
    return im2col(x, g, out=cols).reshape(c * g.KH * g.KW, -1)


def _channel_major(y, xp):
    """(N, O, OH, OW) -> (O, N*OH*OW) in a scratch buffer: the GEMMs' layout of an output."""
    n, o = y.shape[:2]
    out = scratch(xp, "channel_major", (o, n) + y.shape[2:], y.dtype)
    out[...] = y.transpose(1, 0, 2, 3)
    return out.reshape(o, -1)


def _col2im_strided(cols, g, n, xp):
    c = cols.shape[0] // (g.KH * g.KW)
    kernels = _cupy_kernels(xp)
    if kernels is not None:
        return kernels.col2im_gpu(cols.reshape(c, g.KH, g.KW, n, g.OH, g.OW), g)
    return col2im(cols.reshape(c, g.KH, g.KW, n, g.OH, g.OW), g)


def conv2d_array(x, w, g: ConvGeometry):
    """y[n, o, oh, ow] = sum_{c,i,j} w[o, c, i, j] * xpad[n, c, oh*SH + i*DH, ow*SW + j*DW]."""
    xp = get_array_module(x, w)
    n, o = x.shape[0], w.shape[0]
    w2d = w.reshape(o, -1)
    if choose_strategy(g, n, xp) == "wide":
        plan = wide_plan(g, n)
        xw = to_wide(x, g, plan)
        yw = scratch(xp, "wide_output", (o, plan.L), x.dtype)
        k = w2d.shape[1]
        block = max(1, wide_block_limit() // (k * x.dtype.itemsize))
        if block >= plan.L:                                # one GEMM straight into yw
            xp.matmul(w2d, im2col_wide(xw, plan).reshape(k, plan.L), out=yw)
        else:                                              # bounded columns, a block at a time
            for start in range(0, plan.L, block):
                stop = min(start + block, plan.L)
                cols = im2col_wide(xw, plan, start=start, stop=stop)
                block_out = scratch(xp, "wide_block_output", (o, stop - start), x.dtype)
                xp.matmul(w2d, cols.reshape(k, stop - start), out=block_out)
                yw[:, start:stop] = block_out
        return from_wide(yw, g, plan)
    cols = _im2col_strided(x, g, xp)
    y = scratch(xp, "wide_output", (o, cols.shape[1]), x.dtype)      # (O, N*OH*OW)
    xp.matmul(w2d, cols, out=y)
    return y.reshape(o, n, g.OH, g.OW).transpose(1, 0, 2, 3).copy()


def conv2d_grad_weight_array(x, y, g: ConvGeometry):
    """G[o, c, i, j] = sum_{n,oh,ow} y[n, o, oh, ow] * xpad[n, c, oh*SH + i*DH, ow*SW + j*DW]."""
    xp = get_array_module(x, y)
    n, c = x.shape[:2]
    o = y.shape[1]
    if choose_strategy(g, n, xp) == "wide":
        plan = wide_plan(g, n)
        xw = to_wide(x, g, plan)
        yw_t = output_to_wide(y, g, plan).T                           # (L, O)
        cols = im2col_wide(xw, plan).reshape(c * g.KH * g.KW, plan.L)
        return xp.ascontiguousarray((cols @ yw_t).T).reshape(o, c, g.KH, g.KW)
    g_t = _im2col_strided(x, g, xp) @ _channel_major(y, xp).T          # (C*KH*KW, O)
    return xp.ascontiguousarray(g_t.T).reshape(o, c, g.KH, g.KW)


def _flipped_conv_geometry(g: ConvGeometry):
    """For stride 1: the conv of y whose output is conv^T(y, W), or None if it needs cropping.

    conv^T with stride 1 correlates y, padded by EK-1-P on each side, with the
    kernel flipped: output size OH + (EKH-1-PT) + (EKH-1-PB) - EKH + 1 = H.
    """
    ekh, ekw = g.DH * (g.KH - 1) + 1, g.DW * (g.KW - 1) + 1
    pads = (ekh - 1 - g.PT, ekh - 1 - g.PB, ekw - 1 - g.PL, ekw - 1 - g.PR)
    if g.SH != 1 or g.SW != 1 or min(pads) < 0:
        return None
    return ConvGeometry(g.KH, g.KW, 1, 1, g.DH, g.DW, *pads, g.OH, g.OW, g.H, g.W)


def conv_transpose2d_array(y, w, g: ConvGeometry):
    """x'[n, c, r, s] = sum over taps reading (r, s) of w[o, c, i, j] * y[n, o, oh, ow] (the adjoint)."""
    xp = get_array_module(y, w)
    n, o = y.shape[:2]
    c = w.shape[1]
    if choose_strategy(g, n, xp) == "wide":
        flipped = _flipped_conv_geometry(g)
        if flipped is not None and prefers_flipped_conv(o, c):
            w_flip = xp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            return conv2d_array(y, w_flip, flipped)
        plan = wide_plan(g, n)
        yw = output_to_wide(y, g, plan)
        cols = scratch(xp, "cols", (c * g.KH * g.KW, plan.L), y.dtype)
        xp.matmul(w.reshape(o, -1).T, yw, out=cols)
        return col2im_wide(cols.reshape(c, g.KH * g.KW, plan.L), g, plan)
    y2d = _channel_major(y, xp)                                        # (O, N*OH*OW)
    cols = scratch(xp, "cols", (c * g.KH * g.KW, y2d.shape[1]), y.dtype)
    xp.matmul(w.reshape(o, -1).T, y2d, out=cols)
    return _col2im_strided(cols, g, n, xp)
