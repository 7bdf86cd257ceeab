"""Control flow v2 and function calls on small hand-built FunctionDefLibraries.

Each test writes a GraphDef whose library holds FunctionDefs as TF writes them
(``node:out_arg:k`` inputs, ``^ctrl`` inputs, a ``ret`` map), imports it, and runs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import _proto as pb
from gpugraph import errors
from gpugraph.framework.attrs import to_attr_value
from gpugraph.io.tensor import make_tensor_proto

f32, i32, b = gg.dtypes.float32, gg.dtypes.int32, gg.dtypes.bool
resource = gg.dtypes.resource


# --- building GraphDefs with libraries --------------------------------------------------------
def _attr(value: Any) -> Any:
    if isinstance(value, pb.AttrValue):
        return value
    if isinstance(value, list):
        return pb.AttrValue(list=_list_value(value))
    wrap = {pb.NameAttrList: "func", pb.TensorShapeProto: "shape"}.get(type(value))
    if wrap is not None:
        return pb.AttrValue(**{wrap: value})
    if isinstance(value, (np.ndarray, np.generic)):
        return pb.AttrValue(tensor=make_tensor_proto(value))
    return to_attr_value(value)


def _list_value(values: list) -> Any:
    if values and isinstance(values[0], gg.DType):
        return pb.AttrValue.ListValue(type=[t.as_datatype_enum for t in values])
    if values and isinstance(values[0], pb.NameAttrList):
        return pb.AttrValue.ListValue(func=values)
    return pb.AttrValue.ListValue(i=values)


def nd(name: str, op: str, *inputs: str, **attrs: Any) -> Any:
    """A NodeDef."""
    node = pb.NodeDef(name=name, op=op, input=list(inputs))
    for key, value in attrs.items():
        node.attr[key].CopyFrom(_attr(value))
    return node


def const(name: str, value: Any) -> Any:
    value = np.asarray(value)
    return nd(name, "Const", value=value, dtype=gg.as_dtype(value.dtype))


def fn(name: str, args: list[tuple[str, Any]], rets: list[tuple[str, Any]], ret: dict[str, str],
       *nodes: Any, control_ret: dict[str, str] | None = None) -> Any:
    """A FunctionDef: signature (name, dtype) pairs, the ret map and the body's NodeDefs."""
    fdef = pb.FunctionDef()
    fdef.signature.name = name
    for arg_name, dtype in args:
        fdef.signature.input_arg.add(name=arg_name, type=dtype.as_datatype_enum)
    for ret_name, dtype in rets:
        fdef.signature.output_arg.add(name=ret_name, type=dtype.as_datatype_enum)
    fdef.node_def.extend(nodes)
    fdef.ret.update(ret)
    for key, node in (control_ret or {}).items():
        fdef.signature.control_output.append(key)
        fdef.control_ret[key] = node
    return fdef


def func(name: str, **attrs: Any) -> Any:
    out = pb.NameAttrList(name=name)
    for key, value in attrs.items():
        out.attr[key].CopyFrom(_attr(value))
    return out


def load(nodes: list[Any], functions: list[Any]) -> gg.Graph:
    """Imports the nodes and the library into a new graph (entered as the default graph)."""
    graph_def = pb.GraphDef(node=nodes)
    graph_def.library.function.extend(functions)
    graph_def.versions.producer = 2474
    graph = gg.Graph()
    with graph.as_default():
        gg.import_graph_def(graph_def, name="")
    return graph


def run(graph: gg.Graph, fetches: Any, feeds: dict | None = None, **config: Any) -> Any:
    with graph.as_default(), gg.Session(config=config or None) as sess:
        return sess.run(fetches, feeds)


# --- While --------------------------------------------------------------------------------------
LESS_THAN = fn("less_than", [("i", i32), ("acc", f32), ("n", i32)], [("ok", b)],
               {"ok": "less:z:0"}, nd("less", "Less", "i", "n", T=i32))
DOUBLE = fn("double", [("i", i32), ("acc", f32), ("n", i32)],
            [("i_next", i32), ("acc_next", f32), ("n_out", i32)],
            {"i_next": "add:z:0", "acc_next": "mul:z:0", "n_out": "n"},
            const("one", np.int32(1)), const("two", np.float32(2)),
            nd("add", "AddV2", "i", "one:output:0", T=i32),
            nd("mul", "Mul", "acc", "two:output:0", T=f32))


def _while_graph(op: str = "StatelessWhile", cond: str = "less_than") -> gg.Graph:
    nodes = [nd("n", "Placeholder", dtype=i32), const("i0", np.int32(0)),
             const("acc0", np.float32(1)),
             nd("loop", op, "i0", "acc0", "n", T=[i32, f32, i32], cond=func(cond),
                body=func("double"), output_shapes=[], parallel_iterations=10)]
    return load(nodes, [LESS_THAN, DOUBLE, ALWAYS])


ALWAYS = fn("always", [("i", i32), ("acc", f32), ("n", i32)], [("yes", i32)],
            {"yes": "one:output:0"}, const("one", np.int32(7)))


@pytest.mark.parametrize("op", ["While", "StatelessWhile"])
def test_while_runs_body_until_cond_is_false(op: str) -> None:
    graph = _while_graph(op)
    i, acc, n = run(graph, ["loop:0", "loop:1", "loop:2"], {"n:0": 5})
    assert (i, acc, n) == (5, 32.0, 5)
    assert run(graph, "loop:1", {"n:0": 0}) == 1.0  # cond false at once: inputs pass through


def test_while_iteration_cap_names_the_node() -> None:
    graph = _while_graph()
    assert run(graph, "loop:0", {"n:0": 3}, max_loop_iterations=3) == 3  # exactly the cap: fine
    with pytest.raises(errors.ResourceExhaustedError,
                       match=r"While loop 'loop' \(StatelessWhile\) ran more than 3 iter"):
        run(graph, "loop:0", {"n:0": 4}, max_loop_iterations=3)


def test_while_cond_non_boolean_scalar_is_true_while_non_zero() -> None:
    graph = _while_graph(cond="always")  # returns 7: a loop that never ends
    with pytest.raises(errors.ResourceExhaustedError, match="more than 50"):
        run(graph, "loop:0", {"n:0": 1}, max_loop_iterations=50)


def test_while_on_a_virtual_gpu() -> None:
    graph = _while_graph()
    with graph.as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        assert sess.run("loop:1", {"n:0": 4}) == 16.0
        assigned = sess.placement_report().assignments["loop"].device
    assert assigned.endswith("GPU:0")


# --- If / Case ----------------------------------------------------------------------------------
def _branch(name: str, op: str) -> Any:
    return fn(name, [("x", f32), ("y", f32)], [("z", f32)], {"z": "r:z:0"},
              nd("r", op, "x", "y", T=f32))


BRANCHES = [_branch("add_xy", "AddV2"), _branch("sub_xy", "Sub"), _branch("mul_xy", "Mul")]


@pytest.mark.parametrize("op", ["If", "StatelessIf"])
def test_if_takes_the_branch_the_predicate_picks(op: str) -> None:
    nodes = [nd("p", "Placeholder", dtype=b), const("x", np.float32(5)), const("y", np.float32(3)),
             nd("c", op, "p", "x", "y", Tcond=b, Tin=[f32, f32], Tout=[f32],
                then_branch=func("add_xy"), else_branch=func("sub_xy"), output_shapes=[])]
    graph = load(nodes, BRANCHES)
    assert run(graph, "c:0", {"p:0": True}) == 8.0
    assert run(graph, "c:0", {"p:0": False}) == 2.0


def test_if_non_boolean_predicates_follow_tf_to_bool() -> None:
    nodes = [nd("p", "Placeholder", dtype=f32), const("x", np.float32(5)),
             const("y", np.float32(3)),
             nd("c", "StatelessIf", "p", "x", "y", Tcond=f32, Tin=[f32, f32], Tout=[f32],
                then_branch=func("add_xy"), else_branch=func("sub_xy"), output_shapes=[])]
    graph = load(nodes, BRANCHES)
    assert run(graph, "c:0", {"p:0": np.float32(0.5)}) == 8.0  # non-zero scalar
    assert run(graph, "c:0", {"p:0": np.float32(0)}) == 2.0
    assert run(graph, "c:0", {"p:0": np.zeros([2], np.float32)}) == 8.0  # non-empty tensor
    assert run(graph, "c:0", {"p:0": np.zeros([0], np.float32)}) == 2.0


@pytest.mark.parametrize("op", ["Case", "StatelessCase"])
def test_case_runs_branch_index_and_the_last_branch_when_out_of_range(op: str) -> None:
    nodes = [nd("k", "Placeholder", dtype=i32), const("x", np.float32(5)),
             const("y", np.float32(3)),
             nd("c", op, "k", "x", "y", Tin=[f32, f32], Tout=[f32],
                branches=[func(f.signature.name) for f in BRANCHES], output_shapes=[])]
    graph = load(nodes, BRANCHES)
    assert [run(graph, "c:0", {"k:0": k}) for k in (0, 1, 2, 3, -1)] == [8, 2, 15, 15, 15]


# --- calls --------------------------------------------------------------------------------------
def test_partitioned_call_reads_list_outputs_by_arg_name_and_index() -> None:
    # BroadcastGradientArgs has two output args (r0, r1) and Split one list output:
    # "node:arg:k" must map to flat indices through each op's OpDef.
    body = fn("parts", [("x", f32), ("s0", i32), ("s1", i32)], [("second", f32), ("r1", i32)],
              {"second": "split:output:1", "r1": "bga:r1:0"},
              const("axis", np.int32(0)),
              nd("split", "Split", "axis:output:0", "x", T=f32, num_split=2),
              nd("bga", "BroadcastGradientArgs", "s0", "s1", T=i32))
    nodes = [const("x", np.array([3, 1, 3, 2], np.float32)),
             const("s0", np.array([2, 1], np.int32)), const("s1", np.array([1, 3], np.int32)),
             nd("call", "PartitionedCall", "x", "s0", "s1", Tin=[f32, i32, i32],
                Tout=[f32, i32], f=func("parts"))]
    second, r1 = run(load(nodes, [body]), ["call:0", "call:1"])
    np.testing.assert_array_equal(second, [3, 2])
    np.testing.assert_array_equal(r1, [0])


def test_nested_calls_and_direct_function_ops() -> None:
    inner = fn("plus_one", [("x", f32)], [("y", f32)], {"y": "add:z:0"},
               const("one", np.float32(1)), nd("add", "AddV2", "x", "one:output:0", T=f32))
    outer = fn("plus_three", [("x", f32)], [("y", f32)], {"y": "c:y:0"},
               nd("a", "PartitionedCall", "x", Tin=[f32], Tout=[f32], f=func("plus_one")),
               nd("b", "StatefulPartitionedCall", "a:output:0", Tin=[f32], Tout=[f32],
                  f=func("plus_one")),
               nd("c", "plus_one", "b:output:0"))  # a library function used as an op type
    nodes = [const("x", np.float32(1)),
             nd("call", "StatefulPartitionedCall", "x", Tin=[f32], Tout=[f32],
                f=func("plus_three"))]
    assert run(load(nodes, [inner, outer]), "call:0") == 4.0


def test_recursive_function() -> None:
    # count(n) = 0 if n <= 0 else count(n - 1) + 1, through StatelessIf.
    count = fn("count", [("n", i32)], [("r", i32)], {"r": "if:output:0"},
               const("zero", np.int32(0)), nd("pos", "Greater", "n", "zero:output:0", T=i32),
               nd("if", "StatelessIf", "pos:z:0", "n", Tcond=b, Tin=[i32], Tout=[i32],
                  then_branch=func("count_down"), else_branch=func("zero_of"),
                  output_shapes=[]))
    down = fn("count_down", [("n", i32)], [("r", i32)], {"r": "add:z:0"},
              const("one", np.int32(1)), nd("sub", "Sub", "n", "one:output:0", T=i32),
              nd("rec", "PartitionedCall", "sub:z:0", Tin=[i32], Tout=[i32], f=func("count")),
              nd("add", "AddV2", "rec:output:0", "one:output:0", T=i32))
    zero = fn("zero_of", [("n", i32)], [("r", i32)], {"r": "z:y:0"},
              nd("z", "ZerosLike", "n", T=i32))
    nodes = [nd("n", "Placeholder", dtype=i32),
             nd("call", "PartitionedCall", "n", Tin=[i32], Tout=[i32], f=func("count"))]
    graph = load(nodes, [count, down, zero])
    assert run(graph, "call:0", {"n:0": 6}) == 6


def _polymorphic(name: str, *nodes: Any, ret: str) -> Any:
    body = fn(name, [], [], {"y": ret}, *nodes)
    body.signature.attr.add(name="T", type="type")
    body.signature.input_arg.add(name="x", type_attr="T")
    body.signature.output_arg.add(name="y", type_attr="T")
    return body


def test_attr_placeholders_resolve_from_the_call_site() -> None:
    t = pb.AttrValue(placeholder="T")
    twice = _polymorphic("twice", nd("add", "AddV2", "x", "x", T=t), ret="add:z:0")
    # Placeholders inside a nested call's func attr, and a direct call of a polymorphic
    # function, resolve from the outer call's attrs too.
    four = _polymorphic("four", nd("a", "PartitionedCall", "x", Tin=[f32], Tout=[f32],
                                   f=func("twice", T=t)),
                        nd("b", "twice", "a:output:0", T=t), ret="b:y:0")
    nodes = [const("xf", np.float32(1.5)), const("xi", np.int32(4)),
             nd("cf", "PartitionedCall", "xf", Tin=[f32], Tout=[f32], f=func("twice", T=f32)),
             nd("ci", "PartitionedCall", "xi", Tin=[i32], Tout=[i32], f=func("twice", T=i32)),
             nd("c4", "PartitionedCall", "xf", Tin=[f32], Tout=[f32], f=func("four", T=f32))]
    yf, yi, y4 = run(load(nodes, [twice, four]), ["cf:0", "ci:0", "c4:0"])
    assert yf == 3.0 and yf.dtype == np.float32
    assert yi == 8 and yi.dtype == np.int32
    assert y4 == 6.0


def _variable_nodes() -> list[Any]:
    return [nd("v", "VarHandleOp", dtype=f32, shape=pb.TensorShapeProto(), shared_name="v"),
            const("v0", np.float32(10)),
            nd("init", "AssignVariableOp", "v", "v0", dtype=f32),
            nd("read", "ReadVariableOp", "v", dtype=f32),
            const("delta", np.float32(2))]


def test_stateful_call_updates_session_variables_through_resource_args() -> None:
    # The AssignAdd is neither returned nor a control output: TF runs every stateful op of a
    # function body anyway (its PruneFunctionBody keeps them).
    body = fn("bump", [("v", resource), ("d", f32)], [("before", f32)],
              {"before": "r:value:0"},
              nd("r", "ReadVariableOp", "v", dtype=f32),
              nd("add", "AssignAddVariableOp", "v", "d", "^r", dtype=f32))
    nodes = [*_variable_nodes(),
             nd("call", "StatefulPartitionedCall", "v", "delta", Tin=[resource, f32], Tout=[f32],
                f=func("bump"))]
    graph = load(nodes, [body])
    with graph.as_default(), gg.Session() as sess:
        sess.run("init")
        assert sess.run("call:0") == 10.0
        assert sess.run("call:0") == 12.0
        assert sess.run("read:0") == 14.0


def test_while_carries_a_resource_handle() -> None:
    # while_v2 passes captured resource handles through the loop as loop variables.
    cond = fn("c", [("i", i32), ("v", resource)], [("ok", b)], {"ok": "less:z:0"},
              const("three", np.int32(3)), nd("less", "Less", "i", "three:output:0", T=i32))
    body = fn("bd", [("i", i32), ("v", resource)], [("i2", i32), ("v2", resource)],
              {"i2": "add:z:0", "v2": "v"},
              const("one", np.int32(1)), const("d", np.float32(1)),
              nd("add", "AddV2", "i", "one:output:0", T=i32),
              nd("bump", "AssignAddVariableOp", "v", "d:output:0", dtype=f32),
              control_ret={"bump": "bump"})
    nodes = [*_variable_nodes(), const("i0", np.int32(0)),
             nd("loop", "While", "i0", "v", T=[i32, resource], cond=func("c"), body=func("bd"),
                output_shapes=[], parallel_iterations=1),
             nd("after", "ReadVariableOp", "loop:1", dtype=f32)]
    graph = load(nodes, [cond, body])
    with graph.as_default(), gg.Session() as sess:
        sess.run("init")
        assert sess.run("after:0") == 13.0


# --- errors -------------------------------------------------------------------------------------
def test_missing_function_is_named_with_its_caller() -> None:
    nodes = [const("x", np.float32(1)),
             nd("call", "PartitionedCall", "x", Tin=[f32], Tout=[f32], f=func("nowhere"))]
    graph = load(nodes, [BRANCHES[0]])
    with pytest.raises(errors.NotFoundError, match=r"'nowhere' \(called by node 'call'.*add_xy"):
        run(graph, "call:0")


def test_missing_kernels_in_a_body_name_the_function() -> None:
    body = fn("odd", [("x", f32)], [("y", f32)], {"y": "s:y:0"},
              nd("t", "Digamma", "x", T=f32), nd("s", "Lgamma", "t:y:0", T=f32),
              nd("unused", "Erfinv", "x", T=f32))  # pruned, as in TF: not reported
    nodes = [const("x", np.float32(1)),
             nd("call", "PartitionedCall", "x", Tin=[f32], Tout=[f32], f=func("odd"))]
    with pytest.raises(errors.UnimplementedError,
                       match=r"(?s)Digamma.*Lgamma.*in function 'odd' called by node 'call'"):
        run(load(nodes, [body]), "call:0")


def test_argument_count_mismatch_is_reported() -> None:
    nodes = [const("x", np.float32(1)),
             nd("call", "PartitionedCall", "x", "x", Tin=[f32, f32], Tout=[f32],
                f=func("add_xy")),
             nd("bad", "PartitionedCall", "x", Tin=[f32], Tout=[f32], f=func("add_xy"))]
    graph = load(nodes, BRANCHES)
    assert run(graph, "call:0") == 2.0
    with pytest.raises(errors.InvalidArgumentError, match="passes 1 inputs.*takes 2"):
        run(graph, "bad:0")


def test_kernel_failure_in_a_body_names_node_and_function() -> None:
    body = fn("reshape", [("x", f32)], [("y", f32)], {"y": "r:output:0"},
              const("shape", np.array([3], np.int32)),
              nd("r", "Reshape", "x", "shape:output:0", T=f32, Tshape=i32))
    nodes = [nd("x", "Placeholder", dtype=f32),
             nd("call", "PartitionedCall", "x", Tin=[f32], Tout=[f32], f=func("reshape"))]
    graph = load(nodes, [body])
    np.testing.assert_array_equal(run(graph, "call:0", {"x:0": np.ones([3], np.float32)}),
                                  [1, 1, 1])
    with pytest.raises(errors.InvalidArgumentError,
                       match=r"(?s)\[\[node r \(Reshape\).*in function 'reshape' called by "
                             r"node 'call'"):
        run(graph, "call:0", {"x:0": np.ones([4], np.float32)})


def test_arg_and_retval_outside_a_function_are_refused() -> None:
    graph = load([nd("a", "_Arg", T=f32, index=0)], [])
    with pytest.raises(errors.InvalidArgumentError, match="only runs inside a function body"):
        run(graph, "a:0")
