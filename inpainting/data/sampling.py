"""The seeded draws behind each training sample: the epoch order (``BatchSampler``) and the
release's crop transform (``random_crop_transform``).

Training transform (spec §6, neuralgym's ``np_random_crop``): if the image is smaller than S on
either side, scale it up keeping its aspect ratio by ``max(S / H, S / W)`` (sizes rounded up) so
both sides are >= S; then crop an S x S window at a uniform corner. ``resize=True`` instead
resizes the whole image to S x S. No flips in the release (``random_flip`` off by default).

Every draw comes from a PCG64 generator keyed by (seed, stream, epoch, index) (``_generator``):
epoch e's order by (seed, order stream, e, 0), the crop corner and flip of image i in epoch e
by (seed, crop stream, e, i), so they do not depend on what came before and survive a resume.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .imageio import hwc_uint8_to_chw

__all__ = ["BatchSampler", "random_crop_transform"]

# Stream tags keep the order and crop generators apart (SeedSequence pads short keys with zeros,
# so keys of different lengths could collide: every key here has the same length 4).
_ORDER_STREAM, _CROP_STREAM = 0, 1


def _generator(seed: int, stream: int, epoch: int, index: int) -> np.random.Generator:
    """PCG64 generator for one (seed, stream, epoch, index) key."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, epoch, index])))


def random_crop_transform(pixels: np.ndarray, image_size: int, rng: np.random.Generator, *,
                          resize: bool = False, random_flip: bool = False,
                          min_crop_scale: float = 0.0) -> np.ndarray:
    """(H, W, 3) uint8 -> float32 (3, S, S) in [-1, 1] by the release's rule (module docstring).

    ``min_crop_scale`` = s in (0, 1] (not in the release; 0 = off): a square crop whose side is
    ``round(f * min(H, W))`` with f uniform in [s, 1], at a uniform corner, resized to S x S.
    f = 1 sees the whole shorter side at S pixels, the scale of ``resize=True`` evaluation;
    s = S / min(H, W) reaches down to the release's pixel-for-pixel crops.
    """
    _check_crop_options(resize, min_crop_scale)
    height, width = pixels.shape[:2]
    image = Image.fromarray(pixels)
    if resize:
        image = image.resize((image_size, image_size), Image.BILINEAR)
    elif min_crop_scale:
        side = max(1, round(float(rng.uniform(min_crop_scale, 1.0)) * min(height, width)))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((image_size, image_size), Image.BILINEAR)
    else:
        if height < image_size or width < image_size:
            scale = max(image_size / height, image_size / width)
            width, height = math.ceil(width * scale), math.ceil(height * scale)
            image = image.resize((width, height), Image.BILINEAR)
        top = int(rng.integers(0, height - image_size + 1))
        left = int(rng.integers(0, width - image_size + 1))
        image = image.crop((left, top, left + image_size, top + image_size))
    array = np.asarray(image)
    if random_flip and rng.random() < 0.5:
        array = array[:, ::-1]
    return hwc_uint8_to_chw(array)


def _check_crop_options(resize: bool, min_crop_scale: float) -> None:
    if not (min_crop_scale == 0 or 0 < min_crop_scale <= 1):
        raise ValueError(f"min_crop_scale must be 0 (off) or in (0, 1], got {min_crop_scale!r}")
    if resize and min_crop_scale:
        raise ValueError("resize=True and min_crop_scale > 0 both choose the crop's scale: "
                         "use one of them")


class BatchSampler:
    """Seeded, resumable epoch order over ``num_items`` indices.

    Epoch e visits ``permutation(num_items)`` drawn from PCG64 seeded by (seed, e); the sampler
    keeps (epoch, position) and nothing else, so ``state_dict()`` is two ints plus checks.
    """

    def __init__(self, num_items: int, seed: int = 0):
        if int(num_items) != num_items or num_items < 1:
            raise ValueError(f"BatchSampler needs at least one item, got num_items={num_items!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.num_items, self.seed = int(num_items), int(seed)
        self.epoch, self.position = 0, 0
        self._order_epoch, self._order = -1, None

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of item indices visited in ``epoch`` (cached for the current epoch)."""
        if epoch != self._order_epoch:
            self._order = _generator(self.seed, _ORDER_STREAM, epoch, 0).permutation(self.num_items)
            self._order_epoch = epoch
        return self._order

    def next_index(self) -> tuple[int, int]:
        """Advance by one and return ``(epoch, item index)``; rolls over to the next epoch."""
        epoch, index = self.epoch, int(self.order(self.epoch)[self.position])
        self.position += 1
        if self.position == self.num_items:
            self.epoch, self.position = self.epoch + 1, 0
        return epoch, index

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed,
                "num_items": self.num_items}

    def load_state_dict(self, state: dict) -> None:
        """Restore (epoch, position); seed and number of items must match this sampler's."""
        for key in ("seed", "num_items"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(f"sampler state has {key}={state[key]}, this sampler has "
                                 f"{key}={getattr(self, key)}: the state belongs to another data set")
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position < self.num_items:
            raise ValueError(f"sampler state epoch={epoch}, position={position} is out of range "
                             f"for {self.num_items} items")
        self.epoch, self.position = epoch, position
