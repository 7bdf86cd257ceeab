"""Property tests of the importer on random GraphDefs (forward references, loops, colocation).

Every node keeps its name, op and inputs; ops are created in an order where every input
exists first (except the NextIteration -> Merge back edge of a loop); importing is
deterministic and idempotent through ``as_graph_def``; damaged graphs raise, never crash.
"""

from __future__ import annotations

import random

import pytest

import gpugraph as gg
from gpugraph import _proto as pb
from gpugraph.framework.importer import import_graph_def

# Every import here runs with both node tables: read through upb, and scanned from the wire.
pytestmark = pytest.mark.usefixtures("node_tables")

SEEDS = range(150)


def _node(gd, name: str, op: str, inputs: list[str], rnd: random.Random) -> None:
    n = gd.node.add(name=name, op=op)
    n.input.extend(inputs)
    if op == "Const":
        n.attr["dtype"].type = 1
        n.attr["value"].tensor.dtype = 1
    elif op in ("Identity", "NextIteration", "Enter"):
        n.attr["T"].type = 1
    elif op in ("AddN", "Merge"):
        n.attr["T"].type = 1
        n.attr["N"].i = len([i for i in inputs if not i.startswith("^")])
    if op == "Enter":
        n.attr["frame_name"].s = b"f"
    if rnd.random() < 0.3:
        n.device = rnd.choice(["/cpu:0", "/gpu:1", "/device:GPU:*"])


def _random_graph(seed: int):
    rnd = random.Random(seed)
    specs, made = [], []
    for i in range(rnd.randint(3, 30)):
        op = rnd.choice(["Const", "NoOp"] + (["Identity", "AddN"] if made else []))
        sources = [m for m in made if m[1] != "NoOp"]
        if op in ("Identity", "AddN") and not sources:
            op = "Const"
        inputs = [rnd.choice(sources)[0] for _ in range(1 if op == "Identity" else
                                                       rnd.randint(1, 3) if op == "AddN" else 0)]
        inputs += ["^" + rnd.choice(made)[0] for _ in range(rnd.choice([0, 0, 1]))] if made else []
        specs.append((f"n{i}", op, inputs))
        made.append((f"n{i}", op))
    if rnd.random() < 0.6:
        source = next((m[0] for m in made if m[1] != "NoOp"), None)
        if source:
            specs += [("L/enter", "Enter", [source]), ("L/merge", "Merge", ["L/enter", "L/next"]),
                      ("L/body", "Identity", ["L/merge"]), ("L/next", "NextIteration", ["L/body"])]
    rnd.shuffle(specs)  # forward references everywhere
    gd = pb.GraphDef()
    names = [s[0] for s in specs]
    for name, op, inputs in specs:
        _node(gd, name, op, inputs, rnd)
        if rnd.random() < 0.2:
            gd.node[-1].attr["_class"].list.s.append(b"loc:@" + rnd.choice(names).encode())
    return gd


def _import(gd):
    graph = gg.Graph()
    with graph.as_default():
        import_graph_def(graph, gd)
    return graph


@pytest.mark.parametrize("seed", SEEDS)
def test_random_graphs_import_faithfully(seed: int) -> None:
    gd = _random_graph(seed)
    graph = _import(gd)
    ops = {op.name: op for op in graph.get_operations()}
    assert set(ops) == {n.name for n in gd.node}
    exported = {n.name: n for n in graph.as_graph_def().node}
    for node in gd.node:
        assert exported[node.name].op == node.op
        assert list(exported[node.name].input) == list(node.input), node.name
    for op in graph.get_operations():
        producers = [t.op for t in op.inputs] + op.control_inputs
        for p in producers:
            back_edge = op.type == "Merge" and p.type == "NextIteration"
            assert back_edge or p._id < op._id, (p.name, op.name)
    again = _import(graph.as_graph_def())
    assert again.as_graph_def().SerializeToString(deterministic=True) == \
        graph.as_graph_def().SerializeToString(deterministic=True)
    assert _import(gd).as_graph_def() == graph.as_graph_def()


@pytest.mark.parametrize("seed", range(40))
def test_damaged_random_graphs_raise_value_errors(seed: int) -> None:
    gd = _random_graph(seed)
    rnd = random.Random(seed)
    victim = gd.node[rnd.randrange(len(gd.node))]
    kind = seed % 3
    if kind == 0:
        victim.input.append("no_such_node")
    elif kind == 1:
        victim.input.append(gd.node[0].name + ":7")
    else:
        victim.name = gd.node[0].name if victim is not gd.node[0] else gd.node[-1].name
        if len(gd.node) == 1:
            victim.input.append("no_such_node")
    with pytest.raises(ValueError):
        _import(gd)
