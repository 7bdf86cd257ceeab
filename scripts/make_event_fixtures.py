"""Generate ``tests/fixtures/events/`` with real TensorFlow: an event file TF's
``tf.compat.v1.summary.FileWriter`` wrote for a small graph's summaries, to hold gpugraph's
FileWriter to.

Run in the TF virtualenv (gpugraph never imports TensorFlow)::

    /work/tfenv/bin/python scripts/make_event_fixtures.py

Writes ``model.meta`` (a graph with a scalar and a histogram summary merged into
``merged/merged``), ``inputs.npz`` (the fed ``x`` of steps 1-3), and ``tf_events/``:
TF's event file (file_version, the graph, the merged summaries of steps 1-3).

And ``resume_run/``: a softmax regression TF trained 6 steps on one full batch
(``feed.npz``), logging its merged summaries (``loss`` and a histogram of ``w``) every step
into ``logs/`` (at the global step each run started from: steps 0-5) but checkpointing at
step 4 (``model-4``), so steps 4-5 are orphaned as in a run killed after its last checkpoint;
``resume_run.npz`` holds TF's losses of 8 steps.

With ``--check-gg`` (after ``scripts/write_gg_events.py`` resumed that run with
``gpugraph resume --logdir`` into ``gg_resume/``), TensorBoard's own ``EventAccumulator``
reads TF's and gpugraph's event files as one log directory, and TF's ``summary_iterator``
reads gpugraph's file alone; what they saw goes into ``gg_resume.json``.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
v1.disable_eager_execution()
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "events"


def resume_run(directory):
    rng = np.random.default_rng(62)
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16).astype(np.int64)
    directory.mkdir()
    np.savez(directory / "feed.npz", x=x, y=y)
    graph = tf.Graph()
    with graph.as_default():
        xp = v1.placeholder(tf.float32, [None, 6], name="x")
        yp = v1.placeholder(tf.int64, [None], name="y")
        w = v1.get_variable("w", [6, 3], initializer=v1.glorot_uniform_initializer(seed=3))
        b = v1.get_variable("b", [3], initializer=v1.zeros_initializer())
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=yp, logits=tf.matmul(xp, w) + b), name="loss")
        v1.summary.scalar("loss", loss)
        v1.summary.histogram("w", w)
        step = v1.train.get_or_create_global_step()
        train_op = v1.train.GradientDescentOptimizer(0.5).minimize(loss, global_step=step)
        v1.add_to_collection("train_op", train_op)
        merged = v1.summary.merge_all()
        saver = v1.train.Saver(save_relative_paths=True)
        writer = v1.summary.FileWriter(str(directory / "logs"), graph)
        losses = []
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for k in range(8):
                at = int(sess.run(step))  # (logged at the step the run starts from, as TF's
                summary, value, _ = sess.run([merged, loss, train_op], {xp: x, yp: y})
                losses.append(float(value))  # SummarySaverHook logs)
                if k < 6:
                    writer.add_summary(summary, at)
                if k == 3:
                    saver.save(sess, str(directory / "model"), global_step=step)
        writer.close()
    np.savez(OUT / "resume_run.npz", losses=np.asarray(losses, np.float32))


def check_gg():
    """TensorBoard reads TF's log directory with gpugraph's resumed events added."""
    from tensorboard.backend.event_processing import event_accumulator

    gg_file, = (OUT / "gg_resume").glob("events.out.tfevents.*")
    with tempfile.TemporaryDirectory() as logdir:
        for path in [*(OUT / "resume_run" / "logs").glob("events.*"), gg_file]:
            shutil.copy(path, logdir)
        keep_all = {event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0}
        accumulator = event_accumulator.EventAccumulator(logdir, size_guidance=keep_all,
                                                         purge_orphaned_data=True)
        accumulator.Reload()
        scalars = {tag: [[e.step, e.value] for e in accumulator.Scalars(tag)]
                   for tag in accumulator.Tags()["scalars"]}
        histograms = {tag: [e.step for e in accumulator.Histograms(tag)]
                      for tag in accumulator.Tags()["histograms"]}
        graph_nodes = sorted(n.name for n in accumulator.Graph().node)
    kinds = [[event.step, event.WhichOneof("what")]
             for event in v1.train.summary_iterator(str(gg_file))]
    record = {"scalars": scalars, "histograms": histograms, "graph_nodes": graph_nodes,
              "gg_events": kinds}
    (OUT / "gg_resume.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record)[:600])


def main():
    if sys.argv[1:] == ["--check-gg"]:
        return check_gg()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    xs = np.random.default_rng(61).standard_normal((3, 20)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [20], name="x")
        v1.summary.scalar("mean", tf.reduce_mean(x))
        v1.summary.histogram("values", x)
        merged = v1.summary.merge_all(name="merged")
        v1.train.export_meta_graph(str(OUT / "model.meta"))
        writer = v1.summary.FileWriter(str(OUT / "tf_events"), graph)
        with v1.Session(graph=graph) as sess:
            for step in range(1, 4):
                writer.add_summary(sess.run(merged, {x: xs[step - 1]}), step)
        writer.close()
    np.savez(OUT / "inputs.npz", x=xs)
    resume_run(OUT / "resume_run")
    print(sorted(str(p.relative_to(OUT)) for p in OUT.rglob("*")))


if __name__ == "__main__":
    main()
