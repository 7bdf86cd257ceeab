"""On real CUDA GPUs through CuPy (skipped cleanly where CuPy or a CUDA device is missing)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph.devices import discover

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
_GPUS = [d for d in discover().gpus if d.kind == "cuda"]

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not _GPUS, reason="needs CuPy and a CUDA device")]


def _continue(directory: pathlib.Path, case: str, steps: int = 20) -> tuple[list, np.ndarray]:
    config = json.loads((directory / case / f"{case}.json").read_text())
    data = np.load(directory / case / "continue.npz")
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = gg.train.import_meta_graph(str(directory / case / config["meta"]))
        saver.restore(sess, str(directory / case / config["checkpoint"]))
        train_op = gg.get_collection(config.get("train_op_collection", "train_op"))[0]
        losses = []
        for k in range(min(steps, len(data["loss"]))):
            feeds = {name: data[f"feed/{key}"][k] for key, name in config["feeds"].items()}
            feeds.update(config.get("const_feeds", {}))
            losses.append(sess.run([config["loss"], train_op], feeds)[0])
        report = sess.placement_report()
        if len(losses) == len(data["loss"]):  # TF's whole continuation ran: compare the end
            for v in gg.global_variables():
                np.testing.assert_allclose(sess.run(v), data[f"end/{v.op.name}"], rtol=1e-4,
                                           atol=1e-5, err_msg=v.op.name)
    assert any("GPU" in a.device for a in report.assignments.values())
    return losses, data["loss"][:len(losses)]


@pytest.mark.parametrize("case", ["mlp_sparse_adam_resource", "cnn_momentum_ref",
                                  "batchnorm_rmsprop_resource"])
def test_training_on_cuda_matches_tf(case: str) -> None:
    losses, want = _continue(FIXTURES / "train", case)
    np.testing.assert_allclose(losses, want, rtol=1e-4)  # GPU reductions reorder sums


@pytest.mark.parametrize("case", ["rnn_lstm_adam_v1", "rnn_lstm_adam_v2", "cond_in_loop_v1"])
def test_loops_on_cuda_match_tf(case: str) -> None:
    losses, want = _continue(FIXTURES / "control_flow", case)
    np.testing.assert_allclose(losses, want, rtol=1e-4)


@pytest.mark.skipif(len(_GPUS) < 2, reason="needs two CUDA devices")
def test_towers_on_two_cuda_gpus() -> None:
    losses, want = _continue(FIXTURES / "devices", "towers_2gpu")
    np.testing.assert_allclose(losses, want, rtol=1e-4)
