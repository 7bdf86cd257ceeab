"""Elementwise fusion: trees of elementwise float ops run as one kernel.

This pass finds trees of elementwise steps (AddV2, Mul, Tanh, ...) whose intermediate values
have one reader and are not fetched, and replaces each tree by one step that evaluates the
whole expression.  The device emits that kernel (:meth:`gpugraph.devices.base.Device.fuser`):
on the CPU one numexpr program (a ufunc call costs ~0.25 us however small its arrays, numexpr
~0.1 us per op), on a CUDA device one CuPy ``ElementwiseKernel`` (a launch costs ~15 us, and
each op of a chain is a launch).  A device's fuser supplies the formula of each op it fuses;
a device without one (virtual GPUs) runs the ops one by one.

Only steps whose inputs and outputs share one float dtype the device fuses are candidates.

A fuser either takes one nested expression (``compile(expression, num_inputs)``; numexpr, whose
parser limits nesting: trees are cut at its ``max_depth``) or, with ``max_depth = None``, a
program of one statement per op (``compile_program(lines, num_inputs)``, line ``k`` defining
``t<k>`` from ``v<i>`` and earlier ``t<j>``), which has no depth limit: a chain of 2,000 ops is
one CUDA kernel.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

_MAX_DEPTH = 60  # Python's parser limits nested parentheses; numexpr parses with it
_UNLIMITED = 1 << 30
_MIN_OPS = 3  # a shorter tree is not worth a fused kernel
# The op types a device's fuser may know (each fuser's ``templates`` says which it does).
CANDIDATES = frozenset({"Add", "AddV2", "Sub", "Mul", "RealDiv", "Neg", "Tanh", "Exp", "Log",
                        "Sqrt", "Square", "Abs"})


def fuse_elementwise(steps: list[Any], keep: set[int], make_step: Any) -> list[Any]:
    """Returns ``steps`` with fusable elementwise trees replaced by fused steps.

    Args:
        steps: the plan's steps, in execution order.
        keep: slots that must stay materialised (fetched or fed).
        make_step: ``make_step(root_step, inputs, fn)`` builds the fused step.
    """
    readers = Counter(i for s in steps for i in (*s.inputs, *s.tokens))
    producer = {slot: s for s in steps for slot in s.outputs if slot >= 0}
    inlined: set[int] = set()  # ids of steps folded into their single consumer
    depth: dict[int, int] = {}
    fusers = {id(s): f for s in steps if (f := _fuser(s)) is not None}  # the candidates
    for step in steps:
        if id(step) not in fusers:
            continue
        depth[id(step)] = 1
        limit = _depth_limit(fusers[id(step)])
        for slot in step.inputs:
            source = producer.get(slot)
            if (source is not None and id(source) in fusers and readers[slot] == 1
                    and slot not in keep and depth.get(id(source), limit) < limit
                    and source.device is step.device):
                inlined.add(id(source))
                depth[id(step)] = max(depth[id(step)], depth[id(source)] + 1)
    replaced: dict[int, Any] = {}  # root id -> fused step
    removed: set[int] = set()  # ids of steps absorbed into a fused root
    for step in steps:
        if id(step) in inlined or id(step) not in fusers:
            continue
        if any(id(producer.get(s)) in inlined for s in step.inputs):
            members: list[Any] = []
            fused = _fuse(step, fusers[id(step)], producer, inlined, make_step, members)
            if fused is not None:  # else the tree stays as separate steps
                replaced[id(step)] = fused
                removed.update(id(m) for m in members)
    if not replaced:
        return steps
    return [replaced.get(id(s), s) for s in steps if id(s) not in removed]


def _fuser(step: Any) -> Any | None:
    """The fuser of ``step``'s device for its dtype, if the step is a candidate."""
    if step.kind != "kernel" or step.token >= 0 or step.deref or len(step.outputs) != 1:
        return None
    op = step.op
    if op.type not in CANDIDATES:
        return None
    dtypes_ = [t.dtype.base_dtype for t in (*op.inputs, *op.outputs)]
    first = dtypes_[0]
    if not first.is_numpy_compatible or any(d != first for d in dtypes_):
        return None
    fuser = step.device.fuser(np.dtype(first.as_numpy_dtype))
    return fuser if fuser is not None and op.type in fuser.templates else None


def _depth_limit(fuser: Any) -> int:
    limit = getattr(fuser, "max_depth", _MAX_DEPTH)
    return _UNLIMITED if limit is None else limit


def _fuse(root: Any, fuser: Any, producer: dict, inlined: set[int], make_step: Any,
          members: list[Any]) -> Any | None:
    names: dict[int, str] = {}  # leaf slot -> variable name
    templates = fuser.templates
    lines: list[str] = []  # line k: the formula of t<k>
    # Post-order without recursion (a chain may be thousands of ops deep).
    stack: list[tuple[Any, list[str]]] = [(root, [])]
    while stack:
        step, args = stack[-1]
        if len(args) < len(step.inputs):
            slot = step.inputs[len(args)]
            source = producer.get(slot)
            if source is not None and id(source) in inlined:
                members.append(source)
                stack.append((source, []))
            else:
                args.append(names.setdefault(slot, f"v{len(names)}"))
            continue
        stack.pop()
        lines.append(templates[step.op.type].format(*args))
        if stack:
            stack[-1][1].append(f"t{len(lines) - 1}")
    if len(lines) < _MIN_OPS:
        return None
    if getattr(fuser, "max_depth", _MAX_DEPTH) is None:
        fn = fuser.compile_program(lines, len(names))
    else:
        fn = fuser.compile(_inline(lines), len(names))
    return None if fn is None else make_step(root, tuple(names), fn)


def _inline(lines: list[str]) -> str:
    """The program as one nested expression (each ``t<k>`` replaced by its formula)."""
    done: list[str] = []
    for line in lines:
        done.append(re.sub(r"\bt(\d+)\b", lambda m: done[int(m.group(1))], line))
    return done[-1]
