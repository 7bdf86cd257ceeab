"""Sources and pass-throughs: Const, Placeholder(WithDefault), Identity and friends, NoOp."""

from __future__ import annotations

from typing import Any

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
