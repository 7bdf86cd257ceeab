"""Captured graphs on virtual GPUs (GPUGRAPH_CUDA_GRAPHS=1): every TF continuation fixture that
runs on a virtual GPU runs there with its GPU work recorded and replayed, and still matches TF;
each class of operation a real CUDA capture refuses (a host synchronization, a host copy, a
variable that must move) is caught and reported with its node."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from helpers import assert_continues_as_tf, load_fixture, node, out

import gpugraph as gg
from gpugraph.framework.builders import constant, placeholder
from gpugraph.plan.frames import LoopNode
from gpugraph.plan.codegen import flatten

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
VIRTUAL_GPU_CASES = [("train", "cnn_momentum_ref"), ("train", "batchnorm_rmsprop_resource"),
                     ("train_sparse", "embedding_adam_resource"),
                     ("train_sparse", "embedding_ftrl_ref"),
                     ("train_sparse", "embedding_momentum_resource")]
F32, I32 = gg.float32, gg.int32
DEVICE_CASES = [c for c in json.loads((FIXTURES / "devices" / "index.json").read_text())["cases"]
                if c != "ps_worker"]


@pytest.fixture(autouse=True)
def _capture_on_virtual_gpus(monkeypatch) -> None:
    monkeypatch.setenv("GPUGRAPH_CUDA_GRAPHS", "1")


def _continue(directory: pathlib.Path, case: str, virtual_gpus: int, restore: str) -> dict:
    config, arrays = load_fixture(directory, case)
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": virtual_gpus}) as sess:
        saver = gg.train.import_meta_graph(str(directory / case / config["meta"]),
                                           import_scope=config.get("import_scope"))
        saver.restore(sess, str(directory / case / config[restore]) if restore == "checkpoint"
                      else gg.train.latest_checkpoint(str(directory / case)))
        train_op = gg.get_collection(config["train_op_collection"])[0]
        losses = []
        for k in range(config["steps"]):
            feeds = {name: arrays[f"feed/{key}"][k] for key, name in config["feeds"].items()}
            feeds.update(config.get("const_feeds", {}))
            losses.append(sess.run([config["loss"], train_op], feeds)[0])
        values = sess.run({v.op.name: v for v in gg.global_variables()})
        report = sess.cuda_graph_report()
    assert_continues_as_tf(arrays, losses, values)
    return report


@pytest.mark.parametrize(("kind", "case"), VIRTUAL_GPU_CASES)
def test_training_fixture_continues_as_tf_with_captured_graphs(kind: str, case: str) -> None:
    report = _continue(FIXTURES / kind, case, 1, "latest")
    assert report["eager_runs"] >= 1
    if not case.startswith("batchnorm"):  # (its v1 cond leaves too little outside branches)
        assert report["replays"] >= report["captures"] > 0, report


@pytest.mark.parametrize("case", DEVICE_CASES)
def test_device_fixture_continues_as_tf_with_captured_graphs(case: str) -> None:
    _continue(FIXTURES / "devices", case, 2, "checkpoint")


def test_replays_follow_the_warm_up_and_capture() -> None:
    # One segment, one signature: run 1 eager, run 2 captured (and launched), then replays,
    # each with new feeds, giving the numbers the eager path gives.
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        with gg.get_default_graph().device("/gpu:0"):
            x = placeholder(gg.float32, [4], name="x")
            y = out("Tanh", out("Mul", out("Add", x, x, T=F32), x, T=F32), T=F32)
            z = out("Sqrt", out("Abs", y, T=F32), T=F32)
        results = [sess.run(z, {x: np.full(4, k, np.float32)}) for k in range(1, 6)]
        report = sess.cuda_graph_report()
    assert report == {"replays": 4, "eager_runs": 1, "captures": 1, "refused": []}
    for k, got in enumerate(results, 1):
        want = np.sqrt(np.abs(np.tanh((k + k) * np.float32(k))))
        np.testing.assert_allclose(got, np.full(4, want, np.float32), rtol=1e-6)


def test_a_new_feed_shape_is_a_new_signature() -> None:
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        with gg.get_default_graph().device("/gpu:0"):
            x = placeholder(gg.float32, [None], name="x")
            z = out("Exp", out("Neg", out("Square", x, T=F32), T=F32), T=F32)
        for n in (2, 3, 2, 3, 2, 3):
            got = sess.run(z, {x: np.ones(n, np.float32)})
            np.testing.assert_allclose(got, np.exp(-np.ones(n)), rtol=1e-6)
        report = sess.cuda_graph_report()
    assert (report["captures"], report["replays"], report["eager_runs"]) == (2, 4, 2)


def _refusals(build, feeds_of, runs: int = 3) -> tuple[list, dict]:
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        with gg.get_default_graph().device("/gpu:0"):
            fetch, feeds = build()
        got = [sess.run(fetch, feeds_of(feeds, k)) for k in range(runs)]
        return got, sess.cuda_graph_report()


def test_a_host_synchronization_is_refused_and_runs_outside() -> None:
    # Integer division reads back whether a divisor is 0 (TF's error): a sync.
    def build():
        x = placeholder(gg.int32, [3], name="x")
        quotient = out("FloorDiv", out("Mul", out("Add", x, x, T=I32), x, T=I32), x,
                       name="div", T=I32)
        return out("Square", out("Neg", out("Abs", quotient, T=I32), T=I32), T=I32), x

    got, report = _refusals(build, lambda x, k: {x: np.full(3, k + 1, np.int32)})
    assert [r["node"] for r in report["refused"]] == ["div"]
    assert "synchronous" in report["refused"][0]["reason"]
    for k, value in enumerate(got):
        np.testing.assert_array_equal(value, np.full(3, (2 * (k + 1)) ** 2))


def test_a_host_copy_is_refused_and_runs_outside() -> None:
    # Unique's GPU kernel copies its input to the host: a device-to-host copy.
    def build():
        x = placeholder(gg.int32, [4], name="x")
        unique = node("Unique", out("Add", x, x, T=I32), name="unique", T=I32, out_idx=I32)
        values = unique.outputs[0]
        return out("Square", out("Mul", out("Neg", values, T=I32), values, T=I32), T=I32), x

    got, report = _refusals(build, lambda x, k: {x: np.array([k, 1, k, 2], np.int32)})
    assert [r["node"] for r in report["refused"]] == ["unique"]
    assert "device-to-host copy" in report["refused"][0]["reason"]
    want = [np.square(-np.square(np.unique(np.array([k, 1, k, 2]) * 2, return_index=True)[0]))
            for k in range(3)]
    for value, expected in zip(got, want):
        assert sorted(value.tolist()) == sorted(expected.tolist())


def test_a_variable_that_must_move_is_refused_and_runs_outside() -> None:
    # v = concat(v, v) doubles the variable every run: its buffer cannot stay the same.
    def build():
        var = node("VariableV2", name="v", dtype=F32, shape=gg.TensorShape([None])).outputs[0]
        init = node("Assign", var, constant(np.ones(1, np.float32)), name="init", T=F32,
                    validate_shape=False)
        read = out("Identity", var, T=F32)
        doubled = out("ConcatV2", out("Exp", out("Neg", read, T=F32), T=F32),
                      out("Abs", read, T=F32), constant(np.int32(0)), T=F32, N=2, Tidx=I32)
        grow = node("Assign", var, doubled, name="grow", T=F32, validate_shape=False)
        return grow.outputs[0], init

    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        with gg.get_default_graph().device("/gpu:0"):
            grow, init = build()
        sess.run(init)
        sizes = [sess.run(grow).shape[0] for _ in range(4)]
        report = sess.cuda_graph_report()
    assert sizes == [2, 4, 8, 16]
    assert [r["node"] for r in report["refused"]] == ["grow"]
    assert "would move to a new buffer" in report["refused"][0]["reason"]


def test_a_restore_invalidates_the_captured_graph() -> None:
    CASE = "mlp_softmax_v2_gd_ref"  # noqa: N806
    # The loss graph reads the variables' buffers; training updates them in place, and a
    # restore gives them new ones: the captured loss must follow both.
    directory = FIXTURES / "train"
    config, arrays = load_fixture(directory, CASE)
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1,
                                                     "allow_soft_placement": True}) as sess:
        with gg.get_default_graph().device("/gpu:0"):
            saver = gg.train.import_meta_graph(str(directory / CASE / config["meta"]),
                                               import_scope=config.get("import_scope"),
                                               clear_devices=True)
        train_op = gg.get_collection(config["train_op_collection"])[0]
        prefix = gg.train.latest_checkpoint(str(directory / CASE))
        feeds = {name: arrays[f"feed/{key}"][0] for key, name in config["feeds"].items()}
        feeds.update(config.get("const_feeds", {}))
        saver.restore(sess, prefix)
        start = [sess.run(config["loss"], feeds) for _ in range(3)]  # eager, captured, replay
        for _ in range(3):
            sess.run(train_op, feeds)
        trained = sess.run(config["loss"], feeds)
        saver.restore(sess, prefix)
        restored = sess.run(config["loss"], feeds)
        report = sess.cuda_graph_report()
    assert start[0] == start[1] == start[2] == restored
    assert trained < start[0]
    assert report["captures"] >= 2 and report["replays"] >= 3


def test_capture_is_off_for_virtual_gpus_by_default(monkeypatch) -> None:
    monkeypatch.delenv("GPUGRAPH_CUDA_GRAPHS")
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        with gg.get_default_graph().device("/gpu:0"):
            x = placeholder(gg.float32, [4], name="x")
            z = out("Sqrt", out("Abs", out("Tanh", out("Mul", x, x, T=F32), T=F32), T=F32), T=F32)
        for _ in range(3):
            sess.run(z, {x: np.ones(4, np.float32)})
        assert sess.cuda_graph_report() == {"replays": 0, "eager_runs": 0, "captures": 0,
                                            "refused": []}


@pytest.mark.parametrize("case", ["rnn_basic_gd_v1", "rnn_lstm_adam_v1", "nested_while_v1",
                                  "cond_in_loop_v1"])
def test_v1_loop_bodies_replay_as_captured_graphs(case: str) -> None:
    # A host loop around captured bodies: each iteration replays the body's graph; values a
    # TensorArray keeps past the next replay are handed out as copies; TF's numbers.
    directory = FIXTURES / "control_flow"
    config, arrays = load_fixture(directory, case)
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        saver = gg.train.import_meta_graph(str(directory / case / config["meta"]))  # on GPU:0
        saver.restore(sess, str(directory / case / config["checkpoint"]))
        train_op = gg.get_collection(config["train_op_collection"])[0]
        losses = []
        for k in range(len(arrays["loss"])):
            feeds = {name: arrays[f"feed/{key}"][k] for key, name in config["feeds"].items()}
            losses.append(sess.run([config["loss"], train_op], feeds)[0])
        values = sess.run({v.op.name: v for v in gg.global_variables()})
        report = sess.cuda_graph_report()
        plans = list(sess._plans.values())
        bodies = {id(s) for plan in plans for item in plan.items if isinstance(item, LoopNode)
                  for s in flatten(item.body)}
        in_loops = [seg for plan in plans for seg in plan._segments.values()
                    if id(seg.steps[0]) in bodies]
    assert_continues_as_tf(arrays, losses, values)
    if case != "nested_while_v1":
        assert in_loops, "no loop body became a captured segment"
    assert report["replays"] > len(losses), report


@pytest.mark.parametrize("case", ["mlp_softmax_v2_adam_ref", "mlp_softmax_v2_adam_resource",
                                  "cnn_adam_resource", "mlp_softmax_v2_momentum_ref"])
def test_optimizer_steps_capture_without_refusals(case: str) -> None:
    # Every update (biases read by BiasAdd's views, Adam's beta powers assigned) keeps its
    # variable's buffer, so nothing is refused and every step after the first two replays.
    report = _continue(FIXTURES / "train", case, 1, "latest")
    assert report["refused"] == [], report["refused"]
    assert report["replays"] >= 8 * report["captures"] > 0, report
