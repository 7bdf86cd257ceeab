"""Graph-building functions for the few ops users create around an imported graph.

``placeholder`` (e.g. for ``input_map``), ``constant``, ``identity``, ``no_op`` and ``group``,
with ``tf.compat.v1`` signatures, added to the default graph.
"""

from __future__ import annotations

from typing import Any

from gpugraph import _proto as pb
from gpugraph import dtypes
from gpugraph.framework.graph import get_default_graph
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.framework.tensor_shape import TensorShape, as_shape


def _attr_type(dtype: Any) -> Any:
    return pb.AttrValue(type=dtypes.as_dtype(dtype).as_datatype_enum)


def _attr_shape(shape: TensorShape) -> Any:
    return pb.AttrValue(shape=shape.as_proto())


def placeholder(dtype: Any, shape: Any = None, name: str | None = None) -> Tensor:
    """A tensor that must be fed (``tf.compat.v1.placeholder``)."""
    shape = as_shape(shape)
    op = get_default_graph().create_op(
        "Placeholder", [], name=name or "Placeholder",
        attrs={"dtype": _attr_type(dtype), "shape": _attr_shape(shape)})
    out = op.outputs[0]
    out._shape = shape
    return out


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str = "Const") -> Tensor:
    """A constant tensor (``tf.constant``)."""
    from gpugraph.io.tensor import make_tensor_proto

    proto = make_tensor_proto(value, dtype=dtype, shape=shape)
    op = get_default_graph().create_op(
        "Const", [], name=name,
        attrs={"value": pb.AttrValue(tensor=proto), "dtype": pb.AttrValue(type=proto.dtype)})
    from gpugraph.io.tensor import shape_from_proto

    out = op.outputs[0]
    out._shape = TensorShape(shape_from_proto(proto.tensor_shape))
    return out


def identity(input: Tensor, name: str | None = None) -> Tensor:  # noqa: A002  (TF's name)
    """Returns a tensor with the same value (``tf.identity``)."""
    op = get_default_graph().create_op(
        "Identity", [input], name=name or "Identity", attrs={"T": _attr_type(input.dtype.base_dtype)})
    out = op.outputs[0]
    out._shape = input.shape
    return out


def no_op(name: str | None = None) -> Operation:
    """An op that does nothing; useful as a control-dependency anchor (``tf.no_op``)."""
    return get_default_graph().create_op("NoOp", [], name=name or "NoOp")


def group(*inputs: Any, name: str | None = None) -> Operation:
    """A NoOp that runs after all ``inputs`` (``tf.group``)."""
    graph = get_default_graph()
    ops = [graph._control_op(i) for i in inputs]
    with graph.control_dependencies(ops):
        return no_op(name=name or "group_deps")
