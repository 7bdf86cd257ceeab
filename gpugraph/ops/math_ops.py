"""Elementwise math with TF's broadcasting, comparisons, logic, Select, Cast, AddN, MatMul.

TF's binary ops broadcast like numpy and require both inputs to share a dtype, so numpy's
ufuncs compute TF's result dtype as is.  Where TF's arithmetic differs from numpy's (integer
``Div`` truncates, ``FloorDiv`` of floats is ``floor(x / y)``, integer division by zero is an
error), the kernel says so.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, dims_text, op

# --- ufunc-backed ops: TF op type -> numpy function name ---------------------------------------
_UNARY = {
    "Neg": "negative", "Abs": "absolute", "Sign": "sign", "Square": "square", "Sqrt": "sqrt",
    "Exp": "exp", "Expm1": "expm1", "Log": "log", "Log1p": "log1p", "Tanh": "tanh",
    "Floor": "floor", "Ceil": "ceil", "Round": "round", "Rint": "rint", "Sin": "sin",
    "Cos": "cos", "Tan": "tan", "Asin": "arcsin", "Acos": "arccos", "Atan": "arctan",
    "Sinh": "sinh", "Cosh": "cosh", "Asinh": "arcsinh", "Acosh": "arccosh", "Atanh": "arctanh",
    "IsNan": "isnan", "IsInf": "isinf", "IsFinite": "isfinite", "LogicalNot": "logical_not",
    "Conj": "conjugate", "Real": "real", "Imag": "imag", "Invert": "invert",
}
_BINARY = {
    "Add": "add", "AddV2": "add", "Sub": "subtract", "Mul": "multiply", "Pow": "power",
    "Maximum": "maximum", "Minimum": "minimum", "Atan2": "arctan2",
    "Less": "less", "LessEqual": "less_equal", "Greater": "greater",
    "GreaterEqual": "greater_equal", "LogicalAnd": "logical_and", "LogicalOr": "logical_or",
    "BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor",
}


def _ufunc_builder(name: str):
    def build(ctx: BuildContext):
        return getattr(ctx.xp, name)

    build.__name__ = build.__qualname__ = f"_build_{name}"
    return build


for _table in (_UNARY, _BINARY):
    for _op_type, _fn_name in _table.items():
        op(_op_type)(_ufunc_builder(_fn_name))


@op("Equal", "NotEqual")
def _equality(ctx: BuildContext):
    equal = ctx.op.type == "Equal"
    fn = ctx.xp.equal if equal else ctx.xp.not_equal
    strict = ctx.attr_or("incompatible_shape_error", True)
    xp = ctx.xp

    def kernel(x: Any, y: Any) -> Any:
        try:
            return np.asarray(fn(x, y), dtype=bool) if x.dtype.kind == "O" else fn(x, y)
        except ValueError:
            if strict:
                raise
            # Matches TF: shapes that don't broadcast are simply "not equal".
            return xp.asarray(not equal)

    return kernel


@op("Rsqrt")
def _rsqrt(ctx: BuildContext):
    xp = ctx.xp
    return lambda x: xp.reciprocal(xp.sqrt(x))


@op("Reciprocal", "Inv")
def _reciprocal(ctx: BuildContext):
    xp = ctx.xp
    if ctx.in_dtype().kind in "iu":  # numpy's integer reciprocal is 1 // x, as TF's
        return lambda x: _int_div(xp, xp.ones_like(x), x, ctx.op)
    return xp.reciprocal


@op("Sigmoid")
def _sigmoid(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any) -> Any:
        # exp(-|x|) never overflows; 1 / (1 + e) for x >= 0 and e / (1 + e) below are both
        # the logistic function, divided once with the numerator picked first (7 numpy calls,
        # not 9: small batches pay per call).
        e = xp.exp(-xp.abs(x))
        one = e.dtype.type(1)
        return (xp.where(x >= 0, one, e) / (one + e)).astype(x.dtype, copy=False)

    return kernel


@op("Softsign")
def _softsign(ctx: BuildContext):
    xp = ctx.xp
    return lambda x: x / (1 + xp.abs(x))


@op("SquaredDifference")
def _squared_difference(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any, y: Any) -> Any:
        d = xp.subtract(x, y)
        return xp.multiply(d, xp.conj(d)) if d.dtype.kind == "c" else xp.multiply(d, d)

    return kernel


# --- division: TF's integer rules ----------------------------------------------------------
def _check_int_divisor(xp: Any, y: Any, node: Any) -> None:
    if bool(xp.any(y == 0)):
        raise errors.InvalidArgumentError(None, node, "Integer division by zero")


def _int_div(xp: Any, x: Any, y: Any, node: Any) -> Any:
    """C++ integer division: the quotient truncated toward zero."""
    _check_int_divisor(xp, y, node)
    q = xp.floor_divide(x, y)
    fix = (xp.remainder(x, y) != 0) & ((x < 0) != (y < 0))
    return q + fix.astype(q.dtype)


@op("RealDiv", "Div", "TruncateDiv")
def _div(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op
    if ctx.in_dtype().kind in "iu":
        return lambda x, y: _int_div(xp, x, y, node)
    return xp.true_divide


@op("DivNoNan")
def _div_no_nan(ctx: BuildContext):
    xp = ctx.xp

    def kernel(x: Any, y: Any) -> Any:
        safe = xp.where(y == 0, xp.ones_like(y), y)
        return xp.where(y == 0, xp.zeros_like(x * y), x / safe).astype(x.dtype, copy=False)

    return kernel


@op("FloorDiv")
def _floor_div(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op
    if ctx.in_dtype().kind in "iu":
        def int_kernel(x: Any, y: Any) -> Any:
            _check_int_divisor(xp, y, node)
            return xp.floor_divide(x, y)

        return int_kernel
    return lambda x, y: xp.floor(xp.true_divide(x, y))  # TF: floor(x / y), not numpy's fmod route


@op("FloorMod", "Mod", "TruncateMod")
def _floor_mod(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op
    floor = ctx.op.type == "FloorMod"
    integer = ctx.in_dtype().kind in "iu"

    def kernel(x: Any, y: Any) -> Any:
        if integer:
            _check_int_divisor(xp, y, node)
        return xp.mod(x, y) if floor else xp.fmod(x, y)

    return kernel


# --- gradients of unary ops: (y, dy) -> dx, in TF's exact formulas ------------------------
@op("TanhGrad")
def _tanh_grad(ctx: BuildContext):
    return lambda y, dy: dy * (1 - y * y)


@op("SigmoidGrad")
def _sigmoid_grad(ctx: BuildContext):
    return lambda y, dy: dy * y * (1 - y)


@op("SqrtGrad")
def _sqrt_grad(ctx: BuildContext):
    half = ctx.in_dtype().type(0.5)
    return lambda y, dy: half * dy / y


@op("RsqrtGrad")
def _rsqrt_grad(ctx: BuildContext):
    minus_half = ctx.in_dtype().type(-0.5)
    return lambda y, dy: minus_half * (dy * y) * (y * y)


@op("ReciprocalGrad", "InvGrad")
def _reciprocal_grad(ctx: BuildContext):
    return lambda y, dy: -dy * y * y


# --- selection and casts ---------------------------------------------------------------------
@op("SelectV2")
def _select_v2(ctx: BuildContext):
    return ctx.xp.where


@op("Select")
def _select(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(cond: Any, x: Any, y: Any) -> Any:
        if x.shape != y.shape:
            raise errors.InvalidArgumentError(
                None, node, f"'then' and 'else' must have the same size. but received: "
                f"{list(x.shape)} vs. {list(y.shape)}")
        if cond.ndim == 1 and x.ndim > 1:  # v1 Select: a vector picks whole rows
            if cond.shape[0] != x.shape[0]:
                raise errors.InvalidArgumentError(
                    None, node, f"Number of batches of 'then' must match size of 'cond', but saw: "
                    f"{x.shape[0]} vs. {cond.shape[0]}")
            cond = cond.reshape(cond.shape + (1,) * (x.ndim - 1))
        elif cond.ndim != 0 and cond.shape != x.shape:
            raise errors.InvalidArgumentError(
                None, node, f"'cond' and 'then' must have the same size. but received: "
                f"{list(cond.shape)} vs. {list(x.shape)}")
        return xp.where(cond, x, y)

    return kernel


@op("Cast")
def _cast(ctx: BuildContext):
    src, dst = ctx.attr("SrcT"), ctx.attr("DstT")
    xp = ctx.xp
    narrowing = src.kind == dst.kind == "f" and dst.itemsize < src.itemsize
    if ctx.attr_or("Truncate", False) and narrowing:
        return lambda x: _truncating_cast(xp, x, dst)
    if src.kind == "c" and dst.kind != "c":
        return lambda x: xp.real(x).astype(dst)
    if src.kind == "O" or dst.kind == "O":
        raise errors.UnimplementedError(None, ctx.op, f"Cast between {src} and {dst}")
    return lambda x: xp.asarray(x).astype(dst)


def _truncating_cast(xp: Any, x: Any, dst: np.dtype) -> Any:
    """Cast with ``Truncate=true``: dropped mantissa bits round toward zero, not to nearest."""
    rounded = x.astype(dst)
    away = xp.abs(rounded.astype(x.dtype)) > xp.abs(x)
    toward_zero = xp.nextafter(rounded, xp.zeros_like(rounded))
    return xp.where(away & xp.isfinite(x), toward_zero, rounded)


@op("AddN")
def _add_n(ctx: BuildContext):
    def kernel(*xs: Any) -> Any:
        return functools.reduce(operator.add, xs) if len(xs) > 1 else xs[0].copy()

    return kernel


@op("ClipByValue")
def _clip_by_value(ctx: BuildContext):
    xp = ctx.xp
    return lambda x, lo, hi: xp.minimum(xp.maximum(x, lo), hi)


# --- matrix products -----------------------------------------------------------------------
def matmul(ctx: BuildContext, product: Any):
    """The MatMul kernel computing ``product(a, b)`` of the (transposed) operands."""
    ta, tb, node = ctx.attr("transpose_a"), ctx.attr("transpose_b"), ctx.op

    def kernel(a: Any, b: Any) -> Any:
        if a.ndim != 2 or b.ndim != 2:
            raise _matmul_error(node, a, b)
        try:
            return product(a.T if ta else a, b.T if tb else b)
        except ValueError:
            raise _matmul_error(node, a, b) from None

    return kernel


@op("MatMul")
def _matmul(ctx: BuildContext):
    return matmul(ctx, ctx.xp.matmul)


def _matmul_error(node: Any, a: Any, b: Any) -> errors.InvalidArgumentError:
    return errors.InvalidArgumentError(
        None, node, f"Matrix size-incompatible: In[0]: {dims_text(a.shape)}, In[1]: "
        f"{dims_text(b.shape)}")


def batch_matmul(ctx: BuildContext, product: Any):
    """The BatchMatMul kernel computing ``product(x, y)`` of the (adjoint) operands."""
    adj_x, adj_y, xp = ctx.attr("adj_x"), ctx.attr("adj_y"), ctx.xp
    out = ctx.out_dtype()

    def adjoint(m: Any, flag: bool) -> Any:
        if not flag:
            return m
        m = xp.swapaxes(m, -1, -2)
        return xp.conj(m) if m.dtype.kind == "c" else m

    def kernel(x: Any, y: Any) -> Any:
        try:
            return product(adjoint(x, adj_x), adjoint(y, adj_y)).astype(out, copy=False)
        except ValueError:
            raise errors.InvalidArgumentError(
                None, ctx.op, f"In[0] and In[1] must have compatible batch dimensions: "
                f"{dims_text(x.shape)} vs. {dims_text(y.shape)}") from None

    return kernel


@op("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")
def _batch_matmul(ctx: BuildContext):
    return batch_matmul(ctx, ctx.xp.matmul)


# --- erf, einsum, band parts ---------------------------------------------------------------------
@op("Erf", "Erfc")
def erf(ctx: BuildContext):
    # numpy has no erf: math.erf element by element on the host (slow but exact); the CPU
    # and CUDA backends register their own kernels (ops/cpu/math.py, ops/cuda/math.py).
    complement, device = ctx.op.type == "Erfc", ctx.device

    def kernel(x: Any) -> Any:
        wide = x if x.dtype.itemsize >= 4 else x.astype(np.float32)
        fn = math.erfc if complement else math.erf
        host = np.asarray(device.to_host(wide))
        out = device.to_device(np.vectorize(fn, otypes=[host.dtype])(host))
        return out.astype(x.dtype, copy=False)

    return kernel


@op("Einsum")
def _einsum(ctx: BuildContext):
    equation, xp, node = ctx.attr("equation").decode(), ctx.xp, ctx.op

    def kernel(*inputs: Any) -> Any:
        try:
            return xp.einsum(equation, *inputs, optimize=len(inputs) > 1)
        except ValueError as e:
            raise errors.InvalidArgumentError(None, node, f"Einsum {equation!r}: {e}") from None

    return kernel


@op("MatrixBandPart", host_inputs=(1, 2))
def _matrix_band_part(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any, num_lower: Any, num_upper: Any) -> Any:
        lower, upper = int(num_lower), int(num_upper)
        if x.ndim < 2:
            raise errors.InvalidArgumentError(None, node, "input must be at least 2-dim, received "
                                              f"shape: {dims_text(x.shape)}")
        rows, cols = x.shape[-2:]
        if lower > rows or upper > cols:
            raise errors.InvalidArgumentError(
                None, node, f"num_lower must be negative or less or equal to number of rows "
                f"({rows}) got: {lower}" if lower > rows else
                f"num_upper must be negative or less or equal to number of columns ({cols}) "
                f"got: {upper}")
        i = xp.arange(rows).reshape(-1, 1)
        j = xp.arange(cols).reshape(1, -1)
        keep = ((lower < 0) | (i - j <= lower)) & ((upper < 0) | (j - i <= upper))
        return xp.where(keep, x, xp.zeros((), dtype=x.dtype))

    return kernel


# --- x * log(y) family, and small elementwise helpers ---------------------------------------------
def _zero_where_x_is_zero(xp: Any, x: Any, value: Any) -> Any:
    # TF's Xlogy/Xdivy/Xlog1py: 0 wherever x == 0, whatever y is (even 0 or inf).
    return xp.where(x == 0, xp.zeros((), dtype=value.dtype), value)


@op("Xlogy")
def _xlogy(ctx: BuildContext):
    xp = ctx.xp
    return lambda x, y: _zero_where_x_is_zero(xp, x, x * xp.log(y))


@op("Xlog1py")
def _xlog1py(ctx: BuildContext):
    xp = ctx.xp
    return lambda x, y: _zero_where_x_is_zero(xp, x, x * xp.log1p(y))


@op("Xdivy")
def _xdivy(ctx: BuildContext):
    xp = ctx.xp
    return lambda x, y: _zero_where_x_is_zero(xp, x, x / y)


@op("SoftsignGrad")
def _softsign_grad(ctx: BuildContext):
    xp = ctx.xp

    def kernel(g: Any, features: Any) -> Any:
        one = features.dtype.type(1)
        return g / xp.square(one + xp.abs(features))

    return kernel


@op("ApproximateEqual")
def _approximate_equal(ctx: BuildContext):
    xp, tolerance, node = ctx.xp, ctx.attr_or("tolerance", 1e-5), ctx.op

    def kernel(x: Any, y: Any) -> Any:
        if x.shape != y.shape:
            raise errors.InvalidArgumentError(
                None, node, f"x and y must be of the same shape. x shape: {_shape_text(x)}. "
                f"y shape: {_shape_text(y)}")
        return xp.abs(x - y) <= x.dtype.type(tolerance)  # TF compares with <=

    return kernel


@op("CumulativeLogsumexp", host_inputs=(1,))
def _cumulative_logsumexp(ctx: BuildContext):
    xp = ctx.xp
    exclusive, reverse = ctx.attr_or("exclusive", False), ctx.attr_or("reverse", False)

    def kernel(x: Any, axis_value: Any) -> Any:
        axis = int(axis_value) % max(x.ndim, 1)
        values = xp.moveaxis(xp.flip(x, axis) if reverse else x, axis, 0)
        out = xp.empty_like(values)
        running = xp.full_like(values[:1], -np.inf)[0] if len(values) else None
        for i in range(len(values)):  # one logaddexp per step: no ufunc.accumulate on GPUs
            if exclusive:
                out[i] = running
                running = xp.logaddexp(running, values[i])
            else:
                running = values[i] if i == 0 else xp.logaddexp(running, values[i])
                out[i] = running
        out = xp.moveaxis(out, 0, axis)
        return xp.ascontiguousarray(xp.flip(out, axis) if reverse else out)

    return kernel


@op("Complex")
def _complex(ctx: BuildContext):
    out = ctx.attr_or("Tout", np.dtype(np.complex64))
    return lambda real, imag: (real + 1j * imag).astype(out)


@op("ComplexAbs")
def _complex_abs(ctx: BuildContext):
    xp, out = ctx.xp, ctx.attr_or("Tout", np.dtype(np.float32))
    return lambda x: xp.abs(x).astype(out, copy=False)


@op("Angle")
def _angle(ctx: BuildContext):
    xp, out = ctx.xp, ctx.attr_or("Tout", np.dtype(np.float32))
    return lambda x: xp.angle(x).astype(out, copy=False)


def _shape_text(x: Any) -> str:
    return "[" + ",".join(str(int(d)) for d in x.shape) + "]"
