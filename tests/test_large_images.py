"""Large images: crops around each hole region at the model's scale, the whole image in
bounded memory, and the memory estimate that refuses what cannot fit (small images here;
the 4000x3000 figure is in benchmarks/large_image.py and docs/benchmarks.md)."""
import tracemalloc

import numpy as np
import pytest

import nnlite
from inpainting.app import large_images
from inpainting.model.inference import inpaint
from inpainting.app.large_images import (MemoryEstimateError, Window, any_pool, estimate_bytes,
                                     inpaint_large, plan_crops)
from inpainting.model.networks import InpaintGenerator


class Recording(InpaintGenerator):
    """A generator that records each call's input size and attention chunk, or refuses to run
    (a test double by subclassing: no library code is replaced)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.refuse = [], False

    def forward(self, x, mask, *args, **kwargs):
        if self.refuse:
            pytest.fail("ran")
        self.calls.append((tuple(x.shape[2:]), kwargs.get("attention_chunk_size")))
        return super().forward(x, mask, *args, **kwargs)


@pytest.fixture(scope="module")
def generator():
    g = Recording(4, rng=np.random.default_rng(0))
    g.meta = {"image_size": 32}
    return g


def _image(height, width, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (3, height, width)).astype(np.float32)


def test_any_pool_marks_every_cell_touching_a_hole_pixel():
    rng = np.random.default_rng(0)
    hole = rng.random((23, 37)) > 0.97
    pooled = any_pool(hole, 7, 10)
    for i in range(7):
        for j in range(10):
            rows = range(i * 23 // 7, -(-(i + 1) * 23 // 7))
            cols = range(j * 37 // 10, -(-(j + 1) * 37 // 10))
            assert pooled[i, j] == any(hole[r, c] for r in rows for c in cols), (i, j)


def test_plan_crops_one_window_per_region_hole_at_most_half_and_merged_when_close():
    hole = np.zeros((100, 300), bool)
    hole[40:50, 10:30] = True                     # extent 20 -> window 2 * 20 = 40
    hole[10:70, 200:230] = True                   # extent 60 -> window 120 (clipped to 100)
    windows = plan_crops(hole, 32)
    assert windows == [Window(0, 155, 100, 275), Window(25, 0, 65, 40)]      # top to bottom
    covered = np.zeros_like(hole)
    for w in windows:
        covered[w.top:w.bottom, w.left:w.right] = True
    assert covered[hole].all()
    hole[45:47, 40:42] = True          # a speck: its 32x32 window overlaps the 40x40 one
    merged = plan_crops(hole, 32)      # one window around both: extent 32 -> side 64
    assert merged == [Window(0, 155, 100, 275), Window(13, 0, 77, 64)]


def test_crop_mode_keeps_pixels_outside_and_runs_each_window_at_the_working_size(generator):
    """Two holes far apart: two generator calls, each on a window brought to the working
    size (32); outside the hole the output is the input, bit for bit."""
    image = _image(64, 200)
    mask = np.zeros((1, 64, 200), np.float32)
    mask[0, 20:30, 10:20] = 1                      # window 32x32: no scaling
    mask[0, 10:40, 150:180] = 1                    # extent 30: window 60x60 -> scaled to 32
    generator.calls.clear()
    result = inpaint_large(generator, image, mask)
    assert [size for size, _ in generator.calls] == [(32, 32), (32, 32)]
    hole = mask[0] > 0.5
    np.testing.assert_array_equal(result.output[0][:, ~hole], image[:, ~hole])
    assert np.abs(result.output[0][:, hole] - image[:, hole]).max() > 0.1
    # the unscaled window (rows 9..41: centred on rows 20..30; columns 0..32: shifted inside)
    # equals inference.inpaint on that crop
    assert plan_crops(hole, 32)[1] == Window(9, 0, 41, 32)
    crop = inpaint(generator, image[:, 9:41, 0:32], mask[:, 9:41, 0:32])
    np.testing.assert_allclose(result.output[0][:, 9:41, 0:32], crop.output[0], atol=1e-6)
    # its attention offsets land on the full image's 1/8 grid: cells 1..5 (rows 8..48) take
    # the crop's cells by their centres, (8 r + 4 - 9) // 8 -> 0, 1, 2, 3, 3 (clipped)
    expected = crop.offsets[0][:, [0, 1, 2, 3, 3]][:, :, [0, 1, 2, 3]]
    np.testing.assert_array_equal(result.offsets[0][:, 1:6, 0:4], expected)
    assert result.offsets.shape == (1, 2, 8, 25) and result.coarse.shape == (1, 3, 64, 200)


def test_small_images_run_whole_as_inference_inpaint(generator):
    image, mask = _image(24, 32, 1), np.zeros((1, 24, 32), np.float32)
    mask[0, 5:15, 5:20] = 1
    expected = inpaint(generator, image, mask)
    result = inpaint_large(generator, image, mask)
    for name in ("output", "coarse", "refined", "offsets"):
        np.testing.assert_array_equal(getattr(result, name), getattr(expected, name))


def test_the_estimate_bounds_the_measured_peak():
    """estimate_bytes >= the peak traced during inference.inpaint, direct and chunked."""
    from nnlite.kernels.workspace import release_workspace

    g = InpaintGenerator(8, rng=np.random.default_rng(1))
    image, mask = _image(96, 128, 2), np.zeros((1, 96, 128), np.float32)
    mask[0, 30:60, 40:90] = 1
    for chunk in (None, 16):
        release_workspace()
        tracemalloc.start()
        inpaint(g, image, mask, attention_chunk_size=chunk)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        estimate = estimate_bytes(96, 128, 8, attention_chunk=chunk)
        assert peak <= estimate <= 3 * peak, (chunk, peak, estimate)


def test_what_cannot_fit_is_refused_before_the_work_in_one_line():
    image, mask = _image(64, 96), np.zeros((1, 64, 96), np.float32)
    mask[0, 10:30, 10:30] = 1
    generator = Recording(4, rng=np.random.default_rng(0))
    generator.meta, generator.refuse = {"image_size": 32}, True
    with pytest.raises(MemoryEstimateError, match=r"whole 96x64 image needs about .* GiB even "
                       r"with the attention bounded, more than the 0.0 GiB available; drop "
                       r"--full-image"):
        inpaint_large(generator, image, mask, mode="full", memory_limit=1000)
    with pytest.raises(MemoryEstimateError, match="smaller --working-size"):
        inpaint_large(generator, image, mask, mode="crop", memory_limit=1000)


def test_full_mode_bounds_the_attention_from_the_memory_limit(generator):
    """mode='full' with a limit below the direct estimate runs attention in chunks (same
    picture), and direct when it fits."""
    image, mask = _image(64, 96, 3), np.zeros((1, 64, 96), np.float32)
    mask[0, 20:40, 30:60] = 1
    generator.calls.clear()
    direct = inpaint_large(generator, image, mask, mode="full")
    chunked_limit = estimate_bytes(64, 96, 4, attention_chunk=4) + 12 * image.nbytes
    chunked = inpaint_large(generator, image, mask, mode="full",
                            memory_limit=chunked_limit / large_images.MEMORY_SHARE)
    seen = [chunk for _, chunk in generator.calls]
    assert seen[0] is None and seen[1] is not None and seen[1] < (64 // 8) * (96 // 8)
    np.testing.assert_allclose(chunked.output, direct.output, atol=1e-5)


def test_the_elapsed_time_bar_appears_only_after_its_delay(capsys):
    import threading

    with large_images._Ticker("whole image", True, delay=60.0):
        pass
    assert capsys.readouterr().err == ""
    shown = threading.Event()
    with large_images._Ticker("whole image", True, delay=0.0):
        shown.wait(0.5)
    assert "whole image: 00:0" in capsys.readouterr().err


def test_bad_arguments_are_named(generator):
    image, mask = _image(16, 16), np.zeros((1, 16, 16), np.float32)
    mask[0, 4:8, 4:8] = 1
    for kwargs, message in (({"mode": "tiles"}, "mode must be 'auto', 'crop' or 'full'"),
                            ({"working_size": 8}, "working_size must be an integer >= 16")):
        with pytest.raises(ValueError, match=message):
            inpaint_large(generator, image, mask, **kwargs)
    with pytest.raises(ValueError, match="InpaintGenerator"):
        inpaint_large("model.npz", image, mask)
    with pytest.raises(ValueError, match="one image at a time"):
        inpaint_large(generator, np.stack([image, image]), mask)
    assert nnlite.Tensor(image).shape == (3, 16, 16)
    assert inpaint_large(generator, nnlite.Tensor(image), mask[0]).output.shape == (1, 3, 16, 16)
