"""A plan's value types: :class:`Step` (one kernel call and its value slots) and :class:`Plan`
(the compiled steps of one subgraph, run with one set of feed values), and the errors a failing
step is reported with.

Running a plan is one call of its generated function (:mod:`gpugraph.plan.codegen`), inside
the context each of its devices asks for (:meth:`gpugraph.devices.base.Device.plan_context`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.devices.base import Device, host_value
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.ops.registry import DEAD, dims_text
from gpugraph.plan import graphs
from gpugraph.plan.codegen import compile_plan, failing_line, flatten
from gpugraph.state import SessionState, VarSlot


class Step:
    """One node of a plan: its kernel and the value slots it reads and writes."""

    __slots__ = ("op", "kind", "fn", "inputs", "outputs", "frees", "deref", "device",
                 "dead_aware", "tokens", "token", "label", "after")

    def __init__(self, op: Operation, kind: str, fn: Any, inputs: tuple[int, ...],
                 outputs: tuple[int, ...], device: Device):
        self.op = op
        self.kind = kind  # the registry's kind: kernel, constant, alias or noop
        self.fn = fn
        self.inputs = inputs
        self.outputs = outputs
        self.frees: tuple[int, ...] = ()
        self.deref: tuple[int, ...] = ()  # input positions holding a ref to read
        self.device = device
        self.dead_aware = False
        self.tokens: tuple[int, ...] = ()  # liveness slots of dead-aware control inputs
        self.token = -1  # this node's own liveness slot
        self.label = ""  # what a copy step copies (empty for op steps)
        self.after: tuple[Operation, ...] = ()  # ops it follows besides its control inputs

    def __repr__(self) -> str:
        return f"<Step {self.op.name} ({self.op.type}) in={self.inputs} out={self.outputs}>"


class Plan:
    """A compiled subgraph; :meth:`run` executes it for one set of feed values.

    The steps are compiled into one generated Python function (:attr:`source`): each step is
    a direct call on local variables, so running a plan costs about one Python call per
    kernel, and constants, variable handles, identities and NoOps cost nothing.
    """

    def __init__(self, items: list[Any], num_slots: int, feed_slots: list[int],
                 fetch_slots: list[int], fetches: list[Tensor], host: Device,
                 state: SessionState | None = None):
        self.items = items  # steps and while loops (LoopNode)
        self.data_parallel = 0  # gradients averaged over the ranks (gpugraph.plan.data_parallel)
        self.steps = flatten(items)
        self.num_slots = num_slots
        self.feed_slots = feed_slots
        self.fetch_slots = fetch_slots
        self.fetches = fetches
        devices = {id(d): d for d in (host, *(s.device for s in self.steps))}.values()
        self.owns_cores = any(d.owns_cores(self.steps) for d in devices)
        self._context = _plan_context([d.plan_context(self.steps) for d in devices])
        # Captured graphs (plan.graphs): only where a device captures and the session keeps
        # the statistics and variables they need.
        self._state = state
        self._captures = state is not None and any(d.graphs() is not None for d in devices)
        self._excluded: set[Step] = set()  # steps a capture refused
        self._segments: dict[tuple, graphs.Segment] = {}
        self._compile()

    def _compile(self) -> None:
        items = self.items
        if self._captures:
            used: dict[tuple, graphs.Segment] = {}
            items = graphs.split(items, self.fetch_slots, self._excluded,
                                 lambda *run: self._segment(used, *run))
            for key, segment in self._segments.items():
                if key not in used:
                    segment.close()
            self._segments = used
        self.source, self._fn, line_steps = compile_plan(items, self.feed_slots,
                                                         self.fetch_slots)
        self._codes = {self._fn.__code__: line_steps}
        self._codes.update((s.code, s.line_steps) for s in self._segments.values())
        self._stale = False

    def _segment(self, used: dict, steps: list[Step], device: Device, inputs: tuple,
                 outputs: tuple, copied: tuple) -> graphs.Segment:
        key = (tuple(steps), inputs, outputs, copied)
        segment = self._segments.get(key)
        if segment is None:
            segment = graphs.Segment(steps, device, inputs, outputs, self._state, self._refuse,
                                     copied)
        used[key] = segment
        return segment

    def _refuse(self, step: Step) -> None:
        # The step runs outside the graphs from the next run on (this run is under way).
        self._excluded.add(step)
        self._stale = True

    def close(self) -> None:
        """Drops the plan's captured graphs."""
        for segment in self._segments.values():
            segment.close()
        self._segments = {}

    def run(self, feed_values: Sequence[Any]) -> list[Any]:
        """Runs every step; returns the fetched values (refs read, dead values rejected)."""
        if self._stale:
            self._compile()
        try:
            # inf/nan are values, as in TF, not warnings.
            with np.errstate(all="ignore"), self._context():
                values = self._fn(feed_values)
        except Exception as e:  # noqa: BLE001  (re-raised with the failing node's context)
            located = self._locate(e)
            if located is None:
                raise
            step, args = located
            if isinstance(e, errors.OpError):
                raise _with_node_context(e, step, args) from e
            raise _kernel_failure(e, step, args) from e
        return [self._fetched(v, t) for v, t in zip(values, self.fetches)]

    def _locate(self, e: Exception) -> tuple[Step, list[Any]] | None:
        """The step whose generated line raised ``e`` (the innermost, where a captured segment
        ran it), and its input values."""
        found = failing_line(e, self._codes)
        if found is None:
            return None
        step, local = found
        return step, [local.get(f"v{i}") for i in step.inputs]

    def _fetched(self, value: Any, tensor: Tensor) -> Any:
        if value is DEAD:
            raise errors.InvalidArgumentError(
                None, tensor.op,
                f"Fetched tensor {tensor.name!r} has no value: it is on the branch of a "
                "tf.cond (Switch) that was not taken in this run (TF: \"Retval does not have "
                "value\").")
        if isinstance(value, VarSlot):
            value = value.read(tensor.op)
        return value

    def describe(self) -> str:
        """The steps, one per line (for debugging)."""
        return "\n".join(f"{i:4d} {s.op.name} ({s.op.type}) on {s.device.name} in={s.inputs} "
                         f"out={s.outputs} free={s.frees}" for i, s in enumerate(self.steps))


# --- errors -----------------------------------------------------------------------------------
def _describe_value(value: Any) -> str:
    if isinstance(value, VarSlot):
        return f"ref {value.name!r}"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None:
        return type(value).__name__
    return f"{dtype}{list(shape)}"


def _node_context(step: Step, args: list[Any]) -> str:
    inputs = ", ".join(_describe_value(a) for a in args) or "no inputs"
    what = step.label or f"node {step.op.name} ({step.op.type})"
    return f"\n\t [[{what} on {step.device.name}; inputs: {inputs}]]"


def _with_node_context(e: errors.OpError, step: Step, args: list[Any]) -> errors.OpError:
    if "[[node " in e.message:
        return e
    details = dict(e.details, node=step.op.name, op_type=step.op.type)
    return type(e)(e.node_def, e.op or step.op, e.message + _node_context(step, args), details)


def _kernel_failure(e: Exception, step: Step, args: list[Any]) -> errors.OpError:
    cls = errors.ResourceExhaustedError if isinstance(e, MemoryError) else (
        errors.InvalidArgumentError if isinstance(e, (ValueError, IndexError, TypeError,
                                                      ArithmeticError)) else errors.InternalError)
    message = (f"{step.op.type} kernel of node {step.op.name!r} failed: "
               f"{type(e).__name__}: {e}{_node_context(step, args)}")
    if isinstance(e, ValueError) and "could not be broadcast" in str(e) and len(args) >= 2:
        shapes = [getattr(a, "shape", ()) for a in args[:2]]
        message = (f"Incompatible shapes: {dims_text(shapes[0])} vs. {dims_text(shapes[1])}"
                   f"{_node_context(step, args)}")
    details = {"node": step.op.name, "op_type": step.op.type, "device": step.device.name,
               "inputs": [_describe_value(a) for a in args]}
    return cls(None, step.op, message, details)


def _plan_context(factories: list[Callable[[], Any] | None]) -> Callable[[], Any]:
    """One factory entering every device's plan context (usually just the host's)."""
    found = [f for f in factories if f is not None]
    if not found:
        return contextlib.nullcontext
    if len(found) == 1:
        return found[0]

    def enter_all() -> Any:
        stack = contextlib.ExitStack()
        for factory in found:
            stack.enter_context(factory())
        return stack

    return enter_all


def as_host(value: Any) -> Any:
    """A fetched value as TF's Session returns it: a numpy array, or a numpy scalar (bytes for
    strings) when 0-d; CuPy arrays are copied to the host."""
    if not isinstance(value, (np.ndarray, np.generic)) and value is not None:
        value = host_value(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value
