"""The generator and critics: sizes, parameter counts, padding rule, masks, inference."""
from pathlib import Path

import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from inpainting.model import inference, networks
from inpainting.model.networks import GlobalCritic, InpaintGenerator, LocalCritic


def test_parameter_counts_match_the_release():
    assert InpaintGenerator(32).num_parameters() == 3_601_542
    local, global_ = LocalCritic(64, 128), GlobalCritic(64, 256)
    assert local.num_parameters() + global_.num_parameters() == 7_072_770


def test_parameter_names_are_the_release_layer_names():
    names = [name for name, _ in InpaintGenerator(4).named_parameters()]
    assert names[:4] == ["conv1.weight", "conv1.bias", "conv2_downsample.weight",
                         "conv2_downsample.bias"]
    assert "conv13_upsample.weight" in names and "pmconv6.weight" in names
    assert "allconv17.bias" == names[-1]
    assert len(names) == 2 * 42
    critic = [name for name, _ in LocalCritic(4, 32).named_parameters()]
    assert critic == [f"conv{i}.{k}" for i in range(1, 5) for k in ("weight", "bias")] + \
        ["dense.weight", "dense.bias"]


def test_architecture_doc_is_generated_from_the_code():
    doc = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    assert networks.architecture_table(32) in doc
    assert "3,601,542" in doc


def _inputs(rng, n=2, size=32, per_sample=False):
    image = rng.uniform(-1, 1, (n, 3, size, size)).astype(np.float32)
    mask = np.zeros((n if per_sample else 1, 1, size, size), np.float32)
    mask[..., 8:20, 10:24] = 1
    return image, mask


def test_generator_shapes_dtypes_and_range():
    rng = np.random.default_rng(0)
    g = InpaintGenerator(4, rng=rng)
    image, mask = _inputs(rng)
    x1, x2, offsets = g(nnlite.Tensor(image * (1 - mask)), nnlite.Tensor(mask))
    assert x1.shape == x2.shape == (2, 3, 32, 32)
    assert x1.dtype == np.float32 and x2.dtype == np.float32
    assert offsets.shape == (2, 2, 4, 4)
    assert np.abs(x1.data).max() <= 1 and np.abs(x2.data).max() <= 1


def test_batch_one_mask_equals_the_same_mask_per_sample():
    rng = np.random.default_rng(1)
    g = InpaintGenerator(4, rng=rng)
    image, mask = _inputs(rng)
    shared = g(nnlite.Tensor(image * (1 - mask)), nnlite.Tensor(mask))
    repeated = np.repeat(mask, 2, axis=0)
    each = g(nnlite.Tensor(image * (1 - repeated)), nnlite.Tensor(repeated))
    np.testing.assert_allclose(shared[1].data, each[1].data, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(shared[2]), np.asarray(each[2]))


def test_generator_rejects_bad_inputs():
    g = InpaintGenerator(4)
    with pytest.raises(ValueError, match="multiples of 8"):
        g(np.zeros((1, 3, 30, 32), np.float32), np.zeros((1, 1, 30, 32), np.float32))
    with pytest.raises(ValueError, match="mask must be"):
        g(np.zeros((2, 3, 32, 32), np.float32), np.zeros((3, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        g(np.zeros((1, 4, 32, 32), np.float32), np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="cnum"):
        InpaintGenerator(3)


def test_stride_two_convs_use_tensorflow_same_padding():
    """conv2_downsample on an even size pads 0 before and 1 after (spec §1)."""
    rng = np.random.default_rng(2)
    g = InpaintGenerator(4, rng=rng)
    x = rng.standard_normal((1, 4, 16, 16)).astype(np.float32)
    conv = g.conv2_downsample
    got = conv(nnlite.Tensor(x)).data
    padded = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    expected = F.conv2d(nnlite.Tensor(padded), conv.weight, conv.bias, stride=2).data
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_critics_flatten_in_chw_order_and_check_their_input():
    rng = np.random.default_rng(3)
    critic = LocalCritic(2, 32, rng=rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    out = critic(nnlite.Tensor(x))
    assert out.shape == (2, 1)
    h = nnlite.Tensor(x)
    for i in range(1, 5):
        h = F.leaky_relu(getattr(critic, f"conv{i}")(h), 0.2)
    features = h.data.reshape(2, -1)           # (C, H, W) order
    expected = features @ critic.dense.weight.data.T + critic.dense.bias.data
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="must be"):
        critic(np.zeros((1, 3, 48, 48), np.float32))
    with pytest.raises(ValueError, match="multiple of 16"):
        GlobalCritic(2, 40)


@pytest.mark.parametrize("size", [(32, 32), (29, 37)])
def test_inpaint_any_size_keeps_known_pixels(size):
    rng = np.random.default_rng(4)
    g = InpaintGenerator(4, rng=rng)
    image = rng.uniform(-1, 1, (3,) + size).astype(np.float32)
    mask = np.zeros((1,) + size, np.float32)
    mask[:, 5:15, 6:20] = 1
    result = inference.inpaint(g, image, mask)
    assert result.output.shape == (1, 3) + size
    known = mask[0] == 0
    np.testing.assert_array_equal(result.output[0][:, known], image[:, known])
    assert result.offsets.shape == (1, 2, -(-size[0] // 8), -(-size[1] // 8))


def test_inpaint_border_crop_is_the_release_rule():
    """border='crop' (spec §7): the generator runs on image[:, :H8, :W8] with the mask cut the
    same way, written out here by hand; for multiples of 8 'crop' and 'pad' agree."""
    rng = np.random.default_rng(6)
    g = InpaintGenerator(4, rng=rng)
    image = rng.uniform(-1, 1, (3, 37, 45)).astype(np.float32)
    mask = np.zeros((1, 37, 45), np.float32)
    mask[:, 6:20, 9:30] = 1
    result = inference.inpaint(g, image, mask, border="crop")
    cut_image, cut_mask = image[None, :, :32, :40], mask[None, :, :32, :40]
    with nnlite.no_grad():
        x1, x2, offsets = g(nnlite.Tensor(cut_image * (1 - cut_mask)), nnlite.Tensor(cut_mask))
    np.testing.assert_array_equal(result.refined, x2.data)
    np.testing.assert_array_equal(result.coarse, x1.data)
    np.testing.assert_array_equal(result.offsets, offsets)
    np.testing.assert_array_equal(result.output, x2.data * cut_mask + cut_image * (1 - cut_mask))
    padded = inference.inpaint(g, image, mask)
    assert padded.output.shape == (1, 3, 37, 45)
    assert not np.allclose(padded.output[..., :32, :40], result.output)   # borders matter
    square = image[:, :32, :40]
    np.testing.assert_array_equal(inference.inpaint(g, square, mask[:, :32, :40]).output,
                                  inference.inpaint(g, square, mask[:, :32, :40],
                                                    border="crop").output)
    with pytest.raises(ValueError, match="border must be 'pad' or 'crop', got 'trim'"):
        inference.inpaint(g, image, mask, border="trim")
    with pytest.raises(ValueError, match="at least 8x8"):
        inference.inpaint(g, image[:, :7], mask[:, :7], border="crop")


def test_inpaint_errors_are_clear():
    g = InpaintGenerator(4)
    with pytest.raises(ValueError, match="same size"):
        inference.inpaint(g, np.zeros((3, 32, 32), np.float32), np.zeros((1, 16, 32), np.float32))
    with pytest.raises(ValueError, match="image must be"):
        inference.inpaint(g, np.zeros((32, 32), np.float32), np.zeros((1, 32, 32), np.float32))


def test_inpaint_memory_bounded_attention_gives_the_same_result():
    rng = np.random.default_rng(5)
    g = InpaintGenerator(4, rng=rng)
    image = rng.uniform(-1, 1, (2, 3, 64, 48)).astype(np.float32)
    mask = np.zeros((1, 1, 64, 48), np.float32)
    mask[..., 10:40, 12:30] = 1
    direct = inference.inpaint(g, image, mask)
    bounded = inference.inpaint(g, image, mask, attention_memory=40_000)
    assert not hasattr(g, "attention_chunk_size")  # an argument of the call, not state
    np.testing.assert_allclose(bounded.output, direct.output, atol=1e-5)
    np.testing.assert_array_equal(bounded.offsets, direct.offsets)


def test_generator_stages_are_the_layer_table_in_order_by_name():
    """forward runs the stages by name: coarse conv*, hallucination xconv*, attention pmconv1-6
    then pmconv9-10, decoder allconv*; together exactly gen_conv_table, in its order."""
    from inpainting.model.networks import gen_conv_table, generator_stages

    for attention in (True, False):
        stages = generator_stages(8, attention)
        order = ["coarse", "hallucination", "attention_encoder", "attention_decoder", "decoder"]
        assert list(stages) == order
        assert sum((stages[s] for s in order), []) == [r[0] for r in gen_conv_table(8, attention)]
        assert stages["coarse"][0] == "conv1" and stages["coarse"][-1] == "conv17"
        assert stages["decoder"][0] == "allconv11" and len(stages["hallucination"]) == 10
        if attention:
            assert stages["attention_encoder"][-1] == "pmconv6"
            assert stages["attention_decoder"] == ["pmconv9", "pmconv10"]
        else:
            assert stages["attention_encoder"] == stages["attention_decoder"] == []
