"""``Module`` and ``Parameter``: the containers a model is built from (PyTorch's vocabulary).

A ``Module`` owns ``Parameter`` tensors and other modules. Assigning either to an
attribute registers it, in insertion order (ordered dicts, never sets, so
``parameters()`` comes out the same on every run and every machine). Names are
dotted paths (``conv1.weight``), the keys of ``state_dict()``.

``register_forward_hook`` lets code outside a model watch (or replace) what one of its
modules returns, without rewriting the module: the way notebooks trace shapes and tests
insert a faulty op.

What this file does not hold: layers (``layers.py``, ``conv.py``), initialisers
(``init.py``), optimizers (``nnlite.optim``) and files on disk (``nnlite.serialization``).
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from itertools import count

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["Parameter", "Module", "StateDictError", "IncompatibleKeys", "RemovableHandle"]


class Parameter(Tensor):
    """A leaf tensor that a ``Module`` registers and an optimizer updates.

    Always ``requires_grad=True``; accepts an array (kept as is, no copy) or a
    Tensor (its data is shared).
    """

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        if not requires_grad:
            raise ValueError("Parameter always requires grad; use a plain Tensor or a "
                             "buffer (Module.register_buffer) for constants")
        super().__init__(data, requires_grad=True)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


class StateDictError(KeyError):
    """``load_state_dict`` found missing or unexpected keys, or mismatched shapes."""

    def __str__(self):  # KeyError would quote the message; show it as written
        return str(self.args[0])


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``handle.remove()`` unregisters the hook.

    Also a context manager (``with module.register_forward_hook(hook): ...``).
    """
    _ids = count()

    def __init__(self, hooks):
        self.hooks, self.id = hooks, next(RemovableHandle._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)        # removing twice is harmless

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign parameters and
    sub-modules as attributes, and implement ``forward``; ``module(x)`` calls it.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------- registration
    def __setattr__(self, name, value):
        registries = self.__dict__.get("_parameters"), self.__dict__.get("_modules")
        if registries[0] is None and isinstance(value, (Parameter, Module)):
            raise AttributeError(f"cannot assign {type(value).__name__} {name!r} before "
                                 f"{type(self).__name__}.__init__ called super().__init__()")
        if registries[0] is not None:
            self._forget(name)
            if isinstance(value, Parameter):
                self._parameters[name] = value
            elif isinstance(value, Module):
                self._modules[name] = value
            elif name in self._buffers:
                self.register_buffer(name, value)
                return
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if "_parameters" in self.__dict__:
            self._forget(name)
            self._buffers.pop(name, None)
        object.__delattr__(self, name)

    def _forget(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)

    def register_buffer(self, name: str, value) -> None:
        """Register a constant (not trained) that still belongs to ``state_dict`` and ``to()``.

        ``value`` is an array or a Tensor; it is stored as a Tensor without grad.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("call super().__init__() before register_buffer")
        tensor = value if isinstance(value, Tensor) else Tensor(value)
        if tensor.requires_grad:
            raise ValueError(f"buffer {name!r} requires grad; use a Parameter instead")
        self._forget(name)
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    # ----------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def __call__(self, *args, **kwargs):
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, output)
            if replaced is not None:
                output = replaced
        return output

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every ``module(...)``.

        ``inputs`` is the tuple of positional arguments; a hook that returns something
        other than None replaces the output (the next hook sees the replacement). Hooks
        run in registration order, only through ``module(...)`` (not ``module.forward``),
        and are no part of ``state_dict``. Returns a handle whose ``remove()`` unregisters
        the hook (PyTorch's ``Module.register_forward_hook``).
        """
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ----------------------------------------------------------- traversal
    def named_children(self):
        yield from self._modules.items()

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = ""):
        """``(dotted name, module)`` for this module ('' by default) and every descendant."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = ""):
        """``(dotted name, Parameter)``: a module's own parameters in registration order,
        then each child's in registration order, depth first (PyTorch's order).

        A parameter shared by two sub-modules is yielded once, under its first name.
        """
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self):
        for module_name, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), b

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return sum(p.size for p in self.parameters())

    # ----------------------------------------------------------- modes and devices
    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None (frees any graph it held)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True):
        """Set ``.training`` on this module and every descendant; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def to(self, device):
        """Move parameters (and their gradients) and buffers to ``device`` in place.

        The Parameter objects stay the same, so an optimizer built on them keeps
        working. Returns self.
        """
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            if p.grad is not None:
                p.grad = Tensor(backend.to_device(p.grad.data, device))
        for _, b in self.named_buffers():
            b.data = backend.to_device(b.data, device)
        return self

    # ----------------------------------------------------------- state
    def _state_entries(self):
        return list(self.named_parameters()) + list(self.named_buffers())

    def state_dict(self):
        """An ordered dict ``dotted name -> array`` (a copy) of parameters, then buffers."""
        return OrderedDict((name, t.data.copy()) for name, t in self._state_entries())

    def load_state_dict(self, state, strict: bool = True):
        """Copy ``state`` (name -> array or Tensor) into the parameters and buffers in place.

        Values are cast to each entry's dtype and placed on its device. A shape
        mismatch is always an error; with ``strict`` missing or unexpected keys
        are too. The error lists every problem at once. Returns
        ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state, "keys"):
            raise TypeError(f"load_state_dict expects a mapping name -> array, "
                            f"got {type(state).__name__}")
        entries = OrderedDict(self._state_entries())
        missing = [name for name in entries if name not in state]
        unexpected = [name for name in state if name not in entries]
        mismatched = []
        for name, target in entries.items():
            if name in state:
                shape = tuple(np.shape(_raw(state[name])))
                if shape != target.shape:
                    mismatched.append(f"{name}: expected shape {target.shape}, got {shape}")
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {', '.join(unexpected)}")
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if problems:
            raise StateDictError(f"{type(self).__name__}.load_state_dict: "
                                 + " | ".join(problems))
        for name, target in entries.items():
            if name in state:
                value = backend.to_device(_raw(state[name]), target.device)
                xp = backend.get_array_module(target.data)
                target.data = xp.array(value, dtype=target.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------- printing
    def extra_repr(self) -> str:
        """One line of settings shown inside the parentheses of ``repr``."""
        return ""

    def __repr__(self):
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self.__dict__.get("_modules", {}).items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        extra = f"  {self.extra_repr()}\n" if self.extra_repr() else ""
        return f"{type(self).__name__}(\n{extra}" + "\n".join(lines) + "\n)"


def _raw(value):
    """The array behind a state entry (a Tensor or anything array-like)."""
    return value.data if isinstance(value, Tensor) else value
