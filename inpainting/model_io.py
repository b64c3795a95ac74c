"""Saving and loading generators: the project's own ``.npz`` model format.

A model file holds the generator's parameters under ``generator/<name>`` and
its width under ``cnum`` — nothing executable, no pickle, safe to open from a
stranger. ``load_generator`` also accepts a training checkpoint (it takes the
generator out of it) and converts a released TensorFlow checkpoint on the fly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

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
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = ckpt.flatten({"generator": generator.state_dict(),
                         "cnum": np.asarray(generator.cnum),
                         "meta": np.asarray(json.dumps(meta))})
    handle, temporary = tempfile.mkstemp(prefix=".tmp_", suffix=".npz", dir=path.parent)
    with os.fdopen(handle, "wb") as stream:
        np.savez(stream, **flat)
    os.replace(temporary, path)
    return path


def load_generator(path, *, device="cpu", dtype=np.float32):
    """An ``InpaintGenerator`` from a model file, a training checkpoint, or a released
    TensorFlow checkpoint (prefix, ``.index`` file or directory)."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".index" or Path(str(path) + ".index").exists():
        from .release import load_release_checkpoint
        return load_release_checkpoint(path, dtype=dtype).to(device)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            tree = ckpt.unflatten({name: data[name] for name in data.files})
    except Exception as error:  # zip or format errors: one clear line for users
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
    return generator.to(device)
