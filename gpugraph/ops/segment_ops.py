"""Segment reductions: UnsortedSegment*, Segment* (sorted ids) and SparseSegment*.

``tf.nn.embedding_lookup_sparse`` combines rows with SparseSegmentSum/Mean/SqrtN; optimizers
deduplicate IndexedSlices with UnsortedSegmentSum.  An empty segment holds the reduction's
identity (TF's lowest()/highest() for max/min: finite, not +-inf).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops._indexing import host_copy, index_text, scatter_at, scatter_rows, take_rows
from gpugraph.ops.registry import BuildContext, op


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


def _segment_reduce(xp: Any, device: Any, kind: str, data: Any, ids: Any, num: int,
                    prefix: int) -> Any:
    # Rows whose id is negative (TF drops them) or, on GPUs, past the end (TF's GPU kernels
    # skip them) are dropped without a host synchronization (scatter_rows' spare row).
    ufunc, empty = _SEGMENT[kind]
    out = xp.full((num, *data.shape[prefix:]), empty(data.dtype), dtype=data.dtype)
    rows = data.reshape(-1, *data.shape[prefix:])
    return scatter_rows(xp, device, ufunc, out, ids.reshape(-1), rows)


def _unsorted_segment(ctx: BuildContext, kind: str):
    node, xp, device = ctx.op, ctx.xp, ctx.device

    def kernel(data: Any, ids: Any, num_segments: Any) -> Any:
        num = int(num_segments)
        if tuple(data.shape[:ids.ndim]) != tuple(ids.shape):
            raise errors.InvalidArgumentError(
                None, node, f"data.shape = {list(data.shape)} does not start with "
                f"segment_ids.shape = {list(ids.shape)}")
        if device.is_host:
            host = host_copy(device, ids)
            bad = np.argwhere(host >= num)
            if len(bad):
                where = tuple(bad[0])
                raise errors.InvalidArgumentError(
                    None, node, f"segment_ids{index_text(where)} = {int(host[where])} is out of "
                    f"range [0, {num})")
        return _segment_reduce(xp, device, kind, data, ids, num, ids.ndim)

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
        host = host_copy(device, ids)
        if host.size and (np.any(np.diff(host) < 0) or host[0] < 0):
            raise errors.InvalidArgumentError(
                None, node, "segment ids are not increasing")
        num = int(host[-1]) + 1 if host.size else 0
        if kind != "Mean":
            return _segment_reduce(xp, device, kind, data, ids, num, 1)
        total = _segment_reduce(xp, device, "Sum", data, ids, num, 1)
        counts = np.bincount(host, minlength=num).reshape(-1, *([1] * (data.ndim - 1)))
        counts = device.to_device(np.maximum(counts, 1).astype(data.dtype))
        return (total / counts).astype(data.dtype)

    return kernel


for _kind in ("Sum", "Prod", "Max", "Min", "Mean"):
    op(f"Segment{_kind}")(lambda ctx, kind=_kind: _sorted_segment(ctx, kind))


# --- SparseSegment*: rows data[indices[k]] into segment segment_ids[k] ---------------------------
def _sparse_segment_rows(node: Any, device: Any, data: Any, indices: Any, ids: Any,
                         num: int | None) -> tuple[np.ndarray, int]:
    """Checks a SparseSegment op's inputs; returns the ids on the host and the segment count."""
    _check_vectors(node, indices, ids)
    host_ids, host_indices = host_copy(device, ids), host_copy(device, indices)
    if host_ids.size and (np.any(np.diff(host_ids) < 0) or host_ids[0] < 0):
        raise errors.InvalidArgumentError(None, node, "segment ids are not increasing")
    bad = np.flatnonzero((host_indices < 0) | (host_indices >= data.shape[0]))
    if bad.size:
        raise errors.InvalidArgumentError(
            None, node, f"Bad: indices[{bad[0]}] == {int(host_indices[bad[0]])} out of range "
            f"[0, {data.shape[0]})")
    count = num if num is not None else (int(host_ids[-1]) + 1 if host_ids.size else 0)
    if host_ids.size and host_ids[-1] >= count:
        raise errors.InvalidArgumentError(
            None, node, f"segment ids must be < num_segments: {int(host_ids[-1])} vs {count}")
    return host_ids, count


def _scale(kind: str, counts: np.ndarray, dtype: np.dtype) -> np.ndarray:
    counts = np.maximum(counts, 1).astype(np.float64)
    return (1.0 / counts if kind == "Mean" else 1.0 / np.sqrt(counts)).astype(dtype)


def _sparse_segment(ctx: BuildContext, kind: str, with_num: bool):
    node, xp, device = ctx.op, ctx.xp, ctx.device

    def kernel(data: Any, indices: Any, ids: Any, num_segments: Any = None) -> Any:
        if with_num and not device.is_host:
            return _sparse_segment_unchecked(xp, device, node, kind, data, indices, ids,
                                             int(num_segments))
        host_ids, count = _sparse_segment_rows(node, device, data, indices, ids,
                                               int(num_segments) if with_num else None)
        out = _segment_reduce(xp, device, "Sum", data[indices], ids, count, 1)
        if kind == "Sum":
            return out
        scale = _scale(kind, np.bincount(host_ids, minlength=count)[:count], data.dtype)
        return out * device.to_device(scale.reshape(-1, *([1] * (data.ndim - 1))))

    return kernel


for _kind in ("Sum", "Mean", "SqrtN"):
    op(f"SparseSegment{_kind}")(lambda ctx, kind=_kind: _sparse_segment(ctx, kind, False))
    op(f"SparseSegment{_kind}WithNumSegments", host_inputs=(3,))(
        lambda ctx, kind=_kind: _sparse_segment(ctx, kind, True))


def _sparse_segment_unchecked(xp: Any, device: Any, node: Any, kind: str, data: Any,
                              indices: Any, ids: Any, count: int) -> Any:
    # GPUs, segment count given: no host synchronization.  As TF's GPU kernels, an index
    # outside data reads a zero row and an id outside [0, count) is dropped (ids are not
    # checked for order).
    _check_vectors(node, indices, ids)
    out = _segment_reduce(xp, device, "Sum", take_rows(xp, data, indices), ids, count, 1)
    if kind == "Sum":
        return out
    scale = _device_scale(xp, device, kind, ids, count, data.dtype)
    return out * scale.reshape(-1, *([1] * (data.ndim - 1)))


def _device_scale(xp: Any, device: Any, kind: str, ids: Any, count: int, dtype: Any) -> Any:
    """1/n (Mean) or 1/sqrt(n) (SqrtN) per segment, n counted on the device (at least 1)."""
    ones = xp.ones(ids.shape, dtype=np.float64)
    counts = xp.maximum(_segment_reduce(xp, device, "Sum", ones, ids, count, 1), 1)
    return (1.0 / counts if kind == "Mean" else 1.0 / xp.sqrt(counts)).astype(dtype)


def _check_vectors(node: Any, indices: Any, ids: Any) -> None:
    if indices.ndim != 1 or ids.ndim != 1 or indices.shape != ids.shape:
        raise errors.InvalidArgumentError(
            None, node, f"indices and segment_ids should be vectors of the same length, got "
            f"{list(indices.shape)} and {list(ids.shape)}")


def _sparse_segment_grad(ctx: BuildContext, kind: str):
    # out[indices[k]] += grad[segment_ids[k]] (scaled by 1/n or 1/sqrt(n) of its segment).  The
    # V2 form returns only the rows of the distinct indices, with those indices (sorted).
    node, xp, device = ctx.op, ctx.xp, ctx.device
    v2 = node.type.endswith("V2")

    def kernel(grad: Any, indices: Any, ids: Any, output_dim0: Any) -> Any:
        rows = int(output_dim0)
        if not v2 and not device.is_host:
            return _sparse_segment_grad_unchecked(xp, device, kind, grad, indices, ids, rows)
        host_ids = host_copy(device, ids)
        host_indices = host_copy(device, indices)
        if host_ids.size and (host_ids.min() < 0 or host_ids.max() >= grad.shape[0]):
            raise errors.InvalidArgumentError(
                None, node, f"Segment id {int(host_ids.max())} out of range [0, {grad.shape[0]})")
        bad = np.flatnonzero((host_indices < 0) | (host_indices >= rows))
        if bad.size:
            raise errors.InvalidArgumentError(
                None, node, f"Index {int(host_indices[bad[0]])} out of range [0, {rows}).")
        picked = grad[ids]
        if kind != "Sum":
            scale = _scale(kind, np.bincount(host_ids, minlength=grad.shape[0]), grad.dtype)
            picked = picked * device.to_device(scale[host_ids].reshape(
                -1, *([1] * (grad.ndim - 1))))
        if v2:
            unique, position = np.unique(host_indices, return_inverse=True)
            out = xp.zeros((unique.size, *grad.shape[1:]), dtype=grad.dtype)
            scatter_at(xp, device, "add", out, device.to_device(position.reshape(-1)), picked)
            return out, device.to_device(unique.astype(host_indices.dtype))
        out = xp.zeros((rows, *grad.shape[1:]), dtype=grad.dtype)
        scatter_at(xp, device, "add", out, indices, picked)
        return out

    return kernel


def _sparse_segment_grad_unchecked(xp: Any, device: Any, kind: str, grad: Any, indices: Any,
                                   ids: Any, rows: int) -> Any:
    # GPUs: no host synchronization; an id outside grad reads zeros, an index outside the
    # output is dropped (TF's GPU kernels do not check either).
    picked = take_rows(xp, grad, ids)
    if kind != "Sum":
        scale = _device_scale(xp, device, kind, ids, grad.shape[0], grad.dtype)
        picked = picked * take_rows(xp, scale, ids).reshape(-1, *([1] * (grad.ndim - 1)))
    out = xp.zeros((rows, *grad.shape[1:]), dtype=grad.dtype)
    return scatter_rows(xp, device, "add", out, indices, picked)


for _kind in ("Sum", "Mean", "SqrtN"):
    for _suffix in ("Grad", "GradV2"):
        op(f"SparseSegment{_kind}{_suffix}", host_inputs=(3,))(
            lambda ctx, kind=_kind: _sparse_segment_grad(ctx, kind))
