"""Tests of inpainting.weights.release: release variable names and layouts -> this project's (spec §8).

Synthetic "release" tensors with the full name set, shapes from the spec §2/§5 tables.
"""
import os
import shutil

import numpy as np
import pytest

from inpainting.weights.release import (GENERATOR_LAYERS, ReleaseMappingError, critic_release_names,
                                critic_states_to_release, generator_release_name,
                                generator_release_names, generator_state_to_release,
                                read_release_states, release_critic_states,
                                release_generator_state)
from inpainting.weights.tf_checkpoint import CheckpointReader

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
TINY = os.path.join(FIXTURES, "tf_release_tiny")       # every release name, cnum 2, by TF


def release_generator_shapes(cnum):
    """{layer: (k, C_in, C_out)} of the released generator, from the spec §2 tables."""
    c = cnum
    shapes = {"conv1": (5, 5, c), "conv2_downsample": (3, c, 2 * c),
              "conv3": (3, 2 * c, 2 * c), "conv4_downsample": (3, 2 * c, 4 * c),
              "conv13_upsample": (3, 4 * c, 2 * c), "conv14": (3, 2 * c, 2 * c),
              "conv15_upsample": (3, 2 * c, c), "conv16": (3, c, c // 2),
              "conv17": (3, c // 2, 3),
              "xconv1": (5, 5, c), "xconv2_downsample": (3, c, c), "xconv3": (3, c, 2 * c),
              "xconv4_downsample": (3, 2 * c, 2 * c), "xconv5": (3, 2 * c, 4 * c),
              "pmconv1": (5, 5, c), "pmconv2_downsample": (3, c, c), "pmconv3": (3, c, 2 * c),
              "pmconv4_downsample": (3, 2 * c, 4 * c),
              "allconv11": (3, 8 * c, 4 * c), "allconv13_upsample": (3, 4 * c, 2 * c),
              "allconv14": (3, 2 * c, 2 * c), "allconv15_upsample": (3, 2 * c, c),
              "allconv16": (3, c, c // 2), "allconv17": (3, c // 2, 3)}
    for layer in GENERATOR_LAYERS:
        shapes.setdefault(layer, (3, 4 * c, 4 * c))   # every other layer is 4cnum -> 4cnum
    return shapes


def synthetic_release(cnum=4, rng=None, critic_cnum=4, local_size=32, global_size=64):
    """Random tensors under every release name (plus an optimizer slot and global_step)."""
    rng = rng or np.random.default_rng(0)
    tensors = {}
    for layer, (k, cin, cout) in release_generator_shapes(cnum).items():
        tensors[generator_release_name(layer, "kernel")] = rng.standard_normal(
            (k, k, cin, cout)).astype(np.float32)
        tensors[generator_release_name(layer, "bias")] = rng.standard_normal(cout).astype(
            np.float32)
    for which, size, mults in (("local", local_size, (1, 2, 4, 8)),
                               ("global", global_size, (1, 2, 4, 4))):
        cin = 3
        for i, m in enumerate(mults, start=1):
            scope = f"discriminator/discriminator_{which}/conv{i}"
            tensors[f"{scope}/kernel"] = rng.standard_normal((5, 5, cin, critic_cnum * m))
            tensors[f"{scope}/bias"] = rng.standard_normal(critic_cnum * m)
            cin = critic_cnum * m
        h = size // 16
        tensors[f"discriminator/dout_{which}_fc/kernel"] = rng.standard_normal((h * h * cin, 1))
        tensors[f"discriminator/dout_{which}_fc/bias"] = rng.standard_normal(1)
    tensors["inpaint_net/conv1/kernel/Adam"] = np.zeros((5, 5, 5, cnum), np.float32)
    tensors["global_step"] = np.array(7, np.int64)
    return tensors


def test_spec_parameter_counts():
    """The shape tables reproduce the spec's parameter counts at the release sizes."""
    generator = sum(k * k * cin * cout + cout
                    for k, cin, cout in release_generator_shapes(32).values())
    assert generator == 3_601_542
    critics = synthetic_release(cnum=2, critic_cnum=64, local_size=128, global_size=256)
    assert sum(critics[n].size for n in critic_release_names()) == 7_072_770
    assert len(generator_release_names()) == 84 and len(GENERATOR_LAYERS) == 42


def test_names_follow_the_release():
    names = generator_release_names()
    assert "inpaint_net/conv1/kernel" in names
    assert "inpaint_net/conv13_upsample/conv13_upsample_conv/kernel" in names
    assert "inpaint_net/allconv15_upsample/allconv15_upsample_conv/bias" in names
    assert "inpaint_net/pmconv9/kernel" in names and "inpaint_net/pmconv7/kernel" not in names
    assert "discriminator/dout_global_fc/kernel" in critic_release_names()


def test_generator_layouts_and_bgr_reversal():
    tensors = synthetic_release()
    state = release_generator_state(tensors)
    assert sorted(state) == sorted(f"{layer}.{kind}" for layer in GENERATOR_LAYERS
                                   for kind in ("weight", "bias"))
    for layer in GENERATOR_LAYERS:
        kernel = tensors[generator_release_name(layer, "kernel")]
        weight = state[f"{layer}.weight"]
        assert weight.shape == (kernel.shape[3], kernel.shape[2], kernel.shape[0],
                                kernel.shape[1])
        assert weight.dtype == np.float32 and weight.flags.c_contiguous
    # plain layer: OIHW[o, i, y, x] == HWIO[y, x, i, o]
    kernel = tensors["inpaint_net/conv5/kernel"]
    np.testing.assert_array_equal(state["conv5.weight"][7, 2, 0, 1], kernel[0, 1, 2, 7])
    # input layers: channels 0, 1, 2 (B, G, R) become R, G, B; ones and mask stay
    for layer in ("conv1", "xconv1", "pmconv1"):
        kernel = tensors[generator_release_name(layer, "kernel")]
        for ours, theirs in ((0, 2), (1, 1), (2, 0), (3, 3), (4, 4)):
            np.testing.assert_array_equal(state[f"{layer}.weight"][:, ours],
                                          kernel[:, :, theirs, :].transpose(2, 0, 1))
    # output layers: output channel 0 (our R) is the release's channel 2 (its R)
    for layer in ("conv17", "allconv17"):
        kernel = tensors[generator_release_name(layer, "kernel")]
        bias = tensors[generator_release_name(layer, "bias")]
        for ours, theirs in ((0, 2), (1, 1), (2, 0)):
            np.testing.assert_array_equal(state[f"{layer}.weight"][ours],
                                          kernel[:, :, :, theirs].transpose(2, 0, 1))
            assert state[f"{layer}.bias"][ours] == bias[theirs]
    # nothing else is reversed
    np.testing.assert_array_equal(state["conv16.bias"], tensors["inpaint_net/conv16/bias"])
    np.testing.assert_array_equal(state["allconv11.weight"][:, :3],
                                  tensors["inpaint_net/allconv11/kernel"][:, :, :3]
                                  .transpose(3, 2, 0, 1))


def test_generator_round_trip_is_exact():
    tensors = synthetic_release()
    back = generator_state_to_release(release_generator_state(tensors))
    assert sorted(back) == sorted(generator_release_names())
    for name, value in back.items():
        np.testing.assert_array_equal(value, tensors[name], err_msg=name)


def _conv_at_one_position(patch_hwc, kernel_hwio, bias):
    """Plain loop: one output pixel of a conv whose window is exactly `patch` (NHWC/HWIO)."""
    kh, kw, cin, cout = kernel_hwio.shape
    out = np.array(bias, dtype=np.float64)
    for y in range(kh):
        for x in range(kw):
            for i in range(cin):
                out += patch_hwc[y, x, i] * kernel_hwio[y, x, i]
    return out


def test_converted_layers_on_rgb_equal_release_on_bgr():
    rng = np.random.default_rng(1)
    tensors = synthetic_release(rng=rng)
    state = release_generator_state(tensors)
    # conv1: the release sees [BGR, ones, mask]; ours sees [RGB, ones, mask] in NCHW.
    rgb = rng.standard_normal((5, 5, 3))
    mask = (rng.random((5, 5, 1)) > 0.5).astype(float)
    release_in = np.concatenate([rgb[:, :, ::-1], np.ones((5, 5, 1)), mask], axis=2)
    ours_in = np.concatenate([rgb, np.ones((5, 5, 1)), mask], axis=2).transpose(2, 0, 1)
    expected = _conv_at_one_position(release_in, tensors["inpaint_net/conv1/kernel"],
                                     tensors["inpaint_net/conv1/bias"])
    got = np.einsum("ihw,oihw->o", ours_in, state["conv1.weight"]) + state["conv1.bias"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # conv17: same features in, our output is the release's output with channels reversed.
    features = rng.standard_normal((3, 3, 2))
    expected = _conv_at_one_position(features, tensors["inpaint_net/conv17/kernel"],
                                     tensors["inpaint_net/conv17/bias"])
    got = (np.einsum("ihw,oihw->o", features.transpose(2, 0, 1), state["conv17.weight"])
           + state["conv17.bias"])
    np.testing.assert_allclose(got, expected[::-1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("which", ["local", "global"])
def test_critic_dense_reorder_matches_a_loop_over_hwc(which):
    local_size, global_size = 32, 64
    tensors = synthetic_release(local_size=local_size, global_size=global_size)
    local, global_ = release_critic_states(tensors, local_size, global_size)
    state = local if which == "local" else global_
    kernel = tensors[f"discriminator/dout_{which}_fc/kernel"]
    c = state["conv4.weight"].shape[0]
    h = w = (local_size if which == "local" else global_size) // 16
    assert state["dense.weight"].shape == (1, c * h * w)
    for y in range(h):
        for x in range(w):
            for k in range(c):
                ours = state["dense.weight"][0, (k * h + y) * w + x]    # NCHW flatten (c, h, w)
                assert ours == kernel[(y * w + x) * c + k, 0]            # TF flatten (h, w, c)
    # the same features give the same logit: NHWC flatten . TF kernel == NCHW flatten . ours
    features = np.random.default_rng(2).standard_normal((c, h, w))
    np.testing.assert_allclose(features.reshape(-1) @ state["dense.weight"][0],
                               features.transpose(1, 2, 0).reshape(-1) @ kernel[:, 0])
    # conv1 sees RGB: its input channels are reversed, the others are not
    conv1 = tensors[f"discriminator/discriminator_{which}/conv1/kernel"]
    np.testing.assert_array_equal(state["conv1.weight"][:, 0], conv1[:, :, 2].transpose(2, 0, 1))
    np.testing.assert_array_equal(state["conv2.weight"],
                                  tensors[f"discriminator/discriminator_{which}/conv2/kernel"]
                                  .transpose(3, 2, 0, 1))


def test_critic_round_trip_is_exact():
    tensors = synthetic_release(local_size=48, global_size=64)       # 48 -> 3x3 features
    local, global_ = release_critic_states(tensors, 48, 64)
    back = critic_states_to_release(local, global_, 48, 64)
    assert sorted(back) == sorted(critic_release_names())
    for name, value in back.items():
        np.testing.assert_array_equal(value, tensors[name], err_msg=name)


def test_release_sizes_give_the_spec_dense_shapes():
    tensors = synthetic_release(critic_cnum=64, local_size=128, global_size=256)
    local, global_ = release_critic_states(tensors)                 # defaults 128, 256
    assert local["dense.weight"].shape == (1, 8 * 8 * 512)
    assert global_["dense.weight"].shape == (1, 16 * 16 * 256)


def test_wrong_critic_input_size_is_explained():
    tensors = synthetic_release(local_size=32, global_size=64)
    with pytest.raises(ReleaseMappingError, match="dout_local_fc.*critic input size"):
        release_critic_states(tensors, local_size=64, global_size=64)


def test_missing_variables_are_listed():
    tensors = synthetic_release()
    del tensors["inpaint_net/pmconv9/bias"]
    del tensors["inpaint_net/conv15_upsample/conv15_upsample_conv/kernel"]
    with pytest.raises(ReleaseMappingError, match="2 release variable.*conv15_upsample_conv/"
                                                  "kernel.*pmconv9/bias"):
        release_generator_state(tensors)
    del tensors["discriminator/dout_global_fc/bias"]
    with pytest.raises(ReleaseMappingError, match="global critic.*dout_global_fc/bias"):
        release_critic_states(tensors, 32, 64)


def test_bad_shapes_are_refused():
    tensors = synthetic_release()
    tensors["inpaint_net/conv3/kernel"] = tensors["inpaint_net/conv3/kernel"][0]
    with pytest.raises(ReleaseMappingError, match="conv3/kernel: expected a 4-d HWIO"):
        release_generator_state(tensors)
    tensors = synthetic_release()
    tensors["inpaint_net/conv3/bias"] = tensors["inpaint_net/conv3/bias"][:-1]
    with pytest.raises(ReleaseMappingError, match="conv3/bias: expected bias shape"):
        release_generator_state(tensors)


def test_deepfill_v2_style_gated_widths_are_refused():
    """v2 names match v1, but gated convs output twice what the next layer reads."""
    tensors = synthetic_release(cnum=4)
    for kind, axis in (("kernel", 3), ("bias", 0)):
        value = tensors[f"inpaint_net/conv1/{kind}"]
        tensors[f"inpaint_net/conv1/{kind}"] = np.concatenate([value, value], axis)
    with pytest.raises(ReleaseMappingError, match="DeepFill v2.*conv2_downsample has 4 input "
                                                  "channels, fed 8"):
        release_generator_state(tensors)


def test_reading_a_checkpoint_without_the_generator_names_fails_clearly():
    fixture = os.path.join(FIXTURES, "tf_checkpoint")  # a TF checkpoint, not the full release
    with pytest.raises(ReleaseMappingError, match="not a DeepFill v1 release.*inpaint_net/conv3/"):
        read_release_states(fixture)


@pytest.fixture(scope="module")
def tiny_expected():
    with np.load(os.path.join(TINY, "expected.npz")) as npz:
        return {name: npz[name] for name in npz.files}


def test_tensorflow_written_miniature_release(tiny_expected):
    states = read_release_states(TINY, critics=True, local_size=32, global_size=64)
    want = release_generator_state(tiny_expected)
    want_local, want_global = release_critic_states(tiny_expected, 32, 64)
    for got, expected in ((states["generator"], want), (states["local_critic"], want_local),
                          (states["global_critic"], want_global)):
        assert sorted(got) == sorted(expected)
        for name in expected:
            assert got[name].dtype == np.float32
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert states["generator"]["conv1.weight"].shape == (2, 5, 5, 5)
    assert states["local_critic"]["dense.weight"].shape == (1, 16 * 2 * 2)
    assert read_release_states(TINY, dtype=np.float64)["generator"]["conv9_atrous.weight"] \
        .dtype == np.float64


def test_optimizer_slots_and_counters_are_never_read(tmp_path):
    """Corrupting the Adam slot's bytes does not matter: only model variables are read."""
    copy = tmp_path / "tiny"
    shutil.copytree(TINY, copy)
    reader = CheckpointReader(copy)
    assert "inpaint_net/conv1/kernel/Adam" in reader and "global_step" in reader
    entry = reader._entries["inpaint_net/conv1/kernel/Adam"]
    data = copy / os.path.basename(reader.shard_path(0))
    raw = bytearray(data.read_bytes())
    raw[entry.offset] ^= 0xFF
    data.write_bytes(bytes(raw))
    read_release_states(copy, critics=True, local_size=32, global_size=64)
    with pytest.raises(ValueError, match="crc32c mismatch"):
        reader.get("inpaint_net/conv1/kernel/Adam")


def test_critic_feature_size_rounds_up_like_same_padding():
    """Four stride-2 SAME convs give ceil(n / 2) four times (spec §1): a 40 x 40 critic input
    has 40 -> 20 -> 10 -> 5 -> 3 features, so its dense kernel is (3 * 3 * c, 1), reordered
    from (h, w, c) to (c, h, w)."""
    tensors = synthetic_release(local_size=48, global_size=64)     # dense kernels for 3x3 and 4x4
    local, _ = release_critic_states(tensors, local_size=40, global_size=64)
    kernel = tensors["discriminator/dout_local_fc/kernel"]
    c = local["conv4.weight"].shape[0]
    assert local["dense.weight"].shape == (1, c * 3 * 3)
    for y in range(3):
        for x in range(3):
            for k in range(c):
                assert local["dense.weight"][0, (k * 3 + y) * 3 + x] == kernel[(y * 3 + x) * c + k, 0]
    with pytest.raises(ReleaseMappingError, match="positive int"):
        release_critic_states(tensors, local_size=0, global_size=64)


def test_decoder_input_must_be_both_branches_concatenated():
    """allconv11 is fed concat(hallucination branch, attention branch): a hallucination branch
    narrower than the decoder expects is refused even though every name is present."""
    tensors = synthetic_release(cnum=4)
    # xconv10_atrous: 4cnum -> 2cnum outputs; allconv11 still takes 8cnum = 32 inputs
    tensors["inpaint_net/xconv10_atrous/kernel"] = tensors["inpaint_net/xconv10_atrous/kernel"][..., :8]
    tensors["inpaint_net/xconv10_atrous/bias"] = tensors["inpaint_net/xconv10_atrous/bias"][:8]
    with pytest.raises(ReleaseMappingError, match="allconv11 has 32 input channels, fed 24"):
        release_generator_state(tensors)
