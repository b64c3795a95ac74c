"""The released checkpoint loaded into real models: strict loading, BGR -> RGB equivalence.

The fixture ``tests/fixtures/tf_release_tiny`` was written by TensorFlow with every release
variable name at cnum 2 (see ``tests/fixtures/make_tf_checkpoint.py``).
"""
import os

import numpy as np

import nnlite
from inpainting.model.networks import GlobalCritic, InpaintGenerator, LocalCritic
from inpainting.weights.release import generator_state_to_release, load_release_checkpoint

TINY = os.path.join(os.path.dirname(__file__), "fixtures", "tf_release_tiny")


def _unconverted_generator(generator):
    """The same weights with HWIO -> OIHW only: a model that expects BGR like the release."""
    release = generator_state_to_release(generator.state_dict())
    raw = InpaintGenerator(generator.cnum, dtype=np.float64)
    state = {}
    for name, _ in raw.named_parameters():
        layer, kind = name.rsplit(".", 1)
        scope = f"inpaint_net/{layer}" + (f"/{layer}_conv" if layer.endswith("_upsample") else "")
        value = release[f"{scope}/{'kernel' if kind == 'weight' else 'bias'}"]
        state[name] = value.transpose(3, 2, 0, 1) if kind == "weight" else value
    raw.load_state_dict(state, strict=True)
    return raw


def test_release_fixture_loads_strictly_into_all_three_models():
    generator, local, global_ = load_release_checkpoint(TINY, critics=True, local_size=32,
                                                        global_size=64, dtype=np.float64)
    assert isinstance(generator, InpaintGenerator) and generator.cnum == 2
    assert isinstance(local, LocalCritic) and isinstance(global_, GlobalCritic)
    expected = np.load(os.path.join(TINY, "expected.npz"))
    kernel = expected["inpaint_net/conv2_downsample/kernel"]
    np.testing.assert_array_equal(generator.conv2_downsample.weight.data,
                                  kernel.transpose(3, 2, 0, 1))


def test_converted_model_on_rgb_equals_the_release_model_on_bgr():
    generator = load_release_checkpoint(TINY, dtype=np.float64)
    release_like = _unconverted_generator(generator)
    rng = np.random.default_rng(0)
    rgb = rng.uniform(-1, 1, (2, 3, 16, 16))
    mask = np.zeros((1, 1, 16, 16))
    mask[..., 4:12, 6:14] = 1
    ours = generator(nnlite.Tensor(rgb * (1 - mask)), nnlite.Tensor(mask))
    bgr = rgb[:, ::-1].copy()
    theirs = release_like(nnlite.Tensor(bgr * (1 - mask)), nnlite.Tensor(mask))
    np.testing.assert_allclose(ours[0].data, theirs[0].data[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(ours[1].data, theirs[1].data[:, ::-1], atol=1e-12)
    np.testing.assert_array_equal(np.asarray(ours[2]), np.asarray(theirs[2]))


def test_converted_critic_on_rgb_equals_the_release_critic_on_bgr():
    _, local, _ = load_release_checkpoint(TINY, critics=True, local_size=32, global_size=64,
                                          dtype=np.float64)
    raw = LocalCritic(local.conv1.weight.shape[0], 32, dtype=np.float64)
    state = local.state_dict()
    state["conv1.weight"] = state["conv1.weight"][:, ::-1].copy()   # back to BGR inputs
    raw.load_state_dict(state)
    rgb = np.random.default_rng(1).uniform(-1, 1, (2, 3, 32, 32))
    np.testing.assert_allclose(local(nnlite.Tensor(rgb)).data,
                               raw(nnlite.Tensor(rgb[:, ::-1].copy())).data, atol=1e-12)
