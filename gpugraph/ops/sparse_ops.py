"""Row-sparse ops around embeddings: Scatter* on variables, segment reductions, Unique, top-k.

An embedding lookup's gradient reaches the optimizer as rows (IndexedSlices): TF's optimizers
deduplicate them (``Unique`` + ``UnsortedSegmentSum``) and apply them with ``ScatterAdd``,
``ScatterSub``, ``ResourceScatterAdd`` or a ``SparseApply*`` op (in training_ops).  Duplicate
indices accumulate (``ufunc.at``), as TF's scatter kernels do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, dims_text, op
from gpugraph.ops.resources import VarSlot


def _host(device: Any, value: Any) -> np.ndarray:
    """A device value copied to host memory (indices to check, values to sort)."""
    return np.asarray(device.to_host(value))


def _where(index: tuple) -> str:
    return "[" + ",".join(str(int(i)) for i in index) + "]"


def _check_indices(node: Any, indices: np.ndarray, limit: int, name: str = "indices") -> None:
    bad = np.argwhere((indices < 0) | (indices >= limit))
    if len(bad):
        where = tuple(bad[0])
        raise errors.InvalidArgumentError(
            None, node, f"{name}{_where(where)} = {int(indices[where])} is not in [0, {limit})")


# --- scatter into variables ---------------------------------------------------------------------
def _truncating_divide(a: Any, b: Any) -> Any:
    return np.trunc(a / b).astype(a.dtype) if a.dtype.kind in "iu" else a / b


# how -> f(xp, var, indices, updates, the indices on the host)
_SCATTER: dict[str, Callable[[Any, Any, Any, Any, np.ndarray], None]] = {
    "Add": lambda xp, v, i, u, h: xp.add.at(v, i, u),
    "Sub": lambda xp, v, i, u, h: xp.subtract.at(v, i, u),
    "Mul": lambda xp, v, i, u, h: xp.multiply.at(v, i, u),
    "Div": lambda xp, v, i, u, h: _divide_at(xp, v, i, u, h),
    "Max": lambda xp, v, i, u, h: xp.maximum.at(v, i, u),
    "Min": lambda xp, v, i, u, h: xp.minimum.at(v, i, u),
    "Update": lambda xp, v, i, u, h: v.__setitem__(i, u),
}


def _divide_at(xp: Any, var: Any, indices: Any, updates: Any, host: np.ndarray) -> None:
    if var.dtype.kind in "fc":
        xp.divide.at(var, indices, updates)
        return
    # Integer variables: C++ division truncates toward zero; one row at a time, in order.
    rows = xp.broadcast_to(updates, (*indices.shape, *var.shape[1:])).reshape(
        host.size, *var.shape[1:])
    for position, index in enumerate(host.reshape(-1).tolist()):
        var[index] = _truncating_divide(var[index], rows[position])


def _scatter_kernel(ctx: BuildContext, how: str):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    resource = node.type.startswith("Resource")
    apply = _SCATTER[how]

    def kernel(slot: VarSlot, indices: Any, updates: Any) -> Any:
        var = slot.writable(node)
        if var.ndim < 1:
            raise errors.InvalidArgumentError(None, node, "params must be at least 1-D")
        want = (*indices.shape, *var.shape[1:])
        if updates.ndim and tuple(updates.shape) != want:
            raise errors.InvalidArgumentError(
                None, node, f"Must have updates.shape = indices.shape + params.shape[1:] or "
                f"updates.shape = [], got updates.shape {list(updates.shape)}, indices.shape "
                f"{list(indices.shape)}, params.shape {list(var.shape)}")
        host = _host(device, indices)
        _check_indices(node, host, var.shape[0])
        apply(xp, var, indices, updates.astype(var.dtype, copy=False), host)
        return None if resource else slot

    return kernel


def _register_scatter(how: str, resource: bool) -> None:
    names = [f"Scatter{how}"] + ([f"ResourceScatter{how}"] if resource else [])
    op(*names, kind="kernel")(lambda ctx, how=how: _scatter_kernel(ctx, how))


for _how in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Update"):
    _register_scatter(_how, resource=True)


# --- segment reductions -----------------------------------------------------------------------
def _lowest(dtype: np.dtype) -> Any:
    return np.finfo(dtype).min if dtype.kind == "f" else np.iinfo(dtype).min


def _highest(dtype: np.dtype) -> Any:
    return np.finfo(dtype).max if dtype.kind == "f" else np.iinfo(dtype).max


# kind -> (ufunc name, the value of an empty segment) (TF: lowest()/highest(), not +-inf)
_SEGMENT: dict[str, tuple[str, Callable[[np.dtype], Any]]] = {
    "Sum": ("add", lambda d: 0), "Prod": ("multiply", lambda d: 1),
    "Max": ("maximum", _lowest), "Min": ("minimum", _highest),
}


def _segment_reduce(xp: Any, kind: str, data: Any, ids: Any, num: int, prefix: int) -> Any:
    ufunc, empty = _SEGMENT[kind]
    out = xp.full((num, *data.shape[prefix:]), empty(data.dtype), dtype=data.dtype)
    rows = data.reshape(-1, *data.shape[prefix:])
    flat = ids.reshape(-1)
    keep = flat >= 0  # TF drops negative ids
    getattr(xp, ufunc).at(out, flat[keep], rows[keep])
    return out


def _unsorted_segment(ctx: BuildContext, kind: str):
    node, xp, device = ctx.op, ctx.xp, ctx.device

    def kernel(data: Any, ids: Any, num_segments: Any) -> Any:
        num = int(num_segments)
        if tuple(data.shape[:ids.ndim]) != tuple(ids.shape):
            raise errors.InvalidArgumentError(
                None, node, f"data.shape = {list(data.shape)} does not start with "
                f"segment_ids.shape = {list(ids.shape)}")
        host = _host(device, ids)
        bad = np.argwhere(host >= num)
        if len(bad):
            where = tuple(bad[0])
            raise errors.InvalidArgumentError(
                None, node, f"segment_ids{_where(where)} = {int(host[where])} is out of range "
                f"[0, {num})")
        return _segment_reduce(xp, kind, data, ids, num, ids.ndim)

    return kernel


for _kind in _SEGMENT:
    op(f"UnsortedSegment{_kind}", host_inputs=(2,))(
        lambda ctx, kind=_kind: _unsorted_segment(ctx, kind))


def _sorted_segment(ctx: BuildContext, kind: str):
    node, xp, device = ctx.op, ctx.xp, ctx.device

    def kernel(data: Any, ids: Any) -> Any:
        if ids.ndim != 1 or (data.ndim and data.shape[0] != ids.shape[0]):
            raise errors.InvalidArgumentError(
                None, node, "segment_ids should be the same size as dimension 0 of input.")
        host = _host(device, ids)
        if host.size and (np.any(np.diff(host) < 0) or host[0] < 0):
            raise errors.InvalidArgumentError(
                None, node, "segment ids are not increasing")
        num = int(host[-1]) + 1 if host.size else 0
        if kind != "Mean":
            return _segment_reduce(xp, kind, data, ids, num, 1)
        total = _segment_reduce(xp, "Sum", data, ids, num, 1)
        counts = np.bincount(host, minlength=num).reshape(-1, *([1] * (data.ndim - 1)))
        counts = device.to_device(np.maximum(counts, 1).astype(data.dtype))
        return (total / counts).astype(data.dtype)

    return kernel


for _kind in ("Sum", "Prod", "Max", "Min", "Mean"):
    op(f"Segment{_kind}")(lambda ctx, kind=_kind: _sorted_segment(ctx, kind))


# --- Unique, top-k --------------------------------------------------------------------------
def _unique(device: Any, x: Any) -> tuple[Any, Any, Any]:
    """Unique values in order of first occurrence (TF's order), inverse indices, counts."""
    values, first, inverse, counts = np.unique(_host(device, x), return_index=True,
                                               return_inverse=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return values[order], rank[inverse.reshape(-1)], counts[order]


@op("Unique", "UniqueWithCounts")
def _unique_op(ctx: BuildContext):
    node, device, out_idx = ctx.op, ctx.device, ctx.attr("out_idx")
    with_counts = node.type == "UniqueWithCounts"

    def kernel(x: Any) -> Any:
        if x.ndim != 1:
            raise errors.InvalidArgumentError(None, node, "unique expects a 1D vector.")
        values, index, counts = _unique(device, x)
        outs = (device.to_device(values.astype(x.dtype)), device.to_device(index.astype(out_idx)))
        return (*outs, device.to_device(counts.astype(out_idx))) if with_counts else outs

    return kernel


@op("TopK")
def _top_k_v1(ctx: BuildContext):
    return _top_k(ctx)


@op("TopKV2", host_inputs=(1,))
def _top_k(ctx: BuildContext):
    node, xp, v1 = ctx.op, ctx.xp, ctx.op.type == "TopK"
    static_k = ctx.attr("k") if v1 else None
    index_type = ctx.attr_or("index_type", np.dtype(np.int32))

    def kernel(x: Any, k_value: Any = None) -> tuple[Any, Any]:
        k = static_k if v1 else int(k_value)
        if k < 0:
            raise errors.InvalidArgumentError(None, node, f"Need k >= 0, got {k}")
        if x.ndim < 1 or x.shape[-1] < k:
            raise errors.InvalidArgumentError(
                None, node, f"input must have at least k columns. Had "
                f"{x.shape[-1] if x.ndim else 0}, needed {k}")
        # Largest first; equal values keep their order (the lower index first), as in TF.
        order = xp.argsort(-x if x.dtype.kind != "u" else ~x, axis=-1, kind="stable")[..., :k]
        return xp.take_along_axis(x, order, axis=-1), order.astype(index_type)

    return kernel


@op("InTopK")
def _in_top_k_v1(ctx: BuildContext):
    return _in_top_k(ctx)


@op("InTopKV2", host_inputs=(2,))
def _in_top_k(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp
    static_k = ctx.attr("k") if node.type == "InTopK" else None

    def kernel(predictions: Any, targets: Any, k_value: Any = None) -> Any:
        k = static_k if static_k is not None else int(k_value)
        if predictions.ndim != 2 or targets.shape != (predictions.shape[0],):
            raise errors.InvalidArgumentError(
                None, node, f"predictions must be 2-dimensional and targets 1-dimensional with "
                f"as many elements as predictions has rows: {list(predictions.shape)} "
                f"{list(targets.shape)}")
        classes = predictions.shape[1]
        inside = (targets >= 0) & (targets < classes)
        target = xp.take_along_axis(
            predictions, xp.where(inside, targets, 0)[:, None].astype(np.int64), axis=1)
        # in_topk_op.h: a non-finite prediction anywhere in the row (or a target out of range)
        # makes the answer false; else fewer than k classes may score strictly higher.
        finite = xp.isfinite(predictions).all(axis=1)
        higher = (predictions > target).sum(axis=1)
        return inside & finite & (higher < k)

    return kernel


# --- n-dimensional indices: GatherNd, ScatterNd, TensorScatter* --------------------------------
def _nd_index(xp: Any, device: Any, node: Any, indices: Any, shape: tuple, verb: str,
              suffix: str = "") -> tuple:
    """The index tuple of ``indices[..., depth]`` into an array of ``shape``, checked."""
    depth = indices.shape[-1] if indices.ndim else 0
    if depth > len(shape):
        raise errors.InvalidArgumentError(
            None, node, f"index innermost dimension length must be <= params rank; saw: "
            f"{depth} vs. {len(shape)}")
    host = _host(device, indices).reshape(-1, depth) if depth else np.zeros((0, 0), np.int64)
    bad = np.flatnonzero(((host < 0) | (host >= np.asarray(shape[:depth], np.int64))).any(axis=1))
    if bad.size:
        where = np.unravel_index(bad[0], indices.shape[:-1]) if indices.ndim > 1 else ()
        values = ", ".join(str(int(v)) for v in host[bad[0]])
        raise errors.InvalidArgumentError(
            None, node, f"indices{_where(where)} = [{values}] does not {verb} "
            f"{'[' + ','.join(map(str, shape)) + ']'}{suffix}")
    return tuple(indices[..., k] for k in range(depth))


@op("GatherNd")
def _gather_nd(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device

    def kernel(params: Any, indices: Any) -> Any:
        index = _nd_index(xp, device, node, indices, tuple(params.shape), "index into param shape",
                          f", node name: {node.name}")
        if not index:  # depth 0: every index selects the whole of params
            return xp.broadcast_to(params, (*indices.shape[:-1], *params.shape)).copy()
        return params[index]

    return kernel


_ND_UPDATES: dict[str, Callable[[Any, Any, tuple, Any], None]] = {
    "Add": lambda xp, out, index, updates: xp.add.at(out, index, updates),
    "Sub": lambda xp, out, index, updates: xp.subtract.at(out, index, updates),
    "Max": lambda xp, out, index, updates: xp.maximum.at(out, index, updates),
    "Min": lambda xp, out, index, updates: xp.minimum.at(out, index, updates),
    "Update": lambda xp, out, index, updates: out.__setitem__(index, updates),
}


def _check_updates(node: Any, indices: Any, updates: Any, shape: tuple) -> None:
    depth = indices.shape[-1] if indices.ndim else 0
    want = (*indices.shape[:-1], *shape[depth:])
    if tuple(updates.shape) != want:
        raise errors.InvalidArgumentError(
            None, node, f"Dimensions [0,{indices.ndim - 1}) of indices[shape="
            f"{dims_text(indices.shape)}] = {dims_text(indices.shape[:-1])} must match "
            f"dimensions [0,{updates.ndim - len(shape) + depth}) of updates[shape="
            f"{dims_text(updates.shape)}]")


@op("ScatterNd", host_inputs=(2,))
def _scatter_nd(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device

    def kernel(indices: Any, updates: Any, shape_value: Any) -> Any:
        shape = tuple(int(d) for d in np.asarray(shape_value))
        _check_updates(node, indices, updates, shape)
        out = xp.zeros(shape, dtype=updates.dtype)
        xp.add.at(out, _nd_index(xp, device, node, indices, shape, "index into output shape"),
                  updates)
        return out

    return kernel


def _tensor_scatter(ctx: BuildContext, how: str):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    apply = _ND_UPDATES[how]

    def kernel(tensor: Any, indices: Any, updates: Any) -> Any:
        shape = tuple(tensor.shape)
        _check_updates(node, indices, updates, shape)
        index = _nd_index(xp, device, node, indices, shape, "index into shape")
        out = tensor.copy()
        apply(xp, out, index, updates)
        return out

    return kernel


for _how in ("Add", "Sub", "Max", "Min", "Update"):
    op(f"TensorScatter{_how}")(lambda ctx, how=_how: _tensor_scatter(ctx, how))


# --- partitions, sparse tensors, counting, set difference ---------------------------------------
@op("DynamicPartition")
def _dynamic_partition(ctx: BuildContext):
    node, xp, device, count = ctx.op, ctx.xp, ctx.device, ctx.attr("num_partitions")

    def kernel(data: Any, partitions: Any) -> tuple:
        if tuple(data.shape[:partitions.ndim]) != tuple(partitions.shape):
            raise errors.InvalidArgumentError(
                None, node, f"data.shape must start with partitions.shape, got data.shape = "
                f"{dims_text(data.shape)}, partitions.shape = {dims_text(partitions.shape)}")
        host = _host(device, partitions)
        bad = np.argwhere((host < 0) | (host >= count))
        if len(bad):
            where = tuple(bad[0])
            raise errors.InvalidArgumentError(
                None, node, f"partitions{_where(where)} = {int(host[where])} is not in [0, "
                f"{count})")
        return tuple(data[partitions == i] for i in range(count))

    return kernel


@op("SparseToDense", host_inputs=(1,))
def _sparse_to_dense(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    validate = ctx.attr_or("validate_indices", True)

    def kernel(indices: Any, shape_value: Any, values: Any, default: Any) -> Any:
        shape = tuple(int(d) for d in np.asarray(shape_value).reshape(-1))
        host = _host(device, indices).reshape(-1, 1) if indices.ndim < 2 else \
            _host(device, indices)
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


def _check_sparse_indices(node: Any, host: np.ndarray, shape: tuple) -> None:
    """SparseTensor::ValidateIndices: in bounds, sorted and unique."""
    text = lambda row: ",".join(str(int(v)) for v in row)  # noqa: E731
    for i, row in enumerate(host):
        if ((row < 0) | (row >= np.asarray(shape))).any():
            raise errors.InvalidArgumentError(
                None, node, f"indices[{i}] = [{text(row)}] is out of bounds: need 0 <= index < "
                f"[{text(shape)}]")
        if i:
            previous = tuple(host[i - 1])
            if tuple(row) == previous:
                raise errors.InvalidArgumentError(
                    None, node, f"indices[{i}] = [{text(row)}] is repeated")
            if tuple(row) < previous:
                raise errors.InvalidArgumentError(
                    None, node, f"indices[{i}] = [{text(row)}] is out of order. Many sparse ops "
                    "require sorted indices.\n    Use `tf.sparse.reorder` to create a correctly "
                    "ordered copy.\n\n")


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
        _check_sparse_matmul_indices(node, _host(device, indices).reshape(-1, 2), m_col, k_col,
                                     rows, cols)
        out = xp.zeros((rows, b.shape[1]), dtype=b.dtype)
        xp.add.at(out, i, values[:, None] * b[k])
        return out

    return kernel


def _check_sparse_matmul_indices(node: Any, host: np.ndarray, m_col: int, k_col: int,
                                 rows: int, cols: int) -> None:
    # sparse_tensor_dense_matmul_op.cc: nonzeros in order, the inner index k checked first.
    for n, row in enumerate(host):
        for col, bound, name in ((k_col, cols, "k"), (m_col, rows, "m")):
            if not 0 <= row[col] < bound:
                raise errors.InvalidArgumentError(
                    None, node, f"{name} ({int(row[col])}) from index[{n},{col}] out of bounds "
                    f"(>={bound})")


@op("Bincount", host_inputs=(1,))
def _bincount(ctx: BuildContext):
    node, device = ctx.op, ctx.device

    def kernel(arr: Any, size_value: Any, weights: Any) -> Any:
        size = int(size_value)
        if size < 0:
            raise errors.InvalidArgumentError(None, node, f"size ({size}) must be non-negative")
        values = _host(device, arr).reshape(-1)
        if (values < 0).any():
            raise errors.InvalidArgumentError(None, node, "Input arr must be non-negative!")
        keep = values < size  # values past size are ignored
        w = _host(device, weights).reshape(-1)
        counts = np.bincount(values[keep], weights=w[keep] if w.size else None,
                             minlength=size)[:size]
        return device.to_device(counts.astype(weights.dtype))

    return kernel


@op("ListDiff")
def _list_diff(ctx: BuildContext):
    node, device, out_idx = ctx.op, ctx.device, ctx.attr("out_idx")

    def kernel(x: Any, y: Any) -> tuple:
        if x.ndim != 1 or y.ndim != 1:
            raise errors.InvalidArgumentError(None, node, "x and y should be 1D vectors")
        hx, hy = _host(device, x), _host(device, y)
        index = np.flatnonzero(~np.isin(hx, hy))
        return device.to_device(hx[index]), device.to_device(index.astype(out_idx))

    return kernel
