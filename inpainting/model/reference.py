"""Contextual attention as the paper describes it, written as plain loops (NumPy only).

What this file is for: reading and testing. It is the test oracle of the vectorised
layer (``inpainting.attention.contextual_attention``) and of its staged form
(``inpainting.attention_steps``), and it is the version of the layer a learner can read
next to the paper: every step of spec §3 is an explicit loop over foreground positions
``p`` and background positions ``q``, with the release's quirks written where they
happen (background-only normalisation with a 1e-4 floor, propagation on flattened
indices that wraps across row and column ends, logit 0 for invalid patches, the first
maximum for the offsets, the division by 4). It shares no code with the layer, so the
two can only agree by computing the same thing. It is meant for tiny inputs (a 16x16
feature map takes about a second) and is never used by the model.

    from inpainting.model.reference import contextual_attention_reference
    y, offsets = contextual_attention_reference(f, b, mask, rate=2)

``f``, ``b``: float arrays (N, C, H, W); ``mask``: (1 or N, 1, H, W) or None.
Returns ``y`` (N, C, H, W) float64 and ``offsets`` (N, 2, H/rate, W/rate) int64.
"""
from __future__ import annotations

import math

import numpy as np


def nearest_source_index(out_index, in_size, out_size):
    """Spec §1: src(y) = min(roundf(float32(y) * float32(in-1)/float32(out-1)), in-1).

    All arithmetic in float32, rounding half away from zero (TF1 align_corners=True);
    with out_size == 1 TF's scale is in/out, and src(0) = 0 either way.
    """
    if out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    x = float(np.float32(out_index) * scale)       # the float32 product, exactly
    rounded = math.floor(x) + (1 if x - math.floor(x) >= 0.5 else 0)   # x >= 0
    return min(rounded, in_size - 1)


def resize_nearest(image, out_h, out_w):
    """(C, H, W) -> (C, out_h, out_w) with the align-corners rule above, pixel by pixel."""
    channels, in_h, in_w = image.shape
    out = np.zeros((channels, out_h, out_w), dtype=np.float64)
    for i in range(out_h):
        for j in range(out_w):
            out[:, i, j] = image[:, nearest_source_index(i, in_h, out_h),
                                 nearest_source_index(j, in_w, out_w)]
    return out


def same_padding(size, kernel, stride):
    """TF SAME padding (before, after) of spec §1 for one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def patch(image, top, left, kernel):
    """The (C, kernel, kernel) window with top-left corner (top, left); zeros outside."""
    channels, height, width = image.shape
    out = np.zeros((channels, kernel, kernel), dtype=np.float64)
    for u in range(kernel):
        for v in range(kernel):
            if 0 <= top + u < height and 0 <= left + v < width:
                out[:, u, v] = image[:, top + u, left + v]
    return out


def diagonal_sum(scores, order, fuse_k):
    """One propagation pass (spec §3 step 6): with both axes flattened in ``order`` ('C' row-major,
    'F' column-major), S'[p, q] = sum_u S[p + u - a, q + u - a], u = 0..fuse_k-1, a the SAME
    padding before; indices outside [0, L) contribute zero, so rows wrap into the next one."""
    (h, w), length = order[1], scores.shape[0]
    before = (fuse_k - 1) // 2

    def to_flat(p):          # row-major position -> flat index in this pass's order
        y, x = divmod(p, w)
        return p if order[0] == "C" else x * h + y

    def from_flat(k):        # flat index in this pass's order -> row-major position
        if order[0] == "C":
            return k
        x, y = divmod(k, h)
        return y * w + x

    out = np.zeros_like(scores)
    for p in range(length):
        for q in range(length):
            total = 0.0
            for u in range(fuse_k):
                kp, kq = to_flat(p) + u - before, to_flat(q) + u - before
                if 0 <= kp < length and 0 <= kq < length:
                    total += scores[from_flat(kp), from_flat(kq)]
            out[p, q] = total
    return out


def contextual_attention_reference(f, b, mask=None, ksize=3, stride=1, rate=2, fuse_k=3,
                                   softmax_scale=10.0, fuse=True):
    """Spec §3 steps 1-9, one sample at a time (see the module docstring)."""
    if stride != 1:
        raise ValueError(f"contextual_attention_reference: only stride 1 is defined (the "
                         f"release's value), got stride={stride}")
    f, b = np.asarray(f, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if f.ndim != 4 or f.shape != b.shape:
        raise ValueError(f"contextual_attention_reference: f and b must be (N, C, H, W) arrays "
                         f"of one shape, got {f.shape} and {b.shape}")
    n_batch, channels, height, width = f.shape
    h, w = height // rate, width // rate
    length = h * w
    raw_kernel = 2 * rate
    raw_top, _ = same_padding(height, raw_kernel, rate)
    raw_left, _ = same_padding(width, raw_kernel, rate)
    pad_top, _ = same_padding(h, ksize, 1)
    pad_left, _ = same_padding(w, ksize, 1)
    ys = np.zeros((n_batch, channels, height, width))
    offsets = np.zeros((n_batch, 2, h, w), dtype=np.int64)
    for n in range(n_batch):
        # Step 2: downsample f, b and the mask (align-corners nearest).
        fd = resize_nearest(f[n], h, w)
        bd = resize_nearest(b[n], h, w)
        if mask is None:
            md = np.zeros((1, h, w))
        else:
            md = resize_nearest(np.asarray(mask, dtype=np.float64)[n if len(mask) > 1 else 0],
                                h, w)

        # Steps 3-4: matching patches w_q and valid-patch indicator mm[q].
        weights, valid = [], np.zeros(length)
        for q in range(length):
            qi, qj = divmod(q, w)
            weights.append(patch(bd, qi - pad_top, qj - pad_left, ksize))
            valid[q] = 1.0 if np.mean(patch(md, qi - pad_top, qj - pad_left, ksize)) == 0 else 0.0

        # Step 5: s[p, q] = <f_p, w_q / max(||w_q||, 1e-4)>.
        norms = [max(math.sqrt(np.sum(wq ** 2)), 1e-4) for wq in weights]
        scores = np.zeros((length, length))
        for p in range(length):
            pi, pj = divmod(p, w)
            fp = patch(fd, pi - pad_top, pj - pad_left, ksize)
            for q in range(length):
                scores[p, q] = np.sum(fp * weights[q]) / norms[q]

        # Step 6: propagation, row-major pass then column-major pass.
        if fuse:
            scores = diagonal_sum(scores, ("C", (h, w)), fuse_k)
            scores = diagonal_sum(scores, ("F", (h, w)), fuse_k)

        # Step 7: logit 0 for invalid patches, softmax, then their mass zeroed.
        attention = np.zeros((length, length))
        for p in range(length):
            logits = [softmax_scale * scores[p, q] * valid[q] for q in range(length)]
            top = max(logits)
            exps = [math.exp(v - top) for v in logits]
            total = sum(exps)
            for q in range(length):
                attention[p, q] = exps[q] / total * valid[q]

        # Step 8: offsets = position of the first maximum minus the position of p.
        for p in range(length):
            pi, pj = divmod(p, w)
            best = 0
            for q in range(length):
                if attention[p, q] > attention[p, best]:
                    best = q
            offsets[n, 0, pi, pj] = best // w - pi
            offsets[n, 1, pi, pj] = best % w - pj

        # Step 9: paste the raw 2r x 2r background patches, weighted by A, then / 4.
        raws = [patch(b[n], (q // w) * rate - raw_top, (q % w) * rate - raw_left, raw_kernel)
                for q in range(length)]
        for p in range(length):
            pi, pj = divmod(p, w)
            for q in range(length):
                if attention[p, q] == 0.0:
                    continue
                raw = raws[q]
                for u in range(raw_kernel):
                    for v in range(raw_kernel):
                        yy, xx = pi * rate - raw_top + u, pj * rate - raw_left + v
                        if 0 <= yy < height and 0 <= xx < width:
                            ys[n, :, yy, xx] += attention[p, q] * raw[:, u, v]
        ys[n] /= 4.0
    return ys, offsets
