"""Data parallelism at plan time: averaging the gradients of an unmodified TF1 graph.

Horovod's ``DistributedOptimizer`` averages the gradients ``compute_gradients`` returns,
before ``apply_gradients`` (and before any clipping between the two).  A saved graph no longer
says which tensors those were, but TF1 builds every gradient under a ``gradients`` name scope
(``gradients/``, ``gradients_1/``, ``training/Adam/gradients/``, ...) and the optimizer, the
clipping and everything else outside it.  So the gradients are the tensors that leave a
gradients scope on a path, through no other gradients scope, into a variable update
(``Apply*``, ``ResourceApply*``, ``SparseApply*``, ``Scatter*``, ``Assign*``).  A gradient that
feeds a penalty term whose own gradient is taken (WGAN-GP) passes through another gradients
scope, and is left alone.

Which are dense and which sparse follows from the updates they reach: an update that also
reads an integer tensor leaving a gradients scope takes an ``IndexedSlices`` (values and
indices: gathered from every rank), any other float gradient is dense (all-reduced and
averaged).  The integer shape of an ``IndexedSlices`` (``dense_shape``) is the same on every
rank and left alone.

The plan gets, after each gradient's producer, a step handing the value to the reducer
(:class:`gpugraph.distributed.reducer.GradientReducer`), and before its first reader a step
taking the average back; readers inside the gradients scope keep the local value.  The steps
are of kind ``collective``: no pass fuses, folds, memoizes or captures them, and like copies
between devices they pass a dead value (an untaken ``tf.cond`` branch) through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gpugraph import dtypes, errors
from gpugraph.distributed.reducer import DENSE, INDICES, VALUES
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.ops.registry import DEAD
from gpugraph.plan import frames
from gpugraph.plan.codegen import flatten
from gpugraph.plan.steps import Step

_SCOPE = re.compile(r"(^|/)gradients(_\d+)?/")
_OPTIMIZER_PREFIXES = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")
_UPDATE_PREFIXES = (*_OPTIMIZER_PREFIXES, "Scatter", "ResourceScatter")
_UPDATE_OPS = frozenset({"Assign", "AssignAdd", "AssignSub", "AssignVariableOp",
                         "AssignAddVariableOp", "AssignSubVariableOp"})
_VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp", "Placeholder",
                           "PlaceholderWithDefault", "Const"})
_SHAPE_OPS = frozenset({"Shape", "VariableShape", "ShapeN", "Size", "Const"})
_THROUGH = frozenset({"Cast", "Identity"})


@dataclass(frozen=True)
class Gradient:
    """A tensor averaged over the ranks: a dense gradient, or sparse values or indices."""

    tensor: Tensor
    kind: str


def in_gradient_scope(op: Operation) -> bool:
    return _SCOPE.search(op.name) is not None


def is_update(op: Operation) -> bool:
    return op.type in _UPDATE_OPS or op.type.startswith(_UPDATE_PREFIXES)


def find_gradients(needed: list[Operation], skipped: set[Operation], fed: set
                   ) -> list[Gradient]:
    """The gradients the plan's variable updates read (see the module doc), in graph order.

    Raises:
        DataParallelError: an optimizer update reads no gradient found this way.
    """
    reach = _Reach(fed)
    kinds: dict[Tensor, str] = {}
    for op in needed:
        if op in skipped or not is_update(op):
            continue
        found = reach.boundary(op)
        if not found and op.type.startswith(_OPTIMIZER_PREFIXES):
            raise errors.DataParallelError(
                None, op, f"Data parallelism: the optimizer update {op.name!r} ({op.type}) "
                "reads no gradient gpugraph can find: no input comes from a tf.gradients name "
                "scope ('gradients/'), so it cannot be averaged over the ranks.",
                {"node": op.name})
        sparse = any(_is_indices(t) for t in found)
        for t in found:
            kind = _kind(t, sparse)
            if kind is None:
                continue
            if kinds.setdefault(t, kind) != kind:
                raise errors.DataParallelError(
                    None, op, f"Data parallelism: the gradient {t.name!r} feeds both dense and "
                    "sparse updates; gpugraph cannot tell how to average it.", {"tensor": t.name})
    return [Gradient(t, k) for t, k in sorted(kinds.items(),
                                              key=lambda item: (item[0].op._id,
                                                                item[0].value_index))]


def _kind(t: Tensor, sparse: bool) -> str | None:
    if t.dtype.base_dtype.is_floating:
        return VALUES if sparse else DENSE
    return INDICES if _is_indices(t) else None


def _is_indices(t: Tensor) -> bool:
    """An integer gradient tensor that is not a shape (an IndexedSlices' dense_shape)."""
    if not t.dtype.base_dtype.is_integer:
        return False
    op = t.op
    while op.type in _THROUGH and op._inputs:
        op = op._inputs[0].op
    return op.type not in _SHAPE_OPS


class _Reach:
    """For an op outside the gradients scopes: the gradient-scope tensors it reads, directly or
    through other ops outside them (memoized; iterative, for deep graphs)."""

    def __init__(self, fed: set):
        self.fed = fed
        self.memo: dict[Operation, frozenset[Tensor]] = {}

    def boundary(self, root: Operation) -> frozenset[Tensor]:
        stack = [root]
        while stack:
            op = stack[-1]
            if op in self.memo:
                stack.pop()
                continue
            todo = [t.op for t in op._inputs if self._walks(t) and t.op not in self.memo]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            found: set[Tensor] = set()
            for t in op._inputs:
                if (t.op, t.value_index) in self.fed:
                    continue
                if in_gradient_scope(t.op):
                    found.add(t)
                elif self._walks(t):
                    found |= self.memo[t.op]
            self.memo[op] = frozenset(found)
        return self.memo[root]

    def _walks(self, t: Tensor) -> bool:
        return ((t.op, t.value_index) not in self.fed and not in_gradient_scope(t.op)
                and t.op.type not in _VARIABLE_OPS and t.dtype.base_dtype != dtypes.resource
                and not t.dtype.is_ref_dtype)


def insert_reductions(items: list[Any], gradients: list[Gradient], reducer: Any,
                      slot_of: Any, new_slot: Any, where: dict[int, Any]) -> list[Any]:
    """``items`` with a hand-over step after each gradient's producer and an averaging step
    before its first reader outside the gradients scopes (which then reads the average)."""
    for gradient in gradients:
        t = gradient.tensor
        slot = slot_of(t.op, t.value_index)
        produced = next((k for k, item in enumerate(items) if slot in _outputs(item)), None)
        if produced is None:
            raise errors.UnimplementedError(
                None, t.op, f"Data parallelism: the gradient {t.name!r} is computed inside a "
                "while loop; gpugraph averages gradients computed outside loops only.",
                {"tensor": t.name})
        device = where.get(slot) or items[produced].device
        ticket = new_slot(("gradient ticket", slot))
        averaged = new_slot(("gradient average", slot))
        where[averaged] = device
        hand = Step(t.op, "collective", _enqueue(reducer, t.name, gradient.kind, device),
                    (slot,), (ticket,), device)
        hand.label = f"hand-over of gradient {t.name!r} to the all-reduce"
        items.insert(produced + 1, hand)
        readers = [k for k, item in enumerate(items) if k > produced + 1
                   and _reads(item, slot) and not _in_scope(item)]
        if not readers:
            continue
        take = Step(t.op, "collective", _average(reducer), (ticket,), (averaged,), device)
        take.label = f"average of gradient {t.name!r} over the ranks"
        for k in readers:
            items[k].inputs = tuple(averaged if s == slot else s for s in items[k].inputs)
        items.insert(readers[0], take)
    return items


def _outputs(item: Any) -> tuple:
    return () if isinstance(item, frames.LoopNode) else item.outputs


def _reads(item: Any, slot: int) -> bool:
    if isinstance(item, frames.LoopNode):
        if any(slot in step.inputs for step in flatten(item.items())):
            raise errors.UnimplementedError(
                None, None, "Data parallelism: a gradient is read inside a while loop; "
                "gpugraph averages gradients read outside loops only.", {})
        return False
    return slot in item.inputs


def _in_scope(item: Any) -> bool:
    # (a copy of the gradient to another device carries the average on to the update)
    return in_gradient_scope(item.op) and item.kind not in ("copy", "collective")


def _enqueue(reducer: Any, name: str, kind: str, device: Any) -> Any:
    def hand_over(value: Any) -> Any:
        return value if value is DEAD else reducer.enqueue(name, kind, value, device)

    return hand_over


def _average(reducer: Any) -> Any:
    def average(ticket: Any) -> Any:
        return ticket if ticket is DEAD else reducer.result(ticket)

    return average
