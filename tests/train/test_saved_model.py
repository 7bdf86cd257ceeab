"""TF1 SavedModels (scripts/make_saved_model_fixtures.py, real TF 2.21): gpugraph loads a tag
set as TF's loader does (import, restore variables/, assets fed to the main op), runs the
serving signature to TF's outputs and continues the training tag set as TF did."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import errors

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "saved_models"


def _expected(case: str) -> dict:
    with np.load(FIXTURES / f"{case}.npz") as data:
        return {k: data[k] for k in data.files}


def test_the_serving_signature_gives_tfs_outputs() -> None:
    want = _expected("builder_two_tags")
    with gg.Graph().as_default(), gg.Session() as sess:
        meta = gg.saved_model.loader.load(sess, [gg.saved_model.tag_constants.SERVING],
                                          str(FIXTURES / "builder_two_tags"))
        signature = meta.signature_def[
            gg.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY]
        got = sess.run(signature.outputs["probs"].name,
                       {signature.inputs["x"].name: want["serve_x"]})
    np.testing.assert_allclose(got, want["serve_probs"], rtol=1e-5, atol=1e-6)


def test_the_train_tag_set_continues_as_tf_with_its_asset_table() -> None:
    # The main op initializes a lookup table from assets/vocab.txt (fed its path); the
    # train_op collection trains 20 steps to TF's losses.
    want = _expected("builder_two_tags")
    with gg.Graph().as_default(), gg.Session() as sess:
        gg.saved_model.load(sess, ["train"], str(FIXTURES / "builder_two_tags"))
        assert sess.run("offset:0") == 2.0  # "gamma" is line 2 of the asset
        train_op = gg.get_collection("train_op")[0]
        losses = [sess.run(["loss:0", train_op], {"x:0": want["feed_x"][k],
                                                  "y:0": want["feed_y"][k]})[0]
                  for k in range(20)]
    np.testing.assert_allclose(losses, want["losses"], rtol=1e-5)


def test_a_text_saved_model_from_simple_save() -> None:
    want = _expected("simple_save_text")
    directory = FIXTURES / "simple_save_text"
    assert gg.saved_model.contains_saved_model(str(directory))
    with gg.Graph().as_default(), gg.Session() as sess:
        meta = gg.saved_model.load(sess, ["serve"], str(directory))
        signature = meta.signature_def["serving_default"]
        got = sess.run(signature.outputs["out"].name,
                       {signature.inputs["features"].name: want["x"]})
    np.testing.assert_allclose(got, want["out"], rtol=1e-6)


def test_a_missing_tag_set_lists_the_ones_there() -> None:
    with gg.Graph().as_default(), gg.Session() as sess:
        with pytest.raises(errors.NotFoundError, match=r"available tag sets: \[\['train'\], "
                                                       r"\['serve'\]\]"):
            gg.saved_model.load(sess, ["eval"], str(FIXTURES / "builder_two_tags"))


def test_damaged_or_incomplete_saved_models_name_the_path(tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURES / "builder_two_tags", broken)
    data = (broken / "saved_model.pb").read_bytes()
    (broken / "saved_model.pb").write_bytes(data[: len(data) // 2])
    with gg.Graph().as_default(), gg.Session() as sess:
        with pytest.raises(errors.DataLossError, match="saved_model.pb"):
            gg.saved_model.load(sess, ["serve"], str(broken))
    no_vars = tmp_path / "no_vars"
    shutil.copytree(FIXTURES / "builder_two_tags", no_vars)
    shutil.rmtree(no_vars / "variables")
    with gg.Graph().as_default(), gg.Session() as sess:
        with pytest.raises(errors.NotFoundError, match="variables.index"):
            gg.saved_model.load(sess, ["serve"], str(no_vars))
    with gg.Graph().as_default(), gg.Session() as sess:
        with pytest.raises(errors.NotFoundError, match="SavedModel file does not exist"):
            gg.saved_model.load(sess, ["serve"], str(tmp_path))
    assert not gg.saved_model.contains_saved_model(str(tmp_path))


def test_tf_loads_what_gpugraph_writes(tmp_path) -> None:
    # scripts/write_gg_saved_model.py rebuilt here: its bytes are those of the committed
    # gg_written/ that TF loaded (make_saved_model_fixtures.py --check-gg), and gpugraph's own
    # outputs on it are the ones TF computed.
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "write_gg_saved_model",
        pathlib.Path(__file__).resolve().parents[2] / "scripts" / "write_gg_saved_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.write(tmp_path / "model")
    committed = FIXTURES / "gg_written"
    for name in ("saved_model.pb", "variables/variables.index",
                 "variables/variables.data-00000-of-00001", "assets/vocab.txt"):
        assert (tmp_path / "model" / name).read_bytes() == (committed / name).read_bytes(), name
    tf_said = _expected("gg_written")
    data = _expected("builder_two_tags")
    with gg.Graph().as_default(), gg.Session() as sess:
        meta = gg.saved_model.load(sess, ["serve"], str(committed))
        signature = meta.signature_def["serving_default"]
        served = sess.run(signature.outputs["probs"].name,
                          {signature.inputs["x"].name: data["serve_x"]})
    np.testing.assert_allclose(served, tf_said["serve_probs"], rtol=1e-5, atol=1e-6)
    # (TF2's tf.saved_model.load ran the v1 model's signature to the same outputs)
    np.testing.assert_allclose(tf_said["serve_probs_v2"], tf_said["serve_probs"], rtol=1e-6)
    with gg.Graph().as_default(), gg.Session() as sess:
        gg.saved_model.load(sess, ["train"], str(committed))
        assert sess.run("offset:0") == tf_said["offset"]
        train_op = gg.get_collection("train_op")[0]
        losses = [sess.run(["loss:0", train_op], {"x:0": data["feed_x"][k],
                                                  "y:0": data["feed_y"][k]})[0]
                  for k in range(5, 10)]
    np.testing.assert_allclose(losses, tf_said["losses"], rtol=1e-5)


def test_builder_refuses_a_used_directory_and_simple_save_round_trips(tmp_path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(AssertionError, match="isn't empty"):
        gg.saved_model.Builder(str(tmp_path / "used"))
    with gg.Graph().as_default(), gg.Session() as sess:
        x = gg.placeholder(gg.float32, [None, 2], name="in")
        doubled = gg.identity(x, name="out")
        gg.saved_model.simple_save(sess, str(tmp_path / "simple"), {"in": x}, {"out": doubled})
    with gg.Graph().as_default(), gg.Session() as sess:
        meta = gg.saved_model.load(sess, ["serve"], str(tmp_path / "simple"))
        sig = meta.signature_def["serving_default"]
        assert sig.method_name == "tensorflow/serving/predict"
        got = sess.run(sig.outputs["out"].name, {sig.inputs["in"].name: [[1.0, 2.0]]})
    np.testing.assert_array_equal(got, [[1.0, 2.0]])


def _examples() -> tuple[np.ndarray, np.ndarray]:
    data = _expected("example_serving")
    blob, ends = data["examples"].tobytes(), np.cumsum(data["lengths"])
    examples = np.empty(len(ends), dtype=object)
    examples[:] = [blob[a:b] for a, b in zip(np.concatenate([[0], ends[:-1]]), ends)]
    return examples, data["scores"]


def test_an_estimator_style_serving_signature_parses_tf_examples() -> None:
    # Serialized tf.Example in (one ending in a zero byte), ParseExampleV2 in the graph, a
    # classification signature out: TF's scores.
    examples, scores = _examples()
    with gg.Graph().as_default(), gg.Session() as sess:
        meta = gg.saved_model.load(sess, ["serve"], str(FIXTURES / "example_serving"))
        signature = meta.signature_def["serving_default"]
        assert signature.method_name == "tensorflow/serving/classify"
        got = sess.run({k: v.name for k, v in signature.outputs.items()},
                       {signature.inputs["inputs"].name: examples})
    np.testing.assert_allclose(got["scores"], scores, rtol=1e-5, atol=1e-6)
    assert got["classes"][0].tolist() == [b"a", b"b", b"c", b"d"]


def test_gpugraph_run_feeds_a_tfrecord_file_of_examples(tmp_path) -> None:
    import struct
    import subprocess
    import sys

    from gpugraph.io.table import crc32c, mask_crc

    examples, scores = _examples()
    with open(tmp_path / "examples.tfrecord", "wb") as f:
        for record in examples:
            header = struct.pack("<Q", len(record))
            f.write(header + struct.pack("<I", mask_crc(crc32c(header))) + record +
                    struct.pack("<I", mask_crc(crc32c(record))))
    result = subprocess.run(
        [sys.executable, "-m", "gpugraph.cli", "run", str(FIXTURES / "example_serving"),
         "--input", f"inputs={tmp_path / 'examples.tfrecord'}", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o" / "scores.npy"), scores, rtol=1e-5,
                               atol=1e-6)
