"""Periodic training images (inpainting/data/periodic.py) and the periodic_fraction option."""
import numpy as np
import pytest

from inpainting.training.config import TrainConfig
from inpainting.data.datasets import ImageDataset
from inpainting.data.periodic import lattice, periodic_tile


def test_lattice_against_loops():
    rng = np.random.default_rng(0)
    tile = rng.random((3, 5, 7))
    for shift in (0, 1, 3, 6):
        canvas = lattice(tile, 23, 19, shift)
        expected = np.empty((3, 23, 19))
        for y in range(23):
            for x in range(19):
                expected[:, y, x] = tile[:, y % 5, (x - shift * (y // 5)) % 7]
        np.testing.assert_array_equal(canvas, expected)


@pytest.mark.parametrize("seed", range(6))
def test_periodic_tile_repeats_a_window_of_the_image(seed):
    rng = np.random.default_rng(seed)
    image = rng.random((3, 64, 64)).astype(np.float32)
    out = periodic_tile(image, np.random.default_rng(seed))
    assert out.shape == image.shape and out.dtype == image.dtype
    # find the period by search: the smallest p_y with out[:, y] == out[:, y + p_y] shifted
    # out[:, y + p_y, x] == out[:, y, x - shift] for every y, and x >= shift
    p_y = next(p for p in range(1, 64) if any(
        np.array_equal(out[:, p:, s:], out[:, :-p, :64 - s]) for s in range(64)))
    assert 6 <= p_y <= 64 * 3 // 8
    # every pixel value comes from the image (the tile is a window of it)
    assert np.isin(out, image).all()


def test_periodic_tile_errors():
    with pytest.raises(ValueError, match="C, H, W"):
        periodic_tile(np.zeros((8, 8)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="min_period"):
        periodic_tile(np.zeros((3, 16, 16)), np.random.default_rng(0), min_period=9, max_period=4)


def _dataset(fraction):
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 256, (80, 90, 3), dtype=np.uint8) for _ in range(3)]
    return ImageDataset([f"p{i}" for i in range(3)], [lambda p=p: p for p in pictures], 32,
                        periodic_fraction=fraction, seed=4)


def test_periodic_fraction_zero_keeps_the_release_crops_and_one_tiles_every_crop():
    plain, tiled = _dataset(0.0), _dataset(1.0)
    for index in range(3):
        crop = plain.sample(index, 0)
        periodic = tiled.sample(index, 0)
        assert not np.array_equal(crop, periodic)
        assert np.isin(periodic, crop).all()         # tiled from the same crop
    assert _dataset(0.0).next_batch(5).tobytes() == _dataset(0.0).next_batch(5).tobytes()


def test_periodic_fraction_is_checked():
    with pytest.raises(ValueError, match="periodic_fraction"):
        _dataset(1.5)
    with pytest.raises(ValueError, match="periodic_fraction"):
        TrainConfig(periodic_fraction=-0.1).validate()
    assert TrainConfig(periodic_fraction=0.3).validate().periodic_fraction == 0.3
