"""Operations and Tensors: the nodes and edges of a gpugraph :class:`~gpugraph.Graph`.

An :class:`Operation` is created once and never changes afterwards except for its device and
control inputs (TF allows both, and the importer needs them); its attrs stay in the NodeDef proto
it came from and are decoded lazily, and so, for an imported op, are its input Tensors (the
importer has checked every edge).  A :class:`Tensor` is an ``(operation, output index)`` pair
whose dtype and static shape come from the op's OpDef and ``_output_shapes`` attr.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gpugraph import dtypes
from gpugraph.errors import GraphDefError
from gpugraph.framework import names
from gpugraph.framework.attrs import decode_attr
from gpugraph.framework.tensor_shape import TensorShape

if TYPE_CHECKING:
    from gpugraph.framework.graph import Graph


class Tensor:
    """A symbolic output of an :class:`Operation` (``tf.Tensor`` in graph mode)."""

    __slots__ = ("_op", "_value_index", "_shape", "__weakref__")

    def __init__(self, op: Operation, value_index: int):
        self._op = op
        self._value_index = value_index
        self._shape: TensorShape | None = None

    @property
    def op(self) -> Operation:
        return self._op

    @property
    def value_index(self) -> int:
        return self._value_index

    @property
    def name(self) -> str:
        return f"{self._op._name}:{self._value_index}"

    @property
    def graph(self) -> Graph:
        return self._op._graph

    @property
    def device(self) -> str:
        return self._op.device

    @property
    def dtype(self) -> dtypes.DType:
        return self._op._output_dtype(self._value_index)

    @property
    def shape(self) -> TensorShape:
        if self._shape is None:
            self._shape = self._op._output_shape(self._value_index)
        return self._shape

    def get_shape(self) -> TensorShape:
        return self.shape

    def set_shape(self, shape: Any) -> None:
        """Refines the static shape (must be compatible with the current one)."""
        self._shape = self.shape.merge_with(shape)

    def consumers(self) -> list[Operation]:
        """Operations that take this tensor as a data input, in creation order."""
        return [op for op in self._op._graph._ops if self in op._inputs]

    def _as_node_def_input(self) -> str:
        return self._op._name if self._value_index == 0 else self.name

    def __repr__(self) -> str:
        shape = self.shape
        shape_text = "<unknown>" if shape.dims is None else str(shape)
        return f"<gg.Tensor '{self.name}' shape={shape_text} dtype={self.dtype.name}>"


class Operation:
    """A node of a :class:`~gpugraph.Graph` (``tf.Operation``)."""

    __slots__ = (
        "_graph",
        "_id",
        "_name",
        "_type",
        "_def",
        "_defs",
        "_def_index",
        "_input_tuple",
        "_input_sources",
        "_control_list",
        "_device",
        "_outputs",
        "_colocation",
        "_info",
        "_types",
        "__weakref__",
    )

    def __init__(
        self,
        graph: Graph,
        node_def: Any,
        name: str,
        op_type: str,
        inputs: tuple[Tensor, ...] | None,
        control_inputs: list[Operation] | None,
        device: str,
        colocation: Sequence[bytes] | None,
        info: Any = False,
        input_sources: dict[str, Operation] | None = None,
        types: list[int] | None = None,
        node_defs: Any = None,
        index: int = 0,
    ):
        self._graph = graph
        self._id = 0
        self._name = name
        self._type = op_type
        # The NodeDef this op came from, or where to find it (``node_defs[index]``, an
        # import's GraphDef).  Only its attrs are read, and its inputs for `_inputs`; name,
        # device and `_class` live on the Operation because import rewrites them.  An import
        # leaves the NodeDef's Python object to be made on first use: 50k of them are ~10 ms
        # to make and walk in the GC pass after a big import.
        self._def = node_def
        self._defs = node_defs
        self._def_index = index
        # Data inputs: a tuple, or None with `input_sources` (the NodeDef's names -> ops) to
        # build it from the NodeDef's inputs on first use.  An import checks every edge but
        # leaves the Tensors to be made when asked for: a big import is ~15% faster that way.
        self._input_tuple = inputs
        self._input_sources = input_sources
        self._control_list = control_inputs  # None: none (the list is made on first use)
        self._device = device
        self._outputs: list[Tensor] | None = None
        self._colocation = colocation  # `_class` values after rewriting, None = absent
        self._info = graph._op_defs.info(op_type) if info is False else info
        self._types = types  # output DataType enums; None: computed on demand

    @property
    def _node_def(self) -> Any:
        node_def = self._def
        if node_def is None:
            node_def = self._def = self._defs[self._def_index]
            self._defs = None
        return node_def

    # --- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def type(self) -> str:
        return self._type

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def device(self) -> str:
        return self._device

    def _set_device(self, device: Any) -> None:
        self._device = device if isinstance(device, str) else device.to_string()

    # --- edges ----------------------------------------------------------------------------
    @property
    def _inputs(self) -> tuple[Tensor, ...]:
        inputs = self._input_tuple
        if inputs is None:
            inputs = self._input_tuple = _node_def_inputs(self._node_def.input, self._input_sources)
            self._input_sources = None
        return inputs

    @_inputs.setter
    def _inputs(self, inputs: tuple[Tensor, ...]) -> None:
        self._input_tuple = inputs
        self._input_sources = None

    @property
    def _control_inputs(self) -> list[Operation]:
        controls = self._control_list
        if controls is None:
            controls = self._control_list = []
        return controls

    @_control_inputs.setter
    def _control_inputs(self, controls: list[Operation]) -> None:
        self._control_list = controls

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return self._inputs

    @property
    def control_inputs(self) -> list[Operation]:
        return list(self._control_inputs)

    def _add_control_input(self, op: Operation) -> None:
        if op not in self._control_inputs:
            self._control_inputs.append(op)
            self._graph._bump_version()

    def _add_control_inputs(self, ops: list[Operation]) -> None:
        for op in ops:
            self._add_control_input(op)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    @property
    def outputs(self) -> list[Tensor]:
        if self._outputs is None:
            self._outputs = [Tensor(self, i) for i in range(self._num_outputs())]
        return self._outputs

    def values(self) -> tuple[Tensor, ...]:
        return tuple(self.outputs)

    def _output(self, index: int) -> Tensor | None:
        """The index-th output, or None if the op has no such output."""
        outputs = self.outputs
        return outputs[index] if 0 <= index < len(outputs) else None

    def _num_outputs(self) -> int:
        if self._info is not None:
            try:
                return self._info.num_outputs(self._attr_proto)
            except KeyError:
                pass  # an attr the count depends on is missing; fall through
        shapes = self._attr_proto("_output_shapes")
        return len(shapes.list.shape) if shapes is not None else 0

    def _output_type_enum(self, index: int) -> int | None:
        """DataType enum of output ``index`` from the OpDef, or None when it can't be known."""
        if self._types is None:
            signature = None if self._info is None else self._info.signature(self._node_def.attr)
            self._types = [] if signature is None else signature[1]
        return self._types[index] if index < len(self._types) else None

    def _output_dtype(self, index: int) -> dtypes.DType:
        enum = self._output_type_enum(index)
        try:
            return dtypes.as_dtype(enum) if enum is not None else _unknown_dtype(self)
        except TypeError:  # a type attr holding DT_INVALID or an unknown enum
            raise GraphDefError(None, self, f"Node {self.name!r} ({self.type}): output "
                                f"{index} has no valid dtype (type attr value {enum})",
                                {"node": self.name}) from None

    def _output_shape(self, index: int) -> TensorShape:
        shapes = self._attr_proto("_output_shapes")
        if shapes is not None and index < len(shapes.list.shape):
            from gpugraph.io.tensor import shape_from_proto

            return TensorShape(shape_from_proto(shapes.list.shape[index]))
        return TensorShape(None)

    # --- attrs ----------------------------------------------------------------------------
    def _attr_proto(self, name: str) -> Any | None:
        """The AttrValue proto for ``name``: the node's own, else the OpDef default."""
        attr = self._node_def.attr
        if name in attr:
            return attr[name]
        if name == "_class" and self._colocation is not None:
            return None
        if self._info is not None:
            return self._info.defaults.get(name)
        return None

    def get_attr(self, name: str) -> Any:
        """Returns the value of attr ``name`` as TF does (bytes, int, DType, protos, lists)."""
        if name == "_class" and self._colocation is not None:
            return list(self._colocation)
        value = self._attr_proto(name)
        if value is None:
            raise ValueError(f"Operation {self._name!r} has no attr named {name!r}.")
        return decode_attr(value)

    def _attr_names(self) -> list[str]:
        keys = set(self._node_def.attr.keys())
        if self._info is not None:
            keys.update(self._info.defaults)
        if self._colocation is not None:
            keys.add("_class")
        else:
            keys.discard("_class")
        return sorted(keys)

    @property
    def op_def(self) -> Any | None:
        return None if self._info is None else self._info.op_def

    @property
    def node_def(self) -> Any:
        """A fresh NodeDef proto describing this op as it is now (TF returns a copy too)."""
        return self._graph._node_def_for(self, add_shapes=False)

    def _ref_input_flags(self) -> list[bool]:
        """Per flat input: does the OpDef take it as a reference (``Ref(T)``)? [] if unknown."""
        op_def = self.op_def
        if op_def is None:
            return []
        flags: list[bool] = []
        for arg in op_def.input_arg:
            if arg.number_attr:
                count = self.get_attr(arg.number_attr)
            elif arg.type_list_attr:
                count = len(self.get_attr(arg.type_list_attr))
            else:
                count = 1
            flags.extend([arg.is_ref] * count)
        return flags

    def colocation_groups(self) -> list[bytes]:
        """The ``loc:@`` names this op is colocated with (its own name when unconstrained)."""
        groups = [c for c in (self._colocation or ()) if c.startswith(b"loc:@")]
        return groups or [f"loc:@{self._name}".encode()]

    def _colocation_targets(self) -> list[str]:
        """Names of *other* ops this op must be colocated with (TF's _GetColocationNames)."""
        targets = (names.colocation_target(c) for c in (self._colocation or ()))
        return [t for t in targets if t is not None and t != self._name]

    def __repr__(self) -> str:
        return f"<gg.Operation '{self._name}' type={self._type}>"


def _node_def_inputs(texts: Any, sources: dict[str, Operation]) -> tuple[Tensor, ...]:
    """The Tensors that NodeDef inputs ``texts`` (``x``, ``x:1``, then ``^x``) name, given the
    ops by the names the NodeDef uses.  The importer has checked every one of them."""
    inputs = []
    for text in texts:
        op = sources.get(text)
        if op is not None:
            inputs.append(op.outputs[0])
            continue
        name, index = names.split_input(text)
        if index < 0:
            break  # control inputs come last
        inputs.append(sources[name].outputs[index])
    return tuple(inputs)


def _unknown_dtype(op: Operation) -> dtypes.DType:
    """dtype of an output whose OpDef is unknown: taken from a ``T``/``dtype`` attr if any."""
    for key in ("T", "dtype", "out_type"):
        value = op._attr_proto(key)
        if value is not None and value.WhichOneof("value") == "type":
            return dtypes.as_dtype(value.type)
    return dtypes.as_dtype(0)
