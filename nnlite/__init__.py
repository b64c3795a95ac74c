"""nnlite: a small NumPy/CuPy autograd and convolution library, written to be read.

    import nnlite
    import nnlite.functional as F
    x = nnlite.Tensor(numpy_array, requires_grad=True)
    y = F.elu(x).sum()
    y.backward()            # x.grad
    (g,) = nnlite.grad(y, x, create_graph=True)   # differentiable gradient

Files: ``backend`` (NumPy/CuPy), ``autograd`` (Function, backward engine,
grad, no_grad), ``tensor`` (Tensor), ``functional`` (ops), ``nn`` (modules),
``optim`` (SGD, Adam), ``testing`` (gradcheck, gradgradcheck), ``serialization``,
``parallel`` (NumPy passes on every core; ``set_num_threads``), ``memory``
(``reuse_freed_memory``: large arrays without fresh page faults), ``fake_device``
(a strict CuPy stand-in on NumPy that counts what would cost on a GPU: ``.to("fake")``), ``dot`` (``to_dot``,
``draw_graph``: the recorded graph as Graphviz DOT text or a picture).
"""
from .kernels import threads as _threads  # noqa: F401  (first: OpenBLAS settings before NumPy loads)

from . import backend, functional  # noqa: F401
from .autograd import DoubleBackwardError, Function, enable_grad, grad, is_grad_enabled, no_grad  # noqa: F401
from .backend import cuda_available, default_device, set_tf32, tf32_enabled  # noqa: F401
from .tensor import Tensor, as_tensor  # noqa: F401
from . import nn, optim, testing  # noqa: F401,E402  (after Tensor: they build on it)
from .serialization import load, save  # noqa: F401,E402
from .kernels.parallel import get_num_threads, set_num_threads  # noqa: F401,E402
from .dot import draw_graph, to_dot  # noqa: F401,E402

__version__ = "0.1.0"
