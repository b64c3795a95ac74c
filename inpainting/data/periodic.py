"""Periodic training images: a tile of a real image repeated over the canvas.

Not in the release. Contextual attention exists to copy from far away; a photograph rarely
makes that the only right answer, a periodic image always does: every hole pixel equals
known pixels one period away. ``periodic_tile`` turns any training crop into such a
picture, so a CPU-sized model sees many cases where copying is the answer:

    tile = a random p_y x p_x window of the image (p uniform in [min_period, max_period])
    canvas[y, x] = tile[y mod p_y, (x - s * floor(y / p_y)) mod p_x]

with the row shift ``s`` = 0 (a square lattice) or a random fraction of p_x (brick bonds and
other slanted lattices). The training option is ``TrainConfig.periodic_fraction``: that share
of training samples is made this way (from the same random stream as the crop; 0 = off, the
release). The evaluation's texture suite is generated separately (different generator and
seeds), so a model is never tested on the tiles it trained on.
"""
from __future__ import annotations

import numpy as np

__all__ = ["periodic_tile", "lattice"]


def lattice(tile: np.ndarray, height: int, width: int, shift: int = 0) -> np.ndarray:
    """Repeat ``tile`` (C, p_y, p_x) over a (C, height, width) canvas, each row of tiles
    shifted ``shift`` pixels to the right of the one above:
    canvas[:, y, x] = tile[:, y % p_y, (x - shift * (y // p_y)) % p_x]."""
    p_y, p_x = tile.shape[-2:]
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]
    return tile[:, y % p_y, (x - shift * (y // p_y)) % p_x]


def periodic_tile(image: np.ndarray, rng: np.random.Generator, *, min_period: int = 6,
                  max_period: int | None = None) -> np.ndarray:
    """A periodic image of the same shape as ``image`` (C, H, W), tiled from a window of it.

    The period (p_y, p_x) is drawn uniformly in [min_period, max_period] per axis (default
    max: 3/8 of the shorter side, so at least two periods fit beside a centred half-size
    hole); half of the draws get a row shift uniform in [1, p_x).
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise ValueError(f"periodic_tile: expected a (C, H, W) array, got "
                         f"{getattr(image, 'shape', type(image).__name__)}")
    height, width = image.shape[1:]
    max_period = min(height, width) * 3 // 8 if max_period is None else max_period
    if not 1 <= min_period <= max_period <= min(height, width):
        raise ValueError(f"periodic_tile: need 1 <= min_period <= max_period <= "
                         f"{min(height, width)}, got {min_period}, {max_period}")
    p_y = int(rng.integers(min_period, max_period + 1))
    p_x = int(rng.integers(min_period, max_period + 1))
    top = int(rng.integers(0, height - p_y + 1))
    left = int(rng.integers(0, width - p_x + 1))
    tile = image[:, top:top + p_y, left:left + p_x]
    shift = int(rng.integers(1, p_x)) if p_x > 1 and rng.random() < 0.5 else 0
    return np.ascontiguousarray(lattice(tile, height, width, shift))
