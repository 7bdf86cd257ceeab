"""Execution plans: a (fetches, feeds, targets) subgraph compiled into a flat list of steps.

A plan is built once and cached by the session until the graph grows.  Building it:

1. walks back from the fetches and targets through data and control edges, stopping at fed
   tensors, and orders the needed nodes topologically;
2. reports every op type without a kernel at once (one UnimplementedError);
3. places each node on a device (:mod:`gpugraph.placement`);
4. gives every live tensor a slot in a flat value list and notes, per step, the slots whose
   last reader it is, so intermediates are freed as soon as possible;
5. builds each node's kernel (two-phase: attrs are decoded here, never while running).

Running it is one pass over the steps.  Nodes downstream of a ``Switch`` are *dead-aware*: a
dead input (TF's value for the untaken branch of a v1 ``tf.cond``) makes the node dead without
running it, and ``Merge`` forwards whichever input is alive.  While-loop frames will need a
scheduler that re-runs a loop body's steps; the steps and slots here are the unit it will
schedule, so it extends this module rather than replacing it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from gpugraph import dtypes, errors
from gpugraph.devices.base import Device
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.ops import registry
from gpugraph.ops.registry import DEAD, BuildContext
from gpugraph.plan import data_parallel, frames
from gpugraph.plan.codegen import flatten
from gpugraph.plan.functions import FunctionCompiler
from gpugraph.plan.fusion import fuse_elementwise
from gpugraph.plan.passes import (
    fold_constants,
    mark_dead_regions,
    memoize_shape_math,
    plan_frees,
    unused_pure_ops,
)
from gpugraph.plan.remap import remap
from gpugraph.plan.steps import Plan, Step
from gpugraph.state import SessionState, VarSlot

_TensorKey = tuple  # (Operation, output index)


# --- building ---------------------------------------------------------------------------------
def build_plan(fetches: list[Tensor], targets: list[Operation], feeds: list[Tensor],
               state: SessionState, placement: Mapping[Operation, Device],
               host: Device, max_iterations: int = frames.DEFAULT_MAX_ITERATIONS,
               captured: bool = True, reducer: Any = None) -> Plan:
    """Compiles the subgraph that computes ``fetches`` and runs ``targets`` given ``feeds``.

    Args:
        placement: the device of every op (:mod:`gpugraph.placement`).
        host: the CPU device; feeds arrive there and fetched values leave from there.
        captured: whether GPU work may run as captured graphs (:mod:`gpugraph.plan.graphs`);
            function bodies run inside their caller's kernel, never captured on their own.
        reducer: with data parallelism, what averages the gradients over the ranks
            (:mod:`gpugraph.plan.data_parallel`); the plan's ``data_parallel`` counts them.

    Raises:
        UnimplementedError: some needed op types have no kernel (all are listed), or the
            subgraph has a cycle that is not a tf.compat.v1 while loop.
    """
    fed = {(t.op, t.value_index) for t in feeds}
    roots = [t.op for t in fetches if (t.op, t.value_index) not in fed] + list(targets)
    needed = _needed(roots, fed)
    dropped = unused_pure_ops(needed, set(roots))
    _check_kernels([op for op in needed if op not in dropped])
    builder = _StepBuilder(fed, placement, host, state, max_iterations, dropped)
    feed_slots = [builder.slot_of(t.op, t.value_index, host) for t in feeds]
    gradients = [] if reducer is None else data_parallel.find_gradients(needed, dropped, fed)
    if frames.has_frames(needed):
        items = _loop_items(needed, builder, max_iterations)
    else:  # (every gradient first: their all-reduces then share buckets)
        first = [g.tensor.op for g in gradients]
        items = [step for op in _toposort(first + roots, fed) for step in builder.steps_for(op)]
    if gradients:
        items = data_parallel.insert_reductions(items, gradients, reducer, builder.slot_of,
                                                builder.new_slot, builder.where)
    fetch_slots = [builder.fetch_slot(t) for t in fetches]
    items.extend(builder.pending)
    steps = flatten(items)
    num_slots = mark_dead_regions(steps, builder.num_slots)
    for step in steps:  # a dropped op outside dead regions needs its inputs for nothing
        if step.kind == "noop" and step.token < 0:
            step.inputs = ()
    memoize_shape_math(steps, fold_constants(steps))
    kept = set(fetch_slots) | set(feed_slots)
    if len(steps) == len(items):  # no loops: whole-plan fusion is safe
        items = fuse_elementwise(remap(items, kept, _remapped_step), kept, _fused_step)
    plan_frees(items, kept)
    plan = Plan(items, num_slots, feed_slots, fetch_slots, list(fetches), host,
                state if captured else None)
    plan.data_parallel = len(gradients)
    return plan


# How function-calling kernels compile their bodies (BuildContext.functions).
FUNCTIONS = FunctionCompiler(build_plan)


def _needed(roots: list[Operation], fed: set) -> list[Operation]:
    """Every op the roots need, loop back edges included (graph order)."""
    seen: set[Operation] = set()
    stack = list(roots)
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t._op for t in op._inputs if (t._op, t._value_index) not in fed)
        stack.extend(op._control_inputs)
    return sorted(seen, key=lambda op: op._id)


def _loop_items(needed: list[Operation], builder: _StepBuilder, cap: int) -> list[Any]:
    """Steps for a subgraph with v1 while loops: frames become LoopNodes (gpugraph.plan.frames)."""
    frame_of, top = frames.assign_frames(needed)

    def level(frame: frames.Frame | None) -> list[Any]:
        return frames.schedule(needed, frame, top, frame_of)

    def build_item(item: Any) -> list[Any]:
        if isinstance(item, frames.Frame):
            return [frames.build_loop(item, level(item), build_item, builder.slot_of, cap)]
        steps = builder.steps_for(item)
        if item.type in ("Merge", "RefMerge") and any(
                frames.is_back_edge(item, t.op) for t in item._inputs):
            steps[-1].kind = "loop_merge"
        elif item.type in ("Switch", "RefSwitch") and item._inputs[1].op.type == "LoopCond":
            steps[-1].kind = "loop_switch"
        return steps

    return [x for item in level(None) for x in build_item(item)]


class _StepBuilder:
    """Turns ops into steps: value slots, where each value lives, and copies between devices.

    A tensor lives on its producer's device, except host outputs (shapes, sizes) and
    everything made on the CPU, which live on the host.  A consumer reads an input on its own
    device, or on the host for its declared host inputs; when the two differ a copy step is
    inserted (once per tensor and destination).  Refs and resource handles are never copied:
    placement keeps variables and the ops that take them by reference together.
    """

    def __init__(self, fed: set, placement: Mapping[Operation, Device], host: Device,
                 state: SessionState, max_iterations: int = frames.DEFAULT_MAX_ITERATIONS,
                 dropped: set[Operation] = frozenset()):
        self.fed = fed
        self.dropped = dropped  # ops that run as NoOps (passes.unused_pure_ops)
        self.placement = placement
        self.host = host
        self.state = state
        self.max_iterations = max_iterations
        self.slots: dict[tuple, int] = {}
        self.where: dict[int, Device] = {}
        self.copies: dict[tuple[int, str], int] = {}
        self.pending: list[Step] = []  # copies of fetched values back to the host

    @property
    def num_slots(self) -> int:
        return len(self.slots)

    def slot_of(self, op: Operation, index: int, device: Device | None = None) -> int:
        key = (op, index)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = len(self.slots)
            if device is not None:
                self.where[slot] = device
        return slot

    def new_slot(self, key: tuple) -> int:
        """A slot for a value no graph tensor names (e.g. a gradient's average)."""
        slot = self.slots[key] = len(self.slots)
        return slot

    def _location(self, device: Device) -> Device:
        return self.host if device.is_host else device

    def steps_for(self, op: Operation) -> list[Step]:
        device = self.placement[op]
        if op in self.dropped:
            # As in TF, its data inputs become control inputs: a dead one makes it dead.  It
            # reads the values of kept producers; dropped ones never write theirs.
            kept = [t for t in op._inputs if t._op not in self.dropped]
            inputs = tuple(self.slot_of(t._op, t._value_index) for t in kept)
            outputs = tuple(-1 if (op, i) in self.fed else self.slot_of(op, i)
                            for i in range(len(op.outputs)))
            step = Step(op, "noop", None, inputs, outputs, device)
            step.after = tuple(t._op for t in op._inputs if t._op in self.dropped)
            return [step]
        spec = registry.lookup(op.type, device.kind)
        n_in = len(op._inputs)
        host_in = set(range(n_in)) if spec.all_host_inputs else {
            i % n_in if n_in else 0 for i in spec.host_inputs}
        wants_ref = op._ref_input_flags()
        copies: list[Step] = []
        inputs, deref = [], []
        for pos, t in enumerate(op._inputs):
            slot = self.slot_of(t._op, t._value_index)
            dtype = t.dtype
            by_reference = (dtype.is_ref_dtype and pos < len(wants_ref) and wants_ref[pos]) or \
                dtype.base_dtype == dtypes.resource or frames.is_back_edge(op, t._op)
            if not by_reference:
                want = self.host if (pos in host_in or device.is_host) else device
                have = self.where.get(slot, self.host)
                if have is not want:
                    slot = self._copy(t, slot, have, want, copies)
                elif dtype.is_ref_dtype and not _handle_ref(t):
                    deref.append(pos)
            inputs.append(slot)
        step = self._op_step(op, spec, device, tuple(inputs), frozenset(host_in))
        step.deref = tuple(deref)
        return [*copies, step]

    def _op_step(self, op: Operation, spec: Any, device: Device, inputs: tuple,
                 host_in: frozenset[int]) -> Step:
        n_out = len(op.outputs)
        host_out = set(range(n_out)) if spec.all_host_outputs else {
            i % n_out for i in spec.host_outputs} if n_out else set()
        outputs = []
        for i in range(n_out):
            if (op, i) in self.fed:
                outputs.append(-1)
                continue
            slot = self.slot_of(op, i)
            self.where[slot] = self.host if i in host_out else self._location(device)
            outputs.append(slot)
        fn = _build_kernel(spec, BuildContext(op, device, self.state, self.host,
                                              self.max_iterations, FUNCTIONS))
        context = device.run_context()
        if context is not None and spec.kind in ("kernel", "constant"):
            fn = device.checked_kernel(_in_context(fn, context), op.name, host_in,
                                       frozenset(host_out))
        return Step(op, spec.kind, fn, inputs, tuple(outputs), device)

    def _copy(self, tensor: Tensor, slot: int, have: Device, want: Device,
              out: list[Step]) -> int:
        key = (slot, want.name)
        if key in self.copies:
            return self.copies[key]
        new = self.slots[("copy", slot, want.name)] = len(self.slots)
        self.where[new] = want
        self.copies[key] = new
        step = Step(tensor.op, "copy", _copier(have, want, tensor.op), (slot,), (new,), want)
        step.label = f"copy of {tensor.name!r} from {have.short_name} to {want.short_name}"
        out.append(step)
        return new

    def fetch_slot(self, tensor: Tensor) -> int:
        """The slot holding ``tensor`` on the host (a copy step is added if it lives elsewhere)."""
        slot = self.slot_of(tensor.op, tensor.value_index)
        have = self.where.get(slot, self.host)
        if have is self.host or tensor.dtype.is_ref_dtype or \
                tensor.dtype.base_dtype == dtypes.resource:
            return slot
        return self._copy(tensor, slot, have, self.host, self.pending)


def _build_kernel(spec: Any, ctx: BuildContext) -> Any:
    """The node's kernel; a NodeDef the kernel cannot be built from (an attr missing or of the
    wrong kind: a damaged file) is an InvalidArgumentError naming the node, as TF's kernel
    construction reports it."""
    try:
        return spec.build(ctx)
    except errors.OpError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as e:
        op = ctx.op
        raise errors.InvalidArgumentError(
            None, op, f"Node {op.name!r} ({op.type}): its kernel cannot be built from the "
            f"NodeDef: {e}", {"node": op.name}) from e


def _fused_step(root: Step, inputs: tuple[int, ...], fn: Any) -> Step:
    # As each member's kernel did: on GPU:k the chain's kernel must launch on device k.
    context = root.device.run_context()
    if context is not None:
        fn = _in_context(fn, context)
    step = Step(root.op, "kernel", fn, inputs, root.outputs, root.device)
    step.label = f"fused elementwise ops ending at node {root.op.name} ({root.op.type})"
    return step


def _remapped_step(chain: list[Step], inputs: tuple[int, ...], fn: Any) -> Step:
    # The first op names the step: it decides whether the plan owns the cores (a Conv2D).
    step = Step(chain[0].op, "kernel", fn, inputs, chain[-1].outputs, chain[0].device)
    step.label = " -> ".join(f"{s.op.type} {s.op.name!r}" for s in chain) + " as one kernel"
    return step


def _in_context(fn: Any, context: Any) -> Any:
    def kernel(*args: Any) -> Any:
        with context:
            return fn(*args)

    return kernel


# Ops whose Ref(string) output is a stack, TensorArray, queue or reader handle (TF <= 1.x), not a
# variable: a
# reader taking it as a plain string gets the handle itself.
_HANDLE_REF_OPS = frozenset({"Stack", "TensorArray", "TensorArrayGrad", "FIFOQueue",
                             "PaddingFIFOQueue", "RandomShuffleQueue", "TFRecordReader",
                             "TextLineReader", "FixedLengthRecordReader", "WholeFileReader",
                             "HashTable", "MutableHashTable", "MutableHashTableOfTensors"})
_REF_PASS_THROUGH = frozenset({"RefEnter", "RefExit", "RefIdentity", "RefSwitch", "RefMerge",
                               "RefNextIteration", "Identity", "Enter", "Switch", "Merge"})


def _handle_ref(tensor: Any) -> bool:
    """Whether a ref-typed ``tensor`` carries a stack/TensorArray handle (traced back through
    ref-forwarding control-flow ops)."""
    seen = set()
    while tensor.op.type in _REF_PASS_THROUGH and tensor.op._inputs and tensor.op not in seen:
        seen.add(tensor.op)
        tensor = tensor.op._inputs[0]
    return tensor.op.type in _HANDLE_REF_OPS


def _copier(have: Device, want: Device, op: Operation) -> Any:
    """A copy between devices; refs are read first and dead values pass through."""

    def copy(value: Any) -> Any:
        if value is DEAD:
            return value
        if isinstance(value, VarSlot):
            value = value.read(op)
        return want.copy_from(have, value)

    return copy


def _toposort(roots: list[Operation], fed: set[_TensorKey]) -> list[Operation]:
    """Needed ops in dependency order (iterative DFS; inputs before consumers)."""

    def deps(op: Operation):
        for t in op._inputs:
            if (t._op, t._value_index) not in fed:
                yield t._op
        yield from op._control_inputs

    order: list[Operation] = []
    state: dict[Operation, int] = {}  # 1 = on the DFS stack, 2 = done
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, deps(root))]
        while stack:
            op, it = stack[-1]
            for dep in it:
                seen = state.get(dep)
                if seen is None:
                    state[dep] = 1
                    stack.append((dep, deps(dep)))
                    break
                if seen == 1:
                    raise _cycle_error(dep, [s[0] for s in stack])
            else:
                stack.pop()
                state[op] = 2
                order.append(op)
    return order


def _cycle_error(op: Operation, stack: list[Operation]) -> errors.UnimplementedError:
    cycle = [o.name for o in stack[stack.index(op):]] + [op.name]
    return errors.UnimplementedError(
        None, op, "The subgraph to run contains a cycle (a tf.compat.v1 while loop: "
        f"{' -> '.join(cycle[:8])}{' ...' if len(cycle) > 8 else ''}). gpugraph does not run "
        "while-loop frames yet.", {"cycle": cycle})


def _check_kernels(order: list[Operation]) -> None:
    missing = Counter(op.type for op in order if registry.lookup(op.type) is None)
    if not missing:
        return
    example = {}
    for op in order:
        example.setdefault(op.type, op.name)
    lines = [f"  {t}: {n} node{'s' if n > 1 else ''} (e.g. {example[t]!r})"
             for t, n in sorted(missing.items())]
    raise errors.UnimplementedError(
        None, None, f"No gpugraph kernel for {len(missing)} op "
        f"type{'s' if len(missing) > 1 else ''} "
        "needed by this run:\n" + "\n".join(lines), {"missing": dict(missing)})
