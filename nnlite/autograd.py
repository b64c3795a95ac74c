"""Reverse-mode automatic differentiation: ``Function``, the backward engine, ``grad``.

How the graph is recorded
-------------------------
Calling a ``Function`` on tensors runs ``forward`` on their raw arrays and, when
gradients are enabled and some input requires them, links each output to the
function that made it (``output.creator``). A function remembers its input
tensors and (weakly) its outputs. The graph is therefore a DAG of functions,
built while your Python code runs ("define by run").

How backward runs
-----------------
``run_backward`` starts at the outputs and visits functions in decreasing
*generation* (a function's generation is the largest generation of its inputs;
an output's is one more). A max-heap on generation guarantees that every
consumer of a tensor has already added its gradient before the tensor's own
creator is visited, so each gradient is complete when it is propagated.
Gradients are accumulated out of place (``g = g + new``): arrays received in a
backward are never mutated.

Why higher-order gradients come for free
----------------------------------------
Every ``backward`` is written with nnlite's own differentiable ops on
``Tensor`` objects. With ``create_graph=False`` backward runs under
``no_grad()`` and records nothing. With ``create_graph=True`` it records a
graph of its own, which can be differentiated again: that is all the WGAN-GP
penalty needs. A function whose backward is *not* differentiable sets
``double_backward = False`` and the engine refuses ``create_graph=True``
through it instead of returning a silently wrong second derivative.

Only the gradients somebody asked for are computed
--------------------------------------------------
``grad(outputs, inputs)`` wants the gradients of ``inputs`` alone. Before walking,
the engine marks the functions *on a path* to one of them (``_on_path``), and while
walking it tells each function, through ``needs_input_grad``, to compute only the
input gradients that lead somewhere. In the generator update (gradients w.r.t. the
generator's parameters) the critics' weight gradients are never computed; in the
gradient penalty's inner ``grad(D(x_hat), x_hat)`` only the gradient w.r.t. ``x_hat``
is. Higher-order gradients stay exact: with ``create_graph=True`` the gradient that
is computed is still recorded through every op it uses (the critic's weights
included), so differentiating it again reaches the weights.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import weakref

import numpy as np

from . import backend
from .tensor import Tensor, as_tensor, ones_like

__all__ = ["Function", "no_grad", "enable_grad", "is_grad_enabled", "grad", "run_backward",
           "DoubleBackwardError", "gradient_pruning"]


class DoubleBackwardError(RuntimeError):
    """Raised when create_graph=True goes through a backward that is not differentiable."""


class _GradMode:
    enabled = True
    pruning = True   # see "Only the gradients somebody asked for are computed"
    #: while a create_graph=True backward step runs, what is being recorded: "Exp.backward",
    #: or "gradient sum" for the engine's own additions (``nnlite.to_dot`` draws them apart)
    backward_of = None


@contextlib.contextmanager
def gradient_pruning(enabled: bool):
    """Turn the skipping of unrequested gradients on or off inside the block (results are
    the same either way; benchmarks/train_step.py uses it to measure what it saves)."""
    previous = _GradMode.pruning
    _GradMode.pruning = bool(enabled)
    try:
        yield
    finally:
        _GradMode.pruning = previous


def is_grad_enabled() -> bool:
    return _GradMode.enabled


@contextlib.contextmanager
def _set_grad_enabled(mode: bool):
    previous = _GradMode.enabled
    _GradMode.enabled = mode
    try:
        yield
    finally:
        _GradMode.enabled = previous


@contextlib.contextmanager
def _recording_backward(create_graph: bool, function=None):
    """Grad mode ``create_graph`` for one step of the backward walk; with create_graph=True
    every call recorded meanwhile remembers, in ``backward_of``, ``function``'s backward
    (or "gradient sum" when ``function`` is None: the engine adding contributions)."""
    previous = _GradMode.backward_of
    if create_graph:
        _GradMode.backward_of = ("gradient sum" if function is None
                                 else f"{type(function).__name__}.backward")
    try:
        with _set_grad_enabled(create_graph):
            yield
    finally:
        _GradMode.backward_of = previous


def no_grad():
    """Context manager: ops inside record no graph (inference, optimizer updates)."""
    return _set_grad_enabled(False)


def enable_grad():
    """Context manager: re-enable graph recording inside a ``no_grad`` block."""
    return _set_grad_enabled(True)


class Function:
    """Base class of every differentiable operation.

    Subclasses implement

    * ``forward(self, *arrays)`` on raw NumPy/CuPy arrays, returning an array or
      a tuple of arrays. Constants needed by backward (shapes, masks, indices)
      are stored as attributes on ``self``.
    * ``backward(self, *grad_outputs)`` on ``Tensor`` objects, returning one
      gradient per input (a ``Tensor`` or ``None``). It must be written with
      nnlite ops so that it is itself differentiable. ``self.inputs`` are the
      input tensors, ``self.outputs`` weak references to the outputs, and
      ``self.needs_input_grad`` says which input gradients are wanted: only
      those need computing.

    An instance is used once: ``y = Exp()(x)``.
    """

    #: False when backward uses saved arrays as constants in a way that makes
    #: its own derivative wrong; the engine then refuses create_graph=True.
    double_backward = True
    #: what recorded this call during a create_graph=True backward ("Exp.backward",
    #: "gradient sum"); None for a call of the forward computation
    backward_of = None

    def __call__(self, *inputs):
        tensors = [as_tensor(x) for x in inputs]
        arrays = [t.data for t in tensors]
        xp = backend.get_array_module(*arrays, op=type(self).__name__)
        outputs = self.forward(*arrays)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        # Arrays are kept as they are (ToDevice returns the other backend's array on
        # purpose); NumPy scalars from full reductions become 0-d arrays.
        results = [Tensor(y if isinstance(y, np.ndarray) or backend.is_cupy_array(y)
                          else xp.asarray(y)) for y in outputs]
        self.needs_input_grad = tuple(t.requires_grad for t in tensors)
        if is_grad_enabled() and any(self.needs_input_grad):
            self.generation = max(t.generation for t in tensors)
            self.inputs = tensors
            self.backward_of = _GradMode.backward_of
            for y in results:
                y.creator = self
                y.requires_grad = True
                y.generation = self.generation + 1
            self.outputs = [weakref.ref(y) for y in results]
            # enough to make a zero gradient for an output that is no longer alive
            self.output_specs = [(backend.get_array_module(y.data), y.shape, y.dtype)
                                 for y in results]
        return results[0] if len(results) == 1 else tuple(results)

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, *grad_outputs):
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    def __repr__(self):
        return f"<{type(self).__name__} generation={getattr(self, 'generation', '-')}>"


def _check_gradient(function, index, tensor, gradient):
    """Chainer's discipline: a gradient must look exactly like its input."""
    name = type(function).__name__
    if not isinstance(gradient, Tensor):
        raise TypeError(f"{name}.backward returned {type(gradient).__name__} for input {index}; "
                        "expected a Tensor or None")
    if gradient.shape != tensor.shape:
        raise ValueError(f"{name}.backward returned a gradient of shape {gradient.shape} for "
                         f"input {index} of shape {tensor.shape}")
    if gradient.dtype != tensor.dtype:
        raise TypeError(f"{name}.backward returned a gradient of dtype {gradient.dtype} for "
                        f"input {index} of dtype {tensor.dtype}")
    if backend.device_of(gradient.data) != backend.device_of(tensor.data):
        raise TypeError(f"{name}.backward returned a gradient on "
                        f"{backend.device_of(gradient.data)} for input {index} on "
                        f"{backend.device_of(tensor.data)}")


def run_backward(outputs, grad_outputs, *, create_graph=False, inputs=None):
    """Propagate ``grad_outputs`` from ``outputs`` through the graph.

    With ``inputs=None`` the gradient of every leaf that requires grad is added
    to its ``.grad`` (what ``Tensor.backward`` does). Otherwise nothing is
    written to ``.grad`` and the gradients of ``inputs`` are returned (what
    ``nnlite.grad`` does), ``None`` for inputs the outputs do not depend on.
    """
    grads = {}        # id(tensor) -> accumulated gradient Tensor
    keep_alive = {}   # id(tensor) -> tensor, so ids stay unique during the walk
    heap, seen, counter = [], set(), itertools.count()

    def push(function):
        if function is not None and id(function) not in seen:
            seen.add(id(function))
            heapq.heappush(heap, (-function.generation, next(counter), function))

    def accumulate(tensor, gradient):
        key = id(tensor)
        keep_alive[key] = tensor
        grads[key] = gradient if key not in grads else grads[key] + gradient

    with _set_grad_enabled(create_graph):
        for y, gy in zip(outputs, grad_outputs):
            accumulate(y, gy)
    wanted = None if inputs is None else {id(x) for x in inputs}
    on_path = None if inputs is None or not _GradMode.pruning else _on_path(outputs, wanted)
    for y in outputs:
        if on_path is None or id(y.creator) in on_path:
            push(y.creator)

    while heap:
        _, _, function = heapq.heappop(heap)
        if create_graph and not function.double_backward:
            raise DoubleBackwardError(
                f"{type(function).__name__} has no differentiable backward; "
                "create_graph=True through it would give a wrong higher-order gradient")
        output_grads = []
        for ref, (xp, shape, dtype) in zip(function.outputs, function.output_specs):
            y = ref()   # an unused output (dead, or alive but off the path) gets zeros
            g = grads.get(id(y)) if y is not None else None
            if g is None:
                g = Tensor(xp.zeros(shape, dtype=dtype))
            output_grads.append(g)
        recorded = function.needs_input_grad
        if on_path is not None:   # skip the gradients that lead to no requested input
            function.needs_input_grad = tuple(
                need and (id(x) in wanted or id(x.creator) in on_path)
                for need, x in zip(recorded, function.inputs))
        try:
            with _recording_backward(create_graph, function):
                input_grads = function.backward(*output_grads)
        finally:
            function.needs_input_grad = recorded
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(function.inputs):
            raise ValueError(f"{type(function).__name__}.backward returned {len(input_grads)} "
                             f"gradients for {len(function.inputs)} inputs")
        for index, (x, gx) in enumerate(zip(function.inputs, input_grads)):
            if gx is None or not x.requires_grad:
                continue
            if on_path is not None and id(x) not in wanted and id(x.creator) not in on_path:
                continue   # a backward that ignored needs_input_grad: drop, don't propagate
            _check_gradient(function, index, x, gx)
            with _recording_backward(create_graph):
                accumulate(x, gx)
            if on_path is None or id(x.creator) in on_path:
                push(x.creator)
        for ref in function.outputs:  # free intermediate gradients as soon as they are used
            y = ref()
            if y is not None and (wanted is None or id(y) not in wanted):
                grads.pop(id(y), None)

    if inputs is None:
        for key, tensor in keep_alive.items():
            if tensor.creator is None and tensor.requires_grad:
                g = grads[key]
                if not create_graph:
                    g = g.detach()
                tensor.grad = g if tensor.grad is None else tensor.grad + g
        return None
    return [grads.get(id(x)) for x in inputs]


def _on_path(outputs, wanted):
    """ids of the functions from which some tensor in ``wanted`` (ids) can be reached.

    A function is on a path when one of its inputs is wanted or was made by a function on
    a path. Functions are visited in increasing generation, so every input's creator is
    decided before the functions that consume it.
    """
    functions, stack, seen = [], [y.creator for y in outputs], set()
    while stack:
        function = stack.pop()
        if function is None or id(function) in seen:
            continue
        seen.add(id(function))
        functions.append(function)
        stack.extend(x.creator for x in function.inputs if x.requires_grad)
    on_path = set()
    for function in sorted(functions, key=lambda f: f.generation):
        if any(x.requires_grad and (id(x) in wanted or id(x.creator) in on_path)
               for x in function.inputs):
            on_path.add(id(function))
    return on_path


def grad(outputs, inputs, grad_outputs=None, *, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    Same contract as ``torch.autograd.grad``: ``outputs`` and ``inputs`` are a
    Tensor or a sequence of Tensors; ``grad_outputs`` defaults to ones for
    one-element outputs. With ``create_graph=True`` the returned gradients are
    part of a graph and can be differentiated again (the gradient penalty).
    Returns a tuple with one gradient per input.
    """
    single = isinstance(outputs, Tensor)
    outputs = [outputs] if single else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for x in inputs:
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise ValueError("grad: every input must be a Tensor with requires_grad=True")
    prepared = []
    for y, gy in zip(outputs, grad_outputs):
        if not y.requires_grad:
            raise ValueError("grad: an output does not require grad (was it computed "
                             "under no_grad, or from inputs that do not require grad?)")
        if gy is None:
            if y.size != 1:
                raise ValueError(f"grad: grad_outputs must be given for an output of shape "
                                 f"{y.shape}; it can be implied only for one-element outputs")
            gy = ones_like(y)
        gy = as_tensor(gy)
        if gy.shape != y.shape:
            raise ValueError(f"grad: grad_output of shape {gy.shape} for output {y.shape}")
        prepared.append(gy)
    results = run_backward(outputs, prepared, create_graph=create_graph, inputs=inputs)
    for x, g in zip(inputs, results):
        if g is None and not allow_unused:
            raise ValueError("grad: one of the inputs was not used to compute the outputs; "
                             "pass allow_unused=True to get None for it")
    if not create_graph:
        results = [None if g is None else g.detach() for g in results]
    return tuple(results)
