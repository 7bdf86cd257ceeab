"""Session.run semantics: fetch structures, feeds, pruning, control deps, errors."""

from __future__ import annotations

import collections
import pathlib

import numpy as np
import pytest
from helpers import node, out

import gpugraph as gg
from gpugraph import errors

TRAIN = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "train"


@pytest.fixture
def graph():
    with gg.Graph().as_default() as g:
        yield g


def _xy():
    x = gg.placeholder(gg.dtypes.float32, [None, 2], name="x")
    two = gg.constant(np.float32(2), name="two")
    y = out("Mul", x, two, name="y", T=gg.dtypes.float32)
    return x, y


def test_nested_fetch_structures(graph) -> None:
    x, y = _xy()
    pair = collections.namedtuple("pair", "a b")
    feed = {x: np.ones((1, 2), np.float32)}
    with gg.Session() as sess:
        result = sess.run({"list": [y, "y:0"], "tuple": (y.op,), "nt": pair(y, x)}, feed)
    assert isinstance(result["list"], list) and isinstance(result["tuple"], tuple)
    np.testing.assert_array_equal(result["list"][0], [[2, 2]])
    np.testing.assert_array_equal(result["list"][1], [[2, 2]])
    assert result["tuple"] == (None,)
    assert isinstance(result["nt"], pair)
    np.testing.assert_array_equal(result["nt"].b, [[1, 1]])  # a fed tensor fetches its feed


def test_ordered_dict_and_single_fetch(graph) -> None:
    x, y = _xy()
    with gg.Session() as sess:
        got = sess.run(collections.OrderedDict([("b", y), ("a", x)]), {"x:0": [[1, 2]]})
        assert list(got) == ["b", "a"] and isinstance(got, collections.OrderedDict)
        assert sess.run(y, {x: [[3, 4]]}).dtype == np.float32
        assert sess.run("y", {x: [[3, 4]]}) is None  # an operation name fetches None


def test_feed_any_tensor_prunes_its_producer(graph) -> None:
    x, y = _xy()
    z = out("AddV2", y, y, name="z", T=gg.dtypes.float32)
    with gg.Session() as sess:  # x is unfed: feeding y cuts it out of the run
        np.testing.assert_array_equal(sess.run(z, {y: [[1.0, 2.0]]}), [[2, 4]])


def test_unfed_placeholder_is_named(graph) -> None:
    _, y = _xy()
    with gg.Session() as sess, pytest.raises(errors.InvalidArgumentError) as e:
        sess.run(y)
    assert "You must feed a value for placeholder tensor 'x' with dtype float and shape [?,2]" in str(e.value)


def test_feed_shape_and_dtype_errors_name_both(graph) -> None:
    x, y = _xy()
    with gg.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError) as e:
            sess.run(y, {x: np.ones((2, 3), np.float32)})
        assert "(2, 3)" in str(e.value) and "'x:0'" in str(e.value) and "(?, 2)" in str(e.value)
        with pytest.raises(ValueError):  # TF raises ValueError here; ours is both
            sess.run(y, {x: np.ones((2, 3), np.float32)})
        with pytest.raises(errors.InvalidArgumentError) as e:
            sess.run(y, {x: np.array([["a", "b"]])})
        assert "'x:0'" in str(e.value) and "float" in str(e.value)
        with pytest.raises(errors.InvalidArgumentError):
            ints = gg.placeholder(gg.dtypes.int32, [2], name="i")
            sess.run(ints, {ints: np.array([1.5, 2.5])})  # would truncate silently in TF
        np.testing.assert_array_equal(sess.run(y, {x: np.ones((1, 2), np.float64)}), [[2, 2]])


def test_control_dependencies_run_and_only_needed_ops_run(graph) -> None:
    counter = gg.placeholder(gg.dtypes.float32, [], name="unused")
    a = gg.constant(np.float32(1), name="a")
    with graph.control_dependencies([counter.op]):
        b = gg.identity(a, name="b")
    with gg.Session() as sess:
        np.testing.assert_equal(sess.run(a), 1)  # the unfed placeholder is not needed
        with pytest.raises(errors.InvalidArgumentError, match="'unused'"):
            sess.run(b)  # ...but a control input is


def test_missing_kernels_reported_at_once(graph) -> None:
    a = gg.constant(np.float32(1), name="a")
    from gpugraph import _proto as pb

    op_defs = pb.OpList()
    for name in ("NoKernelA", "NoKernelB"):
        d = op_defs.op.add(name=name)
        d.input_arg.add(name="x", type=1)
        d.output_arg.add(name="y", type=1)
    graph._op_defs.add_op_list(op_defs.op)
    p = out("NoKernelA", a, name="p1")
    q = out("NoKernelA", p, name="p2")
    r = out("NoKernelB", q, name="r")
    with gg.Session() as sess, pytest.raises(errors.UnimplementedError) as e:
        sess.run(r)
    text = str(e.value)
    assert "NoKernelA: 2 nodes (e.g. 'p1')" in text and "NoKernelB: 1 node (e.g. 'r')" in text


def test_kernel_failure_names_node_device_and_inputs(graph) -> None:
    a = gg.placeholder(gg.dtypes.float32, [None, None], name="a")
    b = gg.placeholder(gg.dtypes.float32, [None, None], name="b")
    m = out("MatMul", a, b, name="mm", T=gg.dtypes.float32, transpose_a=False, transpose_b=False)
    with gg.Session(config={"virtual_gpus": 0}) as sess, \
            pytest.raises(errors.InvalidArgumentError) as e:
        sess.run(m, {a: np.ones((2, 3)), b: np.ones((4, 5))})
    text = str(e.value)
    assert "Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5]" in text
    assert "node mm (MatMul) on /job:localhost/replica:0/task:0/device:CPU:0" in text
    assert "float32[2, 3], float32[4, 5]" in text


def test_numpy_failure_is_wrapped_and_chained(graph) -> None:
    a = gg.placeholder(gg.dtypes.int32, None, name="a")
    b = gg.placeholder(gg.dtypes.int32, None, name="b")
    with gg.device("/cpu:0"):  # numpy refuses negative integer powers; CuPy does not
        s = out("Pow", a, b, name="s", T=gg.dtypes.int32)
    with gg.Session() as sess, pytest.raises(errors.InvalidArgumentError) as e:
        sess.run(s, {a: [2, 3], b: [1, -1]})
    assert isinstance(e.value.__cause__, ValueError)
    assert "Pow kernel of node 's' failed: ValueError" in str(e.value)
    assert e.value.details["node"] == "s" and e.value.details["inputs"] == ["int32[2]"] * 2


def test_broadcast_failure_reads_like_tf(graph) -> None:
    a = gg.placeholder(gg.dtypes.float32, None, name="a")
    b = gg.placeholder(gg.dtypes.float32, None, name="b")
    s = out("AddV2", a, b, name="s", T=gg.dtypes.float32)
    with gg.Session() as sess, pytest.raises(errors.InvalidArgumentError) as e:
        sess.run(s, {a: np.ones((2, 3)), b: np.ones(4)})
    assert str(e.value).startswith("Incompatible shapes: [2,3] vs. [4]")


def test_plan_cache_dropped_when_graph_grows(graph) -> None:
    a = gg.constant(np.float32(3), name="a")
    with gg.Session() as sess:
        assert sess.run(a) == 3
        plans = dict(sess._plans)
        assert len(plans) == 1
        sess.run(a)
        assert sess._plans == plans  # reused
        gg.constant(1, name="other")
        sess.run(a)
        assert list(sess._plans.values())[0] is not list(plans.values())[0]


def test_closed_session_and_default_session(graph) -> None:
    a = gg.constant(1, name="a")
    sess = gg.Session()
    with sess.as_default():
        assert gg.get_default_session() is sess
    assert gg.get_default_session() is None
    sess.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        sess.run(a)


def test_switch_merge_dead_branch(graph) -> None:
    pred = gg.placeholder(gg.dtypes.bool, [], name="pred")
    x = gg.constant(np.float32(5), name="x")
    sw = node("Switch", x, pred, name="sw", T=gg.dtypes.float32)
    f = out("Neg", sw.outputs[0], name="f", T=gg.dtypes.float32)
    t = out("Square", sw.outputs[1], name="t", T=gg.dtypes.float32)
    merge = node("Merge", f, t, name="m", T=gg.dtypes.float32, N=2)
    with gg.Session() as sess:
        assert sess.run(merge.outputs[0], {pred: True}) == 25
        assert sess.run(merge.outputs, {pred: False}) == [-5, 0]
        with pytest.raises(errors.InvalidArgumentError, match="'t:0'.*not taken"):
            sess.run(t, {pred: False})


def test_scalars_fetch_as_numpy_scalars_and_strings_as_bytes(graph) -> None:
    f = gg.constant(np.float32(1.5), name="f")
    s = gg.constant(b"abc", name="s")
    v = gg.constant([b"x", b"yz"], name="v")
    with gg.Session() as sess:
        got_f, got_s, got_v = sess.run([f, s, v])
    assert type(got_f) is np.float32 and got_f == 1.5
    assert got_s == b"abc"
    assert got_v.dtype == object and list(got_v) == [b"x", b"yz"]


def test_denormals_flush_to_zero_inside_runs_only(graph) -> None:
    """TF's CPU kernels run with FTZ/DAZ; the caller's floating-point mode is left alone."""
    import platform

    x = gg.placeholder(gg.dtypes.float32, [2], name="x")
    y = out("Mul", x, gg.constant(np.float32(0.5), name="h"), name="y", T=gg.dtypes.float32)
    tiny = np.array([1e-38, 1.0], np.float32)  # 1e-38 * 0.5 is denormal
    with gg.Session() as sess:
        got = sess.run(y, {x: tiny})
    if platform.machine() in ("x86_64", "AMD64"):
        assert got[0] == 0 and got[1] == 0.5
    assert (tiny * np.float32(0.5))[0] != 0  # outside a run, numpy keeps denormals


def test_scalar_and_merged_summaries_are_tf_summary_protos(graph) -> None:
    loss = gg.constant(np.float32(1.5), name="loss")
    tag = gg.constant(b"loss", name="tag")
    summary = out("ScalarSummary", tag, loss, name="s", T=gg.dtypes.float32)
    tag2 = gg.constant(b"lr", name="tag2")
    lr = gg.constant(np.float32(0.25), name="lr")
    summary2 = out("ScalarSummary", tag2, lr, name="s2", T=gg.dtypes.float32)
    merged = out("MergeSummary", summary, summary2, name="m", N=2)
    with gg.Session() as sess:
        blob = sess.run(merged)
    # Summary{value{tag:"loss" simple_value:1.5} value{tag:"lr" simple_value:0.25}}
    assert blob == (b"\n\x0b\n\x04loss\x15\x00\x00\xc0?" + b"\n\t\n\x02lr\x15\x00\x00\x80>")
