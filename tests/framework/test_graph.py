"""Graph model behaviours with TF 1.x semantics (naming, scopes, collections, lookups)."""

from __future__ import annotations

import pytest

import gpugraph as gg


@pytest.fixture
def graph():
    g = gg.Graph()
    with g.as_default():
        yield g


def test_unique_names_are_case_insensitive_and_skip_taken_suffixes(graph):
    assert graph.unique_name("x") == "x"
    assert graph.unique_name("X") == "X_1"
    assert graph.unique_name("x_2") == "x_2"
    assert graph.unique_name("x") == "x_3"  # x_2 is taken, as in TF


def test_op_names_follow_scopes(graph):
    a = gg.placeholder("float32", [2], name="a")
    with gg.name_scope("outer") as scope:
        assert scope == "outer/"
        b = gg.identity(a, name="b")
        with gg.name_scope("inner"):
            c = gg.identity(a)
    with gg.name_scope("outer"):
        d = gg.identity(a)
    with gg.name_scope("outer/"):
        e = gg.identity(a)
    assert [t.op.name for t in (a, b, c, d, e)] == [
        "a", "outer/b", "outer/inner/Identity", "outer_1/Identity", "outer/Identity"]


def test_invalid_scope_name_raises(graph):
    with pytest.raises(ValueError, match="is not a valid scope name"), gg.name_scope("-bad"):
        pass


def test_device_scopes_merge_innermost_first(graph):
    with gg.device("/job:ps/task:1"), gg.device("/device:GPU:2"):
        a = gg.no_op(name="a")
        with gg.device("/cpu:0"):
            b = gg.no_op(name="b")
        with gg.device(None):
            c = gg.no_op(name="c")
            with gg.device("/gpu:1"):
                d = gg.no_op(name="d")
    assert a.device == "/job:ps/task:1/device:GPU:2"
    assert b.device == "/job:ps/task:1/device:CPU:0"
    assert c.device == ""
    assert d.device == "/device:GPU:1"


def test_device_function_result_is_merged_under_outer_scopes(graph):
    with gg.device("/job:worker"), gg.device(lambda op: "/cpu:0" if op.type == "NoOp" else ""):
        n = gg.no_op(name="n")
    assert n.device == "/job:worker/device:CPU:0"


def test_colocation_ignores_device_scopes_and_records_class(graph):
    with gg.device("/gpu:0"):
        v = gg.no_op(name="v")
    with gg.device("/gpu:5"), gg.colocate_with(v):
        w = gg.no_op(name="w")
    assert w.device == "/device:GPU:0"
    assert w.colocation_groups() == [b"loc:@v"]
    assert w.get_attr("_class") == [b"loc:@v"]
    assert v.colocation_groups() == [b"loc:@v"]


def test_control_dependencies(graph):
    a, b = gg.no_op(name="a"), gg.no_op(name="b")
    with gg.control_dependencies([a]):
        with gg.control_dependencies([b]):
            c = gg.no_op(name="c")
        with gg.control_dependencies(None):
            d = gg.no_op(name="d")
    assert c.control_inputs == [a, b]
    assert d.control_inputs == []
    node = graph.as_graph_def().node[2]
    assert list(node.input) == ["^a", "^b"]


def test_collections(graph):
    x = gg.placeholder("float32", None, name="scope1/x")
    gg.add_to_collection("things", x)
    gg.add_to_collection("things", 3)
    gg.add_to_collections(["a", "b"], "s")
    assert gg.get_collection("things") == [x, 3]
    assert gg.get_collection("things", scope="scope1") == [x]  # unnamed items are skipped
    ref = gg.get_collection_ref("things")
    ref.append(4)
    assert gg.get_collection("things")[-1] == 4
    assert sorted(gg.get_all_collection_keys()) == ["a", "b", "things"]


def test_lookup_errors_match_tf(graph):
    gg.placeholder("float32", [1], name="x")
    with pytest.raises(KeyError, match="The name 'nope:0' refers to a Tensor which does not exist. "
                                        "The operation, 'nope', does not exist in the graph."):
        graph.get_tensor_by_name("nope:0")
    with pytest.raises(KeyError, match="exists but only has 1 outputs"):
        graph.get_tensor_by_name("x:3")
    with pytest.raises(ValueError, match="refers to an Operation, not a Tensor"):
        graph.get_tensor_by_name("x")
    with pytest.raises(KeyError, match="refers to an Operation not in the graph"):
        graph.get_operation_by_name("nope")
    with pytest.raises(ValueError, match="appears to refer to a Tensor"):
        graph.get_operation_by_name("x:0")


def test_tensors_know_dtype_and_shape(graph):
    x = gg.placeholder("int64", [None, 3], name="x")
    assert x.name == "x:0" and x.dtype == gg.dtypes.int64
    assert x.shape.as_list() == [None, 3]
    assert graph.get_tensor_by_name("x:0") is x


def test_as_graph_def_and_finalize(graph):
    x = gg.placeholder("float32", [2], name="x")
    gg.identity(x, name="y")
    gdef = graph.as_graph_def(add_shapes=True)
    assert [n.name for n in gdef.node] == ["x", "y"] and list(gdef.node[1].input) == ["x"]
    assert gdef.versions.producer == 2474
    assert len(gdef.node[1].attr["_output_shapes"].list.shape[0].dim) == 1
    graph.finalize()
    with pytest.raises(RuntimeError, match="finalized"):
        gg.no_op()


def test_reset_default_graph_refuses_inside_nested_graph(graph):
    with pytest.raises(AssertionError):
        gg.reset_default_graph()


def test_default_graph_stack():
    outer = gg.get_default_graph()
    g = gg.Graph()
    with g.as_default():
        assert gg.get_default_graph() is g
    assert gg.get_default_graph() is outer


def test_import_scope_is_uniquified(tmp_path):
    g = gg.Graph()
    with g.as_default():
        gg.placeholder("float32", None, name="x")
        path = str(tmp_path / "m.meta")
        gg.train.export_meta_graph(path)
        gg.train.import_meta_graph(path, import_scope="imp")
        gg.train.import_meta_graph(path, import_scope="imp")
        gg.train.import_meta_graph(path)
    assert [op.name for op in g.get_operations()] == ["x", "imp/x", "imp_1/x", "x_1"]


def test_input_map_and_return_elements(tmp_path):
    g = gg.Graph()
    with g.as_default():
        x = gg.placeholder("float32", None, name="x")
        gg.identity(x, name="y")
        path = str(tmp_path / "m.meta")
        gg.train.export_meta_graph(path)
    g2 = gg.Graph()
    with g2.as_default():
        z = gg.placeholder("float32", None, name="z")
        saver, (y_op, y) = gg.train.import_meta_graph(
            path, import_scope="s", input_map={"x:0": z}, return_elements=["y", "y:0"])
    assert saver is None
    assert y_op.name == "s/y" and y.name == "s/y:0"
    assert y_op.inputs[0] is z
    assert g2.get_operation_by_name("s/x").type == "Placeholder"  # still imported, as in TF


def _graph_def_with(*node_names: str):
    source = gg.Graph()
    with source.as_default():
        for name in node_names:
            gg.placeholder("float32", [2], name=name)
    return source.as_graph_def()


def test_imported_names_are_taken_for_new_ops_in_import_order(graph):
    assert graph.unique_name("b") == "b"  # a count an import must not lower
    assert graph.unique_name("b") == "b_1"
    gg.import_graph_def(_graph_def_with("A", "b"), name="")
    gg.import_graph_def(_graph_def_with("c"), name="")
    assert graph.unique_name("a") == "a_1"  # case-insensitive, as TF
    assert graph.unique_name("b") == "b_2"
    assert graph.unique_name("c") == "c_1"


def test_a_failed_import_leaves_its_names_free(graph):
    bad = _graph_def_with("p", "q")
    bad.node[1].input.append("missing")
    with pytest.raises(ValueError, match="missing"):
        gg.import_graph_def(bad, name="")
    assert graph.get_operations() == []
    assert graph.unique_name("p") == "p"
    assert graph.unique_name("q") == "q"


def test_import_graph_def_keeps_its_own_copy_of_the_nodes(graph):
    graph_def = _graph_def_with("p")
    gg.import_graph_def(graph_def, name="")
    graph_def.node[0].attr["dtype"].type = gg.int32.as_datatype_enum
    graph_def.node[0].name = "renamed"
    assert graph.get_operation_by_name("p").get_attr("dtype") == gg.float32
    assert graph.as_graph_def().node[0].attr["dtype"].type == gg.float32.as_datatype_enum


def test_import_graph_def_rejects_what_is_not_a_graph_def(graph):
    with pytest.raises(gg.errors.InvalidArgumentError, match="Expected a GraphDef, got dict"):
        gg.import_graph_def({}, name="")
