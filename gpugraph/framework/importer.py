"""GraphDef -> Operations in a Graph, with the semantics of TF's C++ importer.

What TF's ``import_graph_def`` (GraphConstructor + ``importer._ProcessNewOps``) does, and so
does this module: version checks; an optional name prefix applied to names, inputs and ``_class``
colocation entries; ``input_map`` rewiring (the mapped node is still imported); renaming of
nodes that clash with existing ones (``w`` -> ``w_1``, by full name); nodes created in TF's
order (the GraphDef order when it is topological, else the smallest ready index first); and
devices recomputed from outer ``device`` scopes merged under each node's own device, or copied
from a colocation target.

Speed matters here (a real graph has 10^4..10^5 nodes, and reading protobuf fields from Python
costs more than anything else done per node): the fields an import reads come as columns of a
:class:`~gpugraph.io.node_table.NodeTable` (for large graphs, scanned from the wire in bulk);
one pass over them creates the ops; attrs, input Tensors and even the NodeDef objects wait
until asked for; per-op-type facts, and signatures per node-table key, come from caches.  Problems TF reports before creating anything are confirmed by the plain reference code
in :mod:`~gpugraph.framework.import_checks`, which runs only when the pass fails; colocation
and devices follow TF's rules in :mod:`~gpugraph.framework.import_devices`.
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
from gpugraph.framework.graph import GRAPH_DEF_VERSION, Graph
from gpugraph.framework.import_checks import InputMap, check_graph_def, merge_pending
from gpugraph.framework.import_devices import Colocation, assign_devices
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.io.meta import private_graph_def
from gpugraph.io.node_table import NodeTable, node_table

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


def import_graph_def(
    graph: Graph,
    graph_def: Any,
    *,
    prefix: str = "",
    input_map: Mapping[str, Any] | None = None,
    return_elements: Sequence[str] | None = None,
    op_list: Any = None,
    table: NodeTable | None = None,
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
        table: ``graph_def``'s node table, if the caller has one (from its wire bytes, or with
            devices rewritten); else it is read from the protos.

    Returns:
        The requested elements in order, or None when ``return_elements`` is None.

    Raises:
        GraphDefError (a ValueError): malformed graphs, with TF's messages.
        NotFoundError: an op type no OpDef describes.
    """
    with gc_paused():
        return _import(graph, graph_def, prefix, input_map, return_elements, op_list, table)


@contextlib.contextmanager
def gc_paused():
    """Pauses Python's cyclic GC for an import (nests: only the outermost one resumes it)."""
    # An import allocates a few objects per node and frees none of them, so Python's cyclic
    # collector runs dozens of passes over a growing heap for nothing: that was 35-50% of a
    # 50k-node import (scripts/bench_import.py).  Pause it; restore whatever state it had.
    # When a collection is due anyway (more new objects than the young generation's
    # threshold), collect the middle generation too: that walks the new objects once and moves
    # them to the oldest generation, so the collections the caller's next allocations trigger
    # don't walk them again (that was ~20 ms after a 50k-node import).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            if gc.get_count()[0] > gc.get_threshold()[0]:
                gc.collect(1)


def _import(graph: Graph, graph_def: Any, prefix: str, input_map: Mapping[str, Any] | None,
            return_elements: Sequence[str] | None, op_list: Any,
            table: NodeTable | None) -> list | None:
    graph._check_not_finalized()
    check_versions(graph_def.versions)
    if op_list is not None:
        graph._op_defs.add_op_list(op_list)
    _add_library(graph, graph_def)
    imap = InputMap(graph, input_map)
    nodes = _Nodes(table if table is not None else node_table(graph_def), imap)
    if len(nodes.known) < len(nodes.names):
        check_graph_def(graph_def, imap)  # raises: a duplicate name, or an error TF finds first
    renames = _new_names(graph, nodes, prefix)
    created, devices = _create_ops_as_tf(graph, graph_def, nodes, renames, imap)
    if imap.unused():
        missing = ", ".join(imap.unused())
        raise GraphDefError(None, None, (
            f"Attempted to map inputs that were not found in graph_def: [{missing}]"))
    assign_devices(graph, created, devices)
    if return_elements is None:
        return None
    return [_return_element(graph, nodes, renames, name) for name in return_elements]


def _add_library(graph: Graph, graph_def: Any) -> None:
    library = graph_def.library
    existing = {f.signature.name for f in graph._library.function}
    for function in library.function:
        if function.signature.name not in existing:
            graph._library.function.add().CopyFrom(function)
            graph._op_defs.add_op_list([function.signature])
    for gradient in library.gradient:
        graph._library.gradient.add().CopyFrom(gradient)


class _Nodes:
    """The GraphDef's node table, the set of its names, and how to read their inputs."""

    __slots__ = ("table", "defs", "names", "known", "parse", "_index_of")

    def __init__(self, table: NodeTable, imap: InputMap) -> None:
        self.table = table
        self.defs = table.defs
        self.names: list[str] = table.names
        self.known = set(self.names)
        self._index_of: dict[str, int] | None = None
        # Inputs are used as written ("x", "x:1", "^x"), so the plain name of a created node
        # needs no parsing, unless input_map may replace them or node names themselves look
        # like input syntax: then each input is parsed first (InputMap.parse).
        self.parse = imap.parse if imap or _odd_names(self.names) else None

    def op_type(self, name: str) -> str:
        """The op type of the node called ``name`` (a known one)."""
        if self._index_of is None:  # only waiting nodes need it
            self._index_of = {node: index for index, node in enumerate(self.names)}
        return self.table.ops[self._index_of[name]]


def _odd_names(node_names: list[str]) -> bool:
    # Over-approximates (a "^" anywhere), which only costs speed.
    joined = "\n".join(node_names)
    return ":" in joined or "^" in joined


# --- names ----------------------------------------------------------------------------------
def _new_names(graph: Graph, nodes: _Nodes, prefix: str) -> dict[str, str] | None:
    """Original name -> name in ``graph``: prefixed, then renamed where it clashes (TF C++).

    None when every node keeps its name (no prefix, an empty graph).
    """
    scope = prefix + "/" if prefix else ""
    existing = graph._by_name
    if not existing:
        return {name: scope + name for name in nodes.names} if scope else None
    renames: dict[str, str] = {}
    prefixes = _existing_prefixes(graph)
    for name in nodes.names:
        new_name = scope + name
        if new_name in existing or new_name in prefixes:
            new_name = _unique_import_name(new_name, existing, prefixes, nodes.known)
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


# --- creating the ops -----------------------------------------------------------------------
_Created = tuple[list[Operation], list[tuple[Operation, Sequence[str]]]]  # ops, device work


def _create_ops_as_tf(graph: Graph, graph_def: Any, nodes: _Nodes, renames: dict[str, str] | None,
                      imap: InputMap) -> _Created:
    """:func:`_create_ops`, failing as TF does.

    TF checks the whole GraphDef before it creates anything; the single pass meets problems in
    node order instead.  So on a failure, ask the reference checks whether TF would have
    reported something first: if so, undo the new ops and raise that.  Otherwise the failure
    is one TF meets while creating ops, and the ops created before it stay, as in TF.
    """
    ops, by_name = graph._ops, graph._by_name
    first = len(ops)
    try:
        return _create_ops(graph, nodes, renames)
    except (GraphDefError, NotFoundError, KeyError):
        try:
            check_graph_def(graph_def, imap)
        except GraphDefError as first_problem:
            for op in ops[first:]:
                del by_name[op._name]
            del ops[first:]
            graph._unmarked_imports.pop()  # this import's batch (_mark_names_used)
            raise first_problem from None
        raise


def _create_ops(graph: Graph, nodes: _Nodes, renames: dict[str, str] | None) -> _Created:
    """Creates the ops in TF's order; returns them and (op, colocation targets) for devices.

    Device work lists only the ops whose device can change: those with a NodeDef device or a
    colocation target.  The new names are marked used even when creation fails half-way.
    """
    ops = graph._ops
    first = len(ops)
    try:
        return _create_ops_in_order(graph, nodes, renames)
    finally:
        _mark_names_used(graph, ops[first:])


def _create_ops_in_order(  # noqa: PLR0912, PLR0915  (the hot loop, flat on purpose)
        graph: Graph, nodes: _Nodes, renames: dict[str, str] | None) -> _Created:
    """The hot loop of an import: its body is kept flat, as each call per node costs ~2%.

    TF's order is the GraphDef's where it is topological, else the smallest-index node whose
    inputs are all created.  TF-written GraphDefs are nearly topological (a v1 cond's Switch
    comes right after its consumers, a loop's NextIteration after its Merge), so this walks
    the nodes in GraphDef order: a node with an input not created yet waits, and one that
    stops waiting is created next (it has a smaller index than any node not yet visited).
    That is the order of a heap over all nodes, for the cost of the few that wait.
    """
    defs, node_names, known, parse = nodes.defs, nodes.names, nodes.known, nodes.parse
    table = nodes.table
    op_types, node_devices, node_inputs = table.ops, table.devices, table.inputs
    starts = table.starts
    class_keys, signature_keys = table.class_keys, table.signature_keys
    ops, by_name = graph._ops, graph._by_name
    # Original name -> op.  Without renames that is the (empty before) graph's own index.
    created: dict[str, Operation] = by_name if renames is None else {}
    waits = _Waits()
    back_edges: list[tuple[Operation, str, Any]] = []
    devices: list[tuple[Operation, Sequence[str]]] = []
    infos: dict[str, Any] = {}
    signatures: dict[int, Any] = {}
    colocation = Colocation(known, renames)
    first, visited, count = len(ops), 0, len(defs)
    while True:
        if waits.ready:
            index = heapq.heappop(waits.ready)
        elif visited < count:
            index = visited
            visited += 1
        else:
            break
        orig = node_names[index]
        texts = node_inputs[starts[index]:starts[index + 1]]
        if parse is not None:
            texts = [parse(orig, text) for text in texts]
        if texts:
            got, control_ops, unmet, bad_input = _connect(orig, texts, created, known)
            if unmet and waits.must_wait(nodes, index, texts, unmet):
                continue
        else:
            got, control_ops, unmet, bad_input = (), None, (), None
        op_type = op_types[index]
        info = infos.get(op_type)
        if info is None:
            info = infos[op_type] = _op_info(graph, orig, op_type)
        if bad_input is not None:
            raise bad_input
        if unmet:
            _check_back_edges(orig, texts, created)
        name = orig if renames is None else renames[orig]
        if signature_keys is None:  # a table read through upb: attrs from the NodeDef
            attr = defs[index].attr
            class_key = attr["_class"].SerializeToString() if "_class" in attr else None
            signature = info.signature(attr)
        else:  # nodes of one type with equal type attrs share a key (NodeTable)
            class_key = class_keys[index]
            try:
                signature = signatures[signature_keys[index]]
            except KeyError:
                signature = signatures[signature_keys[index]] = info.signature(defs[index].attr)
        classes, targets = (colocation.rewrite(defs, index, class_key, name)
                            if class_key is not None else (None, ()))
        if renames is not None and name in by_name:  # without renames, names are unique
            raise GraphDefError(None, None, f"Node '{name}' is not unique")
        device = node_devices[index]
        types = signature[1] if signature is not None else []  # what _output_type_enum reads
        if got and parse is None and not unmet:  # Tensors made on first use, from the NodeDef
            op = Operation(graph, None, name, op_type, None, control_ops or None, device,
                           classes, info, created, types, defs, index)
        else:
            inputs = _input_tensors(texts, created) if got else ()
            op = Operation(graph, None, name, op_type, inputs, control_ops or None, device,
                           classes, info, None, types, defs, index)
        if unmet:
            back_edges.append((op, orig, texts))
        elif got and signature is not None and got != signature[0]:
            _check_input_types(op, signature[0])  # raises, unless only ref-ness differs
        ops.append(op)
        op._id = len(ops)
        by_name[name] = op
        if renames is not None:
            created[orig] = op
        if device or targets:
            devices.append((op, targets))
        if waits.waiters and orig in waits.waiters:
            waits.created(orig)
    if waits.needed:
        raise GraphDefError(None, None, f"{len(waits.needed)} nodes in a cycle")
    graph._version += len(ops) - first
    for op, orig, texts in back_edges:
        # A while loop's Merge is created before the NextIteration that feeds it (TF's order).
        bad_input = _connect(orig, texts, created, known)[3]
        if bad_input is not None:
            raise bad_input
        op._inputs = _input_tensors(texts, created)
        signature = op._info.signature(op._node_def.attr)
        if signature is not None:
            _check_input_types(op, signature[0])
    return ops[first:], devices


def _mark_names_used(graph: Graph, ops: list[Operation]) -> None:
    # Graph.unique_name must not hand out imported names; the graph registers them when it
    # next looks at its names (Graph._names_in_use).  One batch per import, even empty, so a
    # rolled-back import can take back exactly its own.
    graph._unmarked_imports.append(ops)


def _op_info(graph: Graph, name: str, op_type: str) -> Any:
    info = graph._op_defs.info(op_type)
    if info is None:
        raise NotFoundError(None, None, (
            f"Op type not registered '{op_type}' in binary running on gpugraph. Make sure the Op "
            f"and Kernel are registered in the binary running in this process (node '{name}')."),
            {"node": name, "op": op_type})
    return info


def _connect(  # noqa: PLR0912  (one pass over the inputs, on the hot path)
        node_name: str, texts: Any, created: dict[str, Operation], known: set[str],
        ) -> tuple[list[int | None], list[Operation], list[str], GraphDefError | None]:
    """Checks a node's inputs against the ops created so far.

    Returns the dtype enums of its data inputs (None where unknown), its control input ops,
    the sources not created yet (once per edge), and TF's error for the first input naming an
    output its source doesn't have (not raised: a node that must wait reports it only when TF
    would create it).  ``texts`` are the NodeDef's inputs, or what :meth:`InputMap.parse`
    made of them.
    """
    types: list[int | None] = []
    controls: list[Operation] = []
    unmet: list[str] = []
    bad_input = None
    data_before_controls = -1  # number of data inputs when the first control input came
    for text in texts:
        op = created.get(text)  # the plain name of a created op: its output 0
        index = 0
        if op is None:
            if text.__class__ is not str:  # from input_map
                src, index = _parse_input(node_name, text)
            elif text.startswith("^"):
                src, index = text[1:], -1
            else:  # "x:1", inline (~15% of a real graph's inputs); the rest, with errors, parsed
                src, colon, digits = text.rpartition(":")
                if colon and digits.isdigit():
                    index = int(digits)
                else:
                    src, index = _parse_input(node_name, text)
            if index < 0:  # a control input
                if data_before_controls < 0:
                    data_before_controls = len(types)
                op = created.get(src) if src is not None else text
                if op is None:
                    unmet.append(_known_source(node_name, src, known))
                else:
                    controls.append(op)
                continue
            if src is None:  # a Tensor from input_map
                types.append(text._op._output_type_enum(text._value_index))
                continue
            op = created.get(src)
            if op is None:
                unmet.append(_known_source(node_name, src, known))
                types.append(None)
                continue
        num_outputs = op._info.fixed_num_outputs
        if num_outputs is None:
            num_outputs = len(op.outputs)
        if index < num_outputs:
            op_types = op._types  # set for every op of this import
            types.append(op_types[index] if index < len(op_types) else None)
            continue
        if bad_input is None:
            bad_input = GraphDefError(None, None, (
                f"Node '{node_name}': Connecting to invalid output {index} of source node "
                f"{_parse_input(node_name, text)[0]} which has {num_outputs} outputs."))
        types.append(None)
    if 0 <= data_before_controls < len(types):
        raise GraphDefError(None, None, (
            f"Node '{node_name}': Control dependencies must come after regular dependencies"))
    return types, controls, unmet, bad_input


def _input_tensors(texts: Any, created: dict[str, Operation]) -> tuple[Tensor | None, ...]:
    """A node's data input Tensors now (None for a source not created yet: a loop back edge)."""
    inputs: list[Tensor | None] = []
    for text in texts:
        src, index = _parse_input("", text)  # checked by _connect already
        if index < 0:
            continue
        if src is None:
            inputs.append(text)  # from input_map
            continue
        op = created.get(src)
        inputs.append(op.outputs[index] if op is not None else None)
    return tuple(inputs)


def _parse_input(node_name: str, text: Any) -> tuple[str | None, int]:
    """``(source, output index)`` of an input, index -1 for a control input; source None for
    a Tensor or Operation from input_map."""
    if isinstance(text, str):
        try:
            return names.split_input(text)
        except ValueError as e:
            raise GraphDefError(None, None, f"Node '{node_name}': {e}") from None
    if isinstance(text, tuple):
        return text
    return None, -1 if isinstance(text, Operation) else 0


def _known_source(node_name: str, src: str, known: set[str]) -> str:
    if src not in known:
        raise GraphDefError(None, None, f"Node '{node_name}': Unknown input node '{src}'")
    return src


def _sources(node_name: str, texts: Any) -> tuple[list[str], list[str]]:
    """Source names of a node's data inputs and of its control inputs (input_map's excluded)."""
    data: list[str] = []
    controls: list[str] = []
    for text in texts:
        src, index = _parse_input(node_name, text)
        if src is not None:
            (controls if index < 0 else data).append(src)
    return data, controls


class _Waits:
    """The nodes that wait for inputs not created yet, and those that stopped waiting."""

    __slots__ = ("needed", "waiters", "ready")

    def __init__(self) -> None:
        self.needed: dict[int, int] = {}  # node position -> inputs it still needs
        self.waiters: dict[str, list[int]] = {}  # source name -> waiting nodes, once per edge
        self.ready: list[int] = []  # heap of positions that stopped waiting

    def must_wait(self, nodes: _Nodes, index: int, texts: Any, unmet: list[str]) -> bool:
        """Whether a node with inputs not created yet must wait for them; if so, it waits."""
        data, controls = _sources(nodes.names[index], texts)
        total = len(data) + len(controls)
        rule = merge_pending(nodes.table.ops[index], map(nodes.op_type, data), len(controls))
        needed = (total if rule is None else rule) - (total - len(unmet))
        if needed <= 0:
            return False
        self.needed[index] = needed
        for src in unmet:
            self.waiters.setdefault(src, []).append(index)
        return True

    def created(self, name: str) -> None:
        """Node ``name`` exists now; the nodes that need nothing more become ready."""
        for consumer in self.waiters.pop(name):
            needed = self.needed.get(consumer)
            if needed is None:
                continue  # ready already (a loop Merge needs only one data input)
            if needed == 1:
                del self.needed[consumer]
                heapq.heappush(self.ready, consumer)
            else:
                self.needed[consumer] = needed - 1


def _check_back_edges(node_name: str, texts: Any, created: dict[str, Operation]) -> None:
    # A loop Merge ready before some of its inputs exist: TF fails (KeyError) when one of them
    # is a control input; its data inputs are connected after the other ops are created.
    for src in _sources(node_name, texts)[1]:
        created[src]  # noqa: B018  (raises KeyError like TF's lookup)


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
    try:
        return pb.DataType.Name(enum)[3:].lower()
    except ValueError:  # a number no DataType has (a damaged file)
        return f"unknown type {enum}"


def _return_element(graph: Graph, nodes: _Nodes, renames: dict[str, str] | None, name: str) -> Any:
    op_name, index = names.split_tensor_name(name)
    if renames is None:
        new_name = op_name if op_name in nodes.known else None
    else:
        new_name = renames.get(op_name)
    kind = "node" if index is None else "tensor"  # (TF's words for each)
    if new_name is None:
        raise GraphDefError(None, None, f"Requested return {kind} '{name}' not found in graph "
                            "def")
    op = graph._by_name[new_name]
    if index is None:
        return op
    if index >= len(op.outputs):
        raise GraphDefError(None, None, f"Invalid return output {index} of node '{op_name}', "
                            f"which has {len(op.outputs)} output(s)")
    return op.outputs[index]


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
    return import_graph_def(graph, private_graph_def(graph_def), prefix=prefix, input_map=input_map,
                            return_elements=return_elements, op_list=op_list)
