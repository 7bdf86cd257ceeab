"""Row-sparse ops around embeddings: Scatter* on variables, Unique, top-k, n-d indices.

An embedding lookup's gradient reaches the optimizer as rows (IndexedSlices): TF's optimizers
deduplicate them (``Unique`` + ``UnsortedSegmentSum``) and apply them with ``ScatterAdd``,
``ScatterSub``, ``ResourceScatterAdd`` or a ``SparseApply*`` op (in training_ops).  Duplicate
indices accumulate (``ufunc.at``), as TF's scatter kernels do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops._indexing import (check_indices, host_copy, index_text, linear_rows,
                                    scatter_at, scatter_rows, take_rows)
from gpugraph.ops.registry import BuildContext, dims_text, op
from gpugraph.state import VarSlot


# --- scatter into variables ---------------------------------------------------------------------
def _truncating_divide(xp: Any, a: Any, b: Any) -> Any:
    # Exact for every integer (no float round trip): floor division, moved toward zero.
    quotient = xp.floor_divide(a, b)
    return quotient + ((xp.remainder(a, b) != 0) & ((a < 0) != (b < 0))).astype(a.dtype)


# how -> the ufunc whose .at applies it (Div and Update are special: see _scatter_kernel)
_SCATTER = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide",
            "Max": "maximum", "Min": "minimum", "Update": None}


def _divide_at(xp: Any, var: Any, indices: Any, updates: Any, host: np.ndarray) -> None:
    # Integer variables: C++ division truncates toward zero; one row at a time, in order.
    rows = xp.broadcast_to(updates, (*indices.shape, *var.shape[1:])).reshape(
        host.size, *var.shape[1:])
    for position, index in enumerate(host.reshape(-1).tolist()):
        var[index] = _truncating_divide(xp, var[index], rows[position])


def _scatter_kernel(ctx: BuildContext, how: str):
    node, xp, device = ctx.op, ctx.xp, ctx.device
    resource = node.type.startswith("Resource")
    ufunc = _SCATTER[how]

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
        host = host_copy(device, indices)
        check_indices(node, host, var.shape[0])
        updates = updates.astype(var.dtype, copy=False)
        if ufunc is None:  # Update: assignment (duplicates: the last one wins)
            var[indices] = updates
        elif ufunc == "divide" and var.dtype.kind in "iu":
            _divide_at(xp, var, indices, updates, host)
        else:
            scatter_at(xp, device, ufunc, var, indices, updates)
        return None if resource else slot

    return kernel


def _register_scatter(how: str, resource: bool) -> None:
    names = [f"Scatter{how}"] + ([f"ResourceScatter{how}"] if resource else [])
    op(*names, kind="kernel")(lambda ctx, how=how: _scatter_kernel(ctx, how))


for _how in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Update"):
    _register_scatter(_how, resource=True)


# --- Unique, top-k --------------------------------------------------------------------------
def _unique(device: Any, x: Any) -> tuple[Any, Any, Any]:
    """Unique values in order of first occurrence (TF's order), inverse indices, counts."""
    values, first, inverse, counts = np.unique(host_copy(device, x), return_index=True,
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
        # ~x reverses integer order without overflowing at the minimum (-x would not).
        order = xp.argsort(~x if x.dtype.kind in "iu" else -x, axis=-1, kind="stable")[..., :k]
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
    depth = _depth(node, indices, shape)
    host = host_copy(device, indices).reshape(-1, depth) if depth else np.zeros((0, 0), np.int64)
    bad = np.flatnonzero(((host < 0) | (host >= np.asarray(shape[:depth], np.int64))).any(axis=1))
    if bad.size:
        where = np.unravel_index(bad[0], indices.shape[:-1]) if indices.ndim > 1 else ()
        values = ", ".join(str(int(v)) for v in host[bad[0]])
        raise errors.InvalidArgumentError(
            None, node, f"indices{index_text(where)} = [{values}] does not {verb} "
            f"{'[' + ','.join(map(str, shape)) + ']'}{suffix}")
    return tuple(indices[..., k] for k in range(depth))


@op("GatherNd")
def _gather_nd(ctx: BuildContext):
    node, xp, device = ctx.op, ctx.xp, ctx.device

    def kernel(params: Any, indices: Any) -> Any:
        if not device.is_host:
            return _gather_nd_unchecked(xp, node, params, indices)
        index = _nd_index(xp, device, node, indices, tuple(params.shape), "index into param shape",
                          f", node name: {node.name}")
        if not index:  # depth 0: every index selects the whole of params
            return xp.broadcast_to(params, (*indices.shape[:-1], *params.shape)).copy()
        return params[index]

    return kernel


def _gather_nd_unchecked(xp: Any, node: Any, params: Any, indices: Any) -> Any:
    # TF's GPU kernel: an index outside params gives a zero slice (no host synchronization).
    depth = _depth(node, indices, params.shape)
    flat = params.reshape(-1, *params.shape[depth:])
    return take_rows(xp, flat, linear_rows(xp, indices, tuple(params.shape)))


def _depth(node: Any, indices: Any, shape: tuple) -> int:
    depth = indices.shape[-1] if indices.ndim else 0
    if depth > len(shape):
        raise errors.InvalidArgumentError(
            None, node, f"index innermost dimension length must be <= params rank; saw: "
            f"{depth} vs. {len(shape)}")
    return depth


def _scatter_nd_into(ctx: BuildContext, ufunc: str | None, target: Any, indices: Any,
                     updates: Any, verb: str) -> Any:
    """``target`` with ``updates`` applied at ``indices`` (in place on the host device; a new
    array elsewhere).  On the host an index outside ``target`` raises (TF's CPU kernels); on
    GPUs it is skipped (TF's GPU kernels), with no host synchronization."""
    node, xp, device = ctx.op, ctx.xp, ctx.device
    shape = tuple(target.shape)
    if device.is_host:
        index = _nd_index(xp, device, node, indices, shape, verb)
        if ufunc is None:
            target[index] = updates
        else:
            scatter_at(xp, device, ufunc, target, index, updates)
        return target
    depth = _depth(node, indices, shape)
    flat = target.reshape(-1, *shape[depth:])
    rows = linear_rows(xp, indices, shape)
    values = xp.broadcast_to(updates, (*rows.shape, *shape[depth:]))
    return scatter_rows(xp, device, ufunc, flat, rows, values).reshape(shape)


_ND_UPDATES = {"Add": "add", "Sub": "subtract", "Max": "maximum", "Min": "minimum",
               "Update": None}


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
    node, xp = ctx.op, ctx.xp

    def kernel(indices: Any, updates: Any, shape_value: Any) -> Any:
        shape = tuple(int(d) for d in np.asarray(shape_value))
        _check_updates(node, indices, updates, shape)
        out = xp.zeros(shape, dtype=updates.dtype)
        return _scatter_nd_into(ctx, "add", out, indices, updates, "index into output shape")

    return kernel


def _tensor_scatter(ctx: BuildContext, how: str):
    node, ufunc = ctx.op, _ND_UPDATES[how]

    def kernel(tensor: Any, indices: Any, updates: Any) -> Any:
        _check_updates(node, indices, updates, tuple(tensor.shape))
        return _scatter_nd_into(ctx, ufunc, tensor.copy(), indices, updates, "index into shape")

    return kernel


for _how in ("Add", "Sub", "Max", "Min", "Update"):
    op(f"TensorScatter{_how}")(lambda ctx, how=_how: _tensor_scatter(ctx, how))


# --- partitions, sparse tensors, counting, set difference ---------------------------------------
@op("DynamicPartition")
def _dynamic_partition(ctx: BuildContext):
    node, device, count = ctx.op, ctx.device, ctx.attr("num_partitions")

    def kernel(data: Any, partitions: Any) -> tuple:
        if tuple(data.shape[:partitions.ndim]) != tuple(partitions.shape):
            raise errors.InvalidArgumentError(
                None, node, f"data.shape must start with partitions.shape, got data.shape = "
                f"{dims_text(data.shape)}, partitions.shape = {dims_text(partitions.shape)}")
        host = host_copy(device, partitions)
        bad = np.argwhere((host < 0) | (host >= count))
        if len(bad):
            where = tuple(bad[0])
            raise errors.InvalidArgumentError(
                None, node, f"partitions{index_text(where)} = {int(host[where])} is not in [0, "
                f"{count})")
        return tuple(data[partitions == i] for i in range(count))

    return kernel


@op("Bincount", host_inputs=(1,))
def _bincount(ctx: BuildContext):
    node, device = ctx.op, ctx.device

    def kernel(arr: Any, size_value: Any, weights: Any) -> Any:
        size = int(size_value)
        if size < 0:
            raise errors.InvalidArgumentError(None, node, f"size ({size}) must be non-negative")
        values = host_copy(device, arr).reshape(-1)
        if (values < 0).any():
            raise errors.InvalidArgumentError(None, node, "Input arr must be non-negative!")
        keep = values < size  # values past size are ignored
        w = host_copy(device, weights).reshape(-1)
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
        hx, hy = host_copy(device, x), host_copy(device, y)
        index = np.flatnonzero(~np.isin(hx, hy))
        return device.to_device(hx[index]), device.to_device(index.astype(out_idx))

    return kernel


# --- ScatterNd* into variables --------------------------------------------------------------
def _scatter_nd_variable(ctx: BuildContext, how: str):
    node = ctx.op
    resource = node.type.startswith("Resource")
    ufunc = _ND_UPDATES[how]

    def kernel(slot: VarSlot, indices: Any, updates: Any) -> Any:
        var = slot.writable(node)
        _check_updates(node, indices, updates, tuple(var.shape))
        updates = updates.astype(var.dtype, copy=False)
        result = _scatter_nd_into(ctx, ufunc, var, indices, updates, "index into shape")
        if result is not var:  # GPUs: written back into the variable's own buffer
            var[...] = result
        return None if resource else slot

    return kernel


for _how in ("Add", "Sub", "Max", "Min", "Update"):
    op(f"ScatterNd{_how}", f"ResourceScatterNd{_how}")(
        lambda ctx, how=_how: _scatter_nd_variable(ctx, how))
