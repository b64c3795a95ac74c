"""inpainting: DeepFill v1 (Yu et al., CVPR 2018) built on nnlite.

Where each part lives:

* ``attention`` / ``attention_steps`` — contextual attention (fused and step by step)
* ``flow``        — colour coding of attention offsets (spec §4)
* ``networks``    — ``InpaintGenerator``, ``LocalCritic``, ``GlobalCritic``
* ``losses``      — spatially discounted L1, known-region L1, WGAN-GP
* ``inference``   — ``inpaint`` for any image size, ``inpaint_image`` for files
* ``large_images``, ``pixels``, ``inpaint_files`` — crops around the holes, the file's own
  pixel values, output checks
* ``data``, ``masks``, ``imageio`` — images, training masks, files
* ``train``, ``config``, ``checkpoint`` — the release's training recipe, resumable
* ``metrics``, ``baselines``, ``evaluate``, ``evaluation_stats``, ``evaluation_report``,
  ``textures`` — the evaluation protocol (crops, baselines, bootstrap, texture suite)
* ``tf_checkpoint``, ``release`` — the authors' TensorFlow checkpoints, without TensorFlow
* ``cli`` — the ``inpainting`` command

Names are imported lazily, so ``import inpainting`` is cheap.
"""
import importlib

import nnlite.kernels.threads  # noqa: F401,E402  (before NumPy loads: nnlite/kernels/threads.py)

_EXPORTS = {
    "contextual_attention": "attention",
    "contextual_attention_steps": "attention_steps",
    "flow_to_image": "flow",
    "overlay_flow": "flow",
    "color_wheel_legend": "flow",
    "read_release_states": "release",
    "InpaintGenerator": "networks",
    "LocalCritic": "networks",
    "GlobalCritic": "networks",
    "inpaint": "inference",
    "inpaint_image": "inference",
    "InpaintResult": "inference",
    "inpaint_large": "large_images",
    "load_release_checkpoint": "release",
    "read_checkpoint": "tf_checkpoint",
    "CheckpointReader": "tf_checkpoint",
    "load_generator": "model_io",
    "save_generator": "model_io",
    "ImageFolder": "data",
    "demo_corpus": "data",
    "load_image": "imageio",
    "load_mask": "imageio",
    "save_image": "imageio",
    "random_bbox_mask": "masks",
    "centered_bbox_mask": "masks",
    "free_form_mask": "masks",
    "TrainConfig": "config",
    "Trainer": "train",
    "losses": None,
    "metrics": None,
    "texture_suite": "textures",
    "attention_hits": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'inpainting' has no attribute {name!r}")
    module = _EXPORTS[name]
    if module is None:
        return importlib.import_module(f".{name}", __name__)
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return __all__
