"""Data parallelism on a real CUDA GPU: gradients summed by NCCL on the device (one rank per GPU;
NCCL refuses two ranks on one GPU, so a 1-GPU machine runs one rank through the same path)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gpugraph.devices import discover

pytest.importorskip("mpi4py")
_GPUS = [d for d in discover().gpus if d.kind == "cuda"]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep +
                       os.environ.get("PATH", ""))
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not _GPUS, reason="needs CuPy and a CUDA device"),
              pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec")]
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_nccl_ranks_continue_as_tf(tmp_path) -> None:
    ranks = min(len(_GPUS), 2)
    out = tmp_path / "out.npz"
    case = "mlp_softmax_v2_adam_ref"
    env = {k: v for k, v in os.environ.items() if k != "GPUGRAPH_VIRTUAL_GPUS"}
    result = subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable,
                             str(ROOT / "tests" / "distributed" / "continue_sharded.py"),
                             str(ROOT / "tests" / "fixtures" / "train"), case, str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    want = np.load(ROOT / "tests" / "fixtures" / "train" / case / "continue.npz")
    np.testing.assert_allclose(np.load(out)["losses"], want["loss"], rtol=1e-5, atol=1e-6)
