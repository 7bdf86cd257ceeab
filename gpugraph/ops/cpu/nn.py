"""CPU kernels for activations, bias and softmax: one-pass numba loops split over gpugraph's
threads, and numpy's ufunc reductions without their Python wrappers.

Each gives the generic body's bits (``ops/nn_ops.py``) and runs that body where its loop does
not serve the arrays (another dtype or layout, ``GPUGRAPH_CPU_LOOPS=0``, no numba).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph.devices.cpu import loops as cpu_loops
from gpugraph.devices.cpu import threads as cpu_threads
from gpugraph.ops import nn_ops
from gpugraph.ops.registry import UNSERVED, BuildContext, FusedContext, fused, op


def _zero(x: Any) -> Any:
    return x.dtype.type(0)


@op("Relu", device="cpu")
def _relu(ctx: BuildContext):
    generic, loop = nn_ops.relu(ctx), cpu_loops.get("relu", np)

    def kernel(x: Any) -> Any:
        if loop is not None and cpu_loops.fits(x):
            out = np.empty_like(x)
            cpu_threads.elementwise(loop, (out, x), _zero(x))
            return out
        return generic(x)

    return kernel


@op("ReluGrad", device="cpu")
def _relu_grad(ctx: BuildContext):
    generic, loop = nn_ops.relu_grad(ctx), cpu_loops.get("relu_grad", np)

    def kernel(g: Any, features: Any) -> Any:
        if loop is not None and cpu_loops.fits(g, features):
            out = np.empty_like(g)
            cpu_threads.elementwise(loop, (out, g, features), _zero(g))
            return out
        return generic(g, features)

    return kernel


def _by_rows(fn: Any, value: Any, bias: Any, *scalars: Any) -> Any:
    out = np.empty_like(value)
    rows = (out.reshape(-1, bias.shape[0]), value.reshape(-1, bias.shape[0]), bias)
    cpu_threads.over_rows(fn, (*rows, *scalars), (0, 1))
    return out


@op("BiasAdd", "BiasAddV1", device="cpu")
def _bias_add(ctx: BuildContext):
    generic, loop = nn_ops.bias_add(ctx), cpu_loops.get("bias_add", np)
    fmt, node = ctx.attr_or("data_format", b"NHWC"), ctx.op

    def kernel(value: Any, bias: Any) -> Any:
        axis = nn_ops.bias_axis(node, fmt, value, bias)
        if loop is not None and axis == value.ndim - 1 and cpu_loops.fits(value, bias,
                                                                          same_shape=False):
            return _by_rows(loop, value, bias)
        return generic(value, bias)

    return kernel


@fused(("BiasAdd", "Relu"), device="cpu")
def _bias_add_relu(fctx: FusedContext):
    """Relu(BiasAdd(value, bias)) in one pass over channels-last ``value`` (a dense or
    convolution layer's activation: one read and one write instead of two of each), with the
    two ops' bits."""
    loop = cpu_loops.get("bias_add_relu", np)
    if loop is None:
        return None
    ctx = fctx.contexts[0]
    fmt, node = ctx.attr_or("data_format", b"NHWC"), ctx.op

    def kernel(value: Any, bias: Any) -> Any:
        axis = nn_ops.bias_axis(node, fmt, value, bias)
        if axis != value.ndim - 1 or not cpu_loops.fits(value, bias, same_shape=False):
            return UNSERVED
        return _by_rows(loop, value, bias, _zero(value))

    return kernel


@op("BiasAddGrad", device="cpu")
def _bias_add_grad(ctx: BuildContext):
    generic, loop = nn_ops.bias_add_grad(ctx), cpu_loops.get("column_sums", np)
    fmt = ctx.attr_or("data_format", b"NHWC")

    def kernel(grad: Any) -> Any:
        axis = nn_ops.channel_axis(fmt, grad.ndim)
        if (loop is not None and axis == grad.ndim - 1 and grad.shape[axis] > 1
                and cpu_loops.fits(grad)):
            out = np.empty(grad.shape[axis], dtype=grad.dtype)
            loop(out, grad.reshape(-1, grad.shape[axis]))
            return out
        return generic(grad)

    return kernel


class _NumpyRows(nn_ops.Rows):
    """numpy's ufunc reduce is np.max without its Python wrapper (~1 us of a small batch's
    ~3 us); the same reduction, the same bits."""

    def __init__(self) -> None:
        super().__init__(np)

    def max(self, x: Any) -> Any:
        return np.maximum.reduce(x, axis=-1, keepdims=True)

    def sum(self, x: Any) -> Any:
        return np.add.reduce(x, axis=-1, keepdims=True)

    def out_of_range(self, labels: Any, classes: int) -> bool:
        # One reduction over the labels viewed as unsigned (a negative label becomes a huge
        # one) instead of three array ops and np.any (~3.8 -> ~1.2 us per batch).
        if labels.dtype.kind == "i" and labels.ndim == 1:
            return labels.size > 0 and int(np.maximum.reduce(
                labels.view(f"u{labels.dtype.itemsize}"))) >= classes
        return super().out_of_range(labels, classes)


_ROWS = _NumpyRows()


@op("Softmax", device="cpu")
def _softmax(ctx: BuildContext):
    return nn_ops.softmax(np, _ROWS)


@op("LogSoftmax", device="cpu")
def _log_softmax(ctx: BuildContext):
    return nn_ops.log_softmax(np, _ROWS)


@op("SoftmaxCrossEntropyWithLogits", device="cpu")
def _softmax_xent(ctx: BuildContext):
    return nn_ops.softmax_xent(np, ctx.op, _ROWS)


@op("SparseSoftmaxCrossEntropyWithLogits", device="cpu")
def _sparse_softmax_xent(ctx: BuildContext):
    return nn_ops.sparse_softmax_xent(np, ctx.op, _ROWS)
