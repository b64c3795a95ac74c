"""TrainConfig checks: every field has its annotated type and a sensible range, and the
error names the field, the value and what was expected (TOML, flags and Python alike)."""
import math
from pathlib import Path

import numpy as np
import pytest

from inpainting.training.config import LossConfig, TrainConfig, dump_toml, load_config


def _toml(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize("text, message", [
    ('batch_size = "four"', "batch_size must be an integer, got 'four' (str)"),
    ("batch_size = 2.5", "batch_size must be an integer, got 2.5 (float)"),
    ("iterations = 1.5", "iterations must be an integer, got 1.5 (float)"),
    ("image_size = 32.0", "image_size must be an integer, got 32.0 (float); write 32, not 32.0"),
    ("cnum = true", "cnum must be an integer, got True (bool)"),
    ('min_crop_scale = "a"', "min_crop_scale must be a number, got 'a' (str)"),
    ('lr = "fast"', "lr must be a number, got 'fast' (str)"),
    ("lr = nan", "lr must be a finite number, got nan"),
    ("lr = inf", "lr must be a finite number, got inf"),
    ('random_flip = "false"', "random_flip must be true or false, got 'false' (str); write true "
                              "or false without quotes"),
    ("resize = 1", "resize must be true or false, got 1 (int)"),
    ('data = ["a", "b"]', "data must be a string, got ['a', 'b'] (list)"),
    ("mask = 3", "mask must be a string, got 3 (int)"),
    ("losses = 3", "losses must be a table"),
    ('[losses]\ngan_loss_alpha = "big"', "losses.gan_loss_alpha must be a number, got 'big' (str)"),
    ("[losses]\ngamma = true", "losses.gamma must be a number, got True (bool)"),
])
def test_wrong_types_in_toml_name_the_field_and_the_expected_type(tmp_path, text, message):
    path = _toml(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)


@pytest.mark.parametrize("values, message", [
    (dict(lr=-1), r"lr must be > 0 \(the learning rate\), got -1"),
    (dict(lr=0.0), "lr must be > 0"),
    (dict(lr=float("nan")), "lr must be a finite number, got nan"),
    (dict(beta1=1.0), r"beta1 must be in \[0, 1\), got 1.0"),
    (dict(beta2=-0.1), r"beta2 must be in \[0, 1\), got -0.1"),
    (dict(adam_eps=0), "adam_eps must be > 0, got 0"),
    (dict(seed=-1), "seed must be a non-negative integer, got -1"),
    (dict(max_delta=-3), "max_delta must be >= 0 .*got -3"),
    (dict(image_size=0), "image_size must be a multiple of 16 and >= 16, got 0"),
    (dict(batch_size=0), "batch_size must be >= 1, got 0"),
    (dict(bbox_size=24), r"bbox_size must be a multiple of 16 in \[16, image_size\], got 24"),
    (dict(bbox_size=512), r"bbox_size must be a multiple of 16 in \[16, image_size\], got 512"),
    (dict(bbox_size=32, max_delta=16), "max_delta 16 would shrink the 32 bbox to nothing"),
    (dict(mask="circle"), "mask must be 'bbox' or 'free_form', got 'circle'"),
    (dict(cnum=15), "cnum must be even, got 15"),
    (dict(batch_size=2.5), "batch_size must be an integer, got 2.5 .float."),
    (dict(iterations=True), "iterations must be an integer, got True .bool."),
    (dict(random_flip="false"), "random_flip must be true or false, got 'false' .str."),
    (dict(data=["a", "b"]), r"data must be a string, got \['a', 'b'\] .list."),
    (dict(losses=3), "losses must be a table of loss weights"),
    (dict(losses=LossConfig(gamma=-1)), r"losses.gamma must be in \(0, 1\] .*got -1"),
    (dict(losses=LossConfig(gamma=1.5)), r"losses.gamma must be in \(0, 1\]"),
    (dict(losses=LossConfig(l1_loss_alpha=-0.5)), "losses.l1_loss_alpha must be >= 0 .*-0.5"),
    (dict(losses=LossConfig(gan_loss_alpha="big")),
     "losses.gan_loss_alpha must be a number, got 'big' .str."),
    (dict(losses={"gama": 0.5}), r"unknown \[losses\] keys: \['gama'\]"),
])
def test_python_values_are_checked_by_validate(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**values).validate()


@pytest.mark.parametrize("overrides, message", [
    (dict(lr=float("nan")), "lr must be a finite number, got nan"),
    (dict(seed=-1), "seed must be a non-negative integer"),
    (dict(max_delta=-3), "max_delta must be >= 0"),
    ({"losses.gamma": -1.0}, "losses.gamma must be in"),
])
def test_overrides_and_command_line_flags_are_checked(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(**overrides)


def test_command_line_type_errors_are_one_line(tmp_path, capsys):
    from inpainting.app import cli

    path = _toml(tmp_path, 'random_flip = "false"')
    tiny = ["--data", str(tmp_path / "nowhere"), "--image-size", "32", "--bbox-size", "16",
            "--max-delta", "2", "--cnum", "4", "--critic-cnum", "4", "--iterations", "1",
            "--out-dir", str(tmp_path / "r"), "--quiet"]   # quick to fail if a check is lost
    assert cli.main(["train", "--config", str(path)] + tiny) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"inpainting train: error: {path}: random_flip must be true or false, got "
                     "'false' (str); write true or false without quotes")
    assert cli.main(["train", "--lr", "nan"] + tiny) == 2
    assert capsys.readouterr().err.strip().endswith("lr must be a finite number, got nan")
    assert not (tmp_path / "r").exists()


def test_good_values_still_load_and_are_stored_as_python_types(tmp_path):
    path = _toml(tmp_path, "lr = 1\nrandom_flip = true\n[losses]\ngamma = 1")
    config = load_config(path)
    assert config.lr == 1.0 and type(config.lr) is float and config.random_flip is True
    assert config.losses.gamma == 1.0
    assert load_config(_toml(tmp_path, dump_toml(config))) == config
    numpy_values = TrainConfig(batch_size=np.int64(4), lr=np.float32(0.5),
                               random_flip=np.bool_(True), out_dir=Path("runs/x")).validate()
    assert type(numpy_values.batch_size) is int and type(numpy_values.lr) is float
    assert numpy_values.random_flip is True and numpy_values.out_dir == "runs/x"
    assert math.isclose(numpy_values.lr, 0.5)
    assert TrainConfig(losses={"gamma": 0.5}).validate().losses == LossConfig(gamma=0.5)
    for name in ("data", "init_weights", "out_dir"):    # the release's defaults pass
        assert isinstance(getattr(TrainConfig().validate(), name), str)


def test_from_dict_checks_types_and_wants_a_table():
    with pytest.raises(ValueError, match="batch_size must be an integer, got 'four' .str."):
        TrainConfig.from_dict({"batch_size": "four"})
    with pytest.raises(ValueError, match="losses must be a table"):
        TrainConfig.from_dict({"losses": 3})
    with pytest.raises(ValueError, match="must be a table of settings, got"):
        TrainConfig.from_dict(["batch_size", 4])


@pytest.mark.parametrize("toml", sorted((Path(__file__).parents[1] / "inpainting" / "weights")
                                        .glob("*.toml")), ids=lambda p: p.name)
def test_the_shipped_configurations_pass_the_checks(toml):
    assert load_config(toml).image_size == 128


def test_a_file_that_is_not_toml_is_named(tmp_path):
    path = _toml(tmp_path, "batch_size = = 4")
    with pytest.raises(ValueError, match=f"{path} is not valid TOML: "):
        load_config(path)


# ------------------------------------------------------------------ release defaults, TOML text, precedence

def test_defaults_are_the_release_recipe():
    """TrainConfig() is the released recipe of spec §6 and the module docstring: 256 images,
    128 bbox shrunk by 0..16 per side, batch 16, Adam(1e-4, 0.5, 0.9), 5 critic steps, loss
    weights 1.2 / 1.2 / 0.001, gradient penalty 10, gamma 0.9, no flips, the newest 3
    checkpoints kept."""
    config = TrainConfig()
    expected = dict(data="demo", image_size=256, resize=False, random_flip=False,
                    min_crop_scale=0.0, batch_size=16, mask="bbox", bbox_size=128, max_delta=16,
                    per_sample_mask=False, lr=1e-4, beta1=0.5, beta2=0.9, critic_steps=5,
                    warmup_iterations=0, keep_checkpoints=3)
    for name, value in expected.items():
        assert getattr(config, name) == value, name
    assert config.losses == LossConfig(coarse_l1_alpha=1.2, l1_loss_alpha=1.2, ae_loss_alpha=1.2,
                                       gan_loss_alpha=0.001, wgan_gp_lambda=10.0, gamma=0.9)
    assert config.validate() == TrainConfig()


def test_dump_toml_escapes_backslashes_and_quotes(tmp_path):
    """dump_toml writes strings as TOML basic strings: a Windows path with backslashes and a
    quote reads back unchanged."""
    import tomllib

    tricky = 'C:\\new\\table "x"\\'
    config = TrainConfig(data=tricky, out_dir="runs\\b").validate()
    values = tomllib.loads(dump_toml(config))
    assert values["data"] == tricky and values["out_dir"] == "runs\\b"
    assert load_config(_toml(tmp_path, dump_toml(config))) == config


def test_unknown_keys_are_a_value_error_naming_them(tmp_path):
    """A misspelt setting is a ValueError listing it (from a dict or a TOML file), not a
    TypeError from the dataclass."""
    with pytest.raises(ValueError, match=r"unknown configuration keys: \['batch_sise'\]"):
        TrainConfig.from_dict({"batch_sise": 4})
    path = _toml(tmp_path, "batch_sise = 4")
    with pytest.raises(ValueError, match=r"run.toml: unknown configuration keys: \['batch_sise'\]"):
        load_config(path)


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path):
    """load_config precedence: keyword overrides > TOML file > defaults, field by field and
    inside [losses]; an override of None leaves the file's value."""
    path = _toml(tmp_path, "batch_size = 8\nseed = 4\n[losses]\ngamma = 0.5\nl1_loss_alpha = 2.0")
    config = load_config(path, seed=7, lr=None, **{"losses.gamma": 0.8})
    assert (config.batch_size, config.seed, config.lr) == (8, 7, 1e-4)
    assert (config.losses.gamma, config.losses.l1_loss_alpha, config.losses.ae_loss_alpha) == \
        (0.8, 2.0, 1.2)


def test_image_size_must_be_a_multiple_of_16_and_zero_weights_are_allowed():
    """validate: image_size 40 (a multiple of 8, not 16) is refused; a loss weight of 0 (a term
    switched off) is accepted, only negative weights are refused."""
    with pytest.raises(ValueError, match="image_size must be a multiple of 16 .critics., got 40"):
        TrainConfig(image_size=40, bbox_size=32, max_delta=4).validate()
    for name in ("coarse_l1_alpha", "l1_loss_alpha", "ae_loss_alpha", "gan_loss_alpha",
                 "wgan_gp_lambda"):
        assert getattr(TrainConfig(losses={name: 0.0}).validate().losses, name) == 0.0
