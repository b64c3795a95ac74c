"""DeepFill v1 losses, exactly as the released training code computes them (spec §6).

Symbols: ``x`` the real image, ``M`` the hole mask (1 = hole), ``x1`` / ``x2`` the
coarse and refined outputs, ``D`` a critic, ``W`` the spatial discount weights,
``gamma`` the discount base. Images are NCHW in [-1, 1]; masks (1 or N, 1, H, W).

| quantity | spec §6 formula | function |
|---|---|---|
| discount weights | W[i,j] = max(g^min(i, H-i), g^min(j, W-j)) | ``spatial_discount_mask`` |
| discounted L1 | 1.2 mean(abs(x-x1) W) + mean(abs(x-x2) W), on the bbox crop | ``discounted_l1`` |
| known-region L1 | (1.2 mean(abs(x-x1)(1-M)) + mean(abs(x-x2)(1-M))) / mean(1-M) | ``known_region_l1`` |
| WGAN critic | mean D(fake) - mean D(real) | ``wgan_critic_loss`` |
| WGAN generator | -mean D(fake) | ``wgan_generator_loss`` |
| gradient penalty | mean((sqrt(sum(grad^2 M) + eps) - 1)^2) | ``gradient_penalty`` |
| generator total | 0.001 g_gan + 1.2 l1 + 1.2 ae (warm-up: 1.2 l1 + 1.2 ae) | ``generator_total`` |
| critic total | d_local + d_global + 10 (gp_local + gp_global) | ``critic_total`` |

The paper writes the discounted L1 over the missing region with weight
gamma^l (l = distance to the nearest known pixel); the release computes it on
the whole bbox crop with the formula above, on the raw (not composited) outputs.
"""
from __future__ import annotations

import numpy as np

import nnlite
import nnlite.functional as F
from nnlite import Tensor
from nnlite.backend import get_array_module

__all__ = ["spatial_discount_mask", "discounted_l1", "known_region_l1", "wgan_critic_loss",
           "wgan_generator_loss", "gradient_penalty", "generator_total", "critic_total",
           "LossWeights"]


class LossWeights:
    """The release's loss constants (spec §6), in one place."""
    coarse_l1_alpha = 1.2     # weight of the coarse output inside both L1 terms
    l1_loss_alpha = 1.2       # weight of the discounted L1 in the generator total
    ae_loss_alpha = 1.2       # weight of the known-region L1 in the generator total
    gan_loss_alpha = 0.001    # weight of the WGAN generator loss
    wgan_gp_lambda = 10.0     # weight of each gradient penalty in the critic total
    gamma = 0.9               # spatial discount base


def spatial_discount_mask(height, width, gamma=LossWeights.gamma, dtype=np.float32):
    """Spatial discount weights W, shape (1, 1, height, width) (spec §6; paper Sec. 3.1).

    ``W[i, j] = max(gamma ** min(i, height - i), gamma ** min(j, width - j))``,
    exactly the release's loop (``height - i``, not ``height - 1 - i``): the
    first row/column weigh 1.0, the last 0.9, the centre of a 128x128 box
    0.9^64; the mean of the 128x128 map is 0.2529.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"spatial_discount_mask: sizes must be positive, got {height}x{width}")
    if not 0 < gamma <= 1:
        raise ValueError(f"spatial_discount_mask: gamma must be in (0, 1] (the release: 0.9), "
                         f"got {gamma}")
    i = np.arange(height)[:, None]
    j = np.arange(width)[None, :]
    rows = gamma ** np.minimum(i, height - i).astype(np.float64)
    cols = gamma ** np.minimum(j, width - j).astype(np.float64)
    return np.maximum(rows, cols).astype(dtype)[None, None]


def _check_same_shape(name, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} must match")


def _check_map(name, what, array, like):
    """A per-pixel map (mask or weights) for images ``like`` (N, C, H, W): (1 or N, 1 or C, H, W)."""
    n, c, h, w = like.shape
    shape = tuple(array.shape)
    if len(shape) != 4 or shape[0] not in (1, n) or shape[1] not in (1, c) or shape[2:] != (h, w):
        batch, channels = ("1" if k == 1 else f"1 or {k}" for k in (n, c))
        raise ValueError(f"{name}: {what} must be ({batch}, {channels}, {h}, {w}) for images of "
                         f"shape {tuple(like.shape)}, got {shape}")


def discounted_l1(real_crop, coarse_crop, refined_crop, weights=None, *,
                  coarse_alpha=LossWeights.coarse_l1_alpha):
    """Spatially discounted L1 on the bbox crops (spec §6, "l1").

    ``coarse_alpha * mean(|x - x1| * W) + mean(|x - x2| * W)`` where every
    argument is the (N, 3, h, w) crop of the local bbox and ``W`` defaults to
    ``spatial_discount_mask(h, w)``.
    """
    _check_same_shape("discounted_l1", real_crop, coarse_crop)
    _check_same_shape("discounted_l1", real_crop, refined_crop)
    if weights is None:
        weights = spatial_discount_mask(real_crop.shape[2], real_crop.shape[3],
                                        dtype=real_crop.dtype)
        weights = get_array_module(real_crop.data).asarray(weights)
    _check_map("discounted_l1", "weights", weights, real_crop)
    coarse = F.mean(F.abs(real_crop - coarse_crop) * weights)
    refined = F.mean(F.abs(real_crop - refined_crop) * weights)
    return coarse * coarse_alpha + refined


def known_region_l1(real, coarse, refined, mask, *, coarse_alpha=LossWeights.coarse_l1_alpha):
    """Known-region ("ae") L1 (spec §6): the reconstruction error outside the hole,
    normalised by the known fraction:

    ``(coarse_alpha * mean(|x - x1| (1 - M)) + mean(|x - x2| (1 - M))) / mean(1 - M)``.
    """
    _check_same_shape("known_region_l1", real, coarse)
    _check_same_shape("known_region_l1", real, refined)
    _check_map("known_region_l1", "mask", _array(mask), real)
    known = 1.0 - _array(mask)
    xp = get_array_module(known)
    fraction = xp.mean(known)
    if xp is np and float(fraction) == 0:   # on a device: no host sync; the division
        # gives inf/nan, which the trainer's finiteness check reports
        raise ValueError("known_region_l1: the mask covers the whole image (no known pixel)")
    coarse = F.mean(F.abs(real - coarse) * known)
    refined = F.mean(F.abs(real - refined) * known)
    return (coarse * coarse_alpha + refined) / nnlite.Tensor(fraction.astype(real.dtype))


def wgan_critic_loss(d_real, d_fake):
    """WGAN critic loss ``mean(D(fake)) - mean(D(real))`` (spec §6)."""
    return F.mean(d_fake) - F.mean(d_real)


def wgan_generator_loss(d_fake):
    """WGAN generator loss ``-mean(D(fake))`` (spec §6)."""
    return -F.mean(d_fake)


def _array(value):
    return value.data if isinstance(value, Tensor) else value


def gradient_penalty(critic, real, fake, mask, *, alpha=None, rng=None, eps=1e-12):
    """WGAN-GP penalty with the hole mask inside the norm (spec §6; Gulrajani et al. 2017).

    ``x_hat = real + alpha (fake - real)`` with ``alpha ~ U[0, 1)`` per sample,
    ``g = d sum(D(x_hat)) / d x_hat``, ``slope = sqrt(sum(g^2 M) + eps)`` per
    sample, penalty ``mean((slope - 1)^2)``.

    The gradient is taken with ``nnlite.grad(..., create_graph=True)``, so the
    penalty can itself be differentiated w.r.t. the critic's parameters: this is
    why every op the critic uses needs a correct second derivative. ``eps``
    keeps the derivative of sqrt finite when g is exactly zero (the release has
    no eps; 1e-12 changes the value by at most 1e-6).

    Args:
        critic: a callable (N, C, H, W) -> (N, 1).
        real, fake: (N, C, H, W) tensors (``fake`` usually detached).
        mask: (1 or N, 1, H, W) hole mask (1 = hole), broadcast over channels.
        alpha: optional (N,) or (N,1,1,1) interpolation factors; drawn from ``rng``
            (a ``numpy.random.Generator``) when None.
    """
    real = nnlite.as_tensor(real)
    fake = nnlite.as_tensor(fake)
    _check_same_shape("gradient_penalty", real, fake)
    _check_map("gradient_penalty", "mask", _array(mask), real)
    n = real.shape[0]
    xp = get_array_module(real.data)
    if alpha is None:
        if rng is None:
            raise ValueError("gradient_penalty: pass alpha or rng (an explicit random generator)")
        alpha = rng.random(n)
    alpha = xp.asarray(_array(alpha), dtype=real.dtype).reshape(n, 1, 1, 1)
    x_hat = real + (fake - real) * alpha
    if not x_hat.requires_grad:
        x_hat = Tensor(x_hat.data, requires_grad=True)
    scores = critic(x_hat)
    (g,) = nnlite.grad(F.sum(scores), x_hat, create_graph=True)
    mask = xp.asarray(_array(mask), dtype=real.dtype)
    slope = F.sqrt(F.sum(g * g * mask, axis=(1, 2, 3)) + eps)
    return F.mean((slope - 1.0) ** 2)


def generator_total(g_gan, l1, ae, *, gan_alpha=LossWeights.gan_loss_alpha,
                    l1_alpha=LossWeights.l1_loss_alpha, ae_alpha=LossWeights.ae_loss_alpha):
    """Generator objective ``0.001 g_gan + 1.2 l1 + 1.2 ae`` (spec §6).

    ``l1`` is ``discounted_l1`` (its coarse term already weighted by 1.2 inside),
    ``ae`` is ``known_region_l1``, ``g_gan`` the sum of both critics'
    ``wgan_generator_loss`` (``g_local + g_global``). ``g_gan=None`` is the warm-up
    objective (not in the release): ``1.2 l1 + 1.2 ae`` alone, no critic involved.
    This is the one place the trainer adds the terms up.
    """
    total = l1 * l1_alpha + ae * ae_alpha
    if g_gan is None:
        return total
    return total + g_gan * gan_alpha


def critic_total(d_local, d_global, gp_local, gp_global, *,
                 gp_lambda=LossWeights.wgan_gp_lambda):
    """Critic objective ``d_local + d_global + 10 (gp_local + gp_global)`` (spec §6).

    ``d_local`` / ``d_global`` are the two critics' ``wgan_critic_loss`` (the local
    critic on the bbox crops), ``gp_local`` / ``gp_global`` their ``gradient_penalty``
    (the local one with the cropped hole mask); one lambda weighs both penalties.
    This is the one place the trainer adds the terms up.
    """
    return d_local + d_global + (gp_local + gp_global) * gp_lambda
