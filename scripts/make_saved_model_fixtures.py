"""Generate ``tests/fixtures/saved_models/`` with real TensorFlow: TF1 SavedModels and what TF
computes with them.

Run in the TF virtualenv (gpugraph never imports TensorFlow)::

    /work/tfenv/bin/python scripts/make_saved_model_fixtures.py

Cases (each a SavedModel directory plus ``expected.json`` and ``expected.npz``):

* ``builder_two_tags``: ``SavedModelBuilder`` with two tag sets: ``train`` (the whole graph,
  its ``train_op`` collection, an asset file whose path a lookup table reads through the
  ``asset_filepaths`` collection, and a ``main_op`` that initializes the table) and ``serve``
  (a ``serving_default`` predict signature).  ``expected.npz``: the serving outputs for the
  inputs ``feed/x``, and the train tag set's losses over 20 steps of the recorded batches.
* ``gg_written`` (with ``--check-gg``, after ``scripts/write_gg_saved_model.py``): TF loads the
  SavedModel gpugraph wrote and records its serving outputs and 5 more training steps
  (``gg_written.npz``).
* ``simple_save_text``: ``simple_save`` of a small regression model, then ``saved_model.pb``
  rewritten as ``saved_model.pbtxt`` (text form); its ``serving_default`` outputs.
* ``example_serving`` (``--only example_serving``): a serving graph as Estimator exports wrote
  them: serialized ``tf.Example`` in, parsed in the graph, a classification signature out.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2

v1 = tf.compat.v1
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "saved_models"
RNG = np.random.default_rng(41)


def builder_two_tags(directory):
    vocab = directory.parent / "vocab.txt"
    vocab.write_text("alpha\nbeta\ngamma\n")
    x_feed = RNG.standard_normal((20, 8, 5)).astype(np.float32)
    y_feed = RNG.integers(0, 3, (20, 8)).astype(np.int64)
    serve_x = RNG.standard_normal((4, 5)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 5], name="x")
        y = v1.placeholder(tf.int64, [None], name="y")
        asset = tf.constant(str(vocab), name="vocab_path")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, asset)
        table = v1.lookup.StaticHashTable(
            v1.lookup.TextFileInitializer(asset, tf.string, -2, tf.int64, -1), -1)
        offset = tf.cast(table.lookup(tf.constant("gamma")), tf.float32, name="offset")
        w1 = v1.get_variable("w1", [5, 8], initializer=v1.glorot_uniform_initializer(seed=1))
        w2 = v1.get_variable("w2", [8, 3], initializer=v1.glorot_uniform_initializer(seed=2))
        b2 = v1.get_variable("b2", [3], initializer=v1.zeros_initializer())
        hidden = tf.nn.relu(tf.matmul(x, w1), name="hidden")
        logits = tf.matmul(hidden, w2) + b2 + 0.01 * offset
        probs = tf.nn.softmax(logits, name="probs")
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=logits), name="loss")
        train_op = v1.train.AdamOptimizer(0.01).minimize(loss, name="train_op")
        v1.add_to_collection("train_op", train_op)
        main_op = tf.group(v1.local_variables_initializer(), v1.tables_initializer(),
                           name="main_op")
        with v1.Session(graph=graph) as sess:
            sess.run([v1.global_variables_initializer(), main_op])
            builder = v1.saved_model.Builder(str(directory))
            signature = v1.saved_model.predict_signature_def({"x": x}, {"probs": probs})
            builder.add_meta_graph_and_variables(
                sess, ["train"], assets_collection=v1.get_collection(
                    v1.GraphKeys.ASSET_FILEPATHS), main_op=main_op)
            builder.add_meta_graph(["serve"], signature_def_map={"serving_default": signature})
            builder.save()
            served = sess.run(probs, {x: serve_x})
    vocab.unlink()
    # What TF computes when it loads the SavedModel back (the train tag set continues).
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.saved_model.loader.load(sess, ["train"], str(directory))
        losses = [float(sess.run(["loss:0", "train_op"], {"x:0": x_feed[k], "y:0": y_feed[k]})[0])
                  for k in range(20)]
    np.savez(directory.parent / f"{directory.name}.npz", serve_x=serve_x, serve_probs=served,
             feed_x=x_feed, feed_y=y_feed, losses=np.asarray(losses))


def simple_save_text(directory):
    x_in = RNG.standard_normal((3, 4)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="features")
        w = v1.get_variable("w", [4, 2], initializer=v1.random_normal_initializer(seed=3))
        out = tf.tanh(tf.matmul(x, w), name="out")
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            v1.saved_model.simple_save(sess, str(directory), {"features": x}, {"out": out})
            value = sess.run(out, {x: x_in})
    binary = directory / "saved_model.pb"
    model = saved_model_pb2.SavedModel.FromString(binary.read_bytes())
    (directory / "saved_model.pbtxt").write_text(text_format.MessageToString(model))
    binary.unlink()
    with tf.Graph().as_default(), v1.Session() as sess:  # TF reads the text form too
        meta = v1.saved_model.loader.load(sess, ["serve"], str(directory))
        sig = meta.signature_def["serving_default"]
        again = sess.run(sig.outputs["out"].name, {sig.inputs["features"].name: x_in})
    np.testing.assert_array_equal(again, value)
    np.savez(directory.parent / f"{directory.name}.npz", x=x_in, out=value)


def example_serving(directory):
    """A serving graph as Estimator exports wrote them: the signature takes serialized
    ``tf.Example`` protos, parses them in the graph (ParseExampleV2) and returns a
    classification signature's classes and scores."""
    rng = np.random.default_rng(43)
    rows = rng.standard_normal((5, 3)).astype(np.float32)
    serialized = [tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=row)),
        "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[k]))}))
        .SerializeToString() for k, row in enumerate(rows)]
    graph = tf.Graph()
    with graph.as_default():
        examples = v1.placeholder(tf.string, [None], name="input_example_tensor")
        parsed = v1.parse_example(examples, {"x": v1.FixedLenFeature([3], tf.float32),
                                             "id": v1.FixedLenFeature([1], tf.int64)})
        w = v1.get_variable("w", [3, 4], initializer=v1.random_normal_initializer(seed=5))
        logits = tf.matmul(parsed["x"], w) + tf.cast(parsed["id"], tf.float32)
        scores = tf.nn.softmax(logits, name="scores")
        classes = tf.tile(tf.constant([[b"a", b"b", b"c", b"d"]]), [tf.shape(examples)[0], 1],
                          name="classes")
        signature = v1.saved_model.classification_signature_def(examples, classes, scores)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(directory))
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
                "serving_default": signature})
            builder.save()
            value = sess.run(scores, {examples: serialized})
    # (as bytes and lengths: numpy's fixed-width bytes drop a serialized proto's final zeros)
    np.savez(directory.parent / f"{directory.name}.npz",
             examples=np.frombuffer(b"".join(serialized), np.uint8),
             lengths=np.array([len(s) for s in serialized]), scores=value)


def check_gg():
    """TF loads the SavedModel gpugraph wrote (scripts/write_gg_saved_model.py): its serving
    outputs (through the TF1 loader and through TF2's ``tf.saved_model.load``) and 5 more
    training steps go into gg_written.npz."""
    directory = OUT / "gg_written"
    data = np.load(OUT / "builder_two_tags.npz")
    with tf.Graph().as_default(), v1.Session() as sess:
        meta = v1.saved_model.loader.load(sess, ["serve"], str(directory))
        sig = meta.signature_def["serving_default"]
        served = sess.run(sig.outputs["probs"].name, {sig.inputs["x"].name: data["serve_x"]})
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.saved_model.loader.load(sess, ["train"], str(directory))
        offset = float(sess.run("offset:0"))
        train_op = v1.get_collection("train_op")[0]
        losses = [float(sess.run(["loss:0", train_op], {"x:0": data["feed_x"][k],
                                                         "y:0": data["feed_y"][k]})[0])
                  for k in range(5, 10)]
    loaded = tf.saved_model.load(str(directory), tags=["serve"])  # (eager: TF2's loader)
    served_v2 = loaded.signatures["serving_default"](x=tf.constant(data["serve_x"]))["probs"]
    np.savez(OUT / "gg_written.npz", serve_probs=served, serve_probs_v2=served_v2.numpy(),
             losses=np.asarray(losses), offset=np.float32(offset))
    print("TF loaded gg_written:", served.shape, losses, offset)


def main():
    import sys

    if sys.argv[1:] == ["--check-gg"]:
        return check_gg()
    v1.disable_eager_execution()
    if sys.argv[1:2] == ["--only"]:  # one case, leaving the others' files as they are
        case = globals()[sys.argv[2]]
        if (OUT / case.__name__).exists():
            shutil.rmtree(OUT / case.__name__)
        return case(OUT / case.__name__)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for case in (builder_two_tags, simple_save_text, example_serving):
        case(OUT / case.__name__)
        print(case.__name__, sorted(str(p.relative_to(OUT)) for p in (OUT / case.__name__).rglob("*")))
    (OUT / "cases.json").write_text(json.dumps({"cases": ["builder_two_tags",
                                                          "simple_save_text",
                                                          "example_serving"]}) + "\n")


if __name__ == "__main__":
    main()
