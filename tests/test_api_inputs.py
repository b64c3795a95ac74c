"""The Python API's inputs: [0, 1] images warn, all-hole masks are errors, and every public
function of inference / imageio / model_io answers a wrong argument with a ValueError or
TypeError whose message names the function (never an internal AttributeError or a bare
``expected str, bytes or os.PathLike``)."""
import warnings

import numpy as np
import pytest

from inpainting.data import imageio
from inpainting.model import inference
from inpainting.app import inpaint_files, large_images
from inpainting.weights import model_io
from inpainting.model.networks import InpaintGenerator


@pytest.fixture(scope="module")
def generator():
    return InpaintGenerator(2, rng=np.random.default_rng(0))


def _pair(low=-1.0):
    image = np.random.default_rng(0).uniform(low, 1, (3, 16, 16)).astype(np.float32)
    mask = np.zeros((1, 16, 16), np.float32)
    mask[:, 4:10, 4:10] = 1
    return image, mask


def test_an_image_with_no_value_below_zero_warns_naming_the_range(generator):
    image, mask = _pair(low=0.0)
    with pytest.warns(UserWarning, match=r"no value below 0 .* expected in \[-1, 1\]"):
        inference.inpaint(generator, image, mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inference.inpaint(generator, *_pair())                   # [-1, 1] data: silent


def test_an_all_hole_mask_is_an_error(generator):
    image, _ = _pair()
    for function in (inference.inpaint, large_images.inpaint_large):
        with pytest.raises(ValueError, match="the mask is all hole, so there is nothing"):
            function(generator, image, np.ones((1, 16, 16), np.float32))


def test_wrong_arguments_name_the_function(generator, tmp_path):
    image, mask = _pair()
    cases = [
        (lambda: imageio.load_image(None), "must be a file path .* got NoneType"),
        (lambda: imageio.load_mask(5), "load_mask: path must be a file path .* got int"),
        (lambda: imageio.load_mask("m.png", size=5), r"load_mask: size must be \(H, W\)"),
        (lambda: imageio.read_rgb_uint8(None), "must be a file path"),
        (lambda: imageio.save_image(None, image), "save_image: path must be a file path"),
        (lambda: imageio.to_uint8(None), "to_uint8 expects a floating array"),
        (lambda: imageio.from_uint8(None), "from_uint8 expects a uint8 array"),
        (lambda: inference.pad_to_multiple(None), "pad_to_multiple: array must be"),
        (lambda: inference.pad_to_multiple([[1.0]]), "pad_to_multiple: array must be"),
        (lambda: inference.pad_to_multiple(mask, 0), "multiple must be a positive integer"),
        (lambda: inference.pad_to_multiple(mask, 8, mode="wrap"), "mode must be 'reflect'"),
        (lambda: inference.inpaint(generator, image, "mask"), "mask must be a NumPy/CuPy"),
        (lambda: inference.inpaint(generator, image, mask.astype(str)), "mask must hold numbers"),
        (lambda: inpaint_files.inpaint_image("a.png", "b.png", "c.png", weights=5),
         "inpaint_image: weights must be an InpaintGenerator, a model path or None"),
        (lambda: inpaint_files.inpaint_image("a.png", "b.png", "c.png", dilate=-1),
         "dilate must be a whole number of pixels >= 0"),
        (lambda: model_io.load_generator(None), "load_generator: path must be a file path"),
        (lambda: model_io.load_generator(5), "load_generator: path must be a file path"),
        (lambda: model_io.save_generator(tmp_path / "x.npz", "g"),
         "save_generator: generator must be an InpaintGenerator, got str"),
        (lambda: model_io.save_generator(None, generator), "save_generator: path must be"),
        (lambda: model_io.average_generators(5), "average_generators takes a list"),
        (lambda: model_io.average_generators([5]), "load_generator: path must be a file path"),
        (lambda: large_images.plan_crops(None, 32), "plan_crops: hole must be a 2-D"),
        (lambda: large_images.any_pool(np.zeros((4, 4)), 0, 2), "any_pool: needs a 2-D hole"),
        (lambda: large_images.inpaint_large(generator, image, "mask"), "mask must be a NumPy"),
    ]
    for call, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            call()
