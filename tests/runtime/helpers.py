"""Small graph-building helpers for runtime tests (any TF op type, attrs from Python values)."""

from __future__ import annotations

from typing import Any

from gpugraph.framework.attrs import to_attr_value
from gpugraph.framework.graph import get_default_graph


def node(op_type: str, *inputs: Any, name: str | None = None, **attrs: Any):
    """Adds one op to the default graph; returns its Operation."""
    return get_default_graph().create_op(op_type, list(inputs), name=name,
                                         attrs={k: to_attr_value(v) for k, v in attrs.items()})


def out(op_type: str, *inputs: Any, name: str | None = None, **attrs: Any):
    """Adds one op and returns its first output."""
    return node(op_type, *inputs, name=name, **attrs).outputs[0]
