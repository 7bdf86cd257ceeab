"""Ops nobody reads are not run, as TF's Grappler DependencyOptimizer arranges.

TF 2.21 (checked with scripts-free real TF): a MatMul of incompatible fed matrices whose only
consumer is a control edge does not fail (`sess.run` returns the dependent value); fetched,
it raises; with ``rewrite_options.dependency_optimization = OFF`` it raises too.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import node, out

import gpugraph as gg
from gpugraph import errors

F32 = gg.dtypes.float32


@pytest.fixture
def graph():
    with gg.Graph().as_default() as g:
        yield g


def _step_kinds(sess) -> dict[str, str]:
    (plan,) = sess._plans.values()
    return {step.op.name: step.kind for step in plan.steps if not step.label}


def test_a_pure_op_read_only_through_control_edges_does_not_run(graph) -> None:
    a = gg.placeholder(F32, None, name="a")
    b = gg.placeholder(F32, None, name="b")
    m = out("MatMul", a, b, name="m", T=F32, transpose_a=False, transpose_b=False)
    n = out("Identity", m, name="n", T=F32)
    with gg.control_dependencies([n]):
        result = out("Identity", gg.constant(np.float32(3)), name="out", T=F32)
    bad = {a: np.ones((2, 3), np.float32), b: np.ones((4, 5), np.float32)}
    with gg.Session() as sess:
        assert sess.run(result, bad) == 3  # as TF: no error from the MatMul nobody reads
        assert _step_kinds(sess)["m"] == "noop" and _step_kinds(sess)["n"] == "noop"
        with pytest.raises(errors.InvalidArgumentError, match="node m "):
            sess.run(n, bad)  # fetched: it runs, and fails


def test_side_effects_checks_and_placeholders_still_run(graph) -> None:
    x = gg.placeholder(F32, [2], name="x")
    check = out("CheckNumerics", x, name="check", T=F32, message=b"bad x")
    var = out("VariableV2", name="v", shape=gg.TensorShape([]), dtype=F32)
    init = node("Assign", var, gg.constant(np.float32(0)), T=F32)
    bump = out("AssignAdd", var, gg.constant(np.float32(1)), name="bump", T=F32)
    unfed = gg.placeholder(F32, [], name="unfed")
    with gg.control_dependencies([check, bump]):
        result = out("Identity", gg.constant(np.float32(7)), name="out", T=F32)
    with gg.Session() as sess:
        sess.run(init)
        assert sess.run(result, {x: np.ones(2, np.float32)}) == 7
        assert sess.run(var) == 1  # AssignAdd takes a ref: it ran
        with pytest.raises(errors.InvalidArgumentError, match="bad x"):
            sess.run(result, {x: np.array([1, np.nan], np.float32)})
        with gg.control_dependencies([unfed.op]):
            needs_unfed = out("Identity", gg.constant(np.float32(1)), name="o2", T=F32)
        with pytest.raises(errors.InvalidArgumentError, match="unfed"):
            sess.run(needs_unfed)


def test_a_dropped_chain_in_a_dead_branch_stays_dead(graph) -> None:
    pred = gg.placeholder(gg.dtypes.bool, [], name="pred")
    x = gg.constant(np.float32(5), name="x")
    sw = node("Switch", x, pred, name="sw", T=F32)
    unused = out("Neg", out("Square", sw.outputs[1], name="sq", T=F32), name="neg", T=F32)
    with gg.control_dependencies([unused]):
        taken = out("Identity", gg.constant(np.float32(1), name="one"), name="taken", T=F32)
    not_taken = out("Identity", sw.outputs[0], name="f", T=F32)
    merge = node("Merge", not_taken, taken, name="m", T=F32, N=2)
    with gg.Session() as sess:
        assert sess.run(merge.outputs, {pred: True}) == [1, 1]
        assert sess.run(merge.outputs, {pred: False}) == [5, 0]
        kinds = _step_kinds(sess)
        assert kinds["sq"] == "noop" and kinds["neg"] == "noop"


# (values, CheckNumerics message, CheckNumericsV2 message), as TF 2.21's CPU kernels word them.
_TF_CHECK_NUMERICS = [
    ([1, np.nan], "NaN", "NaN"),
    ([1, np.inf], "Inf", "+Inf"),
    ([np.nan, np.inf], "Inf and NaN", "+Inf and NaN"),
    ([-np.inf, np.inf, np.nan], "Inf and NaN", "-Inf, +Inf, and NaN"),
    ([-np.inf, 1], "Inf", "-Inf"),
    ([-np.inf, np.nan], "Inf and NaN", "-Inf and NaN"),
]


@pytest.mark.parametrize(("values", "v1_text", "v2_text"), _TF_CHECK_NUMERICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_check_numerics_fails_as_tf(graph, values, v1_text, v2_text, dtype) -> None:
    x = gg.placeholder(gg.dtypes.as_dtype(dtype), None, name="x")
    checks = [out(t, x, T=gg.dtypes.as_dtype(dtype), message=b"msg")
              for t in ("CheckNumerics", "CheckNumericsV2")]
    with gg.Session() as sess:
        np.testing.assert_array_equal(sess.run(checks[0], {x: np.ones(3, dtype)}), 1)
        for check, text in zip(checks, (v1_text, v2_text), strict=True):
            with pytest.raises(errors.InvalidArgumentError) as e:
                sess.run(check, {x: np.array(values, dtype)})
            assert f"msg : Tensor had {text} values" in str(e.value)


def test_assert_fails_with_tfs_summary_and_passes_when_true(graph) -> None:
    # Messages recorded from TF 2.21: tf.raw_ops.Assert(condition=False, data=..., summarize=N).
    cond = gg.placeholder(gg.dtypes.bool, [], name="cond")
    data = [gg.constant(b"x is bad:"), gg.constant(np.arange(1, 6, dtype=np.int32)),
            gg.constant(np.float32(2.5)), gg.constant(np.array([[1.5, 2], [3, 4]], np.float32))]
    check = node("Assert", cond, *data, T=[t.dtype for t in data], summarize=3)
    check2 = node("Assert", cond, data[1], gg.constant([b"a", b"b"]),
                  T=[gg.dtypes.int32, gg.dtypes.string], summarize=10)
    with gg.Session() as sess:
        sess.run(check, {cond: True})
        with pytest.raises(errors.InvalidArgumentError) as e:
            sess.run(check, {cond: False})
        assert "assertion failed: [x is bad:] [1 2 3...] [2.5] [[1.5 2][3...]...]" in str(e.value)
        with pytest.raises(errors.InvalidArgumentError) as e:
            sess.run(check2, {cond: False})
        assert "assertion failed: [1 2 3 4 5] [a b]" in str(e.value)


def test_an_unused_variable_read_does_not_run_but_a_shape_query_does(graph) -> None:
    # TF 2.21: ReadVariableOp/ResourceGather of an uninitialized variable, read only through a
    # control edge, succeed (not run); VariableShape fails (run).
    handle = out("VarHandleOp", dtype=F32, shape=gg.TensorShape([3, 2]), shared_name=b"v")
    read = out("ReadVariableOp", handle, dtype=F32)
    gather = out("ResourceGather", handle, gg.constant(np.array([0], np.int32)), dtype=F32,
                 Tindices=gg.dtypes.int32)
    with gg.control_dependencies([read, gather]):
        ok = out("Identity", gg.constant(np.float32(1)), T=F32)
    with gg.control_dependencies([out("VariableShape", handle, out_type=gg.dtypes.int32)]):
        fails = out("Identity", gg.constant(np.float32(2)), T=F32)
    with gg.Session() as sess:
        assert sess.run(ok) == 1
        with pytest.raises(errors.OpError):
            sess.run(fails)


def test_a_merge_read_only_through_a_control_edge(graph) -> None:
    pred = gg.placeholder(gg.dtypes.bool, [], name="pred")
    sw = node("Switch", gg.constant(np.float32(5)), pred, T=F32)
    merge = node("Merge", out("Identity", sw.outputs[0], T=F32),
                 out("Identity", sw.outputs[1], T=F32), T=F32, N=2)
    with gg.control_dependencies([merge]):
        result = out("Identity", gg.constant(np.float32(1)), T=F32)
    with gg.Session() as sess:
        assert sess.run(result, {pred: True}) == 1 and sess.run(result, {pred: False}) == 1
