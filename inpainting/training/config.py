"""Training configuration: every constant of the release's recipe in one place (spec §6).

``TrainConfig()`` reproduces the release (256x256 images, 128x128 bbox, batch
16, Adam(1e-4, 0.5, 0.9), 5 critic updates per generator update, loss weights
0.001 / 1.2 / 1.2, gradient-penalty weight 10). The box size and the hole's jitter
follow the image size unless given (``derived_sizes``: box = image / 2, max_delta =
box / 8). A TOML file can override any field, and the command line can override the file:

    # my.toml
    data = "/data/places2/train.flist"
    batch_size = 8
    [losses]
    gan_loss_alpha = 0.001
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..model.losses import LossWeights

__all__ = ["TrainConfig", "load_config", "derived_sizes"]


@dataclass
class LossConfig:
    coarse_l1_alpha: float = LossWeights.coarse_l1_alpha
    l1_loss_alpha: float = LossWeights.l1_loss_alpha
    ae_loss_alpha: float = LossWeights.ae_loss_alpha
    gan_loss_alpha: float = LossWeights.gan_loss_alpha
    wgan_gp_lambda: float = LossWeights.wgan_gp_lambda
    gamma: float = LossWeights.gamma


@dataclass
class TrainConfig:
    """Everything a training run depends on. Defaults = the released recipe."""

    # data
    data: str = "demo"              # "demo" (bundled corpus), a folder, or an flist file
    data_manifest_sha256: str = ""  # not in the release: when set, the sha256 that the corpus
                                    # manifest.json beside ``data`` must have (a run refuses
                                    # other data; scripts/build_corpus.py writes the manifest)
    image_size: int = 256
    resize: bool = False            # resize instead of random crop
    random_flip: bool = False       # the release does not flip
    min_crop_scale: float = 0.0     # not in the release (0 = off): crop a random square of
                                    # f * the shorter side, f uniform in [min_crop_scale, 1],
                                    # resized to image_size (multi-scale training)
    periodic_fraction: float = 0.0  # not in the release (0 = off): this share of the training
                                    # crops is made periodic, a tile of the crop repeated
                                    # (inpainting/periodic.py): copying is then the answer
    batch_size: int = 16
    # masks (spec §6)
    mask: str = "bbox"              # "bbox" (release) or "free_form"
    # Derived unless given (None): bbox_size = image_size / 2 (a multiple of 16, at least 16)
    # and max_delta = bbox_size / 8, the release's 128 and 16 at 256x256 (``derived_sizes``).
    bbox_size: int | None = None    # local critic input size = bbox size
    max_delta: int | None = None    # the hole is the bbox shrunk by 0..max_delta per side
    per_sample_mask: bool = False   # the release uses one mask per batch
    # model
    cnum: int = 32                  # generator width
    attention: bool = True          # False: the ablation without contextual attention
                                    # (InpaintGenerator(attention=False), not in the release)
    critic_cnum: int = 64           # critic width
    init_weights: str = ""          # start the generator from this model file (fine-tuning:
                                    # .npz, training checkpoint or released TF checkpoint);
                                    # "" = random initialisation (release)
    # optimiser (both networks)
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    adam_eps: float = 1e-8
    critic_steps: int = 5           # critic updates per generator update
    # Not in the release: the first ``warmup_iterations`` generator updates use only the
    # reconstruction terms (1.2 * l1 + 1.2 * ae) and no critic, about 5x cheaper each, so a
    # CPU-sized run learns colour and structure before the adversarial phase. 0 = release.
    warmup_iterations: int = 0
    losses: LossConfig = field(default_factory=LossConfig)
    # run
    iterations: int = 150_000       # generator updates (the release trained ~150k)
    seed: int = 0
    device: str = "cpu"
    out_dir: str = "runs/deepfill"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 10
    sample_every: int = 500

    def __post_init__(self):
        self._derived = set()          # fields filled from the image size (not given)
        if self.bbox_size is None or self.max_delta is None:
            if not (isinstance(self.image_size, numbers.Integral) and
                    (self.bbox_size is None or isinstance(self.bbox_size, numbers.Integral))):
                return                 # a wrong type: _check_types names it
            bbox, delta = derived_sizes(self.image_size, self.bbox_size)
            if self.bbox_size is None:
                self.bbox_size = bbox
                self._derived.add("bbox_size")
            if self.max_delta is None:
                self.max_delta = delta
                self._derived.add("max_delta")

    def validate(self):
        """Raise ValueError naming the field when a value cannot work (type, then range)."""
        if isinstance(self.losses, dict):
            self.losses = LossConfig(**_known_losses(self.losses))
        elif not isinstance(self.losses, LossConfig):
            raise ValueError(f"losses must be a table of loss weights ([losses] in TOML, a dict "
                             f"or a LossConfig), got {_shown(self.losses)}")
        _check_types(self, "")
        _check_types(self.losses, "losses.")
        _check_ranges(self)
        if self.image_size < 16:
            raise ValueError(f"image_size must be a multiple of 16 and >= 16, got {self.image_size}")
        if self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 (critics), got {self.image_size}")
        if self.bbox_size % 16 or not 16 <= self.bbox_size <= self.image_size:
            raise ValueError(f"bbox_size must be a multiple of 16 in [16, image_size], "
                             f"got {self.bbox_size}")
        if 2 * self.max_delta >= self.bbox_size:
            raise ValueError(f"max_delta {self.max_delta} would shrink the {self.bbox_size} "
                             "bbox to nothing")
        if self.mask not in ("bbox", "free_form"):
            raise ValueError(f"mask must be 'bbox' or 'free_form', got {self.mask!r}")
        for name in ("batch_size", "critic_steps", "iterations", "checkpoint_every",
                     "keep_checkpoints", "log_every", "sample_every", "cnum", "critic_cnum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_iterations <= self.iterations:
            raise ValueError(f"warmup_iterations must be in [0, iterations={self.iterations}], "
                             f"got {self.warmup_iterations}")
        if not (self.min_crop_scale == 0 or 0 < self.min_crop_scale <= 1):
            raise ValueError(f"min_crop_scale must be 0 (off) or in (0, 1], "
                             f"got {self.min_crop_scale}")
        if not 0 <= self.periodic_fraction <= 1:
            raise ValueError(f"periodic_fraction must be in [0, 1], got {self.periodic_fraction}")
        if self.resize and self.min_crop_scale:
            raise ValueError("resize = true and min_crop_scale > 0 both choose the crop's scale: "
                             "set one of them")
        if self.cnum % 2:
            raise ValueError(f"cnum must be even, got {self.cnum}")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """A configuration from a dict (TOML, JSON): unknown keys and wrong types are errors.

        Only the types are checked here (a TOML file may be completed by command-line flags);
        ``validate`` checks the ranges.
        """
        if not isinstance(values, dict):
            raise ValueError(f"a training configuration must be a table of settings, "
                             f"got {_shown(values)}")
        values = dict(values)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown configuration keys: {sorted(unknown)}")
        losses = values.pop("losses", {})
        if isinstance(losses, LossConfig):
            losses = dataclasses.asdict(losses)
        config = cls(**values)
        config.losses = LossConfig(**_known_losses(losses))
        _check_types(config, "")
        _check_types(config.losses, "losses.")
        return config

    def replace(self, **overrides):
        """A copy with fields overridden (``losses.<name>`` keys reach the loss weights).

        ``bbox_size`` and ``max_delta``, when derived from the image size rather than given,
        are derived again from the copy's sizes."""
        values = self.to_dict()
        for name in getattr(self, "_derived", ()):     # derived sizes follow the new image size
            if overrides.get(name) is None:
                del values[name]
        for key, value in overrides.items():
            if value is None:
                continue
            if key.startswith("losses."):
                values["losses"][key.split(".", 1)[1]] = value
            else:
                values[key] = value
        return type(self).from_dict(values)


def load_config(path=None, **overrides) -> TrainConfig:
    """Defaults, then the TOML file at ``path`` (if any), then ``overrides``."""
    config = TrainConfig()
    if path is not None:
        import tomllib

        path = Path(path)
        if path.is_dir():
            raise ValueError(f"configuration file {path} is a folder; --config takes a TOML file")
        if not path.is_file():
            raise FileNotFoundError(f"configuration file {path} does not exist")
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path} is not valid TOML: {error}") from None
        losses = values.get("losses", {})
        if not isinstance(losses, dict):
            raise ValueError(f"{path}: losses must be a table ([losses] followed by weights "
                             f"such as gan_loss_alpha = 0.001), got {_shown(losses)}")
        try:
            config = TrainConfig.from_dict({**values, "losses": losses})
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    return config.replace(**overrides).validate()


def derived_sizes(image_size, bbox_size=None):
    """The defaults that follow the image size: ``(bbox_size, max_delta)``.

    bbox_size = image_size / 2 rounded down to a multiple of 16 (the local critic's input),
    at least 16; max_delta = bbox_size / 8. At the release's 256: (128, 16); at 128: (64, 8);
    at 64: (32, 4). A given ``bbox_size`` is kept and only ``max_delta`` follows it.
    """
    if bbox_size is None:
        bbox_size = max(16, image_size // 2 // 16 * 16)
    return bbox_size, bbox_size // 8


# ------------------------------------------------------------------ checks

_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_PATH_FIELDS = ("data", "init_weights", "out_dir")   # these also take a pathlib.Path
_LOSS_WEIGHTS = ("coarse_l1_alpha", "l1_loss_alpha", "ae_loss_alpha", "gan_loss_alpha",
                 "wgan_gp_lambda")


def _shown(value):
    """``'four' (str)``: a value and its type, for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _known_losses(losses):
    if not isinstance(losses, dict):
        raise ValueError(f"losses must be a table of loss weights ([losses] in TOML, a dict or "
                         f"a LossConfig), got {_shown(losses)}")
    unknown = set(losses) - {f.name for f in dataclasses.fields(LossConfig)}
    if unknown:
        raise ValueError(f"unknown [losses] keys: {sorted(unknown)}")
    return losses


def _check_types(obj, prefix):
    """Each field of the dataclass ``obj`` has its annotated type (ValueError names it).

    int: an int, not a bool or a float (``32.0`` is refused); float: an int or a float,
    finite; bool: only ``True`` / ``False`` (the string ``"false"`` is refused); str: a
    string. NumPy scalars are accepted and stored as Python numbers.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        kind, value, name = hints[f.name], getattr(obj, f.name), prefix + f.name
        if typing.get_origin(kind) in (typing.Union, types.UnionType):   # int | None: derived
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        if kind not in _TYPE_WORDS:
            continue
        if kind is bool:
            ok = _is_bool(value)
            converted = bool(value) if ok else value
        elif kind is int:
            ok = isinstance(value, numbers.Integral) and not _is_bool(value)
            converted = int(value) if ok else value
        elif kind is float:
            ok = isinstance(value, numbers.Real) and not _is_bool(value)
            converted = float(value) if ok else value
            if ok and not math.isfinite(converted):
                raise ValueError(f"{name} must be a finite number, got {value}")
        elif f.name in _PATH_FIELDS and isinstance(value, os.PathLike):
            ok, converted = True, os.fspath(value)
        else:
            ok, converted = isinstance(value, str), value
        if not ok:
            hint = f"; write {int(value)}, not {value}" if kind is int and isinstance(value, float) \
                and value.is_integer() else ""
            hint = hint or ("; write true or false without quotes"
                            if kind is bool and isinstance(value, str) else "")
            raise ValueError(f"{name} must be {_TYPE_WORDS[kind]}, got {_shown(value)}{hint}")
        if type(converted) is not type(value):
            setattr(obj, f.name, converted)


def _is_bool(value):
    import numpy as np

    return isinstance(value, (bool, np.bool_))


def _check_ranges(config):
    """Numeric ranges of the optimiser, the losses and the run (types already checked)."""
    def need(ok, name, expected, value):
        if not ok:
            raise ValueError(f"{name} must be {expected}, got {value}")

    need(config.lr > 0, "lr", "> 0 (the learning rate)", config.lr)
    need(0 <= config.beta1 < 1, "beta1", "in [0, 1)", config.beta1)
    need(0 <= config.beta2 < 1, "beta2", "in [0, 1)", config.beta2)
    need(config.adam_eps > 0, "adam_eps", "> 0", config.adam_eps)
    need(config.seed >= 0, "seed", "a non-negative integer", config.seed)
    need(config.max_delta >= 0, "max_delta", ">= 0 (pixels the bbox shrinks per side)",
         config.max_delta)
    losses = config.losses
    for name in _LOSS_WEIGHTS:
        need(getattr(losses, name) >= 0, f"losses.{name}", ">= 0 (a loss weight)",
             getattr(losses, name))
    need(0 < losses.gamma <= 1, "losses.gamma", "in (0, 1] (the spatial discount base)",
         losses.gamma)


def dump_toml(config: TrainConfig) -> str:
    """The configuration as TOML text (written next to every run)."""
    lines, losses = [], []
    for key, value in config.to_dict().items():
        if key == "losses":
            losses = [f"{k} = {_toml_value(v)}" for k, v in value.items()]
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines + ["", "[losses]"] + losses) + "\n"


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
