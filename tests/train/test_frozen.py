"""Frozen GraphDefs (scripts/make_frozen_fixtures.py, real TF 2.21): TF's frozen MLP and CNN
(binary and text) import and run to TF's outputs; gpugraph's own convert_variables_to_constants
of the same checkpoints gives a graph TF ran to the same outputs (recorded as ``y_gg``), and
the test rebuilds it byte for byte."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import errors

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "frozen"
CASES = ["mlp", "cnn"]


def _run(graph_def, x):
    with gg.Graph().as_default(), gg.Session() as sess:
        gg.import_graph_def(graph_def, name="")
        return sess.run("y:0", {"x:0": x})


def freeze(case: str):
    """gpugraph's frozen graph of the fixture's training graph and checkpoint."""
    with gg.Graph().as_default() as graph, gg.Session() as sess:
        saver = gg.train.import_meta_graph(str(FIXTURES / f"{case}.meta"))
        saver.restore(sess, str(FIXTURES / f"{case}-0"))
        return gg.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["y"])


@pytest.mark.parametrize("suffix", [".pb", ".pbtxt"])
@pytest.mark.parametrize("case", CASES)
def test_tfs_frozen_graphs_run_to_tfs_outputs(case, suffix) -> None:
    data = np.load(FIXTURES / f"{case}.npz")
    graph_def = gg.graph_util.read_graph_def(FIXTURES / f"{case}{suffix}")
    np.testing.assert_allclose(_run(graph_def, data["x"]), data["y"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_gpugraph_freezes_what_tf_runs(case) -> None:
    frozen = freeze(case)
    assert not any(n.op in ("VariableV2", "VarHandleOp", "ReadVariableOp", "Assign")
                   for n in frozen.node)
    data = np.load(FIXTURES / f"{case}.npz")
    assert frozen.SerializeToString(deterministic=True) == (FIXTURES / f"{case}_gg.pb").read_bytes()
    np.testing.assert_allclose(data["y_gg"], data["y"], rtol=1e-5, atol=1e-6)  # TF ran ours
    np.testing.assert_allclose(_run(frozen, data["x"]), data["y_gg"], rtol=1e-5, atol=1e-6)


def test_extract_sub_graph_and_errors(tmp_path) -> None:
    graph_def = gg.graph_util.read_graph_def(FIXTURES / "mlp.pb")
    sub = gg.graph_util.extract_sub_graph(graph_def, ["x"])
    assert [n.name for n in sub.node] == ["x"]
    with pytest.raises(AssertionError, match="nope is not in graph"):
        gg.graph_util.extract_sub_graph(graph_def, ["nope"])
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xfe not a graph")
    with pytest.raises(errors.DataLossError, match="bad.pb"):
        gg.graph_util.read_graph_def(bad)


def test_import_graph_def_names_and_errors_as_tf() -> None:
    # TF's rules: prefix 'import' (then 'import_1', ...), name='' for none; return_elements
    # as ops or tensors; input_map rewires a placeholder; unknown names and a wrong dtype are
    # refused with TF's messages.
    graph_def = gg.graph_util.read_graph_def(FIXTURES / "mlp.pb")
    data = np.load(FIXTURES / "mlp.npz")
    with gg.Graph().as_default() as graph, gg.Session() as sess:
        assert gg.import_graph_def(graph_def) is None
        op, tensor = gg.import_graph_def(graph_def, return_elements=["y", "y:0"])
        assert (op.name, tensor.name) == ("import_1/y", "import_1/y:0")
        assert isinstance(op, gg.Operation) and isinstance(tensor, gg.Tensor)
        assert graph.get_operation_by_name("import/x").type == "Placeholder"
        x = gg.constant(data["x"])
        (y,) = gg.import_graph_def(graph_def, input_map={"x:0": x}, return_elements=["y:0"],
                                   name="served")
        np.testing.assert_allclose(sess.run(y), data["y"], rtol=1e-5, atol=1e-6)
        for kwargs, message in [
                ({"return_elements": ["nope"]}, "Requested return node 'nope' not found"),
                ({"return_elements": ["nope:0"]}, "Requested return tensor 'nope:0' not found"),
                ({"return_elements": ["y:3"]}, r"Invalid return output 3 of node 'y', which has "
                                               r"1 output\(s\)"),
                ({"input_map": {"nope:0": x}}, r"Attempted to map inputs that were not found in "
                                               r"graph_def: \[nope:0\]"),
                ({"input_map": {"x:0": gg.constant([1, 2])}}, "Input 0 of node .*MatMul was "
                                                              "passed int32 from Const_1:0 "
                                                              "incompatible with expected "
                                                              "float")]:
            with pytest.raises(ValueError, match=message):
                gg.import_graph_def(graph_def, **kwargs)
