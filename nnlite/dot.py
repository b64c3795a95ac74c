"""The recorded graph as a picture: ``to_dot`` (Graphviz DOT text) and ``draw_graph``.

    z = (x * y + x) ** 2
    print(nnlite.to_dot(z, names={"x": x, "y": y, "z": z}))
    nnlite.draw_graph(z)        # SVG in a notebook when Graphviz's `dot` is installed,
                                # the DOT text otherwise

The picture is the graph ``backward`` walks (``autograd.py``): every ``Function`` call as a
box, every tensor as an ellipse labelled with its shape and dtype, arrows in the direction
the forward ran (inputs -> function -> output). Leaves that require grad are green,
constants grey. Calls recorded *by a backward* under ``create_graph=True`` (the graph of a
gradient, which a double backward differentiates again: the gradient penalty) are orange,
labelled with the backward that recorded them (or "gradient sum" for the engine's
additions of gradient contributions), and grouped in a dashed box.

What it does not do: it draws no arrays' contents beyond one-element values
(``show_values=True``), and it needs no Python package; Graphviz's ``dot`` program is only
used, when present on the PATH, to turn the text into SVG or PNG.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .tensor import Tensor

__all__ = ["to_dot", "render_dot", "draw_graph", "GraphDrawing", "dot_available"]

FORWARD_STYLE = 'shape=box, style="rounded,filled", fillcolor="#cfe2f3"'
BACKWARD_STYLE = 'shape=box, style="rounded,filled,dashed", fillcolor="#f9cb9c", color="#b45f06"'
LEAF_STYLE = 'shape=ellipse, style=filled, fillcolor="#d9ead3"'
CONSTANT_STYLE = 'shape=ellipse, style=filled, fillcolor="#eeeeee"'
TENSOR_STYLE = "shape=ellipse"
BACKWARD_TENSOR_STYLE = 'shape=ellipse, color="#b45f06"'


def _quote(text: str) -> str:
    """A DOT string literal (double quotes and backslashes escaped, newlines as \\n)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _tensor_label(tensor, name, show_values):
    shape = "(" + ", ".join(str(n) for n in tensor.shape) + ("," if tensor.ndim == 1 else "") + ")"
    lines = ([name] if name else []) + [f"{shape} {tensor.dtype}"]
    if show_values and tensor.size == 1:
        lines.append(f"value {tensor.item():.4g}")
        if tensor.grad is not None and tensor.grad.size == 1:
            lines.append(f"grad {tensor.grad.item():.4g}")
    return "\n".join(lines)


def to_dot(tensor, *, names=None, show_values=False, title=None, rankdir="LR") -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    Args:
        tensor: an nnlite ``Tensor``; its ``creator`` chain is walked back to the leaves.
        names: optional ``{name: tensor}`` to label tensors (e.g. ``{"x": x, "loss": loss}``).
        show_values: also print the value (and ``.grad``) of one-element tensors.
        title: optional caption of the picture.
        rankdir: "LR" (left to right, the default) or "TB" (top to bottom, for long graphs).

    Node ids are numbered in the order of a depth-first walk from ``tensor`` (inputs in
    order), so the same computation always gives the same text. A tensor used twice by one
    function (``b * b``) gets two arrows.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected an nnlite Tensor, got {type(tensor).__name__}")
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"to_dot: rankdir must be 'LR' or 'TB', got {rankdir!r}")
    named = {}
    for name, value in (names or {}).items():
        if not isinstance(value, Tensor):
            raise TypeError(f"to_dot: names[{name!r}] must be a Tensor, got "
                            f"{type(value).__name__}")
        named[id(value)] = str(name)

    tensor_ids, function_ids = {}, {}
    tensor_lines, forward_lines, backward_lines, edges = [], [], [], []

    def tensor_node(t):
        key = id(t)
        if key not in tensor_ids:
            tensor_ids[key] = f"t{len(tensor_ids)}"
            in_backward = t.creator is not None and t.creator.backward_of is not None
            if t.creator is None:
                style = LEAF_STYLE if t.requires_grad else CONSTANT_STYLE
            else:
                style = BACKWARD_TENSOR_STYLE if in_backward else TENSOR_STYLE
            if t is tensor:
                style += ", penwidth=2"
            label = _quote(_tensor_label(t, named.get(key), show_values))
            line = f"  {tensor_ids[key]} [label={label}, {style}];"
            (backward_lines if in_backward else tensor_lines).append(line)
        return tensor_ids[key]

    stack = [tensor]
    tensor_node(tensor)
    while stack:
        t = stack.pop()
        function = t.creator
        if function is None:
            continue
        if id(function) not in function_ids:
            node = function_ids[id(function)] = f"f{len(function_ids)}"
            if function.backward_of is None:
                forward_lines.append(f"  {node} [label={_quote(type(function).__name__)}, "
                                     f"{FORWARD_STYLE}];")
            else:
                label = f"{type(function).__name__}\n{function.backward_of}"
                backward_lines.append(f"  {node} [label={_quote(label)}, {BACKWARD_STYLE}];")
            pending = []
            for x in function.inputs:
                new = id(x) not in tensor_ids
                edges.append(f"  {tensor_node(x)} -> {node};")
                if new:
                    pending.append(x)
            stack.extend(reversed(pending))     # visit inputs in order
        edges.append(f"  {function_ids[id(function)]} -> {tensor_ids[id(t)]};")

    lines = ["digraph nnlite {", f"  rankdir={rankdir};",
             '  node [fontname="Helvetica", fontsize=10];']
    if title:
        lines += [f"  label={_quote(title)};", "  labelloc=t;"]
    lines += tensor_lines + forward_lines
    if backward_lines:
        lines += ["  subgraph cluster_backward {",
                  '    label="recorded by backward (create_graph=True)";',
                  '    style=dashed; color="#b45f06"; fontcolor="#b45f06";']
        lines += ["  " + line for line in backward_lines]
        lines.append("  }")
    lines += edges + ["}"]
    return "\n".join(lines) + "\n"


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def render_dot(dot_text: str, format: str = "svg") -> bytes:
    """Run Graphviz's ``dot`` on ``dot_text``; the picture's bytes (``format`` svg or png)."""
    if format not in ("svg", "png"):
        raise ValueError(f"render_dot: format must be 'svg' or 'png', got {format!r}")
    program = shutil.which("dot")
    if program is None:
        raise FileNotFoundError("render_dot: Graphviz's 'dot' program is not on the PATH "
                                "(install graphviz, or use the DOT text)")
    done = subprocess.run([program, f"-T{format}"], input=dot_text.encode(),
                          capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise ValueError(f"render_dot: dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


class GraphDrawing:
    """What ``draw_graph`` returns: the DOT text, shown as SVG by Jupyter when ``dot``
    exists and as the text otherwise; ``save`` writes .dot, .svg or .png."""

    def __init__(self, dot_text: str):
        self.dot = dot_text
        self.svg = render_dot(dot_text).decode() if dot_available() else None

    def _repr_svg_(self):
        return self.svg                       # None: Jupyter falls back to the text

    def __repr__(self):
        return self.dot

    def save(self, path):
        """Write the picture (``.svg``/``.png``, needs ``dot``) or the text (``.dot``),
        atomically (a temporary file, then ``os.replace``)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".dot":
            data = self.dot.encode()
        elif suffix in (".svg", ".png"):
            data = render_dot(self.dot, suffix[1:])
        else:
            raise ValueError(f"GraphDrawing.save: {path.name}: the suffix must be .dot, .svg "
                             f"or .png")
        handle, temporary = tempfile.mkstemp(dir=path.parent or ".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path


def draw_graph(tensor, **kwargs) -> GraphDrawing:
    """``to_dot(tensor, **kwargs)`` wrapped for display (see ``GraphDrawing``)."""
    return GraphDrawing(to_dot(tensor, **kwargs))
