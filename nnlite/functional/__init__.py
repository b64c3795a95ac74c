"""``nnlite.functional`` (import as ``F``): every differentiable op, PyTorch names.

* ``basic``      — arithmetic, broadcasting, reductions
* ``shape``      — reshape, transpose, indexing, concat, stack, pad, matmul
* ``activation`` — relu, leaky_relu, elu, tanh, sigmoid, softmax, losses
* ``conv``       — conv2d, conv_transpose2d, conv2d_grad_weight (docs/convolution.md)
* ``resize``     — interpolate_nearest, nearest_indices (floor and TF1 align-corners rules)
* ``patches``    — unfold, fold
* ``attention``  — masked_softmax, diagonal_sum (score-matrix ops)

The fast array code these call lives in ``nnlite.kernels``.
"""
from .basic import (abs, add, broadcast_to, cast, clip, div, exp, log, max, maximum, mean,  # noqa: F401
                    minimum, mul, neg, pow, sqrt, sub, sum, sum_to, where)
from .shape import (concat, flatten, getitem, matmul, pad, permute, reshape, stack,  # noqa: F401
                    transpose)
from .activation import (elu, l1_loss, leaky_relu, log_softmax, mse_loss, relu, sigmoid,  # noqa: F401
                         softmax, tanh)
from .conv import conv2d, conv2d_grad_weight, conv_transpose2d  # noqa: F401,E402
from .resize import interpolate_nearest, nearest_indices  # noqa: F401,E402
from .patches import fold, unfold  # noqa: F401,E402
from .subnormal import flush_denormals  # noqa: F401,E402
from .attention import diagonal_sum, masked_softmax  # noqa: F401,E402
