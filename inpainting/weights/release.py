"""Map the authors' released DeepFill v1 TensorFlow variables to our parameters (spec §8).

The release (JiahuiYu/generative_inpainting, v1 branch) is NHWC, HWIO and was trained on BGR
images; this project is NCHW, OIHW and RGB. Conversions (each undone by an inverse below):

* kernels: HWIO (KH, KW, C_in, C_out) -> OIHW (C_out, C_in, KH, KW) = transpose(3, 2, 0, 1);
* BGR -> RGB: reverse input channels 0..2 of conv1, xconv1 and pmconv1 (their input is
  [image(3), ones, mask]) and the output channels (kernel and bias) of conv17 and allconv17;
  also input channels 0..2 of both critics' conv1 (their input is an image) — an addition to
  spec §8, which names the generator layers only;
* critic dense layers: TF kernel (h*w*c, 1) in (h, w, c) flatten order -> our (1, c*h*w) in
  NCHW (c, h, w) order, with h = w = input size / 16 (four stride-2 SAME convs) and c = the
  output channels of conv4.

Names: generator layer `<layer>` has TF variables `inpaint_net/<layer>/kernel|bias`, except the
upsample layers `inpaint_net/<layer>/<layer>_conv/kernel|bias`; ours are `<layer>.weight|bias`.
Critics: `discriminator/discriminator_{local,global}/conv1..4/kernel|bias` and
`discriminator/dout_{local,global}_fc/kernel|bias` -> `conv1..4.weight|bias`, `dense.weight|bias`.
Optimizer slots (`.../Adam`, `.../Adam_1`), `beta*_power` and `global_step` are never read.
The conversions work on arrays; `read_release_states` and `load_release_checkpoint` read the
files with inpainting/tf_checkpoint.py.
"""
from __future__ import annotations

import os

import numpy as np

from inpainting.weights.tf_checkpoint import CheckpointReader

__all__ = ["GENERATOR_LAYERS", "ReleaseMappingError", "generator_release_name",
           "generator_release_names", "critic_release_names", "release_generator_state",
           "generator_state_to_release", "release_critic_states", "critic_states_to_release",
           "read_release_states", "load_release_checkpoint"]

GENERATOR_LAYERS = (
    # coarse network (spec §2, first table)
    "conv1", "conv2_downsample", "conv3", "conv4_downsample", "conv5", "conv6",
    "conv7_atrous", "conv8_atrous", "conv9_atrous", "conv10_atrous", "conv11", "conv12",
    "conv13_upsample", "conv14", "conv15_upsample", "conv16", "conv17",
    # refinement: hallucination branch, attention branch, decoder (spec §2, second table)
    "xconv1", "xconv2_downsample", "xconv3", "xconv4_downsample", "xconv5", "xconv6",
    "xconv7_atrous", "xconv8_atrous", "xconv9_atrous", "xconv10_atrous",
    "pmconv1", "pmconv2_downsample", "pmconv3", "pmconv4_downsample", "pmconv5", "pmconv6",
    "pmconv9", "pmconv10",
    "allconv11", "allconv12", "allconv13_upsample", "allconv14", "allconv15_upsample",
    "allconv16", "allconv17",
)
BGR_INPUT_LAYERS = ("conv1", "xconv1", "pmconv1")      # input = [image(3), ones, mask]
BGR_OUTPUT_LAYERS = ("conv17", "allconv17")            # output = image(3)
CRITIC_CONVS = ("conv1", "conv2", "conv3", "conv4")
CRITIC_DOWNSAMPLINGS = 4                               # four 5x5 stride-2 SAME convs (spec §5)


class ReleaseMappingError(ValueError):
    """Release tensors missing or of a shape that does not fit the DeepFill v1 layout."""


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------
def generator_release_name(layer: str, kind: str) -> str:
    """TF name of `kind` ('kernel' or 'bias') of generator layer `layer` (spec §8)."""
    if layer.endswith("_upsample"):
        return f"inpaint_net/{layer}/{layer}_conv/{kind}"
    return f"inpaint_net/{layer}/{kind}"


def generator_release_names() -> list[str]:
    """The 84 TF variable names the generator needs (kernel and bias of each layer)."""
    return [generator_release_name(layer, kind)
            for layer in GENERATOR_LAYERS for kind in ("kernel", "bias")]


def _critic_names(which: str) -> dict[str, str]:
    """{our parameter name: TF name} of critic `which` ('local' or 'global')."""
    names = {}
    for conv in CRITIC_CONVS:
        names[f"{conv}.weight"] = f"discriminator/discriminator_{which}/{conv}/kernel"
        names[f"{conv}.bias"] = f"discriminator/discriminator_{which}/{conv}/bias"
    names["dense.weight"] = f"discriminator/dout_{which}_fc/kernel"
    names["dense.bias"] = f"discriminator/dout_{which}_fc/bias"
    return names


def critic_release_names() -> list[str]:
    """The 20 TF variable names of the two critics."""
    return [n for which in ("local", "global") for n in _critic_names(which).values()]


def _require(tensors: dict, names, what: str) -> None:
    missing = [name for name in names if name not in tensors]
    if missing:
        raise ReleaseMappingError(f"{what}: {len(missing)} release variable(s) missing: "
                                  f"{', '.join(missing)}")


# ---------------------------------------------------------------------------------------------
# Layout conversions
# ---------------------------------------------------------------------------------------------
def _hwio_to_oihw(kernel: np.ndarray, name: str) -> np.ndarray:
    """(KH, KW, C_in, C_out) -> (C_out, C_in, KH, KW), spec §8."""
    if kernel.ndim != 4:
        raise ReleaseMappingError(f"{name}: expected a 4-d HWIO kernel, got shape "
                                  f"{kernel.shape}")
    return kernel.transpose(3, 2, 0, 1)


def _reverse_inputs(weight: np.ndarray, name: str) -> np.ndarray:
    """Reverse input channels 0..2 (BGR <-> RGB) of an OIHW weight; its own inverse."""
    if weight.shape[1] < 3:
        raise ReleaseMappingError(f"{name}: expected >= 3 input channels (an image first), "
                                  f"got weight shape {weight.shape}")
    weight = weight.copy()
    weight[:, :3] = weight[:, 2::-1]
    return weight


def _reverse_outputs(weight: np.ndarray, bias: np.ndarray, name: str):
    """Reverse the 3 output channels (BGR <-> RGB) of an OIHW weight and its bias."""
    if weight.shape[0] != 3 or bias.shape != (3,):
        raise ReleaseMappingError(f"{name}: expected 3 output channels (an image), got weight "
                                  f"{weight.shape} and bias {bias.shape}")
    return weight[::-1], bias[::-1]


def _check_bias(bias: np.ndarray, out_channels: int, name: str) -> None:
    if bias.shape != (out_channels,):
        raise ReleaseMappingError(f"{name}: expected bias shape ({out_channels},), got "
                                  f"{bias.shape}")


def _check_generator_chain(state: dict) -> None:
    """Check that each layer's input channels equal what feeds it (spec §2 wiring).

    Catches checkpoints of another architecture with the same variable names, notably
    DeepFill v2 (gated convolutions: a layer's output is split in two, so the next layer's
    input is half of it).
    """
    def channels(layer):
        o, i = state[f"{layer}.weight"].shape[:2]
        return i, o

    feeds = {"conv1": 5, "xconv1": 5, "pmconv1": 5,
             "allconv11": channels("xconv10_atrous")[1] + channels("pmconv10")[1]}
    branches = (GENERATOR_LAYERS[:17], GENERATOR_LAYERS[17:27], GENERATOR_LAYERS[27:35],
                GENERATOR_LAYERS[35:])
    for branch in branches:
        for previous, layer in zip(branch, branch[1:]):
            feeds[layer] = channels(previous)[1]
    wrong = [f"{layer} has {channels(layer)[0]} input channels, fed {feeds[layer]}"
             for layer in GENERATOR_LAYERS if channels(layer)[0] != feeds[layer]]
    if wrong:
        raise ReleaseMappingError(
            "not the DeepFill v1 generator (a DeepFill v2 / gated-convolution checkpoint has "
            "the same names but halves each layer's output): " + "; ".join(wrong))


def release_generator_state(tensors: dict) -> dict[str, np.ndarray]:
    """Release tensors {TF name: HWIO / bias array} -> generator state {'<layer>.weight': OIHW}.

    Only the generator names are read (others, e.g. optimizer slots, are ignored). Weights
    are returned OIHW in RGB order, as new C-contiguous arrays.
    """
    _require(tensors, generator_release_names(), "generator")
    state = {}
    for layer in GENERATOR_LAYERS:
        name = generator_release_name(layer, "kernel")
        weight = _hwio_to_oihw(np.asarray(tensors[name]), name)
        bias = np.asarray(tensors[generator_release_name(layer, "bias")])
        _check_bias(bias, weight.shape[0], generator_release_name(layer, "bias"))
        if layer in BGR_INPUT_LAYERS:
            weight = _reverse_inputs(weight, name)
        if layer in BGR_OUTPUT_LAYERS:
            weight, bias = _reverse_outputs(weight, bias, name)
        state[f"{layer}.weight"] = np.ascontiguousarray(weight)
        state[f"{layer}.bias"] = np.ascontiguousarray(bias)
    _check_generator_chain(state)
    return state


def generator_state_to_release(state: dict) -> dict[str, np.ndarray]:
    """Inverse of `release_generator_state`: OIHW/RGB state -> {TF name: HWIO/BGR array}."""
    _require(state, [f"{layer}.{kind}" for layer in GENERATOR_LAYERS
                     for kind in ("weight", "bias")], "generator state")
    tensors = {}
    for layer in GENERATOR_LAYERS:
        weight, bias = np.asarray(state[f"{layer}.weight"]), np.asarray(state[f"{layer}.bias"])
        if layer in BGR_INPUT_LAYERS:
            weight = _reverse_inputs(weight, f"{layer}.weight")
        if layer in BGR_OUTPUT_LAYERS:
            weight, bias = _reverse_outputs(weight, bias, f"{layer}.weight")
        tensors[generator_release_name(layer, "kernel")] = np.ascontiguousarray(
            weight.transpose(2, 3, 1, 0))
        tensors[generator_release_name(layer, "bias")] = np.ascontiguousarray(bias)
    return tensors


def _critic_feature_size(input_size: int) -> int:
    """Spatial size after the four stride-2 SAME convs: ceil(n / 2) four times (spec §1)."""
    if not isinstance(input_size, (int, np.integer)) or input_size < 1:
        raise ReleaseMappingError(f"critic input size must be a positive int, got "
                                  f"{input_size!r}")
    size = int(input_size)
    for _ in range(CRITIC_DOWNSAMPLINGS):
        size = -(-size // 2)
    return size


def _critic_state(tensors: dict, which: str, input_size: int) -> dict[str, np.ndarray]:
    names = _critic_names(which)
    _require(tensors, names.values(), f"{which} critic")
    state = {}
    for conv in CRITIC_CONVS:
        weight = _hwio_to_oihw(np.asarray(tensors[names[f"{conv}.weight"]]),
                               names[f"{conv}.weight"])
        bias = np.asarray(tensors[names[f"{conv}.bias"]])
        _check_bias(bias, weight.shape[0], names[f"{conv}.bias"])
        if conv == "conv1":
            weight = _reverse_inputs(weight, names["conv1.weight"])
        state[f"{conv}.weight"] = np.ascontiguousarray(weight)
        state[f"{conv}.bias"] = np.ascontiguousarray(bias)
    h = w = _critic_feature_size(input_size)
    c = state["conv4.weight"].shape[0]
    kernel = np.asarray(tensors[names["dense.weight"]])
    if kernel.shape != (h * w * c, 1):
        raise ReleaseMappingError(
            f"{names['dense.weight']}: shape {kernel.shape}, but a {which} critic input of "
            f"{input_size}x{input_size} gives {h}x{w}x{c} features, i.e. ({h * w * c}, 1); "
            f"pass the critic input size the checkpoint was trained with")
    bias = np.asarray(tensors[names["dense.bias"]])
    _check_bias(bias, 1, names["dense.bias"])
    # (h*w*c, 1) in (h, w, c) order -> (1, c*h*w) in NCHW (c, h, w) order.
    state["dense.weight"] = np.ascontiguousarray(
        kernel[:, 0].reshape(h, w, c).transpose(2, 0, 1).reshape(1, c * h * w))
    state["dense.bias"] = np.ascontiguousarray(bias)
    return state


def release_critic_states(tensors: dict, local_size: int = 128, global_size: int = 256):
    """Release tensors -> (local critic state, global critic state), OIHW and RGB.

    `local_size` / `global_size` are the critics' input sizes (the 128x128 bbox crop and the
    256x256 image in the release); they fix h, w of the dense layer's (h, w, c) reordering.
    """
    return (_critic_state(tensors, "local", local_size),
            _critic_state(tensors, "global", global_size))


def critic_states_to_release(local_state: dict, global_state: dict,
                             local_size: int = 128, global_size: int = 256) -> dict:
    """Inverse of `release_critic_states`: our two critic states -> {TF name: array}."""
    tensors = {}
    for which, state, size in (("local", local_state, local_size),
                               ("global", global_state, global_size)):
        names = _critic_names(which)
        _require(state, names, f"{which} critic state")
        for ours, theirs in names.items():
            value = np.asarray(state[ours])
            if ours == "conv1.weight":
                value = _reverse_inputs(value, ours)
            if ours == "dense.weight":
                h = w = _critic_feature_size(size)
                c = np.asarray(state["conv4.weight"]).shape[0]
                value = value.reshape(c, h, w).transpose(1, 2, 0).reshape(h * w * c, 1)
            elif value.ndim == 4:
                value = value.transpose(2, 3, 1, 0)
            tensors[theirs] = np.ascontiguousarray(value)
    return tensors


# ---------------------------------------------------------------------------------------------
# From checkpoint files
# ---------------------------------------------------------------------------------------------
def read_release_states(path: str | os.PathLike, *, critics: bool = False,
                        local_size: int = 128, global_size: int = 256,
                        dtype=np.float32) -> dict[str, dict[str, np.ndarray]]:
    """Read a released checkpoint into converted states, without building any model.

    Returns {'generator': state} and, if `critics`, also 'local_critic' and 'global_critic'.
    Only the needed variables are read (and crc-checked); missing ones are listed in a
    ReleaseMappingError naming the checkpoint.
    """
    reader = CheckpointReader(path)
    names = generator_release_names() + (critic_release_names() if critics else [])
    missing = [name for name in names if name not in reader]
    if missing:
        raise ReleaseMappingError(f"{reader.index_path}: not a DeepFill v1 release checkpoint "
                                  f"— {len(missing)} variable(s) missing: {', '.join(missing)}")
    tensors = {name: reader.get(name).astype(dtype, copy=False) for name in names}
    states = {"generator": release_generator_state(tensors)}
    if critics:
        states["local_critic"], states["global_critic"] = release_critic_states(
            tensors, local_size, global_size)
    return states


def load_release_checkpoint(path: str | os.PathLike, *, critics: bool = False,
                            dtype=np.float32, local_size: int = 128, global_size: int = 256):
    """Build this project's models with the released weights loaded (strict).

    Returns the `InpaintGenerator` (cnum = output channels of the release's conv1), or, with
    `critics=True`, (generator, LocalCritic, GlobalCritic) with cnum = output channels of each
    critic's conv1 and image sizes `local_size`, `global_size`. Parameters are `dtype`.
    The models are imported here, not at module import.
    """
    from inpainting.model.networks import GlobalCritic, InpaintGenerator, LocalCritic

    states = read_release_states(path, critics=critics, local_size=local_size,
                                 global_size=global_size, dtype=dtype)
    generator = InpaintGenerator(cnum=states["generator"]["conv1.weight"].shape[0], dtype=dtype)
    generator.load_state_dict(states["generator"], strict=True)
    if not critics:
        return generator
    local = LocalCritic(cnum=states["local_critic"]["conv1.weight"].shape[0],
                        image_size=local_size, dtype=dtype)
    local.load_state_dict(states["local_critic"], strict=True)
    global_ = GlobalCritic(cnum=states["global_critic"]["conv1.weight"].shape[0],
                           image_size=global_size, dtype=dtype)
    global_.load_state_dict(states["global_critic"], strict=True)
    return generator, local, global_
