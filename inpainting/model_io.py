"""Saving and loading generators: the project's own ``.npz`` model format.

A model file holds the generator's parameters under ``generator/<name>`` and
its width under ``cnum`` — nothing executable, no pickle, safe to open from a
stranger. ``load_generator`` also accepts a training checkpoint (it takes the
generator out of it) and converts a released TensorFlow checkpoint on the fly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import nnlite
from nnlite.serialization import SerializationError

from . import checkpoint as ckpt
from .networks import InpaintGenerator

__all__ = ["save_generator", "load_generator", "SHIPPED_MODEL", "shipped_model_path"]

#: The small model trained on the bundled corpus and shipped with the package.
SHIPPED_MODEL = Path(__file__).parent / "weights" / "demo_cnum16.npz"


def shipped_model_path():
    if not SHIPPED_MODEL.is_file():
        raise FileNotFoundError(f"the shipped model {SHIPPED_MODEL} is missing from this "
                                "installation; pass --weights with a model file")
    return SHIPPED_MODEL


def save_generator(path, generator, **meta):
    """Write ``generator`` (and string/number ``meta`` such as the training command) atomically."""
    import json

    nnlite.save(path, {"generator": generator.state_dict(), "cnum": np.asarray(generator.cnum),
                       "meta": np.asarray(json.dumps(meta))})
    return Path(path)


def load_generator(path, *, device="cpu", dtype=np.float32):
    """An ``InpaintGenerator`` from a model file, a training checkpoint, or a released
    TensorFlow checkpoint (prefix, ``.index`` file or directory).

    ``generator.meta`` holds what the file says about the model (e.g. ``image_size``,
    the training command); it is empty for released checkpoints.
    """
    path = Path(path)
    if path.is_dir() or path.suffix == ".index" or Path(str(path) + ".index").exists():
        from .release import load_release_checkpoint
        generator = load_release_checkpoint(path, dtype=dtype).to(device)
        generator.meta = {"image_size": 256, "source": str(path)}
        return generator
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        tree = nnlite.load(path)
    except SerializationError as error:
        raise ckpt.CheckpointError(f"{path} is not a readable model file ({error})") from None
    if "generator" not in tree:
        raise ckpt.CheckpointError(f"{path} holds no generator weights")
    if "cnum" in tree:
        cnum = int(tree["cnum"])
    elif "config" in tree:
        import json
        cnum = int(json.loads(str(tree["config"]))["cnum"])
    else:
        cnum = int(tree["generator"]["conv1.weight"].shape[0])
    generator = InpaintGenerator(cnum, dtype=dtype)
    generator.load_state_dict(tree["generator"], strict=True)
    import json
    generator.meta = json.loads(str(tree["meta"])) if "meta" in tree else {}
    if "config" in tree:
        generator.meta.setdefault("image_size", json.loads(str(tree["config"]))["image_size"])
    return generator.to(device)
