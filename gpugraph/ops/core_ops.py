"""Sources and pass-throughs: Const, Placeholder(WithDefault), Identity and friends, NoOp."""

from __future__ import annotations

from typing import Any

from gpugraph import dtypes, errors
from gpugraph.io.tensor import make_ndarray
from gpugraph.ops._tensor_text import summarize_v1
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
        parts = [f"[{summarize_v1(device.to_host(value), summarize)}]" for value in data]
        raise errors.InvalidArgumentError(None, node, "assertion failed: " + " ".join(parts))

    return kernel
