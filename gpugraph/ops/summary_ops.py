"""Summary ops (Scalar, Histogram, Tensor, Merge): serialized ``tensorflow.Summary`` protos.

Training graphs carry summaries for TensorBoard; gpugraph computes them so graphs that fetch
them run.  The Summary proto is small enough to encode directly (summary.proto: Summary.value
= 1; Value.tag = 1, Value.simple_value = 2, Value.histo = 5), with the bytes TF's C++ protobuf
writes (proto3: zero scalars left out, repeated doubles packed), and merging is concatenation,
since protobuf concatenation appends repeated fields.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.dtypes import as_dtype
from gpugraph.io.table import encode_varint
from gpugraph.ops._tensor_text import summarize_v2
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


def tensor_proto_bytes(value: np.ndarray, dtype_enum: int) -> bytes:
    """A TensorProto as TF's ``Tensor::AsProtoTensorContent`` writes it (dtype, shape, the
    raw little-endian bytes), or for strings ``AsProtoField`` (one string_val per element)."""
    dims = b"".join(_length_delimited(2, _field(1, 0, encode_varint(d)) if d else b"")
                    for d in value.shape)
    out = _field(1, 0, encode_varint(dtype_enum)) + _length_delimited(2, dims)
    if value.dtype == object:
        return out + b"".join(_length_delimited(8, e if isinstance(e, bytes) else str(e).encode())
                              for e in value.reshape(-1))
    content = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False)
    return out + (_length_delimited(4, content.tobytes()) if content.size else b"")


@op("TensorSummary", host_only=True)
def _tensor_summary(ctx: BuildContext):
    """A Summary whose one value holds the tensor under this node's name (TF's phased-out
    V1 form; V2 takes a tag and plugin metadata)."""
    name, dtype_enum = ctx.op.name.encode(), as_dtype(ctx.attr("T")).as_datatype_enum

    def kernel(tensor: Any, *_: Any) -> Any:
        entry = _length_delimited(7, name) + _length_delimited(
            8, tensor_proto_bytes(np.asarray(tensor), dtype_enum))
        return np.asarray(_length_delimited(1, entry), dtype=object)

    return kernel


@op("TensorSummaryV2", host_only=True)
def _tensor_summary_v2(ctx: BuildContext):
    node, dtype_enum = ctx.op, as_dtype(ctx.attr("T")).as_datatype_enum

    def kernel(tag: Any, tensor: Any, metadata: Any) -> Any:
        for what, value in (("tag", tag), ("serialized_summary_metadata", metadata)):
            if np.ndim(value) != 0:
                raise errors.InvalidArgumentError(None, node, f"{what} must be scalar")
        tag_bytes, meta = (np.asarray(v, dtype=object).item() for v in (tag, metadata))
        entry = (_length_delimited(1, tag_bytes)
                 + _length_delimited(8, tensor_proto_bytes(np.asarray(tensor), dtype_enum))
                 + _length_delimited(9, meta))  # (set even when empty, as TF's kernel does)
        return np.asarray(_length_delimited(1, entry), dtype=object)

    return kernel


@op("MergeSummary", host_only=True)
def _merge_summary(ctx: BuildContext):
    def kernel(*inputs: Any) -> Any:
        merged = b"".join(bytes(np.asarray(i, dtype=object).reshape(-1)[0]) for i in inputs)
        return np.asarray(merged, dtype=object)

    return kernel


def _default_buckets() -> list[float]:
    # histogram.cc InitDefaultBuckets: +-1e-12 growing by 10% up to 1e20, +-DBL_MAX, and 0.
    positive = []
    v = 1.0e-12
    while v < 1.0e20:
        positive.append(v)
        v *= 1.1
    positive.append(sys.float_info.max)
    return [-x for x in reversed(positive)] + [0.0] + positive


_BUCKETS = _default_buckets()
_LIMITS = np.asarray(_BUCKETS)


def _double(number: int, value: float) -> bytes:
    bits = struct.pack("<d", value)
    return _field(number, 1, bits) if bits != bytes(8) else b""


def histogram_proto(values: np.ndarray) -> bytes:
    """A serialized HistogramProto of float64 ``values`` (histogram.cc Add + EncodeToProto)."""
    counts = np.bincount(np.searchsorted(_LIMITS, values, side="right"),
                         minlength=len(_BUCKETS)).astype(np.float64).tolist()
    limits, buckets = [], []
    i = 0
    while i < len(counts):  # runs of empty buckets collapse into their last limit
        end, count = _BUCKETS[i], counts[i]
        i += 1
        if count <= 0.0:
            while i < len(counts) and counts[i] <= 0.0:
                end, count = _BUCKETS[i], counts[i]
                i += 1
        limits.append(end)
        buckets.append(count)
    low = float(values.min()) if values.size else sys.float_info.max
    high = float(values.max()) if values.size else -sys.float_info.max
    # TF adds value by value: cumulative sums keep that order (np.sum would pair them up)
    total = float(np.cumsum(values)[-1]) if values.size else 0.0
    squares = float(np.cumsum(values * values)[-1]) if values.size else 0.0
    packed = lambda xs: struct.pack(f"<{len(xs)}d", *xs)  # noqa: E731
    return (_double(1, low) + _double(2, high) + _double(3, float(values.size))
            + _double(4, total) + _double(5, squares)
            + _length_delimited(6, packed(limits)) + _length_delimited(7, packed(buckets)))


@op("HistogramSummary", host_only=True)
def _histogram_summary(ctx: BuildContext):
    node = ctx.op

    def kernel(tag: Any, values: Any) -> Any:
        flat = np.asarray(values).astype(np.float64).reshape(-1)
        name = np.asarray(tag, dtype=object).reshape(-1)[0]
        name = name if isinstance(name, bytes) else str(name).encode()
        for problem, bad in (("Nan", np.isnan(flat)), ("Infinity", np.isinf(flat))):
            if bad.any():
                raise errors.InvalidArgumentError(
                    None, node, f"{problem} in summary histogram for: "
                    f"{name.decode(errors='replace')}")
        entry = _length_delimited(1, name) + _length_delimited(5, histogram_proto(flat))
        return np.asarray(_length_delimited(1, entry), dtype=object)

    return kernel


# --- StringFormat (tf.print, tf.strings.format) ---------------------------------------------------
@op("StringFormat", host_only=True)
def _string_format(ctx: BuildContext):
    # string_format_op.cc: each placeholder becomes its tensor's SummarizeValue(summarize, v2).
    template, placeholder = ctx.attr_or("template", b"%s"), ctx.attr_or("placeholder", b"%s")
    pieces = template.decode().split(placeholder.decode())
    summarize, node = ctx.attr_or("summarize", 3), ctx.op

    def kernel(*inputs: Any) -> Any:
        if len(pieces) - 1 != len(inputs):
            raise errors.InvalidArgumentError(
                None, node, f"num placeholders in template and num inputs must match: "
                f"{len(pieces) - 1} vs. {len(inputs)}")
        text = pieces[0]
        for value, piece in zip(inputs, pieces[1:]):
            text += summarize_v2(np.asarray(value), summarize) + piece
        return np.asarray(text.encode("utf-8", errors="surrogateescape"), dtype=object)

    return kernel
