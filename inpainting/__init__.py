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
import os

# Before anything loads NumPy: OpenBLAS threads sleep right after each GEMM (see nnlite/__init__).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

_EXPORTS = {
    "contextual_attention": "model.attention",
    "contextual_attention_steps": "model.attention_steps",
    "flow_to_image": "model.attention_colours",
    "overlay_flow": "model.attention_colours",
    "color_wheel_legend": "model.attention_colours",
    "read_release_states": "weights.release",
    "InpaintGenerator": "model.networks",
    "LocalCritic": "model.networks",
    "GlobalCritic": "model.networks",
    "inpaint": "model.inference",
    "inpaint_image": "model.inference",
    "InpaintResult": "model.inference",
    "inpaint_large": "app.large_images",
    "load_release_checkpoint": "weights.release",
    "read_checkpoint": "weights.tf_checkpoint",
    "CheckpointReader": "weights.tf_checkpoint",
    "load_generator": "weights.model_io",
    "save_generator": "weights.model_io",
    "ImageFolder": "data.datasets",
    "demo_corpus": "data.datasets",
    "load_image": "data.imageio",
    "load_mask": "data.imageio",
    "save_image": "data.imageio",
    "random_bbox_mask": "data.masks",
    "centered_bbox_mask": "data.masks",
    "free_form_mask": "data.masks",
    "TrainConfig": "training.config",
    "Trainer": "training.train",
    "losses": "model.losses",
    "metrics": "evaluation.metrics",
    "texture_suite": "data.textures",
    "attention_hits": "evaluation.metrics",
}

_MODULES = {"losses", "metrics"}   # names that are modules, not functions

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'inpainting' has no attribute {name!r}")
    module = _EXPORTS[name]
    if name in _MODULES:
        return importlib.import_module(f".{module}", __name__)
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return __all__
