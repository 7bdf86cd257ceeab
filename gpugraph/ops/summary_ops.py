"""Summary ops (ScalarSummary, MergeSummary): serialized ``tensorflow.Summary`` protos.

Training graphs carry summaries for TensorBoard; gpugraph computes them so graphs that fetch
them run.  The Summary proto is small enough to encode directly (summary.proto: Summary.value
= 1; Value.tag = 1, Value.simple_value = 2), and merging is concatenation, since protobuf
concatenation appends repeated fields.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.io.table import encode_varint
from gpugraph.ops.registry import BuildContext, op


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return encode_varint((number << 3) | wire) + payload


def _length_delimited(number: int, data: bytes) -> bytes:
    return _field(number, 2, encode_varint(len(data)) + data)


def scalar_summary(tags: list[bytes], values: list[float]) -> bytes:
    """A serialized Summary with one simple_value per tag."""
    out = b""
    for tag, value in zip(tags, values, strict=True):
        entry = _length_delimited(1, tag) + _field(2, 5, struct.pack("<f", value))
        out += _length_delimited(1, entry)
    return out


@op("ScalarSummary", host_only=True)
def _scalar_summary(ctx: BuildContext):
    node = ctx.op

    def kernel(tags: Any, values: Any) -> Any:
        tag_list = [t if isinstance(t, bytes) else str(t).encode() for t in
                    np.asarray(tags, dtype=object).reshape(-1)]
        value_list = [float(v) for v in np.asarray(values).reshape(-1)]
        if len(tag_list) != len(value_list):
            raise errors.InvalidArgumentError(
                None, node, f"tags and values are not the same shape: {list(np.shape(tags))} != "
                f"{list(np.shape(values))}")
        return np.asarray(scalar_summary(tag_list, value_list), dtype=object)

    return kernel


@op("MergeSummary", host_only=True)
def _merge_summary(ctx: BuildContext):
    def kernel(*inputs: Any) -> Any:
        merged = b"".join(bytes(np.asarray(i, dtype=object).reshape(-1)[0]) for i in inputs)
        return np.asarray(merged, dtype=object)

    return kernel
