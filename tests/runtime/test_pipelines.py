"""tf.data pipelines inside TF1 graphs (scripts/make_pipeline_fixtures.py, real TF 2.21): the
graph reads its own batches (one-shot and initializable iterators, TFRecord and text files,
map/filter/zip/batch/padded batch/repeat/prefetch), gpugraph trains it with no feeds and fetches
TF's losses and batches; the end of the data is TF's OutOfRangeError."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import errors

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "pipelines"


@pytest.fixture
def case_dir(request, monkeypatch):
    directory = FIXTURES / request.param
    monkeypatch.chdir(directory)  # (the graphs name their input files relative to it)
    return directory, json.loads((directory / "expected.json").read_text())


@pytest.mark.parametrize("case_dir", ["slices_map_batch", "tfrecord_parse_free", "examples_parse"],
                         indirect=True)
@pytest.mark.parametrize("virtual_gpus", [0, 1])
def test_in_graph_pipeline_trains_as_tf(case_dir, virtual_gpus) -> None:
    directory, want = case_dir
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": virtual_gpus}) as sess:
        saver = gg.train.import_meta_graph("model.meta")
        saver.restore(sess, want["checkpoint"])
        if want["initializer"]:
            sess.run(want["initializer"])
        losses = [sess.run([want["loss"], want["train_op"]])[0] for _ in range(want["steps"])]
    np.testing.assert_allclose(losses, want["losses"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case_dir", ["text_lines_zip"], indirect=True)
def test_text_pipeline_batches_and_end_as_tf(case_dir) -> None:
    directory, want = case_dir
    with gg.Graph().as_default(), gg.Session() as sess:
        gg.train.import_meta_graph("model.meta")
        for _ in range(2):  # (re-initializing starts the data again)
            sess.run(want["initializer"])
            for batch in want["batches"]:
                values, index = sess.run(want["fetches"])
                assert values.tolist() == batch["values"] and index.tolist() == batch["index"]
                assert values.dtype == np.int32 and index.dtype == np.int64
            with pytest.raises(errors.OutOfRangeError, match=want["end"]["message"]):
                sess.run(want["fetches"])


def test_get_next_before_the_initializer_is_tf_error(monkeypatch) -> None:
    monkeypatch.chdir(FIXTURES / "text_lines_zip")
    with gg.Graph().as_default(), gg.Session() as sess:
        gg.train.import_meta_graph("model.meta")
        with pytest.raises(errors.FailedPreconditionError, match="has not been initialized"):
            sess.run("IteratorGetNext:0")


def test_file_ops_read_write_and_match(tmp_path) -> None:
    # ReadFile / WriteFile / MatchingFiles (TF's file ops of input pipelines); a missing file
    # is TF's NotFoundError naming it.
    def text(value: str):
        return gg.constant(np.asarray(value.encode(), dtype=object))

    with gg.Graph().as_default() as graph:
        target = str(tmp_path / "sub" / "a.bin")
        write = graph.create_op("WriteFile", [text(target), text("payload")])
        read = graph.create_op("ReadFile", [text(target)]).outputs[0]
        match = graph.create_op("MatchingFiles", [text(str(tmp_path / "sub" / "*.bin"))])
        missing = graph.create_op("ReadFile", [text(str(tmp_path / "nope"))]).outputs[0]
        with gg.Session() as sess:
            sess.run(write)
            assert sess.run(read) == b"payload"
            assert sess.run(match.outputs[0]).tolist() == [target.encode()]
            with pytest.raises(errors.NotFoundError, match="nope"):
                sess.run(missing)
