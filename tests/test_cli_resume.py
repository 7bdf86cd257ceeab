"""`gpugraph resume`, run as a user runs it (a subprocess) on copies of TF-written runs."""

from __future__ import annotations

import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

import gpugraph as gg

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASE = "mlp_sparse_adam_resource"
SOURCE = ROOT / "tests" / "fixtures" / "train" / CASE


def _run_dir(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    run = tmp_path / "run"
    shutil.copytree(SOURCE, run)
    data = np.load(SOURCE / "continue.npz")
    np.savez(tmp_path / "data.npz", x=data["feed/x"].reshape(-1, 20), y=data["feed/y"].reshape(-1))
    return run, tmp_path / "data.npz"


def _resume(*args: str, **kwargs) -> subprocess.Popen | subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gpugraph.cli", "resume", *args]
    if kwargs.pop("background", False):
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT)
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)


def _feeds(data: pathlib.Path) -> list[str]:
    return ["--feed", f"x:0={data}:x", "--feed", f"y={data}:y", "--batch-size", "8"]


def test_resume_trains_saves_and_moves_latest_checkpoint(tmp_path) -> None:
    run, data = _run_dir(tmp_path)
    result = _resume(str(run), "--steps", "40", "--save-every", "20", "--no-progress",
                     *_feeds(data))
    assert result.returncode == 0, result.stderr
    assert "trained to global_step 43" in result.stdout
    first, last = (float(v) for v in result.stdout.split("loss ")[1].split()[0:3:2])
    assert last < first
    assert gg.train.latest_checkpoint(str(run)) == str(run / "model-43")
    for suffix in (".index", ".data-00000-of-00001", ".meta"):
        assert (run / f"model-43{suffix}").exists() and (run / f"model-23{suffix}").exists()
    assert (run / f"{CASE}-3.index").exists()  # TF's checkpoint is never deleted
    again = _resume(str(run), "--steps", "5", "--no-progress", *_feeds(data))
    assert "restored" in again.stdout and "model-43 (global_step 43)" in again.stdout


def test_sigint_saves_a_final_valid_checkpoint(tmp_path) -> None:
    run, data = _run_dir(tmp_path)
    proc = _resume(str(run), "--steps", "100000000", "--no-progress", *_feeds(data),
                   background=True)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "interrupted" in out
    latest = gg.train.latest_checkpoint(str(run))
    step = int(latest.rsplit("-", 1)[1])
    assert step > 3
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = gg.train.import_meta_graph(latest + ".meta")
        saver.restore(sess, latest)
        assert sess.run("global_step:0") == step


def test_bad_inputs_exit_1_with_one_line(tmp_path) -> None:
    run, data = _run_dir(tmp_path)
    cases = [
        [str(tmp_path / "missing")],
        [str(run), "--feed", f"x:0={tmp_path / 'nope.npz'}"],
        [str(run), "--feed", f"z:0={data}:x"],
        [str(run), "--feed", f"x:0={data}:y"],  # rows of the wrong shape
    ]
    for args in cases:
        result = _resume(*args, "--steps", "2", "--no-progress")
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("gpugraph: error:")


def test_resume_the_bundled_example_lowers_the_loss(tmp_path) -> None:
    example = ROOT / "tests" / "fixtures" / "example" / "digits"
    data = example / "digits.npz"
    result = _resume(str(example), "--steps", "150", "--batch-size", "64", "--no-progress",
                     "--feed", f"images:0={data}:train_images",
                     "--feed", f"labels:0={data}:train_labels", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "restored" in result.stdout and "(global_step 300)" in result.stdout
    assert gg.train.latest_checkpoint(str(tmp_path / "out")) == str(tmp_path / "out" / "model-450")
    before = _test_loss(str(example / "model-300"), data)
    after = _test_loss(str(tmp_path / "out" / "model-450"), data)
    assert after < before


def _test_loss(prefix: str, data: pathlib.Path) -> float:
    digits = np.load(data)
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = gg.train.import_meta_graph(prefix + ".meta")
        saver.restore(sess, prefix)
        return float(sess.run("loss:0", {"images:0": digits["test_images"],
                                         "labels:0": digits["test_labels"]}))


def test_resume_an_embedding_run_on_int64_ids(tmp_path) -> None:
    """A TF embedding run (ScatterAdd / SparseApply updates) resumes through the CLI too."""
    source = ROOT / "tests" / "fixtures" / "train_sparse" / "embedding_adam_ref"
    run = tmp_path / "run"
    shutil.copytree(source, run)
    data = np.load(source / "continue.npz")
    np.savez(tmp_path / "ids.npz", ids=data["feed/ids"].reshape(-1, 4),
             y=data["feed/y"].reshape(-1))
    ids = tmp_path / "ids.npz"
    done = _resume(str(run), "--steps", "12", "--batch-size", "16", "--feed", f"ids:0={ids}:ids",
                   "--feed", f"y:0={ids}:y", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    state = gg.train.get_checkpoint_state(str(tmp_path / "out"))
    assert state.model_checkpoint_path.endswith("model-15")
    before = gg.train.load_variable(str(run / "embedding_adam_ref-3"), "embedding/table")
    after = gg.train.load_variable(state.model_checkpoint_path, "embedding/table")
    assert not np.array_equal(before[:20], after[:20])  # rows the ids touch moved
    np.testing.assert_array_equal(before[20:], after[20:])  # rows no id touches did not


def test_resume_a_graph_that_reads_its_own_batches(tmp_path) -> None:
    # An in-graph tf.data pipeline (TFRecord file, initializable iterator): no --feed; the
    # iterator initializer runs, and the losses are TF's own continuation.
    import json

    run = tmp_path / "run"
    shutil.copytree(ROOT / "tests" / "fixtures" / "pipelines" / "tfrecord_parse_free", run)
    want = json.loads((run / "expected.json").read_text())
    command = [sys.executable, "-m", "gpugraph.cli", "resume", str(run), "--meta",
               str(run / "model.meta"), "--steps", str(want["steps"]), "--out", str(run / "out")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=run, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "started 1 in-graph input pipeline" in result.stdout
    last = f"loss {want['losses'][0]:.4f} -> {want['losses'][-1]:.4f}"
    assert last in result.stdout, result.stdout


def test_resume_a_queue_runner_graph_until_its_input_ends(tmp_path) -> None:
    # string_input_producer(num_epochs=2) + TFRecordReader + tf.train.batch: the runners
    # start, the epoch counter (a local variable) is initialized, and the run stops where TF's
    # input ended, with TF's losses.
    import json

    run = tmp_path / "run"
    shutil.copytree(ROOT / "tests" / "fixtures" / "queues" / "tfrecord_epochs", run)
    want = json.loads((run / "expected.json").read_text())
    command = [sys.executable, "-m", "gpugraph.cli", "resume", str(run), "--meta",
               str(run / "model.meta"), "--steps", "50", "--out", str(run / "out")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=run, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "input ran out" in result.stdout
    assert f"global_step {len(want['losses'])}: loss {want['losses'][0]:.4f} -> " \
           f"{want['losses'][-1]:.4f}" in result.stdout, result.stdout


def test_resume_a_saved_models_training_tag_set(tmp_path) -> None:
    # A SavedModel directory: its 'train' tag set is loaded as TF's loader loads it (assets,
    # main op), trained, and saved as checkpoints; the first loss is TF's.
    data = np.load(ROOT / "tests" / "fixtures" / "saved_models" / "builder_two_tags.npz")
    np.savez(tmp_path / "batch.npz", x=data["feed_x"][0], y=data["feed_y"][0])
    result = _resume(str(ROOT / "tests" / "fixtures" / "saved_models" / "builder_two_tags"),
                     "--steps", "2", "--feed", f"x:0={tmp_path / 'batch.npz'}:x", "--feed",
                     f"y:0={tmp_path / 'batch.npz'}:y", "--out", str(tmp_path / "out"),
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"loss {data['losses'][0]:.4f} ->" in result.stdout, result.stdout
    assert (tmp_path / "out" / "model-2.index").exists()


def _events(logdir: pathlib.Path) -> list:
    from tests.train.test_summary_writer import _events as read  # (the TFRecord reader)

    return read(logdir)


def test_resume_continues_the_tensorboard_curves_and_exports(tmp_path) -> None:
    # TF's run (mlp_ref_sgd, global_step 3, a ScalarSummary 'loss' in its summaries
    # collection) resumed with --logdir: a SessionLog START at step 3, then the graph's own
    # summary, the loss and steps/s on the first step and every 2nd, each at the step its run
    # started from (TF's SummarySaverHook); the first logged loss is TF's.
    source = ROOT / "tests" / "fixtures" / "meta" / "mlp_ref_sgd"
    want = np.load(source / "continue.npz")
    np.savez(tmp_path / "batch.npz", x=want["x"][0], y=want["y"][0])
    result = _resume(str(source / "mlp_ref_sgd-3"), "--steps", "5", "--no-progress",
                     "--feed", f"x={tmp_path / 'batch.npz'}:x", "--feed",
                     f"y={tmp_path / 'batch.npz'}:y", "--out", str(tmp_path / "out"),
                     "--logdir", str(tmp_path / "logs"), "--summary-every", "2",
                     "--export-savedmodel", str(tmp_path / "exported"))
    assert result.returncode == 0, result.stderr
    assert "wrote 3 summary event(s)" in result.stdout, result.stdout
    events = _events(tmp_path / "logs")
    assert [e.WhichOneof("what") for e in events[:4]] == [
        "file_version", "graph_def", "meta_graph_def", "session_log"]
    assert events[3].session_log.status == gg.summary.SessionLog.START and events[3].step == 3
    logged = [(e.step, v.tag, v.simple_value) for e in events[4:] for v in e.summary.value]
    assert [(step, tag) for step, tag, _ in logged] == [
        (3, "loss_1"), (3, "loss"), (4, "loss_1"), (4, "loss"), (4, "global_step/sec"),
        (6, "loss_1"), (6, "loss"), (6, "global_step/sec")]
    np.testing.assert_allclose(logged[0][2], want["loss"][0], rtol=1e-5)
    assert logged[0][2] == logged[1][2]  # (the graph's summary and the loss collection)
    # The exported SavedModel holds the trained variables under the 'train' tag set.
    with gg.Graph().as_default(), gg.Session() as sess:
        meta = gg.saved_model.load(sess, ["train"], str(tmp_path / "exported"))
        assert list(meta.meta_info_def.tags) == ["train"]
        exported = sess.run("layer1/w:0")
        assert int(sess.run("global_step:0")) == 8
    reader = gg.train.load_checkpoint(str(tmp_path / "out" / "model-8"))
    np.testing.assert_array_equal(exported, reader.get_tensor("layer1/w"))


def test_resume_a_saved_model_and_export_all_its_tag_sets(tmp_path) -> None:
    # The 'train' tag set trained, then exported with the 'serve' tag set as it was (signature,
    # asset) over the new variables: the served probabilities follow the trained weights.
    source = ROOT / "tests" / "fixtures" / "saved_models" / "builder_two_tags"
    data = np.load(str(source) + ".npz")
    np.savez(tmp_path / "batch.npz", x=data["feed_x"][0], y=data["feed_y"][0])
    result = _resume(str(source), "--steps", "3", "--no-progress", "--feed",
                     f"x:0={tmp_path / 'batch.npz'}:x", "--feed",
                     f"y:0={tmp_path / 'batch.npz'}:y", "--out", str(tmp_path / "out"),
                     "--export-savedmodel", str(tmp_path / "exported"))
    assert result.returncode == 0, result.stderr
    model = gg.saved_model.loader.read_saved_model(str(tmp_path / "exported"))
    assert sorted(sorted(m.meta_info_def.tags) for m in model.meta_graphs) == [["serve"],
                                                                             ["train"]]
    assert sorted(p.name for p in (tmp_path / "exported" / "assets").iterdir()) == ["vocab.txt"]
    served = {}
    for directory in (source, tmp_path / "exported"):
        with gg.Graph().as_default(), gg.Session() as sess:
            meta = gg.saved_model.load(sess, ["serve"], str(directory))
            sig = meta.signature_def["serving_default"]
            served[directory] = sess.run(sig.outputs["probs"].name,
                                         {sig.inputs["x"].name: data["serve_x"]})
    np.testing.assert_allclose(served[source], data["serve_probs"], rtol=1e-5)
    assert not np.allclose(served[source], served[tmp_path / "exported"])  # trained on
    # A non-empty export directory is refused before any training.
    again = _resume(str(source), "--steps", "1", "--no-progress", "--export-savedmodel",
                    str(tmp_path / "exported"))
    assert again.returncode == 1 and "not empty" in again.stderr, again.stderr
