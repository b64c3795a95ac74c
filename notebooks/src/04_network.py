"""Notebook 04 source: the coarse-to-fine network (built by notebooks/build_notebooks.py)."""
# %% [markdown]
# # 4. The coarse-to-fine network
#
# **After this notebook you will be able to** draw DeepFill v1's generator from its layer
# table and follow a 256×256 image through it size by size; explain the coarse-to-fine
# composition (paste the coarse result into the known pixels, refine with two encoders);
# count a layer's parameters; predict the size at which contextual attention runs; and
# load the authors' released checkpoints.
#
# *Prerequisites:* notebooks 2 (convolutions, SAME padding, dilation) and 3 (contextual
# attention). *Exercises:* 4.1–4.2 (solutions in [solutions/04_network.py](solutions/04_network.py)).
#
# DeepFill v1's generator works in two stages (paper Fig. 2): a **coarse** network makes a
# rough, blurry fill; its result is pasted into the known pixels and passed to a
# **refinement** network with two encoders — a dilated-convolution "hallucination" branch
# and a contextual-attention branch — and one decoder. With x the incomplete image
# (x_in = image·(1−M)) and M the mask (1 = hole):
#
# | equation (spec §2) | code | test |
# |---|---|---|
# | coarse input: concat[x_in, 1, M] (5 channels) | `inpainting.model.networks.InpaintGenerator.forward` | `tests/test_network_reference.py::test_generator_matches_the_spec_reference` |
# | x₁ = clip(G₁(concat[x_in, 1, M]), −1, 1) (no tanh in v1) | same | same |
# | x = x₁·M + x_in·(1−M), refinement input concat[x, 1, M] | same | `tests/test_network_reference.py::test_refinement_input_is_the_pasted_back_image` |
# | x₂ = clip(G₂(…), −1, 1), attention on pmconv6 at ¼ size, mask resized with the align-corners rule | same, `inpainting.contextual_attention` | `tests/test_network_reference.py::test_generator_matches_the_spec_reference` |
# | output = x₂·M + x_in·(1−M) | `inpainting.model.inference.inpaint` | `tests/test_networks.py::test_inpaint_any_size_keeps_known_pixels` |
# | every conv pads by TF SAME | `nnlite.nn.Conv2d(padding="same")` | `tests/test_networks.py::test_stride_two_convs_use_tensorflow_same_padding` |
# | 3,601,542 generator parameters at cnum = 32; critics 7,072,770 | `inpainting.model.networks.gen_conv_table`, `architecture_table` | `tests/test_networks.py::test_parameter_counts_match_the_release` |
#
# Architecture in words: [docs/architecture.md](../docs/architecture.md); loading the
# authors' checkpoints: [docs/release_checkpoints.md](../docs/release_checkpoints.md).

# %%
import io
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display
from matplotlib.patches import Rectangle

import nnlite
import nnlite.functional as F
from nnlite import Tensor
import inpainting
from inpainting import color_wheel_legend, inpaint
from inpainting.data.datasets import demo_corpus
from inpainting.data.masks import centered_bbox_mask
from inpainting.weights.model_io import SHIPPED_MODEL, load_generator
from inpainting.model.networks import (GlobalCritic, InpaintGenerator, LocalCritic, architecture_table,
                                 gen_conv_table)
from inpainting.weights.release import generator_release_name
from inpainting.weights.tf_checkpoint import CheckpointReader
from inpainting.training.viz import attention_rgb, to_display

QUICK = os.environ.get("DEEPFILL_NOTEBOOK_QUICK", "0") == "1"
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (6, 3)})
ROOT = Path(inpainting.__file__).resolve().parents[1]
print("QUICK =", QUICK)


def show_jpeg(fig, quality=85):
    """Display a figure of photographs as JPEG (a fraction of the PNG's size in the .ipynb)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", bbox_inches="tight", pil_kwargs={"quality": quality})
    plt.close(fig)
    display(Image(buffer.getvalue()))

# %% [markdown]
# ## 4.1 The architecture table, generated from the code
#
# `gen_conv_table(cnum)` is the single list the model is built from;
# `architecture_table` prints it (the same table is in docs/architecture.md, and a test
# keeps the two equal). Output sizes are for a 256×256 input; `*_upsample` layers are a
# nearest ×2 resize followed by the convolution.

# %%
display(Markdown(architecture_table(32)))

# %% [markdown]
# **The network, drawn from the same table** (the structure of the paper's Fig. 2, with the
# two refinement encoders of its Fig. 5): one box per convolution, its height proportional
# to the feature map's side and labelled with the output size for a 256×256 input
# (H×W×C); ↓ marks a stride-2 layer, ↑ a nearest ×2 resize before the conv, d the dilation.
# The sizes are computed with the rule `architecture_table` uses and checked against its
# "output" column, so the picture cannot drift from the code.

# %%
def layer_sizes(table, size=256):
    """{layer name: output side} for a size×size input: the rule of architecture_table."""
    sides, side = {}, size
    for name, cin, cout, k, s, d, activation in table:
        if name in ("xconv1", "pmconv1"):                 # both encoders restart at full size
            side = size
        if name.endswith("_upsample"):
            side *= 2
        side = -(-side // s)
        sides[name] = side
    return sides


table = gen_conv_table(32)
sides = layer_sizes(table)
from_table = {row.split(" | ")[0].strip("| "): int(row.split(" | ")[7].split("x")[0])
              for row in architecture_table(32).splitlines()[2:-1]}
assert sides == from_table, "the diagram's sizes differ from architecture_table's"

branches = [("coarse network", "conv", 3.0, "tab:blue"),
            ("hallucination encoder (dilated convs)", "xconv", 1.9, "tab:orange"),
            ("attention encoder", "pmconv", 0.8, "tab:green"),
            ("decoder (both branches concatenated)", "allconv", 1.35, "tab:purple")]
fig, ax = plt.subplots(figsize=(15, 4.6))
positions = {}
for title, prefix, y, colour in branches:
    rows = [r for r in table if r[0].split("_")[0].rstrip("0123456789") == prefix]
    x0 = {"conv": 0.0, "xconv": 1.2, "pmconv": 1.2, "allconv": 12.9}[prefix]
    ax.text(x0, y + 0.55, title, fontsize=9, color=colour, weight="bold")
    for i, (name, cin, cout, k, s, d, activation) in enumerate(rows):
        x = x0 + i * (0.98 if prefix == "conv" else 1.05)
        if prefix == "pmconv" and i >= 6:
            x += 1.05                                      # room for contextual attention
        height = 0.15 + 0.35 * sides[name] / 256
        ax.add_patch(Rectangle((x, y - height / 2), 0.82, height, color=colour, alpha=0.35))
        short = name.split("_")[0] + ("↓" if s == 2 else "")
        short += "↑" if "upsample" in name else ""
        label = f"{short}\n{sides[name]}²×{cout}" + (f"\nd={d}" if d > 1 else "")
        ax.text(x + 0.41, y, label, ha="center", va="center", fontsize=6.2)
        positions[name] = (x, y)
    if prefix == "pmconv":
        x = positions["pmconv6"][0] + 1.05
        ax.add_patch(Rectangle((x, y - 0.22), 0.82, 0.44, color="tab:red", alpha=0.35))
        ax.text(x + 0.41, y, f"contextual\nattention\n{sides['pmconv6']}²", ha="center",
                va="center", fontsize=6.2)
arrow = dict(arrowstyle="->", color="0.3", lw=1)
end_coarse = positions["conv17"]
ax.annotate("x₁ pasted into the known pixels:\nx = x₁·M + x_in·(1−M), input [x, 1, M]",
            xy=(1.2, 2.35), xytext=(end_coarse[0] - 3.5, 2.45), fontsize=7.5, arrowprops=arrow,
            ha="center")
ax.text(0.0, 2.62, "input [x_in, 1, M]\n(5 channels)", fontsize=7)
for last, y in (("xconv10_atrous", 1.9), ("pmconv10", 0.8)):   # both branches -> decoder
    ax.annotate("", xy=(12.85, 1.35), xytext=(positions[last][0] + 0.85, y), arrowprops=arrow)
ax.text(positions["allconv17"][0] + 0.9, 1.35, "x₂", fontsize=9, va="center")
ax.text(end_coarse[0] + 0.9, 3.0, "x₁", fontsize=9, va="center")
ax.set_xlim(-0.3, 21.3)
ax.set_ylim(0.3, 3.75)
ax.axis("off")
ax.set_title("DeepFill v1 generator, from gen_conv_table (cnum = 32, 256×256 input)", fontsize=10)
plt.show()

# %%
generator = InpaintGenerator(32)
critics = LocalCritic(64, 128), GlobalCritic(64, 256)
print(f"generator parameters: {generator.num_parameters():,} (the paper says 2.9M; the code has more)")
print(f"critic parameters:    {sum(c.num_parameters() for c in critics):,} "
      f"(local {critics[0].num_parameters():,} + global {critics[1].num_parameters():,})")

# %% [markdown]
# ## 4.2 Shapes flowing through
#
# Run the generator (random weights; shapes do not care) and record what each layer
# produces. A **forward hook** (`module.register_forward_hook(hook)`, as in PyTorch) is
# called as `hook(module, inputs, output)` after the layer runs: it watches without
# changing anything, and `handle.remove()` takes it off again. We also ask the generator
# for its attention scores with `return_attention=True`, its supported output.

# %%
cnum, size = (8, 64) if QUICK else (32, 256)
model = InpaintGenerator(cnum, rng=np.random.default_rng(0))
trace = []


def record(name):
    def hook(module, inputs, output):
        trace.append((name, tuple(inputs[0].shape), tuple(output.shape)))
    return hook


handles = [module.register_forward_hook(record(name)) for name, module in model.named_children()]
image = demo_corpus("heldout", size, resize=True).sample(0, 0)[None]
mask, _ = centered_bbox_mask(size, size // 2)
with nnlite.no_grad():
    x1, x2, offsets, scores = model(Tensor(image * (1 - mask)), Tensor(mask), return_attention=True)
for handle in handles:
    handle.remove()                       # the model is as it was built

# Contextual attention has no weights and no module of its own: it runs between pmconv6 and
# the next layer of the branch, so its input is what pmconv6 produced and its output what
# that layer was given.
after = [name for name, _, _ in trace].index("pmconv6") + 1
trace.insert(after, ("contextual_attention", trace[after - 1][2], trace[after][1]))

rows = ["| # | layer | input (N, C, H, W) | output |", "|---:|---|---|---|"]
rows += [f"| {i} | {name} | {shape_in} | {shape_out} |" for i, (name, shape_in, shape_out) in enumerate(trace)]
display(Markdown("\n".join(rows)))
print("x1", x1.shape, "x2", x2.shape, "offsets", offsets.shape,
      "attention scores (N, L, L), L = (H/8)(W/8):", scores.shape)

# %%
branch_of = {"co": "coarse", "xc": "hallucination", "pm": "attention branch", "al": "decoder"}
colours = {"coarse": "tab:blue", "hallucination": "tab:orange", "attention branch": "tab:green",
           "decoder": "tab:purple", "attention": "tab:red"}
fig, axes = plt.subplots(2, 1, figsize=(9, 4), sharex=True)
for i, (name, _, shape_out) in enumerate(trace):
    branch = "attention" if name == "contextual_attention" else branch_of[name[:2]]
    axes[0].bar(i, shape_out[2], color=colours[branch], label=branch)
    axes[1].bar(i, shape_out[1], color=colours[branch])
handles = {label: h for h, label in zip(*axes[0].get_legend_handles_labels())}
axes[0].legend(handles.values(), handles.keys(), fontsize=7, ncol=5, loc="upper center")
axes[0].set_ylabel("height H")
axes[0].set_ylim(0, size * 1.35)
axes[1].set_ylabel("channels C")
axes[1].set_xlabel("layer, in the order they run")
axes[0].set_title("feature-map size after each layer", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read it top to bottom: the coarse network goes down to ¼ resolution (two stride-2
# convolutions), runs four dilated convolutions there, and comes back up with two
# nearest-×2 + conv layers. The refinement stage starts again from full resolution with
# two encoders; contextual attention runs on the ¼-resolution `pmconv6` features (scores
# at ⅛, notebook 3); the decoder sees both branches concatenated (8·cnum channels).
#
# ## 4.3 The coarse-to-fine composition, checked on the outputs
#
# The equations above, verified on this (untrained) generator's outputs:

# %%
hole = mask[0, 0] > 0.5
print("x1 and x2 within [-1, 1]:", float(x1.data.min()) >= -1, float(x2.data.max()) <= 1)
result = inpaint(model, image[0], mask[0])
print("inpaint output = x2 in the hole:", np.allclose(result.output[0][:, hole], result.refined[0][:, hole]))
print("inpaint output = input outside :", np.allclose(result.output[0][:, ~hole], image[0][:, ~hole]))
small = F.interpolate_nearest(Tensor(mask), size=(size // 4, size // 4), align_corners=True).data
print(f"mask given to contextual attention: {small.shape}, hole rows "
      f"{np.nonzero(small[0, 0].any(1))[0][[0, -1]]} of {size // 4}")
print("first conv sees 5 channels [x_in, ones, M]:", model.conv1.weight.shape)

fig, axes = plt.subplots(1, 4, figsize=(9, 2.4))
panels = [(to_display(image[0] * (1 - mask[0])), "x_in"), (mask[0, 0], "M (1 = hole)"),
          (small[0, 0], f"M at {size // 4}×{size // 4} (attention)"),
          (to_display(result.output[0]), "output (untrained G)")]
for a, (picture, title) in zip(axes, panels):
    a.imshow(picture, cmap="gray")
    a.set_title(title, fontsize=9)
    a.axis("off")
plt.tight_layout()
plt.show()

# %% [exercise]
# Exercise 4.1: count a layer's parameters. A convolution from cin to cout channels with a
# k×k kernel has a weight (cout, cin, k, k) and a bias (cout,). Write the count, then
# the whole generator's total from gen_conv_table.
def conv_parameters(cin, cout, k):
    return None                                    # your formula


generator_total = None                             # sum over gen_conv_table(32)

# %% [check]
assert conv_parameters(5, 32, 5) is not None and generator_total is not None, \
    "Exercise 4.1: not solved yet"
for name, cin, cout, k, s, d, activation in gen_conv_table(32):
    layer = getattr(generator, name)
    counted = sum(p.size for p in layer.parameters())
    assert conv_parameters(cin, cout, k) == counted, f"Exercise 4.1: {name} has {counted}"
assert generator_total == generator.num_parameters(), \
    (f"Exercise 4.1: the generator has {generator.num_parameters():,} parameters, "
     f"not {generator_total:,}")
print(f"Exercise 4.1 solved: {generator_total:,} parameters")

# %% [exercise]
# Exercise 4.2: where attention runs. For a 512×512 input, at what side does contextual
# attention receive its features (the output of pmconv6)? The scores are computed at half
# that side (rate 2): how many entries does one image's (L × L) score matrix hold?
attention_side_512 = None
score_entries_512 = None

# %% [check]
assert attention_side_512 is not None and score_entries_512 is not None, \
    "Exercise 4.2: not answered yet"
tiny = InpaintGenerator(2, rng=np.random.default_rng(0))       # 2 channels: shapes only
features_512 = Tensor(np.zeros((1, 5, 512, 512), np.float32))
with nnlite.no_grad():
    for name in ("pmconv1", "pmconv2_downsample", "pmconv3", "pmconv4_downsample", "pmconv5",
                 "pmconv6"):
        features_512 = getattr(tiny, name)(features_512)
side = features_512.shape[2]
L = (side // 2) ** 2
assert attention_side_512 == side, \
    f"Exercise 4.2: pmconv6 gives {side}×{side}, not {attention_side_512}"
assert score_entries_512 == L * L, f"Exercise 4.2: {score_entries_512} is not L × L"
print(f"Exercise 4.2 solved: {side}×{side} features, scores at {side // 2}×{side // 2}, "
      f"{L:,} × {L:,} = {L * L:,} entries ({L * L * 4 / 2**30:.2f} GiB in float32)")

# %% [markdown]
# ## 4.4 The authors' released model
#
# The released TensorFlow checkpoints (Places2, CelebA, CelebA-HQ, ImageNet; 256×256
# training) load without TensorFlow: `load_generator` reads the V2 checkpoint format
# with NumPy, converts HWIO → OIHW kernels and BGR → RGB channels, and returns an
# ordinary `InpaintGenerator`. Set `DEEPFILL_RELEASE_CHECKPOINT` to a checkpoint
# directory (e.g. `model_logs/release_places2_256`) or to a converted `.npz` to see it
# here.

# %%
release_path = os.environ.get("DEEPFILL_RELEASE_CHECKPOINT")
release = None
if release_path and Path(release_path).exists():
    release = load_generator(release_path)
    print(f"loaded {release_path}: cnum {release.cnum}, {release.num_parameters():,} parameters")
else:
    print("SKIPPED: no released checkpoint (set DEEPFILL_RELEASE_CHECKPOINT to a release "
          "directory or a converted .npz; download links: docs/release_checkpoints.md).")


def show_model(generator, title, count=1 if QUICK else 2):
    """Input, coarse x1, refined x2, composite and attention map for held-out photos."""
    side = int(getattr(generator, "meta", {}).get("image_size", 256))
    side = min(side, 128) if QUICK else side
    corpus = demo_corpus("heldout", side, resize=True)
    hole_mask, _ = centered_bbox_mask(side, side // 2)
    fig, axes = plt.subplots(count, 5, figsize=(11, 2.3 * count), squeeze=False)
    for row in range(count):
        photo = corpus.sample(row, 0)
        out = inpaint(generator, photo, hole_mask)
        panels = [(to_display(photo * (1 - hole_mask[0])), "input"),
                  (to_display(out.coarse[0]), "coarse x₁"), (to_display(out.refined[0]), "refined x₂"),
                  (to_display(out.output[0]), "output"),
                  (attention_rgb(out.offsets, side, side)[0], "attention")]
        for a, (picture, name) in zip(axes[row], panels):
            a.imshow(picture)
            a.set_title(name, fontsize=9)
            a.axis("off")
    fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    show_jpeg(fig)


if release is not None:
    show_model(release, f"released model {Path(release_path).name}")

# %% [markdown]
# Without a real checkpoint, the mechanism can still be shown on the miniature release
# the tests use: `tests/fixtures/tf_release_tiny` was written by TensorFlow with every
# variable name of the release, at cnum = 2. The reader lists its variables (kernels in
# HWIO order, optimizer slots that are never read), and the loader builds a generator from it:

# %%
tiny = ROOT / "tests" / "fixtures" / "tf_release_tiny"
if not tiny.is_dir():
    print(f"SKIPPED: {tiny} is not part of this installation (it ships with the repository).")
else:
    reader = CheckpointReader(tiny)
    names = reader.names()
    print(f"{len(names)} variables, e.g.")
    for name in ["inpaint_net/conv1/kernel", "inpaint_net/conv13_upsample/conv13_upsample_conv/kernel",
                 "inpaint_net/conv1/kernel/Adam", "discriminator/dout_local_fc/kernel"]:
        print(f"  {name:<58} {reader.shape(name)}")
    tiny_generator = load_generator(tiny)
    kernel = reader.get(generator_release_name("conv1", "kernel"))
    ours = tiny_generator.conv1.weight.data
    print("conv1: release HWIO", kernel.shape, "-> ours OIHW", ours.shape)
    print("BGR -> RGB: our input channel 0 (R) is the release's channel 2 (B):",
          np.array_equal(ours[:, 0], kernel[:, :, 2, :].transpose(2, 0, 1)))
    out = inpaint(tiny_generator, demo_corpus("heldout", 32, resize=True).sample(0, 0),
                  centered_bbox_mask(32, 16)[0][0])
    print("the tiny model runs:", out.output.shape, "(random weights: the picture means nothing)")

# %% [markdown]
# ## 4.5 The shipped demo model
#
# The package ships a small generator (cnum = 16) trained on the bundled demo corpus
# (`inpainting/weights/demo_cnum16.npz`, see docs/training.md); `DEEPFILL_NOTEBOOK_MODEL`
# may name another model file. Coarse and refined results side by side show what the
# second stage adds:

# %%
model_path = Path(os.environ.get("DEEPFILL_NOTEBOOK_MODEL", SHIPPED_MODEL))
if model_path.exists():
    shipped = load_generator(model_path)
    print(f"{model_path.name}: cnum {shipped.cnum}, trained at {shipped.meta.get('image_size', '?')} px")
    show_model(shipped, f"model {model_path.name}")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(color_wheel_legend(65))
    ax.set_title("attention colours", fontsize=9)
    ax.axis("off")
    plt.show()
else:
    print(f"SKIPPED: the shipped model {model_path} is not there yet (it is trained separately; "
          "see docs/training.md). Set DEEPFILL_NOTEBOOK_MODEL to a model file to run this cell.")

# %% [markdown]
# Next: [05 — losses](05_losses.ipynb).
