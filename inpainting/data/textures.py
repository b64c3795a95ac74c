"""The evaluation's periodic texture suite: images where copying from afar is the right answer.

A hole in a periodic texture has a known answer elsewhere in the image: the same pattern one
period away. A model with contextual attention should find it (the paper's central claim);
a smooth fill cannot. ``texture_suite(size, seed)`` renders the built-in suite:

==================  =========================================================  ===========
name                pattern                                                    period (px)
==================  =========================================================  ===========
stripes-0-p16       horizontal stripes, 3 bands                                16 (on grid)
stripes-90-p20      vertical stripes, 3 bands                                  20
stripes-30-p14      stripes at 30 degrees                                      14 (normal)
stripes-60-p24      stripes at 60 degrees                                      24 (normal)
stripes-135-p18     stripes at 135 degrees                                     18 (normal)
brick-running-32x16 running bond: 32 x 16 bricks, every other row offset by 16  32 x 32
brick-running-27x13 running bond, off the 8-pixel grid                         27 x 26
brick-stack-24x12   stack bond (bricks in columns)                             24 x 12
tiles-square-24     square tiles with grout, a bevel on each tile               24 x 24
tiles-diamond-17    square tiles turned 45 degrees (an oblique lattice)        17 * sqrt 2
weave-plain-10      plain weave (over one, under one) of shaded threads         20 x 20
weave-basket-8      basket weave (pairs of threads)                            32 x 32
dots-square-16      round dots on a square lattice                             16 x 16
dots-hex-18         round dots on a hexagonal lattice                          18 x 31.2
checker-12x20       rectangular checkerboard                                   24 x 40
noise-tile-32       smooth random noise, one tile repeated                     32 x 32
noise-tile-20       smooth random noise, one tile repeated                     20 x 20
==================  =========================================================  ===========

Colours, phases and the noise tiles are drawn from ``numpy.random.default_rng(key)`` with
``key = [2018, seed, index, 14]``; the training textures of ``inpainting.data`` use other
generators (sinusoid stripes, checkers, gradients and blobs) keyed ``[seed, kind, 7, 7]``,
so no suite image is ever a training image (and no training option renders these patterns:
the project's periodic training crops, where it has them, tile windows of real images). Shapes are rendered at twice the resolution and
averaged 2x2 (anti-aliased edges); a pattern whose period is a whole number of pixels along
the image axes is then exactly periodic in its pixels.
"""
from __future__ import annotations

import numpy as np

from .imageio import hwc_uint8_to_chw

__all__ = ["SUITE_SEED", "TEXTURE_SUITE", "texture_suite"]

#: the seed of the built-in suite (``inpainting evaluate --textures`` uses it)
SUITE_SEED = 14

#: (name, renderer, parameters) of the built-in suite, in order
TEXTURE_SUITE = (
    ("stripes-0-p16", "stripes", dict(angle=0, period=16)),
    ("stripes-90-p20", "stripes", dict(angle=90, period=20)),
    ("stripes-30-p14", "stripes", dict(angle=30, period=14)),
    ("stripes-60-p24", "stripes", dict(angle=60, period=24)),
    ("stripes-135-p18", "stripes", dict(angle=135, period=18)),
    ("brick-running-32x16", "bricks", dict(width=32, height=16, shift=0.5)),
    ("brick-running-27x13", "bricks", dict(width=27, height=13, shift=0.5)),
    ("brick-stack-24x12", "bricks", dict(width=24, height=12, shift=0.0)),
    ("tiles-square-24", "tiles", dict(period=24, angle=0)),
    ("tiles-diamond-17", "tiles", dict(period=17, angle=45)),
    ("weave-plain-10", "weave", dict(thread=10, group=1)),
    ("weave-basket-8", "weave", dict(thread=8, group=2)),
    ("dots-square-16", "dots", dict(spacing=16, hexagonal=False)),
    ("dots-hex-18", "dots", dict(spacing=18, hexagonal=True)),
    ("checker-12x20", "checker", dict(width=12, height=20)),
    ("noise-tile-32", "noise", dict(period=32)),
    ("noise-tile-20", "noise", dict(period=20)),
)

_SUPERSAMPLE = 2


def _colours(rng, count):
    """``count`` distinct-enough random colours in [0.1, 0.9] (rows of a (count, 3) array)."""
    base = rng.uniform(0.1, 0.9, 3)
    colours = [base]
    for _ in range(count - 1):
        step = rng.uniform(0.25, 0.5, 3) * rng.choice([-1.0, 1.0], 3)
        colours.append(np.clip(colours[-1] + step, 0.05, 0.95))
    return np.stack(colours)


def _rotate(y, x, degrees):
    """Coordinates turned by ``degrees``: (u across the pattern, v along it)."""
    theta = np.deg2rad(degrees)
    return y * np.cos(theta) + x * np.sin(theta), -y * np.sin(theta) + x * np.cos(theta)


def _stripes(y, x, rng, angle, period):
    u, _ = _rotate(y, x, angle)
    phase = (u / period + rng.uniform(0, 1)) % 1.0
    widths = np.cumsum(rng.dirichlet([3, 2, 2]))            # three bands of random widths
    band = np.searchsorted(widths, phase, side="right").clip(0, 2)
    return _colours(rng, 3)[band]


def _bricks(y, x, rng, width, height, shift):
    y, x = y + rng.uniform(0, height), x + rng.uniform(0, width)
    row = np.floor(y / height)
    xs = x + shift * width * (row % 2)
    mortar = ((y % height) < 2) | ((xs % width) < 2)
    brick, joint = _colours(rng, 2)
    shade = 1.0 - 0.15 * ((y % height) / height)[..., None]   # each brick darker at the bottom
    return np.where(mortar[..., None], joint, brick * shade)


def _tiles(y, x, rng, period, angle):
    u, v = _rotate(y, x, angle)
    u, v = (u / period + rng.uniform(0, 1)) % 1.0, (v / period + rng.uniform(0, 1)) % 1.0
    grout = (u < 0.1) | (v < 0.1)
    tile, line = _colours(rng, 2)
    bevel = 1.0 - 0.2 * np.maximum(np.abs(u - 0.55), np.abs(v - 0.55))[..., None]
    return np.where(grout[..., None], line, tile * bevel)


def _weave(y, x, rng, thread, group):
    y, x = y + rng.uniform(0, thread), x + rng.uniform(0, thread)
    over = (np.floor(y / (thread * group)) + np.floor(x / (thread * group))) % 2 == 0
    across = np.where(over, (y % thread) / thread, (x % thread) / thread)
    shade = (0.65 + 0.35 * np.sin(np.pi * across))[..., None]  # round threads
    warp, weft = _colours(rng, 2)
    return np.where(over[..., None], warp, weft) * shade


def _dots(y, x, rng, spacing, hexagonal):
    y, x = y + rng.uniform(0, spacing), x + rng.uniform(0, spacing)
    if hexagonal:                                    # lattice (0, s) and (s sqrt(3)/2, s/2)
        row_height = spacing * np.sqrt(3) / 2
        candidates = []
        for r in (np.floor(y / row_height), np.floor(y / row_height) + 1):
            cx = (np.round((x - (r % 2) * spacing / 2) / spacing) * spacing
                  + (r % 2) * spacing / 2)
            candidates.append(np.hypot(y - r * row_height, x - cx))
        distance = np.minimum(*candidates)
    else:
        distance = np.hypot((y + spacing / 2) % spacing - spacing / 2,
                            (x + spacing / 2) % spacing - spacing / 2)
    dot, ground = _colours(rng, 2)
    return np.where((distance < 0.3 * spacing)[..., None], dot, ground)


def _checker(y, x, rng, width, height):
    y, x = y + rng.uniform(0, height), x + rng.uniform(0, width)
    odd = (np.floor(y / height) + np.floor(x / width)) % 2 == 1
    return _colours(rng, 2)[odd.astype(int)]


def _noise_tile(size, rng, period):
    """A smooth random (period, period, 3) tile, wrapped, repeated over (size, size)."""
    from scipy.ndimage import gaussian_filter

    tile = gaussian_filter(rng.standard_normal((period, period, 3)), (period / 8, period / 8, 0),
                           mode="wrap")
    tile = (tile - tile.min()) / (tile.max() - tile.min())
    reps = -(-size // period)
    return np.tile(0.15 + 0.7 * tile, (reps, reps, 1))[:size, :size]


_RENDERERS = {"stripes": _stripes, "bricks": _bricks, "tiles": _tiles, "weave": _weave,
              "dots": _dots, "checker": _checker}


def render_texture(index, size=128, seed=SUITE_SEED):
    """Texture ``index`` of ``TEXTURE_SUITE`` as (size, size, 3) uint8 RGB."""
    _, kind, params = TEXTURE_SUITE[index]
    rng = np.random.default_rng([2018, seed, index, 14])
    if kind == "noise":
        colour = _noise_tile(size, rng, **params)
    else:
        fine = size * _SUPERSAMPLE
        y, x = (np.mgrid[0:fine, 0:fine] + 0.5) / _SUPERSAMPLE
        colour = _RENDERERS[kind](y, x, rng, **params)
        colour = colour.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.round(255 * np.clip(colour, 0, 1)).astype(np.uint8)


def texture_suite(size=128, seed=SUITE_SEED):
    """The built-in suite: ``(names, images)``, images float32 (N, 3, size, size) in [-1, 1].

    ``seed`` changes colours, phases and noise tiles (the patterns and periods stay); the
    built-in suite is ``seed=SUITE_SEED``. Nothing here is used for training.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"texture_suite: size must be an integer >= 8, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"texture_suite: seed must be a non-negative integer, got {seed!r}")
    names = [name for name, _, _ in TEXTURE_SUITE]
    images = np.stack([hwc_uint8_to_chw(render_texture(i, int(size), int(seed)))
                       for i in range(len(TEXTURE_SUITE))])
    return names, images
