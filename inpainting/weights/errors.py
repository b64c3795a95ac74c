"""The one error for a weights file that exists but cannot be used.

Training checkpoints (``checkpoint``), model files (``model_io``) and the authors'
TensorFlow checkpoints (``tf_checkpoint``) all raise ``CheckpointError``, so one
``except CheckpointError`` covers every way a weights file can be wrong.
"""

__all__ = ["CheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint or model file is missing, truncated, corrupt or not one of the kinds
    this package reads; the message names the file and what is wrong."""
