"""Set operations over the last dimension (``tf.sets``) and the edit distance of sparse
sequences (``tf.edit_distance``, the label error rate of CTC graphs).

Both group a tensor's entries by all but their last index: a dense ``[..., n]`` tensor gives
every group its ``n`` values, a sparse one (indices, values, dense shape) the values present
at that group's indices.  TF runs these ops on the CPU only; so do these kernels (host_only).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, dims_text, op

_SET_OPERATIONS = ("a-b", "b-a", "intersection", "union")


# --- grouping ------------------------------------------------------------------------------
def _dense_groups(node: Any, x: np.ndarray) -> tuple[tuple[int, ...], dict[tuple, list]]:
    """(group shape, {group index: its values}) of a dense set tensor of rank >= 2."""
    if x.ndim < 2:
        raise errors.InvalidArgumentError(
            None, node, f"Shape {dims_text(x.shape)} has rank {x.ndim} < 2")
    rows = x.reshape(-1, x.shape[-1])
    groups = {index: list(row) for index, row in zip(np.ndindex(*x.shape[:-1]), rows)}
    return tuple(x.shape[:-1]), groups


def _sparse_groups(node: Any, indices: np.ndarray, values: np.ndarray, shape: np.ndarray
                   ) -> tuple[tuple[int, ...], dict[tuple, list]]:
    """(group shape, {group index: its values in index order}) of a sparse set tensor."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        raise errors.InvalidArgumentError(
            None, node, f"Shape {dims_text(shape)} has rank {len(shape)} < 2")
    if indices.ndim != 2 or indices.shape[1] != len(shape) or len(values) != len(indices):
        raise errors.InvalidArgumentError(
            None, node, f"Invalid sparse tensor: indices {dims_text(indices.shape)}, values "
            f"{dims_text(values.shape)}, shape {dims_text(shape)}")
    if len(indices) and ((indices < 0).any() or (indices >= np.array(shape)).any()):
        raise errors.InvalidArgumentError(None, node, "Sparse set index out of bounds")
    order = np.lexsort(indices.T[::-1]) if len(indices) else np.zeros(0, np.int64)
    groups: dict[tuple, list] = {}
    for i in order:
        groups.setdefault(tuple(int(d) for d in indices[i, :-1]), []).append(values[i])
    return shape[:-1], groups


def _check_group_shapes(node: Any, first: tuple, second: tuple) -> None:
    if first != second:
        raise errors.InvalidArgumentError(
            None, node, f"Mismatched shapes {dims_text(first)} vs {dims_text(second)}")


# --- set operations ------------------------------------------------------------------------
def _combine(how: str, a: Iterable, b: Iterable) -> list:
    first, second = set(a), set(b)
    result = {"a-b": first - second, "b-a": second - first,
              "intersection": first & second, "union": first | second}[how]
    return sorted(result)  # TF keeps each result in a std::set: ascending


def _set_result(shape: tuple, results: dict[tuple, list], dtype: np.dtype) -> tuple:
    """The sparse (indices, values, dense shape) of per-group results: groups in row-major
    order, each result's values at positions 0..len-1 of the last dimension, which is as long
    as the longest result."""
    width = max((len(r) for r in results.values()), default=0)
    indices, values = [], []
    for group in sorted(results):
        for j, value in enumerate(results[group]):
            indices.append((*group, j))
            values.append(value)
    out_indices = np.array(indices, dtype=np.int64).reshape(-1, len(shape) + 1)
    return out_indices, np.array(values, dtype=dtype), np.array([*shape, width], np.int64)


def _set_operation(ctx: BuildContext, read_first, read_second):
    """A kernel applying the node's set_operation group by group to two set tensors, read
    from the kernel's inputs by ``read_first``/``read_second`` (each returning the group
    shape, the groups, the number of inputs it took and the values' dtype)."""
    node, how = ctx.op, ctx.attr("set_operation").decode()

    def kernel(*inputs: Any) -> tuple:
        if how not in _SET_OPERATIONS:
            raise errors.InvalidArgumentError(None, node, f"Invalid set_operation {how}.")
        shape_a, groups_a, used, dtype = read_first(node, inputs)
        shape_b, groups_b, _, _ = read_second(node, inputs[used:])
        _check_group_shapes(node, shape_a, shape_b)
        results = {g: _combine(how, groups_a.get(g, ()), groups_b.get(g, ()))
                   for g in set(groups_a) | set(groups_b)}
        return _set_result(shape_a, results, dtype)

    return kernel


def _read_dense(node: Any, inputs: tuple) -> tuple:
    x = np.asarray(inputs[0])
    return (*_dense_groups(node, x), 1, x.dtype)


def _read_sparse(node: Any, inputs: tuple) -> tuple:
    indices, values, shape = (np.asarray(v) for v in inputs[:3])
    return (*_sparse_groups(node, indices, values, shape), 3, values.dtype)


@op("DenseToDenseSetOperation", host_only=True)
def _dense_to_dense(ctx: BuildContext):
    return _set_operation(ctx, _read_dense, _read_dense)


@op("DenseToSparseSetOperation", host_only=True)
def _dense_to_sparse(ctx: BuildContext):
    return _set_operation(ctx, _read_dense, _read_sparse)


@op("SparseToSparseSetOperation", host_only=True)
def _sparse_to_sparse(ctx: BuildContext):
    return _set_operation(ctx, _read_sparse, _read_sparse)


@op("SetSize", host_only=True)
def _set_size(ctx: BuildContext):
    """The number of distinct values of each group of a sparse set tensor, int32, shaped as
    its groups."""
    node = ctx.op

    def kernel(indices: Any, values: Any, shape: Any) -> Any:
        groups_shape, groups = _read_sparse(node, (indices, values, shape))[:2]
        sizes = np.zeros(groups_shape, dtype=np.int32)
        for group, members in groups.items():
            sizes[group] = len(set(members))
        return sizes

    return kernel


# --- edit distance -------------------------------------------------------------------------
def _levenshtein(a: list, b: list) -> int:
    """The fewest insertions, deletions and substitutions that turn ``a`` into ``b``."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


@op("EditDistance", host_only=True)
def _edit_distance(ctx: BuildContext):
    """Levenshtein distance per group of two sparse sequence tensors, float32, shaped as the
    larger of their group shapes; with ``normalize``, divided by the truth's length (a group
    with no truth: infinity, or 0 where the hypothesis is empty too; no hypothesis: 1)."""
    node, normalize = ctx.op, ctx.attr("normalize")

    def kernel(h_indices: Any, h_values: Any, h_shape: Any, t_indices: Any, t_values: Any,
               t_shape: Any) -> Any:
        if len(h_shape) != len(t_shape):
            raise errors.InvalidArgumentError(
                None, node, "hypothesis and truth must have the same rank; hypothesis "
                f"{dims_text(h_shape)} vs truth {dims_text(t_shape)}")
        h_groups = _sparse_groups(node, h_indices, h_values, h_shape)[1]
        t_groups = _sparse_groups(node, t_indices, t_values, t_shape)[1]
        shape = tuple(max(int(a), int(b)) for a, b in zip(h_shape[:-1], t_shape[:-1]))
        out = np.zeros(shape, dtype=np.float32)
        for group in set(h_groups) | set(t_groups):
            hyp, truth = h_groups.get(group, []), t_groups.get(group, [])
            if not truth:
                distance = float(len(hyp))
                out[group] = np.inf if normalize and distance else distance
            elif not hyp:
                out[group] = 1.0 if normalize else float(len(truth))
            else:
                distance = np.float32(_levenshtein(hyp, truth))
                out[group] = distance / np.float32(len(truth)) if normalize else distance
        return out

    return kernel
