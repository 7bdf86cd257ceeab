"""``tf.train.Example`` parsing: ParseExample, ParseExampleV2 and ParseSingleExample (host ops,
as TF's).

Each serialized Example maps feature keys to a list of floats, int64s or bytes.  A *dense*
feature gives one tensor per example of its ``dense_shape`` (from the example, else from its
default; a shape whose first dimension is unknown takes any multiple of the rest and is padded
with the default to the longest in the batch, as ``FixedLenSequenceFeature``); a *sparse* one
gives the (indices, values, dense_shape) of a SparseTensor over the batch.  Ragged features
(ParseExampleV2's ``ragged_keys``) give values and row splits.  Messages are TF's
(example_proto_fast_parsing.cc).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.ops.registry import BuildContext, op

_Example = pb.message_class("tensorflow.Example")
_KINDS = {np.dtype(np.float32): ("float_list", "float"),
          np.dtype(np.int64): ("int64_list", "int64"), np.dtype(object): ("bytes_list", "string")}


def _texts(value: Any) -> list[bytes]:
    return [v if isinstance(v, bytes) else str(v).encode()
            for v in np.asarray(value, dtype=object).reshape(-1)]


def _parse(node: Any, blobs: list[bytes]) -> list[Any]:
    examples = []
    for index, blob in enumerate(blobs):
        example = _Example()
        try:
            example.ParseFromString(blob)
        except Exception:  # noqa: BLE001  (protobuf's DecodeError)
            raise errors.InvalidArgumentError(
                None, node, f"Could not parse example input, value: '{blob[:64]!r}'") from None
        examples.append(example)
    return examples


def _values(node: Any, example: Any, key: bytes, dtype: np.dtype, index: int) -> Any:
    """The values of feature ``key`` (None when the example lacks it)."""
    name = key.decode("utf-8", "replace")
    feature = example.features.feature.get(name)
    if feature is None or feature.WhichOneof("kind") is None:
        return None
    field, type_name = _KINDS[dtype]
    kind = feature.WhichOneof("kind")
    if kind != field:
        raise errors.InvalidArgumentError(
            None, node, f"Name: <unknown>, Key: {name}, Index: {index}.  Data types don't match. "
            f"Data type: {_KINDS_BY_FIELD[kind]} Expected type: {type_name}")
    values = list(getattr(feature, kind).value)
    if dtype == np.dtype(object):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return np.asarray(values, dtype=dtype)


_KINDS_BY_FIELD = {"float_list": "float", "int64_list": "int64", "bytes_list": "string"}


def _dense(node: Any, examples: list, key: bytes, dtype: np.dtype, shape: tuple,
           default: np.ndarray) -> np.ndarray:
    name = key.decode("utf-8", "replace")
    variable = bool(shape) and shape[0] is None  # (FixedLenSequenceFeature)
    inner = tuple(shape[1:]) if variable else tuple(shape)
    size = int(np.prod(inner)) if inner else 1
    rows = []
    for index, example in enumerate(examples):
        values = _values(node, example, key, dtype, index)
        if values is None:
            if default.size == 0 and not variable:
                raise errors.InvalidArgumentError(
                    None, node, f"Name: <unknown>, Feature: {name} (data type: "
                    f"{_KINDS[dtype][1]}) is required but could not be found.")
            values = np.zeros(0, dtype=dtype) if variable else \
                np.broadcast_to(default, inner).reshape(-1)
        if variable:
            if values.size % size:
                raise errors.InvalidArgumentError(
                    None, node, f"Name: <unknown>, Key: {name}, Index: {index}.  Number of "
                    f"{_KINDS[dtype][1]} values is not a multiple of stride length. Saw "
                    f"{values.size} values but output shape is: {list(inner)}")
            rows.append(values.reshape(-1, *inner))
        else:
            if values.size != size:
                raise errors.InvalidArgumentError(
                    None, node, f"Name: <unknown>, Key: {name}, Index: {index}.  Number of "
                    f"{_KINDS[dtype][1]} values != expected.  Values size: {values.size} but "
                    f"output shape: {list(inner)}")
            rows.append(values.reshape(inner))
    if not variable:
        return np.stack(rows) if rows else np.zeros((0, *inner), dtype=dtype)
    longest = max((r.shape[0] for r in rows), default=0)
    fill = default.reshape(-1)[0] if default.size else np.zeros((), dtype=dtype)
    out = np.empty((len(rows), longest, *inner), dtype=dtype)
    out[...] = fill
    for i, r in enumerate(rows):
        out[i, :r.shape[0]] = r
    return out


def _sparse(node: Any, examples: list, key: bytes, dtype: np.dtype) -> tuple:
    indices, values, longest = [], [], 0
    for index, example in enumerate(examples):
        got = _values(node, example, key, dtype, index)
        if got is None:
            continue
        longest = max(longest, got.size)
        indices.extend((index, k) for k in range(got.size))
        values.append(got)
    flat = np.concatenate(values) if values else np.zeros(0, dtype=dtype)
    return (np.asarray(indices, dtype=np.int64).reshape(-1, 2), flat.astype(dtype, copy=False),
            np.asarray([len(examples), longest], dtype=np.int64))


def _ragged(node: Any, examples: list, key: bytes, dtype: np.dtype, splits: np.dtype) -> tuple:
    rows = [_values(node, e, key, dtype, i) for i, e in enumerate(examples)]
    rows = [np.zeros(0, dtype=dtype) if r is None else r for r in rows]
    bounds = np.cumsum([0] + [r.size for r in rows]).astype(splits)
    flat = np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)
    return flat.astype(dtype, copy=False), bounds


def _shapes(ctx: BuildContext) -> list[tuple]:
    return [tuple(None if d.size < 0 else d.size for d in s.dim) for s in
            ctx.attr_or("dense_shapes", [])]


def _parse_batch(node: Any, blobs: list[bytes], sparse: list, dense: list, ragged: list) -> list:
    """The outputs, in TF's order: sparse indices, values, shapes; dense; ragged values,
    splits.  ``sparse``: (key, dtype); ``dense``: (key, dtype, shape, default); ``ragged``:
    (key, dtype, split dtype)."""
    examples = _parse(node, blobs)
    parts = [_sparse(node, examples, k, t) for k, t in sparse]
    out = [p[0] for p in parts] + [p[1] for p in parts] + [p[2] for p in parts]
    out += [_dense(node, examples, k, t, s, d) for k, t, s, d in dense]
    pieces = [_ragged(node, examples, k, t, s) for k, t, s in ragged]
    return out + [p[0] for p in pieces] + [p[1] for p in pieces]


@op("ParseExample", host_only=True)
def _parse_example(ctx: BuildContext):
    node, nsparse, ndense = ctx.op, ctx.attr("Nsparse"), ctx.attr("Ndense")
    sparse_types = [np.dtype(t) for t in ctx.attr_or("sparse_types", [])]
    dense_types = [np.dtype(t) for t in ctx.attr_or("Tdense", [])]
    shapes = _shapes(ctx)

    def kernel(serialized: Any, _names: Any, *rest: Any) -> list:
        sparse_keys = [_texts(k)[0] for k in rest[:nsparse]]
        dense_keys = [_texts(k)[0] for k in rest[nsparse:nsparse + ndense]]
        defaults = [np.asarray(d) for d in rest[nsparse + ndense:]]
        return _parse_batch(node, _texts(serialized), list(zip(sparse_keys, sparse_types)),
                            list(zip(dense_keys, dense_types, shapes, defaults)), [])

    return kernel


@op("ParseExampleV2", host_only=True)
def _parse_example_v2(ctx: BuildContext):
    node = ctx.op
    sparse_types = [np.dtype(t) for t in ctx.attr_or("sparse_types", [])]
    dense_types = [np.dtype(t) for t in ctx.attr_or("Tdense", [])]
    ragged_types = [np.dtype(t) for t in ctx.attr_or("ragged_value_types", [])]
    split_types = [np.dtype(t) for t in ctx.attr_or("ragged_split_types", [])]
    shapes = _shapes(ctx)

    def kernel(serialized: Any, _names: Any, sparse_keys: Any, dense_keys: Any,
               ragged_keys: Any, *defaults: Any) -> list:
        blobs = _texts(serialized)
        out = _parse_batch(
            node, blobs, list(zip(_texts(sparse_keys), sparse_types)),
            list(zip(_texts(dense_keys), dense_types, shapes, [np.asarray(d) for d in defaults])),
            list(zip(_texts(ragged_keys), ragged_types, split_types)))
        shape = np.shape(serialized)
        if not shape:  # a scalar input: one example, no batch dimension (TF's rule)
            out = _unbatch(out, len(sparse_types), len(dense_types))
        return out

    return kernel


def _unbatch(out: list, nsparse: int, ndense: int) -> list:
    # Sparse indices lose their example column, shapes their batch entry, dense values their
    # batch dimension.
    indices = [i[:, 1:] for i in out[:nsparse]]
    values = out[nsparse:2 * nsparse]
    shapes = [s[1:] for s in out[2 * nsparse:3 * nsparse]]
    dense = [d[0] for d in out[3 * nsparse:3 * nsparse + ndense]]
    return [*indices, *values, *shapes, *dense, *out[3 * nsparse + ndense:]]


@op("ParseSingleExample", host_only=True)
def _parse_single_example(ctx: BuildContext):
    node = ctx.op
    sparse = list(zip(ctx.attr_or("sparse_keys", []),
                      [np.dtype(t) for t in ctx.attr_or("sparse_types", [])]))
    dense_keys, shapes = ctx.attr_or("dense_keys", []), _shapes(ctx)
    dense_types = [np.dtype(t) for t in ctx.attr_or("Tdense", [])]

    def kernel(serialized: Any, *defaults: Any) -> list:
        dense = list(zip(dense_keys, dense_types, shapes, [np.asarray(d) for d in defaults]))
        out = _parse_batch(node, _texts(serialized)[:1], sparse, dense, [])
        return _unbatch(out, len(sparse), len(dense))

    return kernel

