"""Building a new Saver: var_list rules and errors as TF's, empty and deferred Savers, the
options that change save() (max_to_keep=None, keep_checkpoint_every_n_hours, reshape)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from saver_support import FIXTURES, assign, import_variables, values

import gpugraph as gg
from gpugraph import errors
from gpugraph.io import bundle


@pytest.fixture
def graph_vars():
    """A graph with ref ``a`` [2], resource ``b`` [3] and float64 ref ``c`` [2, 2]."""
    graph = gg.Graph()
    with graph.as_default():
        by_name = import_variables("two_savers")
        yield graph, by_name


def _saver_names(saver) -> list[str]:
    graph = gg.get_default_graph()
    scope = saver.saver_def.save_tensor_name.split("/")[0]
    names = graph.get_operation_by_name(f"{scope}/SaveV2/tensor_names")
    return [n.decode() for n in names.get_attr("value").string_val]


def test_dict_keys_are_sorted_bytewise(graph_vars) -> None:
    _, v = graph_vars
    saver = gg.train.Saver({"b_key": v["a"], "B_key": v["b"], "a/key": v["c"]})
    assert _saver_names(saver) == ["B_key", "a/key", "b_key"]


def test_list_uses_op_names_resource_by_handle(graph_vars) -> None:
    _, v = graph_vars
    saver = gg.train.Saver([v["c"], v["b"], v["a"]])
    assert _saver_names(saver) == ["a", "b", "c"]
    save = gg.get_default_graph().get_operation_by_name("save/SaveV2")
    assert [t.name for t in save.inputs[3:]] == ["a:0", "b/Read/ReadVariableOp:0", "c:0"]


def test_variable_tensors_are_accepted(graph_vars) -> None:
    _, v = graph_vars
    saver = gg.train.Saver([v["a"]._variable, v["b"].value()])
    assert _saver_names(saver) == ["a", "b"]


@pytest.mark.parametrize("make, error, match", [
    (lambda v: {"x": v["a"], "y": v["a"]}, ValueError,
     "The same saveable will be restored with two names: y"),
    (lambda v: [v["a"], v["a"]._variable], ValueError,
     "At least two variables have the same name: a"),
    (lambda v: [v["a"], gg.constant(1.0)], TypeError, "Variable to save is not a Variable"),
    (lambda v: {1: v["a"]}, TypeError, "Name is not a string: 1"),
    (lambda v: v["a"], TypeError, "Variables to save should be passed in a dict or a list"),
    (lambda v: {"x": [v["a"]]}, ValueError, "Slices must all be slices"),
])
def test_bad_var_list(graph_vars, make, error, match) -> None:
    _, v = graph_vars
    with pytest.raises(error, match=match):
        gg.train.Saver(make(v))


def test_nothing_to_save(graph_vars) -> None:
    with gg.Graph().as_default(), pytest.raises(ValueError, match="No variables to save"):
        gg.train.Saver()
    with pytest.raises(ValueError, match="No variables to save"):
        gg.train.Saver([])


def test_empty_saver_saves_only_the_meta_and_restores_nothing(tmp_path) -> None:
    with gg.Graph().as_default(), gg.Session() as sess:
        gg.constant(1.0, name="c")
        saver = gg.train.Saver(allow_empty=True)
        assert saver.saver_def is None
        assert saver.save(sess, str(tmp_path / "model"), global_step=3) is None
        saver.restore(sess, str(tmp_path / "nothing-here"))  # a no-op, as in TF
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-3.meta"]


def test_defer_build(graph_vars, tmp_path) -> None:
    graph, _ = graph_vars
    with pytest.raises(ValueError, match="build cannot be deferred"):
        gg.train.Saver([graph_vars[1]["a"]], defer_build=True)
    saver = gg.train.Saver(defer_build=True)
    assert saver.saver_def is None
    assert not any(op.name.startswith("save") for op in graph.get_operations())
    with gg.Session() as sess:
        with pytest.raises(RuntimeError, match="`build\\(\\)` should be called before save"):
            saver.save(sess, str(tmp_path / "m"))
        saver.build()
        saver.build()  # once only
        assert saver.saver_def.restore_op_name == "save/restore_all"
        sess.run(gg.global_variables_initializer())
        assert saver.save(sess, str(tmp_path / "m")) == str(tmp_path / "m")


def test_saver_is_not_added_to_the_savers_collection(graph_vars) -> None:
    gg.train.Saver()
    assert gg.get_collection("savers") == []


def test_only_v2_is_written(graph_vars) -> None:
    with pytest.raises(errors.UnimplementedError, match="V2"):
        gg.train.Saver(write_version=1)


def test_second_saver_gets_its_own_scope(graph_vars) -> None:
    first, second = gg.train.Saver(), gg.train.Saver(name="save")
    assert first.saver_def.restore_op_name == "save/restore_all"
    assert second.saver_def.restore_op_name == "save_1/restore_all"


def test_max_to_keep_none_keeps_every_file(graph_vars, tmp_path) -> None:
    saver = gg.train.Saver(max_to_keep=None)
    assert saver.saver_def.max_to_keep == 0
    with gg.Session() as sess:
        sess.run(gg.global_variables_initializer())
        paths = [saver.save(sess, str(tmp_path / "m"), global_step=s) for s in range(3)]
    assert all(gg.train.checkpoint_exists(p) for p in paths)
    state = gg.train.get_checkpoint_state(str(tmp_path))
    assert list(state.all_model_checkpoint_paths) == [paths[-1]]


def test_keep_checkpoint_every_n_hours_keeps_pushed_out_files(graph_vars, tmp_path) -> None:
    saver = gg.train.Saver(max_to_keep=1, keep_checkpoint_every_n_hours=1e-9)
    with gg.Session() as sess:
        sess.run(gg.global_variables_initializer())
        paths = [saver.save(sess, str(tmp_path / "m"), global_step=s) for s in range(3)]
    assert all(gg.train.checkpoint_exists(p) for p in paths)
    assert saver.last_checkpoints == [paths[-1]]


def test_save_creates_a_missing_directory_like_tf(graph_vars, tmp_path) -> None:
    saver = gg.train.Saver()
    with gg.Session() as sess:
        sess.run(gg.global_variables_initializer())
        prefix = saver.save(sess, str(tmp_path / "new" / "model"), global_step=1)
    assert gg.train.latest_checkpoint(str(tmp_path / "new")) == prefix


def test_save_checks_its_arguments(graph_vars, tmp_path) -> None:
    saver = gg.train.Saver()
    with gg.Session() as sess:
        with pytest.raises(TypeError, match="'sess' must be a Session"):
            saver.save("not a session", str(tmp_path / "m"))
        with pytest.raises(ValueError, match="must not contain path components"):
            saver.save(sess, str(tmp_path / "m"), latest_filename="a/b")
        with pytest.raises(ValueError, match="collides with 'save_path'"):
            saver.save(sess, str(tmp_path / "checkpoint"))


def test_reshape_restores_values_of_another_shape(graph_vars, tmp_path) -> None:
    """reshape=True: a checkpoint value with the same element count is reshaped."""
    _, v = graph_vars
    saver = gg.train.Saver([v["b"], v["c"]], reshape=True)
    prefix = str(tmp_path / "ckpt")
    bundle.write_bundle(prefix, {"b": np.arange(3, dtype=np.float32).reshape(3, 1),
                                 "c": np.arange(4, dtype=np.float64)})
    with gg.Session() as sess:
        saver.restore(sess, prefix)
        b, c = sess.run([v["b"], v["c"]])
        np.testing.assert_array_equal(b, [0, 1, 2])
        np.testing.assert_array_equal(c, [[0, 1], [2, 3]])
        bundle.write_bundle(prefix + "x", {"b": np.zeros(4, np.float32), "c": np.zeros(4)})
        with pytest.raises(errors.InvalidArgumentError, match="Variable b has shape \\[3\\]"):
            saver.restore(sess, prefix + "x")


def test_global_step_tensor_and_relative_state(graph_vars, tmp_path) -> None:
    _, v = graph_vars
    saver = gg.train.Saver([v["a"]], save_relative_paths=True)
    with gg.Session() as sess:
        assign(sess, v["a"], np.array([4.0, 5.0], np.float32))
        step = gg.constant(12, name="step")
        prefix = saver.save(sess, str(tmp_path / "m"), global_step=step)
    assert prefix == str(tmp_path / "m-12")
    assert 'model_checkpoint_path: "m-12"' in (tmp_path / "checkpoint").read_text()
    assert os.path.exists(prefix + ".meta")
    np.testing.assert_array_equal(gg.train.load_variable(str(tmp_path), "a"), [4.0, 5.0])
    assert values("two_savers")["a"].dtype == np.float32


@pytest.mark.parametrize("sharded", [False, True])
def test_variables_on_virtual_gpus(tmp_path, sharded) -> None:
    """Variables on '', GPU:0 and GPU:1 (TF's ``colocated`` fixture) on two virtual GPUs: the
    values reach SaveV2 on the host; sharded, one data file per device."""
    meta = FIXTURES.parent / "devices" / "colocated" / "colocated-3.meta"
    config = {"virtual_gpus": 2}
    with gg.Graph().as_default():
        gg.train.import_meta_graph(str(meta))
        saver = gg.train.Saver(sharded=sharded, name="new_saver")
        variables = gg.global_variables()
        with gg.Session(config=config) as sess:
            sess.run(gg.global_variables_initializer())
            saved = sess.run({v.op.name: v for v in variables})
            prefix = saver.save(sess, str(tmp_path / "model"), global_step=1)
        with gg.Session(config=config) as sess:
            saver.restore(sess, prefix)
            restored = sess.run({v.op.name: v for v in variables})
    for name, value in saved.items():
        np.testing.assert_array_equal(restored[name], value, err_msg=name)
    shards = sorted(p.name for p in tmp_path.glob("model-1.data-*"))
    assert len(shards) == (3 if sharded else 1)
