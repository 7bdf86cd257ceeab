"""What TF's GraphConstructor rejects before it creates any node, found the way TF finds it.

TF reads the whole GraphDef before creating anything, so a duplicate name, a malformed input, a
control input before a data input, an unknown input or a cycle is reported (the first one, in
that order of checks) even when a node before it could not be created either.  The importer
creates ops in a single pass and so meets problems in another order; when it meets one, it
asks :func:`check_graph_def` whether TF would have reported something else first.

This module is that reference: plain code, run only on the error path.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

from gpugraph.errors import GraphDefError
from gpugraph.framework import names
from gpugraph.framework.ops import Operation, Tensor

MERGE_OPS = ("Merge", "RefMerge")
NEXT_ITERATION_OPS = ("NextIteration", "RefNextIteration")


class InputMap:
    """``input_map`` parsed: original-name keys -> destination Tensors/Operations."""

    def __init__(self, graph: Any, input_map: Mapping[str, Any] | None):
        self.data: dict[tuple[str, int], Tensor] = {}
        self.control: dict[str, Operation] = {}
        self.used: set[str] = set()
        self.keys: dict[tuple[str, int], str] = {}
        for key, value in (input_map or {}).items():
            self._add(graph, key, value)

    def _add(self, graph: Any, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"input_map keys must be strings, got {key!r}")
        if key.startswith("^"):
            element = graph.as_graph_element(value)
            self.control[key[1:]] = element.op if isinstance(element, Tensor) else element
            self.keys[(key[1:], -1)] = key
            return
        op_name, index = names.split_input(key)
        tensor = graph.as_graph_element(value, allow_tensor=True, allow_operation=False)
        self.data[(op_name, index)] = tensor
        self.keys[(op_name, index)] = key

    def __bool__(self) -> bool:
        return bool(self.data or self.control)

    def unused(self) -> list[str]:
        return [k for k in self.keys.values() if k not in self.used]

    def parse(self, node_name: str, text: str) -> Any:
        """One NodeDef input as ``(source, index)`` (index -1 for a control input), or the
        Tensor/Operation it is mapped to (marked used).  Raises TF's error for bad syntax."""
        if text.startswith("^"):
            key = (text[1:], -1)
            mapped = self.control.get(key[0]) if self.control else None
        else:
            try:
                key = names.split_input(text)
            except ValueError as e:
                raise GraphDefError(None, None, f"Node '{node_name}': {e}") from None
            mapped = self.data.get(key) if self.data else None
        if mapped is None:
            return key
        self.used.add(self.keys[key])
        return mapped


def merge_pending(op_type: str, data_source_types: Iterable[str], num_controls: int) -> int | None:
    """Inputs a node needs before it is ready when TF's while-loop rule applies, else None.

    Matches TF: a Merge fed back by a NextIteration is ready once its control inputs and any
    one data input are done, otherwise loops could never start.
    """
    if op_type in MERGE_OPS and any(t in NEXT_ITERATION_OPS for t in data_source_types):
        return num_controls + 1
    return None


class _Node:
    """One NodeDef: its position and the sources (original names) of its inputs."""

    __slots__ = ("node_def", "index", "data", "controls")

    def __init__(self, node_def: Any, index: int):
        self.node_def = node_def
        self.index = index
        self.data: list[str] = []  # sources of data inputs not replaced by input_map
        self.controls: list[str] = []  # same for control inputs


def check_graph_def(graph_def: Any, imap: InputMap) -> None:
    """Raises the first of TF's pre-creation errors in ``graph_def``, if it has any."""
    nodes = _parse_nodes(graph_def, imap)
    _check_sources(nodes)
    _check_acyclic(nodes)


def _parse_nodes(graph_def: Any, imap: InputMap) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
    for index, node_def in enumerate(graph_def.node):
        name = node_def.name
        if name in nodes:
            raise GraphDefError(None, None, f"Node '{name}' is not unique")
        node = nodes[name] = _Node(node_def, index)
        seen_control = False
        for text in node_def.input:
            if text.startswith("^"):
                seen_control = True
            elif seen_control:
                raise GraphDefError(None, None, (
                    f"Node '{name}': Control dependencies must come after regular dependencies"))
            parsed = imap.parse(name, text)
            if isinstance(parsed, tuple):  # not replaced by input_map
                (node.controls if parsed[1] < 0 else node.data).append(parsed[0])
    return nodes


def _check_sources(nodes: dict[str, _Node]) -> None:
    for name, node in nodes.items():
        for src in (*node.data, *node.controls):
            if src not in nodes:
                raise GraphDefError(None, None, f"Node '{name}': Unknown input node '{src}'")


def _check_acyclic(nodes: dict[str, _Node]) -> None:
    """TF's "N nodes in a cycle": nodes never ready in a heap-ordered walk."""
    pending: dict[str, int] = {}
    consumers: dict[str, list[str]] = {name: [] for name in nodes}
    for name, node in nodes.items():
        sources = [*node.data, *node.controls]
        data_types = (nodes[src].node_def.op for src in node.data)
        rule = merge_pending(node.node_def.op, data_types, len(node.controls))
        pending[name] = len(sources) if rule is None else rule
        for src in sources:
            consumers[src].append(name)
    ready = [node.index for name, node in nodes.items() if pending[name] == 0]
    heapq.heapify(ready)
    by_index = list(nodes.values())
    done = 0
    while ready:
        node = by_index[heapq.heappop(ready)]
        done += 1
        for consumer in consumers[node.node_def.name]:
            pending[consumer] -= 1
            if pending[consumer] == 0:
                heapq.heappush(ready, nodes[consumer].index)
    if done < len(nodes):
        raise GraphDefError(None, None, f"{len(nodes) - done} nodes in a cycle")
