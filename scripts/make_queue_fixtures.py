"""Generate ``tests/fixtures/queues/`` with real TensorFlow: TF1 training graphs fed by input
queues and queue runners, and the losses TF computed continuing them.

Run in the TF virtualenv (gpugraph never imports TensorFlow)::

    /work/tfenv/bin/python scripts/make_queue_fixtures.py

Each case ``<name>/`` holds ``model.meta``, a checkpoint ``model-0`` taken before training, its
input files, and ``expected.json``: ``train_op``, ``loss``, ``losses`` (one per run until the
queues ran dry, or ``steps`` runs) and ``ended`` (whether the last run raised OutOfRangeError).
The graphs' file names are relative to the case directory.  Orders are deterministic (no
shuffling, one thread per runner), so TF's losses are the reference.

* ``slices_batch``: ``slice_input_producer`` (range producer, FIFO queue, QueueRunner) over
  in-graph arrays, ``tf.train.batch`` (a second FIFO queue and runner), softmax regression with
  Adam, a fixed number of steps.
* ``tfrecord_epochs``: ``string_input_producer`` over a TFRecord file with ``num_epochs=2``
  (a local epoch counter, CountUpTo), TFRecordReader, DecodeRaw, ``tf.train.batch``,
  GradientDescent, run until the input ends (OutOfRangeError).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
v1.disable_eager_execution()
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "queues"
RNG = np.random.default_rng(31)


def head(x, y, classes, optimizer):
    w = v1.get_variable("w", [x.shape[-1], classes],
                        initializer=v1.random_normal_initializer(stddev=0.1, seed=2))
    b = v1.get_variable("b", [classes], initializer=v1.zeros_initializer())
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=tf.matmul(x, w) + b), name="loss")
    return loss, optimizer.minimize(loss, name="train_op")


def run(directory, graph, loss, train_op, steps):
    os.chdir(directory)
    with graph.as_default():
        saver = v1.train.Saver()
        init = [v1.global_variables_initializer(), v1.local_variables_initializer()]
    with graph.as_default(), v1.Session(graph=graph) as sess:
        sess.run(init)
        saver.save(sess, "model", global_step=0, write_meta_graph=False)
        v1.train.export_meta_graph("model.meta", graph=graph)
        coord = v1.train.Coordinator()
        threads = v1.train.start_queue_runners(sess, coord)
        losses, ended = [], False
        try:
            while steps is None or len(losses) < steps:
                losses.append(float(sess.run([loss, train_op])[0]))
        except tf.errors.OutOfRangeError:
            ended = True
        coord.request_stop()
        coord.join(threads)
    record = {"train_op": train_op.name, "loss": loss.name, "losses": losses, "ended": ended,
              "checkpoint": "model-0"}
    (directory / "expected.json").write_text(json.dumps(record, indent=1) + "\n")


def slices_batch(directory):
    features = RNG.standard_normal((30, 4)).astype(np.float32)
    labels = RNG.integers(0, 3, 30).astype(np.int32)
    graph = tf.Graph()
    with graph.as_default():
        x, y = v1.train.slice_input_producer([tf.constant(features), tf.constant(labels)],
                                             shuffle=False)
        xb, yb = v1.train.batch([x, y], batch_size=7, num_threads=1, capacity=20)
        loss, train_op = head(xb, yb, 3, v1.train.AdamOptimizer(0.05))
    run(directory, graph, loss, train_op, 9)


def tfrecord_epochs(directory):
    rows = RNG.standard_normal((12, 5)).astype(np.float32)
    with tf.io.TFRecordWriter(str(directory / "data.tfrecord")) as writer:
        for row in rows:
            writer.write(row.tobytes())
    graph = tf.Graph()
    with graph.as_default():
        files = v1.train.string_input_producer(["data.tfrecord"], num_epochs=2, shuffle=False)
        _, record = v1.TFRecordReader().read(files)
        values = tf.reshape(tf.io.decode_raw(record, tf.float32), [5])
        x, y = v1.train.batch([values[:4], tf.cast(values[4] > 0, tf.int32)], batch_size=5,
                              num_threads=1)
        loss, train_op = head(x, y, 2, v1.train.GradientDescentOptimizer(0.3))
    run(directory, graph, loss, train_op, None)


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    for case in (slices_batch, tfrecord_epochs):
        directory = OUT / case.__name__
        directory.mkdir(parents=True)
        case(directory)
        print(case.__name__, json.loads((directory / "expected.json").read_text()))


if __name__ == "__main__":
    main()
