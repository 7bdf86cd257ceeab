"""Activations and their gradients, softmax and the cross-entropies, L2Loss, BiasAdd, BatchNorm.

Formulas follow TF's CPU kernels (Eigen functors), e.g. ``EluGrad`` and ``SeluGrad`` take the
op's *outputs*, ``ReluGrad`` passes gradient only where ``features > 0``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, dims_text, op

_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


def _scalar(x: Any, value: float) -> Any:
    return x.dtype.type(value)


# --- activations -------------------------------------------------------------------------------
@op("Relu")
def relu(ctx: BuildContext):
    xp = ctx.xp
    return lambda x: xp.maximum(x, _scalar(x, 0))


@op("ReluGrad")
def relu_grad(ctx: BuildContext):
    # TF: gradients * (features > 0)
    return lambda g, features: g * (features > 0).astype(g.dtype)


@op("Relu6")
def _relu6(ctx: BuildContext):
    xp = ctx.xp
    return lambda x: xp.minimum(xp.maximum(x, _scalar(x, 0)), _scalar(x, 6))


@op("Relu6Grad")
def _relu6_grad(ctx: BuildContext):
    return lambda g, f: g * ((f > 0) & (f < 6)).astype(g.dtype)  # TF: g * (0 < f < 6)


@op("LeakyRelu")
def _leaky_relu(ctx: BuildContext):
    alpha, xp = ctx.attr("alpha"), ctx.xp
    return lambda x: xp.where(x > 0, x, x * _scalar(x, alpha))


@op("LeakyReluGrad")
def _leaky_relu_grad(ctx: BuildContext):
    alpha, xp = ctx.attr("alpha"), ctx.xp
    return lambda g, f: xp.where(f > 0, g, g * _scalar(g, alpha))


@op("Elu")
def _elu(ctx: BuildContext):
    xp = ctx.xp
    return lambda x: xp.where(x < 0, xp.expm1(xp.minimum(x, _scalar(x, 0))), x)


@op("EluGrad")
def _elu_grad(ctx: BuildContext):
    xp = ctx.xp
    return lambda g, y: xp.where(y < 0, g * (y + _scalar(y, 1)), g)


@op("Selu")
def _selu(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any) -> Any:
        neg = _scalar(x, _SELU_SCALE * _SELU_ALPHA) * xp.expm1(xp.minimum(x, _scalar(x, 0)))
        return xp.where(x < 0, neg, x * _scalar(x, _SELU_SCALE))

    return kernel


@op("SeluGrad")
def _selu_grad(ctx: BuildContext):
    xp = ctx.xp

    def kernel(g: Any, y: Any) -> Any:
        scale, scale_alpha = _scalar(y, _SELU_SCALE), _scalar(y, _SELU_SCALE * _SELU_ALPHA)
        return xp.where(y < 0, g * (y + scale_alpha), g * scale)

    return kernel


@op("Softplus")
def _softplus(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any) -> Any:
        # TF's thresholds: exp(x) below log(eps) + 2, x itself above -(log(eps) + 2).
        threshold = np.log(np.finfo(x.dtype).eps) + 2
        with np.errstate(over="ignore"):
            mid = xp.log1p(xp.exp(x))
        out = xp.where(x > -threshold, x, xp.where(x < threshold, xp.exp(x), mid))
        return out.astype(x.dtype, copy=False)

    return kernel


@op("SoftplusGrad")
def _softplus_grad(ctx: BuildContext):
    xp = ctx.xp

    def kernel(g: Any, features: Any) -> Any:
        with np.errstate(over="ignore"):
            return (g / (_scalar(g, 1) + xp.exp(-features))).astype(g.dtype, copy=False)

    return kernel


# --- softmax and cross-entropy ------------------------------------------------------------------
class Rows:
    """Reductions over the last axis the softmax kernels use, written against ``xp``; a
    backend may hand the kernels faster ones with the same bits (``ops/cpu/nn.py``)."""

    def __init__(self, xp: Any):
        self.xp = xp

    def max(self, x: Any) -> Any:
        return self.xp.max(x, axis=-1, keepdims=True)

    def sum(self, x: Any) -> Any:
        return self.xp.sum(x, axis=-1, keepdims=True)

    def out_of_range(self, labels: Any, classes: int) -> bool:
        """Whether a label lies outside [0, classes)."""
        return bool(self.xp.any((labels < 0) | (labels >= classes)))


def softmax(xp: Any, rows: Rows):
    """The Softmax kernel with ``rows``' reductions."""

    def kernel(logits: Any) -> Any:
        e = xp.exp(logits - rows.max(logits))
        return e / rows.sum(e)

    return kernel


def log_softmax(xp: Any, rows: Rows):
    """The LogSoftmax kernel with ``rows``' reductions."""

    def kernel(logits: Any) -> Any:
        s = logits - rows.max(logits)
        return s - xp.log(rows.sum(xp.exp(s)))

    return kernel


@op("Softmax")
def _softmax(ctx: BuildContext):
    return softmax(ctx.xp, Rows(ctx.xp))


@op("LogSoftmax")
def _log_softmax(ctx: BuildContext):
    return log_softmax(ctx.xp, Rows(ctx.xp))


def softmax_xent(xp: Any, node: Any, rows: Rows):
    """The SoftmaxCrossEntropyWithLogits kernel with ``rows``' row maximum."""

    def kernel(logits: Any, labels: Any) -> tuple:
        if logits.ndim != 2 or labels.ndim != 2:
            raise errors.InvalidArgumentError(
                None, node, f"logits and labels must be either 2-dimensional, or broadcasted to "
                f"be 2-dimensional. logits: {list(logits.shape)} labels: {list(labels.shape)}")
        labels = xp.broadcast_to(labels, xp.broadcast_shapes(logits.shape, labels.shape)
                                 if hasattr(xp, "broadcast_shapes") else logits.shape)
        s = logits - rows.max(logits)
        e = xp.exp(s)
        sum_e = xp.sum(e, axis=-1, keepdims=True)
        loss = xp.sum(labels * (xp.log(sum_e) - s), axis=-1)
        return loss, e / sum_e - labels

    return kernel


@op("SoftmaxCrossEntropyWithLogits")
def _softmax_xent(ctx: BuildContext):
    return softmax_xent(ctx.xp, ctx.op, Rows(ctx.xp))


def sparse_softmax_xent(xp: Any, node: Any, rows: Rows, checked: bool = True):
    """The SparseSoftmaxCrossEntropyWithLogits kernel with ``rows``' reductions.

    ``checked``: a label outside [0, classes) raises, as on TF's CPU; otherwise its loss and
    gradient rows are NaN, as TF's GPU kernel documents (no host synchronization).
    """

    def kernel(logits: Any, labels: Any) -> tuple:
        classes = logits.shape[-1]
        if not checked:
            return _nan_rows_for_bad_labels(xp, kernel_body, logits, labels, classes)
        if rows.out_of_range(labels, classes):
            bad = (labels < 0) | (labels >= classes)
            value = int(labels[xp.argmax(bad)])
            raise errors.InvalidArgumentError(
                None, node, f"Received a label value of {value} which is outside the valid range "
                f"of [0, {classes}).  Label values: {' '.join(str(int(v)) for v in labels)}")
        return kernel_body(logits, labels)

    def kernel_body(logits: Any, labels: Any) -> tuple:
        s = logits - rows.max(logits)
        e = xp.exp(s)
        sum_e = rows.sum(e)
        index = xp.arange(logits.shape[0])
        loss = xp.log(sum_e[:, 0]) - s[index, labels]
        backprop = e / sum_e
        backprop[index, labels] -= _scalar(backprop, 1)
        return loss, backprop

    return kernel


def _nan_rows_for_bad_labels(xp: Any, body: Any, logits: Any, labels: Any, classes: int) -> tuple:
    bad = (labels < 0) | (labels >= classes)
    loss, backprop = body(logits, xp.clip(labels, 0, max(classes - 1, 0)))
    nan = _scalar(loss, np.nan)
    return xp.where(bad, nan, loss), xp.where(bad[:, None], nan, backprop)


@op("SparseSoftmaxCrossEntropyWithLogits")
def _sparse_softmax_xent(ctx: BuildContext):
    # GPUs do not check the labels (TF's GPU kernel does not: NaN rows instead of an error).
    return sparse_softmax_xent(ctx.xp, ctx.op, Rows(ctx.xp), checked=ctx.device.is_host)


@op("L2Loss")
def _l2_loss(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any) -> Any:
        acc = np.dtype(np.float32) if x.dtype.itemsize < 4 else x.dtype
        return (xp.sum(xp.square(x.astype(acc, copy=False))) * acc.type(0.5)).astype(x.dtype)

    return kernel


# --- bias ----------------------------------------------------------------------------------------
def channel_axis(data_format: bytes, ndim: int) -> int:
    return 1 if data_format.startswith(b"NC") and ndim > 2 else ndim - 1


def bias_axis(node: Any, fmt: bytes, value: Any, bias: Any) -> int:
    """The channel axis of ``value``; InvalidArgumentError where ``bias`` does not fit it."""
    axis = channel_axis(fmt, value.ndim)
    if value.ndim < 2 or value.shape[axis] != bias.shape[0]:
        raise errors.InvalidArgumentError(
            None, node, f"Must provide as many biases as the channel dimension of the input "
            f"tensor: {list(bias.shape)} vs. {list(value.shape)}")
    return axis


@op("BiasAdd", "BiasAddV1")
def bias_add(ctx: BuildContext):
    fmt, node = ctx.attr_or("data_format", b"NHWC"), ctx.op

    def kernel(value: Any, bias: Any) -> Any:
        axis = bias_axis(node, fmt, value, bias)
        return value + bias.reshape((-1,) + (1,) * (value.ndim - axis - 1))

    return kernel


@op("BiasAddGrad")
def bias_add_grad(ctx: BuildContext):
    fmt, xp = ctx.attr_or("data_format", b"NHWC"), ctx.xp

    def kernel(grad: Any) -> Any:
        axis = channel_axis(fmt, grad.ndim)
        axes = tuple(i for i in range(grad.ndim) if i != axis)
        acc = np.float32 if grad.dtype.kind == "f" and grad.dtype.itemsize < 4 else grad.dtype
        return xp.sum(grad, axis=axes, dtype=acc).astype(grad.dtype, copy=False)

    return kernel


# --- fused batch norm ---------------------------------------------------------------------------
def _bn_layout(fmt: bytes, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(reduction axes, shape to broadcast a per-channel vector) for NHWC/NCHW data."""
    if fmt.startswith(b"NC"):
        return (0, *range(2, ndim)), (1, -1) + (1,) * (ndim - 2)
    return tuple(range(ndim - 1)), (-1,)


@op("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def _fused_batch_norm(ctx: BuildContext):
    eps, training = ctx.attr("epsilon"), ctx.attr("is_training")
    factor = ctx.attr_or("exponential_avg_factor", 1.0)
    fmt, xp, v3 = ctx.attr_or("data_format", b"NHWC"), ctx.xp, ctx.op.type == "FusedBatchNormV3"

    def kernel(x: Any, scale: Any, offset: Any, mean: Any, var: Any) -> tuple:
        axes, vec = _bn_layout(fmt, x.ndim)
        xf = x.astype(scale.dtype, copy=False)
        if training:
            count = x.size // max(scale.size, 1)
            batch_mean = xp.mean(xf, axis=axes)
            batch_var = xp.mean(xp.square(xf - batch_mean.reshape(vec)), axis=axes)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                unbiased = batch_var * scale.dtype.type(count / max(count - 1, 1))
            use_mean, use_var = batch_mean, batch_var
            if factor != 1.0 and mean.size:
                f = scale.dtype.type(factor)
                out_mean = (1 - f) * mean + f * batch_mean
                out_var = (1 - f) * var + f * unbiased
            else:
                out_mean, out_var = batch_mean, unbiased
            saved = (batch_mean, batch_var)
        else:
            use_mean, use_var = mean, var
            out_mean, out_var, saved = mean, var, (mean, var)
        inv = 1 / xp.sqrt(use_var + scale.dtype.type(eps))
        y = (xf - use_mean.reshape(vec)) * (inv * scale).reshape(vec) + offset.reshape(vec)
        outs = (y.astype(x.dtype, copy=False), out_mean, out_var, *saved)
        return outs + (xp.zeros((0,), dtype=scale.dtype),) if v3 else outs

    return kernel


# --- batch norm of GraphDef versions before 9 (tf.nn.batch_norm_with_global_normalization) ----
def _check_ranks(node: Any, named: dict[str, tuple[Any, int]]) -> None:
    for name, (array, rank) in named.items():
        if array.ndim != rank:
            raise errors.InvalidArgumentError(
                None, node, f"{name} must be {rank}-dimensional{dims_text(array.shape)}")


@op("BatchNormWithGlobalNormalization")
def _batch_norm_global(ctx: BuildContext):
    """``(t - m) * (rsqrt(v + eps) * gamma) + beta`` over the last axis of 4-D ``t`` (without
    ``gamma`` unless scale_after_normalization), in T, as TF's kernel groups it."""
    eps, scale, xp, node = ctx.attr("variance_epsilon"), ctx.attr("scale_after_normalization"), \
        ctx.xp, ctx.op

    def kernel(t: Any, m: Any, v: Any, beta: Any, gamma: Any) -> Any:
        _check_ranks(node, {"input": (t, 4), "mean": (m, 1), "variance": (v, 1),
                            "beta": (beta, 1), "gamma": (gamma, 1)})
        factor = 1 / xp.sqrt(v + t.dtype.type(eps))
        if scale:
            factor = factor * gamma
        return (t - m) * factor + beta

    return kernel


@op("BatchNormWithGlobalNormalizationGrad")
def _batch_norm_global_grad(ctx: BuildContext):
    """(dx, dm, dv, db, dg) of BatchNormWithGlobalNormalization, by TF's formulas: db the sum
    of ``backprop`` over all but the last axis, ``s = sum(backprop * (t - m))``, and with
    ``r = rsqrt(v + eps)``: dx = backprop * r * gamma, dm = -db * r * gamma, dg = s * r,
    dv = s * (r * -0.5 / (v + eps)) * gamma (without gamma, and dg = 0, unscaled)."""
    eps, scale, xp, node = ctx.attr("variance_epsilon"), ctx.attr("scale_after_normalization"), \
        ctx.xp, ctx.op

    def kernel(t: Any, m: Any, v: Any, gamma: Any, backprop: Any) -> tuple:
        _check_ranks(node, {"input": (t, 4), "mean": (m, 1), "variance": (v, 1),
                            "gamma": (gamma, 1), "out_backprop": (backprop, 4)})
        kind = t.dtype.type
        axes = (0, 1, 2)
        db = xp.sum(backprop, axis=axes)
        shifted = v + kind(eps)
        r = 1 / xp.sqrt(shifted)
        s = xp.sum(backprop * (t - m), axis=axes)
        factor = r * gamma if scale else r
        dg = s * r if scale else xp.zeros_like(r)
        half = r * kind(-0.5) / shifted
        dv = s * (half * gamma) if scale else s * half
        return backprop * factor, -db * factor, dv, db, dg

    return kernel


@op("FusedBatchNormGrad", "FusedBatchNormGradV2", "FusedBatchNormGradV3")
def _fused_batch_norm_grad(ctx: BuildContext):
    eps, training = ctx.attr("epsilon"), ctx.attr("is_training")
    fmt, xp = ctx.attr_or("data_format", b"NHWC"), ctx.xp

    def kernel(dy: Any, x: Any, scale: Any, mean: Any, var: Any, *reserve: Any) -> tuple:
        axes, vec = _bn_layout(fmt, x.ndim)
        u = scale.dtype
        dyf, xf = dy.astype(u, copy=False), x.astype(u, copy=False)
        inv = 1 / xp.sqrt(var + u.type(eps))
        centered = xf - mean.reshape(vec)
        offset_grad = xp.sum(dyf, axis=axes)
        scale_grad = xp.sum(dyf * centered, axis=axes) * inv
        if training:
            count = u.type(x.size // max(scale.size, 1))
            dx = (scale * inv).reshape(vec) * (
                dyf - (offset_grad / count).reshape(vec)
                - centered * (inv * inv * xp.sum(dyf * centered, axis=axes) / count).reshape(vec))
        else:
            dx = dyf * (scale * inv).reshape(vec)
        empty = xp.zeros((0,), dtype=u)
        return (dx.astype(x.dtype, copy=False), scale_grad, offset_grad, empty, empty)

    return kernel
