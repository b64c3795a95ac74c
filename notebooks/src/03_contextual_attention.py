"""Notebook 03 source: contextual attention step by step (built by notebooks/build_notebooks.py)."""
# %% [markdown]
# # 3. Contextual attention, step by step
#
# **After this notebook you will be able to** assemble contextual attention yourself from
# its nine named steps and check it against the library's layer and a loop-by-loop
# reference; read the (L × L) score matrix as an image; predict the attention offset of a
# known shift; compute a propagated score and the masked softmax by hand; explain the /4
# of the reconstruction; and look inside a trained model's attention through its supported
# outputs: where a hole cell copies from, what propagation does to its softmax, and how
# the fill changes when the branch is knocked out.
#
# *Prerequisites:* notebook 2 (im2col, transposed convolution, the align-corners resize);
# softmax. *Exercises:* 3.1–3.3 (solutions in
# [solutions/03_contextual_attention.py](solutions/03_contextual_attention.py)).
#
# The paper's key layer (Yu et al. 2018, §3.2). Convolutions see a neighbourhood; a hole
# 64 pixels wide needs content from *anywhere* in the image. Contextual attention
# compares every small patch of the foreground (the features in and around the hole, as
# the coarse network guessed them) with every patch of the background (the known
# region), turns the comparison into a softmax over background positions, and pastes the
# background patches back weighted by it: a differentiable, soft copy-and-paste.
#
# The release computes (spec §3; f = foreground, b = background features, both (N, C, H, W);
# rate r = 2; positions flattened row-major, p = i·w + j):
#
# | step | equation | function (`inpainting.model.attention_steps`) | test |
# |---|---|---|---|
# | 1 | raw 2r×2r patches of b, stride r (what gets pasted) | `raw_patches` | `tests/test_patches.py::test_contextual_attention_raw_patch_geometry` |
# | 2 | f↓, b↓, m↓: nearest resize by 1/r, align-corners rule | `downsample` | `tests/test_attention_reference.py::test_reference_nearest_rule_matches_the_spec_examples` |
# | 3 | w_q: 3×3 patches of b↓ | `matching_patches` | `tests/test_attention_reference.py::test_layer_matches_reference` |
# | 4 | mm[q] = 1 if the mask patch at q is all known | `valid_patches` | `tests/test_attention.py::test_offsets_point_to_valid_patches_and_find_a_pure_shift` |
# | 5 | s_{x,y,x′,y′} = ⟨f_{x,y}, b_{x′,y′} / max(‖b_{x′,y′}‖, 1e-4)⟩ | `patch_scores` | `tests/test_attention_reference.py::test_zero_background_patches_use_the_norm_floor` |
# | 6 | propagation: ŝ_{x,y,x′,y′} = Σ_{i∈{−1,0,1}} s_{x+i,y,x′+i,y′} (then the same along the other axis) | `propagate` | `tests/test_attention.py::test_propagation_is_the_neighbourhood_sum_away_from_the_edges` |
# | 7 | s* = mm · softmax_q(λ · mm · ŝ), λ = 10 | `masked_softmax` | `tests/test_attention.py::test_invalid_patches_take_logit_zero_so_rows_sum_to_less_than_one` |
# | 8 | offset(p) = argmax_q s*(p, q) − p | `attention_offsets` | `tests/test_attention.py::test_identical_foreground_and_background_attend_to_themselves` |
# | 9 | y = conv_transpose(s*, raw patches, stride r) / 4 | `reconstruct` | `tests/test_attention_reference.py::test_layer_matches_reference` |
#
# The whole layer is `inpainting.contextual_attention` (one call, with a memory-bounded
# mode); `contextual_attention_steps` runs the same nine stages and keeps every
# intermediate (`tests/test_attention.py::test_staged_form_equals_fused_layer`). Longer
# explanation: [docs/contextual_attention.md](../docs/contextual_attention.md).

# %%
import importlib.util
import io
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display
from matplotlib.patches import Rectangle
from scipy.ndimage import gaussian_filter

import nnlite
import nnlite.functional as F
from nnlite import Tensor
from inpainting.model import attention_steps as steps
from inpainting import color_wheel_legend, contextual_attention, flow_to_image, inpaint
from inpainting.data.datasets import demo_corpus
from inpainting.model.attention_colours import overlay_flow
from inpainting.data.masks import centered_bbox_mask
from inpainting.data.textures import SUITE_SEED, texture_suite
from inpainting.weights.model_io import SHIPPED_MODEL, load_generator

QUICK = os.environ.get("DEEPFILL_NOTEBOOK_QUICK", "0") == "1"
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6, 3)})
rng = np.random.default_rng(3)
print("QUICK =", QUICK)

# The loop-by-loop reference of the layer, the test oracle: inpainting/model/reference.py.
import inpainting.model.reference as reference_attention


def show(chw):
    """(3, H, W) in [-1, 1] -> an RGB picture for imshow."""
    return np.clip((np.asarray(chw).transpose(1, 2, 0) + 1) / 2, 0, 1)


def show_jpeg(fig, quality=85):
    """Display a figure of photographs as JPEG (a fraction of the PNG's size in the .ipynb)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", bbox_inches="tight", pil_kwargs={"quality": quality})
    plt.close(fig)
    display(Image(buffer.getvalue()))


def normalised(chw):
    """Any 3-channel feature map -> [0, 1] for imshow."""
    chw = np.asarray(chw)
    return ((chw - chw.min()) / (chw.max() - chw.min())).transpose(1, 2, 0)

# %% [markdown]
# ## 3.1 A toy problem whose answer is obvious
#
# A 3-channel feature map of 40×40 (think of it as colours), built from a smooth random
# 20×20 pattern with every pixel doubled (so that the ½ downsampling of step 2 recovers
# the pattern exactly). The hole is a 10×10 square. Inside it and two pixels around it
# (at the ½ scale), the features are an exact copy of the region **10 rows down and 9
# columns right** — the perfect "coarse guess". In the model f and b are the same feature
# map, so here too. Every hole position should attend to the position (10, 9) away (at
# the ½ scale).

# %%
base = gaussian_filter(rng.standard_normal((3, 20, 20)), (0, 1.5, 1.5))
base /= base.std()
shift = (10, 9)
pattern = base.copy()
pattern[:, 1:10, 1:10] = base[:, 1 + shift[0]:10 + shift[0], 1 + shift[1]:10 + shift[1]]
features = Tensor(pattern.repeat(2, axis=1).repeat(2, axis=2)[None])      # (1, 3, 40, 40)
mask = np.zeros((1, 1, 40, 40))
mask[..., 6:16, 6:16] = 1.0                                              # 1 = hole

fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
axes[0].imshow(normalised(features.data[0]))
axes[0].set_title("features f = b", fontsize=9)
axes[1].imshow(mask[0, 0], cmap="gray")
axes[1].set_title("mask (white = hole)", fontsize=9)
for a in axes:
    a.axis("off")
plt.show()

# %% [markdown]
# ### Steps 1–4: patches, downsampling, which background patches are valid
#
# The background is cut twice. The **raw** 4×4 patches of full-resolution b (stride 2)
# are what will be pasted back; the **matching** 3×3 patches w_q of b↓ (stride 1) are
# what the foreground is compared with. A background patch is valid (mm[q] = 1) only if
# its 3×3 mask patch contains no hole pixel at all.

# %%
rate = 2
raw = steps.raw_patches(features, rate)                   # (N, L, C, 4, 4)
f_small = steps.downsample(features, rate)                # (N, C, 20, 20)
b_small = steps.downsample(features, rate)
mask_small = steps.downsample(Tensor(mask), rate)
w = steps.matching_patches(b_small, 3)                    # (N, L, C, 3, 3)
mm = steps.valid_patches(mask_small, 3)                   # (1, L)
h, wd = f_small.shape[2:]
L = h * wd
print("raw patches", raw.shape, "| f↓", f_small.shape, "| matching patches", w.shape,
      "| valid", int(mm.sum()), "of", L)
print("f↓ recovers the 20×20 pattern exactly:", np.array_equal(f_small.data[0], pattern))

fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
axes[0].imshow(mask_small.data[0, 0], cmap="gray")
axes[0].set_title("m↓ (20×20)", fontsize=9)
axes[1].imshow(mm.reshape(h, wd), cmap="gray")
axes[1].set_title("valid background patches mm", fontsize=9)
q = (4 + shift[0]) * wd + (4 + shift[1])
axes[2].imshow(normalised(raw.data[0, q]))
axes[2].set_title(f"raw 4×4 patch q = {q}", fontsize=9)
for a in axes:
    a.axis("off")
plt.show()

# %% [markdown]
# ### Step 5: the similarity scores (the paper's equation 1)
#
# $$s_{x,y,x',y'} = \Big\langle \frac{f_{x,y}}{\lVert f_{x,y}\rVert}, \frac{b_{x',y'}}{\lVert b_{x',y'}\rVert} \Big\rangle$$
#
# is cosine similarity in the paper's text. The release normalises only the background
# patch, max(‖b‖, 1e-4): the score is ‖f_p‖·cos, which ranks the q of one row p in the
# same order (‖f_p‖ is a constant along the row) but changes how sharp the softmax is.
# For all pairs at once it is a product of patch matrices, an (L, L) matrix per image:
# rows are foreground positions p, columns background positions q — the paper's Figure 4
# "as an image".

# %%
scores = steps.patch_scores(f_small, w, 3)                    # (N, L, L)
p = 5 * wd + 5                                                # a position inside the hole
source = (5 + shift[0]) * wd + (5 + shift[1])

fig, axes = plt.subplots(1, 2, figsize=(7.5, 3))
im = axes[0].imshow(scores.data[0], cmap="RdBu_r", vmin=-6, vmax=6)
axes[0].set_xlabel("background position q")
axes[0].set_ylabel("foreground position p")
axes[0].set_title("s[p, q], all pairs (L × L)", fontsize=9)
plt.colorbar(im, ax=axes[0], fraction=0.046)
im = axes[1].imshow(scores.data[0, p].reshape(h, wd), cmap="RdBu_r")
axes[1].plot(source % wd, source // wd, "k+", ms=12)
axes[1].plot(p % wd, p // wd, "ko", mfc="none", ms=10)
axes[1].set_title(f"row p = {p} (○) as a map; + = the right source", fontsize=9)
plt.colorbar(im, ax=axes[1], fraction=0.046)
plt.tight_layout()
plt.show()
print("argmax of the raw scores of row p:", int(scores.data[0, p].argmax()), "| right source:", source,
      "| best score", scores.data[0, p].max().round(3), "= ‖f_p‖ =",
      np.linalg.norm(steps.foreground_patch_matrix(f_small, 3).data[0, p]).round(3))

# %% [markdown]
# The raw row has its maximum at p itself (a patch is most similar to itself, score
# ‖f_p‖ by Cauchy–Schwarz) and an equal maximum at the copy's source: inside the hole
# the features *are* a copy. Masking (step 7) will remove p itself, which lies in the hole.
#
# ### Step 6: attention propagation
#
# Neighbouring pixels tend to copy from neighbouring places. The paper adds up the scores
# of a foreground position and its neighbours *moved together with* the background
# position (fuse size k = 3):
#
# $$\hat s_{x,y,x',y'} = \sum_{i \in \{-1,0,1\}} s_{x+i,\,y,\,x'+i,\,y'}$$
#
# first along one axis, then the other. On the (L, L) matrix with row-major indices that is
# a sum along diagonals; the release does it on *flattened* indices, so its sums wrap
# around the ends of rows (first pass) and columns (second pass) — the library reproduces
# the wrap exactly (`tests/test_attention_reference.py::test_reference_propagation_wraps_on_flattened_indices`).

# %%
propagated = steps.propagate(scores, h, wd, fuse_k=3)
fig, axes = plt.subplots(1, 2, figsize=(7, 3))
for a, (matrix, title) in zip(axes, [(scores, "s"), (propagated, "ŝ (propagated)")]):
    a.imshow(matrix.data[0, p].reshape(h, wd), cmap="RdBu_r")
    a.plot(source % wd, source // wd, "k+", ms=12)
    a.set_title(f"{title}, row p as a map", fontsize=9)
    a.axis("off")
plt.show()

# %% [markdown]
# ### Step 7: softmax along the patch axis, with the mask
#
# $$s^*_{x,y,x',y'} = \mathrm{mm}_{x',y'} \cdot \mathrm{softmax}_{x',y'}\big(\lambda\, \mathrm{mm}_{x',y'}\, \hat s_{x,y,x',y'}\big), \qquad \lambda = 10.$$
#
# Invalid patches get logit 0 — not −∞ — and their probability is then set to 0, so a row
# sums to less than 1 by the mass those zero logits took (release behaviour): negligible
# when the valid scores are large, as here (propagated scores reach about 30), but not
# when they are small (λ = 0.1 below). λ sets how close the soft copy is to a hard one:

# %%
attention = steps.masked_softmax(propagated, mm, softmax_scale=10.0)
weak_sums = steps.masked_softmax(propagated, mm, softmax_scale=0.1).data[0].sum(axis=1)
for scale in (10.0, 1.0, 0.1):
    sums = steps.masked_softmax(propagated, mm, softmax_scale=scale).data[0].sum(axis=1)
    print(f"λ = {scale:>4}: smallest row sum = 1 − {1 - sums.min():.1e}")

fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
axes[0].imshow(attention.data[0, p].reshape(h, wd), cmap="viridis")
axes[0].plot(source % wd, source // wd, "r+", ms=12)
axes[0].set_title("s*[p, ·] as a map (λ = 10)", fontsize=9)
axes[0].axis("off")
for scale in (0.1, 0.3, 1.0, 10.0):
    row = steps.masked_softmax(propagated, mm, softmax_scale=scale).data[0, p]
    axes[1].plot(np.sort(row)[::-1][:12], "o-", ms=3, label=f"λ = {scale:g}")
axes[1].set_xlabel("rank of q")
axes[1].set_ylabel("weight")
axes[1].legend(fontsize=7)
axes[1].set_title("the 12 largest weights of row p", fontsize=9)
im = axes[2].imshow(weak_sums.reshape(h, wd), cmap="viridis")
axes[2].set_title("Σ_q s*[p, q] per position p, λ = 0.1", fontsize=9)
axes[2].axis("off")
plt.colorbar(im, ax=axes[2], fraction=0.046)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Step 8: offsets and the colour-coded attention map
#
# For display the release keeps only the strongest source: offset(p) = argmax_q s*(p, q) − p
# as (dy, dx) at the ½ scale, drawn with the optical-flow colour wheel (spec §4): the
# direction from the centre of the legend is the direction a hole pixel copies from, the
# saturation its distance (white = copies from right where it is).

# %%
offsets = steps.attention_offsets(attention, h, wd)          # (N, 2, h, w) integers
hole_small = mask_small.data[0, 0] > 0
dy, dx = offsets[0, 0][hole_small], offsets[0, 1][hole_small]
print(f"hole positions attending to the copy's source {shift}: "
      f"{np.mean((dy == shift[0]) & (dx == shift[1])) * 100:.0f}%")

fig, axes = plt.subplots(1, 2, figsize=(5.5, 2.8))
axes[0].imshow(flow_to_image(offsets)[0])
axes[0].set_title("attention map", fontsize=9)
axes[1].imshow(color_wheel_legend(65))
axes[1].set_title("legend: offset from the centre", fontsize=9)
axes[1].set_xlabel("dx →")
axes[1].set_ylabel("dy ↓")
axes[0].axis("off")
axes[1].set_xticks([])
axes[1].set_yticks([])
plt.show()

# %% [markdown]
# One uniform colour over the hole — every hole pixel copies from 10 rows down and 9
# columns right — and white elsewhere: known positions copy themselves. The one-pixel
# ring of known positions around the hole is orange too: their own 3×3 patches touch the
# hole, so they are invalid as sources, and (being copies as well) they find the same
# source.
#
# ### Step 9: reconstruction by transposed convolution, and the /4
#
# Each foreground position pastes Σ_q s*(p, q)·(raw patch q) onto a 4×4 window of the
# output, windows 2 pixels apart: a transposed convolution with the raw patches as
# kernels. Each interior pixel is covered by 4 windows, so the release divides by 4 —
# everywhere, including the border rows and columns, which are covered only once or twice
# and come out darker.

# %%
y = steps.reconstruct(attention, raw, rate, 40, 40)
coverage = steps.fold_patches(Tensor(np.ones((1, L, 3 * 16))), rate, 40, 40).data[0, 0]
fused, fused_offsets = contextual_attention(features, features, Tensor(mask), rate=2)
print("staged y equals the fused layer:", np.allclose(y.data, fused.data),
      "| offsets equal:", np.array_equal(offsets, fused_offsets))
hole = mask[0, 0] > 0
print("max |y − copied source| inside the hole:", np.abs(y.data[0][:, hole] - features.data[0][:, hole]).max().round(3))

fig, axes = plt.subplots(1, 3, figsize=(8, 2.8))
axes[0].imshow(normalised(features.data[0]))
axes[0].set_title("input features", fontsize=9)
axes[1].imshow(normalised(y.data[0]))
axes[1].set_title("y (reconstruction)", fontsize=9)
im = axes[2].imshow(coverage, cmap="viridis")
axes[2].set_title("windows covering each pixel", fontsize=9)
plt.colorbar(im, ax=axes[2], fraction=0.046)
for a in axes:
    a.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The reconstruction is a *soft* copy (λ = 10 still mixes in a little of other
# patches), and the border frame is dimmer where fewer than four windows overlap.
#
# ### Build it yourself: the nine steps as one function
#
# Put together, the steps above are the whole layer. Written out once more as a function,
# it can be compared with the library's fused layer `inpainting.contextual_attention` (one
# call, chunked for memory) and with the loop-by-loop reference written straight from the
# specification (`inpainting/model/reference.py`: explicit loops over p and q, for tiny
# inputs only), on a random input with a random hole:

# %%
def attention_by_steps(f, b, mask, rate=2, softmax_scale=10.0):
    """Contextual attention from its named steps: (y, offsets) like the layer."""
    height, width = f.shape[2:]
    raw = steps.raw_patches(b, rate)                                     # step 1
    f_small, b_small = steps.downsample(f, rate), steps.downsample(b, rate)  # step 2
    h, wd = f_small.shape[2:]
    patches = steps.matching_patches(b_small, 3)                         # step 3
    mm = steps.valid_patches(steps.downsample(mask, rate), 3)            # step 4
    scores = steps.patch_scores(f_small, patches, 3)                     # step 5
    scores = steps.propagate(scores, h, wd, fuse_k=3)                    # step 6
    attention = steps.masked_softmax(scores, mm, softmax_scale)          # step 7
    offsets = steps.attention_offsets(attention, h, wd)                  # step 8
    return steps.reconstruct(attention, raw, rate, height, width), offsets  # step 9


fr = Tensor(rng.standard_normal((2, 4, 16, 16)))
br = Tensor(rng.standard_normal((2, 4, 16, 16)))
mask_r = np.zeros((1, 1, 16, 16))
mask_r[..., 5:11, 3:9] = 1.0
mine_y, mine_offsets = attention_by_steps(fr, br, Tensor(mask_r))
layer_y, layer_offsets = contextual_attention(fr, br, Tensor(mask_r), rate=2)
loop_y, loop_offsets = reference_attention.contextual_attention_reference(fr.data, br.data,
                                                                          mask_r, rate=2)
print("max |steps − layer|     =", np.abs(mine_y.data - layer_y.data).max(),
      "| offsets equal:", np.array_equal(mine_offsets, layer_offsets))
print("max |steps − reference| =", np.abs(mine_y.data - loop_y).max(),
      "| offsets equal:", np.array_equal(mine_offsets, loop_offsets))

# %% [exercise]
# Exercise 3.1: the attention offset of a known shift. Below, the features inside a hole
# (and a ring around it) are an exact copy of the region 12 rows UP and 20 columns RIGHT
# at full resolution. Offsets are reported at the ½ scale as (dy, dx) = source − position.
# Which offset does attention_offsets give at the hole's positions?
expected_offset = None                             # (dy, dx)

# %% [check]
copy = base.copy()
copy[:, 10:19, 1:10] = base[:, 4:13, 11:20]        # ½ scale: rows 10-18, cols 1-9 <- 4-12, 11-19
shifted = Tensor(copy.repeat(2, axis=1).repeat(2, axis=2)[None])
hole_mask = np.zeros((1, 1, 40, 40))
hole_mask[..., 24:34, 6:16] = 1.0                  # ½ scale: rows 12-16, cols 3-7
_, shifted_offsets = contextual_attention(shifted, shifted, Tensor(hole_mask), rate=2)
in_hole = steps.downsample(Tensor(hole_mask), 2).data[0, 0] > 0
found = shifted_offsets[0][:, in_hole]
assert expected_offset is not None, "Exercise 3.1: not answered yet"
assert np.all(found == np.array(expected_offset).reshape(2, 1)), (
    f"Exercise 3.1: the layer's offsets in the hole are "
    f"{sorted(set(map(tuple, found.T.tolist())))}, not {expected_offset}")
print("Exercise 3.1 solved: every hole position copies from", tuple(expected_offset))

# %% [exercise]
# Exercise 3.2: a propagated score by hand. Away from the borders, the two passes of step
# 6 (k = 3) add up the scores of the 3×3 neighbourhood moved together:
# ŝ[(x, y), (x′, y′)] = Σ_{i, j ∈ {−1, 0, 1}} s[(x+i, y+j), (x′+i, y′+j)],
# positions flattened row-major (p = x·w + y). Complete the function for one pair.
def propagated_score(s, w, x, y, x2, y2):
    """s: (L, L) scores of one image on an h × w grid; interior positions only."""
    return None                                    # your code


# %% [check]
s0 = scores.data[0]
full = propagated.data[0]
for (x, y, x2, y2) in [(5, 5, 15, 14), (3, 7, 12, 4), (10, 10, 2, 17), (8, 1, 8, 1)]:
    got = propagated_score(s0, wd, x, y, x2, y2)
    assert got is not None, "Exercise 3.2: propagated_score returns nothing yet"
    want = full[x * wd + y, x2 * wd + y2]
    assert np.isclose(got, want), \
        f"Exercise 3.2: at {(x, y, x2, y2)} got {got:.4f}, the layer's {want:.4f}"
print("Exercise 3.2 solved")

# %% [exercise]
# Exercise 3.3: the masked softmax of step 7 with NumPy alone: for every row p,
# s*[p, q] = mm[q] · exp(λ·mm[q]·ŝ[p, q]) / Σ_q′ exp(λ·mm[q′]·ŝ[p, q′]).
# (Subtract each row's maximum logit before exp, as any careful softmax does.)
def masked_softmax_numpy(s_hat, mm, lam):
    """s_hat (L, L), mm (L,) of 0/1, lam a float -> (L, L)."""
    return None                                    # your code


# %% [check]
for lam in (10.0, 0.1):
    got = masked_softmax_numpy(propagated.data[0], mm[0], lam)
    assert got is not None, "Exercise 3.3: masked_softmax_numpy returns nothing yet"
    want = steps.masked_softmax(propagated, mm, softmax_scale=lam).data[0]
    assert np.allclose(got, want), \
        f"Exercise 3.3: λ = {lam}: max error {np.abs(got - want).max():.3g}"
print("Exercise 3.3 solved; rows sum to", got.sum(axis=1).min().round(6), "at least (λ = 0.1)")
#
# ## 3.2 What propagation buys: the toy with noise
#
# Propagation matters when single patches are ambiguous. Add noise to the copy inside the
# hole, so that a 3×3 patch alone no longer identifies its source, and count how many hole
# positions still find the right one, with and without propagation (`fuse`):

# %%
noise_levels = [0.0, 0.5, 1.0, 1.5, 2.0] if not QUICK else [0.0, 1.0, 2.0]
hits = {False: [], True: []}
examples = {}
for sigma in noise_levels:
    noisy = pattern.copy()
    noisy[:, 3:8, 3:8] += sigma * np.random.default_rng(7).standard_normal((3, 5, 5))
    noisy_features = Tensor(noisy.repeat(2, axis=1).repeat(2, axis=2)[None])
    for fuse in (False, True):
        _, off = contextual_attention(noisy_features, noisy_features, Tensor(mask), fuse=fuse)
        right = (off[0, 0][hole_small] == shift[0]) & (off[0, 1][hole_small] == shift[1])
        hits[fuse].append(right.mean() * 100)
        examples[(sigma, fuse)] = off

fig, axes = plt.subplots(1, 3, figsize=(9, 2.8), gridspec_kw={"width_ratios": [1.6, 1, 1]})
for fuse, values in hits.items():
    axes[0].plot(noise_levels, values, "o-", label="with propagation" if fuse else "without")
axes[0].set_xlabel("noise σ")
axes[0].set_ylabel("% right source")
axes[0].legend(fontsize=8)
sigma = noise_levels[-2]
for a, fuse in zip(axes[1:], (False, True)):
    a.imshow(flow_to_image(examples[(sigma, fuse)])[0])
    a.set_title(f"σ = {sigma}, fuse = {fuse}", fontsize=9)
    a.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3.3 On a real image
#
# Raw pixels as features: a held-out stripe texture at 128×128 (64×64 in quick mode) with a
# centred hole. Inside the hole the foreground is a heavily blurred version of the truth —
# the kind of guess a coarse network makes: roughly the right colours and layout, no sharp
# detail. Contextual attention matches these blurry patches against the sharp background
# and pastes sharp background patches back. (A photograph works less well on raw pixels;
# that is why the network *learns* the features it matches, pmconv1–pmconv6.)

# %%
size = 64 if QUICK else 128
corpus = demo_corpus("heldout", size, resize=True)
image = corpus.sample(corpus.names.index("texture:stripes:1000"), 0)
hole_mask, _ = centered_bbox_mask(size, size * 5 // 16)
m = hole_mask[0]
guess = gaussian_filter(image, (0, 3, 3)) * m + image * (1 - m)
real_steps = steps.contextual_attention_steps(Tensor(guess[None]), Tensor(guess[None]),
                                              Tensor(hole_mask), rate=2)
filled = real_steps.y.data[0] * m + image * (1 - m)
err_guess = np.abs(guess - image)[:, m[0] > 0].mean()
err_filled = np.abs(filled - image)[:, m[0] > 0].mean()
print(f"mean |error| in the hole: blurry guess {err_guess:.3f} -> after attention {err_filled:.3f}")

overlay = overlay_flow((show(image) * 255).astype(np.uint8), real_steps.offsets, alpha=0.7,
                       mask=hole_mask)[0]
fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
panels = [(show(image * (1 - m)), "input"), (show(guess), "foreground: blurry guess"),
          (show(filled), "attention fill"), (overlay, "attention map"),
          (color_wheel_legend(65), "legend")]
for a, (picture, title) in zip(axes, panels):
    a.imshow(picture)
    a.set_title(title, fontsize=9)
    a.axis("off")
plt.tight_layout()
plt.show()

# %%
hh, ww = real_steps.f_small.shape[2:]
p_real = (hh // 2) * ww + ww // 2                            # the centre of the hole
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.5))
for a, (matrix, title) in zip(axes, [(real_steps.scores, "s[p, ·]"),
                                     (real_steps.propagated, "ŝ[p, ·]"),
                                     (real_steps.attention, "s*[p, ·]")]):
    a.imshow(matrix.data[0, p_real].reshape(hh, ww), cmap="viridis")
    a.plot(ww // 2, hh // 2, "ro", mfc="none", ms=8)
    a.set_title(f"{title} for the hole's centre p (○)", fontsize=9)
    a.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The score map of the hole's centre lights up along the stripes of the same phase;
# propagation and the softmax concentrate the weight on a few of them.
#
# ## 3.4 Inside the trained network
#
# In DeepFill the foreground and background are the output of `pmconv6` (ReLU), 64×64×4c
# at a 256×256 input, and the mask is the hole mask resized to that size. The supported
# outputs give us the trained layer's result: `inpaint(..., return_attention=True)` returns
# its final scores s* as `result.attention` (N, h, w, h, w) and the offsets as
# `result.offsets`. For the intermediate scores we rebuild the layer's input from supported
# pieces only: the coarse result x₁ (`result.coarse`) pasted into the known pixels, as the
# network does, then the model's own stage `attention_encoder` (`pmconv1` … `pmconv6`, run by
# `generator.run_stage` exactly as `forward` runs it). The named steps run on that input, and
# the check is that their s* and offsets *equal* what the network returned: nothing is
# patched or spied on. This needs a trained model: the shipped demo model
# (`inpainting/weights/demo_cnum16.npz`), or any model file named by the environment
# variable `DEEPFILL_NOTEBOOK_MODEL`.

# %%
def attention_inputs(generator, image, mask, coarse):
    """pmconv6's features and the mask at their size, for one image (3, H, W), mask (1, H, W)."""
    hole = Tensor(mask[None])
    pasted = coarse * mask + image * (1 - mask)           # x₁ in the hole, the input elsewhere
    h = F.concat([Tensor(pasted[None]), Tensor(np.ones_like(mask[None])), hole], axis=1)
    h = generator.run_stage("attention_encoder", h)       # pmconv1..pmconv6, as forward runs them
    return h, F.interpolate_nearest(hole, size=h.shape[2:], align_corners=True)


def explore(generator, image, mask):
    """The trained model on one image: its result, the named steps replayed, the knockout probe."""
    result = inpaint(generator, image, mask, return_attention=True)
    with nnlite.no_grad():
        features, mask_small = attention_inputs(generator, image, mask, result.coarse[0])
        replay = steps.contextual_attention_steps(features, features, mask_small,
                                                  ksize=3, stride=1, rate=2)
    knocked = inpaint(generator, image, mask, knockout_attention=True)
    cells = replay.attention.shape[1]
    print(f"  s* replayed = result.attention: "
          f"{np.allclose(replay.attention.data[0], result.attention[0].reshape(cells, cells), atol=1e-5)};"
          f" offsets equal: {np.array_equal(replay.offsets, result.offsets)}")
    return result, replay, knocked


model_path = Path(os.environ.get("DEEPFILL_NOTEBOOK_MODEL", SHIPPED_MODEL))
if not model_path.exists():
    generator = None
    print(f"SKIPPED: no trained model at {model_path}. The shipped model is trained separately "
          "(see docs/training.md); set DEEPFILL_NOTEBOOK_MODEL to a model file to run this part.")
else:
    generator = load_generator(model_path)
    model_size = int(generator.meta.get("image_size", 256))
    if QUICK:
        model_size = min(model_size, 64)
    photo = demo_corpus("heldout", model_size, resize=True).sample(0, 0)
    texture_names, textures = texture_suite(model_size, SUITE_SEED)
    texture = textures[texture_names.index("brick-running-32x16")]
    photo_mask, _ = centered_bbox_mask(model_size, model_size // 2)
    photo_mask = photo_mask[0]
    print(f"model {model_path.name} (cnum {generator.cnum}) at {model_size}×{model_size}")
    explored = {}
    for label, picture in (("photo (astronaut, held out)", photo),
                           ("texture (brick-running-32x16)", texture)):
        print(label)
        explored[label] = (picture, *explore(generator, picture, photo_mask))

# %% [markdown]
# ## 3.5 A trained model's attention, explored
#
# Pick one hole cell p (a cell is 8×8 pixels: the attention grid is ⅛ of the image). Its
# row of s* says where the trained layer copies from. The figure marks p (red) and its
# top-k source cells q (numbered by rank, with their weight s*[p, q]); beside it p's
# softmax *before* propagation, `masked_softmax(s)` on the raw scores of step 5, and
# *after*, s* = `masked_softmax(ŝ)`: the propagation sums each score with its diagonal
# neighbours, so a source wins when its neighbours also match p's neighbours, and the
# weight concentrates on fewer cells.
#
# The last panel is a **probe**: `inpaint(..., knockout_attention=True)` runs the attention
# branch but hands the decoder zeros in its place, so it shows what this *trained* decoder
# makes of the hallucination branch alone. It is not the paper's ablation, which is a
# network trained without the branch (`InpaintGenerator(attention=False)`, trained from
# scratch); a decoder trained with the branch and then deprived of it is out of its
# training conditions ([docs/contextual_attention.md](../docs/contextual_attention.md)).

# %%
def top_sources(replay, p, k):
    """The k background cells with the largest s*[p, ·]: [(q, s*, softmax before propagation)]."""
    before = steps.masked_softmax(replay.scores, replay.mm).data[0, p]
    after = replay.attention.data[0, p]
    order = np.argsort(after)[::-1][:k]
    return [(int(q), float(after[q]), float(before[q])) for q in order], before, after


def draw_exploration(label, picture, result, replay, knocked, mask, k=5):
    grid_h, grid_w = replay.f_small.shape[2:]
    hole_cells = np.nonzero(replay.mm[0] == 0)[0]
    rows, cols = np.nonzero(mask[0, ::8, ::8] > 0.5)
    p = int((rows[len(rows) // 3] * grid_w + cols[len(cols) // 3]))   # a hole cell off the centre
    top, before, after = top_sources(replay, p, k)
    fig, axes = plt.subplots(1, 5, figsize=(13, 2.9))
    axes[0].imshow(show(picture * (1 - mask)))
    py, px = divmod(p, grid_w)
    axes[0].add_patch(Rectangle((8 * px - 0.5, 8 * py - 0.5), 8, 8, fill=False, ec="red", lw=2))
    for rank, (q, weight, _) in enumerate(top, 1):
        qy, qx = divmod(q, grid_w)
        axes[0].add_patch(Rectangle((8 * qx - 0.5, 8 * qy - 0.5), 8, 8, fill=False, ec="yellow", lw=1.5))
        axes[0].text(8 * qx + 4, 8 * qy - 1, f"{rank}", color="yellow", fontsize=7, ha="center")
    axes[0].set_title(f"p (red), top-{k} sources", fontsize=9)
    axes[1].imshow(before.reshape(grid_h, grid_w), cmap="viridis")
    axes[1].set_title("softmax before propagation", fontsize=9)
    axes[2].imshow(after.reshape(grid_h, grid_w), cmap="viridis")
    axes[2].set_title("s*[p, ·] after propagation", fontsize=9)
    for a in axes[1:3]:
        a.plot(px, py, "rs", mfc="none", ms=6)
    axes[3].imshow(show(result.output[0]))
    axes[3].set_title("model output", fontsize=9)
    axes[4].imshow(show(knocked.output[0]))
    axes[4].set_title("attention knocked out (probe)", fontsize=9)
    for a in axes:
        a.axis("off")
    fig.suptitle(label, fontsize=9, y=1.04)
    plt.tight_layout()
    show_jpeg(fig)
    hole = mask[0] > 0.5
    l1 = {name: float(np.abs(out.output[0][:, hole] - picture[:, hole]).mean() / 2 * 100)
          for name, out in (("model", result), ("knocked out", knocked))}
    print(f"p = cell {divmod(p, grid_w)} of a {grid_h}×{grid_w} grid; {len(hole_cells)} cells may not be "
          "copied from (mm = 0: their 3×3 patch touches the hole)")
    print("rank  source cell  s* after  softmax before")
    for rank, (q, weight, first) in enumerate(top, 1):
        print(f"{rank:>4}  {str(divmod(q, grid_w)):>11}  {weight:8.3f}  {first:14.3f}")
    print(f"largest weight of p: {before.max():.3f} before propagation, {after.max():.3f} after; "
          f"hole L1 (% of the range): model {l1['model']:.2f}, knocked out {l1['knocked out']:.2f}")


if generator is not None:
    for label, (picture, result, replay, knocked) in explored.items():
        draw_exploration(label, picture, result, replay, knocked, photo_mask)
else:
    print("SKIPPED (no trained model, see above)")

# %% [markdown]
# Read the panels and the table together: where p's top sources lie (on the texture, are
# they on the same phase of the brick pattern as p?), how much larger p's largest weight is
# after propagation than before, and how much the hole's L1 error changes when the branch
# is knocked out. That last number measures how much *this* trained decoder leans on the
# branch on this image; it says nothing about the paper's ablation.

# %% [markdown]
# ## Memory
#
# The score matrix is L × L per image with L = H·W / (4·r²) at the image's resolution
# (features at ¼ scale, then 1/r): 1M entries at 256×256, 16.8M at 512×512, about 1e9 at
# 1080p, which is why the release needs a 24 GB GPU there. `contextual_attention(...,
# chunk_size=R)` (and `inpaint(..., attention_memory=bytes)`) computes the same result R
# foreground rows at a time (`tests/test_attention.py::test_chunked_equals_direct`).
#
# Next: [04 — the coarse-to-fine network](04_network.ipynb).
