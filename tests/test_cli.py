"""The command line: inpaint (file and folder), evaluate, convert-release, demo, errors."""
import os

import numpy as np
import pytest
from PIL import Image

from inpainting.app import cli
from inpainting.weights.model_io import SHIPPED_MODEL, load_generator, save_generator
from inpainting.model.networks import InpaintGenerator

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    save_generator(path, InpaintGenerator(4, rng=np.random.default_rng(0)), image_size=32)
    return path


def _write_pair(folder, stem, size=(30, 44)):
    rng = np.random.default_rng(len(stem))
    image = rng.integers(0, 256, size + (3,), dtype=np.uint8)
    mask = np.zeros(size, np.uint8)
    mask[8:20, 10:30] = 255
    Image.fromarray(image).save(folder / f"{stem}.png")
    Image.fromarray(mask).save(folder / f"{stem}_mask.png")
    return image, mask


def test_inpaint_one_file_keeps_known_pixels_and_writes_extras(tmp_path, tiny_model):
    image, mask = _write_pair(tmp_path, "photo")
    out = tmp_path / "out.png"
    code = cli.main(["inpaint", str(tmp_path / "photo.png"), str(tmp_path / "photo_mask.png"),
                     "-o", str(out), "--weights", str(tiny_model),
                     "--coarse", str(tmp_path / "coarse.png"),
                     "--attention", str(tmp_path / "attention.png")])
    assert code == 0
    result = np.asarray(Image.open(out))
    assert result.shape == image.shape
    known = mask == 0
    # known pixels survive the [-1, 1] round trip up to the release's truncation (<= 1 level)
    assert np.abs(result[known].astype(int) - image[known].astype(int)).max() <= 1
    assert Image.open(tmp_path / "coarse.png").size == (44, 30)
    assert Image.open(tmp_path / "attention.png").size == (44, 30)


def test_inpaint_border_crop_writes_the_release_size(tmp_path, tiny_model):
    """--border crop: a 30x44 image comes out 24x40 (the release's crop to multiples of 8),
    as do the coarse result and the attention map."""
    image, _ = _write_pair(tmp_path, "photo")
    out = tmp_path / "out.png"
    assert cli.main(["inpaint", str(tmp_path / "photo.png"), str(tmp_path / "photo_mask.png"),
                     "-o", str(out), "--weights", str(tiny_model), "--border", "crop",
                     "--coarse", str(tmp_path / "coarse.png"),
                     "--attention", str(tmp_path / "attention.png")]) == 0
    for name in ("out.png", "coarse.png", "attention.png"):
        assert Image.open(tmp_path / name).size == (40, 24), name


def test_inpaint_image_is_the_python_form_of_the_command(tmp_path, tiny_model):
    """inpainting.inpaint_image(files) writes what `inpainting inpaint` writes, accepts a
    loaded generator or a path, and names both sizes when the mask does not fit."""
    from inpainting import inpaint_image

    image, mask = _write_pair(tmp_path, "photo")
    assert cli.main(["inpaint", str(tmp_path / "photo.png"), str(tmp_path / "photo_mask.png"),
                     "-o", str(tmp_path / "cli.png"), "--weights", str(tiny_model)]) == 0
    result = inpaint_image(tmp_path / "photo.png", tmp_path / "photo_mask.png",
                           tmp_path / "api.png", weights=str(tiny_model),
                           coarse_path=tmp_path / "coarse.png",
                           attention_path=tmp_path / "attention.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "api.png")),
                                  np.asarray(Image.open(tmp_path / "cli.png")))
    assert result.output.shape == (1, 3, 30, 44)
    assert np.asarray(Image.open(tmp_path / "attention.png")).shape == (30, 44, 3)
    generator = load_generator(tiny_model)
    inpaint_image(tmp_path / "photo.png", tmp_path / "photo_mask.png", tmp_path / "again.png",
                  weights=generator)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again.png")),
                                  np.asarray(Image.open(tmp_path / "cli.png")))
    Image.fromarray(mask[:, :40]).save(tmp_path / "narrow_mask.png")
    with pytest.raises(ValueError, match=r"30x40.*30x44|\(30, 40\).*\(30, 44\)"):
        inpaint_image(tmp_path / "photo.png", tmp_path / "narrow_mask.png",
                      tmp_path / "bad.png", weights=generator)


def test_attention_memory_gives_the_same_picture_and_rejects_bad_budgets(tmp_path, tiny_model,
                                                                         capsys):
    _write_pair(tmp_path, "photo", size=(64, 64))
    args = ["inpaint", str(tmp_path / "photo.png"), str(tmp_path / "photo_mask.png"),
            "--weights", str(tiny_model)]
    assert cli.main(args + ["-o", str(tmp_path / "direct.png")]) == 0
    # 64x64 image: attention features 16x16, rate 2 -> L = 64; 50 KiB holds 5-row chunks
    from inpainting.model.attention import chunk_size_for_memory
    assert chunk_size_for_memory(50 * 1024, 16, 16) == 5
    assert cli.main(args + ["-o", str(tmp_path / "chunked.png"),
                            "--attention-memory", str(50 / 2**20)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "direct.png")),
                                  np.asarray(Image.open(tmp_path / "chunked.png")))
    capsys.readouterr()
    for budget, expected in (("0", "positive"), ("1e-9", "cannot hold even one chunk")):
        code = cli.main(args + ["-o", str(tmp_path / "x.png"), "--attention-memory", budget])
        error = capsys.readouterr().err
        assert code == 2 and expected in error and len(error.strip().splitlines()) == 1


def test_inpaint_a_folder(tmp_path, tiny_model):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir()
    masks.mkdir()
    for stem in ("a", "b"):
        _write_pair(images, stem)
        os.replace(images / f"{stem}_mask.png", masks / f"{stem}.png")
    assert cli.main(["inpaint", str(images), str(masks), "-o", str(out),
                     "--weights", str(tiny_model)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]


def test_size_mismatch_and_missing_files_are_one_line_errors(tmp_path, tiny_model, capsys):
    _write_pair(tmp_path, "photo", size=(30, 44))
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "small_mask.png")
    code = cli.main(["inpaint", str(tmp_path / "photo.png"), str(tmp_path / "small_mask.png"),
                     "-o", str(tmp_path / "o.png"), "--weights", str(tiny_model)])
    error = capsys.readouterr().err
    assert code == 2 and "16" in error and "44" in error and len(error.strip().splitlines()) == 1
    code = cli.main(["inpaint", str(tmp_path / "missing.png"), str(tmp_path / "small_mask.png"),
                     "-o", str(tmp_path / "o.png"), "--weights", str(tiny_model)])
    assert code == 2 and "missing.png" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    code = cli.main(["inpaint", str(tmp_path / "photo.png"), str(tmp_path / "photo_mask.png"),
                     "-o", str(tmp_path / "o.png"), "--weights", str(bad)])
    assert code == 2 and "bad.npz" in capsys.readouterr().err


def _fails_with(capsys, argv, *fragments):
    """The command exits 2 with one line on stderr holding every fragment."""
    code = cli.main([str(a) for a in argv])
    error = capsys.readouterr().err.strip()
    assert code == 2, (argv, error)
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    for fragment in fragments:
        assert fragment in error, (fragment, error)


def test_folder_mistakes_are_named_before_anything_is_overwritten(tmp_path, tiny_model, capsys):
    """Two images with one stem would write one result over the other; a non-image file with
    a mask's stem must not hide the mask; extras folders are created like -o; -o that is a
    file is refused."""
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir()
    masks.mkdir()
    _write_pair(images, "a")
    os.replace(images / "a_mask.png", masks / "a.png")
    (masks / "a.json").write_text("{}")                       # not an image: ignored
    weights = ["--weights", tiny_model]
    assert cli.main(["inpaint", str(images), str(masks), "-o", str(out), "--attention",
                     str(tmp_path / "att"), "--coarse", str(tmp_path / "coarse"),
                     "--weights", str(tiny_model)]) == 0
    assert (tmp_path / "att" / "a.png").is_file() and (tmp_path / "coarse" / "a.png").is_file()
    Image.open(images / "a.png").save(images / "a.jpg")
    before = (out / "a.png").read_bytes()
    _fails_with(capsys, ["inpaint", images, masks, "-o", out, *weights], "a.jpg and a.png",
                "each stem must appear once")
    assert (out / "a.png").read_bytes() == before
    (images / "a.jpg").unlink()
    _fails_with(capsys, ["inpaint", images, masks, "-o", images / "a.png", *weights],
                "-o", "is a file")


def test_bad_values_and_files_are_one_line_errors(tmp_path, tiny_model, capsys):
    _write_pair(tmp_path, "photo")
    pair = [tmp_path / "photo.png", tmp_path / "photo_mask.png"]
    weights = ["--weights", tiny_model]
    _fails_with(capsys, ["inpaint", *pair, "-o", tmp_path / "o.png", "--attention-memory", "inf",
                         *weights], "--attention-memory", "finite")
    _fails_with(capsys, ["inpaint", *pair, "-o", tmp_path / "nowhere" / "o.png", *weights],
                "nowhere does not exist")
    _fails_with(capsys, ["demo", "--image", "nonexistent", "--out", tmp_path / "d.png"],
                "astronaut, coffee", "'nonexistent'")
    _fails_with(capsys, ["demo", "--size", "0", "--out", tmp_path / "d.png"], "--size", "got 0")
    _fails_with(capsys, ["evaluate", "--size", "36", "--baselines-only"], "multiple of 8")
    _fails_with(capsys, ["evaluate", "--size", "32", "--crops-per-image", "0",
                         "--baselines-only"], "--crops-per-image", "got 0")
    _fails_with(capsys, ["evaluate", "--size", "32", "--out", tmp_path / "t.xlsx",
                         "--baselines-only"], "t.xlsx", ".md", ".csv")
    (tmp_path / "weights.txt").write_text("hello")
    _fails_with(capsys, ["inpaint", *pair, "-o", tmp_path / "o.png", "--weights",
                         tmp_path / "weights.txt"], "weights.txt", "not an .npz archive")
    assert "pickle" not in capsys.readouterr().err
    _fails_with(capsys, ["train", "--out-dir", tmp_path / "photo.png", "--iterations", "1"],
                "--out-dir", "is a file")


def test_load_generator_reads_checkpoints_and_bare_weight_files(tmp_path):
    """A training checkpoint (cnum and image size from its config) and a file holding only
    ``{"generator": state_dict}`` (cnum from conv1's output channels) load the same weights."""
    import nnlite
    from inpainting.training.config import TrainConfig
    from inpainting.training.train import Trainer

    config = TrainConfig(out_dir=str(tmp_path / "run"), image_size=32, bbox_size=16,
                         max_delta=2, batch_size=2, cnum=4, critic_cnum=4)
    trainer = Trainer(config)
    checkpoint = trainer.save_checkpoint()
    bare = tmp_path / "bare.npz"
    nnlite.save(bare, {"generator": trainer.generator.state_dict()})
    for path, meta in ((checkpoint, {"image_size": 32, "attention": True}),
                       (bare, {"attention": True})):
        generator = load_generator(path)
        assert generator.cnum == 4 and generator.meta == meta
        for name, value in trainer.generator.state_dict().items():
            np.testing.assert_array_equal(generator.state_dict()[name], value, err_msg=name)


def test_broken_model_files_are_named(tmp_path, tiny_model):
    """NaN weights, integer weights, unreadable meta, a cnum that contradicts the weights: each a
    CheckpointError naming the file and the problem (not a to_uint8 or JSON error later)."""
    import nnlite
    from inpainting.weights.checkpoint import CheckpointError

    tree = nnlite.load(tiny_model)
    cases = {
        "nan": ({**tree, "generator": {**tree["generator"], "conv2_downsample.bias":
                                       np.full_like(tree["generator"]["conv2_downsample.bias"],
                                                    np.nan)}}, "conv2_downsample.bias holds NaN"),
        "ints": ({**tree, "generator": {**tree["generator"], "conv1.bias":
                                        tree["generator"]["conv1.bias"].astype(np.int32)}},
                 "conv1.bias has dtype int32"),
        "meta": ({**tree, "meta": np.asarray("{not json")}, "'meta'"),
        "cnum": ({**tree, "cnum": np.asarray(8)}, "says cnum=8 but its conv1 weight has 4"),
    }
    for name, (broken, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        nnlite.save(path, broken)
        with pytest.raises(CheckpointError, match=message) as info:
            load_generator(path)
        assert f"{name}.npz" in str(info.value)


def test_inpaint_rejects_inputs_it_would_fill_with_nonsense(tiny_model):
    from inpainting import inpaint

    g = load_generator(tiny_model)
    image = np.zeros((3, 32, 32), np.float32)
    mask = np.zeros((1, 32, 32), np.float32)
    mask[:, 8:16, 8:16] = 1
    bad = image.copy()
    bad[0, 10, 10] = np.nan
    for args, message in [((g, bad, mask), "image holds NaN"),
                          ((g, image.astype(np.uint8), mask), "floats in \\[-1, 1\\].*uint8"),
                          ((g, image + 200, mask), "must be in \\[-1, 1\\], got \\[200, 200\\]"),
                          ((str(tiny_model), image, mask), "InpaintGenerator.*got str"),
                          ((g, image.tolist(), mask), "image must be a NumPy/CuPy array")]:
        with pytest.raises(ValueError, match=message):
            inpaint(*args)
    with pytest.raises(ValueError, match="attention_memory must be a positive, finite"):
        inpaint(g, image, mask, attention_memory="1GB")
    from inpainting import inpaint_image
    with pytest.raises(ValueError, match="mask_path must be a file path .* got NoneType"):
        inpaint_image("photo.png", None, "out.png", weights=g)
    from inpainting.training.config import load_config
    with pytest.raises(ValueError, match="is a folder; --config takes a TOML file"):
        load_config(tiny_model.parent)
    assert inpaint(g, image.astype(np.float64), mask).output.shape == (1, 3, 32, 32)
    assert inpaint(g, image, mask, attention_memory=np.int64(2**20)).output.shape[2:] == (32, 32)


def test_evaluate_writes_markdown(tmp_path, tiny_model, capsys):
    """--out results.md: the settings, the summary table and the paired table in one file,
    the summary's model row equal to the mean of the printed per-crop rows."""
    folder = tmp_path / "eval"
    folder.mkdir()
    for stem in ("x", "yy"):                 # different stem lengths: different images
        _write_pair(folder, stem, size=(40, 40))
        os.remove(folder / f"{stem}_mask.png")
    md = tmp_path / "table.md"
    assert cli.main(["evaluate", "--data", str(folder), "--size", "32", "--weights",
                     str(tiny_model), "--baselines", "mean,biharmonic", "--out", str(md),
                     "--per-image", "--bootstrap", "100"]) == 0
    text = md.read_text()
    assert text.startswith("Settings: data = ") and "size = 32" in text
    for method in ("| model | centre |", "| mean | centre |", "| biharmonic | centre |",
                   "| centre | mean | l1_hole |"):
        assert method in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if ".png" in line]
    model_l1 = [float(row[9]) for row in rows if row[8].strip() == "model"]
    assert len(rows) == 2 * 2 * 3 and len(model_l1) == 4
    summary = next(line for line in text.splitlines() if line.startswith("| model | centre"))
    assert float(summary.split("|")[3]) == pytest.approx(np.mean(model_l1), abs=2e-3)


def test_train_flags_reach_the_configuration(tmp_path, tiny_model, capsys):
    """Every ``inpainting train`` flag overrides its TrainConfig field (none silently ignored)."""
    import json

    from inpainting.training.config import TrainConfig

    fields = set(TrainConfig.__dataclass_fields__)
    assert {flag.replace("-", "_") for flag, _ in cli.TRAIN_FLAGS} <= fields
    run = tmp_path / "run"
    args = ["train", "--data", "demo", "--image-size", "32", "--bbox-size", "16",
            "--max-delta", "2", "--batch-size", "2", "--cnum", "4", "--critic-cnum", "4",
            "--iterations", "2", "--warmup-iterations", "1", "--log-every", "1",
            "--checkpoint-every", "5", "--sample-every", "100", "--lr", "0.0002",
            "--seed", "3", "--mask", "bbox", "--init-weights", str(tiny_model),
            "--out-dir", str(run), "--quiet"]
    assert cli.main(args) == 0
    written = (run / "config.toml").read_text()
    for line in ("image_size = 32", "bbox_size = 16", "max_delta = 2", "batch_size = 2",
                 "cnum = 4", "critic_cnum = 4", "iterations = 2", "warmup_iterations = 1",
                 "log_every = 1", "checkpoint_every = 5", "sample_every = 100", "lr = 0.0002",
                 "seed = 3", f'init_weights = "{tiny_model}"'):
        assert line in written.splitlines(), line
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "d_loss" not in log[0] and "d_loss" in log[1]          # one warm-up step, then GAN
    capsys.readouterr()
    code = cli.main(args[:-5] + ["--init-weights", str(tmp_path / "missing.npz"),
                                 "--out-dir", str(tmp_path / "run2"), "--quiet"])
    error = capsys.readouterr().err
    assert code == 2 and "missing.npz" in error and len(error.strip().splitlines()) == 1


def test_convert_release_round_trip(tmp_path):
    out = tmp_path / "release.npz"
    assert cli.main(["convert-release", os.path.join(FIXTURES, "tf_release_tiny"),
                     str(out)]) == 0
    generator = load_generator(out)
    direct = load_generator(os.path.join(FIXTURES, "tf_release_tiny"))
    for (name, a), (_, b) in zip(generator.named_parameters(), direct.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    # a released checkpoint trains at 256x256: that is what its meta says (and where it came from)
    assert direct.meta == {"image_size": 256, "source": os.path.join(FIXTURES, "tf_release_tiny")}


@pytest.mark.skipif(not SHIPPED_MODEL.is_file(), reason="the shipped model is not installed")
def test_demo_runs_on_the_bundled_defaults(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "--out", str(out)]) == 0
    assert out.is_file() and Image.open(out).size[0] > 400
    assert "PSNR in hole" in capsys.readouterr().out


@pytest.mark.skipif(not SHIPPED_MODEL.is_file(), reason="the shipped model is not installed")
def test_the_shipped_model_records_the_configurations_that_made_it():
    """The two TOML files next to the shipped weights are the recipe its meta records (paths
    aside: stage 2 ran with init_weights on a copy of stage 1's output, elsewhere), and the
    weights are the mean of the 11 stage-2 checkpoints the meta lists."""
    import ast
    import dataclasses

    from inpainting.training.config import TrainConfig, load_config

    meta = load_generator(SHIPPED_MODEL).meta
    weights = SHIPPED_MODEL.parent
    for toml, recorded in [("demo_cnum16.toml", meta["stage1_config"]),
                           ("demo_cnum16_finetune.toml", meta["config"])]:
        expected = dataclasses.asdict(load_config(weights / toml))
        recorded = recorded if isinstance(recorded, dict) else ast.literal_eval(recorded)
        defaults = dataclasses.asdict(TrainConfig())      # fields added after the run
        differing = {key for key in expected if expected[key] != recorded.get(key, defaults[key])}
        assert differing <= {"init_weights", "out_dir"}, (toml, differing)
    assert "demo_cnum16_finetune.toml" in meta["command"]
    assert "average-weights" in meta["command"]
    assert int(meta["step"]) == 4600 and int(meta["image_size"]) == 128
    assert meta["averaged_from"] == [f"runs/demo_cnum16_finetune/checkpoints/step_{step:07d}.npz"
                                     for step in range(2600, 4601, 200)]


def test_average_weights_is_the_parameter_wise_mean(tmp_path, capsys):
    """Three generators -> every parameter is (a + b + c) / 3, entry by entry; the CLI writes it
    as a model file that records its sources; one generator averages to itself."""
    from inpainting.weights.model_io import average_generators

    paths = []
    for seed in range(3):
        paths.append(save_generator(tmp_path / f"g{seed}.npz",
                                    InpaintGenerator(4, rng=np.random.default_rng(seed)),
                                    image_size=32))
    states = [load_generator(p).state_dict() for p in paths]
    out = tmp_path / "mean.npz"
    assert cli.main(["average-weights", *map(str, paths), "-o", str(out)]) == 0
    assert "averaged 3 generators" in capsys.readouterr().out
    average = load_generator(out)
    for name, value in average.state_dict().items():
        expected = (states[0][name].astype(np.float64) + states[1][name] + states[2][name]) / 3
        np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-7, err_msg=name)
    assert average.meta["averaged_from"] == [str(p) for p in paths]
    assert average.meta["image_size"] == 32
    alone = average_generators([paths[0]])
    for name, value in alone.state_dict().items():
        np.testing.assert_array_equal(value, states[0][name])


def test_average_weights_refuses_mixed_widths_and_nothing(tmp_path, tiny_model, capsys):
    from inpainting.weights.model_io import average_generators

    wide = save_generator(tmp_path / "wide.npz", InpaintGenerator(6, rng=np.random.default_rng(1)))
    code = cli.main(["average-weights", str(tiny_model), str(wide), "-o", str(tmp_path / "x.npz")])
    error = capsys.readouterr().err
    assert code == 2 and "different widths" in error and "cnum=4" in error and "cnum=6" in error
    assert not (tmp_path / "x.npz").exists()
    assert cli.main(["average-weights", str(tmp_path / "missing.npz"), "-o",
                     str(tmp_path / "y.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least one"):
        average_generators([])
    with pytest.raises(ValueError, match="takes a list .* got a single str"):
        average_generators(str(tiny_model))


def test_every_command_has_help(capsys):
    for command in ("demo", "inpaint", "train", "evaluate", "convert-release", "average-weights"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: inpainting " + command in capsys.readouterr().out


# ----------------------------------------------------------------------------- exit codes, flag precedence, checkpoints, tables, figures

def test_train_exit_codes_for_a_finished_run_and_ctrl_c(tmp_path, monkeypatch, capsys):
    """``inpainting train``: re-running a finished run (NothingToTrain) exits 0 with one line;
    Ctrl-C during the run exits 130 (the shell's SIGINT status)."""
    import inpainting.training.train as train_module

    raised = {}

    class FakeTrainer:
        def __init__(self, config):
            self.config = config

        def run(self, progress=True):
            raise raised["error"]

    args = ["train", "--data", "demo", "--out-dir", str(tmp_path / "run"), "--quiet"]
    raised["error"] = train_module.NothingToTrain("the run is already at step 5")
    assert cli.main(args, trainer_class=FakeTrainer) == 0
    assert "inpainting train: the run is already at step 5" in capsys.readouterr().out
    raised["error"] = KeyboardInterrupt()
    assert cli.main(args, trainer_class=FakeTrainer) == 130


def test_train_flags_not_given_leave_the_files_values(tmp_path, monkeypatch, capsys):
    """Precedence on the command line: a flag overrides the --config file, and a flag not given
    (--device included) leaves the file's value instead of a parser default."""
    class Reporting:           # the trainer class receives the configuration the CLI built
        def __init__(self, config):
            raise ValueError(f"device={config.device} batch={config.batch_size} "
                             f"seed={config.seed}")

    path = tmp_path / "run.toml"
    path.write_text('device = "cuda"\nbatch_size = 8\nseed = 4\n')
    assert cli.main(["train", "--config", str(path), "--seed", "9"],
                    trainer_class=Reporting) == 2
    assert capsys.readouterr().err.strip().endswith("device=cuda batch=8 seed=9")


def test_checkpoints_sort_by_step_number_and_need_a_step_entry(tmp_path):
    """checkpoint.save keeps the newest ``keep`` (keep=1 included) by step NUMBER (step
    10,000,000 is newer than 9,999,999 although its name sorts first); load refuses a file
    without 'step'."""
    import nnlite
    from inpainting.weights import checkpoint

    for step in (9_999_998, 9_999_999, 10_000_000):
        checkpoint.save(tmp_path, step, {"step": np.asarray(step)}, keep=2)
    checkpoint.save(tmp_path / "one", 5, {"step": np.asarray(5)}, keep=1)
    checkpoint.save(tmp_path / "one", 6, {"step": np.asarray(6)}, keep=1)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "one")] == ["step_0000006.npz"]
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == \
        ["step_9999999.npz", "step_10000000.npz"]
    assert checkpoint.latest(tmp_path).name == "step_10000000.npz"
    assert int(checkpoint.load(checkpoint.latest(tmp_path))["step"]) == 10_000_000
    nnlite.save(tmp_path / "other.npz", {"weights": np.zeros(2)})
    with pytest.raises(checkpoint.CheckpointError, match="not a training checkpoint"):
        checkpoint.load(tmp_path / "other.npz")


def test_csv_table_keeps_six_significant_digits(tmp_path):
    """write_table's CSV: one row per method, every column written with 6 significant digits."""
    import csv

    from inpainting.evaluation.evaluate import COLUMNS, write_table

    table = {"m": {c: 1.0 / (k + 3) for k, c in enumerate(COLUMNS)}}
    path = write_table(table, tmp_path / "t.csv")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["method"] + COLUMNS and rows[1][0] == "m"
    for k, text in enumerate(rows[1][1:]):
        assert text == f"{1.0 / (k + 3):.6g}"
        assert float(text) == pytest.approx(1.0 / (k + 3), rel=1e-5)


def test_sample_grid_rows_show_each_samples_own_hole_in_white():
    """sample_grid: row i = [input with hole i painted white | coarse | result | attention |
    truth], each panel W wide; with per-sample masks, row i's hole is mask i."""
    from inpainting.training.viz import sample_grid

    rng = np.random.default_rng(0)
    images = rng.uniform(-0.9, 0.9, (2, 3, 8, 8))
    coarse, output = rng.uniform(-1, 1, (2, 3, 8, 8)), rng.uniform(-1, 1, (2, 3, 8, 8))
    masks = np.zeros((2, 1, 8, 8))
    masks[0, 0, 1:3, 1:3] = 1
    masks[1, 0, 4:7, 2:6] = 1
    grid = sample_grid(images, masks, coarse, output, np.zeros((2, 2, 4, 4), np.int64))
    assert grid.shape == (16, 40, 3) and grid.dtype == np.uint8
    for i in range(2):
        row = grid[8 * i:8 * i + 8]
        truth = np.clip((images[i].transpose(1, 2, 0) + 1) * 127.5, 0, 255).astype(np.uint8)
        expected = truth.copy()
        expected[masks[i, 0] > 0.5] = 255
        np.testing.assert_array_equal(row[:, :8], expected)
        np.testing.assert_array_equal(row[:, 32:], truth)
        for column, picture in ((1, coarse[i]), (2, output[i])):
            np.testing.assert_array_equal(row[:, 8 * column:8 * column + 8], np.clip(
                (picture.transpose(1, 2, 0) + 1) * 127.5, 0, 255).astype(np.uint8))


@pytest.mark.skipif(not SHIPPED_MODEL.is_file(), reason="the shipped model is not installed")
def test_demo_hole_is_the_centred_half_size_box(tmp_path, monkeypatch, capsys):
    """``inpainting demo --size S`` fills a centred (S/2) x (S/2) hole."""
    from inpainting import InpaintGenerator
    from inpainting.weights.model_io import load_generator

    shipped = load_generator(SHIPPED_MODEL)
    masks = []

    class Recording(InpaintGenerator):      # the hole masks the demo's runs are given
        def forward(self, x, mask, **kwargs):
            masks.append(np.asarray(mask.data if hasattr(mask, "data") else mask))
            return super().forward(x, mask, **kwargs)

    generator = Recording(shipped.cnum, attention=shipped.attention)
    generator.load_state_dict(shipped.state_dict())
    generator.meta = shipped.meta
    assert cli.main(["demo", "--size", "32", "--out", str(tmp_path / "d.png"), "--no-probe"],
                    generator=generator) == 0
    expected = np.zeros((32, 32))
    expected[8:24, 8:24] = 1
    assert len(masks) == 2          # one run for the texture row, one for the photo row
    for mask in masks:
        np.testing.assert_array_equal(mask.reshape(32, 32), expected)


def test_sizes_need_only_be_multiples_of_8(tmp_path, capsys):
    """--size: any multiple of 8 from 16 (24 works: the network needs multiples of 8);
    20 is refused with one line. Without --hole the hole is the centred (size/2)^2 box."""
    folder = tmp_path / "eval"
    folder.mkdir()
    _write_pair(folder, "a", size=(24, 24))
    base = ["evaluate", "--data", str(folder), "--baselines-only"]
    assert cli.main(base + ["--size", "24"]) == 0
    assert "of 24x24 each, centre 12x12 hole" in capsys.readouterr().out   # hole: 24 / 2
    assert cli.main(base + ["--size", "20"]) == 2
    assert "--size must be a multiple of 8 and at least 16, got 20" in capsys.readouterr().err


def test_evaluation_averages_every_image_and_resizes_whole_images(tmp_path):
    """evaluate_methods: each metric is the arithmetic MEAN over the images (not the median);
    evaluation_images resizes each whole image to S x S (bilinear), no crop."""
    from inpainting.evaluation.evaluate import evaluate_methods, evaluation_images

    scores = {"m": [{"psnr_hole": 1.0, "l1_hole": 0.0}, {"psnr_hole": 2.0, "l1_hole": 0.0},
                    {"psnr_hole": 6.0, "l1_hole": 3.0}]}
    assert evaluate_methods(None, None, None, scores=scores) == \
        {"m": {"psnr_hole": 3.0, "l1_hole": 1.0}}
    pixels = np.random.default_rng(5).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    images, names = evaluation_images(str(tmp_path), 16)
    expected = np.asarray(Image.fromarray(pixels).resize((16, 16), Image.BILINEAR))
    assert images.shape == (1, 3, 16, 16) and names == [str(tmp_path / "wide.png")]
    np.testing.assert_allclose(images[0], expected.transpose(2, 0, 1) / 127.5 - 1, atol=1e-6)


def test_a_folder_with_one_mask_file_uses_it_for_every_image(tmp_path, tiny_model, capsys):
    """inpaint IMAGE_FOLDER MASK_FILE: the one mask serves every image (and is not itself
    inpainted when it sits in the folder); a file image with a mask folder is refused."""
    folder = tmp_path / "images"
    folder.mkdir()
    _write_pair(folder, "a")
    _write_pair(folder, "b")
    (folder / "b_mask.png").unlink()
    assert cli.main(["inpaint", str(folder), str(folder / "a_mask.png"), "-o",
                     str(tmp_path / "out"), "--weights", str(tiny_model)]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    _fails_with(capsys, ["inpaint", folder / "a.png", folder, "-o", tmp_path / "x.png",
                         "--weights", tiny_model], "is a file, so the mask", "must be a file")


def test_a_folder_matches_upper_case_suffixes(tmp_path, tiny_model):
    """inpaint FOLDER MASKS: image suffixes are matched case-insensitively (a.PNG is an image)."""
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir()
    masks.mkdir()
    _write_pair(images, "a", size=(16, 16))
    (images / "a.png").rename(images / "a.PNG")
    (images / "a_mask.png").rename(masks / "a.png")
    assert cli.main(["inpaint", str(images), str(masks), "-o", str(out),
                     "--weights", str(tiny_model)]) == 0
    assert (out / "a.png").is_file()


def test_loss_plot_marks_the_end_of_the_warmup(tmp_path, monkeypatch):
    """save_loss_plot: a dashed vertical line on every panel at the first step that logs the
    critic (d_loss), when the run started with a reconstruction-only warm-up."""
    import json

    import inpainting.training.viz as viz

    records = [{"step": 1, "l1": 1.0, "ae": 1.0}, {"step": 2, "l1": 0.9, "ae": 0.9}] + [
        {"step": s, "l1": 0.8, "ae": 0.8, "d_loss": 0.1, "d_local": 0.1, "d_global": 0.0,
         "gp_local": 0.0, "gp_global": 0.0, "g_local": 0.1, "g_global": 0.1} for s in (3, 4)]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert viz.save_loss_plot(log, tmp_path / "loss.png") == tmp_path / "loss.png"
    axes = viz.loss_figure(log).axes                  # the figure save_loss_plot writes
    assert len(axes) == 4
    for axis in axes:
        dashed = [line for line in axis.lines if line.get_linestyle() == "--"]
        assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [3, 3]
