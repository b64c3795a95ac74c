"""nnlite.kernels.parallel: threaded NumPy passes give bit-identical results and fail loudly."""
import threading

import numpy as np
import pytest

import nnlite
import nnlite.functional as F
import nnlite.kernels.parallel as parallel
from nnlite.kernels.conv_arrays import use_strategy


@pytest.fixture
def threaded():
    """Every pass threaded (no size threshold), 3 threads; restores the settings afterwards."""
    before = parallel.get_num_threads()
    with parallel.min_parallel_bytes(0):
        parallel.set_num_threads(3)
        try:
            yield
        finally:
            parallel.set_num_threads(before)


def test_slices_cover_the_range_once_and_run_on_several_threads(threaded):
    seen = np.zeros(10, dtype=int)
    names = set()
    together = threading.Barrier(3, timeout=10)   # passes only if 3 slices run at once

    def work(lo, hi):
        seen[lo:hi] += 1
        names.add(threading.current_thread().name)
        together.wait()

    parallel.parallel_slices(work, 10, nbytes=1)
    assert (seen == 1).all()
    assert len(names) == 3


def test_a_worker_exception_reaches_the_caller(threaded):
    def work(lo, hi):
        if lo > 0:
            raise RuntimeError(f"slice {lo}:{hi} failed")

    with pytest.raises(RuntimeError, match="failed"):
        parallel.parallel_slices(work, 9, nbytes=1)


def test_small_passes_and_one_thread_run_inline(monkeypatch):
    calls = []
    parallel.parallel_slices(lambda lo, hi: calls.append((lo, hi)), 8, nbytes=1)
    assert calls == [(0, 8)]                       # under MIN_PARALLEL_BYTES
    with pytest.raises(ValueError, match="nbytes must be an int >= 0"):
        with parallel.min_parallel_bytes(-1):
            pass
    before = parallel.get_num_threads()
    parallel.set_num_threads(1)
    try:
        calls.clear()
        parallel.parallel_slices(lambda lo, hi: calls.append((lo, hi)), 8, nbytes=1 << 40)
        assert calls == [(0, 8)]
    finally:
        parallel.set_num_threads(before)


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_counts(count):
    with pytest.raises(ValueError, match="positive integer"):
        parallel.set_num_threads(count)


def test_bad_environment_value_is_named(monkeypatch):
    monkeypatch.setenv("NNLITE_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="NNLITE_NUM_THREADS"):
        parallel._default_threads()
    monkeypatch.setenv("NNLITE_NUM_THREADS", "5")
    assert parallel._default_threads() == 5


def _conv_and_elu(rng):
    """A strided and a dilated wide conv, each followed by ELU, forward and backward."""
    def tensor(*shape):
        return nnlite.Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)

    x, w1, w2 = tensor(2, 5, 13, 11), tensor(7, 5, 3, 3), tensor(3, 7, 3, 3)
    with use_strategy("wide"):
        y = F.elu(F.conv2d(x, w1, stride=2, padding="same"))
        z = F.elu(F.conv2d(y, w2, padding=2, dilation=2))
        (z * z).sum().backward()
    return y.data, z.data, x.grad.data, w1.grad.data, w2.grad.data


def test_threaded_conv_and_elu_are_bit_identical_to_one_thread(threaded):
    threaded_results = _conv_and_elu(np.random.default_rng(0))
    parallel.set_num_threads(1)
    single = _conv_and_elu(np.random.default_rng(0))
    for a, b in zip(threaded_results, single):
        np.testing.assert_array_equal(a, b)


def test_threaded_softmax_is_bit_identical_and_differentiable(threaded):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 9)).astype(np.float32)
    threaded_result = F.softmax(nnlite.Tensor(x)).data
    parallel.set_num_threads(1)
    np.testing.assert_array_equal(threaded_result, F.softmax(nnlite.Tensor(x)).data)
    parallel.set_num_threads(3)
    x64 = nnlite.Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    assert nnlite.testing.gradgradcheck(lambda t: F.softmax(t) ** 2, (x64,))


def test_threaded_elu_and_softmax_pass_gradcheck_and_gradgradcheck(threaded):
    """With every pass threaded, the ops' gradients still match finite differences."""
    rng = np.random.default_rng(4)
    away = rng.choice([-1.0, 1.0], (3, 5, 4)) * rng.uniform(0.2, 1.5, (3, 5, 4))  # off the kink
    for fn, x in ((F.elu, away), (F.softmax, rng.standard_normal((3, 5, 4)))):
        tensor = nnlite.Tensor(x, requires_grad=True)
        assert nnlite.testing.gradcheck(fn, (tensor,))
        assert nnlite.testing.gradgradcheck(fn, (tensor,))


def test_softmax_axis_out_of_range_is_named():
    with pytest.raises(ValueError, match="axis 2 is out of range for a 2-d tensor"):
        F.softmax(nnlite.Tensor(np.zeros((2, 3))), axis=2)


@pytest.mark.parametrize("module", ["nnlite", "inpainting"])
def test_importing_sets_openblas_thread_timeout_unless_the_user_did(module):
    """OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when NumPy loads it, so the import must set it
    first (short-lived spinning BLAS threads; see nnlite/kernels/threads.py)."""
    import os
    import subprocess
    import sys

    code = f"import {module}, os, sys; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "4", out.stderr
    env["OPENBLAS_THREAD_TIMEOUT"] = "10"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "10", out.stderr


def test_threaded_masked_softmax_is_bit_identical(threaded):
    from inpainting.model.attention_steps import masked_softmax

    rng = np.random.default_rng(4)
    scores = nnlite.Tensor(rng.standard_normal((3, 10, 10)).astype(np.float32))
    for mm in ((rng.uniform(size=(1, 10)) > 0.3), (rng.uniform(size=(3, 10)) > 0.3)):
        parallel.set_num_threads(3)
        threaded_result = masked_softmax(scores, mm).data
        parallel.set_num_threads(1)
        np.testing.assert_array_equal(threaded_result, masked_softmax(scores, mm).data)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_working_pool(threaded):
    """Pool threads do not survive fork(); the child must not wait on them forever."""
    import os

    parallel.parallel_slices(lambda lo, hi: None, 4, nbytes=1)      # parent's pool exists
    pid = os.fork()
    if pid == 0:                                                    # child
        import signal

        signal.alarm(20)              # a stale pool would block forever: die (and fail) instead
        seen = np.zeros(6, dtype=int)

        def work(lo, hi):
            seen[lo:hi] += 1

        parallel.parallel_slices(work, 6, nbytes=1)
        os._exit(0 if (seen == 1).all() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
