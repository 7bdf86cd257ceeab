"""Sources and pass-throughs: Const, Placeholder(WithDefault), Identity and friends, NoOp."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import dtypes, errors
from gpugraph.io.tensor import make_ndarray
from gpugraph.ops.registry import BuildContext, op


@op("Const", "HostConst", kind="constant")
def _const(ctx: BuildContext):
    proto = ctx.op._attr_proto("value").tensor
    value = ctx.device.to_device(make_ndarray(proto, name=ctx.name))
    return lambda: value


@op("Placeholder")
def _placeholder(ctx: BuildContext):
    dtype = ctx.op.outputs[0].dtype
    shape = ctx.op.outputs[0].shape
    shape_text = "<unknown>" if shape.rank is None else "[" + ",".join(
        "?" if d is None else str(d) for d in shape.dims) + "]"
    message = (f"You must feed a value for placeholder tensor {ctx.name!r} with dtype "
               f"{dtypes.type_string(dtype)} and shape {shape_text}")
    node = ctx.op

    def kernel():
        raise errors.InvalidArgumentError(None, node, message, {"placeholder": node.name})

    return kernel


@op("PlaceholderWithDefault", "Identity", "Snapshot", "StopGradient", "PreventGradient",
    "RefIdentity", kind="alias")
def _identity(ctx: BuildContext):
    return lambda x: x


@op("IdentityN")
def _identity_n(ctx: BuildContext):
    return lambda *xs: xs


@op("NoOp", "ControlTrigger", kind="noop")
def _no_op(ctx: BuildContext):
    return lambda *args: None


@op("Print", "PrintV2")
def _print(ctx: BuildContext):
    # Matches TF's Print: passes its first input through (logging is left out).
    def kernel(x: Any, *data: Any) -> Any:
        return x

    return kernel if ctx.op.type == "Print" else (lambda x: None)


@op("CheckNumerics", "CheckNumericsV2")
def _check_numerics(ctx: BuildContext):
    # check_numerics_op.cc: passes the tensor through, or fails naming what it found.
    message, xp, node = ctx.attr("message"), ctx.xp, ctx.op
    v2 = ctx.op.type == "CheckNumericsV2"

    def kernel(x: Any) -> Any:
        if x.dtype.kind in "biu" or bool(xp.isfinite(x).all()):
            return x
        nan = bool(xp.isnan(x).any())
        if v2:
            found = [name for name, hit in (("-Inf", bool(xp.isneginf(x).any())),
                                            ("+Inf", bool(xp.isposinf(x).any())),
                                            ("NaN", nan)) if hit]
            text = found[0] if len(found) == 1 else (
                " and ".join(found) if len(found) == 2 else f"{found[0]}, {found[1]}, and NaN")
        else:
            inf = bool(xp.isinf(x).any())
            text = "Inf and NaN" if inf and nan else ("Inf" if inf else "NaN")
        raise errors.InvalidArgumentError(
            None, node, f"{message.decode(errors='replace')} : Tensor had {text} values")

    return kernel


@op("Assert")
def _assert(ctx: BuildContext):
    # TF's AssertOp: fails with "assertion failed: " and each data tensor summarized in
    # brackets (at most `summarize` values each).
    node, summarize, device = ctx.op, ctx.attr_or("summarize", 3), ctx.device

    def kernel(condition: Any, *data: Any) -> None:
        if bool(condition):
            return
        parts = [f"[{_summary(device.to_host(value), summarize)}]" for value in data]
        raise errors.InvalidArgumentError(None, node, "assertion failed: " + " ".join(parts))

    return kernel


def _summary(value: Any, summarize: int) -> str:
    """TF's Tensor::SummarizeValue: at most ``summarize`` values, nested brackets per row."""
    array = np.asarray(value)
    flat = [_element_text(v, array.dtype) for v in array.reshape(-1).tolist()]
    limit = len(flat) if summarize < 0 else min(summarize, len(flat))
    if array.ndim == 0:
        text = " ".join(flat[:limit])
    else:
        parts: list[str] = []
        _print_dim(0, array.shape, limit, flat, [0], parts)
        text = "".join(parts)
    return text + ("..." if len(flat) > limit else "")


def _print_dim(dim: int, shape: tuple, limit: int, flat: list, index: list, out: list) -> None:
    # tensor.cc PrintOneDim, which this follows step for step (index[0]: values printed).
    if index[0] >= limit:
        return
    if dim == len(shape) - 1:
        for i in range(shape[dim]):
            if index[0] >= limit:
                if dim != 0:
                    out.append("...")
                return
            if i > 0:
                out.append(" ")
            out.append(flat[index[0]])
            index[0] += 1
        return
    for _ in range(shape[dim]):
        opened = index[0] < limit
        if opened:
            out.append("[")
        _print_dim(dim + 1, shape, limit, flat, index, out)
        if index[0] < limit or opened:
            out.append("]")


def _element_text(value: Any, dtype: np.dtype) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, complex):
        return "?"  # TF's PrintOneElement has no complex form
    if isinstance(value, float):  # TF's FloatToBuffer: the shortest %g that reads back
        single = dtype.itemsize <= 4
        digits = 6 if single else 15
        text = "%.*g" % (digits, value)
        cast = np.float32 if single else np.float64
        if cast(float(text)) != cast(value):
            text = "%.*g" % (digits + (3 if single else 2), value)
        return text
    return str(value)
