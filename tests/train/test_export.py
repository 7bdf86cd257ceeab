"""export_meta_graph: same MetaGraphDef as TF's re-export, and stable gpugraph round trips.

``<case>.tf_reexport.meta`` is what TF 2.21 wrote when it imported ``<case>`` and exported it
again (``saver.export_meta_graph()``, or ``tf.train.export_meta_graph()`` without a saver).
gpugraph doing the same must produce the same MetaGraphDef, field for field, except the
``tensorflow_git_version`` string that says who wrote the file.
"""

from __future__ import annotations

import json
import pathlib

import pytest

import gpugraph as gg
from gpugraph import _proto as pb
from gpugraph.io import meta as meta_io

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "meta"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def _meta_file(case: str) -> pathlib.Path:
    return FIXTURES / json.loads((FIXTURES / f"{case}.json").read_text())["meta_file"]


def _reexport(source, **kwargs):
    graph = gg.Graph()
    with graph.as_default():
        saver = gg.train.import_meta_graph(source)
        if saver is not None:
            return saver.export_meta_graph(**kwargs), graph
        return gg.train.export_meta_graph(**kwargs), graph


def _comparable(meta):
    copy = pb.MetaGraphDef()
    copy.CopyFrom(meta)
    copy.meta_info_def.ClearField("tensorflow_git_version")
    return copy


@pytest.mark.parametrize("case", CASES)
def test_reexport_equals_tfs(case):
    ours, _ = _reexport(str(_meta_file(case)))
    tf = meta_io.read_meta_graph_file(FIXTURES / f"{case}.tf_reexport.meta")
    ours, tf = _comparable(ours), _comparable(tf)
    assert [n.name for n in ours.graph_def.node] == [n.name for n in tf.graph_def.node]
    for a, b in zip(ours.graph_def.node, tf.graph_def.node):
        assert a == b, a.name
    assert ours.collection_def == tf.collection_def
    assert ours.saver_def == tf.saver_def
    assert ours.meta_info_def == tf.meta_info_def
    assert ours.SerializeToString(deterministic=True) == tf.SerializeToString(deterministic=True)


@pytest.mark.parametrize("case", CASES)
def test_gpugraph_round_trip_is_stable(case, tmp_path):
    first, _ = _reexport(str(_meta_file(case)))
    path = tmp_path / "again.meta"
    meta_io.write_meta_graph_file(first, path)
    second, _ = _reexport(str(path))
    assert second.SerializeToString(deterministic=True) == first.SerializeToString(deterministic=True)


@pytest.mark.parametrize("as_text", [False, True])
def test_export_writes_a_file_that_reimports(tmp_path, as_text):
    meta, graph = _reexport(str(_meta_file("mlp_resource_adam")))
    path = tmp_path / "out.meta"
    with graph.as_default():
        gg.train.export_meta_graph(str(path), as_text=as_text)
    assert not list(tmp_path.glob("*.tmp*")), "temporary file left behind"
    if as_text:
        assert path.read_text().startswith("meta_info_def {")
    again = gg.Graph()
    with again.as_default():
        saver = gg.train.import_meta_graph(str(path))
    names = [op.name for op in again.get_operations()]
    original = [op.name for op in graph.get_operations()]
    # The exported file carries no saver_def (export_meta_graph without a Saver), so the
    # import adds a default Saver after the original ops, exactly as TF 2.21 does.
    assert names[:len(original)] == original
    assert all(name.startswith("save") for name in names[len(original):])
    assert saver.saver_def.restore_op_name == "save/restore_all_1"


def test_import_never_mutates_the_callers_proto():
    original = meta_io.read_meta_graph_file(FIXTURES / "devices.meta")
    before = original.SerializeToString(deterministic=True)
    for scope in ("a", "b"):
        with gg.Graph().as_default():
            saver = gg.train.import_meta_graph(original, clear_devices=True, import_scope=scope)
            assert saver.saver_def.restore_op_name.startswith(f"{scope}/")
    assert original.SerializeToString(deterministic=True) == before


def test_export_scope_strips_names_and_marks_unbound_inputs():
    graph = gg.Graph()
    with graph.as_default():
        gg.train.import_meta_graph(str(_meta_file("no_vars")), import_scope="net")
        x = gg.placeholder("float32", None, name="outside")
        meta = gg.train.export_meta_graph(export_scope="net")
    names_ = [n.name for n in meta.graph_def.node]
    assert names_ and not any(n.startswith("net/") for n in names_)
    assert "outside" not in names_
    assert x.op.name == "outside"


def test_strip_default_attrs_matches_tf_stripped_file():
    tf_stripped = meta_io.read_meta_graph_file(FIXTURES / "stripped.meta")
    graph = gg.Graph()
    with graph.as_default():
        gg.train.import_meta_graph(str(_meta_file("mlp_ref_sgd")))
        ours = gg.train.export_meta_graph(strip_default_attrs=True)
    assert ours.meta_info_def.stripped_default_attrs
    tf_nodes = {n.name: n for n in tf_stripped.graph_def.node}
    for node in ours.graph_def.node:
        if node.name in tf_nodes:
            assert sorted(node.attr) == sorted(tf_nodes[node.name].attr), node.name


def test_meta_without_saver_def_exports_without_one(tmp_path):
    # tf.train.export_meta_graph() of a graph with variables has no saver_def; re-exporting must
    # never write a SaverDef without op names (TF rejects such a file on import).
    graph = gg.Graph()
    with graph.as_default():
        gg.train.import_meta_graph(str(_meta_file("mlp_ref_sgd")))
        path = tmp_path / "nosaver.meta"
        gg.train.export_meta_graph(str(path))
    again = gg.Graph()
    with again.as_default():
        saver = gg.train.import_meta_graph(str(path))
        meta = saver.export_meta_graph()
    # As TF: importing variables without a saver_def builds a default Saver (named after the
    # file's own save/ scope, which is taken); its SaverDef is complete, never name-less.
    assert saver.saver_def.restore_op_name == "save/restore_all_1"
    assert meta.saver_def.save_tensor_name == "save/control_dependency_1:0"
