"""``import_meta_graph`` / ``export_meta_graph`` with TensorFlow's semantics.

Follows ``tf.compat.v1.train.import_meta_graph`` and ``meta_graph.import_scoped_meta_graph`` /
``export_scoped_meta_graph`` step by step (see shared/reference/tf_facts.md §2-3), with one
deliberate difference: the caller's MetaGraphDef is never modified (TF clears devices and
rewrites saver names in the proto it is given).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from google.protobuf.message import DecodeError

from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.errors import GraphDefError
from gpugraph.framework import names
from gpugraph.framework.control_flow import CondContext, WhileContext
from gpugraph.framework.device_spec import map_device
from gpugraph.framework.graph import Graph, get_default_graph
from gpugraph.framework.graph_keys import GraphKeys
from gpugraph.framework.importer import TF_VERSION, gc_paused, import_graph_def
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.framework.variables import Variable, variable_from_proto
from gpugraph.io import meta as meta_io
from gpugraph.io.node_table import node_table
from gpugraph.train.queue_runner import QueueRunner
from gpugraph.train.saver import Saver

UNBOUND_INPUT_PREFIX = "$unbound_inputs_"
GIT_VERSION = "gpugraph"  # written as tensorflow_git_version so files show who wrote them

# Collection key -> (proto class, from_proto(proto, import_scope, graph), to_proto(obj, scope)).
_PROTO_FUNCTIONS: dict[str, tuple[type, Callable, Callable]] = {}


def register_proto_function(key: str, proto_type: type, from_proto: Callable, to_proto: Callable) -> None:
    """Registers how collection ``key`` is (de)serialized, as TF's ``register_proto_function``."""
    _PROTO_FUNCTIONS[key] = (proto_type, from_proto, to_proto)


def _to_proto(obj: Any, export_scope: str | None) -> Any:
    return obj.to_proto(export_scope=export_scope)


for _key in sorted(GraphKeys._VARIABLE_COLLECTIONS | {GraphKeys.GLOBAL_STEP}):
    register_proto_function(
        _key, pb.VariableDef, lambda p, s, g: variable_from_proto(p, s, g), _to_proto)
register_proto_function(GraphKeys.SAVERS, pb.SaverDef, lambda p, s, g: Saver.from_proto(p, s), _to_proto)
register_proto_function(GraphKeys.QUEUE_RUNNERS, pb.QueueRunnerDef,
                        lambda p, s, g: QueueRunner.from_proto(p, s, g), _to_proto)
register_proto_function(GraphKeys.COND_CONTEXT, pb.CondContextDef,
                        lambda p, s, g: CondContext.from_proto(p, s), _to_proto)
register_proto_function(GraphKeys.WHILE_CONTEXT, pb.WhileContextDef,
                        lambda p, s, g: WhileContext.from_proto(p, s), _to_proto)


# --- import ------------------------------------------------------------------------------------
def import_meta_graph(meta_graph_or_file: Any, clear_devices: bool = False,
                      import_scope: str | None = None, input_map: dict | None = None,
                      return_elements: Sequence[str] | None = None, **kwargs: Any):
    """Recreates a graph saved in a ``.meta`` file or MetaGraphDef (``tf.train.import_meta_graph``).

    Args:
        meta_graph_or_file: a ``.meta`` path (binary or text), its bytes, or a MetaGraphDef
            (gpugraph's or TensorFlow's). It is never modified.
        clear_devices: ignore the device fields stored in the graph.
        import_scope: name scope to import under (names, inputs, colocation, collections).
        device_map: gpugraph's addition: rewrite the stored device fields on import, e.g.
            ``{"/job:ps/task:0": "/cpu:0", "/gpu:1": "/gpu:0"}`` (see gpugraph.placement).
        input_map: original tensor names (``"x:0"``, ``"^x"``) -> Tensors of the destination
            graph that replace them.
        return_elements: original names of ops/tensors to return (see Returns).
        **kwargs: ``graph``, ``unbound_inputs_col_name``, ``restore_collections_predicate``.

    Returns:
        The Saver built from the file's ``saver_def`` (or a new one over the imported
        variables, or None when there are none), as TF does.  When ``return_elements`` is given,
        ``(saver, elements)`` (TF computes the elements and drops them).

    Raises:
        NotFoundError: the file does not exist, or an op type is unknown.
        DataLossError: the file is truncated or corrupt.
        GraphDefError (a ValueError): the graph is malformed.
    """
    meta, wire = meta_io.load_meta_graph(meta_graph_or_file)
    device_map = kwargs.pop("device_map", None)
    # `meta` is already a private copy: skip the public entry point's second copy (~10%).
    # The collections' Variables and the Saver are part of the import: GC stays paused.
    with gc_paused(), malformed(meta_graph_or_file):
        var_list, elements = _import_private(
            meta, clear_devices, kwargs.pop("graph", None), import_scope, input_map,
            kwargs.pop("unbound_inputs_col_name", "unbound_inputs"),
            kwargs.pop("restore_collections_predicate", lambda key: True), return_elements,
            wire, device_map)
        if kwargs:
            raise TypeError(f"import_meta_graph() got unexpected arguments {sorted(kwargs)}")
        saver = _create_saver_from_imported_meta_graph(meta, import_scope, var_list)
    return saver if return_elements is None else (saver, elements)


@contextlib.contextmanager
def malformed(source: Any) -> Iterator[None]:
    """Turns what a malformed MetaGraphDef makes a reader trip over (a collection or an asset
    naming a tensor that is not there, a VariableDef or SaverDef that does not parse) into
    gpugraph errors naming the file (the import, and the SavedModel loader)."""
    try:
        yield
    except errors.OpError:
        raise
    except KeyError as e:  # TF's own KeyError and message (a collection names no tensor)
        raise MissingElementError(None, None, str(e), {"file": _source(source)}) from e
    except (ValueError, TypeError, IndexError, UnicodeDecodeError, DecodeError) as e:
        where = _source(source)
        raise GraphDefError(None, None, f"{where}: malformed meta graph: {e}",
                            {"file": where}) from e


def _source(source: Any) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "MetaGraphDef"


class MissingElementError(errors.InvalidArgumentError, KeyError):
    """A collection or signature names an element the graph does not have: TF's KeyError and
    message; ``details["file"]`` names the file."""

    def __str__(self) -> str:
        return self._message


def import_scoped_meta_graph(meta_graph_or_file: Any, clear_devices: bool = False,
                             graph: Graph | None = None, import_scope: str | None = None,
                             input_map: dict | None = None,
                             unbound_inputs_col_name: str | None = "unbound_inputs",
                             restore_collections_predicate: Callable[[str], bool] = lambda key: True):
    """Imports a MetaGraphDef and returns ``{name without scope: Variable}`` of its variables."""
    return import_scoped_meta_graph_with_return_elements(
        meta_graph_or_file, clear_devices, graph, import_scope, input_map,
        unbound_inputs_col_name, restore_collections_predicate)[0]


def import_scoped_meta_graph_with_return_elements(
    meta_graph_or_file: Any,
    clear_devices: bool = False,
    graph: Graph | None = None,
    import_scope: str | None = None,
    input_map: dict | None = None,
    unbound_inputs_col_name: str | None = "unbound_inputs",
    restore_collections_predicate: Callable[[str], bool] = lambda key: True,
    return_elements: Sequence[str] | None = None,
):
    """TF's ``import_scoped_meta_graph_with_return_elements``: ``(var_list, elements)``."""
    meta, wire = meta_io.load_meta_graph(meta_graph_or_file)
    return _import_private(meta, clear_devices, graph, import_scope, input_map,
                           unbound_inputs_col_name, restore_collections_predicate,
                           return_elements, wire)


def _import_private(meta: Any, clear_devices: bool, graph: Graph | None, import_scope: str | None,
                    input_map: dict | None, unbound_inputs_col_name: str | None,
                    restore_collections_predicate: Callable[[str], bool],
                    return_elements: Sequence[str] | None, wire: bytes | memoryview | None = None,
                    device_map: Mapping[str, str] | None = None):
    """The import proper, on a MetaGraphDef that is already gpugraph's private copy.

    ``wire``: its GraphDef's bytes, if known (see :func:`node_table`).  Cleared or mapped
    devices are applied to the import's node table; the NodeDefs keep theirs, as the ops'
    devices are what any later reader (``as_graph_def``) uses.
    """
    _check_unbound_inputs(meta, unbound_inputs_col_name, input_map)
    graph = graph or get_default_graph()
    graph_def = meta.graph_def
    table = node_table(graph_def, wire)
    if device_map:
        table.map_devices(lambda device: map_device(device, device_map))
    if clear_devices:
        table.map_devices(lambda device: "")
    scope = graph.unique_name(import_scope or "", mark_as_used=False)
    op_list = meta.meta_info_def.stripped_op_list.op if meta.HasField("meta_info_def") else None
    with graph.name_scope(import_scope or scope) as prefix:
        elements = import_graph_def(graph, graph_def, prefix=prefix[:-1] if prefix else "",
                                    input_map=input_map, return_elements=return_elements,
                                    op_list=op_list, table=table)
    _restore_collections(graph, meta, scope, unbound_inputs_col_name, restore_collections_predicate)
    variables = graph.get_collection(GraphKeys.GLOBAL_VARIABLES, scope=scope)
    var_list = {names.strip_name_scope(v.name, scope): v for v in variables}
    return var_list, elements


def _check_unbound_inputs(meta: Any, col_name: str | None, input_map: dict | None) -> None:
    if not col_name or col_name not in meta.collection_def:
        return
    col_def = meta.collection_def[col_name]
    values = [v.decode() for v in col_def.bytes_list.value] + list(col_def.node_list.value)
    if not values:
        return
    if not input_map or sorted(values) != sorted(input_map):
        missing = ",".join(v for v in values if not input_map or v not in input_map)
        raise GraphDefError(None, None, (
            f"Graph contains unbound inputs: {missing}. Must provide these inputs through input_map."))


def _restore_collections(graph: Graph, meta: Any, scope: str, unbound_col: str | None,
                         predicate: Callable[[str], bool]) -> None:
    variable_objects: dict[bytes, Variable] = {}
    trainable_known = _variables_have_trainable(meta)
    for key, col_def in sorted(meta.collection_def.items()):
        if key == unbound_col or not predicate(key):
            continue
        kind = col_def.WhichOneof("kind")
        if kind is None:
            continue  # TF logs "Cannot identify data type for collection" and skips it
        entry = _PROTO_FUNCTIONS.get(key)
        if entry is not None and kind == "bytes_list":
            _restore_proto_collection(graph, key, col_def, entry, scope, variable_objects, trainable_known)
        elif kind == "node_list":
            for value in col_def.node_list.value:
                graph.add_to_collection(key, graph.as_graph_element(names.prepend_name_scope(value, scope)))
        elif kind == "int64_list":
            for value in col_def.int64_list.value:
                graph.add_to_collection(key, int(value))
        else:
            for value in getattr(col_def, kind).value:
                graph.add_to_collection(key, _prepend_value(value, scope))


def _restore_proto_collection(graph: Graph, key: str, col_def: Any, entry: tuple, scope: str,
                              variable_objects: dict, trainable_known: bool) -> None:
    proto_type, from_proto, _ = entry
    for value in col_def.bytes_list.value:
        if key in GraphKeys._VARIABLE_COLLECTIONS and value in variable_objects:
            graph.add_to_collection(key, variable_objects[value])
            continue
        proto = proto_type.FromString(value)
        if key in GraphKeys._VARIABLE_COLLECTIONS and not trainable_known:
            proto.trainable = key == GraphKeys.TRAINABLE_VARIABLES
        obj = from_proto(proto, scope or None, graph)
        if key in GraphKeys._VARIABLE_COLLECTIONS:
            variable_objects[value] = obj
        graph.add_to_collection(key, obj)


def _prepend_value(value: Any, scope: str) -> Any:
    # TF runs every other collection value through prepend_name_scope: strings gain the scope
    # (and become str); anything else (floats, Any protos) comes back unchanged; with no scope,
    # bytes stay bytes.
    if not scope or not isinstance(value, (bytes, str)):
        return value
    text = value.decode("utf-8") if isinstance(value, bytes) else value
    return re.sub(r"([\^]|loc:@|^)(.*)", r"\g<1>" + scope.rstrip("/") + r"/\g<2>", text)


def _variables_have_trainable(meta: Any) -> bool:
    version = meta.meta_info_def.tensorflow_version
    if not version:
        return True
    parts = re.findall(r"\d+", version)[:2]
    return [int(p) for p in parts] >= [1, 9] if parts else True


def _create_saver_from_imported_meta_graph(meta: Any, import_scope: str | None, var_list: dict):
    if meta.HasField("saver_def"):
        scope = import_scope
        if var_list:
            key, var = next(iter(var_list.items()))
            scope = var.name[: -len(key)] if len(var.name) > len(key) else import_scope
        return Saver(saver_def=meta.saver_def, name=scope)
    if var_list:
        return Saver()
    return None


# --- export ------------------------------------------------------------------------------------
def export_meta_graph(filename: str | os.PathLike | None = None, meta_info_def: Any = None,
                      graph_def: Any = None, saver_def: Any = None,
                      collection_list: Sequence[str] | None = None, as_text: bool = False,
                      graph: Graph | None = None, export_scope: str | None = None,
                      clear_devices: bool = False, clear_extraneous_savers: bool = False,
                      strip_default_attrs: bool = False, save_debug_info: bool = False,
                      **kwargs: Any) -> Any:
    """Returns (and writes to ``filename``) a MetaGraphDef of ``graph`` (``tf.train.export_meta_graph``).

    The file is binary (deterministic, as TF writes it) unless ``as_text``; the write is atomic.
    """
    meta, _ = export_scoped_meta_graph(
        filename=filename, meta_info_def=meta_info_def, graph_def=graph_def, graph=graph,
        export_scope=export_scope, as_text=as_text, clear_devices=clear_devices,
        saver_def=saver_def, clear_extraneous_savers=clear_extraneous_savers,
        collection_list=collection_list, strip_default_attrs=strip_default_attrs, **kwargs)
    return meta


def export_scoped_meta_graph(filename: str | os.PathLike | None = None, graph_def: Any = None,
                             graph: Graph | None = None, export_scope: str | None = None,
                             as_text: bool = False,
                             unbound_inputs_col_name: str | None = "unbound_inputs",
                             clear_devices: bool = False, saver_def: Any = None,
                             clear_extraneous_savers: bool = False,
                             strip_default_attrs: bool = False, meta_info_def: Any = None,
                             collection_list: Sequence[str] | None = None, **kwargs: Any):
    """TF's ``export_scoped_meta_graph``: returns ``(meta_graph_def, var_list)``."""
    graph = graph or get_default_graph()
    exclude = _extraneous_saver_filter(graph, saver_def) if clear_extraneous_savers else None
    if export_scope or clear_devices or clear_extraneous_savers:
        graph_def = _scoped_graph_def(graph, graph_def, export_scope, clear_devices, exclude,
                                      unbound_inputs_col_name)
    elif graph_def is None:
        graph_def = graph.as_graph_def(add_shapes=True)
    meta = create_meta_graph_def(meta_info_def, graph_def, saver_def, collection_list, graph,
                                 export_scope, exclude, clear_extraneous_savers, strip_default_attrs)
    if filename:
        meta_io.write_meta_graph_file(meta, filename, as_text)
    variables = graph.get_collection(GraphKeys.GLOBAL_VARIABLES, scope=export_scope)
    var_list = {names.strip_name_scope(v.name, export_scope): v for v in variables}
    return meta, var_list


def _scoped_graph_def(graph: Graph, graph_def: Any, export_scope: str | None, clear_devices: bool,
                      exclude: Callable[[str], bool] | None, unbound_col: str | None) -> Any:
    source = graph_def if graph_def is not None else graph.as_graph_def(add_shapes=True)
    out = pb.GraphDef()
    out.versions.CopyFrom(source.versions)
    if source.HasField("library"):
        out.library.CopyFrom(source.library)
    unbound: list[str] = []
    for node in source.node:
        if _should_include(node.name, export_scope, exclude):
            out.node.add().CopyFrom(_scoped_node_def(node, export_scope, unbound, clear_devices))
    if graph_def is None and unbound_col:
        graph.clear_collection(unbound_col)
        for name in unbound:
            graph.add_to_collection(unbound_col, name)
    return out


def _scoped_node_def(node: Any, scope: str | None, unbound: list[str], clear_devices: bool) -> Any:
    out = pb.NodeDef()
    out.CopyFrom(node)
    for i, value in enumerate(node.input):
        if scope and not value.lstrip("^").startswith(scope):
            control = "^" if value.startswith("^") else ""
            out.input[i] = f"{control}{UNBOUND_INPUT_PREFIX}{value.lstrip('^')}"
            unbound.append(out.input[i])
        else:
            out.input[i] = names.strip_name_scope(value, scope)
    out.name = names.strip_name_scope(node.name, scope)
    if "_class" in node.attr:
        kept = [names.strip_name_scope(s.decode(), scope).encode() for s in node.attr["_class"].list.s
                if not scope or s.decode().split("@")[1].startswith(scope)]
        out.attr["_class"].CopyFrom(pb.AttrValue(list=pb.AttrValue.ListValue(s=kept)))
    if node.op in ("Enter", "RefEnter") and "frame_name" in node.attr:
        frame = node.attr["frame_name"].s.decode()
        if not scope or frame.startswith(scope):
            out.attr["frame_name"].s = names.strip_name_scope(frame, scope).encode()
    if clear_devices:
        out.device = ""
    return out


def _should_include(node_or_name: Any, export_scope: str | None,
                    exclude: Callable[[str], bool] | None) -> bool:
    if isinstance(node_or_name, str):
        name = node_or_name
    else:
        name = getattr(node_or_name, "name", None)
        if not isinstance(name, str):
            return True  # TF keeps objects it doesn't know how to filter
    if exclude is not None and exclude(name):
        return False
    return name.startswith(UNBOUND_INPUT_PREFIX) or not export_scope or name.startswith(export_scope)


_SAVE_RESTORE_OPS = frozenset({"SaveV2", "Save", "SaveSlice", "LegacySave", "LegacySaveSlice",
                               "RestoreV2", "Restore", "RestoreSlice", "LegacyRestore",
                               "LegacyRestoreSlice"})


def _extraneous_saver_filter(graph: Graph, saver_def: Any) -> Callable[[str], bool] | None:
    """Names in scopes of Save/Restore ops that don't belong to ``saver_def`` (TF's rule)."""
    if saver_def is None:
        return None
    keep = saver_def.save_tensor_name.split("/")[0]
    scopes = {op.name.split("/")[0] for op in graph.get_operations() if op.type in _SAVE_RESTORE_OPS}
    drop = tuple(f"{s}/" for s in scopes if s != keep)
    return (lambda name: name.startswith(drop)) if drop else None


def create_meta_graph_def(meta_info_def: Any = None, graph_def: Any = None, saver_def: Any = None,
                          collection_list: Sequence[str] | None = None, graph: Graph | None = None,
                          export_scope: str | None = None, exclude_nodes: Any = None,
                          clear_extraneous_savers: bool = False,
                          strip_default_attrs: bool = False) -> Any:
    """Assembles a MetaGraphDef as TF's ``create_meta_graph_def`` does."""
    graph = graph or get_default_graph()
    meta = pb.MetaGraphDef()
    if meta_info_def is not None:
        meta.meta_info_def.MergeFrom(meta_info_def)
    meta.meta_info_def.tensorflow_version = TF_VERSION
    meta.meta_info_def.tensorflow_git_version = GIT_VERSION
    meta.graph_def.MergeFrom(graph_def if graph_def is not None else graph.as_graph_def(add_shapes=True))
    if not meta.meta_info_def.stripped_op_list.op:
        meta.meta_info_def.stripped_op_list.MergeFrom(
            graph._op_defs.stripped(_op_types(meta.graph_def)))
    if strip_default_attrs:
        _strip_default_attrs(graph, meta)
    if saver_def is not None:
        meta.saver_def.MergeFrom(saver_def)
    keys = collection_list if collection_list is not None else graph.get_all_collection_keys()
    for key in keys:
        override = None
        if clear_extraneous_savers and key == GraphKeys.SAVERS and saver_def is not None:
            override = [Saver.from_proto(saver_def)]
        add_collection_def(meta, key, graph, export_scope, exclude_nodes, override)
    return meta


def _op_types(graph_def: Any) -> set[str]:
    used = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        used.update(node.op for node in function.node_def)
    function_names = {f.signature.name for f in graph_def.library.function}
    return used - function_names


def _strip_default_attrs(graph: Graph, meta: Any) -> None:
    nodes = list(meta.graph_def.node)
    for function in meta.graph_def.library.function:
        nodes.extend(function.node_def)
    for node in nodes:
        info = graph._op_defs.info(node.op)
        if info is None:
            continue
        for key, default in info.defaults.items():
            if key in node.attr and node.attr[key] == default:
                del node.attr[key]
    meta.meta_info_def.stripped_default_attrs = True


def add_collection_def(meta: Any, key: Any, graph: Graph | None = None,
                       export_scope: str | None = None, exclude_nodes: Any = None,
                       override_contents: list | None = None) -> None:
    """Adds collection ``key`` of ``graph`` to ``meta`` (TF's ``add_collection_def``).

    As in TF, a collection that cannot be serialized is left out (not an error).
    """
    if not isinstance(key, (str, bytes)):
        return
    graph = graph or get_default_graph()
    items = override_contents if override_contents else graph.get_collection(key)
    items = [x for x in items if _should_include(x, export_scope, exclude_nodes)]
    if not items:
        return
    col_def = meta.collection_def[key]
    try:
        _fill_collection_def(col_def, key, items, export_scope)
    except (TypeError, ValueError, AttributeError):
        del meta.collection_def[key]  # TF: "Issue encountered when serializing"


def _fill_collection_def(col_def: Any, key: str, items: list, export_scope: str | None) -> None:
    entry = _PROTO_FUNCTIONS.get(key)
    if entry is not None:
        for item in items:
            proto = entry[2](item, export_scope)
            if proto is not None:
                col_def.bytes_list.value.append(proto.SerializeToString(deterministic=True))
        col_def.bytes_list.SetInParent()
        return
    kind = _kind_name(items[0])
    if kind == "node_list":
        values = [names.strip_name_scope(x.name, export_scope) for x in items
                  if not export_scope or x.name.startswith(export_scope)]
        col_def.node_list.value.extend(values)
    elif kind == "bytes_list":
        col_def.bytes_list.value.extend([x.encode() if isinstance(x, str) else bytes(x) for x in items])
    elif kind == "any_list":
        col_def.any_list.value.extend([_as_our_any(x) for x in items])
    else:
        getattr(col_def, kind).value.extend(items)


def _kind_name(item: Any) -> str:
    if isinstance(item, (str, bytes)):
        return "bytes_list"
    if isinstance(item, int):
        return "int64_list"
    if isinstance(item, float):
        return "float_list"
    if getattr(getattr(item, "DESCRIPTOR", None), "full_name", None) == "google.protobuf.Any":
        return "any_list"
    if isinstance(item, (Tensor, Operation, Variable)) or hasattr(item, "name"):
        return "node_list"
    raise TypeError(f"cannot serialize collection item {item!r}")


def _as_our_any(item: Any) -> Any:
    # Any values keep their type URL and bytes whichever descriptor pool built them.
    if isinstance(item, pb.Any):
        return item
    return pb.Any(type_url=item.type_url, value=item.value)
