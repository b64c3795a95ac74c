"""Contextual attention (Yu et al. 2018, §3.2; spec §3) as one layer, with a chunked mode.

    y, offsets = contextual_attention(f, b, mask, rate=2)                 # release behaviour
    y, offsets = contextual_attention(f, b, mask, rate=2, chunk_size=4096) # bounded memory

Foreground features ``f`` borrow from background features ``b``: every k x k patch of
the (downsampled) foreground is scored against every background patch, the scores are
propagated along diagonals (neighbouring pixels attend to neighbouring patches), turned
into a softmax over the valid background patches, and the full-resolution 2r x 2r
background patches are pasted back weighted by it. The stages are the named functions of
``attention_steps``; this layer is their composition (``contextual_attention_steps``), and
the chunked mode is ``attention_chunked`` (``chunk_plan``, ``chunk_size_for_memory`` and
``CHUNK_BYTES_PER_SCORE`` are reachable here too).

Two evaluations, equal up to float rounding:

* **direct** (``chunk_size=None``): the whole (N, L, L) score matrix at once, like the
  release (L = H*W / rate^2; 1M entries per image at 256x256 input, 16.8M at 512x512,
  ~1e9 at 1080p).
* **chunked** (``chunk_size=R``): one image at a time and R foreground positions at a
  time, so only about (R + 2w + 4) x L scores exist at once. Propagation couples a row
  of the score matrix to its neighbours in row-major and in column-major order
  (including the release's wrap-around), so each chunk also scores a halo of
  neighbouring rows (``attention_chunked.chunk_plan``). Peak memory is bounded under
  ``no_grad`` (inference); with gradients, every chunk's softmax is kept for backward.

Masks: ``mask`` (1, 1, H, W) is used for every sample, exactly as the release (which
takes mask[0]); an (N, 1, H, W) mask gives each sample its own valid patches (an
improvement over the release). See docs/contextual_attention.md.
"""
from __future__ import annotations

import numpy as np

from .attention_chunked import (CHUNK_BYTES_PER_SCORE, chunk_plan, chunk_size_for_memory,
                                contextual_attention_chunked)
from .attention_steps import (check_attention_inputs, contextual_attention_steps, downsample,
                              downsample_mask, raw_patches)

__all__ = ["contextual_attention", "chunk_plan", "chunk_size_for_memory",
           "CHUNK_BYTES_PER_SCORE"]


def contextual_attention(f, b, mask=None, *, ksize=3, stride=1, rate=2, fuse_k=3,
                         softmax_scale=10.0, fuse=True, chunk_size=None,
                         return_attention=False):
    """Contextual attention of spec §3: ``(y, offsets)``.

    Args:
        f: foreground features, Tensor (N, C, H, W); H and W multiples of ``rate``.
        b: background features, same shape as ``f`` (the model passes f = b).
        mask: (1 or N, 1, H, W) at the feature resolution, 1 = hole, or None (all valid).
            Batch 1: the same mask for every sample (the release). Batch N: per sample.
        ksize: matching patch size k (3). stride: must be 1 (release).
        rate: downsampling factor r for matching; reconstruction pastes 2r x 2r patches.
        fuse_k: length of the propagation's diagonal sums (3); fuse: whether to propagate.
        softmax_scale: the softmax temperature's inverse (10).
        chunk_size: None for the direct evaluation, or the number of foreground positions
            scored at once (memory-bounded mode, one image at a time).
        return_attention: also return the attention scores A (step 7, after propagation
            and masking) as an array (N, L, L): rows foreground, columns background, both
            row-major at 1/rate. In chunked mode the chunks' rows are gathered into the
            same (N, L, L) array, so the L x L memory the chunks avoid is spent after all.

    Returns:
        y: Tensor (N, C, H, W), differentiable (twice) w.r.t. f and b.
        offsets: integer array (N, 2, H/r, W/r) of (dy, dx): the argmax background
            position minus the foreground position, at 1/r resolution (spec §3 step 8).
    """
    f, b, mask = check_attention_inputs(f, b, mask, ksize, stride, rate, fuse_k)
    if chunk_size is not None and (isinstance(chunk_size, bool) or
                                   not isinstance(chunk_size, (int, np.integer)) or
                                   chunk_size < 1):
        raise ValueError(f"contextual_attention: chunk_size must be a positive integer or "
                         f"None, got {chunk_size!r}")
    if chunk_size is None:                                           # steps 1-9 at once
        steps = contextual_attention_steps(f, b, mask, ksize=ksize, stride=stride, rate=rate,
                                           fuse_k=fuse_k, softmax_scale=softmax_scale,
                                           fuse=fuse, keep=False)
        if return_attention:
            return steps.y, steps.offsets, steps.attention.data
        return steps.y, steps.offsets
    height, width = f.shape[2:]
    h, w = height // rate, width // rate
    raw = raw_patches(b, rate)                                       # step 1
    f_small, b_small = downsample(f, rate), downsample(b, rate)      # step 2
    _, mm = downsample_mask(mask, rate, ksize, h, w, f)              # steps 2, 4
    return contextual_attention_chunked(raw, f_small, b_small, mm, int(chunk_size), ksize=ksize,
                                        rate=rate, fuse=fuse, fuse_k=fuse_k,
                                        softmax_scale=softmax_scale,
                                        return_attention=return_attention)
