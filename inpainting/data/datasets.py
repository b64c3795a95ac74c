"""Training images: folders and file lists, the release's crop rule, a resumable seeded sampler.

The file lists are ``image_lists.py``; the epoch order and the crop transform ``sampling.py``;
this module puts them together over lazily loaded images, and builds the demo corpus.

* ``ImageFolder(root_or_flist, image_size)``: every image under a folder (recursive, sorted) or
  every path of an flist text file; ``next_batch(N)`` returns float32 (N, 3, S, S) in [-1, 1].
* ``BatchSampler``: the epoch order (a fresh permutation per epoch, seeded by (seed, epoch)) and
  the position inside it; ``state_dict()`` / ``load_state_dict()`` make a resumed run draw exactly
  the batches the uninterrupted run would have drawn.
* ``ImageDataset``: the shared machinery over named lazy loaders; ``demo_corpus`` builds one
  over in-memory arrays: scikit-image's bundled photographs plus seeded procedural textures
  (offline, nothing downloaded, nothing written to disk).

Training transform: the release's crop rule (spec §6; ``random_crop_transform`` in
sampling.py). The crop corner and flip of image i in epoch e are drawn from a generator seeded
by (seed, e, i) only, so they do not depend on what came before and survive a resume.

Bad files are reported once with ``warnings.warn`` (path and reason) and skipped.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Sequence

import numpy as np

from .image_lists import IMAGE_EXTENSIONS, list_images, read_flist  # noqa: F401 - importable here
from .imageio import ImageReadError, as_rgb_uint8, hwc_uint8_to_chw, read_rgb_uint8
from .periodic import periodic_tile
from .sampling import (_CROP_STREAM, BatchSampler, _check_crop_options, _generator,
                       random_crop_transform)

__all__ = ["DEMO_HELDOUT_PHOTOS", "DEMO_TRAIN_PHOTOS", "IMAGE_EXTENSIONS", "TEXTURE_KINDS",
           "BatchSampler", "ImageDataset", "ImageFolder", "demo_corpus", "list_images",
           "procedural_texture", "random_crop_transform", "read_flist"]


class ImageDataset:
    """Named lazy image loaders + the training transform + a resumable ``BatchSampler``.

    ``loaders[i]()`` returns (H, W, 3) uint8 RGB or raises ImageReadError. Index i's crop in
    epoch e depends only on (seed, e, i).
    """

    def __init__(self, names: Sequence[str], loaders: Sequence[Callable[[], np.ndarray]],
                 image_size: int = 256, *, resize: bool = False, random_flip: bool = False,
                 min_crop_scale: float = 0.0, periodic_fraction: float = 0.0, seed: int = 0):
        if len(names) != len(loaders):
            raise ValueError(f"{len(names)} names for {len(loaders)} loaders")
        if int(image_size) != image_size or image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {image_size!r}")
        self.names, self._loaders = list(names), list(loaders)
        _check_crop_options(resize, min_crop_scale)
        self.image_size, self.resize, self.random_flip = int(image_size), bool(resize), bool(random_flip)
        self.min_crop_scale = float(min_crop_scale)
        if not 0 <= periodic_fraction <= 1:
            raise ValueError(f"periodic_fraction must be in [0, 1], got {periodic_fraction!r}")
        self.periodic_fraction = float(periodic_fraction)
        self.sampler = BatchSampler(len(self._loaders), seed)
        self._bad: set[int] = set()
        self._agreed_bad: set[int] = set()   # next_batch_part: the same on every process

    def __len__(self) -> int:
        return len(self._loaders)

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` whole, untransformed: float32 (3, H, W) in [-1, 1]."""
        return hwc_uint8_to_chw(self._loaders[index]())

    def sample(self, index: int, epoch: int = 0) -> np.ndarray:
        """Image ``index`` as drawn in ``epoch``: float32 (3, S, S) after the training transform."""
        rng = _generator(self.sampler.seed, _CROP_STREAM, epoch, index)
        image = random_crop_transform(self._loaders[index](), self.image_size, rng,
                                      resize=self.resize, random_flip=self.random_flip,
                                      min_crop_scale=self.min_crop_scale)
        if self.periodic_fraction and rng.random() < self.periodic_fraction:
            image = periodic_tile(image, rng)        # drawn after the crop: 0 = old streams
        return image

    def next_batch(self, batch_size: int) -> np.ndarray:
        """The next ``batch_size`` images in sampler order: float32 (N, 3, S, S) in [-1, 1].

        A batch may run across an epoch boundary. Unreadable files are warned about once and
        skipped (the next index takes their place).
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        batch = []
        while len(batch) < batch_size:
            if len(self._bad) == len(self):
                raise ValueError(f"none of the {len(self)} images could be read "
                                 f"(first: {self.names[0]!r})")
            epoch, index = self.sampler.next_index()
            if index in self._bad:
                continue
            try:
                batch.append(self.sample(index, epoch))
            except ImageReadError as error:
                self._skip(index, error)
        return np.stack(batch)

    def next_batch_part(self, batch_size: int, start: int, stop: int, agree) -> np.ndarray:
        """Images ``start:stop`` of the batch ``next_batch(batch_size)`` would return, loading
        only those: how each of several processes takes its share of one global batch
        (``inpainting.distributed``). The sampler moves past the whole batch.

        Every process calls this together. ``agree(flags)`` returns the sum over processes of
        their float arrays of ``batch_size`` flags, 1 where a slot's image could not be read;
        when any failed, every process drops those images and draws the batch again from the
        same position, so the batch is the first ``batch_size`` readable images, as in
        ``next_batch``.
        """
        if not 0 <= start < stop <= batch_size:
            raise ValueError(f"next_batch_part: need 0 <= start < stop <= batch_size, got "
                             f"start={start}, stop={stop}, batch_size={batch_size}")
        unreadable = self._agreed_bad
        position = self.sampler.epoch, self.sampler.position
        while True:
            slots = []
            while len(slots) < batch_size:
                if len(unreadable) == len(self):
                    raise ValueError(f"none of the {len(self)} images could be read "
                                     f"(first: {self.names[0]!r})")
                epoch, index = self.sampler.next_index()
                if index not in unreadable:
                    slots.append((epoch, index))
            failed, images = np.zeros(batch_size), []
            for slot in range(start, stop):
                epoch, index = slots[slot]
                try:
                    if index in self._bad:
                        raise ImageReadError("unreadable")
                    images.append(self.sample(index, epoch))
                except ImageReadError as error:
                    failed[slot] = 1
                    if index not in self._bad:
                        self._skip(index, error)
            failed = agree(failed)
            if not np.any(failed):
                return np.stack(images)
            unreadable.update(slots[slot][1] for slot in np.flatnonzero(failed))
            self.sampler.epoch, self.sampler.position = position

    def fixed_samples(self, count: int) -> np.ndarray:
        """``count`` images for figures: the first readable ones in index order (epoch 0 crops),
        repeated when there are fewer; unreadable files are warned about once and skipped,
        as in ``next_batch``. Float32 (count, 3, S, S); the sampler does not move."""
        picks = []
        for index in range(len(self)):
            if len(picks) == count:
                break
            if index in self._bad:
                continue
            try:
                picks.append(self.sample(index, 0))
            except ImageReadError as error:
                self._skip(index, error)
        if not picks:
            raise ValueError(f"none of the {len(self)} images could be read "
                             f"(first: {self.names[0]!r})")
        return np.stack([picks[i % len(picks)] for i in range(count)])

    def _skip(self, index: int, error: Exception) -> None:
        self._bad.add(index)
        warnings.warn(f"skipping unreadable image {self.names[index]!r}: {error}",
                      RuntimeWarning, stacklevel=3)

    def state_dict(self) -> dict:
        """Where the sampler stands (epoch, position): save it with the model to resume."""
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


class ImageFolder(ImageDataset):
    """Images of a folder (recursive, sorted by path) or of an flist file, read on demand.

    ``ImageFolder(root_or_flist, image_size=256, resize=False, random_flip=False,
    min_crop_scale=0.0, seed=0)``;
    ``.paths`` lists the files. An empty source raises ValueError; a missing one FileNotFoundError.
    """

    def __init__(self, root_or_flist: str | os.PathLike, image_size: int = 256, *,
                 resize: bool = False, random_flip: bool = False, min_crop_scale: float = 0.0,
                 periodic_fraction: float = 0.0, seed: int = 0):
        self.paths = list_images(root_or_flist)
        loaders = [lambda path=path: read_rgb_uint8(path) for path in self.paths]
        super().__init__([str(p) for p in self.paths], loaders, image_size, resize=resize,
                         random_flip=random_flip, min_crop_scale=min_crop_scale,
                         periodic_fraction=periodic_fraction, seed=seed)


# ---------------------------------------------------------------------------------------------
# Demo corpus: bundled photographs + procedural textures, a fixed train / held-out split.

# skimage.data photographs shipped inside the scikit-image wheel (no pooch download); gray ones
# become RGB. ``cat`` is ``chelsea`` again and is not listed twice.
DEMO_TRAIN_PHOTOS = ("brick", "camera", "cell", "chelsea", "clock", "coins", "colorwheel", "grass",
                     "gravel", "hubble_deep_field", "immunohistochemistry", "moon",
                     "motorcycle", "page", "retina", "rocket", "text")
DEMO_HELDOUT_PHOTOS = ("astronaut", "coffee")
TEXTURE_KINDS = ("stripes", "checker", "gradient", "blobs")
_TEXTURE_SEEDS = {"train": (0, 1, 2), "heldout": (1000,)}
_TEXTURE_SIZE = 384


def _bundled_photo(name: str) -> np.ndarray:
    """One skimage.data sample as (H, W, 3) uint8 RGB."""
    import skimage.data

    pixels = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    return as_rgb_uint8(pixels)


def procedural_texture(kind: str, seed: int, size: int = _TEXTURE_SIZE) -> np.ndarray:
    """A seeded synthetic texture, (size, size, 3) uint8 RGB.

    ``stripes``: a sinusoid along a random direction (period 8-48 px) blending two random colours;
    ``checker``: a rotated checkerboard (cell 8-48 px); ``gradient``: a linear plus radial ramp
    between two colours; ``blobs``: Gaussian-smoothed noise (sigma 4-16 px), one field per channel.
    """
    from scipy.ndimage import gaussian_filter

    if kind not in TEXTURE_KINDS:
        raise ValueError(f"unknown texture kind {kind!r}; expected one of {TEXTURE_KINDS}")
    rng = np.random.default_rng([seed, TEXTURE_KINDS.index(kind), 7, 7])
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    theta = rng.uniform(0, np.pi)
    u, v = x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)
    colour_a, colour_b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    if kind == "stripes":
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * u / rng.uniform(8, 48) + rng.uniform(0, 2 * np.pi))
    elif kind == "checker":
        cell = rng.uniform(8, 48)
        weight = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float64)
    elif kind == "gradient":
        cy, cx = rng.uniform(0, size, 2)
        radial = np.hypot(y - cy, x - cx) / (np.sqrt(2) * size)
        weight = 0.5 * (u - u.min()) / np.ptp(u) + 0.5 * radial
    else:
        fields = gaussian_filter(rng.standard_normal((3, size, size)), (0, *[rng.uniform(4, 16)] * 2))
        fields -= fields.min(axis=(1, 2), keepdims=True)
        image = fields / fields.max(axis=(1, 2), keepdims=True)
        return np.round(255 * image.transpose(1, 2, 0)).astype(np.uint8)
    image = colour_a + (colour_b - colour_a) * weight[:, :, None]
    return np.round(255 * np.clip(image, 0, 1)).astype(np.uint8)


def _cached(load: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    """Wrap a loader so that it runs once and later calls return the same (read-only) array."""
    store = []

    def cached() -> np.ndarray:
        if not store:
            array = load()
            array.setflags(write=False)
            store.append(array)
        return store[0]

    return cached


def demo_corpus(split: str = "train", image_size: int = 256, *, resize: bool = False,
                random_flip: bool = False, min_crop_scale: float = 0.0,
                periodic_fraction: float = 0.0, seed: int = 0) -> ImageDataset:
    """The bundled offline demo corpus as an ``ImageDataset`` (same ``next_batch`` interface).

    split "train": the 17 photos of ``DEMO_TRAIN_PHOTOS`` + each texture kind with seeds 0, 1, 2
    (29 images); split "heldout": astronaut and coffee + each texture kind with seed 1000
    (6 images). Images are decoded or generated on first use and kept in memory only.
    """
    if split not in _TEXTURE_SEEDS:
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    photos = DEMO_TRAIN_PHOTOS if split == "train" else DEMO_HELDOUT_PHOTOS
    names = [f"skimage:{name}" for name in photos]
    loaders = [_cached(lambda name=name: _bundled_photo(name)) for name in photos]
    for kind in TEXTURE_KINDS:
        for texture_seed in _TEXTURE_SEEDS[split]:
            names.append(f"texture:{kind}:{texture_seed}")
            loaders.append(_cached(lambda kind=kind, s=texture_seed: procedural_texture(kind, s)))
    return ImageDataset(names, loaders, image_size, resize=resize, random_flip=random_flip,
                        min_crop_scale=min_crop_scale, periodic_fraction=periodic_fraction,
                        seed=seed)
