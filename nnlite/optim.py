"""Optimizers: ``SGD`` and ``Adam`` (PyTorch's update rules), with resumable state.

An optimizer holds an ordered list of parameters and, for each, a small state
dict (momentum buffer, Adam moments, step count) keyed by the parameter object
itself. ``step()`` reads each ``param.grad`` and updates ``param.data`` in place
on raw arrays, so no graph is recorded and the Parameter objects (which modules
and the optimizer share) stay the same.

``state_dict()`` is a nested dict of arrays, hyperparameters included, that
``nnlite.save`` writes to ``.npz``; per-parameter state is stored under the
parameter's index ("0", "1", ...) in the order the optimizer was given them.
``load_state_dict`` restores it onto an optimizer built on the same parameters,
so training continues exactly as if it had never stopped.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    """Base class: parameter bookkeeping, ``zero_grad``, ``step`` and state save/restore.

    Args:
        params: an iterable of Parameters (``model.parameters()``) or of
            ``(name, Parameter)`` pairs (``model.named_parameters()``; the names
            then appear in error messages).
        hyperparameters: the numbers ``step`` uses (``lr``, ...); stored in the state.
    """

    def __init__(self, params, hyperparameters: dict):
        self.params, self.names = [], []
        for index, item in enumerate(params):
            name, p = item if isinstance(item, tuple) else (f"param {index}", item)
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{type(self).__name__}: {name} is not a Tensor that requires "
                                f"grad (got {type(p).__name__})")
            if any(p is q for q in self.params):
                raise ValueError(f"{type(self).__name__}: {name} was given twice")
            self.params.append(p)
            self.names.append(name)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        # Python floats, so float32 state stays float32 (NumPy 2 promotion rules)
        self.hyperparameters = {k: self._checked(k, v) for k, v in hyperparameters.items()}
        self.state = {}   # Parameter -> dict of arrays / step count

    def _checked(self, key, value) -> float:
        """A hyperparameter as a Python float: a finite number >= 0, else a named error."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{type(self).__name__}: {key} must be a number, got {value!r} "
                            f"({type(value).__name__})")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}: {key} must be >= 0 and finite, got {value}")
        return float(value)

    def __getattr__(self, name):  # opt.lr reads the hyperparameter
        hyper = self.__dict__.get("hyperparameters", {})
        if name in hyper:
            return hyper[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):  # opt.lr = 1e-5 changes the hyperparameter
        hyper = self.__dict__.get("hyperparameters")
        if hyper is not None and name in hyper:
            hyper[name] = self._checked(name, value)
        else:
            object.__setattr__(self, name, value)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient (others are left alone)."""
        for p, name in zip(self.params, self.names):
            if p.grad is None:
                continue
            g = p.grad.data if isinstance(p.grad, Tensor) else p.grad
            if tuple(g.shape) != p.shape:
                raise ValueError(f"{type(self).__name__}: gradient of {name} has shape "
                                 f"{tuple(g.shape)}, parameter has {p.shape}")
            backend.get_array_module(p.data, g, op=f"{type(self).__name__}.step")
            self._update(p, g.astype(p.dtype, copy=False), self.state.setdefault(p, {}))

    def _update(self, p, g, state) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    # ----------------------------------------------------------- resuming
    def state_dict(self) -> dict:
        """``{"type", "hyperparameters", "num_params", "state": {index: {key: array}}}``."""
        state = {}
        for index, p in enumerate(self.params):
            if p in self.state:
                state[str(index)] = {k: np.asarray(backend.to_device(v, "cpu")).copy()
                                     for k, v in self.state[p].items()}
        return {"type": np.asarray(type(self).__name__),
                "hyperparameters": {k: np.asarray(v) for k, v in self.hyperparameters.items()},
                "num_params": np.asarray(len(self.params)),
                "state": state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict`` returned (possibly after ``nnlite.save``/``load``).

        Raises ValueError when it was saved by another optimizer class, for a
        different number of parameters, or with state of the wrong shape.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise ValueError(f"{name}.load_state_dict expects the dict that state_dict() returned, "
                             f"got {type(state_dict).__name__}")
        if "type" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: this is not an optimizer state (no 'type' "
                             f"entry; keys: {sorted(state_dict)[:5]}); pass what state_dict() "
                             "returned")
        saved_type = str(state_dict["type"])
        if saved_type != name:
            raise ValueError(f"{name}.load_state_dict: state was saved by {saved_type}")
        count = int(state_dict.get("num_params", -1))
        if count != len(self.params):
            raise ValueError(f"{name}.load_state_dict: state is for {count} parameters, this "
                             f"optimizer has {len(self.params)}")
        saved = state_dict.get("state", {})   # absent when saved before the first step
        extra = sorted(set(saved) - {str(i) for i in range(count)})
        if extra:
            raise ValueError(f"{name}.load_state_dict: unexpected parameter indices {extra}")
        restored = {}
        for index, p in enumerate(self.params):
            if str(index) not in saved:
                continue
            entry = {}
            for key, value in saved[str(index)].items():
                value = np.asarray(value)
                if key == "step":
                    entry[key] = int(value)
                    continue
                if value.shape != p.shape:
                    raise ValueError(f"{name}.load_state_dict: {key} of {self.names[index]} has "
                                     f"shape {value.shape}, parameter has {p.shape}")
                xp = backend.get_array_module(p.data)
                entry[key] = xp.asarray(backend.to_device(value, p.device), dtype=p.dtype)
            restored[p] = entry
        hyper = {k: float(np.asarray(v)) for k, v in state_dict["hyperparameters"].items()}
        unknown = sorted(set(hyper) - set(self.hyperparameters))
        if unknown:
            raise ValueError(f"{name}.load_state_dict: unknown hyperparameters {unknown}")
        self.hyperparameters.update(hyper)
        self.state = restored

    def __repr__(self):
        settings = ", ".join(f"{k}={v:g}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and L2 weight decay (PyTorch's rule).

        g <- g + weight_decay * p
        b <- g                      (first step)
        b <- momentum * b + g       (later steps; only when momentum > 0)
        p <- p - lr * b
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def _update(self, p, g, state):
        h = self.hyperparameters
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p.data
        if h["momentum"]:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                state["momentum_buffer"] = h["momentum"] * state["momentum_buffer"] + g
            g = state["momentum_buffer"]
        p.data -= (h["lr"] * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1) in PyTorch's form, bias-corrected:

        t <- t + 1;  g <- g + weight_decay * p
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    (TensorFlow puts ``eps`` outside the sqrt(1 - beta2^t) correction; the
    difference is of order eps and only matters while v is tiny.) DeepFill v1
    trains with lr 1e-4, betas (0.5, 0.9), eps 1e-8 (spec §6).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                      weight_decay=weight_decay))

    def _update(self, p, g, state):
        h = self.hyperparameters
        xp = backend.get_array_module(p.data)
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(p.data), exp_avg_sq=xp.zeros_like(p.data))
        state["step"] += 1
        t = state["step"]
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p.data
        state["exp_avg"] = h["beta1"] * state["exp_avg"] + (1 - h["beta1"]) * g
        state["exp_avg_sq"] = h["beta2"] * state["exp_avg_sq"] + (1 - h["beta2"]) * (g * g)
        step_size = h["lr"] / (1 - h["beta1"] ** t)
        denominator = xp.sqrt(state["exp_avg_sq"]) / math.sqrt(1 - h["beta2"] ** t) + h["eps"]
        p.data -= (step_size * state["exp_avg"] / denominator).astype(p.dtype, copy=False)
