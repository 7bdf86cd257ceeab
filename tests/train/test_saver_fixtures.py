"""A new gpugraph Saver against what TF 2.21's ``tf.compat.v1.train.Saver`` built and saved.

Each case of tests/fixtures/saver (scripts/make_saver_fixtures.py) holds a ``vars.meta`` with
only variables (ref, resource, on two CPUs, partitioned), the Saver arguments, every node TF's
Saver added after importing that file with ``import_scoped_meta_graph``, the SaverDef, and a
checkpoint TF wrote.  gpugraph imports the same file the same way, builds its Saver with the
same arguments, and must add the same nodes (names, ops, inputs, devices, every attr), restore
TF's checkpoint bit for bit, and write checkpoints TF's reader lists identically.  (That TF
restores gpugraph's checkpoints is checked by ``make_saver_fixtures.py --check-gpugraph``.)
"""

from __future__ import annotations

import numpy as np
import pytest
from saver_support import (
    CASES,
    CONFIG,
    FIXTURES,
    assign,
    build_saver,
    covered,
    import_variables,
    node_record,
    read_all,
    record,
    saver_def_record,
    values,
)

import gpugraph as gg

SAVED = [c for c in CASES if record(c)["checkpoint"]]


def _build(case: str):
    """A graph with the case's variables and Savers; returns (graph, savers, variables)."""
    graph = gg.Graph()
    with graph.as_default():
        by_name = import_variables(case)
        savers, starts = [], []
        for spec in record(case)["savers"]:
            starts.append(len(graph.get_operations()))
            savers.append(build_saver(spec, by_name))
    return graph, savers, starts


@pytest.mark.parametrize("case", CASES)
def test_saver_ops_match_tf(case: str) -> None:
    graph, savers, starts = _build(case)
    nodes = graph.as_graph_def(add_shapes=True).node
    ends = [*starts[1:], len(nodes)]
    specs = record(case)["savers"]
    for spec, saver, start, end in zip(specs, savers, starts, ends, strict=True):
        got = [node_record(n) for n in nodes[start:end]]
        assert [n["name"] for n in got] == [n["name"] for n in spec["nodes"]]
        for mine, tfs in zip(got, spec["nodes"], strict=True):
            assert mine == tfs, mine["name"]
        assert saver_def_record(saver.saver_def) == spec["saver_def"]


@pytest.mark.parametrize("case", CASES)
def test_import_meta_graph_without_saver_def_builds_tf_default_saver(case: str) -> None:
    """TF's import_meta_graph of a .meta with variables and no SaverDef adds ``Saver()``."""
    want = record(case)["import_meta_graph"]
    with gg.Graph().as_default() as graph:
        saver = gg.train.import_meta_graph(str(FIXTURES / case / "vars.meta"))
        got = [node_record(n) for n in graph.as_graph_def(add_shapes=True).node]
    assert [n["name"] for n in got] == [n["name"] for n in want["nodes"]]
    for mine, tfs in zip(got, want["nodes"], strict=True):
        assert mine == tfs, mine["name"]
    assert saver_def_record(saver.saver_def if saver else None) == want["saver_def"]


@pytest.mark.parametrize("case", SAVED)
def test_new_saver_restores_tf_checkpoint(case: str) -> None:
    rec, want = record(case), values(case)
    graph, savers, _ = _build(case)
    names = covered(rec["savers"][0], want)
    with graph.as_default(), gg.Session(config=CONFIG) as sess:
        savers[0].restore(sess, str(FIXTURES / case / rec["checkpoint"]))
        got = read_all(sess, names)
    for name in names:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("case", SAVED)
def test_tf_meta_restores_tf_checkpoint(case: str) -> None:
    """TF's exported graph (its Saver's ops, sharded and partitioned ones too) in gpugraph."""
    rec, want = record(case), values(case)
    prefix = str(FIXTURES / case / rec["checkpoint"])
    with gg.Graph().as_default(), gg.Session(config=CONFIG) as sess:
        saver = gg.train.import_meta_graph(prefix + ".meta")
        saver.restore(sess, prefix)
        names = covered(rec["savers"][0], want)
        got = read_all(sess, names)
    for name in names:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def _save_new_values(case: str, directory) -> tuple[str, dict]:
    rec, base = record(case), values(case)
    new = {k: (v + 100).astype(v.dtype) for k, v in base.items()}
    graph, savers, _ = _build(case)
    with graph.as_default(), gg.Session(config=CONFIG) as sess:
        by_name = {v.op.name: v for v in gg.global_variables()}
        for name, value in new.items():
            assign(sess, by_name[name], value)
        prefix = savers[0].save(sess, str(directory / "model"), global_step=7)
    names = covered(rec["savers"][0], new)
    return prefix, {k: v for k, v in new.items() if k in names}


@pytest.mark.parametrize("case", SAVED)
def test_save_restore_round_trip(case: str, tmp_path) -> None:
    prefix, saved = _save_new_values(case, tmp_path)
    graph, savers, _ = _build(case)
    with graph.as_default(), gg.Session(config=CONFIG) as sess:
        savers[0].restore(sess, prefix)
        got = read_all(sess, saved)
    for name, value in saved.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("case", SAVED)
def test_exported_meta_carries_the_saver(case: str, tmp_path) -> None:
    """The .meta a new Saver writes holds TF's nodes and SaverDef and restores by itself."""
    prefix, saved = _save_new_values(case, tmp_path)
    spec = record(case)["savers"][0]
    with gg.Graph().as_default(), gg.Session(config=CONFIG) as sess:
        saver = gg.train.import_meta_graph(prefix + ".meta")
        assert saver_def_record(saver.saver_def) == spec["saver_def"]
        nodes = {n.name: node_record(n) for n in sess.graph.as_graph_def(add_shapes=True).node}
        for node in spec["nodes"]:
            assert nodes[node["name"]] == node, node["name"]
        saver.restore(sess, prefix)
        got = read_all(sess, saved)
    for name, value in saved.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("case", SAVED)
def test_checkpoint_lists_like_tf(case: str, tmp_path) -> None:
    prefix, _ = _save_new_values(case, tmp_path)
    assert [list(x) for x in gg.train.list_variables(prefix)] == record(case)["reader"][
        "list_variables"]
    reader = gg.train.NewCheckpointReader(prefix)
    assert reader.debug_string().hex() == record(case)["reader"]["debug_string_hex"]


def test_sharded_save_writes_one_data_file_per_device(tmp_path) -> None:
    prefix, _ = _save_new_values("sharded_two_cpus", tmp_path)
    assert prefix == str(tmp_path / "model-7")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint", "model-7.data-00000-of-00002", "model-7.data-00001-of-00002",
                     "model-7.gpugraph-devices.json", "model-7.index", "model-7.meta"]
    tf_files = sorted(p.name for p in (FIXTURES / "sharded_two_cpus" / "tf").iterdir())
    assert [n for n in names if not n.endswith(".json")] == tf_files


def test_resource_options_are_honoured(tmp_path) -> None:
    """pad_step_number, max_to_keep=2 and the baked-in filename, as TF's fixture shows."""
    graph, savers, _ = _build("resource_options")
    saver = savers[0]
    with graph.as_default(), gg.Session() as sess:
        sess.run(gg.global_variables_initializer())
        default = sess.run(saver.saver_def.filename_tensor_name)
        paths = [saver.save(sess, str(tmp_path / "model"), global_step=s) for s in (1, 2, 3)]
    assert default == b"ckpt"
    assert paths[-1] == str(tmp_path / "model-00000003")
    assert saver.last_checkpoints == paths[1:]
    assert not gg.train.checkpoint_exists(paths[0])
    assert (tmp_path / "checkpoint").read_text() == (
        f'model_checkpoint_path: "{paths[2]}"\n'
        f'all_model_checkpoint_paths: "{paths[1]}"\n'
        f'all_model_checkpoint_paths: "{paths[2]}"\n')
