"""Training images: folders and file lists, the release's crop rule, a resumable seeded sampler.

* ``ImageFolder(root_or_flist, image_size)``: every image under a folder (recursive, sorted) or
  every path of an flist text file; ``next_batch(N)`` returns float32 (N, 3, S, S) in [-1, 1].
* ``BatchSampler``: the epoch order (a fresh permutation per epoch, seeded by (seed, epoch)) and
  the position inside it; ``state_dict()`` / ``load_state_dict()`` make a resumed run draw exactly
  the batches the uninterrupted run would have drawn.
* ``ImageDataset``: the shared machinery over named lazy loaders; ``demo_corpus`` builds one
  over in-memory arrays: scikit-image's bundled photographs plus seeded procedural textures
  (offline, nothing downloaded, nothing written to disk).

Training transform (spec §6, neuralgym's ``np_random_crop``): if the image is smaller than S on
either side, scale it up keeping its aspect ratio by ``max(S / H, S / W)`` (sizes rounded up) so
both sides are >= S; then crop an S x S window at a uniform corner. ``resize=True`` instead
resizes the whole image to S x S. No flips in the release (``random_flip`` off by default).
The crop corner and flip of image i in epoch e are drawn from a generator seeded by
(seed, e, i) only, so they do not depend on what came before and survive a resume.

Bad files are reported once with ``warnings.warn`` (path and reason) and skipped.
"""
from __future__ import annotations

import codecs
import math
import os
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .imageio import ImageReadError, as_rgb_uint8, hwc_uint8_to_chw, read_rgb_uint8
from .periodic import periodic_tile

__all__ = ["DEMO_HELDOUT_PHOTOS", "DEMO_TRAIN_PHOTOS", "IMAGE_EXTENSIONS", "TEXTURE_KINDS",
           "BatchSampler", "ImageDataset", "ImageFolder", "demo_corpus", "list_images",
           "procedural_texture", "random_crop_transform", "read_flist"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")

# Stream tags keep the order and crop generators apart (SeedSequence pads short keys with zeros,
# so keys of different lengths could collide: every key here has the same length 4).
_ORDER_STREAM, _CROP_STREAM = 0, 1


def _generator(seed: int, stream: int, epoch: int, index: int) -> np.random.Generator:
    """PCG64 generator for one (seed, stream, epoch, index) key."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, epoch, index])))


def read_flist(flist: str | os.PathLike) -> list[Path]:
    """Paths listed in an flist file: one per line; blank lines and ``#`` comments ignored.

    Relative paths are taken relative to the flist's own folder. An image file or any other
    binary file raises ValueError saying so (it is not a list of paths).
    """
    flist = Path(flist)
    base = flist.parent
    with open(flist, "rb") as handle:
        head = handle.read(4096)
    kind = _binary_kind(flist, head)
    if not kind:
        try:
            text = flist.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            kind = f"a file that is not UTF-8 text (byte {error.object[error.start]:#04x} at " \
                   f"offset {error.start})"
    if kind:
        raise ValueError(f"{flist} is {kind}, not a folder or an flist (a text file of image "
                         "paths, one per line)")
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line).expanduser()
        paths.append(path if path.is_absolute() else base / path)
    return paths


# Leading bytes of the binary image formats Pillow reads most often.
_IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*",
                     b"RIFF")


def _binary_kind(path: Path, head: bytes) -> str:
    """What a file starting with ``head`` is when it cannot be an flist ('an image file',
    'a binary file', ...); '' when it may be one."""
    image_suffix = path.suffix.lower() in IMAGE_EXTENSIONS
    if b"\x00" in head:
        reason = "a binary file"
    else:
        try:   # incremental: a character cut at the end of ``head`` is not an error
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            return "an image file" if image_suffix else ""
        except UnicodeDecodeError as error:
            reason = (f"a file that is not UTF-8 text (byte {head[error.start]:#04x} at offset "
                      f"{error.start})")
    return "an image file" if image_suffix or head.startswith(_IMAGE_SIGNATURES) else reason


def list_images(root_or_flist: str | os.PathLike) -> list[Path]:
    """The image paths of a folder (recursive, by extension, sorted) or of an flist file."""
    source = Path(root_or_flist)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*")
                       if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        where = f"folder {str(source)!r} (searched recursively for {', '.join(IMAGE_EXTENSIONS)})"
    elif source.is_file():
        paths = read_flist(source)
        where = f"file list {str(source)!r}"
    else:
        raise FileNotFoundError(f"image source {str(source)!r} is neither a folder nor an flist file")
    if not paths:
        raise ValueError(f"no images found in {where}")
    return paths


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
