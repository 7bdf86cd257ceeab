"""Continuing TF-written training runs: gpugraph's 20 steps against TF's own 20 steps.

Each fixture (scripts/make_train_fixtures.py, real TF 2.21) is a checkpoint saved at step 3 and
TF's continuation from it in a fresh process: the feeds of every step, the loss TF computed at
every step, and every global variable (optimizer slots, global_step, batch-norm statistics)
right after the restore and after the 20 steps.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import gpugraph as gg

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
# train/: MLPs, CNNs, dropout, batch norm (scripts/make_train_fixtures.py); train_sparse/:
# embedding lookups whose row gradients reach the optimizers' sparse updates
# (scripts/make_embedding_fixtures.py).
DIRECTORIES = {case: FIXTURES / kind / case for kind in ("train", "train_sparse")
               for case in json.loads((FIXTURES / kind / "index.json").read_text())["cases"]}
TRAINING = [c for c in DIRECTORIES if c != "no_vars"]
RTOL, ATOL = 1e-5, 1e-6


def _load(case: str) -> tuple[dict, dict]:
    directory = DIRECTORIES[case]
    config = json.loads((directory / f"{case}.json").read_text())
    with np.load(directory / "continue.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return config, arrays


def _import(case: str, config: dict):
    return gg.train.import_meta_graph(str(DIRECTORIES[case] / config["meta"]),
                                      import_scope=config["import_scope"])


def _restore_from_fixture(sess: gg.Session, saver, case: str, arrays: dict) -> None:
    """Restores TF's checkpoint through the graph's own Saver ops; checks it bit for bit."""
    prefix = gg.train.latest_checkpoint(str(DIRECTORIES[case]))
    assert prefix is not None and prefix.endswith("-3")
    saver.restore(sess, prefix)
    values = sess.run({v.op.name: v for v in gg.global_variables()})
    for name, value in values.items():
        np.testing.assert_array_equal(value, arrays[f"start/{name}"], err_msg=name)


def _feeds(config: dict, arrays: dict, step: int) -> dict:
    feeds = {name: arrays[f"feed/{key}"][step] for key, name in config["feeds"].items()}
    feeds.update(config["const_feeds"])
    return feeds


@pytest.mark.parametrize("case", TRAINING)
def test_continuation_matches_tf(case: str) -> None:
    _check_continuation(case)


@pytest.mark.parametrize("case", ["cnn_momentum_ref", "batchnorm_rmsprop_resource",
                                  "embedding_adam_resource", "embedding_ftrl_ref",
                                  "embedding_momentum_resource"])
def test_continuation_on_a_virtual_gpu(case: str) -> None:
    """The same runs placed on a numpy-backed GPU: kernels must keep host and device apart."""
    _check_continuation(case, {"virtual_gpus": 1})


def _check_continuation(case: str, session_config: dict | None = None) -> None:
    config, arrays = _load(case)
    with gg.Graph().as_default(), gg.Session(config=session_config) as sess:
        saver = _import(case, config)
        _restore_from_fixture(sess, saver, case, arrays)
        train_op = gg.get_collection(config["train_op_collection"])[0]
        losses = [sess.run([config["loss"], train_op], _feeds(config, arrays, k))[0]
                  for k in range(config["steps"])]
        np.testing.assert_allclose(losses, arrays["loss"], rtol=RTOL, atol=ATOL)
        names = [v.op.name for v in gg.global_variables()]
        assert sorted(names) == sorted(config["variables"])
        values = sess.run({v.op.name: v for v in gg.global_variables()})
    for name, value in values.items():
        want = arrays[f"end/{name}"]
        assert value.dtype == want.dtype, name
        np.testing.assert_allclose(value, want, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("case", [c for c in TRAINING if c.startswith("batchnorm")])
def test_batchnorm_inference_branch(case: str) -> None:
    """After training, the `training=False` side of the v1 cond uses the moving statistics."""
    config, arrays = _load(case)
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = _import(case, config)
        _restore_from_fixture(sess, saver, case, arrays)
        train_op = gg.get_collection(config["train_op_collection"])[0]
        for k in range(config["steps"]):
            sess.run(train_op, _feeds(config, arrays, k))
        evaluation = config["eval"]
        feeds = {evaluation["feeds"]["x"]: arrays["eval/x"], **evaluation["const_feeds"]}
        out = sess.run(evaluation["fetch"], feeds)
    np.testing.assert_allclose(out, arrays["eval/out"], rtol=RTOL, atol=ATOL)


def test_graph_without_variables() -> None:
    config, arrays = _load("no_vars")
    with gg.Graph().as_default(), gg.Session() as sess:
        _import("no_vars", config)
        for k in range(config["steps"]):
            out = sess.run(config["fetch"], {"x:0": arrays["feed/x"][k]})
            np.testing.assert_allclose(out, arrays["out"][k], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", ["mlp_sparse_adam_ref", "batchnorm_rmsprop_resource",
                                  "mlp_sparse_adam_scoped"])
def test_save_and_resume_round_trip(case: str, tmp_path) -> None:
    """TF checkpoint -> gpugraph continues -> saves -> re-imports its own .meta -> same values."""
    config, arrays = _load(case)
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = _import(case, config)
        _restore_from_fixture(sess, saver, case, arrays)
        train_op = gg.get_collection(config["train_op_collection"])[0]
        for k in range(5):
            sess.run(train_op, _feeds(config, arrays, k))
        saved = sess.run({v.op.name: v for v in gg.global_variables()})
        prefix = saver.save(sess, str(tmp_path / "model"), global_step=8)
    assert prefix == str(tmp_path / "model-8")
    assert gg.train.latest_checkpoint(str(tmp_path)) == prefix
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = gg.train.import_meta_graph(prefix + ".meta")
        saver.restore(sess, prefix)
        again = sess.run({v.op.name: v for v in gg.global_variables()})
    assert sorted(again) == sorted(saved)
    for name, value in saved.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)
