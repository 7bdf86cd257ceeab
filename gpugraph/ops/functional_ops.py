"""Control flow v2 and function calls: While, If, Case and PartitionedCall over the graph's
FunctionDefLibrary, plus the ``_Arg``/``_Retval`` ops of a function body.

The builders compile the called functions once, when the plan is built, for the device the
calling node was placed on (:mod:`gpugraph.plan.functions`); the kernels then only move values in
and out of the compiled bodies.  ``While`` runs its body until the condition's output is false
(TF's rule: a non-boolean scalar is true when non-zero or non-empty, a non-scalar when it has
elements) and stops with ResourceExhaustedError after the session's ``max_loop_iterations``.
``Case`` runs its last branch for an out-of-range index, as TF does.

These kernels compile plans through what the plan hands every builder
(``BuildContext.functions``, a :class:`gpugraph.plan.functions.FunctionCompiler`), so ``ops/``
never imports the planner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, op


# --- function bodies --------------------------------------------------------------------------
def _frame(ctx: BuildContext) -> Any:
    frame = None if ctx.functions is None else ctx.functions.frame_of(ctx.op.graph)
    if frame is None:
        raise errors.InvalidArgumentError(
            None, ctx.op, f"Node {ctx.op.name!r} ({ctx.op.type}) only runs inside a function "
            "body; it is not part of one here.")
    return frame


@op("_Arg")
def _arg(ctx: BuildContext):
    frame, index = _frame(ctx), ctx.attr("index")
    return lambda: frame.args[index]


@op("_Retval")
def _retval(ctx: BuildContext):
    frame, index = _frame(ctx), ctx.attr("index")

    def kernel(value: Any) -> None:
        frame.results[index] = value

    return kernel


# --- calling ----------------------------------------------------------------------------------
def _compile(ctx: BuildContext, func: Any, what: str, num_args: int) -> Any:
    """``func`` (a NameAttrList) compiled for this node's device; checks its argument count."""
    compiled = ctx.functions.compile(func, ctx)
    if compiled.num_args != num_args:
        raise errors.InvalidArgumentError(
            None, ctx.op, f"Node {ctx.op.name!r} ({ctx.op.type}) passes {num_args} inputs to its "
            f"{what} function {func.name!r}, which takes {compiled.num_args}.")
    return compiled


def _check_results(ctx: BuildContext, compiled: Any, what: str, want: int) -> None:
    if compiled.num_results != want:
        raise errors.InvalidArgumentError(
            None, ctx.op, f"The {what} function {compiled.name!r} of node {ctx.op.name!r} "
            f"({ctx.op.type}) returns {compiled.num_results} values; the node needs {want}.")


def _call(fn: Any, args: Sequence[Any], node: Any) -> list[Any]:
    try:
        return fn(args)
    except errors.OpError as e:
        if (e.details or {}).get("runaway_calls"):
            raise  # (said once, not once per nested call)
        raise type(e)(e.node_def, e.op, f"{e.message}\n\t [[in function {fn.name!r} called by "
                      f"node {node.name!r} ({node.type})]]", e.details) from e


def truthy(value: Any) -> bool:
    """TF's ToBool for a condition tensor: scalars by value, other tensors by non-emptiness."""
    ndim = getattr(value, "ndim", None)
    if ndim is None:
        return bool(value)
    if ndim:
        return value.size > 0
    return bool(value.item())


def _loop_limit(node: Any, cap: int) -> errors.ResourceExhaustedError:
    return errors.ResourceExhaustedError(
        None, node, f"While loop {node.name!r} ({node.type}) ran more than {cap} iterations "
        "without its condition turning false; raise SessionConfig.max_loop_iterations if that "
        "is intended.", {"node": node.name, "max_iterations": cap})


@op("While", "StatelessWhile")
def _while(ctx: BuildContext):
    node, count = ctx.op, ctx.num_inputs
    cond = _compile(ctx, ctx.attr("cond"), "cond", count)
    body = _compile(ctx, ctx.attr("body"), "body", count)
    _check_results(ctx, body, "body", count)
    if cond.num_results < 1:
        _check_results(ctx, cond, "cond", 1)
    cap = ctx.functions.settings(ctx)[1]

    def kernel(*args: Any) -> list[Any]:
        values = list(args)
        iterations = 0
        while truthy(_call(cond, values, node)[0]):
            if iterations == cap:
                raise _loop_limit(node, cap)
            values = _call(body, values, node)
            iterations += 1
        return values

    return kernel


@op("If", "StatelessIf", host_inputs=(0,))
def _if(ctx: BuildContext):
    node, count, outputs = ctx.op, ctx.num_inputs - 1, ctx.num_outputs
    then_fn = _compile(ctx, ctx.attr("then_branch"), "then_branch", count)
    else_fn = _compile(ctx, ctx.attr("else_branch"), "else_branch", count)
    _check_results(ctx, then_fn, "then_branch", outputs)
    _check_results(ctx, else_fn, "else_branch", outputs)

    def kernel(pred: Any, *args: Any) -> list[Any]:
        return _call(then_fn if truthy(pred) else else_fn, args, node)

    return kernel


@op("Case", "StatelessCase", host_inputs=(0,))
def _case(ctx: BuildContext):
    node, count, outputs = ctx.op, ctx.num_inputs - 1, ctx.num_outputs
    branches = [_compile(ctx, f, f"branches[{i}]", count)
                for i, f in enumerate(ctx.attr("branches"))]
    if not branches:
        raise errors.InvalidArgumentError(None, node, f"Case node {node.name!r} has no branches.")
    for i, branch in enumerate(branches):
        _check_results(ctx, branch, f"branches[{i}]", outputs)

    def kernel(index: Any, *args: Any) -> list[Any]:
        i = int(index)
        return _call(branches[i] if 0 <= i < len(branches) else branches[-1], args, node)

    return kernel


@op("PartitionedCall", "StatefulPartitionedCall")
def _partitioned_call(ctx: BuildContext):
    node = ctx.op
    fn = _compile(ctx, ctx.attr("f"), "f", ctx.num_inputs)
    _check_results(ctx, fn, "f", ctx.num_outputs)
    return lambda *args: _call(fn, args, node)
