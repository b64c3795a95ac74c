"""Runs people can trust: SIGTERM, resuming with the recorded recipe, files left by kills,
the log, permissions, the long-run estimate, sizes that follow the image, the train help."""
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nnlite
from inpainting.weights import checkpoint as ckpt
from inpainting.app import cli
from inpainting.training import run_files
from inpainting.training.config import TrainConfig, derived_sizes, load_config
from inpainting.training.train import Trainer

# the first 3 steps are generator-only warm-up steps, about five times cheaper
FAST = dict(image_size=32, bbox_size=16, max_delta=2, batch_size=2, cnum=4, critic_cnum=4,
            checkpoint_every=2, sample_every=1000, log_every=1, warmup_iterations=3)
ROOT = Path(__file__).resolve().parents[1]


def _recorded(run):
    """The run's recorded configuration, in the folder it is in now (tests copy runs)."""
    return load_config(run / "config.toml", out_dir=str(run))


def _weights(trainer):
    return trainer.generator.state_dict()


def _assert_same_weights(a, b):
    for name, value in a.items():
        np.testing.assert_array_equal(b[name], value, err_msg=name)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A run recorded with iterations 6, batch 2 and checkpoints every 2 steps, stopped at
    step 2 (as if killed after its first checkpoint); copy it before changing it."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    Trainer(TrainConfig(out_dir=str(out), iterations=6, **FAST)).run(2, progress=False)
    return out


def _copy(run, target):
    import shutil

    shutil.copytree(run, target)
    return target


# ----------------------------------------------------------------------------- SIGTERM

def test_sigterm_checkpoints_at_the_step_reached_then_exits_143(tmp_path):
    """What kill, Docker and Slurm send: the run finishes its iteration, checkpoints that
    step (not only every checkpoint_every steps) and exits with 128 + SIGTERM."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "inpainting", "train", "--out-dir", str(run),
               "--iterations", "1000", "--quiet"]
    for key, value in {**FAST, "checkpoint_every": 1000}.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    deadline = time.time() + 240
    while not (run / "log.jsonl").is_file():
        assert process.poll() is None, process.stderr.read()
        assert time.time() < deadline, "the run logged nothing in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 143, err
    assert "SIGTERM: stopping after this iteration" in out and "checkpoint saved" in out
    saved = ckpt.latest(run / "checkpoints")
    logged = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert saved is not None and int(ckpt.load(saved)["step"]) == logged[-1] >= 1
    resumed = Trainer(_recorded(run))
    assert resumed.resume() == saved and resumed.step == logged[-1]


def test_stop_request_handles_sigterm_and_restores_the_handlers():
    request = ckpt.StopRequest()
    before = signal.getsignal(signal.SIGTERM)
    with request.installed():
        assert signal.getsignal(signal.SIGTERM) is request
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):                    # the handler runs between bytecodes
            if request.requested:
                break
            time.sleep(0.01)
        assert request.requested and request.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # a second one stops at once
            request(signal.SIGTERM, None)
    assert signal.getsignal(signal.SIGTERM) is before
    assert ckpt.Stopped(signal.SIGTERM).signum == 15 and isinstance(ckpt.Stopped(),
                                                                     KeyboardInterrupt)


# ----------------------------------------------------------------------------- resume

def test_resume_alone_continues_with_the_recorded_batch_and_checkpoint_interval(
        tmp_path, stopped_run, capsys):
    """The issue's case: `train --resume --out-dir RUN` with no other flag keeps batch 2 and
    checkpoints every 2 steps (not the defaults 16 and 1000), reaches the recorded total and
    equals an uninterrupted run; config.toml is left as it was."""
    run = _copy(stopped_run, tmp_path / "run")
    recorded = (run / "config.toml").read_text()
    assert cli.main(["train", "--resume", "--out-dir", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"resuming {run} with the configuration recorded in {run / 'config.toml'}" in out
    assert "resumed from" in out and "at step 2" in out
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == [
        "step_0000002.npz", "step_0000004.npz", "step_0000006.npz"]     # every 2 steps
    assert (run / "config.toml").read_text() == recorded
    config = json.loads(str(nnlite.load(run / "generator.npz")["meta"]))["config"]
    assert (config["batch_size"], config["checkpoint_every"], config["iterations"]) == (2, 2, 6)
    reference = Trainer(TrainConfig(out_dir=str(tmp_path / "reference"), iterations=6, **FAST))
    reference.run(progress=False)
    resumed = Trainer(_recorded(run))
    resumed.resume()
    _assert_same_weights(_weights(reference), _weights(resumed))


def test_resume_flags_change_only_what_they_name_and_are_recorded(tmp_path, stopped_run,
                                                                  capsys):
    run = _copy(stopped_run, tmp_path / "run")
    assert cli.main(["train", "--resume", "--out-dir", str(run), "--quiet",
                     "--iterations", "4", "--checkpoint-every", "1"]) == 0
    assert "changed: iterations 6 -> 4, checkpoint_every 2 -> 1" in capsys.readouterr().out
    text = (run / "config.toml").read_text()
    assert text.splitlines()[0] == "# changed at step 2: iterations 6 -> 4, checkpoint_every 2 -> 1"
    config = load_config(run / "config.toml")
    assert (config.iterations, config.checkpoint_every, config.batch_size) == (4, 1, 2)
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == [
        "step_0000002.npz", "step_0000003.npz", "step_0000004.npz"]
    # the next change keeps the earlier line
    assert cli.main(["train", "--resume", "--out-dir", str(run), "--quiet",
                     "--iterations", "5"]) == 0
    lines = (run / "config.toml").read_text().splitlines()
    assert lines[:2] == ["# changed at step 2: iterations 6 -> 4, checkpoint_every 2 -> 1",
                         "# changed at step 4: iterations 4 -> 5"]


@pytest.mark.parametrize("flags, field", [
    (["--batch-size", "16"], "batch_size = 2"), (["--seed", "3"], "seed = 0"),
    (["--lr", "0.001"], "lr = 0.0001"), (["--data", "elsewhere/"], "data = 'demo'"),
    (["--image-size", "64"], "image_size = 32")])
def test_resume_refuses_a_recipe_change_unless_forced(tmp_path, stopped_run, capsys, flags,
                                                      field):
    run = _copy(stopped_run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert cli.main(["train", "--resume", "--out-dir", str(run), "--quiet"] + flags) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and field in error and "--force" in error
    assert "would not continue exactly" in error
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_forced_recipe_change_is_recorded_and_python_resume_checks_the_recipe(
        tmp_path, stopped_run, capsys):
    run = _copy(stopped_run, tmp_path / "run")
    other = Trainer(TrainConfig(out_dir=str(run), iterations=6, **{**FAST, "batch_size": 3}))
    with pytest.raises(ckpt.CheckpointError, match=r"step_0000002.npz was trained with "
                       r"batch_size=2, this run has batch_size=3: the run would not continue "
                       r"exactly.*force=True \(--force\)"):
        other.resume()
    assert other.step == 0
    assert other.resume(force=True) is not None and other.step == 2
    assert cli.main(["train", "--resume", "--force", "--out-dir", str(run), "--quiet",
                     "--batch-size", "3", "--iterations", "3"]) == 0
    assert "batch_size 2 -> 3, iterations 6 -> 3" in capsys.readouterr().out
    assert (run / "config.toml").read_text().startswith(
        "# changed at step 2: batch_size 2 -> 3, iterations 6 -> 3\n")
    assert load_config(run / "config.toml").batch_size == 3
    # network shapes cannot change, even forced: the weights would not fit
    assert cli.main(["train", "--resume", "--force", "--out-dir", str(run), "--quiet",
                     "--cnum", "6", "--iterations", "4"]) == 2
    assert "was trained with cnum=4, this run has cnum=6" in capsys.readouterr().err


def test_a_new_run_is_not_started_over_an_existing_one(tmp_path, stopped_run, capsys):
    run = _copy(stopped_run, tmp_path / "run")
    recorded = (run / "config.toml").read_text()
    assert cli.main(["train", "--out-dir", str(run), "--quiet", "--batch-size", "4"]) == 2
    error = capsys.readouterr().err
    assert "already holds a run (newest checkpoint step_0000002.npz)" in error
    assert "--resume --out-dir" in error and (run / "config.toml").read_text() == recorded
    assert cli.main(["train", "--force", "--out-dir", str(tmp_path / "new")]) == 2
    assert "--force only applies with --resume" in capsys.readouterr().err


def test_resume_of_a_run_without_config_toml_uses_its_checkpoint(tmp_path, stopped_run,
                                                                 capsys):
    run = _copy(stopped_run, tmp_path / "run")
    (run / "config.toml").unlink()
    config, source, changes = run_files.resume_config(run, flags={"iterations": 3})
    assert source == ckpt.latest(run / "checkpoints") and changes == [("iterations", 6, 3)]
    assert (config.batch_size, config.checkpoint_every, config.out_dir) == (2, 2, str(run))
    assert run_files.resume_config(tmp_path / "empty") == (None, None, [])


# ----------------------------------------------------------------------------- files

def test_temporary_files_of_killed_writes_are_removed_at_the_next_start(tmp_path, stopped_run,
                                                                        capsys):
    run = _copy(stopped_run, tmp_path / "run")
    # a real one: a process killed inside atomic_write leaves its temporary file
    script = ("import os, sys; from nnlite.serialization import atomic_write\n"
              "with atomic_write(sys.argv[1]) as f:\n    f.write(b'x' * 1000); os._exit(9)\n")
    subprocess.run([sys.executable, "-c", script, str(run / "checkpoints" / "step_0000004.npz")],
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    left = [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and nnlite.serialization.TEMPORARY_NAME.match(left[0].name)
    (run / ".samples_0000004.png.a1b2c3d4.tmp").write_bytes(b"half an image")
    (run / ".log.jsonl.zz_99xyz.tmp").write_bytes(b"")
    (run / "notes.tmp").write_text("mine")               # not a name atomic_write makes
    trainer = Trainer(_recorded(run))
    trainer.resume()
    trainer.run(3, progress=False)
    err = capsys.readouterr().err
    assert "removed 3 temporary file(s) of interrupted writes" in err
    assert sorted(p.name for p in run.rglob("*.tmp")) == ["notes.tmp"]


def test_a_half_written_last_log_line_is_dropped_with_a_warning(tmp_path, stopped_run, capsys):
    run = _copy(stopped_run, tmp_path / "run")
    log = run / "log.jsonl"
    with open(log, "a") as handle:
        handle.write('{"step": 3, "l1": 0.1')            # killed mid-line
    assert cli.main(["train", "--resume", "--out-dir", str(run), "--quiet",
                     "--iterations", "3"]) == 0
    assert f"warning: {log}: dropped its last line, half written" in capsys.readouterr().err
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]
    assert (run / "losses.png").is_file()


def test_log_records_past_the_checkpoint_are_dropped_on_resume(tmp_path, stopped_run):
    """Steps logged after the newest checkpoint run again after a kill: logged once."""
    run = _copy(stopped_run, tmp_path / "run")
    with open(run / "log.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 3, "l1": 9.0}) + "\n")
    trainer = Trainer(_recorded(run))
    trainer.resume()
    trainer.run(3, progress=False)
    records = run_files.read_log(run / "log.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3] and records[-1]["l1"] != 9.0


def test_any_bad_log_line_names_the_file_and_the_line(tmp_path):
    from inpainting.training.viz import save_loss_plot

    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "l1": 0.5}\n{"step": 2, "l1": \n{"step": 3, "l1": 0.4}\n')
    with pytest.raises(ValueError, match=f"{log}, line 2: not a JSON record"):
        save_loss_plot(log, tmp_path / "losses.png")
    with pytest.raises(ValueError, match=f"{log}, line 2"):
        run_files.repair_log(log)                       # only a last line is repaired
    log.write_text('{"step": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"line 2: a log record is a JSON object"):
        run_files.read_log(log)


def test_a_resume_over_a_damaged_log_is_a_one_line_error(tmp_path, stopped_run, capsys):
    run = _copy(stopped_run, tmp_path / "run")
    lines = (run / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text("\n".join([lines[0][:-3]] + lines[1:]) + "\n")
    assert cli.main(["train", "--resume", "--out-dir", str(run), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"inpainting train: error: {run / 'log.jsonl'}, line 1: not a JSON")


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_results_and_checkpoints_honour_the_umask(tmp_path, umask):
    from inpainting.data.imageio import save_image
    from inpainting.weights.model_io import save_generator
    from inpainting.model.networks import InpaintGenerator

    previous = os.umask(umask)
    try:
        ckpt.save(tmp_path / "checkpoints", 1, {"step": np.asarray(1)})
        save_generator(tmp_path / "generator.npz",
                       InpaintGenerator(4, rng=np.random.default_rng(0)))
        save_image(tmp_path / "result.png", np.zeros((3, 4, 4), np.float32))
        with nnlite.serialization.atomic_write(tmp_path / "config.toml", "w") as stream:
            stream.write("seed = 0\n")
    finally:
        os.umask(previous)
    for name in ("checkpoints/step_0000001.npz", "generator.npz", "result.png", "config.toml"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


# ----------------------------------------------------------------------------- estimate

class _Bar:
    def __init__(self, *args, **kwargs):
        self.description = ""

    def update(self, n):
        pass

    def set_postfix(self, values):
        pass

    def set_description(self, text):
        self.description = text

    def close(self):
        pass


def test_a_run_longer_than_an_hour_states_its_estimate_in_the_progress_bar(tmp_path):
    bars = []

    class Recorded(Trainer):              # the bar run() draws, recorded
        def progress_bar(self, start, total, enabled):
            bars.append(_Bar())
            return bars[-1]

    def stop_after_five(step, values):
        if step == 5:
            raise KeyboardInterrupt

    config = TrainConfig(out_dir=str(tmp_path / "long"), **{**FAST, "warmup_iterations": 0,
                                                             "iterations": 10**8})
    with pytest.raises(KeyboardInterrupt):
        Recorded(config).run(on_log=stop_after_five)
    assert bars[-1].description.startswith("estimate ")
    assert "100,000,000 steps x " in bars[-1].description
    assert bars[-1].description.endswith(" s/step (timed on steps 2-4)")
    Recorded(TrainConfig(out_dir=str(tmp_path / "short"), iterations=5, **FAST)).run()
    assert len(bars) == 2 and bars[-1].description == ""                    # a short run says nothing


def test_the_estimate_text():
    assert train_estimate(1000, 3.0, 3) == ""                           # 1000 s
    assert train_estimate(150_000, 30.0, 3) == ("estimate 17.4 days: 150,000 steps x 10.00 "
                                                 "s/step (timed on steps 2-4)")
    assert train_estimate(5000, 6.0, 3, warmup=True) == (
        "estimate >= 2.8 h: 5,000 steps x 2.00 s/step (timed on steps 2-4, warm-up)")


def train_estimate(*args, **kwargs):
    return run_files.estimate(*args, **kwargs)


# ----------------------------------------------------------------------------- sizes, help

def test_box_and_jitter_follow_the_image_size_unless_given(tmp_path):
    assert derived_sizes(256) == (128, 16) and derived_sizes(128) == (64, 8)
    assert derived_sizes(64) == (32, 4) and derived_sizes(16) == (16, 2)
    assert derived_sizes(80) == (32, 4)                # a multiple of 16 for the critic
    assert (TrainConfig().bbox_size, TrainConfig().max_delta) == (128, 16)   # the release
    small = TrainConfig(image_size=64)
    assert (small.bbox_size, small.max_delta) == (32, 4)
    assert (TrainConfig(image_size=64, bbox_size=48).max_delta) == 6
    assert small.replace(image_size=128).bbox_size == 64             # derived follows
    assert TrainConfig(bbox_size=64).replace(image_size=128).bbox_size == 64   # given stays
    path = tmp_path / "run.toml"
    path.write_text("image_size = 128\n")
    assert (load_config(path).bbox_size, load_config(path).max_delta) == (64, 8)
    assert load_config(path, image_size=64).bbox_size == 32
    assert load_config(path, bbox_size=32).max_delta == 4
    path.write_text("image_size = 128\nbbox_size = 96\nmax_delta = 3\n")
    assert (load_config(path, image_size=256).bbox_size, load_config(path).max_delta) == (96, 3)


@pytest.mark.parametrize("name", ["demo_cnum16.toml", "demo_cnum16_finetune.toml"])
def test_the_shipped_recipes_keep_their_sizes(name):
    config = load_config(ROOT / "inpainting" / "weights" / name)
    assert (config.image_size, config.bbox_size, config.max_delta) == (128, 64, 8)


def test_train_image_size_64_runs(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", "--image-size", "64", "--cnum", "4", "--critic-cnum", "4",
                     "--batch-size", "1", "--iterations", "1", "--warmup-iterations", "1",
                     "--out-dir", str(run), "--quiet"]) == 0
    lines = (run / "config.toml").read_text().splitlines()
    assert "bbox_size = 32" in lines and "max_delta = 4" in lines


def test_every_train_option_has_help_with_its_default(capsys):
    parser = cli.build_parser()
    train = next(a for a in parser._actions if hasattr(a, "choices") and a.choices
                 and "train" in a.choices).choices["train"]
    options = [a for a in train._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 22
    missing = [a.option_strings[0] for a in options if not a.help or "default" not in a.help]
    assert missing == []
    defaults = TrainConfig()
    helps = {a.dest: a.help for a in options}
    for field in ("image_size", "batch_size", "cnum", "critic_cnum", "seed", "checkpoint_every",
                  "sample_every", "log_every", "warmup_iterations"):
        assert f"default: {getattr(defaults, field)}" in helps[field], field
    assert "default: 150,000" in helps["iterations"] and "default: 0.0001" in helps["lr"]


def test_forced_change_of_data_restarts_the_data_order_on_the_new_images(tmp_path):
    """--force with another data set: the weights carry over, the old sampler position (an
    index into the old list) does not; the order starts a fresh epoch of the new images."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, count in (("a", 3), ("b", 5)):
        (tmp_path / folder).mkdir()
        for k in range(count):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
                tmp_path / folder / f"{k}.png")
    run = tmp_path / "run"
    first = Trainer(TrainConfig(out_dir=str(run), iterations=6, data=str(tmp_path / "a"),
                                **FAST))
    first.run(2, progress=False)
    saved = first.dataset.state_dict()
    moved = Trainer(TrainConfig(out_dir=str(run), iterations=6, data=str(tmp_path / "b"),
                                **FAST))
    with pytest.raises(ckpt.CheckpointError, match="data="):
        moved.resume()
    assert moved.resume(force=True) is not None and moved.step == 2
    _assert_same_weights(_weights(first), _weights(moved))
    state = moved.dataset.state_dict()
    assert state["num_items"] == 5 and state["position"] == 0
    assert state["epoch"] == saved["epoch"] + 1
    same = Trainer(TrainConfig(out_dir=str(run), iterations=6, data=str(tmp_path / "a"),
                               **{**FAST, "batch_size": 3}))
    same.resume(force=True)                     # a forced change of another field keeps it
    assert same.dataset.state_dict() == saved
