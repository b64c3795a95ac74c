"""Pixels outside the hole are the file's own, in its own format (8/16 bits, gray, alpha).

``inpaint_image`` composites in the file's values: outside the hole every sample is the
stored one, inside it the fill is rounded to nearest (gray files: ITU-R 601 luma of the
rounded RGB), and an alpha channel is kept everywhere; ``release_rounding`` writes the
release's truncated 8-bit RGB instead.
"""
import numpy as np
import pytest
from PIL import Image

from inpainting.app.inpaint_files import inpaint_image
from inpainting.model.networks import InpaintGenerator
from inpainting.data.pixels import composite, read_native


@pytest.fixture(scope="module")
def generator():
    g = InpaintGenerator(4, rng=np.random.default_rng(0))
    g.meta = {"image_size": 64}
    return g


def _pixels(kind, size=(24, 40), seed=0):
    """(array, Pillow image) of a random picture of one storage kind."""
    rng = np.random.default_rng(seed)
    if kind == "rgb":
        array = rng.integers(0, 256, size + (3,), dtype=np.uint8)
    elif kind == "gray":
        array = rng.integers(0, 256, size, dtype=np.uint8)
    elif kind == "rgba":
        array = rng.integers(0, 256, size + (4,), dtype=np.uint8)
    elif kind == "la":
        array = rng.integers(0, 256, size + (2,), dtype=np.uint8)
    else:                                                    # 16-bit gray
        array = rng.integers(0, 65536, size, dtype=np.uint16)
    return array, Image.fromarray(array)


KINDS = ["rgb", "gray", "rgba", "la", "gray16"]


def _mask(path, size, box=None):
    mask = np.zeros(size, np.uint8)
    if box is not None:
        mask[box] = 255
    Image.fromarray(mask).save(path)
    return mask > 127


@pytest.mark.parametrize("kind", KINDS)
def test_an_all_black_mask_returns_the_file_unchanged(tmp_path, generator, kind):
    array, image = _pixels(kind)
    image.save(tmp_path / "in.png")
    _mask(tmp_path / "mask.png", array.shape[:2])
    inpaint_image(tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "out.png",
                  weights=generator)
    with Image.open(tmp_path / "in.png") as before, Image.open(tmp_path / "out.png") as after:
        assert after.mode == before.mode and after.size == before.size
        np.testing.assert_array_equal(np.asarray(after), np.asarray(before))


@pytest.mark.parametrize("kind", KINDS)
def test_outside_the_hole_is_identical_and_inside_is_the_rounded_fill(tmp_path, generator,
                                                                      kind):
    array, image = _pixels(kind, seed=1)
    image.save(tmp_path / "in.png")
    hole = _mask(tmp_path / "mask.png", array.shape[:2], (slice(6, 18), slice(10, 30)))
    result = inpaint_image(tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "out.png",
                           weights=generator)
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out[~hole], array[~hole])
    top = np.iinfo(array.dtype).max
    scaled = np.clip((result.output[0].astype(np.float64) + 1) * top / 2, 0, top)
    if kind in ("rgb", "rgba"):
        np.testing.assert_array_equal(out[hole][:, :3], np.floor(scaled[:, hole].T + 0.5))
    else:                                     # luma of the unrounded fill, then rounded
        luma = 0.299 * scaled[0] + 0.587 * scaled[1] + 0.114 * scaled[2]
        gray = out[hole] if out.ndim == 2 else out[hole][:, 0]
        np.testing.assert_array_equal(gray, np.floor(luma[hole] + 0.5))
    if kind in ("rgba", "la"):                               # alpha kept inside the hole too
        np.testing.assert_array_equal(out[..., -1], array[..., -1])
    assert np.abs(out[hole].astype(int) - array[hole].astype(int)).max() > 0


def test_release_rounding_writes_the_releases_truncated_rgb(tmp_path, generator):
    """With release_rounding the file is 8-bit RGB saturate-and-truncate of the float result,
    everywhere: a known pixel 20 comes back as 19 (the release's behaviour)."""
    array = np.full((24, 40, 3), 20, np.uint8)
    array[:, :20] = 230
    Image.fromarray(array).save(tmp_path / "in.png")
    hole = _mask(tmp_path / "mask.png", (24, 40), (slice(8, 16), slice(12, 28)))
    result = inpaint_image(tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "rel.png",
                           weights=generator, release_rounding=True)
    out = np.asarray(Image.open(tmp_path / "rel.png"))
    truncated = np.floor(np.clip((result.output[0] + np.float32(1)) * np.float32(127.5), 0, 255))
    np.testing.assert_array_equal(out, truncated.astype(np.uint8).transpose(1, 2, 0))
    assert out[0, 30, 0] == 19 and out[0, 0, 0] == 230
    inpaint_image(tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "own.png",
                  weights=generator)
    own = np.asarray(Image.open(tmp_path / "own.png"))
    np.testing.assert_array_equal(own[~hole], array[~hole])


def test_a_format_that_cannot_hold_the_pixels_is_refused_before_the_work(tmp_path, generator):
    array, image = _pixels("rgba")
    image.save(tmp_path / "in.png")
    _mask(tmp_path / "mask.png", array.shape[:2], (slice(4, 10), slice(4, 10)))
    with pytest.raises(ValueError, match="out.jpg: JPEG cannot hold the input's RGB with alpha"):
        inpaint_image(tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "out.jpg",
                      weights=generator)
    assert not (tmp_path / "out.jpg").exists()


def test_composite_checks_its_shapes_and_reads_palette_files_as_rgb(tmp_path):
    array, image = _pixels("rgb")
    image.convert("P").save(tmp_path / "palette.png")
    native = read_native(tmp_path / "palette.png")
    assert native.mode == "RGB" and native.pixels.shape == (24, 40, 3)
    with pytest.raises(ValueError, match=r"fill must be \(3, 24, 40\)"):
        composite(native, np.zeros((3, 24, 41)), np.zeros((24, 40), bool))
    with pytest.raises(ValueError, match=r"hole must be \(24, 40\)"):
        composite(native, np.zeros((3, 24, 40)), np.zeros((24, 41), bool))
