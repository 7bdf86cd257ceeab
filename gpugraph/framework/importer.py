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


class _Nodes:
    """The GraphDef's nodes after the parsing pass, as parallel lists (one entry per node).

    Plain lists and tuples rather than an object per node: a 50k-node import spent a quarter
    of its time building and reading per-node objects.
    """

    __slots__ = ("defs", "names", "data", "controls", "index_of", "forward")

    def __init__(self, defs: list) -> None:
        self.defs = defs  # the NodeDef protos
        self.names: list[str] = []  # original names
        # (source original name, output index), or a Tensor from input_map
        self.data: list[Sequence[Any]] = []
        # source original names, or Operations from input_map
        self.controls: list[Sequence[Any]] = []
        self.index_of: dict[str, int] = {}  # original name -> position in the GraphDef
        # (node position, source name) for sources not before the node in the GraphDef
        # (later nodes, unknown names, the node itself), in node then input order
        self.forward: list[tuple[int, str]] = []

    def reorder(self, order: list[int]) -> None:
        """Puts the per-node lists in creation order (``index_of`` keeps GraphDef positions)."""
        self.defs = [self.defs[i] for i in order]
        self.names = [self.names[i] for i in order]
        self.data = [self.data[i] for i in order]
        self.controls = [self.controls[i] for i in order]


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
    _check_sources(nodes)
    order = _creation_order(nodes)
    if order is not None:
        nodes.reorder(order)
    renames = _new_names(graph, nodes, prefix)
    created, devices = _create_ops(graph, nodes, renames)
    if imap.unused():
        missing = ", ".join(imap.unused())
        raise GraphDefError(None, None, (
            f"Attempted to map inputs that were not found in graph_def: [{missing}]"))
    _assign_devices(graph, created, devices)
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


# --- pass 1: names and inputs ---------------------------------------------------------------
def _parse_nodes(graph_def: Any, imap: _InputMap) -> _Nodes:
    """Reads every node's name and inputs once; notes sources not yet seen in GraphDef order."""
    nodes = _Nodes(list(graph_def.node))
    names_, datas, controls, index_of = nodes.names, nodes.data, nodes.controls, nodes.index_of
    for index, node_def in enumerate(nodes.defs):
        name = node_def.name
        if name in index_of:
            raise GraphDefError(None, None, f"Node '{name}' is not unique")
        texts = node_def.input
        if texts:
            data, control = _parse_inputs(index, name, texts, imap, index_of, nodes.forward)
        else:
            data = control = ()
        names_.append(name)
        datas.append(data)
        controls.append(control)
        index_of[name] = index  # after the inputs, so a self-reference counts as forward
    return nodes


def _parse_inputs(index: int, name: str, texts: Any, imap: _InputMap, index_of: dict[str, int],
                  forward: list[tuple[int, str]]) -> tuple[Sequence[Any], Sequence[Any]]:
    data: list[Any] = []
    controls: list[Any] = []
    for text in texts:
        if text.startswith("^"):
            src = text[1:]
            mapped = imap.control.get(src) if imap.control else None
            if mapped is not None:
                imap.used.add(imap.keys[(src, -1)])
                controls.append(mapped)
                continue
            controls.append(src)
        else:
            if controls:
                raise GraphDefError(None, None, (
                    f"Node '{name}': Control dependencies must come after regular dependencies"))
            src, key = _split_data_input(name, text)
            mapped = imap.data.get(key) if imap.data else None
            if mapped is not None:
                imap.used.add(imap.keys[key])
                data.append(mapped)
                continue
            data.append(key)
        if src not in index_of:
            forward.append((index, src))
    return data or (), controls or ()


def _split_data_input(node_name: str, text: str) -> tuple[str, tuple[str, int]]:
    if ":" not in text:
        return text, (text, 0)
    try:
        key = names.split_input(text)
    except ValueError as e:
        raise GraphDefError(None, None, f"Node '{node_name}': {e}") from None
    return key[0], key


# --- creation order -------------------------------------------------------------------------
def _check_sources(nodes: _Nodes) -> None:
    index_of = nodes.index_of
    for index, src in nodes.forward:
        if src not in index_of:
            raise GraphDefError(None, None, (
                f"Node '{nodes.names[index]}': Unknown input node '{src}'"))


def _creation_order(nodes: _Nodes) -> list[int] | None:
    """TF's GraphConstructor order: the smallest-index ready node first; None for file order.

    Every TF-written GraphDef is nearly topological: only v1 control flow puts a node before an
    input (a cond's Switch after its consumers, a loop's NextIteration after its Merge).  So
    this walks the nodes in file order and only tracks those that had to wait: when nothing
    waits, a node whose inputs all come earlier is ready, and a waiting node that becomes
    ready goes next (it has a smaller index than anything not yet visited).  The result is
    the same as a heap over all nodes, for a fraction of the work.
    """
    if not nodes.forward:
        return None
    forward = {index for index, _ in nodes.forward}
    done = bytearray(len(nodes.names))
    waiting: dict[int, int] = {}  # node -> how many more of its inputs must be created first
    waiters: dict[int, list[int]] = {}  # source -> waiting nodes, once per edge
    order: list[int] = []
    for index in range(len(done)):
        if waiting or index in forward:
            sources = _source_indices(nodes, index)
            unmet = [src for src in sources if not done[src]]
            count = _pending_count(nodes, index, sources) - (len(sources) - len(unmet))
            if count > 0:
                waiting[index] = count
                for src in unmet:
                    waiters.setdefault(src, []).append(index)
                continue
        _emit(index, order, done, waiting, waiters)
    if len(order) < len(done):
        raise GraphDefError(None, None, f"{len(done) - len(order)} nodes in a cycle")
    return order


def _emit(index: int, order: list[int], done: bytearray, waiting: dict[int, int],
          waiters: dict[int, list[int]]) -> None:
    """Creates ``index`` next, then any waiting nodes that become ready, smallest first."""
    ready = [index]
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        done[node] = 1
        for consumer in waiters.pop(node, ()):
            count = waiting.get(consumer)
            if count is None:
                continue  # already ready (a loop Merge needs only one data input)
            if count == 1:
                del waiting[consumer]
                heapq.heappush(ready, consumer)
            else:
                waiting[consumer] = count - 1


def _source_indices(nodes: _Nodes, index: int) -> list[int]:
    """Positions of the node's imported sources, once per edge (data then control)."""
    index_of = nodes.index_of
    data = [index_of[src[0]] for src in nodes.data[index] if isinstance(src, tuple)]
    return data + [index_of[src] for src in nodes.controls[index] if isinstance(src, str)]


def _pending_count(nodes: _Nodes, index: int, sources: list[int]) -> int:
    # Matches TF: a while-loop Merge (fed back by a NextIteration) is ready once its control
    # inputs and any one data input are done, otherwise loops could never start.
    if nodes.defs[index].op in ("Merge", "RefMerge"):
        data = [nodes.index_of[src[0]] for src in nodes.data[index] if isinstance(src, tuple)]
        if any(nodes.defs[src].op in ("NextIteration", "RefNextIteration") for src in data):
            return len([c for c in nodes.controls[index] if isinstance(c, str)]) + 1
    return len(sources)


# --- names ----------------------------------------------------------------------------------
def _new_names(graph: Graph, nodes: _Nodes, prefix: str) -> dict[str, str]:
    """Original name -> name in ``graph``: prefixed, then renamed where it clashes (TF C++)."""
    scope = prefix + "/" if prefix else ""
    existing = graph._by_name
    if not existing:
        return {name: scope + name for name in nodes.names}
    renames: dict[str, str] = {}
    prefixes = _existing_prefixes(graph)
    for name in nodes.names:
        new_name = scope + name
        if new_name in existing or new_name in prefixes:
            new_name = _unique_import_name(new_name, existing, prefixes, nodes.index_of)
        renames[name] = new_name
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


# --- pass 2: operations ---------------------------------------------------------------------
def _create_ops(graph: Graph, nodes: _Nodes, renames: dict[str, str],
                ) -> tuple[list[Operation], list[tuple[Operation, list[str]]]]:
    """Creates the ops in order; returns them and (op, colocation targets) for device work.

    The hot loop of an import.  Device work lists only the ops whose device can change: those
    with a device in their NodeDef or a colocation target.
    """
    created: dict[str, Operation] = {}
    back_edges: list[tuple[Operation, str, Sequence[Any]]] = []
    devices: list[tuple[Operation, list[str]]] = []
    info_of = graph._op_defs.info
    colocation = _Colocation(nodes.index_of, renames)
    ops, by_name, names_in_use = graph._ops, graph._by_name, graph._names_in_use
    first = len(ops)
    for node_def, orig, data, controls in zip(nodes.defs, nodes.names, nodes.data, nodes.controls):
        op_type = node_def.op
        info = info_of(op_type)
        if info is None:
            raise _unregistered(orig, op_type)
        inputs = _resolve_inputs(orig, data, created) if data else ()
        control_ops = [c if isinstance(c, Operation) else created[c] for c in controls]
        name = renames[orig]
        attr = node_def.attr
        targets: list[str] = []
        if "_class" in attr:
            classes = colocation.rewrite(node_def, attr["_class"].list.s, name, targets)
        else:
            classes = None
        if name in by_name:
            raise GraphDefError(None, None, f"Node '{name}' is not unique")
        device = node_def.device
        op = Operation(graph, node_def, name, op_type, inputs, control_ops, device, classes, info)
        if inputs:
            _check_inputs(op, info, attr, inputs, orig, data, back_edges)
        ops.append(op)
        op._id = len(ops)
        by_name[name] = op
        names_in_use.setdefault(name.lower(), 1)
        created[orig] = op
        if device or targets:
            devices.append((op, targets))
    graph._version += len(ops) - first
    for op, orig, data in back_edges:
        # A while loop's Merge is created before the NextIteration that feeds it (TF's order).
        op._inputs = _resolve_inputs(orig, data, created)
        signature = op._info.signature(op._node_def.attr)
        if signature is not None:
            _check_input_types(op, signature[0])
    return ops[first:], devices


def _unregistered(name: str, op_type: str) -> NotFoundError:
    return NotFoundError(None, None, (
        f"Op type not registered '{op_type}' in binary running on gpugraph. Make sure the Op "
        f"and Kernel are registered in the binary running in this process (node '{name}')."),
        {"node": name, "op": op_type})


def _resolve_inputs(node_name: str, data: Sequence[Any], created: dict[str, Operation],
                    ) -> tuple[Tensor | None, ...]:
    """The Tensors of a node's data inputs; None for a loop back edge whose source comes later."""
    inputs: list[Tensor | None] = []
    for src in data:
        if not isinstance(src, tuple):
            inputs.append(src)  # from input_map
            continue
        op = created.get(src[0])
        if op is None:
            inputs.append(None)
            continue
        outputs = op._outputs
        if outputs is None:
            outputs = op.outputs
        if src[1] >= len(outputs):
            raise GraphDefError(None, None, (
                f"Node '{node_name}': Connecting to invalid output {src[1]} of source node "
                f"{src[0]} which has {len(outputs)} outputs."))
        inputs.append(outputs[src[1]])
    return tuple(inputs)


def _check_inputs(op: Operation, info: Any, attr: Any, inputs: tuple, orig: str,
                  data: Sequence[Any], back_edges: list) -> None:
    # The signature's output types are kept (ops without inputs get theirs on demand); input
    # types are checked now, or after the loop for a Merge whose back edge isn't created yet.
    signature = info.signature(attr)
    if signature is not None:
        op._types = signature[1]
    if None in inputs:
        back_edges.append((op, orig, data))
    elif signature is not None:
        _check_input_types(op, signature[0])


class _Colocation:
    """Rewrites ``_class`` entries as nodes were renamed; one lookup per distinct entry.

    Many ops share a colocation target (every op touching a variable), so each distinct
    ``loc:@name`` is decoded, checked and renamed once per import.
    """

    def __init__(self, index_of: dict[str, int], renames: dict[str, str]) -> None:
        self._index_of = index_of
        self._renames = renames
        self._cache: dict[bytes, tuple[bytes, str | None]] = {}  # entry -> (new entry, target)

    def rewrite(self, node_def: Any, entries: Any, name: str, targets: list[str]) -> list[bytes]:
        """New ``_class`` values; appends the op's new colocation targets (not itself) to ``targets``."""
        out = []
        cache = self._cache
        for entry in entries:
            hit = cache.get(entry)
            if hit is None:
                hit = cache[entry] = self._rewrite_entry(node_def, entry)
            out.append(hit[0])
            target = hit[1]
            if target is not None and target != name:
                targets.append(target)
        return out

    def _rewrite_entry(self, node_def: Any, entry: bytes) -> tuple[bytes, str | None]:
        target = names.colocation_target(entry)
        if target is None:
            return entry, None
        if target not in self._index_of:
            raise GraphDefError(None, None, (
                f"Node '{node_def.name}' expects to be colocated with unknown node '{target}'"))
        new_target = self._renames[target]
        return f"{names.COLOCATION_PREFIX}{new_target}".encode(), new_target


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


# --- devices --------------------------------------------------------------------------------
def _assign_devices(graph: Graph, ops: list[Operation],
                    devices: list[tuple[Operation, list[str]]]) -> None:
    """TF's ``importer._ProcessNewOps`` device rules.

    Without outer device scopes only ``devices`` (ops with a NodeDef device or a colocation
    target, in creation order) can change; the others keep their empty device.
    """
    if graph._device_stack:
        _assign_devices_under_scopes(graph, ops)
        return
    for op, targets in devices:
        if targets:
            op._device = ""
        else:
            op._device = DeviceSpec.from_string(op._device).to_string()
    for op, targets in devices:
        if targets:
            _copy_colocated_device(graph, op, targets)


def _assign_devices_under_scopes(graph: Graph, ops: list[Operation]) -> None:
    colocated: list[tuple[Operation, list[str]]] = []
    for op in ops:
        original = op._device
        op._device = ""
        targets = op._colocation_targets() if op._colocation else ()
        if targets:
            colocated.append((op, targets))
        else:
            if original:
                op._device = DeviceSpec.from_string(original).to_string()
            graph._apply_device_scopes(op)
    for op, targets in colocated:
        _copy_colocated_device(graph, op, targets)


def _copy_colocated_device(graph: Graph, op: Operation, targets: list[str]) -> None:
    for target in targets:
        other = graph._by_name.get(target)
        if other is not None and other._device:
            op._device = DeviceSpec.from_string(other._device).to_string()
            return


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
