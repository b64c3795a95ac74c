"""Contextual attention step by step (spec §3), for teaching and for the fused layer.

The paper's layer, split into the stages a notebook can show one at a time. Each function
is one step of spec §3, takes and returns nnlite Tensors (so every stage is differentiable),
and names the equation it computes:

====================  ======================================================  ==========
stage                 what it computes                                        spec §3
====================  ======================================================  ==========
``raw_patches``       2r x 2r patches of full-resolution b, stride r          step 1
``downsample``        nearest, align-corners resize by 1/rate                 step 2
``matching_patches``  k x k patches w_q of the downsampled b                  step 3
``valid_patches``     mm[q] = 1 if the mask patch at q is all zero            step 4
``patch_scores``      s[p, q] = <f_p, w_q / max(||w_q||, 1e-4)>               step 5
``propagate``         3-term diagonal sums, row-major then column-major       step 6
``masked_softmax``    A = mm * softmax(scale * mm * s)                        step 7
``attention_offsets`` (dy, dx) = argmax_q A[p, q] - p                         step 8
``reconstruct``       transposed conv of A with the raw patches, / 4          step 9
====================  ======================================================  ==========

``contextual_attention_steps`` runs them all and returns every intermediate in an
``AttentionSteps`` record; the model's layer ``inpainting.model.attention.contextual_attention``
is that composition (its memory-bounded chunked mode is ``attention_chunked``), and the tests
check it against a loop-by-loop reference (``inpainting.model.reference``).

Notation: f, b (N, C, H, W); r = rate; h = H/r, w = W/r; L = h*w positions, flattened
row-major (p = i*w + j); k = ksize; K = 2r. Foreground positions p, background q.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import nnlite.functional as F
from nnlite import Tensor, as_tensor
from nnlite.backend import get_array_module
from nnlite.conv_geometry import same_padding

__all__ = ["raw_patches", "downsample", "matching_patches", "valid_patches", "patch_scores",
           "propagate", "masked_softmax", "attention_offsets", "reconstruct",
           "contextual_attention_steps", "AttentionSteps", "check_attention_inputs"]


# ------------------------------------------------------------------ shapes and checks
def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"contextual_attention: {name} must be an integer >= {minimum}, "
                         f"got {value!r}")
    return int(value)


def check_attention_inputs(f, b, mask, ksize, stride, rate, fuse_k):
    """Validate the layer's arguments; returns (f, b, mask) as Tensors (mask may be None).

    Valid sizes: f and b of the same shape (N, C, H, W), floating point, with H and W
    multiples of ``rate`` (the release resizes by exactly 1/rate); mask (1 or N, 1, H, W);
    stride 1 (the only stride the release's propagation reshapes accept).
    """
    f, b = as_tensor(f), as_tensor(b)
    for name, x in (("f", f), ("b", b)):
        if x.ndim != 4:
            raise ValueError(f"contextual_attention: {name} must be (N, C, H, W), got shape "
                             f"{x.shape}")
        if x.dtype.kind != "f":
            raise TypeError(f"contextual_attention: {name} must be floating point, got "
                            f"{x.dtype}")
    if f.shape != b.shape:
        raise ValueError(f"contextual_attention: f {f.shape} and b {b.shape} must have the "
                         "same shape (the release matches and offsets them on one grid)")
    if f.dtype != b.dtype:
        raise TypeError(f"contextual_attention: f is {f.dtype} but b is {b.dtype}")
    _positive_int("ksize", ksize)
    _positive_int("rate", rate)
    _positive_int("fuse_k", fuse_k)
    if stride != 1:
        raise ValueError(f"contextual_attention: only stride=1 is supported (as in the "
                         f"release, whose propagation needs L_f = L_b), got stride={stride}")
    n, _, height, width = f.shape
    if height % rate or width % rate:
        raise ValueError(f"contextual_attention: H and W ({height}, {width}) must be "
                         f"multiples of rate={rate}; pad the features (the model pads images "
                         "to a multiple of 8) or choose another rate")
    if mask is not None:
        mask = mask if isinstance(mask, Tensor) else Tensor(mask)
        if mask.ndim != 4 or mask.shape[0] not in (1, n) or mask.shape[1:] != (1, height, width):
            batch = "1" if n == 1 else f"1 or {n}"
            raise ValueError(f"contextual_attention: mask must be ({batch}, 1, {height}, "
                             f"{width}) at the feature resolution, got {mask.shape}")
        mask = mask.detach()
    return f, b, mask


def _same_patches(x, kernel, stride):
    """(N, C, H, W) -> (N, C*kernel*kernel, L) patches with TF SAME zero padding (spec §1),
    ordered (C, kh, kw) inside a patch and row-major over positions."""
    return F.unfold(x, kernel, padding="same", stride=stride)


# ------------------------------------------------------------------ the stages
def raw_patches(b, rate):
    """Step 1: the 2r x 2r patches of full-resolution ``b``, stride r, SAME padding
    (pads (r//2, r - r//2); for r = 2 patch q = (i, j) covers rows 2i-1..2i+2).

    (N, C, H, W) -> (N, L, C, 2r, 2r); these are pasted back in ``reconstruct``.
    """
    kernel = 2 * rate
    cols = _same_patches(b, kernel, rate)                        # (N, C*K*K, L)
    n, channels = b.shape[:2]
    return F.reshape(F.transpose(cols, (0, 2, 1)), (n, -1, channels, kernel, kernel))


def downsample(x, rate):
    """Step 2: nearest resize by 1/rate with TF1's align-corners rule (spec §1):
    src(y) = min(roundf(y * (in-1)/(out-1)), in-1). (N, C, H, W) -> (N, C, H/r, W/r)."""
    if rate == 1:
        return x
    return F.interpolate_nearest(x, size=(x.shape[2] // rate, x.shape[3] // rate),
                                 align_corners=True)


def matching_patches(b_small, ksize=3):
    """Step 3: the k x k patches w_q of the downsampled background, stride 1, SAME.

    (N, C, h, w) -> (N, L, C, k, k)."""
    cols = _same_patches(b_small, ksize, 1)
    n, channels = b_small.shape[:2]
    return F.reshape(F.transpose(cols, (0, 2, 1)), (n, -1, channels, ksize, ksize))


def valid_patches(mask_small, ksize=3):
    """Step 4: mm[q] = 1 if the mean of the k x k zero-padded mask patch at q is exactly 0.

    (M, 1, h, w) mask (1 = hole) or None -> (M, L) array of 0/1 in the mask's dtype, with
    M = 1 for the release's one-mask-per-batch; None means "all valid". Not differentiable
    (the mask is data, not a parameter)."""
    data = mask_small.data if isinstance(mask_small, Tensor) else mask_small
    xp = get_array_module(data)
    (top, bottom), (left, right) = (same_padding(data.shape[2], ksize, 1, 1),
                                    same_padding(data.shape[3], ksize, 1, 1))
    padded = xp.pad(data[:, 0], ((0, 0), (top, bottom), (left, right)))
    height, width = data.shape[2:]
    taps = [padded[:, u:u + height, v:v + width] for u in range(ksize) for v in range(ksize)]
    mean = xp.mean(xp.stack(taps), axis=0)                        # (M, h, w)
    return (mean == 0).astype(data.dtype).reshape(data.shape[0], -1)


def normalised_patch_matrix(w):
    """w_q / max(||w_q||_2, 1e-4) (spec §3 step 5) as an (N, C*k*k, L) matrix.

    Only background patches are normalised. The norm is computed as
    max(sqrt(max(||w||^2, 1e-10)), 1e-4): identical in value, but with a zero (not NaN)
    gradient for an all-zero patch, where sqrt's derivative would be infinite."""
    n, length = w.shape[:2]
    matrix = F.transpose(F.reshape(w, (n, length, -1)), (0, 2, 1))   # (N, Ckk, L)
    squared = F.sum(matrix * matrix, axis=1, keepdims=True)
    norm = F.maximum(F.sqrt(F.maximum(squared, 1e-10)), 1e-4)
    return matrix / norm


def foreground_patch_matrix(f_small, ksize=3):
    """The k x k SAME patches f_p of the downsampled foreground as an (N, L, C*k*k) matrix."""
    return F.transpose(_same_patches(f_small, ksize, 1), (0, 2, 1))


def patch_scores(f_small, w, ksize=3):
    """Step 5: s[p, q] = <f_p, w_q / max(||w_q||, 1e-4)> for all pairs (N, L, L).

    The release computes it as a SAME conv of f with the L normalised patches as filters;
    this is the same sum as a product of patch matrices. Not cosine similarity: f_p is
    not normalised (spec §3)."""
    return F.matmul(foreground_patch_matrix(f_small, ksize), normalised_patch_matrix(w))


def diagonal_sum(scores, fuse_k=3, grid=None):
    """One propagation pass: S'[p, q] = sum_u S[p + u - a, q + u - a] over u < fuse_k,
    a = (fuse_k - 1) // 2, zero outside the (L, L) matrix (the release's conv with an
    identity kernel). (N, L, L) -> (N, L, L).

    ``grid=(h, w)``: the same pass on **column-major** indices of the h x w grid, i.e.
    ``swap_flattening(diagonal_sum(swap_flattening(S, h, w)), w, h)``, computed on the
    row-major matrix directly (no transposed copies of the (L, L) scores)."""
    before = (fuse_k - 1) // 2
    shifts = tuple(u - before for u in range(fuse_k))
    if grid is not None:
        h, w = grid
        if h * w != scores.shape[-1]:
            raise ValueError(f"diagonal_sum: grid {h}x{w} does not match L = {scores.shape[-1]}")
        if max(abs(d) for d in shifts) >= h:              # a shift spans whole columns
            swapped = swap_flattening(scores, h, w)
            return swap_flattening(F.diagonal_sum(swapped, shifts), w, h)
        return F.diagonal_sum(scores, shifts, grid=(h, w))
    return F.diagonal_sum(scores, shifts)


def swap_flattening(scores, rows, cols):
    """Re-index both axes of (N, L, L) from row-major over (rows, cols) to row-major over
    (cols, rows), i.e. column-major over the original grid (and back, swapping the sizes)."""
    n = scores.shape[0]
    grid = F.reshape(scores, (n, rows, cols, rows, cols))
    return F.reshape(F.transpose(grid, (0, 2, 1, 4, 3)), (n, rows * cols, rows * cols))


def propagate(scores, h, w, fuse_k=3):
    """Step 6, attention propagation: ``diagonal_sum`` on row-major flattened indices,
    then on column-major ones (spec §3; the release transposes, sums and transposes back:
    ``swap_flattening`` + ``diagonal_sum`` + ``swap_flattening``, which ``grid=(h, w)``
    computes without the two transposed copies).

    Net effect: s'(p, q) = sum over the 3x3 neighbourhood of (p, q) moved together, except
    that the steps wrap across row ends (first pass) and column ends (second pass), as in
    the release. (N, L, L) -> (N, L, L)."""
    scores = diagonal_sum(scores, fuse_k)                  # row-major pass
    return diagonal_sum(scores, fuse_k, grid=(h, w))       # column-major pass


def masked_softmax(scores, mm, softmax_scale=10.0, *, check=True):
    """Step 7: A = mm * softmax(scale * (mm * s)) over q.

    ``mm``: (M, L) with M = 1 or N, entries 0 or 1. Invalid patches get logit 0 (not -inf)
    and their probability is then zeroed, so rows may sum to less than 1 (release
    behaviour). (N, L, L) -> (N, L, L). ``check=False`` skips verifying that ``mm`` holds
    only 0 and 1 (a host synchronisation on a GPU) where ``mm`` comes from
    ``valid_patches``, which makes it so."""
    return F.masked_softmax(scores, mm, softmax_scale, check=check)   # nnlite op


def attention_offsets(attention, h, w):
    """Step 8: (dy, dx) = (a // w - i, a % w - j) with a = argmax_q A[p, q] (first maximum)
    for p = (i, j). (N, L, L) -> integer array (N, 2, h, w), in positions at 1/rate scale."""
    data = attention.data if isinstance(attention, Tensor) else attention
    xp = get_array_module(data)
    best = xp.argmax(data, axis=-1).reshape(data.shape[0], h, w)
    rows = xp.arange(h).reshape(1, h, 1)
    cols = xp.arange(w).reshape(1, 1, w)
    return xp.stack([best // w - rows, best % w - cols], axis=1).astype(xp.int64)


def reconstruct(attention, raw, rate, height, width):
    """Step 9: y = conv_transpose(A, raw patches, stride r, SAME) / 4.

    Each foreground position p pastes sum_q A[p, q] * raw_q over its 2r x 2r window at
    (r*i - r//2, r*j - r//2); windows overlap 4-fold, hence the release's / 4 (applied
    at the border too). attention (N, L, L), raw (N, L, C, K, K) -> y (N, C, height, width).
    """
    n, length, channels, kernel = raw.shape[:4]
    cols = F.matmul(attention, F.reshape(raw, (n, length, -1)))       # (N, L_f, C*K*K)
    return fold_patches(cols, rate, height, width) * 0.25          # / 4, exact in binary


def fold_patches(cols, rate, height, width):
    """Sum (N, L, C*K*K) patches back onto an (N, C, H, W) canvas at stride r with the
    SAME offsets of ``raw_patches`` (the transposed convolution of step 9, without / 4)."""
    return F.fold(F.transpose(cols, (0, 2, 1)), (height, width), 2 * rate, padding="same",
                  stride=rate)


# ------------------------------------------------------------------ all together
@dataclass
class AttentionSteps:
    """Every intermediate of one contextual-attention call (shapes for f, b (N, C, H, W)).

    raw: (N, L, C, 2r, 2r) · f_small, b_small: (N, C, h, w) · mask_small: (M, 1, h, w) or
    None · w: (N, L, C, k, k) · mm: (M, L) · scores: (N, L, L) (step 5; None when the
    steps ran with keep=False) · propagated:
    (N, L, L) (step 6; equals scores when fuse=False) · attention: (N, L, L) · offsets:
    (N, 2, h, w) · y: (N, C, H, W). Reshape an (N, L, L) row p to (h, w) to see it as a map.
    """
    raw: Tensor
    f_small: Tensor
    b_small: Tensor
    mask_small: Tensor | None
    w: Tensor
    mm: object
    scores: Tensor | None
    propagated: Tensor
    attention: Tensor
    offsets: object
    y: Tensor


def downsample_mask(mask, rate, ksize, h, w, like):
    """Steps 2 and 4 for the mask: (M, 1, H, W) or None -> (mask_small or None, mm (M, L))."""
    if mask is None:
        xp = get_array_module(like.data)
        return None, xp.ones((1, h * w), dtype=like.dtype)
    mask_small = downsample(mask, rate)
    return mask_small, valid_patches(mask_small, ksize)


def contextual_attention_steps(f, b, mask=None, *, ksize=3, stride=1, rate=2, fuse_k=3,
                               softmax_scale=10.0, fuse=True, keep=True):
    """Run spec §3 stage by stage: the composition ``contextual_attention`` evaluates.

    A batch-1 mask is used for every sample (the release); an (N, 1, H, W) mask gives each
    sample its own. Returns an ``AttentionSteps`` with all the intermediates; with
    ``keep=False`` the scores before propagation are dropped as soon as they are propagated
    (``scores`` is None in the record), which is what the layer does to save memory."""
    f, b, mask = check_attention_inputs(f, b, mask, ksize, stride, rate, fuse_k)
    height, width = f.shape[2:]
    h, w = height // rate, width // rate
    raw = raw_patches(b, rate)
    f_small, b_small = downsample(f, rate), downsample(b, rate)
    mask_small, mm = downsample_mask(mask, rate, ksize, h, w, f)
    patches = matching_patches(b_small, ksize)
    scores = patch_scores(f_small, patches, ksize)
    propagated = propagate(scores, h, w, fuse_k) if fuse else scores
    if not keep:
        scores = None
    attention = masked_softmax(propagated, mm, softmax_scale, check=False)  # mm: 0/1
    offsets = attention_offsets(attention, h, w)
    y = reconstruct(attention, raw, rate, height, width)
    return AttentionSteps(raw, f_small, b_small, mask_small, patches, mm, scores, propagated,
                          attention, offsets, y)
