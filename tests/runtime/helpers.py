"""Small graph-building helpers for runtime tests (any TF op type, attrs from Python values)."""

from __future__ import annotations

from typing import Any

from gpugraph import _proto as pb
from gpugraph import dtypes
from gpugraph.framework.graph import get_default_graph


def attr(value: Any) -> Any:
    """A Python value as an AttrValue proto (DType, bool, int, float, bytes, int/float lists)."""
    if isinstance(value, dtypes.DType):
        return pb.AttrValue(type=value.as_datatype_enum)
    if isinstance(value, bool):
        return pb.AttrValue(b=value)
    if isinstance(value, int):
        return pb.AttrValue(i=value)
    if isinstance(value, float):
        return pb.AttrValue(f=value)
    if isinstance(value, (bytes, str)):
        return pb.AttrValue(s=value.encode() if isinstance(value, str) else value)
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return pb.AttrValue(list=pb.AttrValue.ListValue(i=value))
    raise TypeError(f"no AttrValue for {value!r}")


def node(op_type: str, *inputs: Any, name: str | None = None, **attrs: Any):
    """Adds one op to the default graph; returns its Operation."""
    return get_default_graph().create_op(op_type, list(inputs), name=name,
                                         attrs={k: attr(v) for k, v in attrs.items()})


def out(op_type: str, *inputs: Any, name: str | None = None, **attrs: Any):
    """Adds one op and returns its first output."""
    return node(op_type, *inputs, name=name, **attrs).outputs[0]
