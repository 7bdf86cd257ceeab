"""Checks a checkpoint against what a Saver's restore op will assign, before anything runs.

TF reports restore problems one at a time, from whichever op fails first: ``Key w not found in
checkpoint`` (no variable, no file), ``expected dtype int32 does not equal original dtype
float`` (the key, not the variable), ``Assign requires shapes of both tensors to match`` (ref
variables only; a resource variable silently takes the checkpoint's shape).  gpugraph first
reads the restore subgraph (``restore_all`` -> NoOps -> Assign / AssignVariableOp <- Identity /
Reshape <- ``RestoreV2:i``, whose names and slices are Consts) and the checkpoint's index, and
reports *every* missing tensor, dtype and shape mismatch at once, naming the variable, the
checkpoint key, both dtypes or shapes, and the checkpoint.  Ref and resource variables are
treated alike.  Restore subgraphs of another shape (custom saveables) are left to the kernels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from gpugraph import dtypes, errors
from gpugraph.framework.graph import Graph
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.framework.tensor_shape import TensorShape
from gpugraph.io import bundle, tensor_slices

RESTORE_MISSING = (
    "Restoring from checkpoint failed. This is most likely due to a Variable name or other graph "
    "key that is missing from the checkpoint. Please ensure that you have not altered the graph "
    "expected based on the checkpoint. Original error:\n\n")
RESTORE_MISMATCH = (
    "Restoring from checkpoint failed. This is most likely due to a mismatch between the current "
    "graph and the graph from the checkpoint. Please ensure that you have not altered the graph "
    "expected based on the checkpoint. Original error:\n\n")
_PASS_THROUGH = ("Identity", "Reshape")


@dataclasses.dataclass(frozen=True)
class RestoreTarget:
    """One checkpoint tensor a restore op assigns to a variable."""

    key: str
    slice_spec: str
    dtype: dtypes.DType
    variable: str
    shape: TensorShape
    reshaped: bool


def restore_targets(graph: Graph, restore_op_name: str) -> list[RestoreTarget]:
    """The (key, variable) pairs the restore op assigns, in the order found."""
    try:
        start = graph.get_operation_by_name(restore_op_name)
    except (KeyError, ValueError):
        return []
    seen: set[Operation] = set()
    stack, targets = [start], []
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        if op.type in ("Assign", "AssignVariableOp"):
            target = _target(op)
            if target is not None:
                targets.append(target)
        elif op.type == "NoOp":
            stack.extend(reversed(op.control_inputs))
    return targets


def _target(assign: Operation) -> RestoreTarget | None:
    value, reshaped = assign.inputs[1], False
    while value.op.type in _PASS_THROUGH:
        reshaped |= value.op.type == "Reshape"
        value = value.op.inputs[0]
    restore, index = value.op, value.value_index
    if restore.type == "RestoreV2":
        names, specs = _strings(restore.inputs[1]), _strings(restore.inputs[2])
        dtype = restore.get_attr("dtypes")[index] if names else None
    elif restore.type in ("RestoreSlice", "Restore"):  # V1 Savers: one tensor per op
        names = _strings(restore.inputs[1])
        specs = _strings(restore.inputs[2]) if restore.type == "RestoreSlice" else [""]
        dtype = restore.get_attr("dt")
    else:
        return None
    if names is None or specs is None or index >= len(names):
        return None
    variable = assign.inputs[0].op
    return RestoreTarget(names[index], specs[index], dtype, variable.name,
                         _variable_shape(variable), reshaped)


def _strings(tensor: Tensor) -> list[str] | None:
    if tensor.op.type != "Const":
        return None
    from gpugraph.io.tensor import make_ndarray

    values = np.asarray(make_ndarray(tensor.op.get_attr("value")), dtype=object).reshape(-1)
    return [v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)
            for v in values]


def _variable_shape(op: Operation) -> TensorShape:
    try:
        from gpugraph.io.tensor import shape_from_proto

        return TensorShape(shape_from_proto(op.get_attr("shape")))
    except (ValueError, TypeError):
        return TensorShape(None)


# --- the check --------------------------------------------------------------------------------
def check_restore(graph: Graph, restore_op_name: str, prefix: str) -> None:
    """Raises one error listing every tensor the restore would miss or mismatch.

    Raises:
        NotFoundError: some tensors are missing (mismatches listed too).
        InvalidArgumentError: dtype or shape mismatches only.
        DataLossError: the checkpoint's index is damaged.
    """
    targets = restore_targets(graph, restore_op_name)
    if not targets:
        return
    with tensor_slices.open_checkpoint(prefix) as reader:
        problems = [p for p in (_problem(reader, t, prefix) for t in targets) if p is not None]
    if not problems:
        return
    problems.sort(key=lambda p: (p["kind"] != "missing", p["variable"]))
    missing = problems[0]["kind"] == "missing"
    cls = errors.NotFoundError if missing else errors.InvalidArgumentError
    lead = RESTORE_MISSING if missing else RESTORE_MISMATCH
    message = lead + "\n".join(p["message"] for p in problems)
    raise cls(None, None, message, {"checkpoint": prefix, "problems": problems})


def _problem(reader: Any, t: RestoreTarget, prefix: str) -> dict | None:
    where = f"(variable {t.variable}, checkpoint {prefix})"
    info = {"variable": t.variable, "key": t.key, "checkpoint": prefix}
    if t.key not in reader:
        return {**info, "kind": "missing",
                "message": f"Key {t.key} not found in checkpoint {prefix} (needed by variable "
                           f"{t.variable})"}
    stored, shape = reader.dtype_and_shape(t.key)
    if stored.base_dtype != t.dtype.base_dtype:
        return {**info, "kind": "dtype", "graph": t.dtype.name, "stored": stored.name,
                "message": f"tensor_name = {t.key}; expected dtype {dtypes.type_string(t.dtype)} "
                           f"does not equal original dtype {dtypes.type_string(stored)} {where}"}
    return _shape_problem(t, tuple(shape), info, where)


def _shape_problem(t: RestoreTarget, stored: tuple, info: dict, where: str) -> dict | None:
    want = t.shape
    if t.slice_spec:
        full, slc = bundle.parse_shape_and_slice(t.slice_spec)
        if tuple(full) != stored:
            return _shape_mismatch(info, list(full), stored,
                                   f"tensor_name = {t.key}; shape in shape_and_slice spec "
                                   f"{list(full)} does not match the shape stored in checkpoint: "
                                   f"{list(stored)} {where}")
        stored = slc.shape(full)
    if t.reshaped:
        count = int(np.prod(stored))
        if want.num_elements() in (None, count):
            return None
    elif want.is_compatible_with(TensorShape(stored)):
        return None
    return _shape_mismatch(info, None if want.dims is None else list(want.dims), stored,
                           f"Variable {t.variable} has shape {_dims(want)} but the checkpoint "
                           f"holds tensor {t.key} with shape {list(stored)} {where}")


def _shape_mismatch(info: dict, graph_shape: list | None, stored: tuple, message: str) -> dict:
    return {**info, "kind": "shape", "graph": graph_shape, "stored": list(stored),
            "message": message}


def _dims(shape: TensorShape) -> str:
    if shape.dims is None:
        return "<unknown>"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape.dims) + "]"
