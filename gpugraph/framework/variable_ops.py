"""Variable collections and the graph ops around them (``tf.compat.v1`` names).

``global_variables_initializer`` and friends add ops to the graph exactly as TF does (a NoOp
``init`` with a control input per initializer), so the ops can be exported and run by TF too.
"""

from __future__ import annotations

from typing import Any

from gpugraph import dtypes
from gpugraph.framework.attrs import to_attr_value
from gpugraph.framework.builders import constant, group, no_op
from gpugraph.framework.graph import get_collection, get_default_graph
from gpugraph.framework.graph_keys import GraphKeys
from gpugraph.framework.ops import Operation, Tensor


def global_variables(scope: str | None = None) -> list:
    """Variables in the GLOBAL_VARIABLES collection (``tf.compat.v1.global_variables``)."""
    return get_collection(GraphKeys.GLOBAL_VARIABLES, scope)


def local_variables(scope: str | None = None) -> list:
    return get_collection(GraphKeys.LOCAL_VARIABLES, scope)


def trainable_variables(scope: str | None = None) -> list:
    return get_collection(GraphKeys.TRAINABLE_VARIABLES, scope)


def model_variables(scope: str | None = None) -> list:
    return get_collection(GraphKeys.MODEL_VARIABLES, scope)


def variables_initializer(var_list: list, name: str = "init") -> Operation:
    """An op that runs the initializers of ``var_list`` (a NoOp when the list is empty)."""
    if var_list:
        return group(*[v.initializer for v in var_list], name=name)
    return no_op(name=name)


def global_variables_initializer() -> Operation:
    """``variables_initializer(global_variables())``, named ``init``."""
    return variables_initializer(global_variables())


def local_variables_initializer() -> Operation:
    return variables_initializer(local_variables())


def _create(op_type: str, inputs: list[Tensor], name: str, **attrs: Any) -> Operation:
    graph = get_default_graph()
    attr_values = {k: to_attr_value(v) for k, v in attrs.items()}
    return graph.create_op(op_type, inputs, name=name, attrs=attr_values)


def _is_initialized(var: Any) -> Tensor:
    if var.is_resource:
        return _create("VarIsInitializedOp", [var.handle], "VarIsInitializedOp").outputs[0]
    return _create("IsVariableInitialized", [var._variable], "IsVariableInitialized",
                   dtype=var.dtype.base_dtype).outputs[0]


def report_uninitialized_variables(var_list: list | None = None,
                                   name: str = "report_uninitialized_variables") -> Tensor:
    """A 1-D string tensor naming the variables of ``var_list`` that are not initialized.

    Defaults to the global and local variables, as TF does.
    """
    if var_list is None:
        var_list = global_variables() + local_variables()
    graph = get_default_graph()
    with graph.name_scope(name):
        if not var_list:
            return constant([], dtype=dtypes.string)
        flags = [_is_initialized(v) for v in var_list]
        stacked = _create("Pack", flags, "stack", N=len(flags), T=dtypes.bool, axis=0).outputs[0]
        mask = _create("LogicalNot", [stacked], "LogicalNot").outputs[0]
        names = constant([v.op.name.encode() for v in var_list], dtype=dtypes.string)
        where = _create("Where", [mask], "Where", T=dtypes.bool).outputs[0]
        flat = _create("Reshape", [where, constant([-1])], "Reshape", T=dtypes.int64,
                       Tshape=dtypes.int32).outputs[0]
        return _create("GatherV2", [names, flat, constant(0)], "GatherV2", Tparams=dtypes.string,
                       Tindices=dtypes.int64, Taxis=dtypes.int32, batch_dims=0).outputs[0]


def is_variable_initialized(variable: Any) -> Tensor:
    """A bool scalar tensor: is ``variable`` initialized?"""
    return _is_initialized(variable)
