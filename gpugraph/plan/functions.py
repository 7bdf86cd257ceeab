"""Functions of a graph's FunctionDefLibrary, made runnable: what control flow v2 calls.

A ``FunctionDef`` becomes a private :class:`~gpugraph.Graph` (:func:`instantiate`): one
``_Arg`` op per flat input argument, the body's nodes (``node:out_arg:k`` inputs translated to
flat output indices through each op's OpDef, ``^name`` control inputs kept), and one
``_Retval`` op per flat output.  That graph is compiled by :func:`gpugraph.plan.build_plan`,
once per (function, call attrs, device) and session state (:func:`compile_function`), with
every node placed on the calling op's device (host-only kernels on the host).  A call hands the
arguments to the plan through a :class:`Frame`: ``_Arg`` kernels read it, ``_Retval`` kernels
write it, and calls save and restore it, so recursion and nested calls of the same function
are safe.

What runs in a call follows TF's function runtime (PruneFunctionBody): everything the return
values and the control outputs need, plus every stateful op of the body (an ``AssignVariableOp``
nobody reads still runs).  Resource arguments are the session's
:class:`~gpugraph.state.VarSlot` objects, so variable ops inside a body update the
session's variables.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from gpugraph import _proto as pb
from gpugraph import dtypes, errors
from gpugraph.devices.base import Device
from gpugraph.framework.graph import Graph
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.ops import registry
from gpugraph.plan import frames
from gpugraph.plan import steps as _plan
from gpugraph.plan.steps import Plan
from gpugraph.state import SessionState


class Frame(threading.local):
    """The argument and result values of the call in progress of one function body.

    Thread-local, so sessions running the same function on several threads don't mix calls.
    """

    def __init__(self) -> None:
        self.args: Sequence[Any] = ()
        self.results: list[Any] = []


_FRAMES: weakref.WeakKeyDictionary[Graph, Frame] = weakref.WeakKeyDictionary()


def frame_of(graph: Graph) -> Frame | None:
    """The frame of a function body graph made by :func:`instantiate`, else None."""
    return _FRAMES.get(graph)


# --- instantiation ----------------------------------------------------------------------------
class Body:
    """A FunctionDef instantiated as a private graph.

    Attributes:
        name: the function's name.
        graph: the private graph (its ``_library`` is the caller's library).
        args: the ``_Arg`` ops, one per flat input.
        retvals: the ``_Retval`` ops, one per flat output.
        targets: what a call runs: the retvals, control outputs and stateful ops.
        frame: where a call's arguments and results live.
    """

    def __init__(self, name: str, graph: Graph, args: list[Operation],
                 retvals: list[Operation], targets: list[Operation]):
        self.name = name
        self.graph = graph
        self.args = args
        self.retvals = retvals
        self.targets = targets
        self.frame = Frame()
        _FRAMES[graph] = self.frame

    @property
    def arg_dtypes(self) -> list[dtypes.DType]:
        return [a.outputs[0].dtype for a in self.args]

    @property
    def ret_dtypes(self) -> list[dtypes.DType]:
        return [r.inputs[0].dtype for r in self.retvals]


def find_function(library: Any, name: str, caller: Operation | None = None) -> Any:
    """The FunctionDef called ``name`` in ``library``; NotFoundError naming the caller if none."""
    for fdef in library.function:
        if fdef.signature.name == name:
            return fdef
    known = sorted(f.signature.name for f in library.function)
    where = f" (called by node {caller.name!r}, {caller.type})" if caller is not None else ""
    raise errors.NotFoundError(
        None, caller, f"Function {name!r}{where} is not in the graph's function library. "
        f"Functions available: {', '.join(known[:20]) or 'none'}"
        f"{' ...' if len(known) > 20 else ''}", {"function": name})


def instantiate(fdef: Any, outer: Graph, call_attrs: Mapping[str, Any] | None = None) -> Body:
    """Builds the private graph of ``fdef`` (see the module docstring).

    Args:
        fdef: the FunctionDef proto.
        outer: the graph whose library (and OpDefs) the body's nested calls use.
        call_attrs: attr values of the call (``NameAttrList.attr``) for ``placeholder`` attrs.
    """
    attrs = _function_attrs(fdef, call_attrs or {})
    graph = Graph()
    graph._library = outer._library
    graph._op_defs = outer._op_defs
    builder = _BodyBuilder(fdef, graph, attrs)
    args = builder.add_args()
    builder.add_nodes()
    retvals = builder.add_retvals()
    targets = list(retvals) + builder.control_outputs() + [
        op for op in graph.get_operations()
        if op._info is not None and op._info.is_stateful and op.type not in ("_Arg", "_Retval")]
    return Body(fdef.signature.name, graph, args, retvals, list(dict.fromkeys(targets)))


def _function_attrs(fdef: Any, call_attrs: Mapping[str, Any]) -> dict[str, Any]:
    attrs = {a.name: a.default_value for a in fdef.signature.attr if a.HasField("default_value")}
    attrs.update(fdef.attr)
    attrs.update(call_attrs)
    return attrs


class _BodyBuilder:
    """Creates the ops of one function body, resolving FunctionDef input names."""

    def __init__(self, fdef: Any, graph: Graph, attrs: Mapping[str, Any]):
        self.fdef = fdef
        self.graph = graph
        self.attrs = attrs
        self.name = fdef.signature.name
        self.arg_tensors: dict[str, list[Tensor]] = {}
        self.nodes: dict[str, Operation] = {}
        self.functions = {f.signature.name for f in graph._library.function}
        # Direct calls (op type = a library function) name outputs by the function's output
        # args: node name -> {output arg: first flat index}.
        self.call_outputs: dict[str, dict[str, int]] = {}

    def _fail(self, message: str) -> errors.InvalidArgumentError:
        return errors.InvalidArgumentError(None, None, f"In function {self.name!r}: {message}",
                                           {"function": self.name, "runaway_calls": True})

    # --- arguments and results ----------------------------------------------------------------
    def _arg_types(self, arg: Any) -> list[int]:
        """The flat DataType enums of one signature argument."""
        if arg.type_list_attr:
            return list(self._attr(arg.type_list_attr).list.type)
        base = int(arg.type) if arg.type else int(self._attr(arg.type_attr).type)
        count = int(self._attr(arg.number_attr).i) if arg.number_attr else 1
        return [base] * count

    def _attr(self, name: str) -> Any:
        value = self.attrs.get(name)
        if value is None:
            raise self._fail(f"attr {name!r} of the signature has no value at the call site")
        return value

    def add_args(self) -> list[Operation]:
        ops = []
        for arg in self.fdef.signature.input_arg:
            tensors = []
            for t in self._arg_types(arg):
                op = self.graph.create_op(
                    "_Arg", [], name=arg.name, attrs={
                        "T": pb.AttrValue(type=t), "index": pb.AttrValue(i=len(ops))})
                ops.append(op)
                tensors.append(op.outputs[0])
            self.arg_tensors[arg.name] = tensors
        return ops

    def add_retvals(self) -> list[Operation]:
        ops = []
        for arg in self.fdef.signature.output_arg:
            if arg.name not in self.fdef.ret:
                raise self._fail(f"output {arg.name!r} has no entry in the ret map")
            sources = self._ret_tensors(self.fdef.ret[arg.name], len(self._arg_types(arg)))
            for tensor in sources:
                op = self.graph.create_op(
                    "_Retval", [tensor], name=f"{arg.name}_retval", attrs={
                        "T": pb.AttrValue(type=tensor.dtype.as_datatype_enum),
                        "index": pb.AttrValue(i=len(ops))})
                ops.append(op)
        return ops

    def _ret_tensors(self, text: str, count: int) -> list[Tensor]:
        if count == 1:
            return [self.tensor(text)]
        if text in self.arg_tensors:
            return self.arg_tensors[text]
        first = self.tensor(text)  # node:out:k names the first of a list output
        op, start = first.op, first.value_index
        return [op.outputs[start + k] for k in range(count)]

    def control_outputs(self) -> list[Operation]:
        out = []
        for name in self.fdef.signature.control_output:
            node = self.fdef.control_ret.get(name, name)
            if node not in self.nodes:
                raise self._fail(f"control output {name!r} names no node ({node!r})")
            out.append(self.nodes[node])
        return out

    # --- the body -----------------------------------------------------------------------------
    def add_nodes(self) -> None:
        for node_def in _topological(self.fdef, set(self.arg_tensors), self._fail):
            inputs, controls = [], []
            for text in node_def.input:
                if text.startswith("^"):
                    controls.append(self._control(text[1:]))
                else:
                    inputs.append(self.tensor(text))
            op_type, attrs = self._node_attrs(node_def)
            op = self.graph.create_op(op_type, inputs, name=node_def.name, attrs=attrs)
            op._add_control_inputs(controls)
            self.nodes[node_def.name] = op

    def _node_attrs(self, node_def: Any) -> tuple[str, dict[str, Any]]:
        attrs = {key: self._resolved(value) for key, value in node_def.attr.items()}
        if node_def.op in self.functions:
            return "StatefulPartitionedCall", self._direct_call(node_def, attrs)
        return node_def.op, attrs  # an op without OpDef or kernel: planning reports it

    def _direct_call(self, node_def: Any, attrs: dict[str, Any]) -> dict[str, Any]:
        # A node whose op is a library function is a call: run it as StatefulPartitionedCall.
        fdef = find_function(self.graph._library, node_def.op)
        inner = _BodyBuilder(fdef, self.graph, _function_attrs(fdef, attrs))
        tin = [t for a in fdef.signature.input_arg for t in inner._arg_types(a)]
        tout, offsets = [], {}
        for arg in fdef.signature.output_arg:
            offsets[arg.name] = len(tout)
            tout.extend(inner._arg_types(arg))
        self.call_outputs[node_def.name] = offsets
        func = pb.NameAttrList(name=node_def.op)
        for key, value in attrs.items():
            if not key.startswith("_"):
                func.attr[key].CopyFrom(value)
        return {"Tin": pb.AttrValue(list=pb.AttrValue.ListValue(type=tin)),
                "Tout": pb.AttrValue(list=pb.AttrValue.ListValue(type=tout)),
                "f": pb.AttrValue(func=func)}

    def _resolved(self, value: Any) -> Any:
        """An attr value with ``placeholder`` attrs (also inside a ``func``) resolved."""
        kind = value.WhichOneof("value")
        if kind == "placeholder":
            return self._attr(value.placeholder)
        if kind != "func" or not any(v.WhichOneof("value") == "placeholder"
                                     for v in value.func.attr.values()):
            return value
        out = pb.AttrValue()
        out.CopyFrom(value)
        for key, inner in value.func.attr.items():
            out.func.attr[key].CopyFrom(self._resolved(inner))
        return out

    def _control(self, name: str) -> Operation:
        if name in self.nodes:
            return self.nodes[name]
        if name in self.arg_tensors and self.arg_tensors[name]:
            return self.arg_tensors[name][0].op
        raise self._fail(f"control input '^{name}' names no node or argument")

    def tensor(self, text: str) -> Tensor:
        """The tensor a FunctionDef input string names (``arg``, ``arg:k``, ``node:out:k``)."""
        parts = text.split(":")
        if parts[0] in self.arg_tensors and len(parts) <= 2:
            tensors = self.arg_tensors[parts[0]]
            index = int(parts[1]) if len(parts) == 2 else 0
            if index < len(tensors):
                return tensors[index]
        if len(parts) == 3 and parts[0] in self.nodes:
            op = self.nodes[parts[0]]
            offsets = self.call_outputs.get(parts[0])
            if offsets is not None and parts[1] not in offsets:
                raise self._fail(f"node {parts[0]!r} (a call of {op.get_attr('f').name!r}) has "
                                 f"no output named {parts[1]!r}")
            start = offsets[parts[1]] if offsets is not None else _output_offset(
                op, parts[1], self._fail)
            index = start + int(parts[2])
            if index < len(op.outputs):
                return op.outputs[index]
        raise self._fail(f"input {text!r} names no argument or node output")


def _output_offset(op: Operation, arg_name: str, fail: Any) -> int:
    """Flat index of the first output of ``op``'s output arg ``arg_name`` (via its OpDef)."""
    op_def = op.op_def
    if op_def is None:
        raise fail(f"node {op.name!r} has op type {op.type!r}, which no OpDef describes")
    offset = 0
    for arg in op_def.output_arg:
        if arg.name == arg_name:
            return offset
        if arg.number_attr:
            offset += int(op.get_attr(arg.number_attr))
        elif arg.type_list_attr:
            offset += len(op.get_attr(arg.type_list_attr))
        else:
            offset += 1
    raise fail(f"node {op.name!r} ({op.type}) has no output named {arg_name!r}")


def _topological(fdef: Any, args: set[str], fail: Any) -> list[Any]:
    """The body's NodeDefs, each after the nodes it reads (FunctionDefs need not be ordered)."""
    defs = {n.name: n for n in fdef.node_def}
    order: list[Any] = []
    state: dict[str, int] = {}  # 1 = in progress, 2 = done
    for root, root_def in defs.items():
        if state.get(root):
            continue
        stack = [(root, iter(_sources(root_def, args)))]
        state[root] = 1
        while stack:
            name, deps = stack[-1]
            for dep in deps:
                if dep not in defs or state.get(dep) == 2:
                    continue
                if state.get(dep) == 1:
                    raise fail(f"the body has a cycle through node {dep!r}")
                state[dep] = 1
                stack.append((dep, iter(_sources(defs[dep], args))))
                break
            else:
                stack.pop()
                state[name] = 2
                order.append(defs[name])
    return order


def _sources(node_def: Any, args: set[str]) -> list[str]:
    """Names of the nodes ``node_def`` reads (arguments are not nodes)."""
    names = []
    for text in node_def.input:
        parts = text.lstrip("^").split(":")
        if len(parts) == 3 or text.startswith("^") or parts[0] not in args:
            names.append(parts[0])
    return names


# --- compiling and calling --------------------------------------------------------------------
class CompiledFunction:
    """A function body compiled for one device; ``fn(args) -> list of results``."""

    def __init__(self, body: Body, device: Device):
        self.body = body
        self.device = device
        self.plan: Plan | None = None  # set once compiled (recursive calls see this object)

    @property
    def name(self) -> str:
        return self.body.name

    @property
    def num_args(self) -> int:
        return len(self.body.args)

    @property
    def num_results(self) -> int:
        return len(self.body.retvals)

    def __call__(self, args: Sequence[Any]) -> list[Any]:
        frame = self.body.frame
        saved = frame.args, frame.results
        frame.args = args
        frame.results = results = [None] * len(self.body.retvals)
        _calls.depth = depth = getattr(_calls, "depth", 0) + 1
        try:
            if depth > MAX_CALL_DEPTH:
                raise CallDepthError(None, None, f"Function {self.name!r} was called {depth} "
                                     "calls deep: the function library calls itself without "
                                     f"end (gpugraph stops at {MAX_CALL_DEPTH})",
                                     {"function": self.name, "runaway_calls": True})
            # The calling plan's run already set up the floating-point environment, so the
            # body's generated function is called directly (Plan.run would do that again, a
            # quarter of a small loop's time); failures get Plan.run's node context.
            self.plan._fn(())
        except CallDepthError:
            raise  # (once, not with one line of context per level)
        except RecursionError:  # Python's stack ran out first: the same finding
            raise CallDepthError(None, None, f"Function {self.name!r}: calls nest deeper than "
                                 "Python's stack allows (a function library that calls "
                                 "itself without end?)", {"function": self.name, "runaway_calls": True}) from None
        except Exception as e:  # noqa: BLE001  (re-raised with the failing node's context)
            wrapped = _located(self.plan, e)
            if wrapped is None:
                raise
            raise wrapped from e
        finally:
            frame.args, frame.results = saved
            _calls.depth = depth - 1
        return results


MAX_CALL_DEPTH = 64  # nested function calls; TF1 graphs nest a few (a cond in a while in a call)
_calls = threading.local()


class CallDepthError(errors.ResourceExhaustedError):
    """Function calls nested past :data:`MAX_CALL_DEPTH` (a library that calls itself)."""


def _located(plan: Plan, e: Exception) -> Exception | None:
    """``e`` with the context of the body node that raised it, as Plan.run reports it."""
    located = plan._locate(e)
    if located is None:
        return None
    step, args = located
    if isinstance(e, errors.OpError):
        return _plan._with_node_context(e, step, args)
    return _plan._kernel_failure(e, step, args)


_COMPILED: weakref.WeakKeyDictionary[SessionState, dict[tuple, CompiledFunction]] = (
    weakref.WeakKeyDictionary())


def compile_function(func: Any, ctx: Any, build_plan: Any) -> CompiledFunction:
    """The function ``func`` (a NameAttrList) called by ``ctx.op``, compiled for its device.

    Compiled once per session state, function, call attrs and device.

    Raises:
        NotFoundError: the library has no such function.
        UnimplementedError: ops of the body have no kernels (all listed, the function named).
    """
    caller, device, state = ctx.op, ctx.device, ctx.state
    host, cap = plan_settings(ctx)
    library = caller.graph._library
    key = (id(library), func.name, _attrs_key(func.attr), device.name, cap)
    cache = _COMPILED.setdefault(state, {})
    compiled = cache.get(key)
    if compiled is not None:
        return compiled
    fdef = find_function(library, func.name, caller)
    body = instantiate(fdef, caller.graph, func.attr)
    compiled = cache[key] = CompiledFunction(body, device)
    try:
        compiled.plan = build_plan([], body.targets, [], state, _placement(body, device, host),
                                   host, cap, captured=False)
    except errors.OpError as e:
        del cache[key]
        raise type(e)(e.node_def, e.op, f"{e.message}\n\t [[in function {func.name!r} called "
                      f"by node {caller.name!r} ({caller.type})]]", e.details) from e
    except BaseException:
        del cache[key]
        raise
    return compiled


def _attrs_key(attrs: Any) -> tuple:
    return tuple(sorted((k, v.SerializeToString(deterministic=True)) for k, v in attrs.items()))


def _placement(body: Body, device: Device, host: Device) -> dict[Operation, Device]:
    """Every body node on the calling op's device; host-only kernels and strings on the host."""
    placement = {}
    for op in body.graph.get_operations():
        spec = registry.lookup(op.type)
        on_host = (spec is not None and spec.host_only) or any(
            t.dtype.base_dtype == dtypes.string for t in (*op.inputs, *op.outputs))
        placement[op] = host if on_host else device
    return placement


def plan_settings(ctx: Any) -> tuple[Device, int]:
    """The host device and while-loop cap of the plan being built around ``ctx``."""
    host = ctx.host if ctx.host is not None else (
        ctx.device if ctx.device.is_host else Device(0))
    cap = ctx.max_iterations if ctx.max_iterations is not None else frames.DEFAULT_MAX_ITERATIONS
    return host, int(cap)


class FunctionCompiler:
    """What the function-calling kernels (``ops/functional_ops.py``) ask the plan for, handed to
    every builder as ``BuildContext.functions``: ``ops/`` never imports the planner."""

    def __init__(self, build_plan: Any):
        self._build_plan = build_plan

    def compile(self, func: Any, ctx: Any) -> CompiledFunction:
        """``func`` (a NameAttrList) compiled for the device of ``ctx.op``."""
        return compile_function(func, ctx, self._build_plan)

    @staticmethod
    def frame_of(graph: Graph) -> Frame | None:
        """The argument/result frame of a function body's graph (None outside one)."""
        return frame_of(graph)

    @staticmethod
    def settings(ctx: Any) -> tuple[Device, int]:
        """The host device and while-loop cap of the plan being built around ``ctx``."""
        return plan_settings(ctx)
