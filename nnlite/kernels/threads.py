"""Thread settings that must be in place before NumPy loads OpenBLAS (imported first by
``nnlite/__init__.py``, and so by anything that imports nnlite, ``inpainting`` included).

OpenBLAS's worker threads spin for about 2**28 cycles after every GEMM before they sleep,
holding the cores that NumPy's own copies and elementwise passes (and ``parallel``'s
threads) need between GEMMs. Sleeping at once (2**4) made a 512x512 inpainting ~10 %
faster on 2 cores (docs/benchmarks.md). Only takes effect if NumPy is not loaded yet; an
explicit OPENBLAS_THREAD_TIMEOUT wins.
"""
import os

OPENBLAS_THREAD_TIMEOUT = "4"

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)
