"""``inpainting.model_io``: the name the README uses for ``inpainting.weights.model_io``.

Model files are read and written in ``inpainting/weights/model_io.py``; this module gives the
same functions under the shorter, documented name.
"""
from .weights.model_io import (MAX_CNUM, SHIPPED_MODEL, average_generators, generator_shapes,
                               load_generator, save_generator, shipped_model_path)

__all__ = ["save_generator", "load_generator", "average_generators", "generator_shapes",
           "SHIPPED_MODEL", "shipped_model_path", "MAX_CNUM"]
