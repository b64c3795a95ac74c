"""Saving and loading generators: the project's own ``.npz`` model format.

A model file holds the generator's parameters under ``generator/<name>`` and
its width under ``cnum`` — nothing executable, no pickle, safe to open from a
stranger. ``load_generator`` also accepts a training checkpoint (it takes the
generator out of it) and converts a released TensorFlow checkpoint on the fly.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import nnlite
from nnlite.nn import StateDictError
from nnlite.serialization import SerializationError, inspect

from . import checkpoint as ckpt
from ..model.networks import InpaintGenerator, gen_conv_table

__all__ = ["save_generator", "load_generator", "average_generators", "generator_shapes",
           "SHIPPED_MODEL", "shipped_model_path", "MAX_CNUM"]

#: The widest generator a model file may declare (the release: 32; 256 is about 200 million
#: parameters, 0.8 GB in float32): a crafted width cannot make loading allocate more.
MAX_CNUM = 256
#: Largest 'cnum' / 'meta' / 'config' entry accepted (they hold a number or JSON text).
MAX_TEXT_BYTES = 1 << 20

#: The small model trained on the bundled corpus and shipped with the package.
SHIPPED_MODEL = Path(__file__).parent / "demo_cnum16.npz"


def shipped_model_path():
    if not SHIPPED_MODEL.is_file():
        raise FileNotFoundError(f"the shipped model {SHIPPED_MODEL} is missing from this "
                                "installation; pass --weights with a model file")
    return SHIPPED_MODEL


def save_generator(path, generator, **meta):
    """Write ``generator`` (and string/number ``meta`` such as the training command) atomically.

    The meta always records ``attention`` (the generator's own flag; False for the
    ablation without contextual attention), whatever ``meta`` says."""
    from ..data.imageio import check_path

    check_path(path, "save_generator")
    if not isinstance(generator, InpaintGenerator):
        raise TypeError(f"save_generator: generator must be an InpaintGenerator, got "
                        f"{type(generator).__name__}")
    meta = {**meta, "attention": bool(generator.attention)}
    nnlite.save(path, {"generator": generator.state_dict(), "cnum": np.asarray(generator.cnum),
                       "meta": np.asarray(json.dumps(meta))})
    return Path(path)


def load_generator(path, *, device="cpu", dtype=np.float32):
    """An ``InpaintGenerator`` from a model file, a training checkpoint, or a released
    TensorFlow checkpoint (prefix, ``.index`` file or directory).

    ``generator.meta`` holds what the file says about the model (e.g. ``image_size``,
    the training command); for a released checkpoint it is ``{"image_size": 256,
    "source": path}`` (the release trains at 256x256). The architecture's ``attention``
    flag comes from the meta (a model file) or the configuration (a training checkpoint);
    files written before the flag existed hold the full model (attention=True).
    """
    from ..data.imageio import check_path

    path = check_path(path, "load_generator")
    if path.is_dir() or path.suffix == ".index" or Path(str(path) + ".index").exists():
        from .release import load_release_checkpoint
        generator = load_release_checkpoint(path, dtype=dtype).to(device)
        generator.meta = {"image_size": 256, "source": str(path)}
        return generator
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    cnum, meta, names = _check_model_file(path)
    try:
        tree = nnlite.load(path, names=names)
    except SerializationError as error:
        raise ckpt.CheckpointError(f"{path} is not a readable model file ({error})") from None
    weights = tree["generator"]
    for name, value in weights.items():
        if not np.isfinite(value).all():
            raise ckpt.CheckpointError(f"{path}: generator weight {name} holds NaN or infinite "
                                       "values (saved from a diverged run?)")
    generator = InpaintGenerator(cnum, attention=meta["attention"], dtype=dtype)
    try:
        generator.load_state_dict(weights, strict=True)
    except StateDictError as error:
        raise ckpt.CheckpointError(f"{path} (cnum={cnum}, attention={meta['attention']}): "
                                   f"{error}") from None
    generator.meta = meta
    return generator.to(device)


def generator_shapes(cnum, attention=True):
    """``{parameter name: shape}`` of an ``InpaintGenerator(cnum, attention=attention)``, from
    the layer table alone (nothing is allocated): what a model file of that width must hold."""
    shapes = {}
    for name, cin, cout, kernel, *_ in gen_conv_table(cnum, attention):
        shapes[f"{name}.weight"] = (cout, cin, kernel, kernel)
        shapes[f"{name}.bias"] = (cout,)
    return shapes


def _check_model_file(path):
    """Validate a model file or checkpoint against the architecture it declares, from its zip
    directory and array headers only: ``(cnum, meta, names to load)``. A crafted header (a huge
    shape in a small file, a zip bomb), a width beyond ``MAX_CNUM``, a missing, extra or
    misshapen weight or a non-float dtype is a CheckpointError before any array is read."""
    try:
        infos = inspect(path)
    except SerializationError as error:
        raise ckpt.CheckpointError(f"{path} is not a readable model file ({error})") from None
    declared = {name[len("generator/"):]: info for name, info in infos.items()
                if name.startswith("generator/")}
    if not declared:
        raise ckpt.CheckpointError(f"{path} holds no generator weights")
    small = [name for name in ("cnum", "meta", "config") if name in infos]
    for name in small:
        if infos[name].nbytes > MAX_TEXT_BYTES:
            raise ckpt.CheckpointError(f"{path}: its {name!r} entry declares "
                                       f"{infos[name].nbytes:,} bytes; at most {MAX_TEXT_BYTES:,} "
                                       "are expected")
    try:
        tree = nnlite.load(path, names=small)
        config = json.loads(str(tree["config"])) if "config" in tree else None
        if "cnum" in tree:
            cnum = int(tree["cnum"])
        elif config is not None:
            cnum = int(config["cnum"])
        elif "conv1.weight" in declared and len(declared["conv1.weight"].shape) == 4:
            cnum = declared["conv1.weight"].shape[0]
        else:
            raise KeyError("no 'cnum' entry, no config and no conv1 weight to infer it from")
        meta = json.loads(str(tree["meta"])) if "meta" in tree else {}
        if config is not None:
            meta.setdefault("image_size", config["image_size"])
            meta.setdefault("attention", config.get("attention", True))
        attention = meta.get("attention", True)      # files from before the flag: full model
        if not isinstance(attention, bool):
            raise TypeError(f"attention must be true or false, got {attention!r}")
        meta["attention"] = attention
    except (ValueError, TypeError, KeyError, SerializationError) as error:
        raise ckpt.CheckpointError(f"{path}: its 'cnum', 'meta' or 'config' entry is not "
                                   f"readable ({type(error).__name__}: {error})") from None
    if not 2 <= cnum <= MAX_CNUM or cnum % 2:
        raise ckpt.CheckpointError(f"{path} declares cnum={cnum}; a generator has an even "
                                   f"width from 2 to {MAX_CNUM} (the release: 32)")
    first = declared.get("conv1.weight")
    if first is not None and len(first.shape) == 4 and first.shape[0] != cnum:
        raise ckpt.CheckpointError(f"{path} says cnum={cnum} but its conv1 weight has "
                                   f"{first.shape[0]} output channels (cnum={first.shape[0]}): "
                                   "the file is inconsistent")
    expected = generator_shapes(cnum, attention)
    missing = [name for name in expected if name not in declared]
    unexpected = [name for name in declared if name not in expected]
    if missing or unexpected:
        what = "; ".join(part for part in (
            missing and f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}",
            unexpected and f"unexpected {', '.join(unexpected[:3])}"
                           f"{' ...' if len(unexpected) > 3 else ''}") if part)
        raise ckpt.CheckpointError(f"{path} (cnum={cnum}) does not hold a generator's weights: "
                                   f"{what}")
    for name, shape in expected.items():
        info = declared[name]
        if info.dtype.kind != "f":
            raise ckpt.CheckpointError(f"{path}: generator weight {name} has dtype "
                                       f"{info.dtype}; a model file holds floats")
        if info.shape != shape:
            raise ckpt.CheckpointError(f"{path} (cnum={cnum}): generator weight {name} has shape "
                                       f"{info.shape}, the architecture needs {shape}")
    return cnum, meta, small + [f"generator/{name}" for name in expected]


def average_generators(sources, *, dtype=np.float32):
    """The parameter-wise mean of several generators of the same width (not in the release).

    ``sources``: model files, training checkpoints (anything ``load_generator`` reads) or
    ``InpaintGenerator`` objects. Averaging the checkpoints of one run's last stretch
    ("stochastic weight averaging", Izmailov et al. 2018) smooths the step-to-step noise of
    small-batch Adam; DeepFill has no batch norm, so the average needs no statistics
    recomputed. The mean is taken in float64. Returns a CPU generator whose ``meta`` lists
    the sources under ``averaged_from``.
    """
    if isinstance(sources, (str, Path, InpaintGenerator)):
        raise ValueError("average_generators takes a list of generators or model files, "
                         f"got a single {type(sources).__name__}: {sources!r:.80}")
    try:
        sources = list(sources)
    except TypeError:
        raise TypeError(f"average_generators takes a list of generators or model files, got "
                        f"{type(sources).__name__}") from None
    if not sources:
        raise ValueError("average_generators needs at least one generator or model file")
    names, total, first = [], None, None
    for source in sources:             # one generator in memory at a time, a float64 sum
        generator = source if isinstance(source, InpaintGenerator) else \
            load_generator(source, dtype=dtype)
        names.append(getattr(generator, "meta", {}).get("source", str(source))
                     if isinstance(source, InpaintGenerator) else str(source))
        if first is None:
            first = generator
        elif generator.cnum != first.cnum:
            raise ValueError(f"cannot average generators of different widths: {names[0]} has "
                             f"cnum={first.cnum}, {names[-1]} has cnum={generator.cnum}")
        elif generator.attention != first.attention:
            raise ValueError(f"cannot average a generator with contextual attention and one "
                             f"without: {names[0]} has attention={first.attention}, "
                             f"{names[-1]} has attention={generator.attention}")
        state = {key: np.asarray(nnlite.backend.to_device(value, "cpu"), np.float64)
                 for key, value in generator.state_dict().items()}
        total = state if total is None else {key: total[key] + state[key] for key in total}
    average = InpaintGenerator(first.cnum, attention=first.attention, dtype=dtype)
    average.load_state_dict({key: (value / len(sources)).astype(dtype)
                             for key, value in total.items()}, strict=True)
    average.meta = {key: value for key, value in getattr(first, "meta", {}).items()
                    if key == "image_size"}
    average.meta["averaged_from"] = names
    return average
