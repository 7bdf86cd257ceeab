"""Variables in a session: initialization, uninitialized reads, reports, update semantics."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import errors

TRAIN = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "train"


def _import(case: str):
    graph = gg.Graph()
    with graph.as_default():
        gg.train.import_meta_graph(str(TRAIN / case / f"{case}-3.meta"))
    return graph


@pytest.mark.parametrize("case", ["mlp_sparse_adam_ref", "mlp_sparse_adam_resource"])
def test_uninitialized_read_names_the_variable(case: str) -> None:
    graph = _import(case)
    with graph.as_default(), gg.Session() as sess:
        with pytest.raises(errors.FailedPreconditionError) as e:
            sess.run("loss:0", {"x:0": np.zeros((8, 20), np.float32), "y:0": np.zeros(8, np.int64)})
        assert "dense" in str(e.value)
        assert e.value.details["variable"].startswith("dense")


@pytest.mark.parametrize("case", ["mlp_sparse_adam_ref", "mlp_sparse_adam_resource"])
def test_initializers_and_report(case: str) -> None:
    graph = _import(case)
    with graph.as_default(), gg.Session() as sess:
        names = [v.op.name for v in gg.global_variables()]
        report = gg.report_uninitialized_variables()
        assert [n.decode() for n in sess.run(report)] == names
        first = gg.global_variables()[0]
        sess.run(gg.variables_initializer([first]))
        assert [n.decode() for n in sess.run(report)] == names[1:]
        assert bool(sess.run(gg.is_variable_initialized(first)))
        sess.run(gg.global_variables_initializer())
        assert sess.run(report).shape == (0,)
        assert sess.run("global_step:0") == 0
        kernel = sess.run("dense/kernel:0" if case.endswith("ref") else "dense/kernel/Read/ReadVariableOp:0")
        limit = np.sqrt(6 / (20 + 16))  # glorot_uniform
        assert kernel.shape == (20, 16) and np.all(np.abs(kernel) <= limit) and kernel.std() > 0


def test_new_session_starts_uninitialized() -> None:
    graph = _import("mlp_sparse_gd_resource")
    with graph.as_default():
        with gg.Session() as sess:
            sess.run(gg.global_variables_initializer())
            assert sess.run(gg.report_uninitialized_variables()).size == 0
        with gg.Session() as sess:
            assert sess.run(gg.report_uninitialized_variables()).size == 5


@pytest.mark.parametrize("case", ["mlp_sparse_gd_ref", "mlp_sparse_gd_resource"])
def test_report_on_a_virtual_gpu(case: str) -> None:
    """The initialized flags are host memory (as in TF), copied to the GPU the report's Pack
    runs on: a numpy bool handed to a GPU kernel fails there (CuPy's stack refuses it)."""
    graph = _import(case)
    with graph.as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        report = gg.report_uninitialized_variables()
        assert sess.run(report).size == 5
        sess.run(gg.global_variables_initializer())
        assert sess.run(report).shape == (0,)
        placed = sess.placement_report().assignments
        assert "GPU:0" in placed["report_uninitialized_variables/stack"].device


@pytest.mark.parametrize("case", ["mlp_sparse_gd_ref", "mlp_sparse_gd_resource"])
def test_fetched_values_do_not_change_when_training_continues(case: str) -> None:
    graph = _import(case)
    feeds = {"x:0": np.ones((8, 20), np.float32), "y:0": np.zeros(8, np.int64)}
    with graph.as_default(), gg.Session() as sess:
        sess.run(gg.global_variables_initializer())
        var = [v for v in gg.global_variables() if v.op.name == "dense/bias"][0]
        before = sess.run(var)
        kept = before.copy()
        train_op = gg.get_collection("train_op")[0]
        in_run, _ = sess.run([var, train_op], feeds)
        after = sess.run(var)
    np.testing.assert_array_equal(before, kept)  # updates are copy-on-write for held values
    if case.endswith("resource"):  # a resource read is a snapshot taken before the update
        np.testing.assert_array_equal(in_run, kept)
    else:  # a ref tensor fetched with the update is read after the run (racy in TF)
        np.testing.assert_array_equal(in_run, after)
    assert not np.array_equal(after, kept)


def test_global_step_counts_runs() -> None:
    graph = _import("mlp_sparse_gd_ref")
    feeds = {"x:0": np.ones((8, 20), np.float32), "y:0": np.zeros(8, np.int64)}
    with graph.as_default(), gg.Session() as sess:
        sess.run(gg.global_variables_initializer())
        train_op = gg.get_collection("train_op")[0]
        for _ in range(3):
            sess.run(train_op, feeds)
        assert sess.run("global_step:0") == 3
        assert sess.run("global_step:0").dtype == np.int64
