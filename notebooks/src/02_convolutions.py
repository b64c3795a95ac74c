"""Notebook 02 source: convolutions (built by notebooks/build_notebooks.py)."""
# %% [markdown]
# # 2. Convolutions
#
# **After this notebook you will be able to** write a 2-D convolution as plain loops and
# as im2col + one matrix product, and check both against `F.conv2d`; compute output sizes
# and TensorFlow's SAME padding and say why it is not symmetric; derive the backward of a
# convolution (the transposed convolution) and compute a receptive field.
#
# *Prerequisites:* notebook 1 (tensors, `nnlite.grad`); NumPy indexing and slicing.
# *Exercises:* 2.1–2.3 (solutions in [solutions/02_convolutions.py](solutions/02_convolutions.py)).
#
# Almost every layer of DeepFill v1 is a 2-D convolution: 5×5 and 3×3 kernels, stride 2
# to go down, dilation 2–16 to see far, nearest ×2 resizes to come back up, and
# TensorFlow's SAME padding everywhere. Contextual attention (notebook 3) is built from
# the same pieces: patch extraction (im2col) and a transposed convolution. This notebook
# takes them apart with nnlite's own functions.
#
# | idea | library | tests |
# |---|---|---|
# | y[o, oh, ow] = Σ_{c,i,j} x[c, oh·s − p + i·d, ow·s − p + j·d] · W[o, c, i, j] | `nnlite.functional.conv2d`, loop reference `nnlite.functional.conv_reference.conv2d_reference` | `tests/test_conv.py::test_conv2d_matches_loop_reference` |
# | im2col + one matrix product | `nnlite.functional.unfold`, `nnlite/kernels/im2col.py` | `tests/test_patches.py::test_unfold_and_fold_match_loop_references` |
# | TF SAME padding: out = ⌈n/s⌉, total = max((out−1)s + (k−1)d + 1 − n, 0), before = ⌊total/2⌋ | `nnlite.conv_geometry.same_padding` | `tests/test_conv.py::test_same_padding_numbers` |
# | transposed conv = adjoint: ⟨conv(x, W), y⟩ = ⟨x, convᵀ(y, W)⟩ | `nnlite.functional.conv_transpose2d` | `tests/test_conv.py::test_adjoint_identities` |
# | nearest resize, TF1 align-corners rule | `nnlite.functional.interpolate_nearest`, `nearest_indices` | `tests/test_resize.py::test_spec_example_64_to_32_align_corners` |
#
# Longer explanation, with the library's design decisions: [docs/convolution.md](../docs/convolution.md).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import nnlite
import nnlite.functional as F
from nnlite import Tensor
from nnlite.functional.conv_reference import conv2d_reference
from nnlite.conv_geometry import same_padding
from inpainting.data.datasets import demo_corpus
from inpainting.model.networks import gen_conv_table

QUICK = os.environ.get("DEEPFILL_NOTEBOOK_QUICK", "0") == "1"
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6, 3)})
rng = np.random.default_rng(0)
print("QUICK =", QUICK)

# %% [markdown]
# ## 2.1 Convolution as sliding dot products
#
# An output pixel is the dot product of the kernel with the input window under it. (Deep
# learning's "convolution" does not flip the kernel: it is a cross-correlation, like
# PyTorch's and TensorFlow's.) One output pixel by hand, then the whole output against the
# library's plain-loop reference:

# %%
x = Tensor(rng.integers(0, 10, (1, 1, 6, 6)).astype(np.float64))
w = Tensor(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64).reshape(1, 1, 3, 3))
y = F.conv2d(x, w)                                   # no padding: 6 - 3 + 1 = 4
window = x.data[0, 0, 1:4, 2:5]
print("output (1, 2) by hand :", (window * w.data[0, 0]).sum())
print("output (1, 2) conv2d  :", y.data[0, 0, 1, 2])
print("whole output equals the loop reference:",
      np.allclose(y.data, conv2d_reference(x.data, w.data)))

fig, axes = plt.subplots(1, 3, figsize=(8, 2.7))
for a, (image, title) in zip(axes, [(x.data[0, 0], "input x (6×6)"),
                                     (w.data[0, 0], "kernel W (Laplacian)"),
                                     (y.data[0, 0], "y = conv2d(x, W) (4×4)")]):
    a.imshow(image, cmap="Greys")
    for (r, c), value in np.ndenumerate(image):
        a.text(c, r, f"{value:g}", ha="center", va="center", fontsize=7, color="tab:red")
    a.set_title(title, fontsize=9)
    a.set_xticks([])
    a.set_yticks([])
axes[0].add_patch(Rectangle((1.5, 0.5), 3, 3, fill=False, ec="tab:blue", lw=2))
axes[2].add_patch(Rectangle((1.5, 0.5), 1, 1, fill=False, ec="tab:blue", lw=2))
plt.tight_layout()
plt.show()

# %% [markdown]
# **Build it yourself.** The definition, written out as loops over every index: pad, then
# for each output pixel take the dot product of the kernel with the window, whose taps are
# `dilation` pixels apart and whose windows are `stride` pixels apart. Slow (six nested
# loops) but impossible to misread; compare it with `F.conv2d` on random data with every
# argument at a non-trivial value.

# %%
def conv2d_loops(x, w, stride=1, pads=(0, 0, 0, 0), dilation=1):
    """x (N, C, H, W), w (O, C, KH, KW), pads (top, bottom, left, right): (N, O, OH, OW)."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c, h, wd = xp.shape
    o, _, kh, kw = w.shape
    oh = (h - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd - dilation * (kw - 1) - 1) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for b in range(n):
        for out in range(o):
            for i in range(oh):
                for j in range(ow):
                    total = 0.0
                    for u in range(kh):
                        for v in range(kw):
                            total += xp[b, :, i * stride + u * dilation,
                                        j * stride + v * dilation] @ w[out, :, u, v]
                    y[b, out, i, j] = total
    return y


xl = rng.standard_normal((2, 3, 9, 8))
wl = rng.standard_normal((4, 3, 3, 3))
for stride, pads, dilation in [(1, (0, 0, 0, 0), 1), (2, (0, 1, 1, 1), 1), (1, (2, 2, 2, 2), 2)]:
    mine = conv2d_loops(xl, wl, stride, pads, dilation)
    library = F.conv2d(Tensor(xl), Tensor(wl), stride=stride, padding=pads, dilation=dilation)
    print(f"stride {stride}, pads {pads}, dilation {dilation}: output {mine.shape}, "
          f"max |loops − F.conv2d| = {np.abs(mine - library.data).max():.1e}")

# %% [markdown]
# ## 2.2 The same thing as im2col + one matrix product
#
# Sliding windows in Python loops are slow. nnlite instead copies every window into a
# column of a matrix (**im2col**, `F.unfold`: shape (N, C·KH·KW, L) with L = OH·OW
# windows) and does *one* matrix product with the kernels reshaped to (O, C·KH·KW). The
# copy is done per kernel tap as one strided slice, so it is fast in NumPy. The price is
# memory: N·C·KH·KW·OH·OW numbers (302 MB for N = 16, C = 128, 64×64, 3×3 in float32).

# %%
xb = Tensor(rng.standard_normal((2, 3, 7, 7)))
wb = Tensor(rng.standard_normal((4, 3, 3, 3)))
cols = F.unfold(xb, 3, padding=1)                            # (2, 27, 49)
y_mat = (Tensor(wb.data.reshape(4, -1)) @ cols).reshape(2, 4, 7, 7)
print("columns:", cols.shape, "| max |im2col·W − conv2d| =",
      np.abs(y_mat.data - F.conv2d(xb, wb, padding=1).data).max())

fig, ax = plt.subplots(figsize=(6, 2))
ax.imshow(F.unfold(x, 3).data[0], cmap="Greys", aspect="auto")
ax.set_xlabel("window (output pixel) l")
ax.set_ylabel("tap (i, j)")
ax.set_title("im2col of the 6×6 example: one column per window", fontsize=9)
plt.show()

# %% [markdown]
# **Build it yourself.** im2col without loops over pixels: one strided slice per kernel tap
# (u, v) copies, for every window at once, the input pixel that tap sees. Stack the
# KH·KW slices, reshape to (N, C·KH·KW, OH·OW), multiply by the kernels as an
# (O, C·KH·KW) matrix. This is how `nnlite/kernels/im2col.py` does it on the CPU.

# %%
def conv2d_im2col(x, w, stride=1, pads=(0, 0, 0, 0), dilation=1):
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c, h, wd = xp.shape
    o, _, kh, kw = w.shape
    oh = (h - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd - dilation * (kw - 1) - 1) // stride + 1
    taps = [xp[:, :, u * dilation: u * dilation + stride * (oh - 1) + 1: stride,
                     v * dilation: v * dilation + stride * (ow - 1) + 1: stride]
            for u in range(kh) for v in range(kw)]               # each (N, C, OH, OW)
    cols = np.stack(taps, axis=2).reshape(n, c * kh * kw, oh * ow)  # rows ordered (c, u, v)
    return (w.reshape(o, -1) @ cols).reshape(n, o, oh, ow)


for stride, pads, dilation in [(1, (0, 0, 0, 0), 1), (2, (0, 1, 1, 1), 1), (1, (2, 2, 2, 2), 2)]:
    mine = conv2d_im2col(xl, wl, stride, pads, dilation)
    loops = conv2d_loops(xl, wl, stride, pads, dilation)
    library = F.conv2d(Tensor(xl), Tensor(wl), stride=stride, padding=pads, dilation=dilation)
    print(f"stride {stride}, pads {pads}, dilation {dilation}: "
          f"max |im2col − loops| = {np.abs(mine - loops).max():.1e}, "
          f"max |im2col − F.conv2d| = {np.abs(mine - library.data).max():.1e}")

# %% [exercise]
# Exercise 2.1: the output size. A convolution with kernel size k, stride s, pads
# (before, after) and dilation d on an n-pixel row: how many outputs? Count the window
# positions that fit inside the padded row (a dilated kernel spans d(k−1)+1 pixels).
def output_size(n, k, s, before, after, d):
    return None                                    # your formula


# %% [check]
for n, k, s, before, after, d in [(8, 3, 1, 0, 0, 1), (8, 3, 2, 0, 1, 1), (9, 5, 2, 2, 2, 1),
                                  (16, 3, 1, 4, 4, 4), (7, 3, 3, 1, 0, 2), (5, 5, 1, 0, 0, 1)]:
    expected = F.conv2d(Tensor(np.zeros((1, 1, n, 1))), Tensor(np.zeros((1, 1, k, 1))),
                        stride=(s, 1), padding=(before, after, 0, 0), dilation=(d, 1)).shape[2]
    got = output_size(n, k, s, before, after, d)
    assert got == expected, (f"Exercise 2.1: n={n} k={k} s={s} pads=({before}, {after}) "
                             f"d={d}: got {got}, expected {expected}")
print("Exercise 2.1 solved")

# %% [markdown]
# ## 2.3 Stride and padding: TensorFlow SAME is not symmetric
#
# The output size with padding (p_before, p_after), stride s, dilation d is
# OH = ⌊(H + p_before + p_after − d(k−1) − 1)/s⌋ + 1. The release pads with
# **TensorFlow's SAME** rule (spec §1):
#
# $$\mathrm{out} = \lceil n/s \rceil,\quad \mathrm{total} = \max((\mathrm{out}-1)s + (k-1)d + 1 - n,\ 0),\quad
#   \mathrm{before} = \lfloor \mathrm{total}/2 \rfloor,\ \mathrm{after} = \mathrm{total} - \mathrm{before}.$$
#
# With stride 1 that is the familiar symmetric (k−1)d/2. With stride 2, k = 3 and an even
# n it is **0 before and 1 after**: the odd pixel of padding goes to the bottom/right. The
# paddings of the generator's layers at a 256×256 input:

# %%
size = 256
print(f"{'layer':>18} k s d  input  SAME (before, after)")
for name, cin, cout, k, s, d, act in gen_conv_table(32)[:12]:
    print(f"{name:>18} {k} {s} {d:>2} {size:>5}  {same_padding(size, k, s, d)}")
    size = -(-size // s)

# %% [markdown]
# Which input pixels does each output of a stride-2, 3×3 convolution see on an 8-pixel
# row? Grey squares are zero padding.

# %%
def draw_windows(ax, n, k, s, before, after, title):
    out = (n + before + after - k) // s + 1
    for o in range(out):
        start = o * s - before
        for t in range(k):
            col = start + t
            pad = col < 0 or col >= n
            ax.add_patch(Rectangle((col, -o - 1), 0.9, 0.8, color="lightgrey" if pad else "tab:blue"))
        ax.text(-2.6, -o - 0.6, f"out {o}", fontsize=8, va="center")
    for col in range(-1, n + 1):
        ax.text(col + 0.45, 0.2, str(col) if 0 <= col < n else "pad", ha="center", fontsize=7)
    ax.set_xlim(-3, n + 1.5)
    ax.set_ylim(-out - 0.5, 0.8)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
draw_windows(axes[0], 8, 3, 2, *same_padding(8, 3, 2, 1), "TF SAME: pads (0, 1)")
draw_windows(axes[1], 8, 3, 2, 1, 1, "symmetric padding=1: pads (1, 1)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Both give 4 outputs, but SAME's windows start at pixel 0 and symmetric padding's at
# pixel −1: the whole output is shifted by one input pixel. On an image, with a
# smoothing kernel, the two differ by a one-pixel shift of the whole map; through a
# trained network such shifts accumulate (a port with symmetric padding differs from the
# release by up to 0.67 on outputs in [−1, 1], spec §1).

# %%
image = demo_corpus("heldout", 64, resize=True).sample(1, 0)[None].astype(np.float64)
blur = np.full((3, 3, 3, 3), 0.0)
for c in range(3):
    blur[c, c] = 1 / 9
same = F.conv2d(Tensor(image), Tensor(blur), stride=2, padding="same").data
symmetric = F.conv2d(Tensor(image), Tensor(blur), stride=2, padding=1).data
print("output shapes:", same.shape, symmetric.shape,
      "| max |SAME − symmetric| =", np.abs(same - symmetric).max().round(3))
fig, axes = plt.subplots(1, 3, figsize=(8, 2.7))
for a, (im, title) in zip(axes, [(same[0], "SAME"), (symmetric[0], "symmetric"),
                                  (np.abs(same - symmetric)[0], "|difference|")]):
    a.imshow(np.clip((im.transpose(1, 2, 0) + 1) / 2, 0, 1) if title != "|difference|"
             else im.mean(0), cmap="magma")
    a.set_title(title, fontsize=9)
    a.axis("off")
plt.tight_layout()
plt.show()

# %% [exercise]
# Exercise 2.2: why SAME differs from symmetric padding. For a row of n = 8 pixels,
# k = 3, s = 2 (an even row, a stride-2 layer of the generator): give TensorFlow SAME's
# (before, after) pads from the formula above, and the input pixel on which output 0's
# window is centred with SAME and with symmetric padding 1. (The figure above shows it.)
same_pads_8 = None                                 # (before, after)
centre_same = None                                 # an input pixel index
centre_symmetric = None

# %% [check]
assert same_pads_8 is not None and centre_same is not None and centre_symmetric is not None, \
    "Exercise 2.2: not answered yet"
assert tuple(same_pads_8) == same_padding(8, 3, 2, 1), f"Exercise 2.2: pads {same_pads_8}"
delta = np.zeros((1, 1, 8, 1))
centre_kernel = np.zeros((1, 1, 3, 1))
centre_kernel[0, 0, 1, 0] = 1.0                    # picks each window's centre pixel
for answer, padding in ((centre_same, "same"), (centre_symmetric, (1, 1, 0, 0))):
    picked = delta.copy()
    picked[0, 0, :, 0] = np.arange(8)              # pixel values = their index
    out = F.conv2d(Tensor(picked), Tensor(centre_kernel), stride=(2, 1), padding=padding)
    centre = out.data[0, 0, 0, 0]
    assert centre == answer, \
        f"Exercise 2.2: with padding {padding} output 0 is centred on pixel {centre:g}, not {answer}"
print("Exercise 2.2 solved: SAME puts the extra padding after, so every window sits one "
      "pixel later than with symmetric padding")

# %% [markdown]
# ## 2.4 Dilation and the receptive field of the coarse network
#
# A dilated ("atrous") 3×3 kernel with rate d reads pixels d apart: it covers
# (k−1)·d + 1 pixels with 9 weights. The coarse network stacks rates 2, 4, 8, 16 at ¼
# resolution. The receptive field r grows layer by layer as
#
# $$r \leftarrow r + (k-1)\,d\,j, \qquad j \leftarrow j\cdot s,$$
#
# where j is the layer's input pixel spacing in image pixels (j doubles at each stride-2
# layer and halves at each ×2 upsampling). From the generator's own layer table:

# %%
def receptive_fields(rows):
    r, j, fields = 1, 1.0, []
    for name, cin, cout, k, s, d, act in rows:
        if name.endswith("_upsample"):
            j /= 2
        r += (k - 1) * d * j
        j *= s
        fields.append((name, int(r)))
    return fields


coarse = gen_conv_table(32)[:17]
fields = receptive_fields(coarse)
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(range(len(fields)), [r for _, r in fields], color=["tab:orange" if "atrous" in n else "tab:blue" for n, _ in fields])
ax.axhline(256, color="gray", ls=":", label="256-pixel training image")
ax.set_xticks(range(len(fields)))
ax.set_xticklabels([n.replace("_downsample", "↓").replace("_upsample", "↑").replace("_atrous", "")
                    for n, _ in fields], rotation=60, fontsize=8)
ax.set_ylabel("receptive field (pixels)")
ax.set_title("coarse network: receptive field after each layer (orange: dilated)", fontsize=9)
ax.legend(fontsize=8)
plt.show()
print(dict(fields))

# %% [markdown]
# The four dilated layers take the field from 31 to 271 pixels, more than the whole
# 256×256 training image, for the cost of four 3×3 convolutions.
#
# The same number, measured with autograd: build the first ten coarse layers as plain
# convolutions (one channel, all weights equal, no activation), and ask for the gradient
# of the centre output pixel with respect to the input. Its support *is* the receptive
# field; its magnitude shows which input pixels matter most.

# %%
side = 160 if QUICK else 320
xin = Tensor(np.zeros((1, 1, side, side)), requires_grad=True)
h = xin
for name, cin, cout, k, s, d, act in coarse[:10]:
    h = F.conv2d(h, Tensor(np.full((1, 1, k, k), 1.0 / k**2)), stride=s, padding="same", dilation=d)
centre = h.shape[2] // 2
(g,) = nnlite.grad(h[:, :, centre, centre].sum(), xin)
support = np.nonzero(g.data[0, 0].sum(axis=1))[0]
print(f"after conv10_atrous the feature map is {h.shape[2]}×{h.shape[3]}; the centre pixel "
      f"depends on input rows {support.min()}..{support.max()} = {support.size} pixels")

fig, axes = plt.subplots(1, 3, figsize=(9, 3))
axes[0].imshow(g.data[0, 0], cmap="viridis")
axes[0].set_title("|∂ centre / ∂ input|", fontsize=9)
axes[1].imshow(np.log10(np.abs(g.data[0, 0]) + 1e-12), cmap="viridis", vmin=-9)
axes[1].set_title("log10 of the same", fontsize=9)
axes[2].plot(g.data[0, 0, side // 2])
axes[2].set_title("a row through the centre", fontsize=9)
for a in axes[:2]:
    a.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# (With the 320-pixel input of a full run, all 271 rows show; the quick run's 160-pixel
# input is smaller than the field, so the support is cut at the border.) The field is
# large, but the influence is uneven: it falls off towards the edges, and the dilated
# layers leave a bumpy grid pattern (each rate reads pixels d apart). A pixel deep in a
# hole can in principle see the far background, but only weakly and through fixed
# weights — which is why the paper adds contextual attention: to copy from *far away*
# explicitly, wherever the matching content is.
#
# ## 2.5 The transposed convolution is the adjoint
#
# For a fixed kernel W, conv(·, W) is a linear map A. Its adjoint Aᵀ is the **transposed
# convolution**: ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for all x, y. It is also exactly what backward
# needs: the gradient of ⟨conv(x, W), y⟩ with respect to x is convᵀ(y, W). nnlite's
# `conv2d`, `conv_transpose2d` and `conv2d_grad_weight` are each other's backward, so
# derivatives of any order stay inside the family. Numerically, with stride 2 and the
# SAME padding (0, 1, 0, 1) of an even-sized input:

# %%
x8 = Tensor(rng.standard_normal((1, 2, 8, 8)), requires_grad=True)
W8 = Tensor(rng.standard_normal((3, 2, 3, 3)))
pads = same_padding(8, 3, 2, 1) * 2                      # (top, bottom, left, right)
Ax = F.conv2d(x8, W8, stride=2, padding=pads)
y4 = Tensor(rng.standard_normal(Ax.shape))
ATy = F.conv_transpose2d(y4, W8, stride=2, padding=pads)
print("<A x, y>   =", float((Ax.data * y4.data).sum()))
print("<x, A^T y> =", float((x8.data * ATy.data).sum()))
(grad_x,) = nnlite.grad(Ax, x8, grad_outputs=y4)
print("grad of <conv(x, W), y> w.r.t. x equals conv_transpose2d(y, W):",
      np.allclose(grad_x.data, ATy.data))

# %% [exercise]
# Exercise 2.3: derive and implement the backward of conv2d with respect to its input,
# for stride 1, no padding, dilation 1. y[n,o,i,j] = Σ_{c,u,v} x[n,c,i+u,j+v] W[o,c,u,v],
# so each x[n,c,i+u,j+v] receives gy[n,o,i,j]·W[o,c,u,v] from every output that saw it.
# Return gx with the shape of x (loops are fine).
def conv2d_input_grad(gy, w, x_shape):
    gx = np.zeros(x_shape)
    return None                                    # your code: fill gx, return it


# %% [check]
xg2 = Tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
wg2 = rng.standard_normal((4, 3, 3, 2))
gy2 = rng.standard_normal((2, 4, 4, 4))            # random: ones would hide a missing gy
(expected_gx,) = nnlite.grad(F.conv2d(xg2, Tensor(wg2)), xg2, grad_outputs=Tensor(gy2))
got_gx = conv2d_input_grad(gy2, wg2, xg2.shape)
assert got_gx is not None, "Exercise 2.3: conv2d_input_grad returns nothing yet"
assert np.allclose(got_gx, expected_gx.data), \
    f"Exercise 2.3: max error {np.abs(got_gx - expected_gx.data).max():.3g}"
assert np.allclose(got_gx, F.conv_transpose2d(Tensor(gy2), Tensor(wg2)).data)
print("Exercise 2.3 solved: the input gradient is the transposed convolution of gy")

# %% [markdown]
# A transposed convolution *pastes* a copy of the kernel, scaled by each input pixel, onto
# the output, stride pixels apart. Where pastes overlap they add up. With a 4×4 kernel of
# ones at stride 2 (the geometry contextual attention uses to paste 4×4 background
# patches back, notebook 3), every interior output pixel is covered exactly **4** times —
# which is why the release divides the reconstruction by 4 — and border pixels fewer times:

# %%
impulse = np.zeros((1, 1, 4, 4))
impulse[0, 0, 1, 2] = 1.0                                   # one pixel of a 4×4 input
kernel = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
stamp = F.conv_transpose2d(Tensor(impulse), Tensor(kernel), stride=2, padding=1).data
coverage = F.conv_transpose2d(Tensor(np.ones((1, 1, 4, 4))), Tensor(np.ones((1, 1, 4, 4))),
                              stride=2, padding=1).data
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
axes[0].imshow(stamp[0, 0], cmap="Greys")
axes[0].set_title("input pixel (1, 2) pastes the kernel", fontsize=9)
for a in axes:
    a.set_xticks(np.arange(-0.5, 8, 1), minor=True)
    a.set_yticks(np.arange(-0.5, 8, 1), minor=True)
    a.grid(which="minor", color="lightgrey", lw=0.5)
    a.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
axes[1].imshow(coverage[0, 0], cmap="viridis")
for (r, c), value in np.ndenumerate(coverage[0, 0]):
    axes[1].text(c, r, f"{value:g}", ha="center", va="center", fontsize=7, color="w")
axes[1].set_title("how often each pixel is pasted (4×4, stride 2)", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# DeepFill's generator never uses a transposed convolution to upsample: its "upsample
# conv" is a **nearest ×2 resize** (pixel duplication) followed by a 3×3 convolution,
# which avoids the checkerboard pattern that uneven overlaps like the border above cause.
#
# ## 2.6 Nearest-neighbour resizing: two index rules
#
# * The upsample conv duplicates pixels: output row y reads input row ⌊y/2⌋
#   (`F.interpolate_nearest(x, scale_factor=2)`).
# * Masks, and the features inside contextual attention, are shrunk with TensorFlow 1's
#   `resize_nearest_neighbor(align_corners=True)`:
#
# $$\mathrm{src}(y) = \min\big(\mathrm{roundf}(y \cdot \tfrac{\mathrm{in}-1}{\mathrm{out}-1}),\ \mathrm{in}-1\big)$$
#
# computed in float32, rounding halves away from zero. For 64 → 32 this is **not** 2y:

# %%
align = F.nearest_indices(64, 32, align_corners=True)
print("64 -> 32, align corners:", align.tolist())
print("rows where it differs from 2y:", np.nonzero(align != 2 * np.arange(32))[0].tolist())
mask_path = F.nearest_indices(256, 64, align_corners=True)[F.nearest_indices(64, 32, align_corners=True)]
print("256 -> 64 -> 32 (the model's mask path):", mask_path.tolist())

fig, ax = plt.subplots(figsize=(6, 2.6))
ax.plot(align, "o", ms=3, label="align-corners rule")
ax.plot(2 * np.arange(32), "x", ms=3, label="2y")
ax.set_xlabel("output row y")
ax.set_ylabel("source row")
ax.legend(fontsize=8)
ax.set_title("64 → 32: the rule jumps from 30 to 33 halfway", fontsize=9)
plt.show()

# %% [markdown]
# A hole boundary can therefore move by a pixel relative to a naive re-implementation,
# which changes which background patches count as valid in contextual attention.
# `tests/test_resize.py::test_spec_example_mask_path_256_to_64_to_32` pins these indices.
#
# Next: [03 — contextual attention, step by step](03_contextual_attention.ipynb).
