"""TensorBoard event files (scripts/make_event_fixtures.py, real TF 2.21): gpugraph's
FileWriter writes the same events TF's did for the same graph and summaries (file version, the
graph, each step's merged summaries, byte for byte apart from wall times), in TFRecord framing
TensorBoard reads."""

from __future__ import annotations

import pathlib
import struct

import numpy as np
from tensorboardX.proto import event_pb2

import gpugraph as gg
from gpugraph.io.table import crc32c, mask_crc

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "events"


def _events(directory: pathlib.Path) -> list:
    (path,) = directory.glob("events.out.tfevents.*")
    data, events, pos = path.read_bytes(), [], 0
    while pos < len(data):
        length, length_crc = struct.unpack_from("<QI", data, pos)
        assert mask_crc(crc32c(data[pos:pos + 8])) == length_crc
        payload = data[pos + 12:pos + 12 + length]
        (payload_crc,) = struct.unpack_from("<I", data, pos + 12 + length)
        assert mask_crc(crc32c(payload)) == payload_crc
        events.append(event_pb2.Event.FromString(payload))
        pos += 16 + length
    return events


def _write(tmp_path: pathlib.Path, summaries: list) -> list:
    with gg.Graph().as_default() as graph, gg.Session():
        gg.train.import_meta_graph(str(FIXTURES / "model.meta"))
        with gg.summary.FileWriter(str(tmp_path), graph) as writer:
            for step, summary in enumerate(summaries, 1):
                writer.add_summary(summary, step)
    return _events(tmp_path)


def test_file_writer_writes_tfs_event_bytes(tmp_path) -> None:
    # TF's own serialized summaries through gpugraph's FileWriter: the same events.
    theirs = _events(FIXTURES / "tf_events")
    ours = _write(tmp_path, [e.summary.SerializeToString() for e in theirs[3:]])
    assert [e.WhichOneof("what") for e in ours] == [e.WhichOneof("what") for e in theirs]
    assert ours[0].file_version == theirs[0].file_version == "brain.Event:2"
    ours_graph, theirs_graph = gg.GraphDef(), gg.GraphDef()
    ours_graph.ParseFromString(ours[1].graph_def)
    theirs_graph.ParseFromString(theirs[1].graph_def)
    assert {n.name for n in ours_graph.node} == {n.name for n in theirs_graph.node}
    assert ours[2].meta_graph_def and theirs[2].meta_graph_def  # (a MetaGraphDef of the graph)
    for mine, tf_event in zip(ours[3:], theirs[3:]):
        mine.wall_time = tf_event.wall_time
        assert mine.SerializeToString() == tf_event.SerializeToString()


def test_the_graphs_own_summaries_are_tfs(tmp_path) -> None:
    # gpugraph computes the merged summaries: the histograms are TF's bit for bit, the scalar
    # mean of 20 floats to rounding (numpy's and Eigen's summation orders differ).
    xs = np.load(FIXTURES / "inputs.npz")["x"]
    with gg.Graph().as_default(), gg.Session() as sess:
        gg.train.import_meta_graph(str(FIXTURES / "model.meta"))
        summaries = [sess.run("merged/merged:0", {"x:0": x}) for x in xs]
    theirs = _events(FIXTURES / "tf_events")[3:]
    for mine, tf_event in zip(_write(tmp_path, summaries)[3:], theirs):
        assert mine.step == tf_event.step
        (scalar, histogram), (tf_scalar, tf_histogram) = mine.summary.value, tf_event.summary.value
        assert scalar.tag == tf_scalar.tag
        np.testing.assert_allclose(scalar.simple_value, tf_scalar.simple_value, rtol=1e-6,
                                   atol=1e-7)  # (a mean near 0 of values near 1)
        assert histogram.SerializeToString() == tf_histogram.SerializeToString()


def _script(name: str):
    import importlib.util
    import sys

    path = pathlib.Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _timeless(event):
    # (wall times, and steps/s, are the only values a rerun may change)
    event = event_pb2.Event.FromString(event.SerializeToString())
    event.wall_time = 0
    for value in event.summary.value:
        if value.tag == "global_step/sec":
            value.simple_value = 0
    return event.SerializeToString()


def test_a_resumed_runs_events_are_the_ones_tensorboard_read(tmp_path) -> None:
    # scripts/write_gg_events.py rerun: `gpugraph resume --logdir` on TF's run writes the
    # events committed in gg_resume/, which TensorBoard's reader read
    # (make_event_fixtures.py --check-gg).
    _script("write_gg_events").resume(tmp_path / "logs", tmp_path / "out")
    ours, committed = _events(tmp_path / "logs"), _events(FIXTURES / "gg_resume")
    assert [_timeless(e) for e in ours] == [_timeless(e) for e in committed]
    import json

    seen = json.loads((FIXTURES / "gg_resume.json").read_text())
    assert seen["gg_events"] == [[e.step, e.WhichOneof("what")] for e in committed]
    graph = gg.GraphDef()
    graph.ParseFromString(committed[1].graph_def)
    assert seen["graph_nodes"] == sorted(n.name for n in graph.node)


def test_tensorboard_draws_the_resumed_curve_on_from_tfs(tmp_path) -> None:
    # TF logged steps 0-5 but checkpointed at 4; gpugraph resumed at 4 (SessionLog START) and
    # logged 4-7.  TensorBoard dropped TF's orphaned 4-5 and shows one curve: TF's 0-3, then
    # gpugraph's 4-7, which are TF's own continuation (resume_run.npz) to rtol 1e-5.
    import json

    seen = json.loads((FIXTURES / "gg_resume.json").read_text())
    tf_losses = np.load(FIXTURES / "resume_run.npz")["losses"]
    ours = {e.step: v.simple_value for e in _events(FIXTURES / "gg_resume")
            for v in e.summary.value if v.tag == "loss_1"}
    curve = seen["scalars"]["loss_1"]
    assert [step for step, _ in curve] == list(range(8))
    assert [value for _, value in curve[:4]] == [float(v) for v in tf_losses[:4]]
    assert [value for _, value in curve[4:]] == [ours[step] for step in range(4, 8)]
    np.testing.assert_allclose([value for _, value in curve[4:]], tf_losses[4:], rtol=1e-5)
    assert seen["histograms"]["w_1"] == list(range(8))
    assert [step for step, _ in seen["scalars"]["global_step/sec"]] == [5, 6, 7]
