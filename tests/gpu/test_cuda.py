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
        train_op = gg.get_collection("train_op")[0]
        losses = [sess.run(["loss:0", train_op], {"x:0": data["feed/x"][k],
                                                   "y:0": data["feed/y"][k]})[0]
                  for k in range(steps)]
        report = sess.placement_report()
    assert any("GPU" in a.device for a in report.assignments.values())
    return losses, data["loss"][:steps]


@pytest.mark.parametrize("case", ["mlp_sparse_adam_resource", "cnn_momentum_ref",
                                  "batchnorm_rmsprop_resource"])
def test_training_on_cuda_matches_tf(case: str) -> None:
    losses, want = _continue(FIXTURES / "train", case)
    np.testing.assert_allclose(losses, want, rtol=1e-4)  # GPU reductions reorder sums


@pytest.mark.skipif(len(_GPUS) < 2, reason="needs two CUDA devices")
def test_towers_on_two_cuda_gpus() -> None:
    losses, want = _continue(FIXTURES / "devices", "towers_2gpu")
    np.testing.assert_allclose(losses, want, rtol=1e-4)
