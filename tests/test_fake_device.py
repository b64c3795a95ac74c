"""The fake device (``nnlite.fake_device``): CuPy's semantics where they differ from NumPy's,
only CuPy's names and keywords, its counters, and the whole GPU code path on it — a training
iteration against the CPU, resume, inference, the host-synchronisation targets — plus a
deliberately inserted implicit conversion that it must catch."""
import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from nnlite import Tensor, backend, fake_device
from nnlite.fake_device import FakeArray, IMPLICIT_CONVERSION_MESSAGE

fx = fake_device.cupy
TINY = dict(image_size=32, bbox_size=16, max_delta=2, batch_size=2, cnum=4, critic_cnum=4,
            checkpoint_every=1, sample_every=1000, log_every=1, seed=5)


# ------------------------------------------------------------------ CuPy's semantics
def test_implicit_conversion_to_numpy_raises_cupys_type_error():
    a = fx.asarray(np.arange(3.0))
    for convert in (np.asarray, np.array, lambda x: np.testing.assert_allclose(x, [0, 1, 2])):
        with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
            convert(a)
    assert isinstance(np.concatenate([a, a]), FakeArray)   # dispatched to the device, as CuPy does
    np.testing.assert_array_equal(a.get(), [0.0, 1.0, 2.0])          # explicit: fine
    np.testing.assert_array_equal(backend.to_device(a, "cpu"), [0.0, 1.0, 2.0])


def test_numpy_arrays_inside_device_ops_are_refused():
    a, host = fx.ones(3), np.ones(3)
    for op in (lambda: a + host, lambda: fx.concatenate([a, host]), lambda: fx.matmul(a, host),
               lambda: a.__setitem__(slice(None), host), lambda: fx.where(a > 0, a, host)):
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            op()
    # what CuPy does accept: Python and NumPy scalars, and NumPy index arrays (uploaded)
    assert isinstance(a * 2.0 + np.float32(1), FakeArray)
    fake_device.counters.reset()
    np.testing.assert_array_equal(a[np.array([0, 2])].get(), [1.0, 1.0])
    assert fake_device.counters.bytes_to_device == 16


def test_reductions_return_zero_dimensional_device_arrays():
    a = fx.asarray(np.arange(6.0).reshape(2, 3))
    for value in (a.sum(), fx.sum(a), a.max(), fx.mean(a), a.argmax(), (a > 2).all()):
        assert isinstance(value, FakeArray) and value.ndim == 0
    assert isinstance(np.sum(a), FakeArray)       # NumPy's functions dispatch, as on CuPy
    fake_device.counters.reset()
    assert float(a.sum()) == 15.0 and bool((a > 2).any())
    assert fake_device.counters.host_syncs == 2


def test_only_names_and_keywords_that_real_cupy_has():
    names = fake_device.NAMES                 # the committed list, read from real CuPy
    numpy_only = next(n for n in ("asmatrix", "fromfunction", "genfromtxt", "loadtxt")
                      if hasattr(np, n) and n not in names["modules"]["cupy"])
    with pytest.raises(AttributeError, match=f"no attribute '{numpy_only}'.*real CuPy"):
        getattr(fx, numpy_only)
    a = fx.ones((2, 2))
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['where'\]"):
        fx.sum(a, where=a > 0)            # NumPy's sum takes where=, CuPy's does not
    with pytest.raises(AttributeError, match="'setflags'"):
        a.setflags(write=False)           # an ndarray method CuPy lacks
    with pytest.raises(AttributeError, match="has no attribute 'reduceat_nowhere'"):
        fx.add.reduceat_nowhere
    assert fx.add.reduceat(fx.arange(4.0), fx.asarray(np.array([0, 2]))).shape == (2,)


def test_counters_count_syncs_launches_transfers_and_scalar_uploads():
    c = fake_device.counters
    c.reset()
    a = fx.asarray(np.ones((4, 4), np.float32))        # 64 bytes in, one copy
    assert c.snapshot() == dict(host_syncs=0, launches=1, bytes_to_device=64, bytes_to_host=0,
                                scalar_uploads=0)
    a.reshape(16), a.T, a[1:]                           # views launch nothing
    fx.empty((3,))                                      # nor does an allocation
    assert c.launches == 1
    b = a * 2 + 1                                       # two elementwise kernels
    assert c.launches == 3
    b.get()
    fx.asarray(0.5)
    assert (c.host_syncs, c.bytes_to_host, c.scalar_uploads) == (1, 64, 1)


def test_python_scalars_in_ops_become_cached_device_constants():
    x = Tensor(fx.ones(3, dtype=np.float32))
    (x * 0.25).data.get()
    fake_device.counters.reset()
    for _ in range(3):
        y = x * 0.25 + 1.5 - x / 3.0
    assert fake_device.counters.scalar_uploads <= 2 and y.dtype == np.float32
    fake_device.counters.reset()
    x * 0.25 + 1.5 - x / 3.0
    assert fake_device.counters.scalar_uploads == 0


# ------------------------------------------------------------------ it catches what a GPU would
def test_a_deliberately_inserted_implicit_conversion_is_caught(tmp_path):
    """An op that sneaks its input through np.asarray works on the CPU and fails on the fake
    device exactly as it would on CuPy, inside a real training step (a test-local ELU with
    that bug runs after the first convolution of each trainer's generator, put there by a
    forward hook: nothing is patched)."""
    from nnlite.functional.activation import ELU
    from inpainting.training.config import TrainConfig
    from inpainting.training.train import Trainer

    class SneakyELU(ELU):
        def forward(self, x):
            np.asarray(x)                     # the bug: an implicit device-to-host copy
            return super().forward(x)

    def with_sneaky_op(trainer):
        trainer.generator.conv1.register_forward_hook(
            lambda module, inputs, output: SneakyELU(1.0)(output))
        return trainer

    cpu = with_sneaky_op(Trainer(TrainConfig(out_dir=str(tmp_path / "cpu"), device="cpu", **TINY)))
    cpu.generator_step()                      # NumPy: silently fine
    fake = with_sneaky_op(Trainer(TrainConfig(out_dir=str(tmp_path / "fake"), device="fake",
                                              **TINY)))
    with pytest.raises(TypeError, match=IMPLICIT_CONVERSION_MESSAGE[:40]):
        fake.generator_step()


# ------------------------------------------------------------------ the GPU code path in CI
def test_training_on_the_fake_device_matches_the_cpu_and_meets_the_sync_target(tmp_path):
    """One iteration (5 critic + 1 generator updates) on both: the same losses and weights;
    on the fake device at most 4 host synchronisations per iteration and, once the
    constants are made, no scalar upload."""
    from inpainting.training.config import TrainConfig
    from inpainting.training.train import Trainer

    trainers = {d: Trainer(TrainConfig(out_dir=str(tmp_path / d), device=d, **TINY))
                for d in ("cpu", "fake")}
    logs = {}
    for device, trainer in trainers.items():
        fake_device.counters.reset()
        logs[device] = [trainer.iteration(), trainer.iteration()]
    counts = fake_device.counters.snapshot()
    assert counts["host_syncs"] <= 2 * 4, counts
    fake_device.counters.reset()
    trainers["fake"].iteration()
    assert fake_device.counters.host_syncs <= 4
    assert fake_device.counters.scalar_uploads == 0, fake_device.counters.snapshot()
    for cpu, fake in zip(logs["cpu"], logs["fake"]):
        assert cpu.keys() == fake.keys()
        for key in cpu:
            assert fake[key] == pytest.approx(cpu[key], rel=1e-4, abs=1e-6), key
    # Adam moves every weight by about lr = 1e-4 per update whatever its gradient's size, so a
    # float32 rounding difference (the device path sums the convolutions in another order)
    # in a near-zero gradient can show at that scale: 3 updates, 10 lr of tolerance
    for name, value in trainers["cpu"].generator.state_dict().items():
        np.testing.assert_allclose(backend.to_device(trainers["fake"].generator.state_dict()[name],
                                                     "cpu"), value, atol=1e-3, err_msg=name)


def test_resume_on_the_fake_device_continues_exactly(tmp_path):
    """A run checkpointed at step 1 and resumed reaches the uninterrupted run's weights."""
    from inpainting.training.config import TrainConfig
    from inpainting.training.train import Trainer

    config = dict(TINY, device="fake")
    straight = Trainer(TrainConfig(out_dir=str(tmp_path / "straight"), **config))
    straight.iteration(), straight.iteration()
    first = Trainer(TrainConfig(out_dir=str(tmp_path / "resumed"), **config))
    first.iteration()
    first.save_checkpoint()               # what run() does at checkpoint_every
    resumed = Trainer(TrainConfig(out_dir=str(tmp_path / "resumed"), **config))
    assert resumed.resume() is not None and resumed.step == 1
    resumed.iteration()
    for name, value in straight.generator.state_dict().items():
        np.testing.assert_array_equal(backend.to_device(resumed.generator.state_dict()[name], "cpu"),
                                      backend.to_device(value, "cpu"), err_msg=name)
    assert resumed.dataset.state_dict() == straight.dataset.state_dict()


def test_inference_on_the_fake_device_matches_the_cpu():
    from inpainting.model.inference import inpaint
    from inpainting.model.networks import InpaintGenerator

    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 3, 40, 48)).astype(np.float32)
    mask = np.zeros((1, 1, 40, 48), np.float32)
    mask[..., 10:25, 12:30] = 1
    outputs = {}
    for device in ("cpu", "fake"):
        generator = InpaintGenerator(4, rng=np.random.default_rng(1)).to(device)
        result = inpaint(generator, backend.to_device(image, device), backend.to_device(mask, device))
        assert backend.device_of(result.output) == device
        outputs[device] = backend.to_device(result.output, "cpu")
    np.testing.assert_allclose(outputs["fake"], outputs["cpu"], atol=1e-5)


def test_tensor_and_module_move_to_the_fake_device_and_back():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.to("fake") * 3.0).sum()
    assert y.device == "fake" and isinstance(y.data, FakeArray)
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    layer = nnlite.nn.Linear(2, 2, rng=np.random.default_rng(0)).to("fake")
    assert all(p.device == "fake" for p in layer.parameters())
    with pytest.raises(nnlite.backend.BackendMismatchError):
        layer(Tensor(np.ones((1, 2))))
    F.relu(layer(Tensor(fx.ones((1, 2))))).sum().backward()
