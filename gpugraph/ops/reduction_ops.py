"""Reductions (Sum, Mean, Max, Min, Prod, All, Any) and ArgMax/ArgMin.

The axes input is a host input.  Half-precision sums accumulate in float32 (as TF's CPU kernels
do) and round once at the end; an empty reduction yields TF's identity value (0, 1, the lowest
or highest value), never numpy's error.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, op


def _axes(node: Any, x: Any, axes: Any) -> tuple[int, ...]:
    out = []
    for a in np.asarray(axes).reshape(-1).tolist():
        if not -x.ndim <= a < max(x.ndim, 1):
            raise errors.InvalidArgumentError(
                None, node, f"Invalid reduction dimension ({a} for input with {x.ndim} "
                "dimension(s)")
        out.append(a % x.ndim if x.ndim else 0)
    return tuple(sorted(set(out)))


def _accumulator(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype.kind == "f" and dtype.itemsize < 4 else dtype


def _reduction(ctx: BuildContext, reduce: Any, identity_on_no_axes: bool = True):
    keep, node = ctx.attr_or("keep_dims", False), ctx.op

    def kernel(x: Any, axes: Any) -> Any:
        if identity_on_no_axes and np.size(axes) == 0:
            # Reducing over no axes is the identity (TF forwards the input too).  Gradients
            # of same-shape binary ops reduce over BroadcastGradientArgs' empty axes: an LSTM
            # step (W5) did 40 such ~3.7 us Sums.
            return x
        out = reduce(x, _axes(node, x, axes), keep)
        return out.astype(x.dtype, copy=False) if hasattr(out, "astype") else x.dtype.type(out)

    return kernel


@op("Sum", host_inputs=(1,))
def _sum(ctx: BuildContext):
    # The array method skips numpy's Python-level dispatch (a third of a small Sum's cost).
    return _reduction(ctx, lambda x, ax, keep: x.sum(axis=ax, keepdims=keep,
                                                     dtype=_accumulator(x.dtype)))


@op("Prod", host_inputs=(1,))
def _prod(ctx: BuildContext):
    xp = ctx.xp
    return _reduction(ctx, lambda x, ax, keep: xp.prod(x, axis=ax, keepdims=keep,
                                                        dtype=_accumulator(x.dtype)))


@op("Mean", host_inputs=(1,))
def _mean(ctx: BuildContext):
    xp = ctx.xp

    def mean(x: Any, ax: tuple, keep: bool) -> Any:
        count = int(np.prod([x.shape[a] for a in ax], dtype=np.int64))
        total = xp.sum(x, axis=ax, keepdims=keep, dtype=_accumulator(x.dtype))
        if x.dtype.kind in "iu":  # TF divides integer sums with truncation
            if count == 0:
                return xp.zeros_like(total)
            q = xp.abs(total) // count
            return xp.where(total < 0, -q, q)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 -> nan, as TF
            return total / total.dtype.type(count) if count else total * np.nan

    return _reduction(ctx, mean)


def _extreme(ctx: BuildContext, largest: bool):
    xp = ctx.xp
    fn = xp.max if largest else xp.min

    def reduce(x: Any, ax: tuple, keep: bool) -> Any:
        if x.dtype.kind == "b":
            return (xp.any if largest else xp.all)(x, axis=ax, keepdims=keep)
        info = np.finfo(x.dtype) if x.dtype.kind == "f" else np.iinfo(x.dtype)
        initial = (-np.inf if largest else np.inf) if x.dtype.kind == "f" else (
            info.min if largest else info.max)
        if x.size:  # (CuPy's max/min take no ``initial``: only an empty reduction needs it)
            return fn(x, axis=ax, keepdims=keep)
        shape = tuple(1 if i in ax else n for i, n in enumerate(x.shape) if keep or i not in ax)
        return xp.full(shape, initial, dtype=x.dtype)

    return _reduction(ctx, reduce)


@op("Max", host_inputs=(1,))
def _max(ctx: BuildContext):
    return _extreme(ctx, largest=True)


@op("Min", host_inputs=(1,))
def _min(ctx: BuildContext):
    return _extreme(ctx, largest=False)


@op("All", host_inputs=(1,))
def _all(ctx: BuildContext):
    xp = ctx.xp
    return _reduction(ctx, lambda x, ax, keep: xp.all(x, axis=ax, keepdims=keep))


@op("Any", host_inputs=(1,))
def _any(ctx: BuildContext):
    xp = ctx.xp
    return _reduction(ctx, lambda x, ax, keep: xp.any(x, axis=ax, keepdims=keep))


@op("ArgMax", "ArgMin", host_inputs=(1,))
def _arg_extreme(ctx: BuildContext):
    xp, node, out = ctx.xp, ctx.op, ctx.out_dtype()
    fn = xp.argmax if ctx.op.type == "ArgMax" else xp.argmin

    def kernel(x: Any, dimension: Any) -> Any:
        axis = int(np.asarray(dimension).reshape(-1)[0])
        if not -x.ndim <= axis < x.ndim:
            raise errors.InvalidArgumentError(
                None, node, f"Expected dimension in the range [{-x.ndim}, {x.ndim}), but got "
                f"{axis}")
        if x.shape[axis] == 0:
            raise errors.InvalidArgumentError(
                None, node, f"Reduction axis {axis} is empty in shape {list(x.shape)}")
        return fn(x, axis=axis).astype(out)

    return kernel


@op("EuclideanNorm", host_inputs=(1,))
def _euclidean_norm(ctx: BuildContext):
    xp = ctx.xp

    def norm(x: Any, axes: tuple, keep: bool) -> Any:
        wide = x.astype(_accumulator(x.dtype), copy=False)
        squares = (wide * xp.conj(wide)).real if x.dtype.kind == "c" else wide * wide
        return xp.sqrt(squares.sum(axis=axes, keepdims=keep))

    return _reduction(ctx, norm, identity_on_no_axes=False)  # no axes: |x|
