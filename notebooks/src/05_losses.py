"""Notebook 05 source: the losses (built by notebooks/build_notebooks.py)."""
# %% [markdown]
# # 5. Losses: discounted L1, known-region L1, WGAN-GP
#
# **After this notebook you will be able to** compute the spatially discounted L1 weight
# of any pixel and the two reconstruction losses; write the WGAN critic and generator
# losses; compute a gradient penalty by hand for a simple critic and its gradient with
# respect to the critic's weights, and explain why that gradient needs a double backward.
#
# *Prerequisites:* notebook 1 (`nnlite.grad`, `create_graph=True`); the idea of a GAN.
# *Exercises:* 5.1–5.3 (solutions in [solutions/05_losses.py](solutions/05_losses.py)).
#
# DeepFill v1 trains its generator G against two critics (a *local* one that sees the
# 128×128 box around the hole and a *global* one that sees the whole 256×256 image) with
# the WGAN-GP objective, plus two reconstruction terms. In the release's code (which the
# checkpoints were trained with, so it wins over the paper's prose where they differ):
#
# | term | formula (spec §6) | function | test |
# |---|---|---|---|
# | discount weights | W[i,j] = max(γ^min(i, h−i), γ^min(j, w−j)), γ = 0.9 | `inpainting.model.losses.spatial_discount_mask` | `tests/test_losses.py::test_spatial_discount_values_match_the_release_loop` |
# | discounted L1 | l1 = 1.2·mean(\|x−x₁\|·W) + mean(\|x−x₂\|·W) on the box crop | `inpainting.model.losses.discounted_l1` | `tests/test_losses.py::test_discounted_l1_against_formula` |
# | known-region L1 | ae = (1.2·mean(\|x−x₁\|(1−M)) + mean(\|x−x₂\|(1−M))) / mean(1−M) | `inpainting.model.losses.known_region_l1` | `tests/test_losses.py::test_known_region_l1_against_formula_with_shared_and_per_sample_masks` |
# | WGAN critic | d = mean D(x̃) − mean D(x) | `inpainting.model.losses.wgan_critic_loss` | `tests/test_losses.py::test_wgan_losses_and_generator_total` |
# | WGAN generator | g = −mean D(x̃) | `inpainting.model.losses.wgan_generator_loss` | same |
# | gradient penalty | gp = mean((‖∇ₓ̂D(x̂) ⊙ M‖ − 1)²), x̂ = x + α(x̃ − x) | `inpainting.model.losses.gradient_penalty` | `tests/test_losses.py::test_gradient_penalty_on_a_linear_critic_equals_its_closed_form` |
# | critic total | d_local + d_global + 10·(gp_local + gp_global) | `inpainting.training.train.Trainer.critic_step` | `tests/test_train.py::test_one_critic_and_one_generator_step_change_every_parameter` |
# | generator total | 0.001·g_gan + 1.2·l1 + 1.2·ae | `inpainting.model.losses.generator_total` | `tests/test_losses.py::test_wgan_losses_and_generator_total` |
#
# Symbols: x the real image, M the hole mask (1 = hole), x₁ / x₂ the coarse and refined
# outputs, x̃ = x₂·M + x·(1−M) the completed image the critics judge, D a critic.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter

import nnlite
import nnlite.functional as F
from nnlite import Tensor, nn
from inpainting.model import losses
from inpainting.evaluation.baselines import harmonic_fill
from inpainting.data.datasets import demo_corpus
from inpainting.data.masks import centered_bbox_mask

QUICK = os.environ.get("DEEPFILL_NOTEBOOK_QUICK", "0") == "1"
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6, 3)})
rng = np.random.default_rng(0)
print("QUICK =", QUICK)

# %% [markdown]
# ## 5.1 The spatially discounted L1 weight map
#
# The paper (§3.1) argues that a pixel deep inside a large hole has many plausible
# values, so its reconstruction error should count less than one next to the known
# border: weight each pixel by γ^l, with l the distance to the nearest known pixel and
# γ = 0.9. The release computes, over the 128×128 box crop,
#
# $$W[i, j] = \max\left(\gamma^{\min(i,\,128-i)},\; \gamma^{\min(j,\,128-j)}\right),$$
#
# with `128 − i`, not `127 − i`: the first row weighs 1.0 and the last 0.9.

# %%
weights = losses.spatial_discount_mask(128, 128)[0, 0]
print("shape", weights.shape, "| mean %.4f" % weights.mean(),
      "| first/last row weight:", weights[0, 64], weights[-1, 64],
      "| centre: %.2e" % weights[64, 64])

# The paper's wording, by hand: gamma ** (distance to the nearest pixel outside the box).
box = np.pad(np.ones((128, 128)), 1)                 # known ring of width 1 around the box
paper = 0.9 ** distance_transform_edt(box)[1:-1, 1:-1]

fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
im = axes[0].imshow(weights, cmap="viridis")
axes[0].set_title("release W (128×128)")
plt.colorbar(im, ax=axes[0], fraction=0.046)
axes[1].plot(weights[:, 64], label="release, column 64")
axes[1].plot(paper[:, 64], "--", label="paper γ^l")
axes[1].set_yscale("log")
axes[1].set_xlabel("row i")
axes[1].legend(fontsize=7)
axes[1].set_title("a column through the centre")
im = axes[2].imshow(weights - paper, cmap="coolwarm", vmin=-0.12, vmax=0.12)
axes[2].set_title("release − paper")
plt.colorbar(im, ax=axes[2], fraction=0.046)
for a in (axes[0], axes[2]):
    a.axis("off")
plt.tight_layout()
plt.show()

# %% [exercise]
# Exercise 5.1: the spatial discount weight at one pixel. Write W[i, j] for a box of
# height h and width w with the release's formula above (γ = 0.9 by default).
def discount_weight(i, j, h, w, gamma=0.9):
    return None                                    # your formula


# %% [check]
assert discount_weight(0, 0, 8, 8) is not None, "Exercise 5.1: not solved yet"
for h_box, w_box in ((128, 128), (40, 64)):
    table = losses.spatial_discount_mask(h_box, w_box, dtype=np.float64)[0, 0]
    for i, j in ((0, 0), (h_box - 1, 5), (h_box // 2, w_box // 2), (7, w_box - 3), (20, 31)):
        assert np.isclose(discount_weight(i, j, h_box, w_box), table[i, j]), \
            f"Exercise 5.1: W[{i}, {j}] of a {h_box}×{w_box} box is {table[i, j]:.6g}"
print("Exercise 5.1 solved: W[64, 64] of the 128×128 box =", discount_weight(64, 64, 128, 128))

# %% [markdown]
# For a rectangle, "distance to the nearest known pixel" *is* the distance to the nearest
# edge, so the release's max-of-two-axes formula and the paper's γ^l agree up to a
# one-pixel shift: the release counts the first row as distance 0 and the last as
# distance 1 (hence the asymmetric difference map). Two more differences from the paper:
# the release weights the whole **box**, although the hole is the box shrunk by 0–16
# pixels per side, and it applies the weights to the **raw** outputs x₁, x₂, not to the
# composited image.
#
# ## 5.2 The two L1 terms on an example
#
# A held-out photograph with the centred box, and two stand-in "generator outputs": a
# blurry x₁ and a sharper x₂, both with slightly wrong colours everywhere (a real
# generator's raw outputs also disturb the known pixels a little). `discounted_l1` sees only the box crops;
# `known_region_l1` sees the whole image outside the hole.

# %%
size = 128
real = demo_corpus("heldout", size, resize=True).sample(0, 0)          # astronaut, (3, S, S)
mask, bbox = centered_bbox_mask(size, size // 2)
top, left, h, w = bbox[0]
fill = harmonic_fill(real, mask[0])                                     # a plausible hole fill
x2 = 0.9 * fill + 0.05                                                  # slightly off colours
x1 = 0.9 * gaussian_filter(fill, (0, 2, 2)) + 0.05                       # and blurry


def crop(a):
    return a[..., top:top + h, left:left + w]


batch = [Tensor(a[None]) for a in (real, x1, x2)]
l1 = losses.discounted_l1(*[crop(t) for t in batch])
ae = losses.known_region_l1(*batch, mask)
print(f"discounted L1 (box crop)  l1 = {l1.item():.4f}")
print(f"known-region L1           ae = {ae.item():.4f}")

# The same numbers by hand, straight from the formulas:
W = losses.spatial_discount_mask(h, w)
by_hand_l1 = (1.2 * np.mean(np.abs(crop(real) - crop(x1)) * W)
              + np.mean(np.abs(crop(real) - crop(x2)) * W))
known = 1 - mask[0]
by_hand_ae = (1.2 * np.mean(np.abs(real - x1) * known)
              + np.mean(np.abs(real - x2) * known)) / known.mean()
print(f"by hand: l1 = {by_hand_l1:.4f}, ae = {by_hand_ae:.4f}")

# %%
def show(a):
    return np.clip((a.transpose(1, 2, 0) + 1) / 2, 0, 1)


fig, axes = plt.subplots(1, 5, figsize=(11, 2.5))
panels = [(show(real * (1 - mask[0])), "input x·(1−M)"), (show(x1), "x₁ (stand-in)"),
          (show(x2), "x₂ (stand-in)"),
          (np.abs(crop(real) - crop(x2)).mean(0) * W[0, 0], "|x−x₂|·W on the box"),
          (np.abs(real - x2).mean(0) * known[0], "|x−x₂|·(1−M)")]
for a, (image, title) in zip(axes, panels):
    a.imshow(image, cmap="magma")
    a.set_title(title, fontsize=9)
    a.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The discount makes the error in the middle of the box almost free (0.9⁶⁴ ≈ 1e-3): the
# generator is pushed hardest to match the image *near the hole's border*, and left free
# to invent in the middle, where the adversarial loss takes over.
#
# ## 5.3 WGAN losses and the gradient penalty, on a 2-D toy problem
#
# A WGAN critic D estimates the Wasserstein-1 distance between the real and the generated
# distributions, **provided D is 1-Lipschitz**:
#
# $$W_1 \approx \max_{\|D\|_L \le 1}\; \mathbb{E}_{x}[D(x)] - \mathbb{E}_{\tilde x}[D(\tilde x)].$$
#
# The critic minimises d = mean D(x̃) − mean D(x) (`wgan_critic_loss`), the generator
# minimises g = −mean D(x̃) (`wgan_generator_loss`). Gulrajani et al. enforce the Lipschitz
# constraint softly, by penalising the gradient norm at random points x̂ between real and
# fake samples:
#
# $$\hat x = x + \alpha(\tilde x - x),\ \alpha \sim U[0, 1), \qquad
#   gp = \mathrm{mean}\big((\lVert \nabla_{\hat x} D(\hat x) \odot M \rVert_2 - 1)^2\big).$$
#
# DeepFill puts the hole mask M inside the norm: only the gradient with respect to the
# **hole pixels** is constrained. On images the inputs are (N, 3, H, W); here they are 2-D
# points, shaped (N, 2, 1, 1) so that the same `gradient_penalty` applies, with M = 1.
#
# Real samples: a noisy ring. Fake samples: a blob the critic must tell apart. Two critics
# (small MLPs with LeakyReLU(0.2), like the real critics) are trained with the same Adam
# settings: one with the penalty (λ = 10), one without.

# %%
def sample_real(n):
    angle = rng.uniform(0, 2 * np.pi, n)
    points = np.stack([np.cos(angle), np.sin(angle)], 1) + 0.05 * rng.standard_normal((n, 2))
    return points.reshape(n, 2, 1, 1)


def sample_fake(n):
    return (0.3 * rng.standard_normal((n, 2)) + [0.4, -0.2]).reshape(n, 2, 1, 1)


def make_critic(seed):
    r = np.random.default_rng(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(2, 64, rng=r, dtype=np.float64), nn.LeakyReLU(0.2),
                         nn.Linear(64, 64, rng=r, dtype=np.float64), nn.LeakyReLU(0.2),
                         nn.Linear(64, 1, rng=r, dtype=np.float64))


steps = 60 if QUICK else 400
ones = np.ones((1, 1, 1, 1))
critics, history = {}, {}
for name, penalty_weight in (("WGAN-GP (λ = 10)", 10.0), ("no penalty", 0.0)):
    critic = make_critic(1)
    optimizer = nnlite.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    history[name] = []
    for step in range(steps):
        real_b, fake_b = Tensor(sample_real(64)), Tensor(sample_fake(64))
        d = losses.wgan_critic_loss(critic(real_b), critic(fake_b))
        total = d
        if penalty_weight:
            total = d + losses.gradient_penalty(critic, real_b, fake_b, ones, rng=rng) * penalty_weight
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history[name].append(-d.item())          # the critic's estimate of W1
    critics[name] = critic

fig, ax = plt.subplots()
for name, values in history.items():
    ax.plot(values, label=name)
ax.set_xlabel("critic step")
ax.set_ylabel("mean D(real) − mean D(fake)")
ax.set_yscale("symlog", linthresh=1)
ax.legend(fontsize=8)
ax.set_title("the critic's distance estimate")
plt.show()

# %% [markdown]
# Without the penalty nothing bounds D: scaling it up scales the "distance" up, and the
# estimate keeps climbing. With the penalty it levels off at a finite value. Now the
# critic itself and its gradient norm ‖∇ₓD‖ over the plane, each computed with the
# library (`nnlite.grad` of D at every grid point):

# %%
grid = np.linspace(-1.8, 1.8, 61)
gx, gy = np.meshgrid(grid, grid)
points = np.stack([gx.ravel(), gy.ravel()], 1).reshape(-1, 2, 1, 1)
real_show, fake_show = sample_real(200), sample_fake(200)

fig, axes = plt.subplots(2, 2, figsize=(7.5, 6.5))
for row, (name, critic) in enumerate(critics.items()):
    xt = Tensor(points, requires_grad=True)
    values = critic(xt)
    (grads,) = nnlite.grad(values.sum(), xt)
    norm = np.sqrt((grads.data ** 2).sum(axis=(1, 2, 3))).reshape(gx.shape)
    c = axes[row, 0].contourf(gx, gy, values.data.reshape(gx.shape), 20, cmap="RdBu_r")
    plt.colorbar(c, ax=axes[row, 0])
    axes[row, 0].set_title(f"D(x), {name}", fontsize=9)
    c = axes[row, 1].contourf(gx, gy, norm, 20, cmap="viridis")
    plt.colorbar(c, ax=axes[row, 1])
    axes[row, 1].set_title(f"‖∇ₓD(x)‖, {name}", fontsize=9)
    for a in axes[row]:
        a.scatter(real_show[:, 0, 0, 0], real_show[:, 1, 0, 0], s=2, c="k")
        a.scatter(fake_show[:, 0, 0, 0], fake_show[:, 1, 0, 0], s=2, c="orange")
        a.set_aspect("equal")
        a.set_xticks([])
        a.set_yticks([])
plt.tight_layout()
plt.show()

for name, critic in critics.items():
    real_b, fake_b = Tensor(sample_real(256)), Tensor(sample_fake(256))
    alpha = rng.random(256).reshape(256, 1, 1, 1)
    x_hat = Tensor(real_b.data + alpha * (fake_b.data - real_b.data), requires_grad=True)
    (g,) = nnlite.grad(critic(x_hat).sum(), x_hat)
    slopes = np.sqrt((g.data ** 2).sum(axis=(1, 2, 3)))
    print(f"{name:>18}: gradient norm at x̂ = {slopes.mean():.2f} ± {slopes.std():.2f}")

# %% [markdown]
# With the penalty the critic's slope is held near 1 on the segments between real and
# fake samples (black and orange), which is where the generator's samples will move;
# without it the slope is many times larger and keeps growing. The WGAN generator loss
# g = −mean D(x̃) then pushes fakes uphill along a well-behaved gradient field.
#
# ## 5.4 Why the penalty needs second derivatives
#
# The penalty is a function of the critic's *gradient* with respect to its input:
# gp(θ) = mean((‖∇ₓ̂D(x̂; θ)‖ − 1)²). Minimising it over the critic's weights θ needs
#
# $$\frac{\partial\, gp}{\partial \theta} = \mathrm{mean}\Big(2(\lVert g\rVert - 1)\,\frac{g^\top}{\lVert g\rVert}\,\frac{\partial g}{\partial\theta}\Big),
#   \qquad g = \nabla_{\hat x} D(\hat x;\theta),$$
#
# and ∂g/∂θ = ∂²D/∂x̂∂θ is a **second** derivative. `gradient_penalty` therefore takes g
# with `nnlite.grad(D(x̂).sum(), x̂, create_graph=True)`: the backward pass is recorded
# as a graph, and the penalty can be differentiated through it. Check it against a finite
# difference of gp with respect to one weight, by hand:

# %%
critic = make_critic(2)
real_b, fake_b = Tensor(sample_real(16)), Tensor(sample_fake(16))
alpha = rng.random(16)
weight = critic[1].weight                      # the first Linear layer's (64, 2) weight


def penalty():
    return losses.gradient_penalty(critic, real_b, fake_b, ones, alpha=alpha)


(autograd,) = nnlite.grad(penalty(), weight)
eps, k = 1e-6, (3, 1)
saved = weight.data[k]
weight.data[k] = saved + eps
plus = penalty().item()
weight.data[k] = saved - eps
minus = penalty().item()
weight.data[k] = saved
print(f"d gp / d W{k}: autograd {autograd.data[k]:.8f}, finite difference {(plus - minus) / (2 * eps):.8f}")

# What goes wrong without create_graph: g becomes a constant, gp no longer depends on θ.
x_hat = Tensor(real_b.data + alpha.reshape(16, 1, 1, 1) * (fake_b.data - real_b.data),
               requires_grad=True)
(g_const,) = nnlite.grad(critic(x_hat).sum(), x_hat)           # create_graph=False
gp_const = F.mean((F.sqrt(F.sum(g_const * g_const, axis=(1, 2, 3))) - 1.0) ** 2)
print("without create_graph: gp requires grad?", gp_const.requires_grad,
      "-> the penalty would never train the critic")

# %% [exercise]
# Exercise 5.2: the gradient-penalty term by hand. For a linear critic
# D(x) = Σ_{c,i,j} w[c,i,j]·x[c,i,j] the gradient ∇ₓD is w itself, wherever x̂ lies.
# With the hole mask M (1, 1, H, W), write gp = mean over the batch of
# (sqrt(Σ w²·M) − 1)² (the library adds 1e-12 inside the sqrt; ignore it).
def linear_critic_penalty(w, mask):
    """w (C, H, W), mask (1, 1, H, W) -> gp, a float."""
    return None                                    # your formula


# %% [check]
w_lin = Tensor(rng.standard_normal((3, 6, 6)) * 0.3, requires_grad=True)
mask_lin = np.zeros((1, 1, 6, 6))
mask_lin[..., 1:4, 2:6] = 1.0


def linear_critic(x):
    return (x * w_lin).sum(axis=(1, 2, 3)).reshape(-1, 1)


real_lin, fake_lin = rng.standard_normal((4, 3, 6, 6)), rng.standard_normal((4, 3, 6, 6))
gp_lin = losses.gradient_penalty(linear_critic, real_lin, fake_lin, mask_lin, rng=rng)
mine = linear_critic_penalty(w_lin.data, mask_lin)
assert mine is not None, "Exercise 5.2: not solved yet"
assert np.isclose(mine, gp_lin.item(), rtol=1e-9), \
    f"Exercise 5.2: {mine:.8f}, the library {gp_lin.item():.8f}"
print(f"Exercise 5.2 solved: gp = {mine:.6f}")

# %% [exercise]
# Exercise 5.3: the penalty's gradient with respect to the critic's weights, by hand. For
# the linear critic, with n = sqrt(Σ w²·M): d gp / d w = 2 (n − 1) · (w·M) / n (M
# broadcast over channels). Write it; the check compares it with the double backward
# nnlite.grad(gp, w) (the penalty was built with create_graph=True).
def linear_critic_penalty_grad(w, mask):
    """w (C, H, W), mask (1, 1, H, W) -> d gp / d w, shape (C, H, W)."""
    return None                                    # your formula


# %% [check]
(autograd_w,) = nnlite.grad(gp_lin, w_lin)
mine_w = linear_critic_penalty_grad(w_lin.data, mask_lin)
assert mine_w is not None, "Exercise 5.3: not solved yet"
assert np.allclose(mine_w, autograd_w.data, rtol=1e-7, atol=1e-10), \
    f"Exercise 5.3: max difference {np.abs(mine_w - autograd_w.data).max():.3g}"
print("Exercise 5.3 solved: the hand-derived gradient equals the double backward")

# %% [markdown]
# A LeakyReLU critic is piecewise linear in its input, so ∂²D/∂x̂² is zero almost
# everywhere, yet the *mixed* derivative ∂²D/∂x̂∂θ is not: that is what the penalty's
# gradient uses. For the real critics (5×5 stride-2 convolutions, LeakyReLU, a dense
# layer) every op passes `gradgradcheck` (`tests/test_conv.py::test_conv2d_gradgradcheck`,
# `tests/test_ops.py::test_gradgradcheck`), and
# `tests/test_losses.py::test_gradient_penalty_second_derivative_through_a_small_critic`
# checks this very derivative through a small convolutional critic.
#
# The release's norm has no ε; nnlite's uses sqrt(Σg²M + 1e-12) so that an all-zero
# gradient gives a finite derivative instead of NaN
# (`tests/test_losses.py::test_gradient_penalty_with_zero_gradient_is_finite_and_differentiable`).
#
# ## 5.5 Putting it together
#
# Per training iteration (notebook 6, `inpainting/training/train.py`), with the constants of
# `inpainting.model.losses.LossWeights`:

# %%
constants = {k: v for k, v in vars(losses.LossWeights).items() if not k.startswith("_")}
for key, value in constants.items():
    print(f"{key:>16} = {value}")

g_gan = Tensor(np.array(0.7))              # stand-in g_local + g_global
total = losses.generator_total(g_gan, l1, ae)
print(f"\ngenerator total = 0.001·{g_gan.item()} + 1.2·{l1.item():.4f} + 1.2·{ae.item():.4f}"
      f" = {total.item():.4f}")

# %% [markdown]
# * **Critic** (5 updates per generator update, each on a fresh batch and mask):
#   d_total = d_local + d_global + 10·(gp_local + gp_global); the local critic and its
#   penalty see the box crops (and the cropped mask).
# * **Generator**: g_total = 0.001·(g_local + g_global) + 1.2·l1 + 1.2·ae. The GAN term
#   is weighted 0.001: the reconstruction terms dominate, the critics add texture.
#
# Next: [06 — training and results](06_training_and_results.ipynb).
