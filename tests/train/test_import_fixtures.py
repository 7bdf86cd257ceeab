"""gpugraph's import_meta_graph against what TF 2.21's own import made of the same files.

The records (tests/fixtures/meta/<case>.json) were written by scripts/make_fixtures.py running
real TensorFlow: every op's name, type, device, inputs, control inputs, colocation and output
dtypes/shapes, every collection, the variables and the Saver, for several import variants
(plain, import_scope, clear_devices, input_map, imported twice, under outer scopes).
"""

from __future__ import annotations

import contextlib
import json
import pathlib

import pytest

import gpugraph as gg
from gpugraph.framework.control_flow import CondContext, WhileContext
from gpugraph.train.queue_runner import QueueRunner

# Every import here runs with both node tables: read through upb, and scanned from the wire.
pytestmark = pytest.mark.usefixtures("node_tables")

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "meta"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def _variants():
    for case in CASES:
        record = json.loads((FIXTURES / f"{case}.json").read_text())
        for variant in record["imports"]:
            yield pytest.param(record, variant, id=f"{case}-{variant['label']}")


def _import(record: dict, variant: dict):
    """Reproduces the fixture script's setup and import in a fresh gpugraph Graph."""
    graph = gg.Graph()
    setup = variant["setup"]
    saver = None
    with graph.as_default(), contextlib.ExitStack() as stack:
        mapped = {}
        for ph in setup["placeholders"]:
            mapped[f"{ph['name']}:0"] = gg.placeholder(ph["dtype"], ph["shape"], name=ph["name"])
        if setup["name_scope"]:
            stack.enter_context(graph.name_scope(setup["name_scope"]))
        if setup["device"]:
            stack.enter_context(graph.device(setup["device"]))
        kwargs = dict(variant["kwargs"])
        if "input_map" in kwargs:
            kwargs["input_map"] = {k: mapped[v] for k, v in kwargs["input_map"].items()}
        for _ in range(setup["repeat"]):
            saver = gg.train.import_meta_graph(str(FIXTURES / record["meta_file"]), **kwargs)
    return graph, saver


def _op_record(op: gg.Operation) -> dict:
    return {
        "name": op.name,
        "type": op.type,
        "device": op.device,
        "inputs": [t.name for t in op.inputs],
        "control_inputs": sorted(c.name for c in op.control_inputs),
        "colocation": [c.decode() for c in op.colocation_groups()],
        "outputs": [[t.dtype.name, None if t.shape.dims is None else list(t.shape.dims)]
                    for t in op.outputs],
    }


def _item_record(item) -> dict:
    if isinstance(item, gg.Variable):
        return {"variable": item.name, **_slice_record(item)}
    if isinstance(item, gg.Operation):
        return {"op": item.name}
    if isinstance(item, gg.Tensor):
        return {"tensor": item.name}
    if isinstance(item, bytes):
        return {"str": item.decode(), "bytes": True}
    if isinstance(item, str):
        return {"str": item}
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return _object_record(item)
    return {"int": item} if isinstance(item, int) else {"float": item}


def _object_record(item) -> dict:
    if isinstance(item, QueueRunner):
        return {"queue_runner": item.queue.name, "enqueue_ops": [o.name for o in item.enqueue_ops],
                "close_op": item.close_op.name, "cancel_op": item.cancel_op.name,
                "exception_types": [c.error_code for c in item.queue_closed_exception_types]}
    if isinstance(item, CondContext):
        return {"cond_context": item.name, "pred": item.pred_name, "pivot": item.pivot_name,
                "branch": item.branch}
    if isinstance(item, WhileContext):
        return {"while_context": item.name, "pivot": item.pivot_name,
                "loop_exits": item.loop_exit_names, "loop_enters": item.loop_enter_names}
    if isinstance(item, gg.train.Saver):
        return {"saver": item.saver_def.restore_op_name}
    if type(item).__name__ == "Any":
        return {"any": item.type_url}
    return {"other": type(item).__name__}


def _variable_record(v: gg.Variable) -> dict:
    record = {
        "name": v.name, "op": v.op.name, "initializer": v.initializer.name,
        "snapshot": v.value().name, "trainable": v.trainable, "resource": v.is_resource,
        "shape": None if v.shape.dims is None else list(v.shape.dims),
        "dtype": v.dtype.base_dtype.name,
        "initial_value": None if v.initial_value is None else v.initial_value.name,
    }
    return {**record, **_slice_record(v)}


def _slice_record(v: gg.Variable) -> dict:
    info = v.save_slice_info
    if info is None:
        return {}
    return {"save_slice_info": {"full_name": info.full_name, "full_shape": info.full_shape,
                                "var_offset": info.var_offset, "var_shape": info.var_shape}}


def _saver_record(saver) -> dict | None:
    if saver is None:
        return None
    d = saver.saver_def
    return {"filename_tensor_name": d.filename_tensor_name, "save_tensor_name": d.save_tensor_name,
            "restore_op_name": d.restore_op_name, "max_to_keep": d.max_to_keep,
            "sharded": d.sharded, "keep_checkpoint_every_n_hours": d.keep_checkpoint_every_n_hours,
            "version": d.version}


@pytest.mark.parametrize("record, variant", list(_variants()))
def test_ops_match_tf(record, variant):
    graph, _ = _import(record, variant)
    want = variant["result"]["ops"]
    got = [_op_record(op) for op in graph.get_operations()]
    assert [o["name"] for o in got] == [o["name"] for o in want]
    for g, w in zip(got, want):
        assert g == w, g["name"]


@pytest.mark.parametrize("record, variant", list(_variants()))
def test_collections_match_tf(record, variant):
    graph, _ = _import(record, variant)
    result = variant["result"]
    assert sorted(graph.get_all_collection_keys()) == result["collection_keys"]
    for key, items in result["collections"].items():
        assert [_item_record(i) for i in graph.get_collection(key)] == items, key


@pytest.mark.parametrize("record, variant", list(_variants()))
def test_variables_and_saver_match_tf(record, variant):
    graph, saver = _import(record, variant)
    result = variant["result"]
    got = [_variable_record(v) for v in graph.get_collection("variables")]
    assert got == result["global_variables"]
    assert [v.name for v in graph.get_collection("trainable_variables")] == result["trainable_variables"]
    assert _saver_record(saver) == result["saver"]
