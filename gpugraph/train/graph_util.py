"""Frozen graphs (``tf.compat.v1.graph_util``): ``extract_sub_graph`` and
``convert_variables_to_constants``, as TF's graph_util_impl does them, and reading a GraphDef
from a ``.pb`` (binary) or ``.pbtxt`` (text) file.

Freezing keeps the nodes the outputs need (through data and control inputs), replaces each
variable among them by a Const holding its current value in the session (same name, ``dtype``
and ``value`` attrs), and each ``ReadVariableOp`` of a resource variable by an Identity; the
result loads with ``import_graph_def`` in gpugraph and in TF alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from google.protobuf import text_format

from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.io.tensor import make_tensor_proto

_VARIABLES = ("VariableV2", "Variable", "VarHandleOp")


def read_graph_def(path: str | os.PathLike) -> Any:
    """The GraphDef in ``path``: binary, or text when it does not parse as binary.

    Raises:
        NotFoundError: no such file.
        DataLossError: neither form parses; the message names the file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise errors.NotFoundError(None, None, f"{path}; {e.strerror}", {"file": path}) from None
    graph_def = pb.GraphDef()
    try:
        graph_def.ParseFromString(data)
        if graph_def.node or not data:
            return graph_def
    except Exception:  # noqa: BLE001  (not binary: try text)
        pass
    graph_def = pb.GraphDef()
    try:
        text_format.Parse(data.decode("utf-8"), graph_def)
    except Exception as e:  # noqa: BLE001  (protobuf's errors)
        raise errors.DataLossError(None, None, f"Cannot parse GraphDef file {path} (binary or "
                                   f"text): {e}", {"file": path}) from None
    return graph_def


def _node_name(text: str) -> str:
    return text.lstrip("^").split(":")[0]


def extract_sub_graph(graph_def: Any, dest_nodes: Iterable[str]) -> Any:
    """The nodes ``dest_nodes`` need (their data and control inputs, transitively), in the
    original order; ``versions`` and ``library`` kept."""
    if isinstance(dest_nodes, str):
        raise TypeError("dest_nodes must be a list.")
    by_name = {node.name: node for node in graph_def.node}
    keep: set[str] = set()
    stack = [_node_name(n) for n in dest_nodes]
    for name in stack:
        if name not in by_name:
            raise AssertionError(f"{name} is not in graph")
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        keep.add(name)
        stack.extend(_node_name(i) for i in by_name[name].input)
    out = pb.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    out.node.extend(node for node in graph_def.node if node.name in keep)
    return out


def convert_variables_to_constants(sess: Any, input_graph_def: Any,
                                   output_node_names: Iterable[str],
                                   variable_names_whitelist: Iterable[str] | None = None,
                                   variable_names_blacklist: Iterable[str] | None = None) -> Any:
    """``input_graph_def`` cut to ``output_node_names`` with its variables as Consts of their
    values in ``sess`` (TF's ``convert_variables_to_constants``)."""
    graph_def = extract_sub_graph(input_graph_def, output_node_names)
    allow = set(variable_names_whitelist) if variable_names_whitelist is not None else None
    deny = set(variable_names_blacklist or ())
    chosen = [n for n in graph_def.node if n.op in _VARIABLES
              and (allow is None or n.name in allow) and n.name not in deny]
    values = _variable_values(sess, chosen)
    frozen = {n.name for n in chosen}
    out = pb.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        new = out.node.add()
        if node.name in frozen:
            _as_const(new, node, values[node.name])
        elif node.op == "ReadVariableOp" and _node_name(node.input[0]) in frozen:
            new.CopyFrom(node)
            new.op = "Identity"
            new.attr["T"].CopyFrom(node.attr["dtype"])
            del new.attr["dtype"]
        else:
            new.CopyFrom(node)
    return out


def _variable_values(sess: Any, nodes: list) -> dict[str, np.ndarray]:
    graph = sess.graph
    fetches = {}
    for node in nodes:
        op = graph.get_operation_by_name(node.name)
        if node.op == "VarHandleOp":  # a resource: read it through a new ReadVariableOp
            with graph.as_default():
                fetches[node.name] = graph.create_op(
                    "ReadVariableOp", [op.outputs[0]], name=f"{node.name}/frozen_read",
                    attrs={"dtype": node.attr["dtype"]}).outputs[0]
        else:
            fetches[node.name] = op.outputs[0]
    return {k: np.asarray(v) for k, v in sess.run(fetches).items()} if fetches else {}


def _as_const(new: Any, node: Any, value: np.ndarray) -> None:
    new.name, new.op = node.name, "Const"
    if node.device:
        new.device = node.device
    new.attr["dtype"].CopyFrom(node.attr["dtype"])
    new.attr["value"].tensor.CopyFrom(make_tensor_proto(value))
