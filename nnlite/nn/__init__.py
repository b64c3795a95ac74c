"""``nnlite.nn``: modules (``Module``, ``Parameter``), layers and initialisers.

* ``module`` — Module, Parameter, state_dict / load_state_dict, forward hooks
* ``init``   — xavier/glorot, kaiming, uniform, normal, zeros (explicit ``rng``)
* ``layers`` — Linear, ReLU, LeakyReLU, ELU, Tanh, Sigmoid, Flatten, Sequential
* ``conv``   — Conv2d, ConvTranspose2d
"""
from . import init  # noqa: F401
from .layers import ELU, Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh  # noqa: F401
from .module import IncompatibleKeys, Module, Parameter, RemovableHandle, StateDictError  # noqa: F401
from .conv import Conv2d, ConvTranspose2d  # noqa: F401,E402
