"""``nnlite.nn``: Module registration and traversal, state_dict round trips and
their errors, initialisers, Linear and the small layers."""
import math

import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from nnlite import Tensor, nn
from nnlite.nn import init
from nnlite.testing import gradcheck, gradgradcheck


class Block(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.second = nn.Linear(2, 3, rng=rng)        # registered before first on purpose
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.first = nn.Linear(3, 2, rng=rng)

    def forward(self, x):
        return self.first(F.tanh(self.second(x) * self.scale))


class Net(nn.Module):
    def __init__(self, rng):
        super().__init__()
        self.block = Block(rng)
        self.head = nn.Sequential(nn.ELU(), nn.Linear(2, 1, rng=rng))
        self.register_buffer("offset", np.full(1, 0.5, dtype=np.float32))

    def forward(self, x):
        return self.head(self.block(x)) + self.offset


def _x(rng, n=4):
    return Tensor(rng.standard_normal((n, 2)).astype(np.float32))


# ------------------------------------------------------------------ registration
def test_parameters_are_registered_in_assignment_order_with_dotted_names(rng):
    net = Net(rng)
    names = [name for name, _ in net.named_parameters()]
    # PyTorch's order: a module's own parameters, then each child's, depth first.
    assert names == ["block.scale", "block.second.weight", "block.second.bias",
                     "block.first.weight", "block.first.bias", "head.1.weight", "head.1.bias"]
    assert [p for p in net.parameters()] == [p for _, p in net.named_parameters()]
    assert [name for name, _ in net.named_modules()] == [
        "", "block", "block.second", "block.first", "head", "head.0", "head.1"]
    assert list(net.children()) == [net.block, net.head]
    assert net.num_parameters() == (2 * 3 + 3) + 3 + (3 * 2 + 2) + (2 + 1)
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_reassigning_or_deleting_an_attribute_unregisters_it(rng):
    block = Block(rng)
    block.scale = 2.0                                  # no longer a parameter
    del block.first
    assert [n for n, _ in block.named_parameters()] == ["second.weight", "second.bias"]
    block.first = nn.Linear(3, 2, rng=rng)             # registered again, now last
    assert list(block._modules) == ["second", "first"]


def test_buffers_stay_buffers_and_refuse_gradients(rng):
    net = Net(rng)
    net.offset = np.full(1, 2.0, dtype=np.float32)     # reassigning a buffer keeps it one
    assert dict(net.named_buffers())["offset"].data[0] == 2.0
    assert "offset" in net.state_dict()
    with pytest.raises(ValueError, match="buffer 'scale' requires grad; use a Parameter"):
        net.register_buffer("scale", Tensor(np.ones(2), requires_grad=True))

    class Early(nn.Module):
        def __init__(self):
            self.register_buffer("count", np.zeros(1))

    with pytest.raises(AttributeError, match=r"call super\(\)\.__init__\(\) before register_buffer"):
        Early()
    with pytest.raises(NotImplementedError, match="Module must implement forward"):
        nn.Module()(np.zeros(1))


def test_a_shared_parameter_is_listed_once(rng):
    net = nn.Sequential(nn.Linear(2, 2, rng=rng), nn.Tanh())
    net.tied = net[0]
    assert len(list(net.parameters())) == 2


def test_assigning_before_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Broken()


def test_parameter_always_requires_grad():
    p = nn.Parameter(np.zeros(3))
    assert p.requires_grad and p.is_leaf
    shared = nn.Parameter(Tensor(p.data))
    assert shared.data is p.data
    with pytest.raises(ValueError, match="always requires grad"):
        nn.Parameter(np.zeros(3), requires_grad=False)
    assert repr(p).startswith("Parameter(")


def test_zero_grad_train_eval_and_to_keep_identity(rng):
    net = Net(rng)
    net(_x(rng)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.eval() is net and not any(m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    before = list(net.parameters())
    data = [p.data for p in before]
    net(_x(rng)).sum().backward()                       # .to moves gradients too
    grads = [p.grad.data for p in net.parameters()]
    assert net.to("cpu") is net
    assert all(p is q and p.data is d for p, q, d in zip(net.parameters(), before, data))
    assert all(np.array_equal(p.grad.data, g) for p, g in zip(net.parameters(), grads))


def test_repr_lists_the_tree(rng):
    text = repr(nn.Sequential(nn.Linear(3, 2, rng=rng), nn.LeakyReLU(0.2)))
    assert text == ("Sequential(\n  (0): Linear(in_features=3, out_features=2, bias=True)\n"
                    "  (1): LeakyReLU(negative_slope=0.2)\n)")


# ------------------------------------------------------------------ forward hooks
def test_a_forward_hook_sees_the_module_its_inputs_and_output(rng):
    net, x = Net(rng), _x(rng)
    seen = []
    net.block.register_forward_hook(lambda module, inputs, output: seen.append((module, inputs, output)))
    y = net(x)
    [(module, inputs, output)] = seen
    assert module is net.block and inputs == (x,) and isinstance(output, Tensor)
    np.testing.assert_array_equal(net.head(output).data + 0.5, y.data)   # the output used on


def test_a_hook_that_returns_a_value_replaces_the_output_and_remove_unregisters_it(rng):
    net, x = Net(rng), _x(rng)
    before = net(x).data
    handle = net.block.register_forward_hook(lambda module, inputs, output: output * 0.0)
    np.testing.assert_allclose(net(x).data, net.head(Tensor(np.zeros((4, 2), np.float32))).data + 0.5)
    handle.remove()
    handle.remove()                                     # twice is harmless
    np.testing.assert_array_equal(net(x).data, before)
    with net.register_forward_hook(lambda module, inputs, output: output + 1.0):
        np.testing.assert_allclose(net(x).data, before + 1.0)
    np.testing.assert_array_equal(net(x).data, before)


def test_hooks_run_in_registration_order_each_seeing_the_last_replacement(rng):
    layer, calls = nn.Tanh(), []

    def hook(tag, replacement=None):
        def run(module, inputs, output):
            calls.append((tag, float(output.data.sum())))
            return replacement
        return run

    handles = [layer.register_forward_hook(hook("a")),
               layer.register_forward_hook(hook("b", Tensor(np.full(2, 3.0, np.float32)))),
               layer.register_forward_hook(hook("c"))]
    assert float(layer(Tensor(np.zeros(2, np.float32))).data.sum()) == 6.0
    assert calls == [("a", 0.0), ("b", 0.0), ("c", 6.0)]
    handles[1].remove()
    calls.clear()
    layer(Tensor(np.zeros(2, np.float32)))
    assert [tag for tag, _ in calls] == ["a", "c"]


def test_hooks_are_not_state_and_forward_itself_skips_them(rng, tmp_path):
    net, x = Net(rng), _x(rng)
    plain = net.state_dict()
    net.block.register_forward_hook(lambda module, inputs, output: output * 2.0)
    state = net.state_dict()
    assert list(state) == list(plain)
    assert all(np.array_equal(state[k], plain[k]) for k in plain)
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.second", "block.first",
                                                   "head", "head.0", "head.1"]
    nnlite.save(tmp_path / "hooked.npz", {"model": state})
    fresh = Net(np.random.default_rng(5))
    fresh.load_state_dict(nnlite.load(tmp_path / "hooked.npz")["model"])
    np.testing.assert_array_equal(fresh.block(x).data * 2.0, net.block(x).data)
    np.testing.assert_array_equal(fresh.block.forward(x).data, net.block.forward(x).data)
    assert "RemovableHandle" not in repr(net) and repr(net) == repr(fresh)


# ------------------------------------------------------------------ state
def test_state_dict_is_an_ordered_copy_with_buffers(rng):
    net = Net(rng)
    state = net.state_dict()
    assert list(state) == [n for n, _ in net.named_parameters()] + ["offset"]
    state["block.scale"][:] = 7.0
    assert np.all(net.block.scale.data == 1.0)
    assert "offset" not in dict(net.named_parameters())


def test_state_dict_round_trip_through_save_and_load(rng, tmp_path):
    source, target = Net(rng), Net(np.random.default_rng(99))
    x = _x(rng)
    assert not np.allclose(source(x).data, target(x).data)
    nnlite.save(tmp_path / "model.npz", {"model": source.state_dict()})
    kept = list(target.parameters())
    result = target.load_state_dict(nnlite.load(tmp_path / "model.npz")["model"])
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(source(x).data, target(x).data)
    assert all(p is q for p, q in zip(kept, target.parameters()))


def test_load_state_dict_casts_and_accepts_tensors(rng):
    net = nn.Linear(2, 3, rng=rng)
    weight = rng.standard_normal((3, 2))
    net.load_state_dict({"weight": Tensor(weight), "bias": np.arange(3.0)})
    assert net.weight.dtype == np.float32 and net.bias.dtype == np.float32
    np.testing.assert_allclose(net.weight.data, weight.astype(np.float32))
    weight[:] = 0.0                                     # the module holds its own copy
    assert np.any(net.weight.data != 0.0)


def test_load_state_dict_lists_every_problem(rng):
    net = Net(rng)
    state = net.state_dict()
    del state["block.scale"], state["head.1.bias"]
    state["block.extra"] = np.zeros(2)
    state["block.first.weight"] = np.zeros((3, 3))
    with pytest.raises(nn.StateDictError) as caught:
        net.load_state_dict(state)
    message = str(caught.value)
    assert "missing keys: block.scale, head.1.bias" in message
    assert "unexpected keys: block.extra" in message
    assert "block.first.weight: expected shape (2, 3), got (3, 3)" in message


def test_non_strict_load_reports_keys_but_still_refuses_wrong_shapes(rng):
    net = Net(rng)
    state = {"block.scale": np.full(3, 2.0), "surplus": np.zeros(1)}
    result = net.load_state_dict(state, strict=False)
    assert "head.1.bias" in result.missing_keys and result.unexpected_keys == ["surplus"]
    np.testing.assert_array_equal(net.block.scale.data, [2.0, 2.0, 2.0])
    with pytest.raises(nn.StateDictError, match="block.scale: expected shape"):
        net.load_state_dict({"block.scale": np.zeros(4)}, strict=False)
    with pytest.raises(TypeError, match="mapping"):
        net.load_state_dict([1, 2])


# ------------------------------------------------------------------ init
@pytest.mark.parametrize("shape, fans", [((30, 20), (20, 30)), ((8, 4, 3, 5), (60, 120))])
def test_fans_for_linear_and_oihw_conv_weights(shape, fans):
    assert init.calculate_fans(shape) == fans
    with pytest.raises(ValueError, match="at least 2 axes"):
        init.calculate_fans((5,))


def test_xavier_uniform_bound_spread_and_reproducibility():
    t = Tensor(np.empty((64, 32, 3, 3), dtype=np.float32))
    assert init.xavier_uniform_(t, rng=np.random.default_rng(3)) is t
    bound = math.sqrt(6.0 / (32 * 9 + 64 * 9))
    assert t.dtype == np.float32
    assert np.abs(t.data).max() <= bound and np.abs(t.data).max() > 0.99 * bound
    assert t.data.var() == pytest.approx(bound ** 2 / 3, rel=0.02)
    again = init.xavier_uniform_(Tensor(np.empty((64, 32, 3, 3))), rng=np.random.default_rng(3))
    np.testing.assert_array_equal(t.data, again.data.astype(np.float32))
    gain2 = init.xavier_uniform_(Tensor(np.empty((64, 32, 3, 3))), gain=2.0,
                                 rng=np.random.default_rng(3))
    np.testing.assert_allclose(gain2.data, 2 * again.data)


def test_kaiming_and_simple_initialisers():
    rng = np.random.default_rng(5)
    t = init.kaiming_normal_(Tensor(np.empty((200, 50))), nonlinearity="relu", rng=rng)
    assert t.data.std() == pytest.approx(math.sqrt(2.0 / 50), rel=0.03)
    t = init.kaiming_uniform_(Tensor(np.empty((200, 50))), a=0.2, mode="fan_out", rng=rng)
    bound = math.sqrt(3.0) * math.sqrt(2.0 / (1 + 0.2 ** 2)) / math.sqrt(200)
    assert np.abs(t.data).max() <= bound and np.abs(t.data).max() > 0.99 * bound
    assert np.all(init.zeros_(Tensor(np.ones((2, 2)))).data == 0)
    u = init.uniform_(Tensor(np.empty(1000)), -2.0, -1.0, rng=rng).data
    assert u.min() >= -2.0 and u.max() <= -1.0
    n = init.normal_(Tensor(np.empty(4000)), 3.0, 0.5, rng=rng).data
    assert n.mean() == pytest.approx(3.0, abs=0.05) and n.std() == pytest.approx(0.5, rel=0.05)
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swish")
    t = init.xavier_normal_(Tensor(np.empty((300, 100))), gain=2.0, rng=rng)
    assert t.data.mean() == pytest.approx(0.0, abs=0.01)
    assert t.data.std() == pytest.approx(2.0 * math.sqrt(2.0 / (100 + 300)), rel=0.03)
    assert np.all(init.ones_(Tensor(np.zeros((2, 3)))).data == 1)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(Tensor(np.empty((4, 4))), mode="fan_avg", rng=rng)


def test_initialisers_need_an_explicit_generator():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        init.xavier_uniform_(Tensor(np.empty((2, 2))), rng=None)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        init.normal_(Tensor(np.empty(2)), rng=np.random.RandomState(0))


# ------------------------------------------------------------------ layers
def test_linear_matches_the_formula_and_its_initialisation(rng):
    layer = nn.Linear(20, 10, rng=rng)
    assert layer.weight.shape == (10, 20) and layer.bias.shape == (10,)
    assert np.all(layer.bias.data == 0)
    assert np.abs(layer.weight.data).max() <= math.sqrt(6.0 / 30)
    x = rng.standard_normal((3, 20)).astype(np.float32)
    layer.bias.data[:] = rng.standard_normal(10)
    y = layer(Tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-5)
    assert nn.Linear(20, 10, bias=False, rng=rng).bias is None
    with pytest.raises(ValueError, match=r"input must be \(\.\.\., 20\)"):
        layer(Tensor(np.zeros((3, 19), dtype=np.float32)))


def test_linear_gradients_in_float64(rng):
    layer = nn.Linear(3, 2, rng=rng, dtype=np.float64)
    layer.bias.data[:] = rng.standard_normal(2)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)

    def fn(x, w, b):
        return layer(x)

    assert gradcheck(fn, [x, layer.weight, layer.bias])
    assert gradgradcheck(fn, [x, layer.weight, layer.bias])


def test_activation_modules_are_the_functional_ops(rng):
    x = Tensor(rng.standard_normal((2, 3, 2)))
    pairs = [(nn.ReLU(), F.relu(x)), (nn.LeakyReLU(), F.leaky_relu(x)),
             (nn.LeakyReLU(0.2), F.leaky_relu(x, 0.2)), (nn.ELU(0.5), F.elu(x, 0.5)),
             (nn.Tanh(), F.tanh(x)), (nn.Sigmoid(), F.sigmoid(x)),
             (nn.Flatten(), F.reshape(x, (2, 6)))]
    for module, expected in pairs:
        np.testing.assert_array_equal(module(x).data, expected.data)
        assert module.num_parameters() == 0


def test_sequential_order_indexing_and_type_check(rng):
    layers = [nn.Linear(2, 3, rng=rng), nn.Tanh(), nn.Linear(3, 1, rng=rng)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and list(seq) == layers and seq[-1] is layers[2]
    x = _x(rng)
    np.testing.assert_array_equal(seq(x).data, layers[2](layers[1](layers[0](x))).data)
    with pytest.raises(TypeError, match="item 1 is function"):
        nn.Sequential(nn.Tanh(), F.tanh)


def test_load_state_dict_copies_so_the_source_can_change_afterwards(rng):
    """load_state_dict copies values in: later edits of the given arrays do not reach the model."""
    model = nn.Linear(2, 3, rng=rng)
    state = {name: np.full(value.shape, 0.5, dtype=np.float32)
             for name, value in model.state_dict().items()}
    model.load_state_dict(state)
    for value in state.values():
        value[...] = 99.0
    np.testing.assert_array_equal(model.weight.data, np.full((3, 2), 0.5, dtype=np.float32))
    np.testing.assert_array_equal(model.bias.data, np.full(3, 0.5, dtype=np.float32))


def test_deleting_a_buffer_unregisters_it():
    """del module.buffer removes it from named_buffers and state_dict."""
    module = nn.Module()
    module.register_buffer("running", np.ones(2))
    assert list(module.state_dict()) == ["running"]
    del module.running
    assert list(module.named_buffers()) == []
    assert list(module.state_dict()) == []


def test_conv_kernel_size_is_height_then_width(rng):
    """Conv2d(kernel_size=(kh, kw)): weight (out, in, kh, kw); an unpadded conv of an
    (H, W) image gives (H - kh + 1, W - kw + 1)."""
    conv = nn.Conv2d(1, 2, (2, 3), rng=rng)
    assert conv.weight.shape == (2, 1, 2, 3)
    assert conv.kernel_size == (2, 3)
    assert conv(Tensor(np.ones((1, 1, 5, 6), dtype=np.float32))).shape == (1, 2, 4, 4)
    transposed = nn.ConvTranspose2d(1, 2, (2, 3), rng=rng)
    assert transposed.weight.shape == (1, 2, 2, 3)
