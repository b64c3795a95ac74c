"""``nnlite.optim``: SGD and Adam against hand-written NumPy updates, state keyed by
parameter, and save/restore that continues training bit for bit."""
import math

import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from nnlite import Tensor, nn, optim

# A quadratic bowl f(p) = 0.5 * sum(a * (p - c)^2), gradient a * (p - c).
A = np.array([[1.0, 3.0], [0.5, 2.0]])
C = np.array([[0.3, -1.0], [2.0, 0.1]])


def _quadratic_grad(p):
    return A * (p - C)


def _descend(optimizer, param, steps):
    """Run ``steps`` optimizer steps on the bowl through autograd; return the trajectory."""
    path = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = (0.5 * A * (param - C) ** 2).sum()
        loss.backward()
        optimizer.step()
        path.append(param.data.copy())
    return path


def _numpy_adam(p, steps, lr, beta1, beta2, eps, weight_decay=0.0):
    """Adam as in Kingma & Ba, Algorithm 1, with PyTorch's placement of eps."""
    m, v, path = np.zeros_like(p), np.zeros_like(p), []
    for t in range(1, steps + 1):
        g = _quadratic_grad(p) + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat_scale = 1 / (1 - beta1 ** t)
        p = p - lr * m_hat_scale * m / (np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps)
        path.append(p.copy())
    return path


def _numpy_sgd(p, steps, lr, momentum, weight_decay):
    buffer, path = None, []
    for _ in range(steps):
        g = _quadratic_grad(p) + weight_decay * p
        buffer = g if buffer is None else momentum * buffer + g
        p = p - lr * (buffer if momentum else g)
        path.append(p.copy())
    return path


@pytest.mark.parametrize("settings", [dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8),
                                      dict(lr=1e-2, betas=(0.5, 0.9), eps=1e-8),
                                      dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3,
                                           weight_decay=0.1)])
def test_adam_matches_hand_written_numpy_adam(settings):
    start = np.array([[1.0, -2.0], [0.0, 0.5]])
    p = nn.Parameter(start.copy())
    ours = _descend(optim.Adam([p], **settings), p, 8)
    beta1, beta2 = settings["betas"]
    theirs = _numpy_adam(start, 8, settings["lr"], beta1, beta2, settings["eps"],
                         settings.get("weight_decay", 0.0))
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.5, 0.01)])
def test_sgd_matches_hand_written_numpy_sgd(momentum, weight_decay):
    start = np.array([[1.0, -2.0], [0.0, 0.5]])
    p = nn.Parameter(start.copy())
    ours = _descend(optim.SGD([p], lr=0.1, momentum=momentum, weight_decay=weight_decay), p, 6)
    theirs = _numpy_sgd(start, 6, 0.1, momentum, weight_decay)
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)


def test_state_is_keyed_by_parameter_and_only_for_parameters_with_gradients(rng):
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = Tensor(np.array([1.0, -1.0]))
    opt.step()
    assert list(opt.state) == [a] and opt.state[a]["step"] == 1
    np.testing.assert_array_equal(b.data, np.ones(3))   # no gradient, untouched
    opt.zero_grad()
    assert a.grad is None


def test_updates_are_in_place_on_the_same_parameter_objects_and_keep_float32(rng):
    model = nn.Linear(3, 2, rng=rng)
    params = list(model.parameters())
    arrays = [p.data for p in params]
    opt = optim.Adam(model.named_parameters(), lr=1e-2, betas=(0.5, 0.9))
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    for _ in range(2):
        opt.zero_grad()
        F.mse_loss(model(x), np.zeros((4, 2), dtype=np.float32)).backward()
        opt.step()
    assert all(p is q and p.data is arr for p, q, arr in zip(model.parameters(), params, arrays))
    for p in params:
        assert p.dtype == np.float32
        assert opt.state[p]["exp_avg"].dtype == np.float32
        assert opt.state[p]["exp_avg_sq"].dtype == np.float32


def _training_run(rng_seed):
    rng = np.random.default_rng(rng_seed)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.ELU(), nn.Linear(4, 1, rng=rng))
    x = Tensor(rng.standard_normal((8, 3)).astype(np.float32))
    target = np.sin(x.data[:, :1])
    return model, x, target


def _train(model, opt, x, target, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=1e-2, betas=(0.5, 0.9)),
                                  lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9)],
                         ids=["adam", "sgd-momentum"])
def test_saved_state_continues_exactly(make, tmp_path):
    model, x, target = _training_run(0)
    opt = make(model.parameters())
    _train(model, opt, x, target, 3)
    nnlite.save(tmp_path / "ckpt.npz", {"model": model.state_dict(), "optimizer": opt.state_dict()})
    uninterrupted = _train(model, opt, x, target, 4)
    final = model.state_dict()

    fresh, _, _ = _training_run(1)                       # different initial weights
    fresh_opt = make(fresh.parameters())
    state = nnlite.load(tmp_path / "ckpt.npz")
    fresh.load_state_dict(state["model"])
    fresh_opt.load_state_dict(state["optimizer"])
    resumed = _train(fresh, fresh_opt, x, target, 4)
    assert resumed == uninterrupted
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, final[name])


def test_state_before_the_first_step_round_trips(tmp_path):
    p = nn.Parameter(np.zeros(2))
    nnlite.save(tmp_path / "opt.npz", optim.Adam([p], lr=0.5).state_dict())
    restored = optim.Adam([p])
    restored.load_state_dict(nnlite.load(tmp_path / "opt.npz"))
    assert restored.lr == 0.5 and restored.state == {}


def test_load_state_dict_refuses_mismatches():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    adam = optim.Adam([a, b])
    a.grad, b.grad = Tensor(np.ones(2)), Tensor(np.ones(3))
    adam.step()
    state = adam.state_dict()
    with pytest.raises(ValueError, match="saved by Adam"):
        optim.SGD([a, b], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="state is for 2 parameters, this optimizer has 1"):
        optim.Adam([a]).load_state_dict(state)
    with pytest.raises(ValueError, match="exp_avg of param 0 has shape"):
        optim.Adam([nn.Parameter(np.ones(5)), b]).load_state_dict(state)
    with pytest.raises(ValueError, match="not an optimizer state .*'foo'"):
        optim.Adam([a, b]).load_state_dict({"foo": 1})
    with pytest.raises(ValueError, match="expects the dict that state_dict\\(\\) returned, got list"):
        optim.Adam([a, b]).load_state_dict([state])
    with pytest.raises(ValueError, match=r"unexpected parameter indices \['7'\]"):
        optim.Adam([a, b]).load_state_dict({**state, "state": {**state["state"], "7": {}}})
    with pytest.raises(ValueError, match=r"unknown hyperparameters \['momentum'\]"):
        optim.Adam([a, b]).load_state_dict(
            {**state, "hyperparameters": {**state["hyperparameters"], "momentum": 0.9}})


def test_hyperparameters_are_attributes_and_are_validated():
    p = nn.Parameter(np.zeros(2))
    opt = optim.Adam([p], lr=1e-3, betas=(0.5, 0.9))
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps) == (1e-3, 0.5, 0.9, 1e-8)
    opt.lr = 0.5
    p.grad = Tensor(np.array([1.0, -1.0]))
    opt.step()                                            # first Adam step moves by ~lr
    np.testing.assert_allclose(p.data, [-0.5, 0.5], rtol=1e-6)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.SGD([p], lr=-1.0)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="given twice"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="not a Tensor that requires grad"):
        optim.SGD([Tensor(np.zeros(2))], lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: lr must be a number, got 'fast' \(str\)"):
        optim.SGD([p], lr="fast")
    with pytest.raises(TypeError, match=r"SGD: momentum must be a number, got True \(bool\)"):
        optim.SGD([p], lr=0.1, momentum=True)
    with pytest.raises(ValueError, match="SGD: lr must be >= 0 and finite, got inf"):
        optim.SGD([p], lr=float("inf"))
    with pytest.raises(ValueError, match="Adam: lr must be >= 0 and finite, got nan"):
        opt.lr = float("nan")                             # setting one is checked too
    assert opt.lr == 0.5
    with pytest.raises(AttributeError, match="Adam has no attribute 'momentum'"):
        opt.momentum
    assert repr(opt) == "Adam(1 parameters, lr=0.5, beta1=0.5, beta2=0.9, eps=1e-08, weight_decay=0)"


def test_gradient_shape_errors_name_the_parameter(rng):
    model = nn.Linear(2, 2, rng=rng)
    opt = optim.SGD(model.named_parameters(), lr=0.1)
    model.weight.grad = Tensor(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="gradient of weight has shape"):
        opt.step()


def test_loading_a_state_replaces_the_whole_state_not_merges_it():
    """load_state_dict of a pre-step state resets an optimizer that has stepped: the
    momentum buffer is gone, so the next SGD step is p - lr * g (buffer = g)."""
    p = nn.Parameter(np.asarray([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    fresh = opt.state_dict()
    p.grad = Tensor(np.asarray([10.0, 10.0]))
    opt.step()                                   # p = [0, 1], buffer = [10, 10]
    opt.load_state_dict(fresh)
    assert opt.state == {}
    p.grad = Tensor(np.asarray([1.0, -1.0]))
    opt.step()                                   # buffer restarts at g: p = [0 - 0.1, 1 + 0.1]
    np.testing.assert_allclose(p.data, [-0.1, 1.1], rtol=0, atol=1e-12)
