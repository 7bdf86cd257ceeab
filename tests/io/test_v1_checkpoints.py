"""V1 (tensor-slice) checkpoints, as TF 0.12-style Savers wrote them: read by the restore ops TF
still has for them (RestoreSlice, Restore, and RestoreV2's fallback), by Saver.restore through a
graph's own V1 restore ops, by NewCheckpointReader, and resumed runs save V2.  The files and
TF's own values and messages come from scripts/make_v1_checkpoint_fixtures.py."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import errors
from gpugraph.io import tensor_slices

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "v1_checkpoints"
MANIFEST = json.loads((FIXTURES / "cases.json").read_text())
EXPECTED = dict(np.load(FIXTURES / "expected.npz", allow_pickle=True))


def _same(got, want) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    if want.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        np.testing.assert_array_equal(got, want)  # bit-exact: restores copy bytes


@pytest.mark.parametrize("directory", ["single", "sharded"])
def test_every_variable_reads_as_tf_restored_it(directory) -> None:
    prefix = str(FIXTURES / MANIFEST[directory])
    with tensor_slices.open_checkpoint(prefix) as reader:
        assert isinstance(reader, tensor_slices.TensorSliceReader)
        # (a partitioned variable's pieces are graph variables, not checkpoint keys: the
        # checkpoint holds "part" as two slices of one tensor)
        wanted = [n for n in MANIFEST["variables"][directory] if "/part_" not in n]
        assert sorted(reader.keys()) == sorted(wanted)
        for name in wanted:
            _same(reader.read(name), EXPECTED[f"{directory}/{name}"])


def _run(record: dict):
    inputs = dict(record["inputs"])
    for key in ("file_pattern", "prefix"):
        if key in inputs:
            inputs[key] = str(FIXTURES / inputs[key])
    with gg.Graph().as_default() as graph:
        attrs = {k: ([gg.as_dtype(t) for t in v] if isinstance(v, list) else gg.as_dtype(v))
                 for k, v in record["attrs"].items()}
        consts = [gg.constant(np.asarray(inputs[k], dtype=object) if isinstance(inputs[k], list)
                              else np.asarray(inputs[k].encode(), dtype=object), name=k)
                  for k in inputs]
        to_attr = gg.framework.attrs.to_attr_value
        node = graph.create_op(record["op"], consts, name="restore",
                               attrs={k: to_attr(v) for k, v in attrs.items()})
        with gg.Session() as sess:
            return sess.run(list(node.outputs)), inputs


@pytest.mark.parametrize("index", range(len(MANIFEST["restores"])))
def test_restore_ops_match_tf(index) -> None:
    record = MANIFEST["restores"][index]
    if record["check"] == "error":
        with pytest.raises(getattr(errors, record["error"])) as e:
            _run(record)
        assert record["message"].replace("<dir>", str(FIXTURES)) in str(e.value)
        return
    got, _ = _run(record)
    if record["op"] == "RestoreV2":
        for k, value in enumerate(got):
            _same(value, EXPECTED[f"restore/{index}/{k}"])
    else:
        _same(got[0], EXPECTED[f"restore/{index}"])


def test_checkpoint_reader_lists_and_reads_v1(tmp_path) -> None:
    prefix = str(FIXTURES / MANIFEST["single"])
    reader = gg.train.NewCheckpointReader(prefix)
    shapes = reader.get_variable_to_shape_map()
    assert shapes["part"] == [6, 2] and shapes["step"] == [] and shapes["empty"] == [0, 3]
    assert reader.get_variable_to_dtype_map()["words"] == gg.string
    _same(reader.get_tensor("f32"), EXPECTED["single/f32"])
    assert b"c128 (DT_COMPLEX128) [2]\n" in reader.debug_string()
    listed = dict(gg.train.list_variables(str(FIXTURES / "sharded")))
    assert listed == {"a": [2, 2], "b": [3]}


def test_saver_restores_a_v1_checkpoint_and_saves_v2(tmp_path) -> None:
    # The TF-written graph's V1 saver (SaveSlices, RestoreV2 reading V1): restore bit-exactly,
    # then save: the new checkpoint is V2 (an .index), readable again.
    work = tmp_path / "single"
    shutil.copytree(FIXTURES / "single", work)
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = gg.train.import_meta_graph(str(work / "model.ckpt.meta"))
        saver.restore(sess, gg.train.latest_checkpoint(str(work)))
        values = sess.run({v.op.name: v for v in gg.global_variables()})
        for name in ("f32", "i8", "words", "c64", "step"):
            _same(values[name], EXPECTED[f"single/{name}"])
        path = saver.save(sess, str(work / "model.ckpt"), global_step=8)
    assert (work / "model.ckpt-8.index").exists() and gg.train.latest_checkpoint(str(work)) == path
    with tensor_slices.open_checkpoint(path) as reader:
        assert not isinstance(reader, tensor_slices.TensorSliceReader)
        _same(reader.read("f16"), EXPECTED["single/f16"])


def test_a_damaged_v1_file_names_the_file(tmp_path) -> None:
    bad = tmp_path / "model.ckpt"
    data = bytearray((FIXTURES / MANIFEST["single"]).read_bytes())
    data[len(data) // 3: len(data) // 3 + 40] = b"\x00" * 40
    bad.write_bytes(bytes(data))
    with pytest.raises((errors.DataLossError, errors.NotFoundError)) as e:
        with tensor_slices.TensorSliceReader(str(bad)) as reader:
            for name in reader.keys():
                reader.read(name)
    assert str(bad) in str(e.value)
