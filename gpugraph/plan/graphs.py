"""Captured graphs: a plan's GPU work replayed as CUDA graphs instead of op by op.

A plan whose steps run on a device that captures (:meth:`gpugraph.devices.base.Device.graphs`)
is split into *segments*: maximal runs of consecutive steps on one such device that do only
device work.  Copies between devices, host (CPU) steps, stateful ops other than variable
updates (random ops draw on the host: their numbers are staged into the graph like feeds),
v1 loops and the dead-aware steps of v1 conds stay outside, run eagerly between segments, as
XLA's command buffers leave their host work outside.

Each segment runs per *signature* (the shapes and dtypes of its device inputs, the values of
its host inputs):

1. eagerly once (a warm-up: kernels compile, libraries set up their handles);
2. then captured: its device inputs are copied into static buffers, the device records the
   segment (nothing runs), and the graph is launched;
3. then replayed: new inputs are copied into the static buffers and the graph is launched.

Variables are updated in place (:meth:`gpugraph.state.VarSlot.assign`), so a graph can keep
reading and writing their buffers; before each replay every variable of the device must still
hold the buffer it held at capture, or the graph is dropped (a restore rebinds them).  An
operation the device refuses to capture (a host synchronization, a host copy, a library that
cannot be captured, a variable that must move) is recorded in the session's
:class:`~gpugraph.state.GraphStats` and its node runs outside the graphs from then on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gpugraph import state as resources
from gpugraph.devices.base import Device, Graphs
from gpugraph.plan.codegen import Block, compile_plan, failing_line, flatten, read_slots
from gpugraph.plan.frames import LoopNode
from gpugraph.state import GraphStats, SessionState, VariableRebindError, VarSlot

WARMUP_RUNS = 1  # eager runs of a signature before it is captured
MAX_SIGNATURES = 8  # per segment; more run eagerly (as PyTorch's CUDA graph trees cap them)
MIN_KERNELS = 3  # a shorter run of kernels is not worth a graph (XLA's minimum is 5)
MAX_INVALIDATIONS = 2  # a signature whose variables keep moving stops being captured
_KEY_ELEMENTS = 64  # host inputs up to this size are part of the signature

# Stateful ops whose state is a variable's device buffer, updated in place (capturable).
_VARIABLE_OPS = frozenset({
    "VariableV2", "Variable", "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "Assign",
    "AssignAdd", "AssignSub", "AssignAddVariableOp", "AssignSubVariableOp", "ResourceGather"})
_VARIABLE_PREFIXES = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply",
                      "Scatter", "ResourceScatter")


def capturable(step: Any) -> bool:
    """Whether ``step`` may be part of a captured segment (its device permitting)."""
    if step.kind in ("copy", "collective") or step.token >= 0 or step.tokens:
        return False
    info = step.op._info
    if info is not None and info.is_stateful:
        return _variable_op(step.op.type)
    return True


def split(items: list[Any], fetch_slots: Sequence[int], excluded: set[Any],
          make: Callable[[list[Any], Device, tuple, tuple, tuple], Block]) -> list[Any]:
    """``items`` with each run of capturable steps on one capturing device as one Block
    (``make(steps, device, inputs, outputs, copied)``).

    Steps that do no work (constants, aliases, NoOps: of any device) join the run around them,
    and a host step that does not read them may run before them, so that a variable's read and
    the shape constants between two kernels do not cut a segment in two.  The bodies of v1
    while loops are split the same way: a host loop around captured bodies, replayed once per
    iteration.  ``copied`` names the outputs a stateful op outside the graphs reads (a
    TensorArray write, a queue): it may keep them past the next replay, which overwrites a
    graph's outputs, so they are handed out as copies.
    """
    everything = read_slots(items) | set(fetch_slots)
    return _split(items, fetch_slots, excluded, make, (everything, _kept(items)))


def _kept(items: list[Any]) -> set[int]:
    """Slots that stateful ops other than variable updates read (and may keep)."""
    kept = set()
    for step in flatten(items):
        info = step.op._info
        if info is not None and info.is_stateful and not _variable_op(step.op.type):
            kept.update(step.inputs)
    return kept


def _variable_op(kind: str) -> bool:
    return kind in _VARIABLE_OPS or kind.startswith(_VARIABLE_PREFIXES)


def _split(items: list[Any], fetch_slots: Sequence[int], excluded: set[Any], make: Callable,
           plan_reads: tuple[set[int], set[int]]) -> list[Any]:
    everything, kept = plan_reads
    runs: list[Any] = []  # items, and lists of steps (candidate segments)
    current: list[Any] = []
    device: Device | None = None  # the device of the current run's kernels
    for item in items:
        if _free(item) and item not in excluded:
            current.append(item)
            continue
        if _device_work(item, excluded):
            if device is not None and item.device is not device:
                runs.append(current)
                current = []
            device = item.device
            current.append(item)
            continue
        if current and device is None and _may_pass(item, current):
            runs.append(item)  # runs before the free steps, which stay in the current run
            continue
        if current:
            runs.append(current)
        current, device = [], None
        if isinstance(item, LoopNode):  # (the body's outputs: anything the plan reads)
            item = dataclasses.replace(item, body=_split(item.body, sorted(everything),
                                                         excluded, make, plan_reads))
        runs.append(item)
    if current:
        runs.append(current)
    later: set[int] = set(fetch_slots)  # slots read after each point, walking backwards
    out: list[Any] = []
    for run in reversed(runs):
        if isinstance(run, list):
            kernels = [s for s in run if s.kind == "kernel"]
            if len(kernels) < MIN_KERNELS:
                out.extend(reversed(run))
                later |= read_slots(run)
                continue
            written = {slot for s in run for slot in s.outputs if slot >= 0}
            inputs = tuple(sorted(read_slots(run) - written))
            outputs = tuple(sorted(written & later))
            copied = tuple(sorted(written & later & kept))
            out.append(make(run, kernels[0].device, inputs, outputs, copied))
            later |= set(inputs)
        else:
            out.append(run)
            later |= read_slots([run])
    out.reverse()
    return out


_FREE_KINDS = ("constant", "alias", "noop")


def _free(item: Any) -> bool:
    return (not isinstance(item, LoopNode) and item.kind in _FREE_KINDS and item.token < 0
            and not item.tokens)


def _device_work(item: Any, excluded: set[Any]) -> bool:
    return (not isinstance(item, LoopNode) and item not in excluded and capturable(item)
            and item.device.graphs() is not None)


def _may_pass(item: Any, free_steps: list[Any]) -> bool:
    """Whether host ``item`` may run before the (earlier) ``free_steps``: it reads none of their
    outputs and changes no state they read."""
    if isinstance(item, LoopNode):
        return False
    made = {slot for s in free_steps for slot in s.outputs}
    if made & read_slots([item]):
        return False
    info = item.op._info
    return item.kind == "copy" or info is None or not info.is_stateful


class _Signature:
    """One signature's graph: its static input buffers, outputs and the variables it uses."""

    def __init__(self) -> None:
        self.runs = 0
        self.refused = False
        self.invalidations = 0
        self.graph: Any = None
        self.statics: list[Any] = []
        self.outputs: list[Any] = []
        self.variables: list[tuple[VarSlot, Any]] = []
        self.kept: list[int] = []  # ids of the arrays held (gpugraph.state.hold)

    def set(self, graph: Any, statics: list[Any], outputs: list[Any],
            variables: list[tuple[VarSlot, Any]]) -> None:
        self.graph, self.statics, self.outputs, self.variables = graph, statics, outputs, variables
        self.kept = resources.hold([*graph.references(), *statics, *_leaves(outputs),
                                    *(value for _, value in variables)])

    def moved(self) -> VarSlot | None:
        """A variable whose buffer is no longer the one captured, or None."""
        for slot, value in self.variables:
            if slot.value is not value:
                return slot
        return None

    def drop(self) -> None:
        resources.release(self.kept)
        self.graph, self.statics, self.outputs, self.variables, self.kept = None, [], [], [], []


class Segment(Block):
    """Consecutive capturable steps on one device, run as a captured graph per signature."""

    def __init__(self, steps: list[Any], device: Device, inputs: tuple[int, ...],
                 outputs: tuple[int, ...], state: SessionState,
                 refuse: Callable[[Any], None], copied: tuple[int, ...] = ()):
        self.steps = steps
        self.device = device
        self.inputs = inputs
        self.outputs = outputs
        self._copied = [k for k, slot in enumerate(outputs) if slot in copied]
        self.op = steps[0].op  # (names the segment in errors raised outside its steps)
        self.label = f"captured graph of {len(steps)} steps on {device.short_name}"
        self._graphs: Graphs = device.graphs()
        self._state = state
        self._stats: GraphStats = state.graph_stats
        self._refuse = refuse
        _, self.fn, self.line_steps = compile_plan(steps, list(inputs), list(outputs),
                                                   consume_feeds=True)
        self.code = self.fn.__code__
        self._signatures: dict[tuple, _Signature] = {}
        self.disabled = False

    def __call__(self, args: list[Any]) -> list[Any]:
        # ``args`` is the caller's own list: running the segment empties it (compile_plan's
        # consume_feeds), so that it keeps no variable's value alive.
        key = None if self.disabled else self._key(args)
        if key is None:
            return self._eager(args)
        sig = self._signatures.get(key)
        if sig is None:
            if len(self._signatures) >= MAX_SIGNATURES:
                return self._eager(args)
            sig = self._signatures[key] = _Signature()
        if sig.graph is not None:
            if sig.moved() is None:
                return self._replay(sig, args)
            sig.drop()
            sig.invalidations += 1
            sig.runs = 0
        if sig.refused or sig.invalidations > MAX_INVALIDATIONS or sig.runs < WARMUP_RUNS:
            sig.runs += 1
            return self._eager(args)
        return self._capture(sig, args)

    def close(self) -> None:
        """Drops every captured graph (the plan that owned them is rebuilt or gone)."""
        for sig in self._signatures.values():
            sig.drop()
        self._signatures.clear()

    def _eager(self, args: list[Any]) -> list[Any]:
        self._stats.eager_runs += 1
        return self.fn(args)

    def _replay(self, sig: _Signature, args: list[Any]) -> list[Any]:
        copy_into = self._graphs.copy_into
        for static, value in zip(sig.statics, args):
            if static is not value and self._graphs.is_buffer(static):
                copy_into(static, value)
        sig.graph.launch()
        self._stats.replays += 1
        if not self._copied:
            return sig.outputs
        outputs = list(sig.outputs)
        for k in self._copied:  # (kept by a stateful op: the next replay overwrites these)
            if self._graphs.is_buffer(outputs[k]):
                outputs[k] = self._graphs.static_copy(outputs[k])
        return outputs

    def _capture(self, sig: _Signature, args: list[Any]) -> list[Any]:
        graphs = self._graphs
        statics = [graphs.static_copy(a) if graphs.is_buffer(a) else a for a in args]
        args.clear()
        try:
            graph, outputs = graphs.capture(lambda: self.fn(list(statics)))
        except Exception as e:  # noqa: BLE001  (refusals are recorded; other errors rerun eagerly)
            self._refused(sig, e)
            return self._eager(list(statics))
        variables = [(slot, slot.value) for slot in self._state.variables.values()
                     if slot.device is self.device and slot.value is not None]
        sig.set(graph, statics, outputs, variables)
        self._stats.captures += 1
        return self._replay(sig, statics)

    def _refused(self, sig: _Signature, error: Exception) -> None:
        reason = str(error) if isinstance(error, VariableRebindError) else \
            self._graphs.refusal(error)
        if reason is None:  # an ordinary failure: the eager run reports it with its node
            sig.refused = True
            return
        step = self.locate(error)
        if step is None:  # not one node's doing: this segment stays eager
            self._stats.refuse("", "", reason)
            self.disabled = True
            return
        self._stats.refuse(step.op.name, step.op.type, reason)
        self._refuse(step)
        sig.refused = True  # (eager until the plan recompiles without the step: a loop body
        #                    would otherwise try again every iteration of this run)

    def locate(self, error: BaseException) -> Any:
        """The step of this segment whose line raised ``error``, or None."""
        found = failing_line(error, {self.code: self.line_steps})
        return None if found is None else found[0]

    def _key(self, args: list[Any]) -> tuple | None:
        key = []
        is_buffer = self._graphs.is_buffer
        for value in args:
            if is_buffer(value):
                key.append((value.shape, value.dtype.str))
            elif isinstance(value, np.ndarray):
                if value.size > _KEY_ELEMENTS or value.dtype == object:
                    return None  # a large host input: not a signature
                key.append(("host", value.shape, value.dtype.str, value.tobytes()))
            elif isinstance(value, (np.generic, int, float, bool, str, bytes)) or value is None:
                key.append(("value", type(value).__name__, value))
            else:  # VarSlots and sentinels: by identity
                key.append(("id", id(value)))
        return tuple(key)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value] if value is not None else []
