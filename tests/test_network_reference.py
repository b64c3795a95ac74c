"""The generator and the critics against slow references written from the spec.

The references below never call ``inpainting.model.networks`` code: the layer order, kernels,
strides, dilations and output widths are typed from the tables of spec §2 and §5, every
convolution is the loop ``conv2d_reference`` with TensorFlow SAME pads worked out here by
the formula of spec §1, ELU / ReLU / LeakyReLU are NumPy one-liners, nearest resizes are
loops over the spec's align-corners index rule, and contextual attention is the loop
reference ``inpainting.model.reference``. Only the weights are taken from the modules (by
their release layer names). Agreement to ~1e-10 in float64 pins down what shape tests
cannot: clip (not tanh), the [image, ones, mask] channel order, the paste-back, the branch
concat order, the ReLU of pmconv6, resize-then-conv, the 1/4-resolution mask resize rule,
the critics' (1, 2) SAME pads and their (h, w, c) flatten order of the release.
"""
import numpy as np
import pytest

from inpainting.model.networks import GlobalCritic, InpaintGenerator, LocalCritic
from inpainting.model.reference import contextual_attention_reference, nearest_source_index
from inpainting.weights.release import critic_states_to_release
from nnlite import Tensor
from nnlite.functional.conv_reference import conv2d_reference

CNUM, SIZE, RTOL, ATOL = 2, 32, 1e-10, 1e-12


# ------------------------------------------------------------------ building blocks (spec §1)
def same_pads(size, kernel, stride, dilation=1):
    """TF SAME: out = ceil(n/s), total = max((out-1)s + (k-1)d + 1 - n, 0), before = total//2."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv_same(x, state, name, kernel, stride=1, dilation=1):
    weight, bias = state[f"{name}.weight"], state[f"{name}.bias"]
    assert weight.shape[2:] == (kernel, kernel), name
    pads = same_pads(x.shape[2], kernel, stride, dilation) + same_pads(x.shape[3], kernel,
                                                                      stride, dilation)
    return conv2d_reference(x, weight, bias, stride, pads, dilation)


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def nearest_resize(x, out_h, out_w):
    """Align-corners nearest resize of spec §1, one output pixel at a time."""
    out = np.zeros(x.shape[:2] + (out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = x[:, :, nearest_source_index(i, x.shape[2], out_h),
                                nearest_source_index(j, x.shape[3], out_w)]
    return out


# ------------------------------------------------------------------ generator (spec §2)
def spec_layers(c):
    """The spec §2 tables typed by hand: {stage: [(name, kernel, stride, dilation, out_ch)]}."""
    return {
        "coarse": [("conv1", 5, 1, 1, c), ("conv2_downsample", 3, 2, 1, 2 * c),
                   ("conv3", 3, 1, 1, 2 * c), ("conv4_downsample", 3, 2, 1, 4 * c),
                   ("conv5", 3, 1, 1, 4 * c), ("conv6", 3, 1, 1, 4 * c)]
                  + [(f"conv{7 + i}_atrous", 3, 1, 2 ** (i + 1), 4 * c) for i in range(4)]
                  + [("conv11", 3, 1, 1, 4 * c), ("conv12", 3, 1, 1, 4 * c),
                     ("conv13_upsample", 3, 1, 1, 2 * c), ("conv14", 3, 1, 1, 2 * c),
                     ("conv15_upsample", 3, 1, 1, c), ("conv16", 3, 1, 1, c // 2),
                     ("conv17", 3, 1, 1, 3)],
        "hallucination": [("xconv1", 5, 1, 1, c), ("xconv2_downsample", 3, 2, 1, c),
                          ("xconv3", 3, 1, 1, 2 * c), ("xconv4_downsample", 3, 2, 1, 2 * c),
                          ("xconv5", 3, 1, 1, 4 * c), ("xconv6", 3, 1, 1, 4 * c)]
                         + [(f"xconv{7 + i}_atrous", 3, 1, 2 ** (i + 1), 4 * c)
                            for i in range(4)],
        "attention_in": [("pmconv1", 5, 1, 1, c), ("pmconv2_downsample", 3, 2, 1, c),
                         ("pmconv3", 3, 1, 1, 2 * c), ("pmconv4_downsample", 3, 2, 1, 4 * c),
                         ("pmconv5", 3, 1, 1, 4 * c), ("pmconv6", 3, 1, 1, 4 * c)],
        "attention_out": [("pmconv9", 3, 1, 1, 4 * c), ("pmconv10", 3, 1, 1, 4 * c)],
        "decoder": [("allconv11", 3, 1, 1, 4 * c), ("allconv12", 3, 1, 1, 4 * c),
                    ("allconv13_upsample", 3, 1, 1, 2 * c), ("allconv14", 3, 1, 1, 2 * c),
                    ("allconv15_upsample", 3, 1, 1, c), ("allconv16", 3, 1, 1, c // 2),
                    ("allconv17", 3, 1, 1, 3)],
    }


def run_stage(layers, x, state):
    for name, kernel, stride, dilation, out_ch in layers:
        if name.endswith("_upsample"):                       # nearest x2, then the conv
            x = nearest_resize(x, 2 * x.shape[2], 2 * x.shape[3])
        x = conv_same(x, state, name, kernel, stride, dilation)
        assert x.shape[1] == out_ch, name
        if name == "pmconv6":
            x = np.maximum(x, 0.0)                           # the one ReLU of the release
        elif name not in ("conv17", "allconv17"):
            x = elu(x)
    return x


def reference_generator(state, xin, mask, c):
    """Spec §2 step by step; returns x1, x2, offsets and the refinement input xnow."""
    layers = spec_layers(c)
    n, _, height, width = xin.shape
    ones = np.ones((n, 1, height, width))
    x1 = np.clip(run_stage(layers["coarse"], np.concatenate([xin, ones, ones * mask], 1),
                           state), -1.0, 1.0)
    xnow = np.concatenate([x1 * mask + xin * (1 - mask), ones, ones * mask], axis=1)
    x_branch = run_stage(layers["hallucination"], xnow, state)
    pm = run_stage(layers["attention_in"], xnow, state)
    mask_quarter = nearest_resize(mask, height // 4, width // 4)
    pm, offsets = contextual_attention_reference(pm, pm, mask_quarter, rate=2)
    pm = run_stage(layers["attention_out"], pm, state)
    x2 = np.clip(run_stage(layers["decoder"], np.concatenate([x_branch, pm], 1), state),
                 -1.0, 1.0)
    return x1, x2, offsets, xnow


def make_generator(seed=0):
    """A float64 cnum=2 generator with random biases and a large conv17 so that clip bites."""
    generator = InpaintGenerator(CNUM, rng=np.random.default_rng(seed), dtype=np.float64)
    rng = np.random.default_rng(seed + 100)
    state = generator.state_dict()
    for name in state:
        if name.endswith(".bias"):
            state[name] = 0.2 * rng.standard_normal(state[name].shape)
    state["conv17.weight"] *= 4.0
    state["allconv17.weight"] *= 4.0
    generator.load_state_dict(state)
    return generator, generator.state_dict()


def make_inputs(per_sample):
    """Batch 2, 32x32 image in [-1, 1] and box holes. Rows/cols 9..19 are seen at the attention's
    4x4 grid by the spec's rule (32->8 picks 0,4,9,13,18,...; 8->4 picks 0,2,5,7) but would be
    missed by a floor rule (0,4,8,12,16,...), so the 1/4 mask resize is observable."""
    image = np.random.default_rng(7).uniform(-1, 1, (2, 3, SIZE, SIZE))
    mask = np.zeros((2 if per_sample else 1, 1, SIZE, SIZE))
    mask[0, :, 9:20, 9:20] = 1.0
    if per_sample:
        mask[1, :, 20:28, 2:14] = 1.0
    return image, mask


@pytest.fixture(scope="module", params=["shared_mask", "per_sample_masks"])
def generator_case(request):
    generator, state = make_generator()
    image, mask = make_inputs(request.param == "per_sample_masks")
    xin = image * (1 - mask)
    reference = reference_generator(state, xin, mask, CNUM)
    return generator, image, xin, mask, reference


def test_spec_same_padding_examples():
    """Spec §1: SAME is symmetric (k-1)d/2 at stride 1, (0, 1) for k=3 s=2 and (1, 2) for
    k=5 s=2 on even sizes; the align-corners rule maps 32 -> 8 to rows 0,4,9,13,18,22,27,31."""
    assert same_pads(32, 3, 1, 16) == (16, 16) and same_pads(32, 5, 1) == (2, 2)
    assert same_pads(32, 3, 2) == (0, 1) and same_pads(32, 5, 2) == (1, 2)
    assert [nearest_source_index(i, 32, 8) for i in range(8)] == [0, 4, 9, 13, 18, 22, 27, 31]


def test_generator_matches_the_spec_reference(generator_case):
    """Spec §2 (and §1, §3): x1, x2 and the attention offsets equal the loop reference."""
    generator, _, xin, mask, (x1_ref, x2_ref, offsets_ref, _) = generator_case
    x1, x2, offsets = generator(Tensor(xin), Tensor(mask))
    # The weights make clip active, so tanh or a missing clip cannot hide.
    assert 0 < np.mean(np.abs(x1_ref) == 1) < 0.9 and 0 < np.mean(np.abs(x2_ref) == 1) < 0.9
    np.testing.assert_allclose(x1.data, x1_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(x2.data, x2_ref, rtol=RTOL, atol=ATOL)
    assert offsets.shape == offsets_ref.shape == (2, 2, SIZE // 8, SIZE // 8)
    np.testing.assert_array_equal(np.asarray(offsets), offsets_ref)
    assert np.any(offsets_ref != 0)                           # attention actually moved


def test_refinement_input_is_the_pasted_back_image(generator_case):
    """Spec §2 paste-back: both refinement branches see [x1*mask + xin*(1-mask), ones, mask],
    i.e. the original pixels outside the hole and the coarse result inside it."""
    generator, image, xin, mask, (x1_ref, _, _, xnow_ref) = generator_case
    seen = {}

    class Recording(InpaintGenerator):   # what each stage's first convolution is given
        def run_stage(self, stage, x):
            seen[self.stages[stage][0]] = x.data.copy()
            return super().run_stage(stage, x)

    recording = Recording(CNUM, dtype=np.float64)
    recording.load_state_dict(generator.state_dict())
    recording(Tensor(xin), Tensor(mask))
    assert {"xconv1", "pmconv1"} <= set(seen)
    hole = np.broadcast_to(mask, (2, 3, SIZE, SIZE)) == 1
    for name in ("xconv1", "pmconv1"):
        pasted = seen[name][:, :3]
        np.testing.assert_array_equal(pasted[~hole], image[~hole])
        np.testing.assert_allclose(pasted[hole], x1_ref[hole], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(seen[name], xnow_ref, rtol=RTOL, atol=ATOL)


def test_refinement_gradient_flows_into_the_coarse_result():
    """Spec §2: 'gradient flows through' the paste-back, so d x2 / d x1 in the hole is not
    zero: the autograd gradient of <x2, r> w.r.t. conv17's bias (which reaches x2 only
    through x1 in the hole) is non-zero and matches central finite differences."""
    generator, _ = make_generator()
    image, mask = make_inputs(per_sample=False)
    xin = image * (1 - mask)
    weights = np.random.default_rng(3).standard_normal((2, 3, SIZE, SIZE))
    _, x2, _ = generator(Tensor(xin), Tensor(mask))
    (x2 * Tensor(weights)).sum().backward()
    grad = generator.conv17.bias.grad
    grad = np.zeros(3) if grad is None else np.asarray(grad.data)
    bias, eps, numeric = generator.conv17.bias.data.copy(), 1e-6, np.zeros(3)
    for k in range(3):
        values = []
        for sign in (1, -1):
            generator.conv17.bias.data = bias.copy()
            generator.conv17.bias.data[k] += sign * eps
            values.append(np.sum(generator(Tensor(xin), Tensor(mask))[1].data * weights))
        numeric[k] = (values[0] - values[1]) / (2 * eps)
    generator.conv17.bias.data = bias
    assert np.abs(numeric).max() > 1e-2          # (a channel clipped in the whole hole gives 0)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


# ------------------------------------------------------------------ critics (spec §5, §8)
def reference_critic(tensors, which, image_rgb, widths, cnum):
    """The release's critic in its own layout: BGR input, HWIO kernels, 5x5 stride-2 SAME
    convs + LeakyReLU(0.2), flatten in (h, w, c) order, dense kernel (h*w*c, 1)."""
    prefix = f"discriminator/discriminator_{which}"
    x = image_rgb[:, ::-1]                                   # the release runs on BGR
    for i, width in enumerate(widths):
        kernel = tensors[f"{prefix}/conv{i + 1}/kernel"]
        assert kernel.shape == (5, 5, x.shape[1], width * cnum)
        pads = same_pads(x.shape[2], 5, 2) + same_pads(x.shape[3], 5, 2)
        assert pads == (1, 2, 1, 2)                          # every size here is even
        x = conv2d_reference(x, kernel.transpose(3, 2, 0, 1),
                             tensors[f"{prefix}/conv{i + 1}/bias"], 2, pads)
        x = np.where(x > 0, x, 0.2 * x)
    flat = x.transpose(0, 2, 3, 1).reshape(len(x), -1)       # NHWC flatten: (h, w, c)
    return flat @ tensors[f"discriminator/dout_{which}_fc/kernel"] \
        + tensors[f"discriminator/dout_{which}_fc/bias"]


def test_critics_match_the_release_layout_reference():
    """Spec §5: four 5x5 stride-2 SAME convs (pads (1, 2) on even sizes), LeakyReLU 0.2,
    (h, w, c) flatten, dense -> 1; widths cnum x (1, 2, 4, 8) local, (1, 2, 4, 4) global.
    Our critics, exported with the release mapping of spec §8, must compute that function."""
    rng = np.random.default_rng(5)
    critics = {"local": LocalCritic(CNUM, SIZE, rng=rng, dtype=np.float64),
               "global": GlobalCritic(CNUM, SIZE, rng=rng, dtype=np.float64)}
    for critic in critics.values():                          # non-zero biases everywhere
        state = critic.state_dict()
        for name in state:
            if name.endswith(".bias"):
                state[name] = 0.1 * rng.standard_normal(state[name].shape)
        critic.load_state_dict(state)
    tensors = critic_states_to_release(critics["local"].state_dict(),
                                       critics["global"].state_dict(), SIZE, SIZE)
    image = rng.uniform(-1, 1, (2, 3, SIZE, SIZE))
    for which, widths in (("local", (1, 2, 4, 8)), ("global", (1, 2, 4, 4))):
        expected = reference_critic(tensors, which, image, widths, CNUM)
        got = critics[which](Tensor(image)).data
        assert got.shape == expected.shape == (2, 1)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
