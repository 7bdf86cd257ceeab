"""Generate ``tests/fixtures/frozen/`` with real TensorFlow: frozen GraphDefs
(``convert_variables_to_constants``) and their outputs, and the checkpoints they were frozen
from, so gpugraph can freeze the same graph itself and TF can check the result.

Run in the TF virtualenv (gpugraph never imports TensorFlow)::

    /work/tfenv/bin/python scripts/make_frozen_fixtures.py            # TF's files
    .venv/bin/python scripts/write_gg_frozen.py                       # gpugraph freezes
    /work/tfenv/bin/python scripts/make_frozen_fixtures.py --check-gg  # TF runs gpugraph's

Cases ``mlp`` (ref variables, ReLU, softmax) and ``cnn`` (resource variables, conv, pool,
dense): ``<case>.meta`` + checkpoint ``<case>-0`` (the training graph), ``<case>.pb`` (TF's
frozen binary GraphDef), ``<case>.pbtxt`` (the same, text), and ``<case>.npz``: ``x`` and TF's
output ``y`` of the frozen graph.  With ``--check-gg``: TF imports ``<case>_gg.pb`` (written by
gpugraph's convert_variables_to_constants, committed) and records its output as ``y_gg``.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

v1 = tf.compat.v1
v1.disable_eager_execution()
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "frozen"
RNG = np.random.default_rng(53)


def mlp():
    x = v1.placeholder(tf.float32, [None, 6], name="x")
    w1 = v1.get_variable("w1", [6, 10], initializer=v1.random_normal_initializer(seed=1))
    b1 = v1.get_variable("b1", [10], initializer=v1.random_normal_initializer(seed=2))
    w2 = v1.get_variable("w2", [10, 4], initializer=v1.random_normal_initializer(seed=3))
    tf.nn.softmax(tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2), name="y")
    return RNG.standard_normal((5, 6)).astype(np.float32)


def cnn():
    x = v1.placeholder(tf.float32, [None, 8, 8, 2], name="x")
    k = v1.get_variable("k", [3, 3, 2, 4], use_resource=True,
                        initializer=v1.random_normal_initializer(seed=4))
    w = v1.get_variable("w", [16 * 4, 3], use_resource=True,
                        initializer=v1.random_normal_initializer(seed=5))
    conv = tf.nn.relu(tf.nn.conv2d(x, k, [1, 1, 1, 1], "SAME"))
    pooled = tf.nn.max_pool2d(conv, 2, 2, "VALID")
    tf.identity(tf.matmul(tf.reshape(pooled, [-1, 16 * 4]), w), name="y")
    return RNG.standard_normal((3, 8, 8, 2)).astype(np.float32)


def make(name, build):
    graph = tf.Graph()
    with graph.as_default():
        x_value = build()
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, str(OUT / f"{name}-0"), write_meta_graph=False, write_state=False)
            v1.train.export_meta_graph(str(OUT / f"{name}.meta"))
            frozen = v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["y"])
    (OUT / f"{name}.pb").write_bytes(frozen.SerializeToString())
    (OUT / f"{name}.pbtxt").write_text(text_format.MessageToString(frozen))
    with tf.Graph().as_default(), v1.Session() as sess:
        tf.import_graph_def(frozen, name="")
        y = sess.run("y:0", {"x:0": x_value})
    np.savez(OUT / f"{name}.npz", x=x_value, y=y)


def check_gg():
    for name in ("mlp", "cnn"):
        graph_def = v1.GraphDef()
        graph_def.ParseFromString((OUT / f"{name}_gg.pb").read_bytes())
        data = dict(np.load(OUT / f"{name}.npz"))
        with tf.Graph().as_default(), v1.Session() as sess:
            tf.import_graph_def(graph_def, name="")
            data["y_gg"] = sess.run("y:0", {"x:0": data["x"]})
        np.savez(OUT / f"{name}.npz", **data)
        print(name, "TF ran gpugraph's frozen graph:", np.abs(data["y_gg"] - data["y"]).max())


def main():
    if sys.argv[1:] == ["--check-gg"]:
        return check_gg()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    make("mlp", mlp)
    make("cnn", cnn)
    print(sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
