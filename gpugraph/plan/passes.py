"""Whole-plan passes run once a plan's steps exist (see :func:`gpugraph.plan.build_plan`).

* :func:`unused_pure_ops` (on ops, before steps exist): what TF's Grappler turns into NoOps;
* :func:`mark_dead_regions`: steps downstream of a Switch become dead-aware;
* :func:`fold_constants`: stateless kernels of constants run once, at build time;
* :func:`memoize_shape_math`: gradient graphs' shape arithmetic is reused between runs;
* :func:`plan_frees`: each value is freed after its last top-level reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gpugraph.framework.ops import Operation
from gpugraph.ops.registry import DEAD_INPUT_OPS
from gpugraph.plan import frames
from gpugraph.plan.codegen import flatten
from gpugraph.state import VarSlot

if TYPE_CHECKING:
    from gpugraph.plan import Step

_SWITCH_OPS = frozenset({"Switch", "RefSwitch"})
# Never turned into NoOps (Grappler's SafeToConvertToNoOp and IsFreeOfSideEffect): checks,
# placeholders (keep the graph feedable), control flow and frame ops, function boundaries.
_KEEP_OPS = frozenset({
    "Assert", "CheckNumerics", "_Retval", "_Arg", "_ParallelConcatUpdate", "TPUExecute",
    "TPUCompile", "ControlTrigger", "Placeholder", "PlaceholderV2", "PlaceholderWithDefault",
    "Merge", "RefMerge", "Switch", "RefSwitch", "Enter", "RefEnter", "Exit", "RefExit",
    "NextIteration", "RefNextIteration", "_Send", "_HostSend"})
_VARIABLE_OPS = frozenset({"Variable", "VariableV2", "AutoReloadVariable", "VarHandleOp",
                           "ReadVariableOp", "_VarHandlesOp"})
# Resource reads are marked stateful, yet TF 2.21 does not run an unused one (checked: reading
# an uninitialized variable only for a control edge succeeds there); VariableShape does run.
_VARIABLE_READS = frozenset({"ReadVariableOp", "ResourceGather", "ResourceGatherNd"})


def unused_pure_ops(needed: list[Operation], preserved: set[Operation]) -> set[Operation]:
    """The needed ops that TF does not run: side-effect-free ops whose outputs nothing reads.

    Before a session runs a graph, Grappler's DependencyOptimizer turns every op that is not
    fetched, has no side effects and whose outputs no needed op reads (only control edges lead
    on from it) into a NoOp, then looks again at the ops that fed it.  Gradient graphs are
    full of such ops: ``tf.gradients`` groups each op's input gradients with control edges,
    so the gradient with respect to a placeholder (a first layer's input, a first convolution's
    input) is computed for nobody.  Those ops keep their place and control edges in the plan,
    as NoOps, and never run, as in TF (their errors, too, never happen).  The rules are
    Grappler's (SafeToConvertToNoOp, IsFreeOfSideEffect), plus unused resource reads, which TF
    2.21 skips as well; identities after a Switch are kept even where Grappler would drop them.

    Args:
        needed: the plan's ops in graph order (producers before consumers, but for loop
            back edges, whose NextIteration sources are never dropped).
        preserved: fetched ops and targets.
    """
    readers: dict[Operation, int] = {}
    for op in needed:
        for t in op._inputs:
            readers[t._op] = readers.get(t._op, 0) + 1
    dropped: set[Operation] = set()
    for op in reversed(needed):  # consumers first: a chain of unused ops goes in one pass
        if readers.get(op, 0) == 0 and op not in preserved and _free_of_side_effects(op):
            dropped.add(op)
            for t in op._inputs:
                readers[t._op] -= 1
    return dropped


def _free_of_side_effects(op: Operation) -> bool:
    info = op._info
    if op.type in _VARIABLE_READS:
        return True
    if (op.type in _KEEP_OPS or info is None or info.is_stateful or not info._outputs
            or any(arg.is_ref for arg in info._inputs) or "Queue" in op.type
            or "inplace" in op.type.lower()):
        return False
    attr = op._node_def.attr
    if any(key in attr and attr[key].b for key in ("in_place", "inplace")):
        return False
    if op.type in ("Identity", "IdentityN") and op._inputs:
        # SafeToRemoveIdentity: keep the identities that read variables or follow a Switch.
        source = op._inputs[0]._op.type
        return source not in _VARIABLE_OPS and source not in _SWITCH_OPS
    return True


def mark_dead_regions(steps: list[Step], num_slots: int) -> int:
    """Makes every step downstream of a Switch dead-aware; returns the new slot count.

    Copy steps (and the collectives of data parallelism) pass dead values through unchanged,
    so they need no liveness token.
    """
    dead_slots: set[int] = set()
    region: dict[Operation, Step] = {}
    for step in steps:
        if step.kind in ("copy", "collective"):
            if step.inputs[0] in dead_slots:
                dead_slots.update(step.outputs)
            continue
        op = step.op
        if step.kind in ("loop_merge", "loop_switch") or op.type == "ControlTrigger":
            continue  # loop structure is generated; a ControlTrigger is never dead (as in TF)
        if (op.type in _SWITCH_OPS or any(i in dead_slots for i in step.inputs)
                or any(c in region for c in (*op._control_inputs, *step.after))):
            region[op] = step
            dead_slots.update(s for s in step.outputs if s >= 0)
    for step in region.values():
        step.token = num_slots
        num_slots += 1
    for op, step in region.items():
        controls = (*op._control_inputs, *step.after)
        step.dead_aware = any(i in dead_slots for i in step.inputs) or any(
            c in region for c in controls)
        step.tokens = tuple(region[c].token for c in controls if c in region)
    return num_slots


def fold_constants(steps: list[Step]) -> set[int]:
    """Runs, once at build time, every stateless kernel whose inputs are all constants.

    The gradient of a mean, for instance, computes shapes and counts from Const nodes; folding
    them makes those steps free on every later run.  A kernel that fails is left alone, so the
    error surfaces when the plan runs, with its node context.
    """
    constants: dict[int, Any] = {}
    for step in steps:
        if step.token >= 0 or step.deref:
            continue
        if step.kind == "constant":
            value = step.fn()
            step.fn = _constant(value)
            if len(step.outputs) == 1:
                constants[step.outputs[0]] = value
            continue
        info = step.op._info
        if step.kind == "copy":
            source = constants.get(step.inputs[0], VarSlot)
            if source is not VarSlot and not isinstance(source, VarSlot):
                value = step.fn(source)  # a constant needed on another device: copy it once
                step.kind, step.fn = "constant", _constant(value)
                constants[step.outputs[0]] = value
            continue
        if (step.kind != "kernel" or info is None or info.is_stateful or not step.inputs
                or step.op.type in _SWITCH_OPS or step.op.type in DEAD_INPUT_OPS
                or any(i not in constants for i in step.inputs)):
            continue
        args = [constants[i] for i in step.inputs]
        if any(isinstance(a, VarSlot) for a in args):
            continue
        try:
            with np.errstate(all="ignore"):  # as in runs: inf/nan are values, not warnings
                value = step.fn(*args)
        except Exception:  # noqa: BLE001  (it will fail again, with context, when run)
            continue
        step.kind, step.fn = "constant", _constant(value)
        listed = info.fixed_num_outputs is None  # a list-output kernel returns a sequence
        outputs = (value,) if len(step.outputs) == 1 and not listed else tuple(value)
        constants.update(zip(step.outputs, outputs))
    # Variable storage is state, not a constant: nothing reading it may be cached.
    return {slot for slot, value in constants.items() if not isinstance(value, VarSlot)}


def _constant(value: Any):
    return lambda: value


_SHAPE_OPS = frozenset({"Shape", "ShapeN", "Size", "Rank"})


def memoize_shape_math(steps: list[Step], constants: set[int]) -> None:
    """Caches the shape arithmetic of gradient graphs between runs.

    ``Shape`` of a tensor and the stateless ops computing only from shapes and constants
    (Prod, GatherV2, Fill, BroadcastGradientArgs, ...) return the previous run's outputs when
    the shapes (respectively the input objects) are unchanged, which they are from one training
    step to the next.  Their outputs are never updated in place, so sharing them is safe.
    """
    derived = set(constants)
    for step in steps:
        if step.kind != "kernel" or step.token >= 0 or step.deref or not step.inputs:
            continue
        info = step.op._info
        if info is None or info.is_stateful:
            continue
        if step.op.type in _SHAPE_OPS:
            step.fn = _memo_by_shape(step.fn)
        elif all(i in derived for i in step.inputs):
            step.fn = _memo_by_identity(step.fn)
        else:
            continue
        derived.update(step.outputs)


def _memo_by_shape(fn: Any):
    last: list[Any] = [None, None]

    def kernel(*args: Any) -> Any:
        key = tuple(a.shape for a in args)
        if key != last[0]:
            last[0], last[1] = key, fn(*args)
        return last[1]

    return kernel


def _memo_by_identity(fn: Any):
    last: list[Any] = [(), None]

    def kernel(*args: Any) -> Any:
        previous = last[0]
        if len(previous) != len(args) or any(a is not b for a, b in zip(args, previous)):
            last[0], last[1] = args, fn(*args)
        return last[1]

    return kernel


def plan_frees(items: list[Any], keep: set[int]) -> None:
    """Each slot is freed by the last top-level item reading it (fetched and fed slots are kept).

    A while loop counts as one item reading and writing everything its steps do, so values
    it reads survive all its iterations.
    """
    last: dict[int, int] = {}
    for index, item in enumerate(items):
        reads, writes = _item_slots(item)
        for slot in reads:
            last[slot] = index
        for slot in writes:
            last.setdefault(slot, index)  # produced but never read: free right away
    frees: dict[int, list[int]] = {}
    for slot, index in last.items():
        if slot >= 0 and slot not in keep:
            frees.setdefault(index, []).append(slot)
    for index, slots in frees.items():
        items[index].frees = tuple(slots)


def _item_slots(item: Any) -> tuple[list[int], list[int]]:
    if isinstance(item, frames.LoopNode):
        steps = flatten(item.items())
        reads = [i for s in steps for i in (*s.inputs, *s.tokens)] + [item.pred]
        return reads, [o for s in steps for o in s.outputs]
    return list(item.inputs), list(item.outputs)
