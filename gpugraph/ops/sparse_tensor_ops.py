"""Sparse tensors (indices, values, dense_shape): SparseToDense, SparseTensorDenseMatMul,
SparseTensorDenseAdd, SparseSoftmax, SparseFillEmptyRows, SparseReshape."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops._indexing import host_copy, scatter_at
from gpugraph.ops.registry import BuildContext, dims_text, op


@op("SparseToDense", host_inputs=(1,))
def _sparse_to_dense(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    validate = ctx.attr_or("validate_indices", True)

    def kernel(indices: Any, shape_value: Any, values: Any, default: Any) -> Any:
        shape = tuple(int(d) for d in np.asarray(shape_value).reshape(-1))
        host = host_copy(device, indices).reshape(-1, 1) if indices.ndim < 2 else \
            host_copy(device, indices)
        if host.shape[1] != len(shape):
            raise errors.InvalidArgumentError(
                None, node, f"sparse_indices should be a scalar, vector, or matrix with "
                f"{len(shape)} columns, got shape {dims_text(indices.shape)}")
        if validate:
            _check_sparse_indices(node, host, shape)
        elif ((host < 0) | (host >= np.asarray(shape))).any():
            raise errors.InvalidArgumentError(
                None, node, f"Indices are not valid (out of bounds).  Shape: "
                f"[{','.join(map(str, shape))}]")
        out = xp.full(shape, default, dtype=values.dtype)
        out[tuple(xp.asarray(indices).reshape(host.shape).T)] = values
        return out

    return kernel


@op("SparseTensorDenseAdd", host_inputs=(0, 2))
def _sparse_tensor_dense_add(ctx: BuildContext):
    """``b`` plus the sparse ``a``, its values added one by one (repeated indices
    accumulate), after TF's checks of the operands."""
    node, xp, device = ctx.op, ctx.xp, ctx.device

    def kernel(indices: Any, values: Any, shape_value: Any, b: Any) -> Any:
        host = np.asarray(indices)
        shape = [int(d) for d in np.asarray(shape_value).reshape(-1)]
        _check_dense_add(node, host, values, np.asarray(shape_value), shape, b)
        out = xp.array(b, copy=True)
        if len(host):
            on_device = device.to_device(np.ascontiguousarray(host.T))
            scatter_at(xp, device, "add", out, tuple(on_device), values)
        return out

    return kernel


@op("SparseSoftmax", host_only=True)
def _sparse_softmax(ctx: BuildContext):
    """A softmax over the entries of each row (entries sharing all but their last index) of a
    sparse tensor in standard order: max subtracted, exponentials, divided by their sum; an
    absent entry counts as absent, not as zero.  CPU only, as in TF."""
    node = ctx.op

    def kernel(indices: Any, values: Any, shape_value: Any) -> Any:
        host, shape = np.asarray(indices), np.asarray(shape_value).reshape(-1)
        if host.ndim != 2:
            raise errors.InvalidArgumentError(
                None, node, f"Input sp_indices should be a matrix but received shape: "
                f"{dims_text(host.shape)}")
        if len(shape) < 2:
            raise errors.InvalidArgumentError(
                None, node, "Input should have rank >= 2, but received shape: "
                f"{' '.join(str(int(d)) for d in shape)}")
        if host.shape[0] != values.shape[0]:
            raise errors.InvalidArgumentError(
                None, node, f"Input sp_indices and sp_values should have the same number of "
                f"entries: {host.shape[0]} vs. {values.shape[0]}")
        values = np.asarray(values)
        if not len(host):
            return np.zeros_like(values)
        rows = host[:, :-1]
        first = np.r_[True, (rows[1:] != rows[:-1]).any(axis=1)]  # an entry starts its row
        starts, group = np.flatnonzero(first), np.cumsum(first) - 1
        shifted = np.exp(values - np.maximum.reduceat(values, starts)[group])
        return shifted / np.add.reduceat(shifted, starts)[group]

    return kernel


def _check_dense_add(node: Any, host: np.ndarray, values: Any, shape_value: np.ndarray,
                     shape: list[int], b: Any) -> None:
    """sparse_tensor_dense_add_op.cc's ValidateInputs and index check, with its messages."""
    def fail(message: str) -> None:
        raise errors.InvalidArgumentError(None, node, message)

    if host.ndim != 2:
        fail(f"Input a_indices should be a matrix but received shape: {dims_text(host.shape)}")
    if values.ndim != 1 or shape_value.ndim != 1:
        fail("Inputs a_values and a_shape should be vectors but received shapes: "
             f"{dims_text(values.shape)} and {dims_text(shape_value.shape)}")
    if len(shape) != b.ndim:
        fail(f"Two operands have different ranks; received: {len(shape)} and {b.ndim}")
    for i, (a_dim, b_dim) in enumerate(zip(shape, b.shape)):
        if a_dim != b_dim:
            fail(f"Dimension {i} does not equal (no broadcasting is supported): sparse side "
                 f"{a_dim} vs dense side {b_dim}")
    if host.shape[0] != values.shape[0] or (len(host) and host.shape[1] != len(shape)):
        fail(f"a_indices {dims_text(host.shape)} and a_values {dims_text(values.shape)} do "
             f"not fit a_shape {dims_text(shape)}")
    bad = (host < 0) | (host >= np.asarray(shape, dtype=np.int64))
    if bad.any():
        row, dim = (int(v) for v in np.argwhere(bad)[0])
        fail(f"Sparse tensor has an invalid index on dimension {dim}: a_indices({row},{dim}) "
             f"= {int(host[row, dim])}, dense tensor shape: {' '.join(map(str, b.shape))}")


def _check_sparse_indices(node: Any, host: np.ndarray, shape: tuple) -> None:
    """SparseTensor::ValidateIndices: row by row, in bounds, then after the previous row (TF's
    first complaint, found with array operations)."""
    text = lambda row: ",".join(str(int(v)) for v in row)  # noqa: E731
    outside = ((host < 0) | (host >= np.asarray(shape))).any(axis=1)
    first_outside = int(np.argmax(outside)) if outside.any() else host.shape[0]
    inside = host[:first_outside]  # rows in bounds: lexicographic order is raveled order
    keys = np.ravel_multi_index(inside.T, shape) if inside.size else np.zeros(0, np.int64)
    unordered = np.flatnonzero(np.diff(keys) <= 0)
    if unordered.size:
        i = int(unordered[0]) + 1
        row = host[i]
        if keys[i] == keys[i - 1]:
            raise errors.InvalidArgumentError(
                None, node, f"indices[{i}] = [{text(row)}] is repeated")
        raise errors.InvalidArgumentError(
            None, node, f"indices[{i}] = [{text(row)}] is out of order. Many sparse ops require "
            "sorted indices.\n    Use `tf.sparse.reorder` to create a correctly ordered copy."
            "\n\n")
    if first_outside < host.shape[0]:
        raise errors.InvalidArgumentError(
            None, node, f"indices[{first_outside}] = [{text(host[first_outside])}] is out of "
            f"bounds: need 0 <= index < [{text(shape)}]")


@op("SparseTensorDenseMatMul", host_inputs=(2,))
def _sparse_dense_matmul(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    adjoint_a, adjoint_b = ctx.attr_or("adjoint_a", False), ctx.attr_or("adjoint_b", False)

    def kernel(indices: Any, values: Any, shape_value: Any, b: Any) -> Any:
        rows, cols = (int(d) for d in np.asarray(shape_value))
        if adjoint_b:
            b = xp.conj(b.T) if b.dtype.kind == "c" else b.T
        if adjoint_a:
            rows, cols = cols, rows
            values = xp.conj(values) if values.dtype.kind == "c" else values
        if b.shape[0] != cols:
            raise errors.InvalidArgumentError(
                None, node, f"Cannot multiply A and B because inner dimension does not match: "
                f"{cols} vs. {b.shape[0]}.  Did you forget a transpose?  Dimensions of A: "
                f"[{rows}, {cols}).  Dimensions of B: {dims_text(b.shape)}")
        m_col, k_col = (1, 0) if adjoint_a else (0, 1)
        i, k = indices[:, m_col], indices[:, k_col]
        _check_sparse_matmul_indices(node, host_copy(device, indices).reshape(-1, 2), m_col, k_col,
                                     rows, cols)
        out = xp.zeros((rows, b.shape[1]), dtype=b.dtype)
        scatter_at(xp, device, "add", out, i, values[:, None] * b[k])
        return out

    return kernel


def _check_sparse_matmul_indices(node: Any, host: np.ndarray, m_col: int, k_col: int,
                                 rows: int, cols: int) -> None:
    # sparse_tensor_dense_matmul_op.cc: nonzeros in order, the inner index k checked first.
    bad_k = (host[:, k_col] < 0) | (host[:, k_col] >= cols)
    bad_m = (host[:, m_col] < 0) | (host[:, m_col] >= rows)
    if not (bad_k | bad_m).any():
        return
    n = int(np.argmax(bad_k | bad_m))
    col, bound, name = (k_col, cols, "k") if bad_k[n] else (m_col, rows, "m")
    raise errors.InvalidArgumentError(
        None, node, f"{name} ({int(host[n, col])}) from index[{n},{col}] out of bounds "
        f"(>={bound})")


@op("SparseFillEmptyRows", host_inputs=(2,))
def _sparse_fill_empty_rows(ctx: BuildContext):
    # Rows of a 2-D+ SparseTensor without entries get one entry (row, 0, ...) = default_value;
    # entries keep their order within rows (rows ordered); reverse_index_map says where each
    # input entry went.
    node, device = ctx.op, ctx.device

    def kernel(indices: Any, values: Any, dense_shape: Any, default: Any) -> tuple:
        shape = np.asarray(dense_shape).reshape(-1)
        host = host_copy(device, indices)
        if host.ndim != 2 or shape.size < 1 or host.shape[1] != shape.size:
            raise errors.InvalidArgumentError(
                None, node, f"indices must be a matrix with one column per dense dimension, got "
                f"{list(host.shape)} for dense_shape {shape.tolist()}")
        rows = int(shape[0])
        row_of = host[:, 0]
        if host.size and (row_of.min() < 0 or row_of.max() >= rows):
            bad = int(np.flatnonzero((row_of < 0) | (row_of >= rows))[0])
            raise errors.InvalidArgumentError(
                None, node, f"indices({bad}, 0) is invalid: {int(row_of[bad])} >= {rows}")
        empty = np.bincount(row_of, minlength=rows)[:rows] == 0
        filled = np.flatnonzero(empty)
        extra = np.zeros((filled.size, host.shape[1]), host.dtype)
        extra[:, 0] = filled
        all_rows = np.concatenate([row_of, filled])
        order = np.argsort(all_rows, kind="stable")
        out_indices = np.concatenate([host, extra])[order]
        vals = np.asarray(device.to_host(values))
        fill = np.asarray(device.to_host(default))
        out_values = np.concatenate([vals, np.full(filled.size, fill, dtype=vals.dtype)])[order]
        position = np.empty(order.size, np.int64)
        position[order] = np.arange(order.size)
        return (device.to_device(out_indices), device.to_device(out_values),
                device.to_device(empty), device.to_device(position[:host.shape[0]]))

    return kernel


@op("SparseReshape", host_only=True)
def _sparse_reshape(ctx: BuildContext):
    node = ctx.op

    def kernel(indices: Any, shape_value: Any, new_shape_value: Any) -> tuple:
        shape = np.asarray(shape_value, np.int64).reshape(-1)
        wanted = np.asarray(new_shape_value, np.int64).reshape(-1)
        total = int(np.prod(shape))
        unknown = np.flatnonzero(wanted == -1)
        if unknown.size > 1:
            raise errors.InvalidArgumentError(
                None, node, f"only one output dimension may be -1, not both {int(unknown[0])} "
                f"and {int(unknown[1])}")
        known = int(np.prod(wanted[wanted != -1]))
        if unknown.size:
            wanted = wanted.copy()
            wanted[unknown[0]] = total // known if known else 0
            if known == 0 or total % known:
                raise errors.InvalidArgumentError(
                    None, node, f"Input to reshape is a SparseTensor with {total} dense values, "
                    f"but the requested shape requires a multiple of {known}. "
                    f"input_shape={_shape_text(shape)} output_shape={_shape_text(wanted)}")
        if int(np.prod(wanted)) != total:
            raise errors.InvalidArgumentError(
                None, node, f"Input to reshape is a tensor with {total} dense values, but the "
                f"requested shape has {int(np.prod(wanted))}. input_shape={_shape_text(shape)} "
                f"output_shape={_shape_text(wanted)}")
        host = np.asarray(indices, np.int64).reshape(-1, shape.size)
        flat = np.ravel_multi_index(host.T, shape) if host.size else np.zeros(0, np.int64)
        new = np.stack(np.unravel_index(flat, wanted), axis=1) if host.size else \
            np.zeros((host.shape[0], wanted.size), np.int64)
        return new.astype(np.int64), wanted

    return kernel


def _shape_text(shape: np.ndarray) -> str:
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


@op("SparseReorder", host_only=True)
def _sparse_reorder(ctx: BuildContext):
    """Entries sorted into row-major order of their indices (``tf.sparse.reorder``); repeated
    indices keep their input order.  Like TF's kernel, nothing checks that indices are in
    bounds or the shape's dims non-negative."""
    node = ctx.op

    def kernel(indices: Any, values: Any, shape_value: Any) -> tuple:
        indices, values, shape = np.asarray(indices), np.asarray(values), np.asarray(shape_value)
        for what, array, rank in (("indices", indices, 2), ("values", values, 1),
                                  ("shape", shape, 1)):
            if array.ndim != rank:
                raise errors.InvalidArgumentError(
                    None, node, f"Sparse {what} must be rank {rank} but is rank {array.ndim}")
        if indices.shape[0] != values.shape[0]:
            raise errors.InvalidArgumentError(
                None, node, f"Number of elements in indices ({indices.shape[0]}) and values "
                f"({values.shape[0]}) do not match")
        if indices.shape[1] != shape.shape[0]:
            raise errors.InvalidArgumentError(
                None, node, f"Index rank ({indices.shape[1]}) and shape rank ({shape.shape[0]}) "
                "do not match")
        if indices.shape[1] == 0 or indices.shape[0] < 2:
            return indices.copy(), values.copy()
        order = np.lexsort(indices.T[::-1])  # stable: the first column is the primary key
        return indices[order], values[order]

    return kernel
