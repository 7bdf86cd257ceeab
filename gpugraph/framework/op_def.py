"""OpDefs: what an op type's inputs, outputs and attrs are.

Two sources, consulted in this order: TensorFlow 2.21's own op registry, dumped by
``scripts/dump_op_defs.py`` into ``tf_op_defs.binpb`` next to this file (so gpugraph knows every
op TF knows, as TF's importer does), and the ``stripped_op_list`` a ``.meta`` carries for ops
the registry lacks (custom ops).  An :class:`OpInfo` precomputes, once per op type, what the
importer needs per node: the number of outputs and their dtypes.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from gpugraph import _proto as pb

_REGISTRY_FILE = pathlib.Path(__file__).with_name("tf_op_defs.binpb")
_REF_OFFSET = 100


@functools.cache
def tf_registry() -> dict[str, Any]:
    """TF's op registry (name -> OpDef proto), loaded once on first use."""
    if not _REGISTRY_FILE.exists():
        return {}
    op_list = pb.OpList.FromString(_REGISTRY_FILE.read_bytes())
    return {op.name: op for op in op_list.op}


AttrGetter = Callable[[str], Any]  # attr name -> AttrValue proto or None

# Ops that act on a stack, TensorArray, queue or reader through a ref or string handle (the
# TF <= 1.x names), and CountUpTo:
# their OpDefs do not say stateful, but they read and change the resource, as their V2/V3
# successors (which do say it) do; no pass may merge, cache, fold or capture them.
_HANDLE_STATE_OPS = frozenset({
    "StackPush", "StackPop", "StackClose", "TensorArrayClose", "TensorArrayCloseV2",
    "TensorArrayConcat", "TensorArrayConcatV2", "TensorArrayGather", "TensorArrayGatherV2",
    "TensorArrayPack", "TensorArrayRead", "TensorArrayReadV2", "TensorArrayScatter",
    "TensorArrayScatterV2", "TensorArraySize", "TensorArraySizeV2", "TensorArraySplit",
    "TensorArraySplitV2", "TensorArrayUnpack", "TensorArrayWrite", "TensorArrayWriteV2",
    "QueueEnqueue", "QueueEnqueueMany", "QueueDequeue", "QueueDequeueMany", "QueueDequeueUpTo",
    "QueueClose", "QueueSize", "QueueIsClosed", "ReaderRead", "ReaderReadUpTo",
    "ReaderNumRecordsProduced", "ReaderNumWorkUnitsCompleted", "ReaderReset", "CountUpTo",
    "LookupTableFind", "LookupTableInsert", "LookupTableSize", "LookupTableExport",
    "LookupTableImport", "InitializeTable", "InitializeTableFromTextFile"})


class OpInfo:
    """Facts about one op type derived from its OpDef."""

    __slots__ = (
        "op_def", "name", "fixed_num_outputs", "_inputs", "_outputs", "defaults", "is_stateful",
        "type_attrs", "_type_attr", "_signature_key", "_signatures",
    )

    def __init__(self, op_def: Any):
        self.op_def = op_def
        self.name = op_def.name
        self.is_stateful = op_def.is_stateful or op_def.name in _HANDLE_STATE_OPS
        self._inputs = tuple(op_def.input_arg)
        self._outputs = tuple(op_def.output_arg)
        variable = any(a.number_attr or a.type_list_attr for a in self._outputs)
        self.fixed_num_outputs = None if variable else len(self._outputs)
        self.defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")}
        # Attrs the input/output types and counts depend on; nodes agreeing on them share one
        # signature, so the importer computes each signature once per graph, not once per node.
        fields = {(name, kind) for arg in (*self._inputs, *self._outputs)
                  for name, kind in ((arg.type_attr, "type"), (arg.number_attr, "i"),
                                     (arg.type_list_attr, "list")) if name}
        self.type_attrs = tuple(sorted({name for name, _ in fields}))
        # Most ops have exactly one such attr, a type ("T", "dtype"): its enum is the key.
        only = next(iter(fields)) if len(fields) == 1 else None
        self._type_attr = only[0] if only is not None and only[1] == "type" else None
        self._signature_key = _key_function(tuple(sorted(fields)))
        self._signatures: dict[Any, tuple[list[int], list[int]] | None] = {}

    def signature(self, attr_map: Any) -> tuple[list[int], list[int]] | None:
        """(input types, output types) of a node with NodeDef attr map ``attr_map``, cached.

        None when an attr the types depend on is missing (TF would reject the node later).
        """
        name = self._type_attr
        if name is not None:  # inline: this runs once per node of an import
            key = attr_map[name].type if name in attr_map else None
        else:
            key = self._signature_key(attr_map)
        try:
            return self._signatures[key]
        except KeyError:
            pass
        getter = lambda name: attr_map[name] if name in attr_map else self.defaults.get(name)  # noqa: E731
        try:
            sig = (_flat_types(self._inputs, getter), _flat_types(self._outputs, getter))
        except KeyError:
            sig = None
        self._signatures[key] = sig
        return sig

    def num_outputs(self, attr: AttrGetter) -> int:
        if self.fixed_num_outputs is not None:
            return self.fixed_num_outputs
        return sum(_arg_count(arg, attr) for arg in self._outputs)


def _key_function(fields: tuple[tuple[str, str], ...]) -> Callable[[Any], Any]:
    """attr map -> a hashable key that fixes every AttrValue field the signature reads.

    The signature reads only ``.type`` of type attrs, ``.i`` of number attrs and ``.list.type``
    of type-list attrs (absent ones fall back to OpDef defaults), so those fields, with None for
    an absent attr, are an exact key, several times cheaper to read than serializing the
    AttrValues.
    """
    def key(attr_map: Any) -> tuple:
        values = []
        for name, kind in fields:
            if name not in attr_map:
                values.append(None)
            elif kind == "type":
                values.append(attr_map[name].type)
            elif kind == "i":
                values.append(attr_map[name].i)
            else:
                values.append(tuple(attr_map[name].list.type))
        return tuple(values)

    return key


def _flat_types(args: tuple, attr: AttrGetter) -> list[int]:
    types: list[int] = []
    for arg in args:
        arg_types = _arg_types(arg, attr)
        if arg.is_ref:
            arg_types = [t + _REF_OFFSET if 0 < t < _REF_OFFSET else t for t in arg_types]
        types.extend(arg_types)
    return types


def _attr_value(attr: AttrGetter, name: str) -> Any:
    value = attr(name)
    if value is None:
        raise KeyError(name)
    return value


def _arg_count(arg: Any, attr: AttrGetter) -> int:
    if arg.number_attr:
        return int(_attr_value(attr, arg.number_attr).i)
    if arg.type_list_attr:
        return len(_attr_value(attr, arg.type_list_attr).list.type)
    return 1


def _arg_types(arg: Any, attr: AttrGetter) -> list[int]:
    if arg.type_list_attr:
        return list(_attr_value(attr, arg.type_list_attr).list.type)
    if arg.type:
        base = [int(arg.type)]
    else:
        base = [int(_attr_value(attr, arg.type_attr).type)]
    return base * _arg_count(arg, attr) if arg.number_attr else base


class OpDefLibrary:
    """OpDefs available to one graph: TF's registry first, then ones the graph's files carried."""

    def __init__(self) -> None:
        self._extra: dict[str, Any] = {}
        self._infos: dict[str, OpInfo | None] = {}

    def add_op_list(self, op_defs: Any) -> None:
        """Remembers OpDefs from a ``stripped_op_list`` for types TF's registry lacks."""
        registry = tf_registry()
        for op_def in op_defs:
            if op_def.name not in registry and op_def.name not in self._extra:
                self._extra[op_def.name] = op_def
                self._infos.pop(op_def.name, None)

    def get(self, op_type: str) -> Any | None:
        return tf_registry().get(op_type) or self._extra.get(op_type)

    def info(self, op_type: str) -> OpInfo | None:
        try:
            return self._infos[op_type]
        except KeyError:
            op_def = self.get(op_type)
            info = self._infos[op_type] = OpInfo(op_def) if op_def is not None else None
            return info

    def stripped(self, op_types: Mapping[str, Any] | set[str]) -> Any:
        """An OpList for ``op_types``, sorted by name, docs removed (TF's stripped_op_list)."""
        op_list = pb.OpList()
        for name in sorted(op_types):
            op_def = self.get(name)
            if op_def is None:
                continue  # TF silently skips ops it has no OpDef for.
            stripped = op_list.op.add()
            stripped.CopyFrom(op_def)
            _strip_docs(stripped)
        return op_list


def _strip_docs(op_def: Any) -> None:
    op_def.ClearField("summary")
    op_def.ClearField("description")
    for arg in (*op_def.input_arg, *op_def.output_arg):
        arg.ClearField("description")
    for attr in op_def.attr:
        attr.ClearField("description")
