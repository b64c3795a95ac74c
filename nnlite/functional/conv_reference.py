"""Slow, obvious references for the convolution family: plain loops over the formulas.

Nothing here is fast and nothing here is differentiable; each function is the
definition that the fused op next to it (``conv.py``, ``patches.py``,
``resize.py``) is tested against. NumPy arrays in, NumPy arrays out, float64
arithmetic. Padding is explicit ``(PT, PB, PL, PR)`` (no "same" here: the tests
work the SAME numbers out separately from the spec).

Notation as in ``nnlite.conv_geometry``: a kernel tap (i, j) of output pixel (oh, ow) reads
padded-input row ``oh*SH + i*DH``, i.e. input row ``r = oh*SH - PT + i*DH``
(zero when ``r`` is outside ``[0, H)``), and the same for columns.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["conv2d_reference", "conv_transpose2d_reference", "conv2d_grad_weight_reference",
           "unfold_reference",
           "fold_reference", "nearest_index_reference", "interpolate_nearest_reference"]


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pads(padding):
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(padding)
    ph, pw = _pair(padding)
    return ph, ph, pw, pw


def _count_positions(size, before, after, kernel, stride, dilation):
    """How many window positions fit: count oh with oh*S + (K-1)*D <= size + before + after - 1."""
    count = 0
    while count * stride + (kernel - 1) * dilation <= size + before + after - 1:
        count += 1
    return count


def conv2d_reference(x, w, b=None, stride=1, padding=0, dilation=1):
    """y[n, o, oh, ow] = b[o] + sum_{c,i,j} x[n, c, oh*SH-PT+i*DH, ow*SW-PL+j*DW] * w[o, c, i, j].

    x (N, C, H, W), w (O, C, KH, KW) -> (N, O, OH, OW).
    """
    (SH, SW), (DH, DW) = _pair(stride), _pair(dilation)
    PT, PB, PL, PR = _pads(padding)
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    OH = _count_positions(H, PT, PB, KH, SH, DH)
    OW = _count_positions(W, PL, PR, KW, SW, DW)
    y = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            for oh in range(OH):
                for ow in range(OW):
                    total = 0.0 if b is None else float(b[o])
                    for i in range(KH):
                        for j in range(KW):
                            r, s = oh * SH - PT + i * DH, ow * SW - PL + j * DW
                            if 0 <= r < H and 0 <= s < W:
                                total += float(np.dot(x[n, :, r, s], w[o, :, i, j]))
                    y[n, o, oh, ow] = total
    return y


def conv_transpose2d_reference(y, w, b=None, stride=1, padding=0, output_padding=0,
                               dilation=1):
    """Scatter every input pixel through the kernel: the adjoint of ``conv2d_reference``.

    out[n, co, h*SH-PT+i*DH, v*SW-PL+j*DW] += y[n, ci, h, v] * w[ci, co, i, j];
    y (N, C_in, H, W), w (C_in, C_out, KH, KW) ->
    (N, C_out, (H-1)*SH - PT - PB + DH*(KH-1) + 1 + OPH, ...).
    """
    (SH, SW), (DH, DW) = _pair(stride), _pair(dilation)
    OPH, OPW = _pair(output_padding)
    PT, PB, PL, PR = _pads(padding)
    N, CI, H, W = y.shape
    _, CO, KH, KW = w.shape
    OH = (H - 1) * SH - PT - PB + DH * (KH - 1) + 1 + OPH
    OW = (W - 1) * SW - PL - PR + DW * (KW - 1) + 1 + OPW
    out = np.zeros((N, CO, OH, OW))
    for n in range(N):
        for h in range(H):
            for v in range(W):
                for i in range(KH):
                    for j in range(KW):
                        r, s = h * SH - PT + i * DH, v * SW - PL + j * DW
                        if 0 <= r < OH and 0 <= s < OW:
                            out[n, :, r, s] += y[n, :, h, v] @ w[:, :, i, j]
    if b is not None:
        out += np.asarray(b).reshape(1, -1, 1, 1)
    return out


def conv2d_grad_weight_reference(x, gy, kernel_size, stride=1, padding=0, dilation=1):
    """G[o, c, i, j] = sum_{n,oh,ow} gy[n, o, oh, ow] * x[n, c, oh*SH-PT+i*DH, ow*SW-PL+j*DW].

    The gradient of ``conv2d_reference`` w.r.t. its weight: x (N, C, H, W), gy (N, O, OH, OW)
    -> (O, C, KH, KW).
    """
    (KH, KW), (SH, SW), (DH, DW) = _pair(kernel_size), _pair(stride), _pair(dilation)
    PT, PB, PL, PR = _pads(padding)
    N, C, H, W = x.shape
    _, O, OH, OW = gy.shape
    g = np.zeros((O, C, KH, KW))
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for i in range(KH):
                    for j in range(KW):
                        r, s = oh * SH - PT + i * DH, ow * SW - PL + j * DW
                        if 0 <= r < H and 0 <= s < W:
                            g[:, :, i, j] += np.outer(gy[n, :, oh, ow], x[n, :, r, s])
    return g


def unfold_reference(x, kernel_size, dilation=1, padding=0, stride=1):
    """cols[n, c*KH*KW + i*KW + j, oh*OW + ow] = x[n, c, oh*SH-PT+i*DH, ow*SW-PL+j*DW] (or 0)."""
    (KH, KW), (SH, SW), (DH, DW) = _pair(kernel_size), _pair(stride), _pair(dilation)
    PT, PB, PL, PR = _pads(padding)
    N, C, H, W = x.shape
    OH = _count_positions(H, PT, PB, KH, SH, DH)
    OW = _count_positions(W, PL, PR, KW, SW, DW)
    cols = np.zeros((N, C * KH * KW, OH * OW))
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                for oh in range(OH):
                    for ow in range(OW):
                        r, s = oh * SH - PT + i * DH, ow * SW - PL + j * DW
                        if 0 <= r < H and 0 <= s < W:
                            cols[:, c * KH * KW + i * KW + j, oh * OW + ow] = x[:, c, r, s]
    return cols


def fold_reference(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The adjoint of ``unfold_reference``: add every column entry back onto its pixel."""
    (H, W), (KH, KW) = _pair(output_size), _pair(kernel_size)
    (SH, SW), (DH, DW) = _pair(stride), _pair(dilation)
    PT, PB, PL, PR = _pads(padding)
    N = cols.shape[0]
    C = cols.shape[1] // (KH * KW)
    OH = _count_positions(H, PT, PB, KH, SH, DH)
    OW = _count_positions(W, PL, PR, KW, SW, DW)
    x = np.zeros((N, C, H, W))
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                for oh in range(OH):
                    for ow in range(OW):
                        r, s = oh * SH - PT + i * DH, ow * SW - PL + j * DW
                        if 0 <= r < H and 0 <= s < W:
                            x[:, c, r, s] += cols[:, c * KH * KW + i * KW + j, oh * OW + ow]
    return x


def _round_half_away_from_zero(value):
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def nearest_index_reference(in_size, out_size, align_corners):
    """Source index of each output position, one Python scalar at a time (spec §1).

    align_corners=True:  src = min(roundf(f32(y) * (f32(in-1) / f32(out-1))), in-1)
    align_corners=False: src = min(floor(f32(y) * (f32(in) / f32(out))), in-1)
    Every product and quotient is rounded to float32, as TensorFlow 1 computes it.
    """
    f32 = np.float32
    result = []
    for y in range(out_size):
        if align_corners and out_size > 1:
            scale = f32(f32(in_size - 1) / f32(out_size - 1))
            source = _round_half_away_from_zero(float(f32(f32(y) * scale)))
        elif align_corners:
            source = 0
        else:
            scale = f32(f32(in_size) / f32(out_size))
            source = math.floor(float(f32(f32(y) * scale)))
        result.append(min(source, in_size - 1))
    return result


def interpolate_nearest_reference(x, out_h, out_w, align_corners):
    """out[n, c, y, v] = x[n, c, rows[y], cols[v]] by loops."""
    rows = nearest_index_reference(x.shape[2], out_h, align_corners)
    cols = nearest_index_reference(x.shape[3], out_w, align_corners)
    out = np.zeros(x.shape[:2] + (out_h, out_w), dtype=x.dtype)
    for y in range(out_h):
        for v in range(out_w):
            out[:, :, y, v] = x[:, :, rows[y], cols[v]]
    return out
