"""Generate ``tests/fixtures/pipelines/`` with real TensorFlow: TF1 training graphs that read
their batches in-graph through tf.data, and what TF computed when it continued them.

Run in the TF virtualenv (gpugraph never imports TensorFlow)::

    /work/tfenv/bin/python scripts/make_pipeline_fixtures.py

Each case ``<name>/`` holds ``model.meta`` and a checkpoint ``model-0`` taken before training,
the input files the pipeline reads, and ``expected.json``: the ``train_op`` and ``loss`` names,
the losses TF fetched on each of ``steps`` runs, the pipeline's first batches
(``batches``: the ``IteratorGetNext`` outputs TF saw, when the case records them) and whether
the iterator needs an initializer run (``initializer``).  Every path in the graph is relative to
the case directory (the test runs from there).  No case shuffles: TF's shuffled orders are not
reproducible outside TF (gpugraph documents its own).

Cases:

* ``slices_map_batch``: TensorSliceDataset -> MapDataset (scale + cast, a captured constant) ->
  RepeatDataset -> BatchDatasetV2 (drop_remainder) -> PrefetchDataset, one-shot iterator, a
  softmax regression trained with Adam; the run goes past one epoch.
* ``tfrecord_parse_free``: a TFRecord file of raw float32 features written by TF, read by
  TFRecordDataset -> MapDataset (DecodeRaw + Reshape) -> BatchDatasetV2 -> RepeatDataset, an
  initializable iterator (IteratorV2 + MakeIterator), GradientDescent.
* ``examples_parse``: ``tf.train.Example`` records (TFRecord) batched, then ParseExampleV2:
  FixedLenFeature with and without a default, VarLenFeature (a SparseTensor, made dense),
  FixedLenSequenceFeature (allow_missing); Adam on the parsed features.
* ``text_lines_zip``: TextLineDataset (numbers as text, StringToNumber in the map) zipped with a
  RangeDataset, filtered, batched with PaddedBatchDataset; forward values only (``batches``),
  run to the end so the last run gives OutOfRangeError.
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
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pipelines"
RNG = np.random.default_rng(25)


def config():
    return v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)


def softmax_head(features, labels, classes, optimizer):
    w = v1.get_variable("w", [features.shape[-1], classes],
                        initializer=v1.random_normal_initializer(stddev=0.1, seed=1))
    b = v1.get_variable("b", [classes], initializer=v1.zeros_initializer())
    logits = tf.matmul(features, w) + b
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits), name="loss")
    train_op = optimizer.minimize(loss, name="train_op")
    return loss, train_op


def finish(directory, graph, sess, saver, loss, train_op, steps, record, init=None):
    os.chdir(directory)
    saver.save(sess, "model", global_step=0, write_meta_graph=False)
    v1.train.export_meta_graph("model.meta", graph=graph)
    if init is not None:
        sess.run(init)
    losses = [float(sess.run([loss, train_op])[0]) for _ in range(steps)]
    record.update(train_op=train_op.name, loss=loss.name, steps=steps, losses=losses,
                  checkpoint="model-0")
    (directory / "expected.json").write_text(json.dumps(record, indent=1) + "\n")


def slices_map_batch(directory):
    features = RNG.standard_normal((40, 6)).astype(np.float32)
    labels = RNG.integers(0, 3, 40).astype(np.int64)
    graph = tf.Graph()
    with graph.as_default():
        scale = tf.constant(0.5, name="scale")
        data = tf.data.Dataset.from_tensor_slices((features, labels))
        data = data.map(lambda x, y: (x * scale, tf.cast(y, tf.int32)))
        data = data.repeat().batch(16, drop_remainder=True).prefetch(2)
        x, y = v1.data.make_one_shot_iterator(data).get_next()
        loss, train_op = softmax_head(x, y, 3, v1.train.AdamOptimizer(0.05))
        saver = v1.train.Saver()
        with v1.Session(graph=graph, config=config()) as sess:
            sess.run(v1.global_variables_initializer())
            finish(directory, graph, sess, saver, loss, train_op, 7,
                   {"initializer": None})


def write_tfrecords(path, rows):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            writer.write(row.tobytes())


def tfrecord_parse_free(directory):
    rows = RNG.standard_normal((24, 5)).astype(np.float32)
    write_tfrecords(directory / "data.tfrecord", rows)
    graph = tf.Graph()
    with graph.as_default():
        data = tf.data.TFRecordDataset("data.tfrecord")

        def parse(record):
            values = tf.reshape(tf.io.decode_raw(record, tf.float32), [5])
            return values[:4], tf.cast(values[4] > 0, tf.int32)

        data = data.map(parse).batch(8).repeat()
        iterator = v1.data.make_initializable_iterator(data)
        x, y = iterator.get_next()
        loss, train_op = softmax_head(x, y, 2, v1.train.GradientDescentOptimizer(0.5))
        saver = v1.train.Saver()
        with v1.Session(graph=graph, config=config()) as sess:
            sess.run(v1.global_variables_initializer())
            os.chdir(directory)
            finish(directory, graph, sess, saver, loss, train_op, 6,
                   {"initializer": iterator.initializer.name}, init=iterator.initializer)


def text_lines_zip(directory):
    numbers = RNG.integers(-50, 50, 11)
    (directory / "numbers.txt").write_text("\n".join(str(n) for n in numbers) + "\n")
    graph = tf.Graph()
    with graph.as_default():
        @tf.autograph.experimental.do_not_convert
        def parse(line):
            return tf.strings.to_number(line, tf.int32)

        @tf.autograph.experimental.do_not_convert
        def even(n, i):
            return tf.equal(n % 2, 0)

        @tf.autograph.experimental.do_not_convert
        def repeat(n, i):
            return tf.fill([tf.cast(i % 3 + 1, tf.int32)], n), i

        text = tf.data.TextLineDataset("numbers.txt").map(parse)
        data = tf.data.Dataset.zip((text, tf.data.Dataset.range(100)))
        data = data.filter(even).map(repeat)
        data = data.padded_batch(2, padded_shapes=([None], []), padding_values=(-1, tf.int64.min))
        iterator = v1.data.make_initializable_iterator(data)
        values, index = iterator.get_next()
        os.chdir(directory)
        v1.train.export_meta_graph("model.meta", graph=graph)
        batches = []
        with v1.Session(graph=graph, config=config()) as sess:
            sess.run(iterator.initializer)
            while True:
                try:
                    v, i = sess.run([values, index])
                except tf.errors.OutOfRangeError as e:
                    end = {"error": type(e).__name__,
                           "message": [m for m in e.message.split("\n") if m][-2]}
                    break
                batches.append({"values": v.tolist(), "index": i.tolist()})
    record = {"initializer": iterator.initializer.name, "fetches": [values.name, index.name],
              "batches": batches, "end": end}
    (directory / "expected.json").write_text(json.dumps(record, indent=1) + "\n")


def examples_parse(directory):
    def example(k):
        feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=RNG.standard_normal(3))),
                   "words": tf.train.Feature(bytes_list=tf.train.BytesList(
                       value=[b"w%d" % j for j in range(k % 3)]))}
        if k % 4:
            feature["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[k % 2]))
        feature["seq"] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.5] * (2 * (k % 3))))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    with tf.io.TFRecordWriter(str(directory / "examples.tfrecord")) as writer:
        for k in range(20):
            writer.write(example(k))
    graph = tf.Graph()
    with graph.as_default():
        spec = {"x": tf.io.FixedLenFeature([3], tf.float32),
                "label": tf.io.FixedLenFeature([], tf.int64, default_value=1),
                "words": tf.io.VarLenFeature(tf.string),
                "seq": tf.io.FixedLenSequenceFeature([2], tf.float32, allow_missing=True)}

        @tf.autograph.experimental.do_not_convert
        def parse(records):
            parsed = tf.io.parse_example(records, spec)
            return (parsed["x"], tf.cast(parsed["label"], tf.int32),
                    tf.sparse.to_dense(parsed["words"], default_value=b""), parsed["seq"])

        data = tf.data.TFRecordDataset("examples.tfrecord").batch(4).map(parse).repeat()
        x, y, words, seq = v1.data.make_one_shot_iterator(data).get_next()
        features = tf.concat([x, tf.reduce_sum(seq, axis=[1, 2])[:, None]], 1)
        loss, train_op = softmax_head(features, y, 2, v1.train.AdamOptimizer(0.1))
        saver = v1.train.Saver()
        with v1.Session(graph=graph, config=config()) as sess:
            sess.run(v1.global_variables_initializer())
            os.chdir(directory)
            finish(directory, graph, sess, saver, loss, train_op, 6,
                   {"initializer": None, "parsed": [words.name, seq.name]})


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    for case in (slices_map_batch, tfrecord_parse_free, text_lines_zip, examples_parse):
        directory = OUT / case.__name__
        directory.mkdir(parents=True)
        case(directory)
        print(case.__name__, sorted(p.name for p in directory.iterdir()))


if __name__ == "__main__":
    main()
