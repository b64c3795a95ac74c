"""``nnlite.kernels``: the code that exists only for speed, each kernel beside its plain twin.

``nnlite.functional`` defines every op once, readably (forward + differentiable backward),
and calls into this floor where speed needs it: im2col layouts (``conv_arrays``, ``im2col``,
``im2col_cupy`` with raw CUDA kernels) and the per-shape choice between them
(``conv_strategy``), the reusable scratch buffers (``workspace``), threaded elementwise
passes (``parallel``, ``elementwise``, ``attention``), and process settings for memory and
threads (``memory``, ``threads``).
Nothing here builds graph nodes: kernels take and return arrays.
"""
