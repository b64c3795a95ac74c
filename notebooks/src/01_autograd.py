"""Notebook 01 source: autograd from scratch (built by notebooks/build_notebooks.py)."""
# %% [markdown]
# # 1. Autograd from scratch
#
# **After this notebook you will be able to** build a reverse-mode autograd engine for
# scalars yourself and check it against a library; read and draw the graph a computation
# records (`nnlite.draw_graph`), including the extra graph a `create_graph=True` backward
# records for a gradient penalty; write a `Function` with a backward that is itself
# differentiable; and check gradients and second derivatives with finite differences.
#
# *Prerequisites:* Python and NumPy; the chain rule. *Exercises:* 1.1 and 1.2 (cells tagged
# `exercise`; the check cell under each fails until you solve it; solutions in
# [solutions/01_autograd.py](solutions/01_autograd.py)).
#
# DeepFill v1 is trained with a WGAN-GP critic loss, whose gradient penalty contains a
# *gradient*, ‖∇ₓ̂ D(x̂)‖, and training differentiates that penalty again with respect to
# the critic's weights. So the library underneath needs reverse-mode automatic
# differentiation **of any order**. This notebook first builds a tiny engine in front of
# you, then opens up `nnlite`'s:
#
# 1. how a computation records its graph, and how `backward` walks it;
# 2. the same idea in 60 lines for scalars, built here and compared with nnlite;
# 3. higher-order derivatives, which come from writing every backward with
#    differentiable ops, and the graph such a backward records;
# 4. how `gradcheck` / `gradgradcheck` check all of that, by first doing their job
#    by hand with a finite difference.
#
# | idea | library | tests |
# |---|---|---|
# | graph recording, `backward`, `grad` | `nnlite/autograd.py` (`Function`, `run_backward`, `grad`), `nnlite/tensor.py` | `tests/test_autograd.py` |
# | drawing the graph | `nnlite.to_dot`, `nnlite.draw_graph` (`nnlite/dot.py`) | `tests/test_dot.py` |
# | higher-order derivatives (`create_graph=True`) | `nnlite.grad(..., create_graph=True)` | `tests/test_autograd.py::test_third_derivative_with_create_graph` |
# | numerical checks | `nnlite.testing.gradcheck`, `gradgradcheck` | `tests/test_gradcheck.py` |
#
# Longer explanation: [docs/autograd.md](../docs/autograd.md).

# %%
import math
import os

import matplotlib.pyplot as plt
import numpy as np

import nnlite
import nnlite.functional as F
from nnlite import Tensor
from nnlite.testing import gradcheck, gradgradcheck

QUICK = os.environ.get("DEEPFILL_NOTEBOOK_QUICK", "0") == "1"
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6, 3)})
rng = np.random.default_rng(0)
print("QUICK =", QUICK)

# %% [markdown]
# ## 1.1 The graph is recorded while the code runs
#
# A `Tensor` wraps a NumPy array. When an operation is applied to tensors that require
# gradients, the output remembers the `Function` that made it (`creator`), the function
# remembers its inputs, and every node gets a *generation* (its depth). Take
#
# $$z = (xy + x)^2 .$$

# %%
x = Tensor(np.array(2.0), requires_grad=True)
y = Tensor(np.array(3.0), requires_grad=True)
a = x * y
b = a + x
z = b * b
print("z =", z.item())


def show_graph(output):
    """Print the recorded graph, from the output back to the leaves (inspection only)."""
    seen, stack = set(), [output.creator]
    while stack:
        function = stack.pop()
        if function is None or id(function) in seen:
            continue
        seen.add(id(function))
        names = ["leaf" if t.creator is None else f"{type(t.creator).__name__} output"
                 for t in function.inputs]
        print(f"{type(function).__name__:>4} (generation {function.generation}) "
              f"<- inputs: {', '.join(names)}")
        stack.extend(t.creator for t in function.inputs)


show_graph(z)

# %% [markdown]
# The same graph drawn by `nnlite.draw_graph` (Graphviz DOT text from `nnlite.to_dot`,
# shown as a picture when Graphviz's `dot` program is installed, as the text otherwise):
# blue boxes are function calls, ellipses tensors with their shape and dtype, green the
# leaves that require a gradient. `b` feeds the last `Mul` twice: two arrows.

# %%
nnlite.draw_graph(z, names={"x": x, "y": y, "a": a, "b": b, "z": z}, show_values=True)

# %% [markdown]
# ## 1.2 `backward`: vector–Jacobian products from the output back to the leaves
#
# `z.backward()` starts from ∂z/∂z = 1 and visits the functions in decreasing generation
# (a heap), so that a tensor used twice (here `b`, both inputs of the last `Mul`, and
# `x`, used by `Mul` and by `Add`) has received *all* its gradient contributions before
# its own creator propagates them. By hand:
#
# $$\frac{\partial z}{\partial x} = 2(xy+x)(y+1) = 64, \qquad
#   \frac{\partial z}{\partial y} = 2(xy+x)\,x = 32 .$$

# %%
z.backward()
print("autograd:", x.grad.item(), y.grad.item())
xv, yv = 2.0, 3.0
print("by hand: ", 2 * (xv * yv + xv) * (yv + 1), 2 * (xv * yv + xv) * xv)

# %% [markdown]
# `nnlite.grad(outputs, inputs)` computes the same numbers but *returns* them instead of
# accumulating into `.grad` (PyTorch's `torch.autograd.grad`). The trainer uses it for the
# gradient penalty, so that no parameter's `.grad` ever holds a graph.

# %%
x.grad = y.grad = None
gx, gy = nnlite.grad((x * y + x) ** 2, [x, y])
print(gx.item(), gy.item(), "| .grad untouched:", x.grad)

# %% [markdown]
# ## 1.3 Build it yourself: a scalar engine in 60 lines
#
# Everything above fits in a page when the values are plain Python floats (the idea of
# micrograd). A `Value` keeps its number, its gradient, the values it was made from and a
# small function `backward_step` that pushes its gradient into theirs by the chain rule.
# `backward()` sorts the graph so that a value is processed only after everything that
# uses it (a topological order; nnlite uses the generation heap instead), sets dz/dz = 1
# and runs the steps in that order. Gradients are *added* (`+=`): a value used twice gets
# two contributions.

# %%
class Value:
    """A scalar that remembers how it was computed (reverse-mode autograd for floats)."""

    def __init__(self, data, parents=(), op=""):
        self.data, self.grad = float(data), 0.0
        self.parents, self.op = parents, op
        self.backward_step = lambda: None          # pushes self.grad into the parents

    def __repr__(self):
        return f"Value({self.data:.4g}, grad={self.grad:.4g})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def step():                                # d(a+b)/da = d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad
        out.backward_step = step
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def step():                                # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out.backward_step = step
        return out

    def __pow__(self, k):                          # k a plain number
        out = Value(self.data ** k, (self,), f"**{k}")

        def step():                                # d(a^k)/da = k a^(k-1)
            self.grad += k * self.data ** (k - 1) * out.grad
        out.backward_step = step
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def step():                                # d tanh(a)/da = 1 - tanh(a)^2
            self.grad += (1 - t * t) * out.grad
        out.backward_step = step
        return out

    __radd__, __rmul__ = __add__, __mul__
    def __neg__(self): return self * -1
    def __sub__(self, other): return self + (-other)

    def backward(self):
        order, seen = [], set()

        def visit(v):                              # depth first: parents before v
            if id(v) not in seen:
                seen.add(id(v))
                for parent in v.parents:
                    visit(parent)
                order.append(v)
        visit(self)
        self.grad = 1.0
        for v in reversed(order):                  # users before what they use
            v.backward_step()


# %% [markdown]
# The example of 1.1 with the engine, then a bigger expression, each against nnlite:

# %%
xv_, yv_ = Value(2.0), Value(3.0)
zv = (xv_ * yv_ + xv_) ** 2
zv.backward()
print("engine:", xv_.grad, yv_.grad, "| nnlite:", gx.item(), gy.item())


def expression(p, q, r, tanh):
    """The same formula for the engine (Value) and for nnlite (Tensor)."""
    s = p * q - r ** 2
    return tanh(s * 0.5 + p) * r + s * s


pv, qv, rv = Value(0.4), Value(-1.3), Value(0.8)
ev = expression(pv, qv, rv, lambda v: v.tanh())
ev.backward()
pt, qt, rt = (Tensor(np.array(v), requires_grad=True) for v in (0.4, -1.3, 0.8))
et = expression(pt, qt, rt, F.tanh)
grads = nnlite.grad(et, [pt, qt, rt])
for name, mine, theirs in zip("pqr", (pv, qv, rv), grads):
    print(f"d e/d{name}: engine {mine.grad:+.12f}  nnlite {theirs.item():+.12f}")
assert abs(ev.data - et.item()) < 1e-12
assert all(abs(m.grad - t.item()) < 1e-12 for m, t in zip((pv, qv, rv), grads))

# %% [markdown]
# What the small engine cannot do is differentiate a gradient: its `backward_step`s work
# on floats and record nothing, so `pv.grad` is a number, not a `Value` with a history.
# nnlite's backwards are written with its own ops on tensors; that is the whole
# difference (section 1.4).

# %% [exercise]
# Exercise 1.1: give the engine exp. Derive d exp(a)/da, then complete `step` so that
# a.grad (here `self.grad`) receives out.grad times that derivative. Keep the `+=`.
def value_exp(self):
    out = Value(math.exp(self.data), (self,), "exp")

    def step():
        pass                                       # your code: self.grad += ...
    out.backward_step = step
    return out


Value.exp = value_exp

# %% [check]
av, bv = Value(0.3), Value(-1.2)
ev = (av * bv).exp() + av.exp() * bv
ev.backward()
at, bt = Tensor(np.array(0.3), requires_grad=True), Tensor(np.array(-1.2), requires_grad=True)
ga, gb = nnlite.grad(F.exp(at * bt) + F.exp(at) * bt, [at, bt])
assert abs(av.grad - ga.item()) < 1e-12 and abs(bv.grad - gb.item()) < 1e-12, (
    f"Exercise 1.1: engine gives ({av.grad:.6f}, {bv.grad:.6f}), nnlite "
    f"({ga.item():.6f}, {gb.item():.6f})")
print("Exercise 1.1 solved: the engine's exp matches nnlite")

# %% [markdown]
# ## 1.4 Higher-order derivatives come for free
#
# Every `Function.backward` in nnlite is written with nnlite's own ops on tensors (for
# example, `tanh`'s backward is `gy * (1 - y * y)` with `y` the output *tensor*). With
# `create_graph=True` the engine records a graph while running backward, so the gradient
# is an ordinary differentiable tensor. Differentiating three times gives
# tanh‴(x) = −2 + 8 tanh² x − 6 tanh⁴ x. Let the library do it and compare with the
# closed forms:

# %%
xs = Tensor(np.linspace(-3, 3, 121), requires_grad=True)
out = F.tanh(xs)
derivatives = [out]
for order in range(3):
    (d,) = nnlite.grad(derivatives[-1].sum(), xs, create_graph=True)
    derivatives.append(d)

t = np.tanh(xs.data)
closed = [t, 1 - t**2, -2 * t * (1 - t**2), (1 - t**2) * (6 * t**2 - 2)]
for order, (d, c) in enumerate(zip(derivatives, closed)):
    print(f"order {order}: max |autograd - closed form| = {np.max(np.abs(d.data - c)):.1e}")

fig, ax = plt.subplots()
for order, d in enumerate(derivatives):
    ax.plot(xs.data, d.data, label=["tanh", "tanh'", "tanh''", "tanh'''"][order])
ax.set_xlabel("x")
ax.legend(fontsize=8)
ax.set_title("tanh and three derivatives, all by autograd")
plt.show()

# %% [markdown]
# Summing before differentiating is legitimate here because tanh acts elementwise: the
# gradient of Σᵢ tanh(xᵢ) with respect to xᵢ is tanh′(xᵢ).

# %% [markdown]
# **The graph of a gradient penalty.** Take a tiny critic D(x) = Σ tanh(W x) and the
# penalty (‖∇ₓD‖ − 1)² (notebook 5). `nnlite.grad(..., create_graph=True)` runs the
# backward of `Tanh`, `MatMul`, ... *while recording*: the gradient ∇ₓD is the output of a
# graph made by those backwards (orange, dashed box, each labelled with the backward that
# recorded it). Training differentiates the penalty with respect to W, so the next
# backward walks through both parts, the forward graph (blue) and the recorded backward.
# (D itself is not in the picture: tanh's backward needs only tanh's output.)

# %%
xc_ = Tensor(np.array([0.3, -0.4]), requires_grad=True)
Wc = Tensor(np.array([[1.0, 2.0], [0.5, -1.0]]), requires_grad=True)
D = F.tanh(Wc @ xc_).sum()
(grad_x,) = nnlite.grad(D, xc_, create_graph=True)
penalty = (((grad_x * grad_x).sum()).sqrt() - 1.0) ** 2
(dpenalty_dW,) = nnlite.grad(penalty, Wc)                # the double backward
print("penalty =", penalty.item(), "| d penalty / dW =\n", dpenalty_dW.data)
nnlite.draw_graph(penalty, names={"x": xc_, "W": Wc, "∇x D": grad_x, "penalty": penalty},
                  rankdir="TB")

# %% [exercise]
# Exercise 1.2: write x³ as an nnlite Function. forward gets the array x; backward gets
# the incoming gradient gy (a Tensor) and must return d(x³)/dx · gy. Write it with
# *tensors* (self.inputs[0], not an array) so it is differentiable again:
# gradgradcheck must pass too.
class Cube(nnlite.Function):
    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        (x,) = self.inputs
        return None                                # your code


# %% [check]
xcube = Tensor(rng.standard_normal(4), requires_grad=True)
(g_cube,) = nnlite.grad(Cube()(xcube).sum(), xcube, allow_unused=True)
assert g_cube is not None, "Exercise 1.2: Cube.backward returns no gradient yet"
assert np.allclose(g_cube.data, 3 * xcube.data ** 2), "Exercise 1.2: wrong derivative"
assert gradcheck(lambda t: Cube()(t), [xcube]), "Exercise 1.2: gradcheck fails"
assert gradgradcheck(lambda t: Cube()(t), [xcube]), "Exercise 1.2: gradgradcheck fails"
print("Exercise 1.2 solved: Cube passes gradcheck and gradgradcheck")
#
# ## 1.5 Checking a gradient by hand: the central difference
#
# How do we know a backward is right? Compare it with a finite difference. For a scalar
# function, the central difference
#
# $$\frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon} = f'(x) + O(\varepsilon^2)$$
#
# has a *truncation* error that shrinks like ε², and a *rounding* error of about
# u·|f|/ε (u the unit round-off: 1.1e-16 in float64, 6e-8 in float32) that grows as ε
# shrinks. The plot shows both regimes for f = Σ elu(W x) at a random point, measured
# against autograd's gradient.

# %%
W = rng.standard_normal((4, 3))
x0 = rng.standard_normal(3)


def f(x_array, dtype):
    """f(x) = sum(elu(W x)) evaluated with nnlite in the given dtype."""
    return F.elu(Tensor(W.astype(dtype)) @ Tensor(x_array.astype(dtype))).sum()


x_t = Tensor(x0.copy(), requires_grad=True)
(exact,) = nnlite.grad(F.elu(Tensor(W) @ x_t).sum(), x_t)
exact = exact.data[0]                         # d f / d x_0

epsilons = np.logspace(-12, -1, 23)
errors = {}
for dtype in (np.float64, np.float32):
    e0 = np.eye(3)[0]
    numeric = [(f(x0 + eps * e0, dtype).item() - f(x0 - eps * e0, dtype).item()) / (2 * eps)
               for eps in epsilons]
    errors[dtype.__name__] = np.abs(np.array(numeric) - exact)

fig, ax = plt.subplots()
for name, err in errors.items():
    ax.loglog(epsilons, np.maximum(err, 1e-17), "o-", ms=3, label=name)
ax.axvline(1e-6, color="gray", ls=":", label="gradcheck's eps = 1e-6")
ax.set_xlabel("ε")
ax.set_ylabel("|finite difference − autograd|")
ax.legend(fontsize=8)
ax.set_title("central difference error: rounding (left) vs truncation (right)")
plt.show()

# %% [markdown]
# In float64 the error is smallest (about 1e-12 here) near ε = 1e-5 and still about 1e-10
# at ε = 1e-6. In float32 the best it does is about 1e-5, at a large ε ≈ 1e-2, and at
# ε = 1e-6 the "derivative" is off by about 0.1: pure rounding noise. That is why the
# checkers insist on float64 inputs (they raise a `TypeError` otherwise) and use PyTorch's
# defaults: ε = 1e-6, atol = 1e-5, rtol = 1e-3.
#
# ## 1.6 `gradcheck` is that, for a vector–Jacobian product with a *random* vector
#
# Backward never builds the Jacobian J of a function y = fn(x); it computes vᵀJ for the
# incoming gradient v. So the check compares, element by element of x,
#
# $$(v^\top J)_k \quad\text{with}\quad
#   \frac{\langle v, \mathrm{fn}(x + \varepsilon e_k)\rangle - \langle v, \mathrm{fn}(x - \varepsilon e_k)\rangle}{2\varepsilon}.$$
#
# Here is that loop written out for y = conv2d(x, w) (a small convolution, the op
# DeepFill uses most), followed by the library's `gradcheck`, which does the same.

# %%
xc = Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
wc = Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)


def conv(x, w):
    return F.conv2d(x, w, stride=2, padding="same")


v = rng.standard_normal(conv(xc, wc).shape)
(analytic,) = nnlite.grad(conv(xc, wc), xc, grad_outputs=Tensor(v))

numeric = np.zeros(xc.shape)
eps = 1e-6
for k in range(xc.data.size):
    e = np.zeros(xc.data.size)
    e[k] = eps
    e = e.reshape(xc.shape)
    plus = (conv(Tensor(xc.data + e), wc).data * v).sum()
    minus = (conv(Tensor(xc.data - e), wc).data * v).sum()
    numeric.reshape(-1)[k] = (plus - minus) / (2 * eps)

print("max |vJ (autograd) - finite difference| =", np.abs(analytic.data - numeric).max())
print("gradcheck(conv, [x, w]) ->", gradcheck(conv, [xc, wc]))

# %% [markdown]
# **Why a random v and not ones?** A backward that forgets to multiply by its incoming
# gradient still returns the right answer when v is all ones. Below is a deliberately
# broken `Function`: its backward returns 2x instead of gy·2x. A check with v = 1 cannot
# see the bug; `gradcheck` (random v) reports it, naming the element and both values.

# %%
class BrokenSquare(nnlite.Function):
    """x**2 whose backward ignores the incoming gradient gy (a bug, on purpose)."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return x * 2.0                   # should be gy * x * 2.0


xb = Tensor(rng.standard_normal(4), requires_grad=True)
(with_ones,) = nnlite.grad(BrokenSquare()(xb), xb, grad_outputs=Tensor(np.ones(4)))
print("with v = ones, matches 2x:", np.allclose(with_ones.data, 2 * xb.data))
try:
    gradcheck(lambda t: BrokenSquare()(t), [xb])
except nnlite.testing.GradcheckError as error:
    print("gradcheck:", error)

# %% [markdown]
# ## 1.7 `gradgradcheck`: the same check, one level up
#
# The gradient penalty differentiates a gradient, so second derivatives must be right too.
# `gradgradcheck(fn, inputs)` applies `gradcheck` to the function
#
# $$(x, v) \mapsto \nabla_x \langle v, \mathrm{fn}(x)\rangle$$
#
# computed with `create_graph=True`. By hand, for fn = elu(x)·x: differentiate the
# gradient (a Hessian–vector product, u the direction) and compare with a finite
# difference of the gradient itself.

# %%
def fn(t):
    return F.elu(t) * t


xg = Tensor(rng.standard_normal(5), requires_grad=True)
vg = rng.standard_normal(5)
u = rng.standard_normal(5)


def gradient_at(x_array):
    xt = Tensor(x_array, requires_grad=True)
    (g,) = nnlite.grad(fn(xt), xt, grad_outputs=Tensor(vg), create_graph=True)
    return xt, g


xt, g = gradient_at(xg.data)
(hvp,) = nnlite.grad(g, xt, grad_outputs=Tensor(u))           # second derivative, autograd
eps = 1e-6
fd = (gradient_at(xg.data + eps * u)[1].data - gradient_at(xg.data - eps * u)[1].data) / (2 * eps)
print("<Hv, u> by autograd     :", float(hvp.data @ u))
print("<Hv, u> by differences  :", float(fd @ u))
print("gradgradcheck(fn, [x]) ->", gradgradcheck(fn, [xg]))

# %% [markdown]
# A backward that uses a *saved array* where it should use a tensor of the graph gets
# the first derivative right and the second silently wrong (DeZero's BatchNorm, Chainer
# issue #4114). nnlite's rule: such a `Function` sets `double_backward = False`, and the
# engine then raises `DoubleBackwardError` under `create_graph=True` instead of returning
# a wrong number. `tests/test_gradcheck.py::test_gradgradcheck_catches_a_wrong_second_derivative`
# checks that `gradgradcheck` catches exactly that bug.
#
# ## Where this is used
#
# * Every op in `nnlite/functional/` passes `gradcheck` and `gradgradcheck` in float64
#   (`tests/test_ops.py::test_gradcheck`, `::test_gradgradcheck`; convolutions in
#   `tests/test_conv.py`; contextual attention in
#   `tests/test_attention.py::test_gradgradcheck_wrt_f_and_b`).
# * The WGAN-GP penalty (notebook 5) calls `nnlite.grad(D(x̂).sum(), x̂, create_graph=True)`
#   and the trainer differentiates the result with respect to the critic's weights.
#
# Next: [02 — convolutions](02_convolutions.ipynb).
