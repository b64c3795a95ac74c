"""nnlite.to_dot / draw_graph: the DOT text of a known graph, the double-backward part
drawn apart, and rendering with Graphviz's ``dot`` when it is installed."""
import re
from collections import Counter

import numpy as np
import pytest

import nnlite
import nnlite.dot as dot_module
import nnlite.functional as F
from nnlite import Tensor

NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)", (.*)\];$', re.M)
EDGE = re.compile(r"^\s*(\w+) -> (\w+);$", re.M)


def parse(text):
    """{node id: (label, attributes)} and the multiset of edges, by label."""
    nodes = {node: (label.replace("\\n", "\n"), attrs) for node, label, attrs in NODE.findall(text)}
    edges = Counter((nodes[a][0], nodes[b][0]) for a, b in EDGE.findall(text))
    return nodes, edges


def backward_cluster(text):
    match = re.search(r"subgraph cluster_backward \{(.*?)\n  \}", text, re.S)
    return set() if match is None else {node for node, _, _ in NODE.findall(match.group(1))}


def small_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = Tensor(np.ones((3, 1)), requires_grad=True)
    c = Tensor(np.array(0.5))                         # a constant
    a = w * x                                         # broadcast to (3, 2)
    h = F.tanh(a)
    s = h * h
    t = s + c
    loss = t.sum()
    return dict(x=x, w=w, c=c, a=a, h=h, s=s, t=t, loss=loss)


def test_dot_of_a_small_known_graph():
    named = small_graph()
    text = nnlite.to_dot(named["loss"], names=named)
    assert text.startswith("digraph nnlite {") and text.rstrip().endswith("}")
    nodes, edges = parse(text)
    functions = sorted(label for label, attrs in nodes.values() if "shape=box" in attrs)
    assert functions == sorted(["Mul", "Tanh", "Mul", "Add", "Sum"])
    tensors = sorted(label for label, attrs in nodes.values() if "shape=ellipse" in attrs)
    assert tensors == sorted(["x\n(2,) float64", "w\n(3, 1) float64", "c\n() float64",
                              "a\n(3, 2) float64", "h\n(3, 2) float64",
                              "s\n(3, 2) float64", "t\n(3, 2) float64", "loss\n() float64"])
    assert edges == Counter({
        ("w\n(3, 1) float64", "Mul"): 1, ("x\n(2,) float64", "Mul"): 1,
        ("Mul", "a\n(3, 2) float64"): 1, ("a\n(3, 2) float64", "Tanh"): 1,
        ("Tanh", "h\n(3, 2) float64"): 1, ("h\n(3, 2) float64", "Mul"): 2,  # h * h: 2 arrows
        ("Mul", "s\n(3, 2) float64"): 1, ("s\n(3, 2) float64", "Add"): 1,
        ("c\n() float64", "Add"): 1, ("Add", "t\n(3, 2) float64"): 1,
        ("t\n(3, 2) float64", "Sum"): 1, ("Sum", "loss\n() float64"): 1})
    # leaves that require grad, constants and the output are styled apart
    style = {label: attrs for label, attrs in nodes.values()}
    assert "#d9ead3" in style["x\n(2,) float64"] and "#d9ead3" in style["w\n(3, 1) float64"]
    assert "#eeeeee" in style["c\n() float64"] and "fillcolor" not in style["h\n(3, 2) float64"]
    assert "penwidth=2" in style["loss\n() float64"]
    assert "penwidth" not in style["t\n(3, 2) float64"]
    assert "cluster_backward" not in text and "dashed" not in text


def test_same_computation_gives_the_same_text_and_values_are_optional():
    texts = [nnlite.to_dot(small_graph()["loss"]) for _ in range(2)]
    assert texts[0] == texts[1]
    x = Tensor(np.array(2.0), requires_grad=True)
    z = x * 3.0
    z.backward()
    shown = nnlite.to_dot(z, names={"x": x}, show_values=True)
    assert "x\\n() float64\\nvalue 2\\ngrad 3" in shown and "value 6" in shown
    assert "value" not in nnlite.to_dot(z)


def test_double_backward_part_is_drawn_apart():
    x = Tensor(np.array([0.3, -0.4]), requires_grad=True)
    w = Tensor(np.array([[1.0, 2.0], [0.5, -1.0]]), requires_grad=True)
    d = F.tanh(w @ x).sum()                            # a tiny "critic"
    (g,) = nnlite.grad(d, x, create_graph=True)        # its gradient, recorded
    penalty = (((g * g).sum() + 1e-8).sqrt() - 1.0) ** 2
    text = nnlite.to_dot(penalty, names={"x": x, "w": w})
    nodes, _ = parse(text)
    inside = backward_cluster(text)
    functions_inside = {nodes[n][0] for n in inside if "shape=box" in nodes[n][1]}
    functions_outside = {nodes[n][0] for n in nodes if n not in inside
                         and "shape=box" in nodes[n][1]}
    # the forward (MatMul, Tanh, Sum) and the penalty (Mul, Sum, Add, Sqrt, Sub, Pow) are
    # outside; what Tanh.backward and MatMul.backward recorded is inside, labelled so
    assert {"MatMul", "Tanh", "Sum", "Mul", "Add", "Sqrt"} <= functions_outside
    assert any(label.endswith("\nTanh.backward") for label in functions_inside)
    assert any(label.endswith("\nMatMul.backward") for label in functions_inside)
    assert all("\n" in label for label in functions_inside)
    assert all("dashed" in nodes[n][1] for n in inside if "shape=box" in nodes[n][1])
    # ground truth from the graph itself: the cluster holds exactly the calls backward_of marks
    marked, stack, seen = 0, [penalty], set()
    while stack:
        t = stack.pop()
        f = t.creator
        if f is None or id(f) in seen:
            continue
        seen.add(id(f))
        marked += f.backward_of is not None
        stack.extend(f.inputs)
    assert marked == len([n for n in inside if "shape=box" in nodes[n][1]]) > 0


def test_backward_of_is_set_only_inside_a_create_graph_backward():
    x = Tensor(np.array([0.3, 0.7]), requires_grad=True)
    y = F.exp(x) * x
    (g,) = nnlite.grad(y.sum(), x, create_graph=True)
    assert g.creator.backward_of in {"gradient sum", "Exp.backward", "Mul.backward"}
    after = g * 2.0                                   # user code again: forward
    assert after.creator.backward_of is None and y.creator.backward_of is None
    (plain,) = nnlite.grad(F.exp(x).sum(), x)         # create_graph=False: nothing recorded
    assert plain.creator is None
    assert nnlite.to_dot(plain).count("shape=") == 1  # a lone leaf


def test_bad_arguments_are_reported():
    with pytest.raises(TypeError, match="expected an nnlite Tensor, got ndarray"):
        nnlite.to_dot(np.ones(3))
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"names\['x'\] must be a Tensor"):
        nnlite.to_dot(x * 2.0, names={"x": 1.0})
    with pytest.raises(ValueError, match="rankdir must be 'LR' or 'TB', got 'XY'"):
        nnlite.to_dot(x * 2.0, rankdir="XY")
    assert "rankdir=TB;" in nnlite.to_dot(x * 2.0, rankdir="TB")
    with pytest.raises(ValueError, match="format must be 'svg' or 'png'"):
        dot_module.render_dot("digraph {}", "jpg")


def test_without_dot_the_drawing_is_the_text(monkeypatch, tmp_path, tmp_path_factory):
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty")))   # no Graphviz `dot`
    assert not dot_module.dot_available()
    x = Tensor(np.ones(2), requires_grad=True)
    drawing = nnlite.draw_graph((x * x).sum())
    assert drawing.svg is None and drawing._repr_svg_() is None
    assert repr(drawing) == drawing.dot == nnlite.to_dot((x * x).sum())
    assert drawing.save(tmp_path / "g.dot").read_text() == drawing.dot
    with pytest.raises(FileNotFoundError, match="'dot' program is not on the PATH"):
        drawing.save(tmp_path / "g.svg")
    with pytest.raises(ValueError, match="suffix must be"):
        drawing.save(tmp_path / "g.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot"]   # no temporary left


@pytest.mark.skipif(not dot_module.dot_available(), reason="Graphviz's dot is not installed")
def test_rendering_with_dot(tmp_path):
    x = Tensor(np.ones(2), requires_grad=True)
    drawing = nnlite.draw_graph((x * x).sum(), names={"x": x})
    assert drawing.svg.lstrip().startswith("<?xml") and "<svg" in drawing.svg
    assert ">x</text>" in drawing.svg and ">Mul</text>" in drawing.svg
    png = drawing.save(tmp_path / "g.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="dot failed"):
        dot_module.render_dot("digraph { this is not dot")
