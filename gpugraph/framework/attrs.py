"""AttrValue protos -> Python values, exactly as TF's ``Operation.get_attr`` returns them.

TF returns ``bytes`` for string attrs, ``DType`` for type attrs, lists for list attrs, and the
raw ``TensorShapeProto``/``TensorProto``/``NameAttrList`` protos for shape, tensor and func attrs.
Decoding happens lazily, on request, so importing a large graph never pays for attrs nobody reads.
"""

from __future__ import annotations

from typing import Any

from gpugraph import dtypes

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
