"""TF1 input queues and queue runners (scripts/make_queue_fixtures.py, real TF 2.21): the
graph's queue runners fill its queues from threads, the training loop dequeues batches, and
the losses are TF's; an input producer's epochs end in TF's OutOfRangeError."""

from __future__ import annotations

import json
import pathlib
import threading

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import errors

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "queues"


def _train(case: str, monkeypatch, virtual_gpus: int = 0) -> tuple[list, bool, dict]:
    directory = FIXTURES / case
    monkeypatch.chdir(directory)  # (the graphs name their files relative to it)
    want = json.loads((directory / "expected.json").read_text())
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": virtual_gpus}) as sess:
        saver = gg.train.import_meta_graph("model.meta")
        saver.restore(sess, want["checkpoint"])
        sess.run(gg.local_variables_initializer())
        coord = gg.train.Coordinator()
        threads = gg.train.start_queue_runners(sess, coord)
        losses, ended = [], False
        try:
            while want["ended"] or len(losses) < len(want["losses"]):
                losses.append(sess.run([want["loss"], want["train_op"]])[0])
                assert len(losses) <= len(want["losses"]), "the input did not end where TF's did"
        except errors.OutOfRangeError:
            ended = True
        coord.request_stop()
        coord.join(threads, stop_grace_period_secs=10)
    return losses, ended, want


@pytest.mark.parametrize("case", ["slices_batch", "tfrecord_epochs"])
@pytest.mark.parametrize("virtual_gpus", [0, 1])
def test_queue_pipelines_train_as_tf(case, virtual_gpus, monkeypatch) -> None:
    losses, ended, want = _train(case, monkeypatch, virtual_gpus)
    assert ended == want["ended"]
    np.testing.assert_allclose(losses, want["losses"], rtol=1e-5, atol=1e-6)


def test_closing_the_session_wakes_blocked_threads(monkeypatch) -> None:
    # A dequeue on an empty queue blocks; closing the session cancels it (no hung thread).
    monkeypatch.chdir(FIXTURES / "slices_batch")
    with gg.Graph().as_default():
        gg.train.import_meta_graph("model.meta")
        sess = gg.Session()
        caught: list = []

        def dequeue() -> None:
            try:
                sess.run("batch:0")  # no runner fills the batch queue
            except errors.OpError as e:
                caught.append(e)

        thread = threading.Thread(target=dequeue, daemon=True)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()
        sess.close()
        thread.join(5)
    assert not thread.is_alive() and isinstance(caught[0], errors.CancelledError)


def _shuffle_queue_draws(seed: int) -> list:
    from gpugraph.framework.attrs import to_attr_value as attr

    with gg.Graph().as_default() as graph:
        queue = graph.create_op(
            "RandomShuffleQueueV2", [], name="q",
            attrs={"component_types": attr([gg.int32]), "capacity": attr(10),
                   "min_after_dequeue": attr(3), "seed": attr(seed), "seed2": attr(7)})
        handle = queue.outputs[0]
        values = gg.constant(np.arange(10, dtype=np.int32))
        enqueue = graph.create_op("QueueEnqueueManyV2", [handle, values], name="enqueue",
                                  attrs={"Tcomponents": attr([gg.int32])})
        close = graph.create_op("QueueCloseV2", [handle], name="close")
        take = graph.create_op("QueueDequeueUpToV2", [handle, gg.constant(np.int32(4))],
                               name="take", attrs={"component_types": attr([gg.int32])})
        size = graph.create_op("QueueSizeV2", [handle], name="size")
        with gg.Session() as sess:
            sess.run(enqueue)
            first = sess.run(take.outputs[0]).tolist()  # 10 queued, 3 kept back: 4 come out
            assert sess.run(size.outputs[0]) == 6
            sess.run(close)
            rest = sess.run(take.outputs[0]).tolist() + sess.run(take.outputs[0]).tolist()
            with pytest.raises(errors.OutOfRangeError, match="is closed and has insufficient"):
                sess.run(take.outputs[0])
    return first + rest


def test_a_shuffle_queue_hands_out_every_element_once_in_a_seeded_order() -> None:
    draws = _shuffle_queue_draws(3)
    assert sorted(draws) == list(range(10)) and draws != list(range(10))
    assert _shuffle_queue_draws(3) == draws and _shuffle_queue_draws(4) != draws
