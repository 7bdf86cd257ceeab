"""Writes ``tests/fixtures/saved_models/gg_written/`` with gpugraph (run with the project's own
Python, not TF's): the TF-made ``builder_two_tags`` SavedModel loaded (tag set ``train``),
trained 5 steps on its recorded batches, and saved again through ``gg.saved_model.Builder``
with the ``train`` and ``serve`` tag sets (an asset table, a main op, a ``serving_default``
signature).  ``scripts/make_saved_model_fixtures.py --check-gg`` then loads it with TF and
records TF's outputs in ``gg_written.npz`` (what the tests hold gpugraph's own outputs to)::

    .venv/bin/python scripts/write_gg_saved_model.py
    /work/tfenv/bin/python scripts/make_saved_model_fixtures.py --check-gg
"""

from __future__ import annotations

import pathlib
import shutil
import sys

import numpy as np

import gpugraph as gg

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "saved_models"


def write(target: pathlib.Path) -> None:
    data = np.load(FIXTURES / "builder_two_tags.npz")
    with gg.Graph().as_default() as graph, gg.Session() as sess:
        gg.saved_model.load(sess, ["train"], str(FIXTURES / "builder_two_tags"))
        train_op = gg.get_collection("train_op")[0]
        for k in range(5):
            sess.run(train_op, {"x:0": data["feed_x"][k], "y:0": data["feed_y"][k]})
        x, probs = graph.get_tensor_by_name("x:0"), graph.get_tensor_by_name("probs:0")
        builder = gg.saved_model.Builder(str(target))
        builder.add_meta_graph_and_variables(sess, ["train"])
        builder.add_meta_graph(["serve"], signature_def_map={
            "serving_default": gg.saved_model.signature_def_utils.predict_signature_def(
                {"x": x}, {"probs": probs})})
        builder.save()


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURES / "gg_written"
    shutil.rmtree(out, ignore_errors=True)
    write(out)
    print("wrote", out)
