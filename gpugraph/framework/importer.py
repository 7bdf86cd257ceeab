"""GraphDef -> Operations in a Graph, with the semantics of TF's C++ importer.

What TF's ``import_graph_def`` (GraphConstructor + ``importer._ProcessNewOps``) does, and so
does this module: version checks; an optional name prefix applied to names, inputs and ``_class``
colocation entries; ``input_map`` rewiring (the mapped node is still imported); renaming of
nodes that clash with existing ones (``w`` -> ``w_1``, by full name); nodes created in TF's
order (the GraphDef order when it is topological, else the smallest ready index first); and
devices recomputed from outer ``device`` scopes merged under each node's own device, or copied
from a colocation target.

Speed matters here (a real graph has 10^4..10^5 nodes): one pass builds the ops, attrs stay in
their NodeDef protos until asked for, and per-op-type facts come from a cache.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from gpugraph import _proto as pb
from gpugraph.errors import GraphDefError, NotFoundError
from gpugraph.framework import names
from gpugraph.framework.device_spec import DeviceSpec
from gpugraph.framework.graph import GRAPH_DEF_VERSION, Graph
from gpugraph.framework.ops import Operation, Tensor

TF_VERSION = "2.21.0"  # the TF release whose import rules (and version window) gpugraph follows
MIN_PRODUCER = 0
_REF = 100


def check_versions(versions: Any) -> None:
    """Rejects GraphDefs TF 2.21 would reject, with TF's messages."""
    if versions.producer < MIN_PRODUCER:
        raise GraphDefError(None, None, (
            f"GraphDef producer version {versions.producer} below min producer {MIN_PRODUCER} "
            f"supported by TensorFlow {TF_VERSION}.  Please regenerate your graph."))
    if versions.min_consumer > GRAPH_DEF_VERSION:
        raise GraphDefError(None, None, (
            f"GraphDef min consumer version {versions.min_consumer} above current version "
            f"{GRAPH_DEF_VERSION} for TensorFlow {TF_VERSION}.  Please upgrade TensorFlow."))
    if GRAPH_DEF_VERSION in versions.bad_consumers:
        raise GraphDefError(None, None, (
            f"GraphDef disallows consumer version {GRAPH_DEF_VERSION}.  Please upgrade "
            "TensorFlow: this version is likely buggy."))


class _InputMap:
    """``input_map`` parsed: original-name keys -> destination Tensors/Operations."""

    def __init__(self, graph: Graph, input_map: Mapping[str, Any] | None):
        self.data: dict[tuple[str, int], Tensor] = {}
        self.control: dict[str, Operation] = {}
        self.used: set[str] = set()
        self.keys: dict[tuple[str, int], str] = {}
        for key, value in (input_map or {}).items():
            self._add(graph, key, value)

    def _add(self, graph: Graph, key: str, value: Any) -> None:
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


class _Node:
    """One NodeDef during import: its new name and parsed inputs."""

    __slots__ = ("node_def", "index", "name", "inputs", "controls", "sources")

    def __init__(self, node_def: Any, index: int):
        self.node_def = node_def
        self.index = index
        self.name = node_def.name
        # (source original name, output index) or a pre-resolved Tensor/Operation from input_map
        self.inputs: list[Any] = []
        self.controls: list[Any] = []
        self.sources: list[str] = []  # original names of imported nodes this one depends on


def import_graph_def(
    graph: Graph,
    graph_def: Any,
    *,
    prefix: str = "",
    input_map: Mapping[str, Any] | None = None,
    return_elements: Sequence[str] | None = None,
    op_list: Any = None,
) -> list | None:
    """Imports ``graph_def`` into ``graph`` as TF's ``import_graph_def`` does.

    Args:
        graph: the destination graph.
        graph_def: a GraphDef proto (never modified).
        prefix: name scope prepended to every imported name ("" for none).
        input_map: original-name keys (``"x:0"``, ``"x"``, ``"^x"``) -> Tensors (or names) of
            ``graph`` that replace those edges.
        return_elements: original names of ops (``"x"``) or tensors (``"x:0"``) to return.
        op_list: the ``stripped_op_list`` OpDefs of the file, for op types TF doesn't register.

    Returns:
        The requested elements in order, or None when ``return_elements`` is None.

    Raises:
        GraphDefError (a ValueError): malformed graphs, with TF's messages.
        NotFoundError: an op type no OpDef describes.
    """
    with _gc_paused():
        return _import(graph, graph_def, prefix, input_map, return_elements, op_list)


@contextlib.contextmanager
def _gc_paused():
    # An import allocates ~10 objects per node and frees none of them, so Python's cyclic
    # collector runs dozens of full passes over a growing heap for nothing: that was 35-50% of
    # a 50k-node import (scripts/bench_import.py).  Pause it; restore whatever state it had.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import(graph: Graph, graph_def: Any, prefix: str, input_map: Mapping[str, Any] | None,
            return_elements: Sequence[str] | None, op_list: Any) -> list | None:
    graph._check_not_finalized()
    check_versions(graph_def.versions)
    if op_list is not None:
        graph._op_defs.add_op_list(op_list)
    _add_library(graph, graph_def)
    imap = _InputMap(graph, input_map)
    nodes = _parse_nodes(graph_def, imap)
    order = _topological_order(nodes)
    renames = _new_names(graph, nodes, order, prefix)
    created = _create_ops(graph, nodes, order, renames)
    if imap.unused():
        missing = ", ".join(imap.unused())
        raise GraphDefError(None, None, (
            f"Attempted to map inputs that were not found in graph_def: [{missing}]"))
    _assign_devices(graph, created)
    if return_elements is None:
        return None
    return [_return_element(graph, renames, name) for name in return_elements]


def _add_library(graph: Graph, graph_def: Any) -> None:
    library = graph_def.library
    existing = {f.signature.name for f in graph._library.function}
    for function in library.function:
        if function.signature.name not in existing:
            graph._library.function.add().CopyFrom(function)
            graph._op_defs.add_op_list([function.signature])
    for gradient in library.gradient:
        graph._library.gradient.add().CopyFrom(gradient)


def _parse_nodes(graph_def: Any, imap: _InputMap) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
    for index, node_def in enumerate(graph_def.node):
        node = _Node(node_def, index)
        if node.name in nodes:
            raise GraphDefError(None, None, f"Node '{node.name}' is not unique")
        nodes[node.name] = node
        _parse_inputs(node, imap)
    return nodes


def _parse_inputs(node: _Node, imap: _InputMap) -> None:
    seen_control = False
    for text in node.node_def.input:
        if text.startswith("^"):
            seen_control = True
            src = text[1:]
            mapped = imap.control.get(src)
            if mapped is not None:
                imap.used.add(imap.keys[(src, -1)])
            if mapped is not None:
                node.controls.append(mapped)
            else:
                node.controls.append(src)
                node.sources.append(src)
            continue
        if seen_control:
            raise GraphDefError(None, None, (
                f"Node '{node.name}': Control dependencies must come after regular dependencies"))
        try:
            key = names.split_input(text)
        except ValueError as e:
            raise GraphDefError(None, None, f"Node '{node.name}': {e}") from None
        mapped = imap.data.get(key)
        if mapped is not None:
            imap.used.add(imap.keys[key])
            node.inputs.append(mapped)
        else:
            node.inputs.append(key)
            node.sources.append(key[0])


def _topological_order(nodes: dict[str, _Node]) -> list[_Node]:
    """TF's GraphConstructor order: the smallest-index ready node first.

    When the GraphDef is already topological (every TF-written file is) that is file order, which
    the fast path below returns without a heap.
    """
    done: set[str] = set()
    fast = True
    for name, node in nodes.items():
        for src in node.sources:
            if src not in nodes:
                raise GraphDefError(None, None, f"Node '{name}': Unknown input node '{src}'")
            if src not in done:
                fast = False
        done.add(name)
    return list(nodes.values()) if fast else _heap_order(nodes)


def _heap_order(nodes: dict[str, _Node]) -> list[_Node]:
    pending: dict[str, int] = {}
    consumers: dict[str, list[str]] = {name: [] for name in nodes}
    for name, node in nodes.items():
        sources = node.sources
        pending[name] = _pending_count(node, nodes, sources)
        for src in sources:
            consumers[src].append(name)
    ready = [node.index for name, node in nodes.items() if pending[name] == 0]
    heapq.heapify(ready)
    by_index = list(nodes.values())
    order: list[_Node] = []
    while ready:
        node = by_index[heapq.heappop(ready)]
        order.append(node)
        for consumer in consumers[node.name]:
            pending[consumer] -= 1
            if pending[consumer] == 0:
                heapq.heappush(ready, nodes[consumer].index)
    if len(order) < len(nodes):
        stuck = len(nodes) - len(order)
        raise GraphDefError(None, None, f"{stuck} nodes in a cycle")
    return order


def _pending_count(node: _Node, nodes: dict[str, _Node], sources: list[str]) -> int:
    # Matches TF: a while-loop Merge (fed back by a NextIteration) is ready once its control
    # inputs and any one data input are done, otherwise loops could never start.
    if node.node_def.op in ("Merge", "RefMerge"):
        data = [i[0] for i in node.inputs if isinstance(i, tuple)]
        if any(nodes[src].node_def.op in ("NextIteration", "RefNextIteration") for src in data):
            return len([c for c in node.controls if isinstance(c, str)]) + 1
    return len(sources)


def _new_names(graph: Graph, nodes: dict[str, _Node], order: list[_Node], prefix: str) -> dict[str, str]:
    """Original name -> name in ``graph``: prefixed, then renamed where it clashes (TF C++)."""
    scope = prefix + "/" if prefix else ""
    existing = graph._by_name
    renames: dict[str, str] = {}
    prefixes = _existing_prefixes(graph) if existing else set()
    for node in order:
        name = scope + node.name
        if existing and (name in existing or name in prefixes):
            name = _unique_import_name(name, existing, prefixes, nodes)
        renames[node.name] = name
    return renames


def _existing_prefixes(graph: Graph) -> set[str]:
    prefixes: set[str] = set()
    for name in graph._by_name:
        while "/" in name:
            name = name.rsplit("/", 1)[0]
            if name in prefixes:
                break
            prefixes.add(name)
    return prefixes


def _unique_import_name(name: str, existing: Any, prefixes: set[str], nodes: Any) -> str:
    # TF's GraphConstructor::FindUniqueName: generated names must not collide with existing
    # nodes or scopes, nor (once suffixed) with names in the GraphDef being imported.
    count = 0
    candidate = name
    while candidate in existing or candidate in prefixes or (count > 0 and candidate in nodes):
        count += 1
        candidate = f"{name}_{count}"
    return candidate


def _create_ops(
    graph: Graph,
    nodes: dict[str, _Node],
    order: list[_Node],
    renames: dict[str, str],
) -> list[Operation]:
    # The hot loop of an import: one Operation per node, edges resolved, types checked.
    created: dict[str, Operation] = {}
    result: list[Operation] = []
    back_edges: list[tuple[Operation, _Node]] = []
    info_of = graph._op_defs.info
    by_name, ops_list, names_in_use = graph._by_name, graph._ops, graph._names_in_use
    for node in order:
        node_def = node.node_def
        info = info_of(node_def.op)
        if info is None:
            raise _unregistered(node)
        inputs = tuple(_resolve_input(node, src, created) for src in node.inputs)
        controls = [c if isinstance(c, Operation) else created[c] for c in node.controls]
        attr = node_def.attr
        colocation = _colocation(node_def, nodes, renames) if "_class" in attr else None
        name = renames[node.name]
        if name in by_name:
            raise GraphDefError(None, None, f"Node '{name}' is not unique")
        op = Operation(graph, node_def, name, node_def.op, inputs, controls, node_def.device,
                       colocation, info)
        signature = info.signature(attr)
        if signature is not None:
            op._types = signature[1]
        if None in inputs:
            back_edges.append((op, node))
        elif inputs and signature is not None:
            _check_input_types(op, signature[0])
        ops_list.append(op)
        op._id = len(ops_list)
        by_name[name] = op
        names_in_use.setdefault(name.lower(), 1)
        created[node.name] = op
        result.append(op)
    graph._version += len(result)
    for op, node in back_edges:
        # A while loop's Merge is created before the NextIteration that feeds it (TF's order).
        op._inputs = tuple(_resolve_input(node, src, created) for src in node.inputs)
        signature = op._info.signature(node.node_def.attr)
        if signature is not None:
            _check_input_types(op, signature[0])
    return result


def _unregistered(node: _Node) -> NotFoundError:
    op_type = node.node_def.op
    return NotFoundError(None, None, (
        f"Op type not registered '{op_type}' in binary running on gpugraph. Make sure the Op "
        f"and Kernel are registered in the binary running in this process (node '{node.name}')."),
        {"node": node.name, "op": op_type})


def _resolve_input(node: _Node, src: Any, created: dict[str, Operation]) -> Tensor | None:
    """The Tensor an input refers to; None for a loop back edge whose source comes later."""
    if isinstance(src, Tensor):
        return src
    op = created.get(src[0])
    if op is None:
        return None
    tensor = op._output(src[1])
    if tensor is None:
        raise GraphDefError(None, None, (
            f"Node '{node.name}': Connecting to invalid output {src[1]} of source node "
            f"{src[0]} which has {len(op.outputs)} outputs."))
    return tensor


def _colocation(node_def: Any, nodes: dict[str, _Node], renames: dict[str, str]) -> list[bytes] | None:
    """The node's ``_class`` entries, with targets renamed as their nodes were (prefix too)."""
    if "_class" not in node_def.attr:
        return None
    out = []
    for entry in node_def.attr["_class"].list.s:
        target = names.colocation_target(entry)
        if target is None:
            out.append(entry)
        elif target not in nodes:
            raise GraphDefError(None, None, (
                f"Node '{node_def.name}' expects to be colocated with unknown node '{target}'"))
        else:
            out.append(f"{names.COLOCATION_PREFIX}{renames[target]}".encode())
    return out


def _check_input_types(op: Operation, expected: list[int]) -> None:
    """TF rejects an edge whose dtype doesn't match the consumer's OpDef input type."""
    for i, (tensor, want) in enumerate(zip(op._inputs, expected)):
        got = tensor._op._output_type_enum(tensor._value_index)
        if got is None or got == want or (want < _REF and got - _REF == want):
            continue
        raise GraphDefError(None, None, (
            f"Input {i} of node {op._name} was passed {_type_name(got)} from {tensor.name} "
            f"incompatible with expected {_type_name(want)}."))


def _type_name(enum: int) -> str:
    # TF's C++ DataTypeString: the enum name without DT_, lower-cased ("float", "int32_ref").
    return pb.DataType.Name(enum)[3:].lower()


def _assign_devices(graph: Graph, ops: list[Operation]) -> None:
    """TF's ``importer._ProcessNewOps`` device rules."""
    colocated: list[tuple[Operation, list[str]]] = []
    outer = graph._device_stack
    for op in ops:
        original = op._device
        op._device = ""
        targets = op._colocation_targets() if op._colocation else ()
        if targets:
            colocated.append((op, targets))
        elif outer:
            if original:
                op._device = DeviceSpec.from_string(original).to_string()
            graph._apply_device_scopes(op)
        elif original:
            op._device = DeviceSpec.from_string(original).to_string()
    for op, targets in colocated:
        for target in targets:
            other = graph._by_name.get(target)
            if other is not None and other._device:
                op._device = DeviceSpec.from_string(other._device).to_string()
                break


def _return_element(graph: Graph, renames: dict[str, str], name: str) -> Any:
    op_name, index = names.split_tensor_name(name)
    new_name = renames.get(op_name)
    if new_name is None:
        raise GraphDefError(None, None, f"Requested return node '{name}' not found in graph def")
    if index is None:
        return graph._by_name[new_name]
    return graph.get_tensor_by_name(f"{new_name}:{index}")


__all__ = ["import_graph_def", "check_versions"]


def import_graph_def_v1(graph_def: Any, input_map: Mapping[str, Any] | None = None,
                        return_elements: Sequence[str] | None = None, name: str | None = None,
                        op_dict: Any = None, producer_op_list: Any = None) -> list | None:
    """``tf.compat.v1.import_graph_def``: imports into the default graph under scope ``name``.

    ``name`` defaults to ``"import"`` as in TF; pass ``""`` for no prefix.
    """
    from gpugraph.framework.graph import get_default_graph

    del op_dict  # TF ignores it too (deprecated)
    graph = get_default_graph()
    prefix = "import" if name is None else name
    if prefix:
        prefix = graph.unique_name(prefix)
    op_list = producer_op_list.op if producer_op_list is not None else None
    return import_graph_def(graph, graph_def, prefix=prefix, input_map=input_map,
                            return_elements=return_elements, op_list=op_list)
