"""Generate ``tests/fixtures/events/`` with real TensorFlow: an event file TF's
``tf.compat.v1.summary.FileWriter`` wrote for a small graph's summaries, to hold gpugraph's
FileWriter to.

Run in the TF virtualenv (gpugraph never imports TensorFlow)::

    /work/tfenv/bin/python scripts/make_event_fixtures.py

Writes ``model.meta`` (a graph with a scalar and a histogram summary merged into
``merged/merged``), ``inputs.npz`` (the fed ``x`` of steps 1-3), and ``tf_events/``:
TF's event file (file_version, the graph, the merged summaries of steps 1-3).
"""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
v1.disable_eager_execution()
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "events"


def main():
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
    print(sorted(str(p.relative_to(OUT)) for p in OUT.rglob("*")))


if __name__ == "__main__":
    main()
