"""v1 while loops: recovering each frame's loop structure so a plan can run it as a Python loop.

``tf.compat.v1.while_loop`` (and its gradient, and ``dynamic_rnn``) always builds the same
shape per loop variable::

    Enter -> Merge(Enter, NextIteration) -> Switch(Merge, LoopCond) -> Exit        (false)
                                                                   -> body -> NextIteration
                                                                                (true)

plus ``Enter(is_constant=True)`` for loop invariants.  Instead of interpreting frames and
iterations at run time, gpugraph finds each frame (the ops between its Enters and Exits,
frames nested as in TF: an Enter opens a child frame, an Exit returns to the parent) and
schedules it as a :class:`LoopNode`: invariant steps once, then ``while True`` the condition
steps, a break when ``LoopCond`` is false, the body steps and the NextIteration -> Merge
hand-over.  The generated code stays straight-line Python inside each loop, nested loops nest,
and a ``tf.cond`` inside a body keeps its dead-tensor handling.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from gpugraph import errors
from gpugraph.framework.ops import Operation

DEFAULT_MAX_ITERATIONS = 10_000_000


@dataclasses.dataclass(eq=False)
class Frame:
    """One while-loop frame (per parent frame and ``frame_name``)."""

    name: str
    parent: Frame | None
    ops: list[Operation] = dataclasses.field(default_factory=list)  # directly in this frame
    children: list[Frame] = dataclasses.field(default_factory=list)

    def subtree_ops(self) -> list[Operation]:
        out = list(self.ops)
        for child in self.children:
            out.extend(child.subtree_ops())
        return out


@dataclasses.dataclass(eq=False)
class LoopNode:
    """A frame scheduled as a loop; its parts are lists of plan steps and nested LoopNodes."""

    name: str
    pre: list[Any]
    merges: list[Any]
    cond: list[Any]
    pred: int
    switches: list[Any]
    body: list[Any]
    max_iterations: int
    kind: str = "loop"
    frees: tuple[int, ...] = ()
    after: list[Any] = dataclasses.field(default_factory=list)  # false side, once at the end

    def items(self) -> list[Any]:
        """Every step and nested loop, in execution order (for whole-plan passes)."""
        return [*self.pre, *self.merges, *self.cond, *self.switches, *self.body, *self.after]


def is_back_edge(consumer: Operation, producer: Operation) -> bool:
    """The NextIteration -> Merge edge that closes a loop (ignored when ordering)."""
    return consumer.type in ("Merge", "RefMerge") and producer.type in (
        "NextIteration", "RefNextIteration")


def has_frames(ops: list[Operation]) -> bool:
    return any(op.type in ("Enter", "RefEnter") for op in ops)


def assign_frames(ops: list[Operation]) -> tuple[dict[Operation, Frame | None], list[Frame]]:
    """Each op's frame (None = the root) and the top-level frames, as TF's executor sees them."""
    order = _forward_order(ops)
    frame_of: dict[Operation, Frame | None] = {}
    children: dict[tuple, Frame] = {}
    top: list[Frame] = []
    for op in order:
        frame = _frame_for(op, frame_of, children, top)
        frame_of[op] = frame
        if frame is not None:
            frame.ops.append(op)
    return frame_of, top


def _frame_for(op: Operation, frame_of: dict, children: dict, top: list) -> Frame | None:
    sources = [t.op for t in op._inputs] or list(op._control_inputs)
    if op.type in ("Enter", "RefEnter"):
        parent = frame_of.get(op._inputs[0].op) if op._inputs else None
        key = (id(parent), op.get_attr("frame_name"))
        frame = children.get(key)
        if frame is None:
            name = key[1].decode() if isinstance(key[1], bytes) else str(key[1])
            frame = children[key] = Frame(name, parent)
            (parent.children if parent is not None else top).append(frame)
        return frame
    inner = next((frame_of[s] for s in sources if s in frame_of and not is_back_edge(op, s)), None)
    if op.type in ("Exit", "RefExit"):
        if inner is None:
            raise _malformed(op, "an Exit outside any while-loop frame")
        return inner.parent
    return inner


def _forward_order(ops: list[Operation]) -> list[Operation]:
    """Topological order of ``ops`` ignoring loop back edges (Kahn's algorithm)."""
    members = set(ops)
    pending: dict[Operation, int] = {}
    users: dict[Operation, list[Operation]] = defaultdict(list)
    for op in ops:
        deps = {d for d in _deps(op) if d in members}
        pending[op] = len(deps)
        for d in deps:
            users[d].append(op)
    ready = [op for op in ops if pending[op] == 0]
    order = []
    while ready:
        op = ready.pop()
        order.append(op)
        for user in users[op]:
            pending[user] -= 1
            if pending[user] == 0:
                ready.append(user)
    if len(order) != len(ops):
        stuck = [op.name for op in ops if pending[op] > 0][:5]
        raise errors.UnimplementedError(
            None, None, "The subgraph has a cycle that is not a tf.compat.v1 while loop "
            f"(no NextIteration closes it), e.g. around {', '.join(stuck)}", {"nodes": stuck})
    return order


def _deps(op: Operation) -> list[Operation]:
    return [t.op for t in op._inputs if not is_back_edge(op, t.op)] + list(op._control_inputs)


def _malformed(op: Operation, what: str) -> errors.UnimplementedError:
    return errors.UnimplementedError(
        None, op, f"Node {op.name!r} ({op.type}): {what}; gpugraph runs while loops built by "
        "tf.compat.v1.while_loop (and their gradients) only.", {"node": op.name})


# --- scheduling ---------------------------------------------------------------------------------
def schedule(ops: list[Operation], frame: Frame | None, top: list[Frame],
             frame_of: dict[Operation, Frame | None]) -> list[Operation | Frame]:
    """The items of one frame level (its ops and child frames) in dependency order."""
    direct = [op for op in ops if frame_of.get(op) is frame]
    kids = frame.children if frame is not None else top
    owner: dict[Operation, Any] = {op: op for op in direct}
    for kid in kids:
        for op in kid.subtree_ops():
            owner[op] = kid
    items: list[Any] = [*direct, *kids]
    deps: dict[int, set[int]] = {}
    index = {id(item): i for i, item in enumerate(items)}
    for item in items:
        members = item.subtree_ops() if isinstance(item, Frame) else [item]
        inside = set(members)
        found = set()
        for op in members:
            for d in _deps(op):
                if d in inside:
                    continue
                o = owner.get(d)
                if o is not None and o is not item:
                    found.add(index[id(o)])
        deps[index[id(item)]] = found
    return [items[i] for i in _kahn(len(items), deps)]


def _kahn(n: int, deps: dict[int, set[int]]) -> list[int]:
    users: dict[int, list[int]] = defaultdict(list)
    pending = {i: len(deps[i]) for i in range(n)}
    for i, ds in deps.items():
        for d in ds:
            users[d].append(i)
    ready = sorted((i for i in range(n) if pending[i] == 0), reverse=True)
    order = []
    while ready:
        i = ready.pop()
        order.append(i)
        for u in sorted(users[i], reverse=True):
            pending[u] -= 1
            if pending[u] == 0:
                ready.append(u)
    if len(order) != n:
        raise errors.UnimplementedError(None, None, "While-loop frames depend on each other in "
                                        "a cycle; cannot schedule them.")
    return order


def classify(frame: Frame, items: list[Any]) -> dict[str, list[Any]]:
    """Splits a frame's items into pre (loop-invariant), merges, cond, switches, body and after
    (the loop switches' false side, run once the loop has ended)."""
    ops = [i for i in items if isinstance(i, Operation)]
    merges = [op for op in ops if op.type in ("Merge", "RefMerge")
              and any(is_back_edge(op, t.op) for t in op._inputs)]
    loop_cond = [op for op in ops if op.type == "LoopCond"]
    if len(loop_cond) != 1 or not merges:
        raise _malformed(frame.ops[0], f"frame {frame.name!r} has {len(loop_cond)} LoopCond and "
                         f"{len(merges)} loop Merge nodes (expected one LoopCond)")
    cond_op = loop_cond[0]
    switches = [op for op in ops if op.type in ("Switch", "RefSwitch")
                and op._inputs[1].op is cond_op]
    variant = _downstream(items, set(merges))
    upstream = _upstream(items, cond_op)
    # Ops on a loop Switch's false side (inside the frame, e.g. a gradient's Identity before
    # its Exit) only see a live value once the loop has ended: they run after it.
    exit_side = _downstream(items, set(), {(sw, 0) for sw in switches})
    parts: dict[str, list[Any]] = {"pre": [], "merges": merges, "cond": [], "switches": switches,
                                    "body": [], "after": []}
    structural = set(merges) | set(switches)
    for item in items:
        if item in structural:
            continue
        if id(item) not in variant:
            parts["pre"].append(item)
        elif id(item) in exit_side:
            parts["after"].append(item)
        elif id(item) in upstream or item is cond_op:
            parts["cond"].append(item)
        else:
            parts["body"].append(item)
    return parts


def _members(item: Any) -> list[Operation]:
    return item.subtree_ops() if isinstance(item, Frame) else [item]


def _downstream(items: list[Any], seeds: set, seed_tensors: set | None = None) -> set[int]:
    """ids of items that depend (transitively, forward edges) on a seed op or seed tensor."""
    tainted_ops = set(seeds)
    tensors = seed_tensors or set()
    out = set()
    for item in items:  # items are in dependency order
        members = _members(item)
        hit = any(op in tainted_ops for op in members) or any(
            d in tainted_ops for op in members for d in _deps(op)) or any(
            (t.op, t.value_index) in tensors for op in members for t in op._inputs)
        if hit:
            out.add(id(item))
            tainted_ops.update(members)
    return out


def _upstream(items: list[Any], target: Operation) -> set[int]:
    """ids of items the target op depends on (transitively, within this level)."""
    owner = {op: item for item in items for op in _members(item)}
    seen: set[int] = set()
    stack = [target]
    visited = set()
    while stack:
        op = stack.pop()
        if op in visited:
            continue
        visited.add(op)
        for d in _deps(op):
            item = owner.get(d)
            if item is None:
                continue
            seen.add(id(item))
            stack.extend(_members(item))
    return seen


def build_loop(frame: Frame, items: list[Any], build_item: Callable[[Any], list[Any]],
               slot_of: Callable[[Operation, int], int], max_iterations: int) -> LoopNode:
    """A LoopNode for ``frame``; ``build_item`` turns an op or child frame into plan items."""
    parts = classify(frame, items)
    built = {key: [x for item in parts[key] for x in build_item(item)] for key in parts}
    # Copy steps made for the structural ops (a device transfer of an Enter's value, or of the
    # merged value into a Switch on another device) run before the loop, resp. every iteration.
    built["pre"] += [s for s in built["merges"] if s.kind != "loop_merge"]
    built["merges"] = [s for s in built["merges"] if s.kind == "loop_merge"]
    built["cond"] += [s for s in built["switches"] if s.kind != "loop_switch"]
    built["switches"] = [s for s in built["switches"] if s.kind == "loop_switch"]
    cond_op = next(op for op in parts["cond"] if isinstance(op, Operation)
                   and op.type == "LoopCond")
    return LoopNode(frame.name, built["pre"], built["merges"], built["cond"],
                    slot_of(cond_op, 0), built["switches"], built["body"], max_iterations,
                    after=built["after"])
