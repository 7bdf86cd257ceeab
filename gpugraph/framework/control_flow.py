"""v1 control-flow context objects (``cond_context``/``while_context`` collections).

TF rebuilds ``CondContext``/``WhileContext`` objects from CondContextDef/WhileContextDef protos
when it imports a meta graph.  gpugraph keeps the proto with every name moved into the import
scope, exposes TF's accessors, and writes it back (names made relative to the export scope).
The runtime follows the Switch/Merge/Enter/Exit ops themselves, not these objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpugraph import _proto as pb
from gpugraph.framework import names


def _rename_values(values_def: Any, fn: Callable[[str], str]) -> None:
    values = [fn(v) for v in values_def.values]
    del values_def.values[:]
    values_def.values.extend(values)
    external = {fn(k): fn(v) for k, v in values_def.external_values.items()}
    values_def.external_values.clear()
    values_def.external_values.update(external)


def _rename_context(ctxt: Any, fn: Callable[[str], str]) -> None:
    kind = ctxt.DESCRIPTOR.name
    fields = ("context_name", "pred_name", "pivot_name") if kind == "CondContextDef" else (
        "context_name", "pivot_name", "pivot_for_pred_name", "pivot_for_body_name",
        "maximum_iterations_name")
    for field in fields:
        if getattr(ctxt, field):
            setattr(ctxt, field, fn(getattr(ctxt, field)))
    if kind == "WhileContextDef":
        for field in ("loop_exit_names", "loop_enter_names"):
            renamed = [fn(n) for n in getattr(ctxt, field)]
            del getattr(ctxt, field)[:]
            getattr(ctxt, field).extend(renamed)
    if ctxt.HasField("values_def"):
        _rename_values(ctxt.values_def, fn)
    for nested in ctxt.nested_contexts:
        inner = nested.cond_ctxt if nested.HasField("cond_ctxt") else nested.while_ctxt
        _rename_context(inner, fn)


class _Context:
    proto_class: Any = None

    def __init__(self, context_def: Any, import_scope: str | None = None):
        self._def = self.proto_class()
        self._def.CopyFrom(context_def)
        if import_scope:
            _rename_context(self._def, lambda n: names.prepend_name_scope(n, import_scope))

    @property
    def name(self) -> str:
        return self._def.context_name

    @classmethod
    def from_proto(cls, context_def: Any, import_scope: str | None = None) -> _Context:
        return cls(context_def, import_scope)

    def to_proto(self, export_scope: str | None = None) -> Any | None:
        if export_scope is not None and not self.name.startswith(export_scope):
            return None
        out = self.proto_class()
        out.CopyFrom(self._def)
        if export_scope:
            _rename_context(out, lambda n: names.strip_name_scope(n, export_scope))
        return out

    def __repr__(self) -> str:
        return f"<gg.{type(self).__name__} '{self.name}'>"


class CondContext(_Context):
    """A v1 ``tf.cond`` branch context."""

    proto_class = pb.CondContextDef

    @property
    def pred_name(self) -> str:
        return self._def.pred_name

    @property
    def pivot_name(self) -> str:
        return self._def.pivot_name

    @property
    def branch(self) -> int:
        return self._def.branch


class WhileContext(_Context):
    """A v1 ``tf.while_loop`` frame context."""

    proto_class = pb.WhileContextDef

    @property
    def pivot_name(self) -> str:
        return self._def.pivot_name

    @property
    def parallel_iterations(self) -> int:
        return self._def.parallel_iterations

    @property
    def loop_exit_names(self) -> list[str]:
        return list(self._def.loop_exit_names)

    @property
    def loop_enter_names(self) -> list[str]:
        return list(self._def.loop_enter_names)
