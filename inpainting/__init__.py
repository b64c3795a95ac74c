"""inpainting: DeepFill v1 (Yu et al., CVPR 2018) built on nnlite.

Where each part lives, floor by floor (lowest first; a floor imports only from itself and the
floors below it, see docs/architecture.md):

* ``data/``       — ``imageio`` (files), ``datasets`` (image folders, the demo corpus),
  ``masks``, ``periodic``, ``textures``, ``pixels`` (a file's own pixel values)
* ``model/``      — ``networks`` (``InpaintGenerator``, ``LocalCritic``, ``GlobalCritic``),
  ``attention_steps`` / ``attention`` (contextual attention, step by step and as a layer),
  ``reference`` (its loop version), ``losses``, ``attention_colours`` (spec §4),
  ``inference`` (``inpaint`` for any image size)
* ``weights/``    — ``model_io`` (model files), ``checkpoint``, ``tf_checkpoint`` and
  ``release`` (the authors' TensorFlow checkpoints, without TensorFlow)
* ``training/``   — ``train``, ``config``, ``run_files``, ``distributed``, ``prefetch``, ``viz``
* ``evaluation/`` — ``metrics``, ``baselines``, ``evaluate``, ``evaluation_stats``,
  ``evaluation_report``
* ``app/``        — ``cli`` (the ``inpainting`` command), ``inpaint_files`` (``inpaint_image``),
  ``large_images``, ``web/`` (the local web page)

Names are imported lazily, so ``import inpainting`` is cheap.
"""
import importlib

import nnlite.kernels.threads  # noqa: F401,E402  (before NumPy loads: nnlite/kernels/threads.py)

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
    "inpaint_image": "app.inpaint_files",
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
