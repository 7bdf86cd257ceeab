"""Elementwise fusion: chains of float math on the CPU run as one numexpr program.

A numpy ufunc call costs ~0.25 us however small its arrays, which is more than TF spends per
node on a long chain of tiny elementwise ops.  This pass finds trees of elementwise steps
(AddV2, Mul, Tanh, ...) whose intermediate values have one reader and are not fetched, and
replaces each tree by one step that evaluates the whole expression with numexpr's virtual
machine (~0.1 us per op, no intermediate arrays).  numexpr computes float32 in float32, like
the unfused kernels; results agree with them to within rounding of tanh/exp.

On a CUDA device the same trees become one CuPy ``ElementwiseKernel`` each (a launch costs
~15 us there, and each op of a chain is a launch).  Its formulas are CuPy's own for each op,
with the ``__f*_rn`` intrinsics keeping ``a*b+c`` from contracting into an FMA, so a fused
chain rounds as the unfused kernels do.

Only CPU and CUDA steps with float32/float64 static dtypes are fused; numexpr is optional
(without it CPU chains stay unfused).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from gpugraph import cuda

try:  # optional: an installed numexpr enables fusion
    import numexpr
except ImportError:  # pragma: no cover - exercised where numexpr is absent
    numexpr = None

_TEMPLATES = {
    "Add": "({0} + {1})", "AddV2": "({0} + {1})", "Sub": "({0} - {1})", "Mul": "({0} * {1})",
    "RealDiv": "({0} / {1})", "Neg": "(-{0})", "Tanh": "tanh({0})", "Exp": "exp({0})",
    "Log": "log({0})", "Sqrt": "sqrt({0})", "Square": "({0} * {0})", "Abs": "abs({0})",
}
_FLOATS = {np.dtype(np.float32): float, np.dtype(np.float64): np.float64}


def _cuda_templates(rounded: str, math: str) -> dict[str, str]:
    """CuPy's formula for each op in CUDA C, for float (``__f*_rn``, ``tanhf``, ...) or double
    (``__d*_rn``, ``tanh``, ...); the ``_rn`` intrinsics round each step on its own (no FMA)."""
    add, sub, mul, div = (f"__{rounded}{name}_rn({{0}}, {{1}})"
                          for name in ("add", "sub", "mul", "div"))
    return {"Add": add, "AddV2": add, "Sub": sub, "Mul": mul, "RealDiv": div, "Neg": "(-{0})",
            "Square": f"__{rounded}mul_rn({{0}}, {{0}})", "Abs": f"fabs{math}({{0}})",
            **{op: f"{op.lower()}{math}({{0}})" for op in ("Tanh", "Exp", "Log", "Sqrt")}}


_CUDA_TEMPLATES = {np.dtype(np.float32): _cuda_templates("f", "f"),
                   np.dtype(np.float64): _cuda_templates("d", "")}
_MAX_DEPTH = 60  # Python's parser limits nested parentheses; numexpr parses with it
_MIN_OPS = 3  # a shorter tree is not worth a numexpr call


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
    for step in steps:
        if not _fusable(step):
            continue
        depth[id(step)] = 1
        for slot in step.inputs:
            source = producer.get(slot)
            if (source is not None and _fusable(source) and readers[slot] == 1
                    and slot not in keep and depth.get(id(source), 99) < _MAX_DEPTH
                    and source.device is step.device):
                inlined.add(id(source))
                depth[id(step)] = max(depth[id(step)], depth[id(source)] + 1)
    replaced: dict[int, Any] = {}  # root id -> fused step
    removed: set[int] = set()  # ids of steps absorbed into a fused root
    for step in steps:
        if id(step) in inlined or not _fusable(step):
            continue
        if any(id(producer.get(s)) in inlined for s in step.inputs):
            members: list[Any] = []
            fused = _fuse(step, producer, inlined, make_step, members)
            if fused is not None:  # else the tree stays as separate steps
                replaced[id(step)] = fused
                removed.update(id(m) for m in members)
    if not replaced:
        return steps
    return [replaced.get(id(s), s) for s in steps if id(s) not in removed]


def _fusable(step: Any) -> bool:
    if step.kind != "kernel" or step.token >= 0 or step.deref or len(step.outputs) != 1:
        return False
    op = step.op
    kind = step.device.kind
    fuses_here = (kind == "cpu" and numexpr is not None) or \
        (kind == "cuda" and cuda.enabled(step.device.xp))
    if op.type not in _TEMPLATES or not fuses_here:
        return False
    dtypes_ = [t.dtype.base_dtype for t in (*op.inputs, *op.outputs)]
    first = dtypes_[0]
    return all(d == first for d in dtypes_) and np.dtype(first.as_numpy_dtype) in _FLOATS


def _fuse(root: Any, producer: dict, inlined: set[int], make_step: Any,
          members: list[Any]) -> Any | None:
    names: dict[int, str] = {}  # leaf slot -> variable name
    count = [0]
    dtype = np.dtype(root.op.outputs[0].dtype.base_dtype.as_numpy_dtype)
    on_gpu = root.device.kind == "cuda"
    templates = _CUDA_TEMPLATES[dtype] if on_gpu else _TEMPLATES

    def expr(step: Any) -> str:
        args = []
        for slot in step.inputs:
            source = producer.get(slot)
            if source is not None and id(source) in inlined:
                members.append(source)
                args.append(expr(source))
            else:
                args.append(names.setdefault(slot, f"v{len(names)}"))
        count[0] += 1
        return templates[step.op.type].format(*args)

    text = expr(root)
    if count[0] < _MIN_OPS:
        return None
    if on_gpu:
        return make_step(root, tuple(names), cuda.fused(text, len(names), dtype,
                                                        root.device.xp))
    kind = _FLOATS[dtype]
    try:
        program = numexpr.NumExpr(text, signature=[(n, kind) for n in names.values()])
    except Exception:  # noqa: BLE001  (anything numexpr can't compile stays unfused)
        return None
    return make_step(root, tuple(names), _evaluator(program))


def _evaluator(program: Any) -> Any:
    def fused(*args: Any) -> Any:
        return program(*args)

    return fused
