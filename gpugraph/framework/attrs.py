"""AttrValue protos <-> Python values, decoded exactly as TF's ``Operation.get_attr`` returns them.

TF returns ``bytes`` for string attrs, ``DType`` for type attrs, lists for list attrs, and the
raw ``TensorShapeProto``/``TensorProto``/``NameAttrList`` protos for shape, tensor and func attrs.
Decoding happens lazily, on request, so importing a large graph never pays for attrs nobody reads.
"""

from __future__ import annotations

from typing import Any

from gpugraph import _proto as pb
from gpugraph import dtypes
from gpugraph.framework.tensor_shape import TensorShape

_LIST_FIELDS = ("s", "i", "f", "b", "type", "shape", "tensor", "func")


def decode_attr(value: Any) -> Any:
    """Decodes one AttrValue the way ``tf.Operation.get_attr`` does."""
    kind = value.WhichOneof("value")
    if kind is None:
        return []
    if kind == "list":
        return _decode_list(value.list)
    if kind == "type":
        return dtypes.as_dtype(value.type)
    if kind == "placeholder":
        return value.placeholder
    return getattr(value, kind)


def _decode_list(lst: Any) -> list:
    for field in _LIST_FIELDS:
        items = getattr(lst, field)
        if items:
            if field == "type":
                return [dtypes.as_dtype(t) for t in items]
            return list(items)
    return []


def to_attr_value(value: Any) -> Any:
    """The AttrValue proto for a Python value, for building ops: a DType, bool, int, float,
    str/bytes, TensorShape, or a list of DTypes or of ints."""
    if isinstance(value, dtypes.DType):
        return pb.AttrValue(type=value.as_datatype_enum)
    if isinstance(value, bool):
        return pb.AttrValue(b=value)
    if isinstance(value, int):
        return pb.AttrValue(i=value)
    if isinstance(value, float):
        return pb.AttrValue(f=value)
    if isinstance(value, (str, bytes)):
        return pb.AttrValue(s=value.encode() if isinstance(value, str) else value)
    if isinstance(value, TensorShape):
        return pb.AttrValue(shape=value.as_proto())
    items = list(value)
    if all(isinstance(v, dtypes.DType) for v in items):
        return pb.AttrValue(list=pb.AttrValue.ListValue(type=[v.as_datatype_enum for v in items]))
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return pb.AttrValue(list=pb.AttrValue.ListValue(i=items))
    raise TypeError(f"no AttrValue for {value!r}")
