"""Variable objects rebuilt from VariableDef protos (``tf.Variable`` in graph mode).

A variable is a view onto graph nodes: the variable op (``VariableV2`` for ref variables,
``VarHandleOp`` for resource ones), its initializer op, initial value and snapshot (read)
tensor.  ``from_proto``/``to_proto`` follow TF's ``RefVariable``/``ResourceVariable``; values
live in a Session (the runtime).
"""

from __future__ import annotations

from typing import Any

from gpugraph import _proto as pb
from gpugraph import dtypes
from gpugraph.framework import names
from gpugraph.framework.graph import Graph
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.framework.tensor_shape import TensorShape

_ON_READ = 3  # VariableSynchronization.ON_READ


class SaveSliceInfo:
    """Where a partitioned variable's slice sits in the full variable (``Variable.SaveSliceInfo``)."""

    def __init__(self, full_name: str, full_shape: list[int], var_offset: list[int], var_shape: list[int]):
        self.full_name = full_name
        self.full_shape = list(full_shape)
        self.var_offset = list(var_offset)
        self.var_shape = list(var_shape)

    @property
    def spec(self) -> str:
        """The ``shape_and_slices`` string TF's Saver uses, e.g. ``"6 3 3,3:0,3"``."""
        full = " ".join(str(d) for d in self.full_shape)
        slices = ":".join(f"{o},{s}" for o, s in zip(self.var_offset, self.var_shape))
        return f"{full} {slices}"

    @classmethod
    def from_proto(cls, proto: Any, import_scope: str | None = None) -> SaveSliceInfo:
        return cls(names.prepend_name_scope(proto.full_name, import_scope),
                   proto.full_shape, proto.var_offset, proto.var_shape)

    def to_proto(self, export_scope: str | None = None) -> Any | None:
        if export_scope is not None and not self.full_name.startswith(export_scope):
            return None
        return pb.SaveSliceInfoDef(
            full_name=names.strip_name_scope(self.full_name, export_scope),
            full_shape=self.full_shape, var_offset=self.var_offset, var_shape=self.var_shape)


class Variable:
    """Base of :class:`RefVariable` and :class:`ResourceVariable`."""

    is_resource = False

    def __init__(self, graph: Graph, variable_def: Any, import_scope: str | None = None):
        def element(name: str) -> Any:
            name = names.prepend_name_scope(name, import_scope)
            if ":" not in name:  # an op: a direct lookup (thousands per import of a big model)
                op = graph._by_name.get(name)
                if op is not None:
                    return op
            return graph.as_graph_element(name)

        self._graph = graph
        self._variable: Tensor = element(variable_def.variable_name)
        self._initializer_op: Operation = element(variable_def.initializer_name)
        self._initial_value: Tensor | None = (
            element(variable_def.initial_value_name) if variable_def.initial_value_name else None)
        self._snapshot: Tensor = self._find_snapshot(graph, variable_def, element)
        self._trainable = bool(variable_def.trainable)
        self._synchronization = int(variable_def.synchronization)
        self._aggregation = int(variable_def.aggregation)
        self._save_slice_info = (
            SaveSliceInfo.from_proto(variable_def.save_slice_info_def, import_scope)
            if variable_def.HasField("save_slice_info_def") else None)

    def _find_snapshot(self, graph: Graph, variable_def: Any, element: Any) -> Tensor:
        return element(variable_def.snapshot_name)

    # --- TF's public surface -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._variable.name

    @property
    def op(self) -> Operation:
        return self._variable.op

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def device(self) -> str:
        return self._variable.device

    @property
    def initializer(self) -> Operation:
        return self._initializer_op

    @property
    def initial_value(self) -> Tensor | None:
        return self._initial_value

    @property
    def trainable(self) -> bool:
        return self._trainable

    @property
    def synchronization(self) -> int:
        return self._synchronization

    @property
    def aggregation(self) -> int:
        return self._aggregation

    @property
    def dtype(self) -> dtypes.DType:
        return self._variable.dtype

    @property
    def shape(self) -> TensorShape:
        return self._variable.shape

    def get_shape(self) -> TensorShape:
        return self.shape

    def value(self) -> Tensor:
        """The snapshot tensor that reads the variable."""
        return self._snapshot

    def read_value(self) -> Tensor:
        return self._snapshot

    def _as_graph_element(self) -> Tensor:
        return self._variable

    @property
    def save_slice_info(self) -> SaveSliceInfo | None:
        return self._save_slice_info

    def _set_save_slice_info(self, info: SaveSliceInfo) -> None:
        self._save_slice_info = info

    def to_proto(self, export_scope: str | None = None) -> Any | None:
        """A VariableDef with names relative to ``export_scope`` (None if outside it)."""
        if export_scope is not None and not self._variable.name.startswith(export_scope):
            return None
        strip = lambda n: names.strip_name_scope(n, export_scope)  # noqa: E731
        var_def = pb.VariableDef(
            variable_name=strip(self._variable.name),
            initializer_name=strip(self._initializer_op.name),
            snapshot_name=strip(self._snapshot.name),
            trainable=self._trainable,
            synchronization=self._synchronization,
            aggregation=self._aggregation,
            is_resource=self.is_resource,
        )
        if self._initial_value is not None:
            var_def.initial_value_name = strip(self._initial_value.name)
        if self._save_slice_info is not None:
            slice_def = self._save_slice_info.to_proto(export_scope)
            if slice_def is not None:
                var_def.save_slice_info_def.MergeFrom(slice_def)
        return var_def

    def __repr__(self) -> str:
        return (f"<gg.Variable '{self.op.name}:0' shape={self.shape} dtype={self.dtype.base_dtype.name}>")


class RefVariable(Variable):
    """A ``VariableV2``-backed variable (TF1's default ``tf.Variable``)."""

    @property
    def dtype(self) -> dtypes.DType:
        return self._variable.dtype  # TF reports the ref dtype, e.g. float32_ref


class ResourceVariable(Variable):
    """A ``VarHandleOp``-backed variable (``use_resource=True``)."""

    is_resource = True

    def _find_snapshot(self, graph: Graph, variable_def: Any, element: Any) -> Tensor:
        # TF follows snapshot_name back to the ReadVariableOp, with a legacy fallback name.
        if variable_def.snapshot_name:
            return element(variable_def.snapshot_name)
        return graph.get_tensor_by_name(f"{self._variable.op.name}/Read/ReadVariableOp:0")

    @property
    def handle(self) -> Tensor:
        return self._variable

    @property
    def dtype(self) -> dtypes.DType:
        return self.op.get_attr("dtype")

    @property
    def shape(self) -> TensorShape:
        from gpugraph.io.tensor import shape_from_proto

        return TensorShape(shape_from_proto(self.op.get_attr("shape")))

    def _as_graph_element(self) -> Tensor:
        return self._snapshot


def variable_from_proto(variable_def: Any, import_scope: str | None = None, graph: Graph | None = None):
    """Builds a RefVariable or ResourceVariable from a VariableDef (TF's ``_from_proto_fn``)."""
    from gpugraph.framework.graph import get_default_graph

    graph = graph or get_default_graph()
    cls = ResourceVariable if variable_def.is_resource else RefVariable
    return cls(graph, variable_def, import_scope)
