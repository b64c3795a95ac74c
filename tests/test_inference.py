"""Inference (spec §7): ``inpainting.model.inference`` padding, mask rule, memory budget and files.

Expected values are built by hand: padded inputs by index formulas, the generator called
directly on them. (The [-1, 1] <-> uint8 and file rules of ``inpainting.data.imageio`` are tested
in ``tests/test_data.py``.)
"""
import numpy as np
import pytest
from PIL import Image

import nnlite
from inpainting.app import inpaint_files
from inpainting.model import inference
from inpainting.model.attention import CHUNK_BYTES_PER_SCORE
from inpainting.data.imageio import read_rgb_uint8
from inpainting.model.networks import InpaintGenerator


def _generator(seed=0):
    return InpaintGenerator(4, rng=np.random.default_rng(seed))


def _reflect_index(r, n):
    """numpy 'reflect' (edge not repeated) for one overhang: n, n+1, ... -> n-2, n-3, ..."""
    return r if r < n else 2 * (n - 1) - r


# ----------------------------------------------------------------------------- pad_to_multiple

def test_pad_to_multiple_reflects_and_falls_back_to_edge_when_the_pad_is_not_smaller():
    """Bottom/right padding to a multiple: reflect when the pad is smaller than the side, edge
    padding when it is as large (height 4 -> pad 4 is edge, height 5 -> pad 3 is reflect)."""
    array = np.arange(4 * 5, dtype=np.float32).reshape(1, 4, 5)
    padded, size = inference.pad_to_multiple(array, 8)
    assert size == (4, 5) and padded.shape == (1, 8, 8)
    for r in range(8):
        for c in range(8):
            assert padded[0, r, c] == array[0, min(r, 3), min(c, 4)]      # edge: 4 >= 4
    array = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6)
    padded, _ = inference.pad_to_multiple(array, 8)
    for r in range(8):
        for c in range(8):
            if c < 6:                                                     # pad_w 2 < 6: reflect
                assert padded[0, r, c] == array[0, _reflect_index(r, 5), c]


# ----------------------------------------------------------------------------- inpaint

def test_inpaint_pads_image_by_reflection_mask_by_zeros_and_thresholds_the_mask():
    """border='pad': the generator sees the image reflect-padded to a multiple of 8, the mask
    zero-padded (padding = known) and thresholded (> 0.5 = hole); the output is
    x2 * M + x * (1 - M) with that binary M, cropped back to (H, W)."""
    rng = np.random.default_rng(1)
    g = _generator(1)
    h, w = 27, 35
    image = rng.uniform(-1, 1, (3, h, w)).astype(np.float32)
    mask = np.zeros((1, h, w), np.float32)
    mask[:, 4:12, 6:20] = 0.7                  # a hole
    mask[:, 15:26, 22:34] = 0.3                # known (below the threshold), reaches the border
    mask[:, 20:27, 5:10] = 1.0                 # a hole touching the bottom edge
    hole = (mask > 0.5).astype(np.float32)
    padded = np.empty((1, 3, 32, 40), np.float32)
    for r in range(32):
        for c in range(40):
            padded[0, :, r, c] = image[:, _reflect_index(r, h), _reflect_index(c, w)]
    padded_hole = np.zeros((1, 1, 32, 40), np.float32)
    padded_hole[0, :, :h, :w] = hole
    with nnlite.no_grad():
        x1, x2, _ = g(nnlite.Tensor(padded * (1 - padded_hole)), nnlite.Tensor(padded_hole))
    result = inference.inpaint(g, image, mask)
    np.testing.assert_allclose(result.refined, x2.data[..., :h, :w], atol=1e-6)
    np.testing.assert_allclose(result.coarse, x1.data[..., :h, :w], atol=1e-6)
    expected = x2.data[..., :h, :w] * hole + image * (1 - hole)
    np.testing.assert_allclose(result.output, expected, atol=1e-6)
    known = hole[0] == 0
    np.testing.assert_array_equal(result.output[0][:, known], image[:, known])


def test_attention_memory_sets_the_chunk_from_quarter_resolution_features():
    """attention_memory picks the chunk for the attention layer's features, 1/4 of the padded
    image: rows = budget // (bytes per score * itemsize * L) - (2 w + 4), at most L, with
    w = W/4/2 and L = (H/4/2) * w (rate 2), passed to the generator's call (never its state)."""
    seen = []

    class Recording(InpaintGenerator):       # a test double by subclassing
        def forward(self, *args, **kwargs):
            seen.append(kwargs["attention_chunk_size"])
            return super().forward(*args, **kwargs)

    g = Recording(4, rng=np.random.default_rng(2))
    image = np.random.default_rng(2).uniform(-1, 1, (3, 64, 48)).astype(np.float32)
    mask = np.zeros((1, 64, 48), np.float32)
    mask[:, 20:40, 10:30] = 1
    w, length = 48 // 4 // 2, (64 // 4 // 2) * (48 // 4 // 2)          # 6, 48
    budget = CHUNK_BYTES_PER_SCORE * 4 * length * (10 + 2 * w + 4)
    inference.inpaint(g, image, mask, attention_memory=budget)
    assert seen == [10] and not hasattr(g, "attention_chunk_size")


def test_inpaint_value_range_and_mask_count_are_checked():
    """Images must lie in [-1, 1] (a tolerance of 1e-3 for float noise, no more), and one
    mask or one per image is required."""
    g = _generator(3)
    mask = np.zeros((1, 1, 16, 16), np.float32)
    mask[..., 4:10, 4:10] = 1
    image = np.zeros((3, 3, 16, 16), np.float32)
    for bad in (1.01, -1.01):
        wrong = image.copy()
        wrong[1, 0, 3, 3] = bad
        with pytest.raises(ValueError, match=r"\[-1, 1\]"):
            inference.inpaint(g, wrong, mask)
    nearly = image.copy()
    nearly[0, 0, 0, 0] = 1.0005
    assert inference.inpaint(g, nearly, mask).output.shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="2 masks for 3 images"):
        inference.inpaint(g, image, np.concatenate([mask, mask]))


def test_inpaint_image_writes_the_composite_and_the_coarse_result(tmp_path):
    """Files in, PNGs out: the output file is the composite, the coarse file is x1 (not x2),
    both as saturate-and-truncate uint8 (spec §7); a mask of another size is refused."""
    rng = np.random.default_rng(4)
    g = _generator(4)
    pixels = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    mask_pixels = np.zeros((16, 24), np.uint8)
    mask_pixels[3:11, 5:17] = 255
    Image.fromarray(pixels).save(tmp_path / "in.png")
    Image.fromarray(mask_pixels).save(tmp_path / "mask.png")
    Image.fromarray(mask_pixels[:8]).save(tmp_path / "small.png")
    inpaint_files.inpaint_image(tmp_path / "in.png", tmp_path / "mask.png", tmp_path / "out.png",
                            weights=g, coarse_path=tmp_path / "coarse.png")
    image = (pixels.astype(np.float32) / np.float32(127.5) - np.float32(1)).transpose(2, 0, 1)
    hole = (mask_pixels > 127.5).astype(np.float32)[None]
    with nnlite.no_grad():
        x1, x2, _ = g(nnlite.Tensor(image[None] * (1 - hole[None])), nnlite.Tensor(hole[None]))

    def truncated(y):
        return np.floor(np.clip((y + np.float32(1)) * np.float32(127.5), 0, 255)).astype(np.uint8)

    composite = x2.data[0] * hole + image * (1 - hole)
    out = read_rgb_uint8(tmp_path / "out.png").transpose(2, 0, 1).astype(int)
    coarse = read_rgb_uint8(tmp_path / "coarse.png").transpose(2, 0, 1).astype(int)
    assert np.abs(out - truncated(composite)).max() <= 1          # float-order noise only
    assert np.abs(coarse - truncated(x1.data[0])).max() <= 1
    assert np.abs(coarse - truncated(x2.data[0])).max() > 2       # x1 and x2 do differ here
    with pytest.raises(ValueError, match=r"\(8, 24\).*\(16, 24\)"):
        inpaint_files.inpaint_image(tmp_path / "in.png", tmp_path / "small.png",
                                tmp_path / "out2.png", weights=g)


# ----------------------------------------------------------------------------- imageio
