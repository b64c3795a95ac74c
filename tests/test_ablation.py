"""The attention ablation (``InpaintGenerator(attention=False)``) and the attention output
(``inpaint(..., return_attention=True)``): construction, forward, saving, training, errors."""
import json

import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from inpainting.model.attention_steps import contextual_attention_steps
from inpainting.training.config import TrainConfig, load_config
from inpainting.app.inpaint_files import inpaint_image
from inpainting.model.inference import InpaintResult, inpaint
from inpainting.weights.model_io import average_generators, load_generator, save_generator
from inpainting.model.networks import InpaintGenerator, gen_conv_table
from inpainting.training.train import Trainer

TINY = dict(image_size=32, bbox_size=16, max_delta=2, batch_size=2, cnum=4, critic_cnum=4,
            checkpoint_every=2, sample_every=1000, log_every=1)


def _inputs(size=32, n=1, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.uniform(-1, 1, (n, 3, size, size)).astype(np.float32)
    mask = np.zeros((1, 1, size, size), np.float32)
    mask[..., size // 4:size // 2 + 4, size // 4:size // 2] = 1
    return image, mask


def test_ablation_drops_exactly_the_attention_branch():
    """attention=False: no pmconv* parameter, allconv11 reads 4 cnum channels, every other
    parameter has the full model's name and shape."""
    full, ablated = InpaintGenerator(8), InpaintGenerator(8, attention=False)
    full_shapes = {k: v.shape for k, v in full.state_dict().items()}
    ablated_shapes = {k: v.shape for k, v in ablated.state_dict().items()}
    expected = {k: s for k, s in full_shapes.items() if not k.startswith("pmconv")}
    expected["allconv11.weight"] = (32, 32, 3, 3)
    assert ablated_shapes == expected
    assert full_shapes["allconv11.weight"] == (32, 64, 3, 3)
    removed = sum(int(np.prod(s)) for k, s in full_shapes.items() if k.startswith("pmconv"))
    assert full.num_parameters() - ablated.num_parameters() == removed + 32 * 32 * 9
    assert [row[0] for row in gen_conv_table(8, attention=False)] == \
        [row[0] for row in gen_conv_table(8) if not row[0].startswith("pmconv")]
    with pytest.raises(TypeError, match="attention must be True or False"):
        InpaintGenerator(4, attention="no")


def test_ablation_forward_is_the_coarse_net_then_the_hallucination_branch_and_decoder():
    """A plain layer-by-layer reference: x1 is the full model's coarse result (same weights),
    x2 = clip(decoder(hallucination(concat[pasted, ones, mask]))), offsets None."""
    full = InpaintGenerator(4, rng=np.random.default_rng(1))
    ablated = InpaintGenerator(4, attention=False, rng=np.random.default_rng(2))
    shared = {k: v for k, v in full.state_dict().items()
              if not k.startswith("pmconv") and k != "allconv11.weight"}
    ablated.load_state_dict({**ablated.state_dict(), **shared})
    image, mask = _inputs()
    x = image * (1 - mask)
    with nnlite.no_grad():
        x1, x2, offsets = ablated(x, mask)
        full_x1 = full(x, mask)[0]
    assert offsets is None
    np.testing.assert_array_equal(x1.data, full_x1.data)

    def layer(name, h):
        conv = getattr(ablated, name)
        if name.endswith("_upsample"):
            h = np.repeat(np.repeat(h, 2, axis=2), 2, axis=3)
        out = F.conv2d(nnlite.Tensor(h), conv.weight, conv.bias, stride=conv.stride,
                       padding="same", dilation=conv.dilation).data
        return out if name == "allconv17" else np.where(out > 0, out, np.expm1(out))

    pasted = x1.data * mask + x * (1 - mask)
    h = np.concatenate([pasted, np.ones_like(mask), mask], axis=1)
    for name, *_ in gen_conv_table(4, attention=False)[17:]:
        h = layer(name, h)
    np.testing.assert_allclose(x2.data, np.clip(h, -1, 1), atol=1e-5)


def test_ablation_trains_saves_loads_and_averages(tmp_path):
    """A training step runs for both architectures; the flag survives save/load (and the
    averaging of checkpoints); a file without the flag is the full model."""
    for attention in (True, False):
        trainer = Trainer(TrainConfig(out_dir=str(tmp_path / str(attention)), attention=attention,
                                      **TINY))
        before = {k: v.copy() for k, v in trainer.generator.state_dict().items()}
        trainer.iteration()
        after = trainer.generator.state_dict()
        assert [k for k in before if np.array_equal(before[k], after[k])] == []
        assert trainer.generator.attention is attention
        path = save_generator(tmp_path / f"g{attention}.npz", trainer.generator, image_size=32)
        loaded = load_generator(path)
        assert loaded.attention is attention and loaded.meta["attention"] is attention
        for name, value in after.items():
            np.testing.assert_array_equal(loaded.state_dict()[name], value)
        checkpoint = trainer.save_checkpoint()
        assert load_generator(checkpoint).attention is attention
    assert average_generators([tmp_path / "gFalse.npz"] * 2).attention is False
    with pytest.raises(ValueError, match="attention=True.*attention=False"):
        average_generators([tmp_path / "gTrue.npz", tmp_path / "gFalse.npz"])
    tree = nnlite.load(tmp_path / "gTrue.npz")
    tree["meta"] = np.asarray(json.dumps({"image_size": 32}))       # written before the flag
    nnlite.save(tmp_path / "old.npz", tree)
    assert load_generator(tmp_path / "old.npz").attention is True
    tree["meta"] = np.asarray(json.dumps({"attention": "no"}))
    nnlite.save(tmp_path / "bad.npz", tree)
    with pytest.raises(ValueError, match="attention must be true or false"):
        load_generator(tmp_path / "bad.npz")


def test_no_attention_from_toml_and_command_line(tmp_path):
    from inpainting.app import cli

    (tmp_path / "a.toml").write_text("attention = false\n")
    assert load_config(tmp_path / "a.toml").attention is False
    assert load_config().attention is True
    seen = {}

    class Stop(Exception):
        pass

    class Capturing(Trainer):        # given to cli.main: no library code is replaced
        def __init__(self, config, dataset=None):
            seen["attention"] = config.attention
            raise Stop

    for argv, expected in ((["--no-attention"], False), ([], True)):
        with pytest.raises(Stop):
            cli.main(["train", "--out-dir", str(tmp_path / "run"), *argv],
                     trainer_class=Capturing)
        assert seen["attention"] is expected


def test_resuming_or_fine_tuning_across_architectures_is_refused(tmp_path):
    trainer = Trainer(TrainConfig(out_dir=str(tmp_path / "run"), **TINY))
    trainer.save_checkpoint()
    other = Trainer(TrainConfig(out_dir=str(tmp_path / "run"), attention=False, **TINY))
    with pytest.raises(ValueError, match="attention=True.*this run has attention=False.*"
                                         "no --no-attention"):
        other.resume()
    path = save_generator(tmp_path / "g.npz", trainer.generator)
    with pytest.raises(ValueError, match="attention=True, but this run has attention=False"):
        Trainer(TrainConfig(out_dir=str(tmp_path / "ft"), attention=False, init_weights=str(path),
                            **TINY))


def test_attention_output_is_the_layers_softmax_on_the_offsets_grid():
    """result.attention[n, i, j, y, x] = A[n, i*w + j, y*w + x] of the staged layer run on the
    generator's own features; its argmax is the offsets; invalid cells get weight 0; the
    chunked mode returns the same; InpaintResult keeps its field order."""
    assert InpaintResult._fields == ("output", "coarse", "refined", "offsets", "attention")
    generator = InpaintGenerator(4, rng=np.random.default_rng(3))
    image, mask = _inputs(64, n=2)
    result = inpaint(generator, image, mask, return_attention=True)
    assert inpaint(generator, image, mask).attention is None
    h = w = 8
    assert result.attention.shape == (2, h, w, h, w)

    # the attention layer's input, rebuilt from the generator's named stages (spec §2)
    with nnlite.no_grad():
        x, m = nnlite.Tensor(image * (1 - mask)), nnlite.Tensor(mask)
        ones = nnlite.Tensor(np.ones((2, 1, 64, 64), np.float32))
        hole = F.broadcast_to(m, ones.shape)
        x1 = F.clip(generator.run_stage("coarse", F.concat([x, ones, hole], axis=1)), -1, 1)
        xnow = F.concat([x1 * m + x * (1 - m), ones, hole], axis=1)
        pm = generator.run_stage("attention_encoder", xnow)
        mask_small = F.interpolate_nearest(m, size=pm.shape[2:], align_corners=True)
    captured = {"args": (pm, pm, mask_small)}
    steps = contextual_attention_steps(*captured["args"], rate=2)
    np.testing.assert_allclose(result.attention.reshape(2, h * w, h * w),
                               steps.attention.data, atol=1e-6)
    flat = result.attention.reshape(2, h * w, h * w)
    best = flat.argmax(axis=-1)
    position = np.arange(h * w)
    np.testing.assert_array_equal(result.offsets, np.stack(
        [best // w - position // w, best % w - position % w], axis=1).reshape(2, 2, h, w))
    from inpainting.evaluation.metrics import valid_attention_cells
    valid = valid_attention_cells(mask[0])
    assert 0 < valid.sum() < h * w
    assert np.all(flat[..., ~valid] == 0) and np.all(flat[..., valid].sum(axis=-1) > 0.5)
    assert np.all(flat.sum(axis=-1) <= 1 + 1e-5)
    chunked = inpaint(generator, image, mask, return_attention=True, attention_memory=2**18)
    np.testing.assert_allclose(chunked.attention, result.attention, atol=1e-6)


def test_attention_requests_on_the_ablation_are_clear_errors(tmp_path):
    from PIL import Image

    ablated = InpaintGenerator(4, attention=False)
    image, mask = _inputs()
    result = inpaint(ablated, image, mask)
    assert result.offsets is None and result.attention is None
    with pytest.raises(ValueError, match="return_attention=True.*attention=False"):
        inpaint(ablated, image, mask, return_attention=True)
    with pytest.raises(ValueError, match="return_attention=True needs the attention branch"):
        ablated(image, mask, return_attention=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "i.png")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match="attention=False and has no attention map"):
        inpaint_image(tmp_path / "i.png", tmp_path / "m.png", tmp_path / "o.png", weights=ablated,
                      attention_path=tmp_path / "a.png")
    assert not (tmp_path / "o.png").exists()


def test_figures_show_a_gray_panel_without_attention(tmp_path):
    from inpainting.training.viz import sample_grid

    image, mask = _inputs()
    result = inpaint(InpaintGenerator(4, attention=False), image, mask)
    grid = sample_grid(image, mask, result.coarse, result.output, None)
    assert grid.shape == (32, 160, 3)
    assert np.all(grid[:, 96:128] == 128)


def test_knockout_equals_a_generator_whose_last_attention_conv_outputs_zero():
    """knockout_attention zeroes the attention branch's features before the decoder: the
    same as zeroing the weights and bias of the branch's last conv (ELU(0) = 0), while the
    coarse output and the offsets are those of the untouched model."""
    generator = InpaintGenerator(4, rng=np.random.default_rng(5))
    image, mask = _inputs(seed=3)
    probe = inpaint(generator, image, mask, knockout_attention=True)
    normal = inpaint(generator, image, mask)
    last = gen_conv_table(4, True)[34][0]          # the branch's last conv, before the concat
    assert last.startswith("pmconv")
    zeroed = InpaintGenerator(4, rng=np.random.default_rng(5))
    layer = getattr(zeroed, last)
    layer.weight.data[...] = 0
    layer.bias.data[...] = 0
    expected = inpaint(zeroed, image, mask)
    np.testing.assert_allclose(probe.output, expected.output, atol=1e-6)
    np.testing.assert_array_equal(probe.coarse, normal.coarse)
    np.testing.assert_array_equal(probe.offsets, normal.offsets)
    assert np.abs(probe.output - normal.output).max() > 1e-3     # the branch mattered
    hole = mask[0, 0] > 0.5
    np.testing.assert_array_equal(probe.output[..., ~hole], image[..., ~hole])


def test_knockout_on_the_ablation_is_a_clear_error():
    ablated = InpaintGenerator(4, attention=False)
    image, mask = _inputs()
    with pytest.raises(ValueError, match="knockout_attention=True.*attention=False"):
        inpaint(ablated, image, mask, knockout_attention=True)
    with pytest.raises(ValueError, match="knockout_attention=True needs the attention branch"):
        ablated(image, mask, knockout_attention=True)
