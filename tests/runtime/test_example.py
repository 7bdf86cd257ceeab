"""The bundled example (TF-trained digits classifier) continues exactly as TF continued it."""

from __future__ import annotations

import pathlib

import numpy as np

import gpugraph as gg

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "example" / "digits"


def test_digits_example_continues_as_tf() -> None:
    digits = np.load(EXAMPLE / "digits.npz")
    tf = np.load(EXAMPLE / "continue.npz")
    with gg.Graph().as_default(), gg.Session() as sess:
        checkpoint = gg.train.latest_checkpoint(str(EXAMPLE))
        saver = gg.train.import_meta_graph(checkpoint + ".meta")
        saver.restore(sess, checkpoint)
        train_op = gg.get_collection("train_op")[0]
        losses = []
        for order in tf["continue_order"]:
            feeds = {"images:0": digits["train_images"][order],
                     "labels:0": digits["train_labels"][order]}
            losses.append(sess.run(["loss:0", train_op], feeds)[0])
        accuracy = sess.run(gg.get_collection("eval")[0], {
            "images:0": digits["test_images"], "labels:0": digits["test_labels"]})
    np.testing.assert_allclose(losses, tf["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(accuracy, tf["test_accuracy_after"], rtol=1e-6)
