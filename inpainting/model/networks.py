"""DeepFill v1 networks: the coarse-to-fine generator and the two WGAN-GP critics.

Exactly the released layer stack (spec §2 and §5); NCHW, RGB, images in [-1, 1],
masks with 1 = hole. Layer names are the release's, so ``conv2_downsample.weight``
here is ``inpaint_net/conv2_downsample/kernel`` there (see ``release.py``).

Every convolution pads by TensorFlow's SAME rule (``padding="same"``): a stride-2
3x3 conv on an even size pads 0 before and 1 after, not 1 and 1. There is no
normalisation and no dropout; training and inference forwards are identical.

What the released code does that the paper's text does not say: no tanh (the
outputs are clipped to [-1, 1]); 3,601,542 generator parameters, not 2.9M; the
attention branch's pmconv6 uses ReLU; SAME zero padding, not mirror padding.
"""
from __future__ import annotations

import numpy as np

import nnlite.functional as F
from nnlite import Tensor, nn
from nnlite.backend import get_array_module

from .attention import contextual_attention

__all__ = ["InpaintGenerator", "LocalCritic", "GlobalCritic", "gen_conv_table", "architecture_table",
           "generator_stages"]


def gen_conv_table(cnum=32, attention=True):
    """The generator's convolutions as (name, in_ch, out_ch, kernel, stride, dilation, activation).

    ``*_upsample`` layers are a nearest x2 resize (pixel duplication) followed by
    the conv. Used to build the model and to print the architecture table.
    ``attention=False``: the ablation without the contextual-attention branch (no
    ``pmconv*`` layers; ``allconv11`` reads the hallucination branch's 4 cnum channels).
    """
    c, with_attention = cnum, bool(attention)
    coarse = [
        ("conv1", 5, c, 5, 1, 1), ("conv2_downsample", c, 2 * c, 3, 2, 1),
        ("conv3", 2 * c, 2 * c, 3, 1, 1), ("conv4_downsample", 2 * c, 4 * c, 3, 2, 1),
        ("conv5", 4 * c, 4 * c, 3, 1, 1), ("conv6", 4 * c, 4 * c, 3, 1, 1),
        ("conv7_atrous", 4 * c, 4 * c, 3, 1, 2), ("conv8_atrous", 4 * c, 4 * c, 3, 1, 4),
        ("conv9_atrous", 4 * c, 4 * c, 3, 1, 8), ("conv10_atrous", 4 * c, 4 * c, 3, 1, 16),
        ("conv11", 4 * c, 4 * c, 3, 1, 1), ("conv12", 4 * c, 4 * c, 3, 1, 1),
        ("conv13_upsample", 4 * c, 2 * c, 3, 1, 1), ("conv14", 2 * c, 2 * c, 3, 1, 1),
        ("conv15_upsample", 2 * c, c, 3, 1, 1), ("conv16", c, c // 2, 3, 1, 1),
        ("conv17", c // 2, 3, 3, 1, 1),
    ]
    hallucination = [
        ("xconv1", 5, c, 5, 1, 1), ("xconv2_downsample", c, c, 3, 2, 1),
        ("xconv3", c, 2 * c, 3, 1, 1), ("xconv4_downsample", 2 * c, 2 * c, 3, 2, 1),
        ("xconv5", 2 * c, 4 * c, 3, 1, 1), ("xconv6", 4 * c, 4 * c, 3, 1, 1),
        ("xconv7_atrous", 4 * c, 4 * c, 3, 1, 2), ("xconv8_atrous", 4 * c, 4 * c, 3, 1, 4),
        ("xconv9_atrous", 4 * c, 4 * c, 3, 1, 8), ("xconv10_atrous", 4 * c, 4 * c, 3, 1, 16),
    ]
    attention = [
        ("pmconv1", 5, c, 5, 1, 1), ("pmconv2_downsample", c, c, 3, 2, 1),
        ("pmconv3", c, 2 * c, 3, 1, 1), ("pmconv4_downsample", 2 * c, 4 * c, 3, 2, 1),
        ("pmconv5", 4 * c, 4 * c, 3, 1, 1), ("pmconv6", 4 * c, 4 * c, 3, 1, 1),
        ("pmconv9", 4 * c, 4 * c, 3, 1, 1), ("pmconv10", 4 * c, 4 * c, 3, 1, 1),
    ]
    if not with_attention:
        attention = []
    decoder = [
        ("allconv11", (8 if with_attention else 4) * c, 4 * c, 3, 1, 1), ("allconv12", 4 * c, 4 * c, 3, 1, 1),
        ("allconv13_upsample", 4 * c, 2 * c, 3, 1, 1), ("allconv14", 2 * c, 2 * c, 3, 1, 1),
        ("allconv15_upsample", 2 * c, c, 3, 1, 1), ("allconv16", c, c // 2, 3, 1, 1),
        ("allconv17", c // 2, 3, 3, 1, 1),
    ]
    rows = []
    for name, cin, cout, k, s, d in coarse + hallucination + attention + decoder:
        if name in ("conv17", "allconv17"):
            activation = "none (clip)"
        elif name == "pmconv6":
            activation = "relu"
        else:
            activation = "elu"
        rows.append((name, cin, cout, k, s, d, activation))
    return rows


def generator_stages(cnum=32, attention=True):
    """The generator's layers by stage (spec §2), in the order ``forward`` runs them.

    ``coarse`` (conv1..conv17), ``hallucination`` (xconv1..xconv10, dilated),
    ``attention_encoder`` (pmconv1..pmconv6, before contextual attention),
    ``attention_decoder`` (pmconv9, pmconv10, after it) and ``decoder`` (allconv11..17).
    With ``attention=False`` the two attention stages are empty. Read from
    ``gen_conv_table`` by layer name, so the stages and the table cannot disagree.
    """
    prefixes = {"coarse": "conv", "hallucination": "xconv", "attention_encoder": "pmconv",
                "attention_decoder": "pmconv", "decoder": "allconv"}
    stages = {stage: [] for stage in prefixes}
    for row in gen_conv_table(cnum, attention):
        name = row[0]
        stem = name.split("_")[0]
        for stage, prefix in prefixes.items():
            if stem.startswith(prefix) and stem[len(prefix):].isdigit():
                if stage.startswith("attention_") and \
                        (int(stem[len(prefix):]) <= 6) != (stage == "attention_encoder"):
                    continue
                stages[stage].append(name)
                break
    return stages


def architecture_table(cnum=32):
    """The generator's layers as a Markdown table with parameter counts (for docs/architecture.md).

    Output sizes are for a 256x256 input; a test checks the docs against this.
    """
    lines = ["| layer | in | out | kernel | stride | dilation | activation | output (256 input) "
             "| parameters |", "|---|---:|---:|---:|---:|---:|---|---|---:|"]
    size, total = 256, 0
    for name, cin, cout, k, s, d, activation in gen_conv_table(cnum):
        if name in ("xconv1", "pmconv1"):
            size = 256
        if name.endswith("_upsample"):
            size *= 2
        size = -(-size // s)
        params = cin * cout * k * k + cout
        total += params
        kernel = f"{k}x{k}" + (" (after x2 nearest)" if name.endswith("_upsample") else "")
        lines.append(f"| {name} | {cin} | {cout} | {kernel} | {s} | {d} | {activation} | "
                     f"{size}x{size} | {params:,} |")
    lines.append(f"| **total** | | | | | | | | **{total:,}** |")
    return "\n".join(lines)


class InpaintGenerator(nn.Module):
    """The coarse-to-fine generator G (paper Fig. 2; spec §2).

    ``forward(x, mask) -> (x1, x2, offsets)``:

    * ``x``: (N, 3, H, W) incomplete image in [-1, 1], already ``image * (1 - mask)``;
      H and W multiples of 8.
    * ``mask``: (1 or N, 1, H, W), 1 = hole. A batch-1 mask is shared by the whole
      batch (the release); an (N, 1, H, W) mask gives each sample its own.
    * ``x1``: coarse result, ``x2``: refined result, both (N, 3, H, W) clipped to [-1, 1].
    * ``offsets``: (N, 2, H/8, W/8) integer attention offsets (dy, dx) from
      contextual attention, for ``flow_to_image``; None when ``attention=False``.

    ``forward(x, mask, return_attention=True)`` returns a fourth value: contextual
    attention's softmax scores as an array (N, L, L), L = (H/8)(W/8) (rows = foreground
    cells, columns = background cells, both row-major on the offsets' grid).

    ``attention=False`` builds the paper's baseline, the ablation of its Fig. 2 without
    contextual attention: the same coarse network and refinement network minus the
    attention branch (``pmconv1`` .. ``pmconv10`` and the attention layer itself). The
    hallucination branch's output (4 cnum channels at 1/4 resolution) feeds the decoder
    directly, so ``allconv11`` has 4 cnum input channels instead of 8 cnum; every other
    layer is as in the full model. It has no parameters for the removed branch, and
    ``offsets`` is None.

    ``forward(..., attention_chunk_size=R)`` (None = the release's direct evaluation)
    runs contextual attention in its memory-bounded mode for large images; the result is
    the same. ``inpaint(..., attention_memory=...)`` passes it from a byte budget; it is an
    argument of the call, never state of the generator.
    """

    def __init__(self, cnum=32, *, attention=True, rng=None, dtype=np.float32):
        super().__init__()
        if cnum < 2 or cnum % 2:
            raise ValueError(f"InpaintGenerator: cnum must be an even number >= 2, got {cnum}")
        if not isinstance(attention, (bool, np.bool_)):
            raise TypeError(f"InpaintGenerator: attention must be True or False, got "
                            f"{attention!r}")
        self.cnum = cnum
        self.attention = bool(attention)
        rng = np.random.default_rng(0) if rng is None else rng
        self._activations = {}
        for name, cin, cout, k, s, d, activation in gen_conv_table(cnum, self.attention):
            conv = nn.Conv2d(cin, cout, k, stride=s, padding="same", dilation=d, rng=rng,
                             dtype=dtype)
            setattr(self, name, conv)
            self._activations[name] = activation
        self.stages = generator_stages(cnum, self.attention)

    def _conv(self, name, x):
        """One ``gen_conv`` of the release: (optional nearest x2) + conv + activation."""
        if name.endswith("_upsample"):
            x = F.interpolate_nearest(x, scale_factor=2)
        x = getattr(self, name)(x)
        activation = self._activations[name]
        if activation == "elu":
            return F.elu(x)
        if activation == "relu":
            return F.relu(x)
        return x

    def run_stage(self, stage, x):
        """Run the convolutions of one stage of ``generator_stages`` (by name) on ``x``."""
        for name in self.stages[stage]:
            x = self._conv(name, x)
        return x

    def forward(self, x, mask, return_attention=False, knockout_attention=False, *,
                attention_chunk_size=None):
        """(x1, x2, offsets, [scores]): coarse and refined images, attention offsets.

        ``knockout_attention=True`` is a probe of a trained model, not the paper's ablation:
        the attention branch still runs (offsets and scores are returned) but its output
        features are replaced by zeros before the decoder, so x2 shows what the decoder
        makes of the hallucination branch alone. The ablation proper is a generator built
        and trained with ``attention=False``. ``attention_chunk_size``: None for the direct
        evaluation of contextual attention, or the foreground rows scored at once (its
        memory-bounded mode, same result).
        """
        if (return_attention or knockout_attention) and not self.attention:
            flag = "return_attention" if return_attention else "knockout_attention"
            raise ValueError(f"InpaintGenerator: {flag}=True needs the attention "
                             "branch, but this generator was built with attention=False")
        x, mask = _check_generator_inputs(x, mask)
        xin = x
        n, _, height, width = x.shape
        xp = get_array_module(x.data)
        ones = Tensor(xp.ones((n, 1, height, width), dtype=x.dtype))
        hole = mask if mask.shape[0] == n else F.broadcast_to(mask, ones.shape)

        # Stage 1: coarse network (spec §2, first table).
        h = F.concat([x, ones, hole], axis=1)
        h = self.run_stage("coarse", h)
        x1 = F.clip(h, -1.0, 1.0)

        # Paste the known pixels back; the gradient flows through x1 in the hole.
        x = x1 * mask + xin * (1.0 - mask)
        xnow = F.concat([x, ones, hole], axis=1)

        # Stage 2a: hallucination branch (dilated convolutions).
        x_hallu = self.run_stage("hallucination", xnow)

        if not self.attention:                 # the ablation: hallucination branch only
            x2 = F.clip(self.run_stage("decoder", x_hallu), -1.0, 1.0)
            return x1, x2, None

        # Stage 2b: attention branch with contextual attention at 1/4 resolution.
        pm = self.run_stage("attention_encoder", xnow)
        mask_small = F.interpolate_nearest(mask, size=pm.shape[2:], align_corners=True)
        extra = {"return_attention": True} if return_attention else {}
        pm, offsets, *scores = contextual_attention(
            pm, pm, mask_small, ksize=3, stride=1, rate=2,
            chunk_size=attention_chunk_size, **extra)
        pm = self.run_stage("attention_decoder", pm)
        if knockout_attention:                 # the probe: the decoder sees no attention
            pm = Tensor(xp.zeros(pm.shape, dtype=pm.dtype))

        # Decoder on both branches.
        h = F.concat([x_hallu, pm], axis=1)
        h = self.run_stage("decoder", h)
        x2 = F.clip(h, -1.0, 1.0)
        return (x1, x2, offsets, *scores)


def _check_generator_inputs(x, mask):
    from nnlite import as_tensor

    x, mask = as_tensor(x), as_tensor(mask)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"InpaintGenerator: x must be (N, 3, H, W), got {x.shape}")
    n, _, height, width = x.shape
    if height % 8 or width % 8:
        raise ValueError(f"InpaintGenerator: H and W must be multiples of 8, got {height}x{width}"
                         " (use inpainting.inpaint, which pads and crops back)")
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[2:] != (height, width) \
            or mask.shape[0] not in (1, n):
        batch = "1" if n == 1 else f"1 or {n}"
        raise ValueError(f"InpaintGenerator: mask must be ({batch}, 1, {height}, {width}) "
                         f"to match the image, got {mask.shape}")
    if mask.dtype != x.dtype:
        mask = mask.astype(x.dtype)
    return x, mask


class _Critic(nn.Module):
    """Shared body of the WGAN-GP critics (spec §5): four ``dis_conv`` (5x5, stride 2,
    SAME, LeakyReLU 0.2), flatten in (C, H, W) order, dense -> 1. No normalisation."""

    widths = ()

    def __init__(self, cnum=64, image_size=128, *, rng=None, dtype=np.float32):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"{type(self).__name__}: image_size must be a multiple of 16, "
                             f"got {image_size}")
        rng = np.random.default_rng(1) if rng is None else rng
        self.image_size = image_size
        channels = [3] + [cnum * m for m in self.widths]
        for i in range(4):
            setattr(self, f"conv{i + 1}", nn.Conv2d(channels[i], channels[i + 1], 5, stride=2,
                                                    padding="same", rng=rng, dtype=dtype))
        side = image_size // 16
        self.dense = nn.Linear(channels[-1] * side * side, 1, rng=rng, dtype=dtype)

    def forward(self, x):
        from nnlite import as_tensor

        x = as_tensor(x)
        expected = (3, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"{type(self).__name__}: input must be (N, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}), got {x.shape}")
        for i in range(4):
            x = F.leaky_relu(getattr(self, f"conv{i + 1}")(x), 0.2)
        return self.dense(F.flatten(x))


class LocalCritic(_Critic):
    """Local critic on the (N, 3, 128, 128) bbox crop: widths cnum x (1, 2, 4, 8)."""
    widths = (1, 2, 4, 8)


class GlobalCritic(_Critic):
    """Global critic on the whole (N, 3, 256, 256) image: widths cnum x (1, 2, 4, 4)."""
    widths = (1, 2, 4, 4)

    def __init__(self, cnum=64, image_size=256, *, rng=None, dtype=np.float32):
        super().__init__(cnum, image_size, rng=rng, dtype=dtype)

