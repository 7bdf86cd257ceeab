"""Variables, ref (``VariableV2`` + ``Assign*``) and resource (``VarHandleOp`` + ``*VariableOp``).

Both kinds are backed by a session :class:`~gpugraph.state.VarSlot`: a ``VariableV2``
node outputs its slot as the ref tensor, a ``VarHandleOp`` outputs it as the resource handle.
Ops taking a ref input (``Assign``, ``Apply*``) receive the slot; every other consumer of a ref
tensor receives the value (the plan reads it, failing if it is uninitialized).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.array_ops import strided_index
from gpugraph.ops.registry import BuildContext, op
from gpugraph.state import VarSlot


def _static_shape(ctx: BuildContext) -> tuple | None:
    shape = ctx.attr("shape")
    return None if shape.rank is None else tuple(shape.dims)


def _slot_key(ctx: BuildContext, kind: str) -> tuple:
    container = ctx.attr_or("container", b"") or b""
    shared = ctx.attr_or("shared_name", b"") or b""
    name = shared.decode() if shared else ctx.name
    return (kind, container.decode(), name)


@op("VariableV2", "Variable", kind="constant")
def _variable_v2(ctx: BuildContext):
    dtype, shape = ctx.attr("dtype"), _static_shape(ctx)
    key = _slot_key(ctx, "ref")
    slot = ctx.state.variable(key, lambda: VarSlot(key[2], dtype, shape, False, ctx.device))
    return lambda: slot


@op("VarHandleOp", kind="constant")
def _var_handle(ctx: BuildContext):
    dtype, shape = ctx.attr("dtype"), _static_shape(ctx)
    key = _slot_key(ctx, "resource")
    slot = ctx.state.variable(key, lambda: VarSlot(key[2], dtype, shape, True, ctx.device))
    return lambda: slot


def _shapes_match(static: tuple | None, shape: tuple) -> bool:
    if static is None:
        return True
    return len(static) == len(shape) and all(s is None or s == d for s, d in zip(static, shape))


def _as_array(xp: Any, value: Any, dtype: np.dtype) -> Any:
    return xp.asarray(value, dtype=dtype)


@op("Assign")
def _assign(ctx: BuildContext):
    validate = ctx.attr_or("validate_shape", True)
    xp, node = ctx.xp, ctx.op

    def kernel(slot: VarSlot, value: Any) -> VarSlot:
        shape = tuple(value.shape)
        # (no reference to the old value stays here: assign() may reuse its buffer only
        # when nothing else holds it)
        target = tuple(slot.value.shape) if slot.value is not None else slot.shape
        if validate and target is not None and not _shapes_match(target, shape):
            raise errors.InvalidArgumentError(
                None, node, f"Assign requires shapes of both tensors to match. lhs shape= "
                f"{_dims(target)} rhs shape= {_dims(shape)} (variable {slot.name!r})",
                {"variable": slot.name, "lhs_shape": list(target), "rhs_shape": list(shape)})
        slot.assign(_as_array(xp, value, slot.dtype))
        return slot

    return kernel


def _dims(shape: tuple) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _update_kernel(ctx: BuildContext, sign: int, returns_slot: bool):
    node = ctx.op

    def kernel(slot: VarSlot, value: Any) -> Any:
        current = slot.writable(node)
        if current.shape != value.shape:
            raise errors.InvalidArgumentError(
                None, node, f"{node.type} on variable {slot.name!r}: value shape "
                f"{_dims(value.shape)} does not match variable shape {_dims(current.shape)}")
        if sign > 0:
            current += value
        else:
            current -= value
        return slot if returns_slot else None

    return kernel


@op("AssignAdd")
def _assign_add(ctx: BuildContext):
    return _update_kernel(ctx, +1, returns_slot=True)


@op("AssignSub")
def _assign_sub(ctx: BuildContext):
    return _update_kernel(ctx, -1, returns_slot=True)


@op("AssignAddVariableOp")
def _assign_add_variable(ctx: BuildContext):
    return _update_kernel(ctx, +1, returns_slot=False)


@op("AssignSubVariableOp")
def _assign_sub_variable(ctx: BuildContext):
    return _update_kernel(ctx, -1, returns_slot=False)


@op("CountUpTo", "ResourceCountUpTo")
def _count_up_to(ctx: BuildContext):
    # Increments an integer variable and returns the value before, until ``limit``: then TF's
    # OutOfRangeError (how ``limit_epochs`` ends an input producer's epochs).
    node, limit = ctx.op, ctx.attr("limit")

    def kernel(slot: VarSlot) -> Any:
        current = slot.writable(node)
        before = current.copy()
        if int(before) >= limit:
            raise errors.OutOfRangeError(None, node, f"Reached limit of {limit}")
        current += 1
        return before

    return kernel


@op("IsVariableInitialized", "VarIsInitializedOp", host_outputs=(0,))  # host memory, as in TF
def _is_initialized(ctx: BuildContext):
    return lambda slot: np.bool_(slot.value is not None)


@op("ReadVariableOp")
def _read_variable(ctx: BuildContext):
    node, dtype = ctx.op, ctx.attr("dtype")

    def kernel(slot: VarSlot) -> Any:
        value = slot.read(node)
        if value.dtype != dtype:
            raise errors.InvalidArgumentError(
                None, node, f"Trying to read variable {slot.name!r} with wrong dtype. Expected "
                f"{dtype} got {value.dtype}")
        return value

    return kernel


@op("AssignVariableOp")
def _assign_variable(ctx: BuildContext):
    node, dtype, xp = ctx.op, ctx.attr("dtype"), ctx.xp
    validate = ctx.attr_or("validate_shape", False)

    def kernel(slot: VarSlot, value: Any) -> None:
        if slot.dtype != dtype:
            raise errors.InvalidArgumentError(
                None, node, f"Trying to assign variable {slot.name!r} with wrong dtype. Expected "
                f"{slot.dtype} got {dtype}")
        # (no reference to the old value stays here: assign() may reuse its buffer only
        # when nothing else holds it)
        shape = None if slot.value is None else tuple(slot.value.shape)
        if validate and shape is not None and shape != tuple(value.shape):
            raise errors.InvalidArgumentError(
                None, node, f"Trying to assign to variable {slot.name!r} with shape "
                f"{_dims(value.shape)} but the variable has shape {_dims(shape)}")
        slot.assign(_as_array(xp, value, dtype))

    return kernel


@op("VariableShape", host_outputs=(0,))
def _variable_shape(ctx: BuildContext):
    node, out = ctx.op, ctx.out_dtype()
    return lambda slot: np.asarray(slot.read(node).shape, dtype=out)


@op("ResourceGather")
def _resource_gather(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp
    batch_dims = ctx.attr_or("batch_dims", 0)
    if batch_dims:
        raise errors.UnimplementedError(None, node, "ResourceGather with batch_dims != 0")
    return lambda slot, indices: xp.take(slot.read(node), indices, axis=0)


@op("DestroyResourceOp")
def _destroy_resource(ctx: BuildContext):
    def kernel(slot: VarSlot) -> None:
        slot.value = None

    return kernel


@op("StridedSliceAssign", "ResourceStridedSliceAssign", host_inputs=(1, 2, 3))
def _strided_slice_assign(ctx: BuildContext):
    # var[begin:end:strides] = value (masks as in StridedSlice), the value broadcast to the slice.
    node, index, xp = ctx.op, strided_index(ctx), ctx.xp
    resource = node.type.startswith("Resource")

    def kernel(slot: VarSlot, begin: Any, end: Any, strides: Any, value: Any) -> Any:
        var = slot.writable(node)
        spec = index(begin, end, strides)
        target = var[spec]
        try:  # TF 2.21 broadcasts the value to the slice
            value = xp.broadcast_to(value, target.shape)
        except ValueError:
            raise errors.InvalidArgumentError(
                None, node, f"sliced l-value shape {_dims(target.shape)} does not match r-value "
                f"shape {_dims(value.shape)}") from None
        var[spec] = value
        return None if resource else slot

    return kernel
