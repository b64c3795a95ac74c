"""The training recipe: one critic and one generator step, resume after SIGKILL, config."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inpainting.weights import checkpoint as ckpt
from inpainting.training.config import TrainConfig, dump_toml, load_config
from inpainting.training.loop import _postfix
from inpainting.training.train import Trainer, TrainingDiverged

TINY = dict(image_size=32, bbox_size=16, max_delta=2, batch_size=2, cnum=4, critic_cnum=4,
            checkpoint_every=2, sample_every=1000, log_every=1)


def _snapshot(module):
    return {name: value.copy() for name, value in module.state_dict().items()}


def test_one_critic_and_one_generator_step_change_every_parameter(tmp_path):
    trainer = Trainer(TrainConfig(out_dir=str(tmp_path), **TINY))
    g0, l0, w0 = (_snapshot(m) for m in (trainer.generator, trainer.local_critic,
                                          trainer.global_critic))
    critic = trainer.critic_step()
    assert all(np.isfinite(v) for v in critic.values())
    for before, module in ((l0, trainer.local_critic), (w0, trainer.global_critic)):
        after = module.state_dict()
        unchanged = [k for k in before if np.array_equal(before[k], after[k])]
        # The WGAN critic loss mean D(fake) - mean D(real) has zero gradient w.r.t. the
        # final bias, and the penalty does not depend on it: only that bias may stay put.
        assert unchanged in ([], ["dense.bias"])
    assert all(np.array_equal(g0[k], v) for k, v in trainer.generator.state_dict().items())
    generator = trainer.generator_step()
    assert all(np.isfinite(v) for v in generator.values())
    after = trainer.generator.state_dict()
    assert [k for k in g0 if np.array_equal(g0[k], after[k])] == []
    assert set(generator) == {"g_loss", "g_local", "g_global", "l1", "ae"}
    assert set(critic) == {"d_loss", "d_local", "d_global", "gp_local", "gp_global"}


@pytest.mark.parametrize("per_sample", [False, True])
def test_free_form_masks_train_with_a_box_around_each_hole(tmp_path, per_sample):
    """mask = "free_form": stroke masks (one per batch or per image), the local critic's box
    centred on each hole, and a full iteration that updates both networks."""
    from inpainting.data.masks import bboxes_around_holes

    config = TrainConfig(out_dir=str(tmp_path), mask="free_form", per_sample_mask=per_sample,
                         **TINY)
    trainer = Trainer(config)
    real, mask, boxes = trainer._batch()
    assert mask.shape == ((2 if per_sample else 1), 1, 32, 32) and 0 < mask.sum()
    assert set(np.unique(mask)) <= {0.0, 1.0}
    # stroke masks, not the release's boxes: the hole is not one filled rectangle
    def bounding_area(hole):
        rows, cols = np.nonzero(hole)
        return (np.ptp(rows) + 1) * (np.ptp(cols) + 1)

    assert any(mask[i, 0].sum() < bounding_area(mask[i, 0]) for i in range(len(mask)))
    np.testing.assert_array_equal(boxes, bboxes_around_holes(mask, 16))
    generator, local = _snapshot(trainer.generator), _snapshot(trainer.local_critic)
    log = trainer.iteration()
    assert {"d_loss", "g_loss", "l1"} <= set(log) and all(np.isfinite(v) for v in log.values())
    assert any(not np.array_equal(v, generator[k]) for k, v in trainer.generator.state_dict().items())
    assert any(not np.array_equal(v, local[k]) for k, v in trainer.local_critic.state_dict().items())


def test_non_finite_loss_stops_with_the_step_and_term(tmp_path):
    import nnlite

    class Diverging(Trainer):             # the known-region term turns NaN
        @staticmethod
        def known_region_l1(*args, **kwargs):
            return nnlite.Tensor(np.float32(np.nan))

    trainer = Diverging(TrainConfig(out_dir=str(tmp_path), **TINY))
    with pytest.raises(TrainingDiverged, match="'ae' is nan at generator step 1"):
        trainer.run(2, progress=False)
    assert ckpt.list_checkpoints(tmp_path / "checkpoints") == []


def _train_command(out_dir, iterations):
    args = [sys.executable, "-m", "inpainting", "train", "--out-dir", str(out_dir),
            "--iterations", str(iterations), "--quiet"]
    for key, value in TINY.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def test_resume_after_sigkill_reaches_the_uninterrupted_weights(tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(_train_command(killed, 1000), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while ckpt.latest(killed / "checkpoints") is None:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.time() < deadline, "no checkpoint written in time"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    saved = ckpt.latest(killed / "checkpoints")
    resumed = Trainer(TrainConfig(out_dir=str(killed), **TINY))
    assert resumed.resume() == ckpt.latest(killed / "checkpoints")
    start = resumed.step
    assert start >= 2 and start % 2 == 0, saved
    resumed.run(start + 2, progress=False)

    reference = Trainer(TrainConfig(out_dir=str(tmp_path / "reference"), **TINY))
    reference.run(start + 2, progress=False)
    for name, value in reference.generator.state_dict().items():
        np.testing.assert_array_equal(resumed.generator.state_dict()[name], value, err_msg=name)
    for name, value in reference.global_critic.state_dict().items():
        np.testing.assert_array_equal(resumed.global_critic.state_dict()[name], value)
    assert resumed.dataset.state_dict() == reference.dataset.state_dict()


def test_ctrl_c_checkpoints_at_the_end_of_the_iteration_and_resumes_exactly(tmp_path):
    run = tmp_path / "interrupted"
    command = _train_command(run, 1000)
    command[command.index("--checkpoint-every") + 1] = "1000"   # only the Ctrl-C checkpoint
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 240
    while not (run / "log.jsonl").is_file():
        assert process.poll() is None, process.stderr.read()
        assert time.time() < deadline, "the run logged nothing in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 130 and "interrupted: checkpoint saved" in out
    resumed = Trainer(TrainConfig(out_dir=str(run), **TINY))
    assert resumed.resume() is not None
    start = resumed.step
    resumed.run(start + 1, progress=False)
    reference = Trainer(TrainConfig(out_dir=str(tmp_path / "reference"), **TINY))
    reference.run(start + 1, progress=False)
    for name, value in reference.generator.state_dict().items():
        np.testing.assert_array_equal(resumed.generator.state_dict()[name], value, err_msg=name)


def test_checkpoints_keep_the_last_k_and_reject_corrupt_files(tmp_path):
    state = {"step": np.asarray(1), "w": {"a": np.ones(3)}}
    for step in range(1, 6):
        ckpt.save(tmp_path, step, state, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_0000004.npz",
                                                                 "step_0000005.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_0000004.npz",
                                                          "step_0000005.npz"]  # no temp files
    loaded = ckpt.load(tmp_path / "step_0000005.npz")
    np.testing.assert_array_equal(loaded["w"]["a"], np.ones(3))
    bad = tmp_path / "step_0000009.npz"
    bad.write_bytes((tmp_path / "step_0000005.npz").read_bytes()[:50])
    with pytest.raises(ckpt.CheckpointError, match="corrupt or truncated"):
        ckpt.load(bad)


def test_config_defaults_toml_and_overrides(tmp_path):
    default = TrainConfig()
    assert (default.lr, default.beta1, default.beta2, default.critic_steps) == (1e-4, 0.5, 0.9, 5)
    assert (default.batch_size, default.image_size, default.bbox_size) == (16, 256, 128)
    assert default.losses.gan_loss_alpha == 0.001 and default.losses.wgan_gp_lambda == 10.0
    path = tmp_path / "run.toml"
    path.write_text('batch_size = 4\ncnum = 8\n[losses]\nl1_loss_alpha = 2.0\n')
    config = load_config(path, cnum=16)
    assert (config.batch_size, config.cnum, config.losses.l1_loss_alpha) == (4, 16, 2.0)
    assert load_config(_write(tmp_path / "again.toml", dump_toml(config))) == config
    with pytest.raises(ValueError, match="unknown configuration keys"):
        load_config(_write(tmp_path / "bad.toml", "batchsize = 3\n"))
    with pytest.raises(ValueError, match="multiple of 16"):
        load_config(image_size=40)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")


def _write(path, text):
    Path(path).write_text(text)
    return path


def test_cli_reports_user_errors_in_one_line(tmp_path):
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "inpainting", "inpaint",
                             str(tmp_path / "nope.png"), str(tmp_path / "nope_mask.png"),
                             "-o", str(tmp_path / "out.png"), "--weights",
                             str(tmp_path / "missing.npz")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "missing.npz" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_warmup_trains_the_generator_on_reconstruction_alone(tmp_path):
    """Warm-up steps: no critic update, g_loss = 1.2 l1 + 1.2 ae; afterwards the release."""
    config = TrainConfig(out_dir=str(tmp_path), warmup_iterations=2, iterations=3, **TINY)
    trainer = Trainer(config)
    critics = _snapshot(trainer.local_critic), _snapshot(trainer.global_critic)
    generator = _snapshot(trainer.generator)
    for _ in range(2):
        log = trainer.iteration()
        assert set(log) == {"l1", "ae", "g_loss"}
        w = config.losses
        assert log["g_loss"] == pytest.approx(w.l1_loss_alpha * log["l1"]
                                              + w.ae_loss_alpha * log["ae"], rel=1e-6)
        assert "d" not in _postfix(log, 1.0)      # no "d=nan" on the progress bar
    for before, critic in zip(critics, (trainer.local_critic, trainer.global_critic)):
        for name, value in critic.state_dict().items():
            np.testing.assert_array_equal(value, before[name], err_msg=name)
    assert any(not np.array_equal(v, generator[k])
               for k, v in trainer.generator.state_dict().items())
    log = trainer.iteration()                      # step 3: the adversarial recipe
    assert {"d_loss", "g_local", "g_global"} <= set(log)
    assert _postfix(log, 2.5) == {"d": f"{log['d_loss']:.3f}", "g": f"{log['g_loss']:.3f}",
                                  "l1": f"{log['l1']:.3f}", "it_s": "2.50"}
    assert any(not np.array_equal(v, critics[0][k])
               for k, v in trainer.local_critic.state_dict().items())
    with pytest.raises(ValueError, match="warmup_iterations"):
        TrainConfig(warmup_iterations=5, iterations=4).validate()


def test_loss_plot_draws_a_run_with_a_warmup(tmp_path):
    """Warm-up records lack the critic terms: each curve starts where its term does."""
    from PIL import Image

    from inpainting.training.viz import save_loss_plot

    log = tmp_path / "log.jsonl"
    records = [{"step": s, "l1": 0.3, "ae": 0.5, "g_loss": 1.2} for s in (10, 20)]
    records += [{"step": s, "l1": 0.2, "ae": 0.4, "g_loss": 0.7, "d_loss": -1.0, "d_local": -0.5,
                 "d_global": -0.5, "gp_local": 0.1, "gp_global": 0.1, "g_local": 2.0,
                 "g_global": 3.0} for s in (30, 40)]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    path = save_loss_plot(log, tmp_path / "losses.png")
    assert Image.open(path).size[0] > 0
    log.write_text("".join(json.dumps(r) + "\n" for r in records[:2]))   # warm-up only
    assert save_loss_plot(log, tmp_path / "warmup.png").is_file()


def test_init_weights_fine_tunes_a_saved_generator(tmp_path):
    """``init_weights`` starts the generator from a model file; a cnum mismatch is explained."""
    from inpainting.weights.model_io import save_generator
    from inpainting.model.networks import InpaintGenerator

    source = InpaintGenerator(4, rng=np.random.default_rng(123))
    path = tmp_path / "pretrained.npz"
    save_generator(path, source, image_size=32)
    config = TrainConfig(out_dir=str(tmp_path / "run"), init_weights=str(path), **TINY)
    trainer = Trainer(config)
    for name, value in source.state_dict().items():
        np.testing.assert_array_equal(trainer.generator.state_dict()[name], value, err_msg=name)
    fresh = Trainer(TrainConfig(out_dir=str(tmp_path / "fresh"), **TINY))
    assert not np.array_equal(fresh.generator.conv1.weight.data, source.conv1.weight.data)
    trainer.iteration()                                 # and it trains from there
    with pytest.raises(ValueError, match="cnum 4, but this run's cnum is 6"):
        Trainer(TrainConfig(out_dir=str(tmp_path / "bad"), init_weights=str(path),
                            **{**TINY, "cnum": 6}))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        Trainer(TrainConfig(out_dir=str(tmp_path / "bad"), init_weights=str(tmp_path / "missing.npz"),
                            **TINY))


# ----------------------------------------------------------------------------- user errors

def _good_and_truncated_folder(folder):
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "b.png")
    (folder / "b.png").write_bytes((folder / "b.png").read_bytes()[:60])
    return folder


def test_a_truncated_image_is_skipped_by_the_sample_grid_too(tmp_path):
    """One bad PNG among good ones: batches and the periodic sample grid both skip it (one
    warning), so the run completes; the loss plot waits for the first log line."""
    data = _good_and_truncated_folder(tmp_path / "data")
    config = TrainConfig(data=str(data), out_dir=str(tmp_path / "run"), iterations=4,
                         **{**TINY, "batch_size": 1, "log_every": 10, "sample_every": 2,
                            "checkpoint_every": 4})
    with pytest.warns(RuntimeWarning, match="b.png") as record:
        Trainer(config).run(progress=False)
    assert len([w for w in record if "b.png" in str(w.message)]) == 1
    run = tmp_path / "run"
    assert (run / "samples_0000002.png").is_file() and (run / "samples_0000004.png").is_file()
    assert ckpt.latest(run / "checkpoints").name == "step_0000004.npz"


def test_trainer_wants_a_train_config():
    with pytest.raises(TypeError, match="Trainer expects a TrainConfig, got dict.*from_dict"):
        Trainer(dict(TINY))


@pytest.fixture(scope="module")
def run_at_step_2(tmp_path_factory):
    """A cnum-4 run trained to step 2 (checkpoint step_0000002.npz); copy it before changing."""
    out = tmp_path_factory.mktemp("run2")
    Trainer(TrainConfig(out_dir=str(out), iterations=2, **TINY)).run(progress=False)
    return out


def _copy_run(source, target):
    import shutil

    shutil.copytree(source, target)
    return target


def test_resuming_a_finished_run_trains_nothing_and_writes_nothing(tmp_path, run_at_step_2,
                                                                   capsys):
    from inpainting.app import cli
    from inpainting.training.train import NothingToTrain

    run = _copy_run(run_at_step_2, tmp_path / "run")
    resumed = Trainer(TrainConfig(out_dir=str(run), iterations=1, **TINY))
    assert resumed.resume() is not None and resumed.step == 2
    before = (run / "config.toml").read_text()
    with pytest.raises(NothingToTrain, match=r"already at step 2 >= iterations 1: nothing was "
                                             r"trained.*above 2"):
        resumed.run(progress=False)
    assert (run / "config.toml").read_text() == before and "iterations = 2" in before
    # the command line: says so, exits 0 (re-running a finished command is no error), and
    # writes no generator.npz
    args = ["train", "--data", "demo", "--out-dir", str(run), "--resume", "--quiet",
            "--iterations", "1"]
    for key, value in TINY.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    capsys.readouterr()
    assert cli.main(args) == 0
    assert "nothing was trained and no file was written" in capsys.readouterr().out
    assert not (run / "generator.npz").exists()


def test_resume_with_other_network_sizes_names_the_file_and_the_fields(tmp_path, run_at_step_2):
    run = _copy_run(run_at_step_2, tmp_path / "run")
    other = Trainer(TrainConfig(out_dir=str(run), **{**TINY, "cnum": 6}))
    with pytest.raises(ckpt.CheckpointError) as info:
        other.resume()
    message = str(info.value)
    assert f"{run / 'checkpoints' / 'step_0000002.npz'} was trained with cnum=4, this run has " \
           "cnum=6: pass --cnum 4 (or the same --config)" in message
    assert "\n" not in message and len(message) < 300
    assert other.step == 0
    both = Trainer(TrainConfig(out_dir=str(run), **{**TINY, "cnum": 6, "critic_cnum": 8}))
    with pytest.raises(ValueError, match="cnum=4, critic_cnum=4, this run has cnum=6, "
                                         "critic_cnum=8: pass --cnum 4 --critic-cnum 4"):
        both.resume()


@pytest.mark.parametrize("content, message", [
    (b"garbage\n", "corrupt or truncated"),
    ({"step": np.asarray(9)}, "cannot resume from .*: it has no 'generator' entry"),
])
def test_a_corrupt_newest_checkpoint_is_named_on_resume(tmp_path, run_at_step_2, content,
                                                        message):
    import nnlite

    run = _copy_run(run_at_step_2, tmp_path / "run")
    bad = run / "checkpoints" / "step_0000009.npz"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        nnlite.save(bad, content)
    with pytest.raises(ckpt.CheckpointError, match=message) as info:
        Trainer(TrainConfig(out_dir=str(run), **TINY)).resume()
    assert str(bad) in str(info.value)


def test_any_load_failure_of_a_checkpoint_names_the_file(tmp_path, run_at_step_2):
    """Whatever the reader raises (here the message NumPy gives for pickled arrays), resume
    says which file is not a readable checkpoint."""
    run = _copy_run(run_at_step_2, tmp_path / "run")

    class Refusing(Trainer):
        def read_checkpoint(self, path):
            raise ValueError("Object arrays cannot be loaded when allow_pickle=False")

    with pytest.raises(ckpt.CheckpointError) as info:
        Refusing(TrainConfig(out_dir=str(run), **TINY)).resume()
    assert str(info.value).startswith(f"{run / 'checkpoints' / 'step_0000002.npz'} is not a "
                                      "readable training checkpoint (Object arrays")
