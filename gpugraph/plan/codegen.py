"""Code generation: a plan's steps as one Python function of local variables.

Each step becomes one statement (``v7 = k5(v3, v4)``); constants, identities and NoOps cost
nothing; a value is deleted after its last reader; dead-aware steps get an ``if`` on their
inputs' liveness; v1 while loops (:class:`~gpugraph.plan.frames.LoopNode`) become ``while True``
blocks whose condition and body are generated the same way, nested loops nested.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gpugraph import errors
from gpugraph.framework.ops import Tensor
from gpugraph.ops.registry import DEAD, DEAD_INPUT_OPS
from gpugraph.plan.frames import LoopNode


class Block:
    """Steps compiled as a function of their own and called as one item (a captured segment:
    :class:`gpugraph.plan.graphs.Segment`).  Subclasses set :attr:`steps`, :attr:`inputs`,
    :attr:`outputs` and are callable as ``block(inputs) -> [outputs]``."""

    steps: list[Any]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def compile_plan(items: list[Any], feed_slots: list[int], fetch_slots: list[int],
                 consume_feeds: bool = False):
    """Generates ``run(feeds) -> [fetched values]``; returns (source, function, line -> step).

    ``items`` are steps and LoopNodes; steps' ``frees`` are honoured at the top level only (a
    value read inside a loop must survive every iteration).  With ``consume_feeds`` the
    function empties the ``feeds`` list once it has read it, so the list does not keep values
    alive (a variable's value must not look shared to its update: :class:`Block` inputs).
    """
    namespace: dict[str, Any] = {"DEAD": DEAD, "_loop_limit": _loop_limit}
    emitter = _Emitter(namespace, read_slots(items) | set(fetch_slots))
    if not any(isinstance(i, (LoopNode, Block)) for i in items):
        emitter.reuse = _in_place_inputs(items, feed_slots, fetch_slots)
    emitter.lines.append("def run(feeds):")
    if feed_slots:
        emitter.lines.append(f"    {', '.join(f'v{s}' for s in feed_slots)}, = feeds")
        if consume_feeds:
            emitter.lines.append("    feeds.clear()")
    emitter.block(items, "    ", top=True)
    emitter.lines.append(f"    return [{', '.join(f'v{s}' for s in fetch_slots)}]")
    source = "\n".join(emitter.lines) + "\n"
    code = compile(source, "<gpugraph plan>", "exec")
    exec(code, namespace)  # noqa: S102  (generated from the plan's own steps)
    return source, namespace["run"], emitter.line_steps


def flatten(items: list[Any]) -> list[Any]:
    """Every step in execution order, loops opened."""
    out = []
    for item in items:
        if isinstance(item, LoopNode):
            out.extend(flatten(item.items()))
        elif isinstance(item, Block):
            out.extend(item.steps)
        else:
            out.append(item)
    return out


def read_slots(items: list[Any]) -> set[int]:
    """Every slot ``items`` (steps, loops, blocks) read."""
    read = set()
    for item in items:
        if isinstance(item, LoopNode):
            read |= read_slots(item.items()) | {item.pred}
        elif isinstance(item, Block):
            read.update(item.inputs)
        else:
            read.update(item.inputs, item.tokens)
            if item.token >= 0 and item.op.type in DEAD_INPUT_OPS and item.outputs:
                read.add(item.outputs[0])  # a dead-aware Merge's liveness reads its output
    return read


class _Emitter:
    def __init__(self, namespace: dict[str, Any], read: set[int]):
        self.namespace = namespace
        self.read = read
        self.lines: list[str] = []
        self.line_steps: dict[int, Any] = {}
        self.reuse: dict[int, int] = {}
        self.count = 0
        self.loops = 0

    def block(self, items: list[Any], indent: str, top: bool = False) -> None:
        for item in items:
            if isinstance(item, LoopNode):
                self.loop(item, indent)
                if top:
                    self.lines.extend(f"{indent}del v{slot}" for slot in item.frees
                                      if slot in self.read)
                continue
            if isinstance(item, Block):
                self.call_block(item, indent, top)
                continue
            index = self.count
            self.count += 1
            for line in _step_lines(index, item, self.namespace, self.read,
                                    self.reuse.get(index) if top else None):
                self.emit(indent + line[4:], item)
            if top:
                self.lines.extend(f"{indent}del v{slot}" for slot in item.frees
                                  if slot in self.read)

    def emit(self, line: str, step: Any) -> None:
        self.lines.append(line)
        self.line_steps[len(self.lines)] = step

    def call_block(self, block: Block, indent: str, top: bool) -> None:
        name = f"b{self.count}"
        self.count += 1
        self.namespace[name] = block
        targets = ", ".join(f"v{s}" if s in self.read else "_" for s in block.outputs)
        args = f"[{', '.join(f'v{s}' for s in block.inputs)}]"
        freed = {slot for step in block.steps for slot in step.frees} if top else set()
        dropped = [slot for slot in block.inputs if slot in freed and slot in self.read]
        if dropped:
            # The inputs the block reads last are let go before the call (the block consumes
            # its argument list), so that a variable's value read here is not held by this
            # frame while the block updates the variable (which would look shared).
            self.emit(f"{indent}_args = {args}", block)
            self.lines.extend(f"{indent}del v{slot}" for slot in dropped)
            args = "_args"
        call = f"{name}({args})"
        self.emit(f"{indent}{targets}, = {call}" if block.outputs else f"{indent}{call}", block)

    def loop(self, node: LoopNode, indent: str) -> None:
        inner = indent + "    "
        counter = f"it{self.loops}"
        self.loops += 1
        self.block(node.pre, indent)
        for m in node.merges:
            self.emit(f"{indent}v{m.outputs[0]} = v{m.inputs[0]}", m)
            if len(m.outputs) > 1 and m.outputs[1] in self.read:
                self.emit(f"{indent}v{m.outputs[1]} = 0", m)
        self.lines.append(f"{indent}{counter} = 0")
        self.lines.append(f"{indent}while True:")
        self.block(node.cond, inner)
        self.lines.append(f"{inner}if not v{node.pred}:")
        self.lines.append(f"{inner}    break")
        for s in node.switches:
            if s.outputs[1] in self.read:
                self.emit(f"{inner}v{s.outputs[1]} = v{s.inputs[0]}", s)
        self.block(node.body, inner)
        for m in node.merges:
            self.emit(f"{inner}v{m.outputs[0]} = v{m.inputs[1]}", m)
            if len(m.outputs) > 1 and m.outputs[1] in self.read:
                self.emit(f"{inner}v{m.outputs[1]} = 1", m)
        self.lines.append(f"{inner}{counter} += 1")
        self.lines.append(f"{inner}if {counter} > {node.max_iterations}:")
        self.lines.append(f"{inner}    _loop_limit({node.name!r}, {node.max_iterations})")
        for s in node.switches:
            if s.outputs[0] in self.read:
                self.emit(f"{indent}v{s.outputs[0]} = v{s.inputs[0]}", s)
        self.block(node.after, indent)


def failing_line(error: BaseException, lines_of: dict) -> tuple[Any, dict] | None:
    """(item, frame locals) at the innermost line of ``error``'s traceback that ran generated
    code: ``lines_of`` maps each generated function's code object to its line -> item table."""
    tb, found = error.__traceback__, None
    while tb is not None:
        lines = lines_of.get(tb.tb_frame.f_code)
        if lines is not None and tb.tb_lineno in lines:
            found = (lines[tb.tb_lineno], tb.tb_frame.f_locals)
        tb = tb.tb_next
    return found


def _loop_limit(frame: str, cap: int) -> None:
    raise errors.ResourceExhaustedError(
        None, None, f"While loop {frame!r} ran more than {cap} iterations without its condition "
        "turning false; raise SessionConfig.max_loop_iterations if that is intended.",
        {"frame": frame, "max_iterations": cap})


def _targets(step: Any, read: set[int]) -> str:
    """Assignment targets for a step's outputs ("_" for outputs nobody reads)."""
    names = [f"v{s}" if s >= 0 and s in read else "_" for s in step.outputs]
    info = step.op._info
    copy = step.kind in ("copy", "collective") or getattr(step, "label", "").startswith("copy of")
    if len(names) == 1 and not copy and (info is None or info.fixed_num_outputs is None):
        return names[0] + ","  # a list-output op (Split, IdentityN, ...) returns a sequence
    return names[0] if len(names) == 1 else ", ".join(names)


def _in_place_inputs(steps: list[Any], feed_slots: list[int],
                     fetch_slots: list[int]) -> dict[int, int]:
    """Steps that may write their output into an input's buffer: step index -> input slot.

    Allowed when the kernel is a ufunc (it takes ``out=``), the input was made by another ufunc
    in this run (a fresh array nobody else holds), this step is its only reader, and TF's
    static shapes say input and output have the same fully known shape and dtype.  Chains of
    elementwise ops then run in one buffer instead of allocating per op.
    """
    readers = Counter(i for s in steps for i in (*s.inputs, *s.tokens))
    readers.update(fetch_slots)
    readers.update(feed_slots)
    fresh = {slot for s in steps if _is_ufunc(s) for slot in s.outputs}
    reuse = {}
    for index, step in enumerate(steps):
        if not _is_ufunc(step) or step.deref or len(step.outputs) != 1:
            continue
        out = step.op.outputs[0]
        for pos, slot in enumerate(step.inputs):
            tensor = step.op.inputs[pos]
            if (slot in fresh and readers[slot] == 1 and step.inputs.count(slot) == 1
                    and _same_static(tensor, out)):
                reuse[index] = slot
                break
    return reuse


def _is_ufunc(step: Any) -> bool:
    return step.kind == "kernel" and step.token < 0 and type(step.fn).__name__ == "ufunc"


def _same_static(a: Tensor, b: Tensor) -> bool:
    shape = a.shape
    return (a.dtype == b.dtype and shape.rank is not None and shape.rank > 0
            and shape.is_fully_defined() and shape == b.shape)


def _step_lines(index: int, step: Any, namespace: dict[str, Any], read: set[int],
                reuse: int | None = None) -> list[str]:
    args = []
    for pos, slot in enumerate(step.inputs):
        if pos in step.deref:
            namespace[f"o{index}"] = step.op
            args.append(f"v{slot}.read(o{index})")
        else:
            args.append(f"v{slot}")
    if reuse is not None:
        args.append(f"v{reuse}")  # positional out= (faster to parse than the keyword)
    call = _call(index, step, namespace, args, read)
    if step.token < 0:
        return [f"    {call}"] if call else []
    # Dead-aware: a dead input (or dead control input) makes this node dead without running.
    checks = [f"v{t} is DEAD" for t in step.tokens]
    merge = step.op.type in DEAD_INPUT_OPS
    if not merge and step.dead_aware:
        checks += [f"v{slot} is DEAD" for slot in step.inputs]
    live = [f"        {call}"] if call else []
    if merge and step.outputs:
        live.append(f"        v{step.token} = DEAD if v{step.outputs[0]} is DEAD else True")
    else:
        live.append(f"        v{step.token} = True")
    if not checks:
        return ["    if True:", *live]
    dead = [f"        v{s} = DEAD" for s in step.outputs if s >= 0 and s in read]
    return [f"    if {' or '.join(checks)}:", *dead, f"        v{step.token} = DEAD",
            "    else:", *live]


def _call(index: int, step: Any, namespace: dict[str, Any], args: list[str],
          read: set[int]) -> str:
    """The statement that runs one step (empty when there is nothing to do)."""
    targets = _targets(step, read) if step.outputs else ""
    wanted = bool(targets.replace("_", "").replace(",", "").strip())
    if step.kind == "alias" and targets.endswith(","):
        targets = targets[:-1]
    if step.kind == "noop":
        return ""
    if step.kind == "alias" and args:
        return f"{targets} = {args[0]}" if wanted else ""
    if step.kind == "constant":
        namespace[f"c{index}"] = step.fn()
        return f"{targets} = c{index}" if wanted else ""
    namespace[f"k{index}"] = step.fn
    call = f"k{index}({', '.join(args)})"
    return f"{targets} = {call}" if wanted else call


