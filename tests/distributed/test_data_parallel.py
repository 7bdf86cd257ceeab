"""Data parallelism over MPI ranks, as a user runs it: ``mpiexec -n 2`` (MPICH's wheel, from the
test extra) on TF-written runs.  Two ranks, each fed half of every recorded batch, continue the
run as TF itself continued it on the whole batch in one process."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import gpugraph as gg

pytest.importorskip("mpi4py")
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep +
                       os.environ.get("PATH", ""))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install gpugraph[mpi])")


def _mpiexec(n: int, *command: str, env: dict | None = None, timeout: int = 120
             ) -> subprocess.CompletedProcess:
    return subprocess.run([MPIEXEC, "-n", str(n), *command], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**os.environ, **(env or {})})


CASES = [("train", "mlp_softmax_v2_gd_resource"), ("train", "mlp_softmax_v2_momentum_ref"),
         ("train", "mlp_softmax_v2_adam_ref"), ("train_sparse", "embedding_adam_resource"),
         ("train_sparse", "embedding_gd_ref"), ("devices", "ps_worker")]


@pytest.mark.parametrize("family,case", CASES, ids=[c for _, c in CASES])
def test_two_ranks_continue_as_tf_on_the_whole_batch(tmp_path, family, case) -> None:
    # GD, Momentum, Adam on dense layers; Adam (Unique + UnsortedSegmentSum over the
    # IndexedSlices) and GD (ScatterSub) on an embedding; a between-graph replication graph
    # (/job:ps variables, /job:worker compute: folded onto each rank's devices).  20 steps,
    # every loss and every variable at the end as TF's single-process continuation, the ranks
    # bit-identical.
    out = tmp_path / "out.npz"
    result = _mpiexec(2, sys.executable, str(HERE / "continue_sharded.py"),
                      str(FIXTURES / family), case, str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    got, want = np.load(out), np.load(FIXTURES / family / case / "continue.npz")
    np.testing.assert_allclose(got["losses"], want["loss"], rtol=1e-5, atol=1e-6)
    ends = [k for k in got.files if k.startswith("end/")]
    assert ends and len(ends) == len([k for k in want.files if k.startswith("end/")])
    for key in ends:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert len(set(got["fingerprints"])) == 1  # both ranks hold the same bits


def test_on_virtual_gpus_too(tmp_path) -> None:
    # Gradients on (virtual) GPUs go through the device's collectives (host path here).
    out = tmp_path / "out.npz"
    result = _mpiexec(2, sys.executable, str(HERE / "continue_sharded.py"),
                      str(FIXTURES / "train"), "mlp_softmax_v2_momentum_ref", str(out),
                      "--gpus", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    want = np.load(FIXTURES / "train" / "mlp_softmax_v2_momentum_ref" / "continue.npz")
    np.testing.assert_allclose(np.load(out)["losses"], want["loss"], rtol=1e-5, atol=1e-6)


def _resume_args(case_dir: pathlib.Path, feeds: pathlib.Path, out: pathlib.Path) -> list[str]:
    return ["resume", str(case_dir), "--steps", "20", "--batch-size", "8", "--no-shuffle",
            "--no-progress", "--feed", f"ids:0={feeds}:ids", "--feed", f"y:0={feeds}:y",
            "--out", str(out)]


def test_resume_data_parallel_under_mpiexec_and_nproc(tmp_path) -> None:
    # `mpiexec -n 2 gpugraph resume --data-parallel` (and `--nproc 2`, which starts it) on the
    # embedding run: --batch-size 8 stays the global batch, each rank takes 4 rows of TF's
    # recorded batches; the checkpoint rank 0 writes holds TF's variables after 20 steps.
    case = FIXTURES / "train_sparse" / "embedding_adam_resource"
    want = np.load(case / "continue.npz")
    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, ids=want["feed/ids"].reshape(-1, 4), y=want["feed/y"].reshape(-1))
    run = tmp_path / "run"
    shutil.copytree(case, run)
    cli = [sys.executable, "-m", "gpugraph.cli"]
    result = _mpiexec(2, *cli, *_resume_args(run, feeds, tmp_path / "mpi"), "--data-parallel")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained to global_step 23") == 1  # rank 0 alone reports
    assert f"loss {want['loss'][0]:.4f} -> {want['loss'][-1]:.4f}" in result.stdout
    reader = gg.train.load_checkpoint(str(tmp_path / "mpi" / "model-23"))
    for name in ("embedding/table", "embedding/table/Adam", "dense/kernel", "dense/bias"):
        np.testing.assert_allclose(reader.get_tensor(name), want[f"end/{name}"], rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    launched = subprocess.run([*cli, *_resume_args(run, feeds, tmp_path / "nproc"),
                               "--nproc", "2"], capture_output=True, text=True, cwd=ROOT,
                              timeout=120)
    assert launched.returncode == 0, launched.stderr[-3000:]
    again = gg.train.load_checkpoint(str(tmp_path / "nproc" / "model-23"))
    for name in ("embedding/table", "dense/kernel"):
        np.testing.assert_array_equal(again.get_tensor(name), reader.get_tensor(name))


def test_a_rank_that_raises_ends_every_rank(tmp_path) -> None:
    # Rank 1 raises at step 5: every rank exits non-zero at once (MPI_Abort), naming rank 1;
    # the checkpoint rank 0 saved at step 6 is whole.
    start = time.monotonic()
    result = _mpiexec(2, sys.executable, str(HERE / "ranks_fail.py"), "raise", str(tmp_path),
                      timeout=90)
    assert result.returncode != 0 and time.monotonic() - start < 60
    assert "rank 1 of 2 failed" in result.stderr and "fails on purpose" in result.stderr
    assert gg.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model-6")
    assert gg.train.load_checkpoint(str(tmp_path / "model-6")).get_tensor("dense/kernel").shape \
        == (20, 16)


def test_a_rank_that_hangs_times_out_the_others(tmp_path) -> None:
    # Rank 1 stops calling collectives: rank 0's all-reduce gives up after the timeout, names
    # itself and the gradients it waited for, and ends every rank.
    result = _mpiexec(2, sys.executable, str(HERE / "ranks_fail.py"), "hang", str(tmp_path),
                      env={"GPUGRAPH_COLLECTIVE_TIMEOUT": "3"}, timeout=90)
    assert result.returncode != 0
    assert "DataParallelError: rank 0 of 2: the all-reduce of gradients" in result.stderr
    assert "did not complete within 3 s" in result.stderr


@pytest.mark.parametrize("mode,message", [
    ("differ", "rank 1 holds other values than rank 0 for 1 variable(s): dense/kernel"),
    ("graph", "rank 1 runs a different graph than rank 0")])
def test_ranks_must_start_from_the_same_state(tmp_path, mode, message) -> None:
    result = _mpiexec(2, sys.executable, str(HERE / "ranks_fail.py"), mode, str(tmp_path))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-3000:]


def test_broadcast_variables_makes_the_ranks_agree(tmp_path) -> None:
    result = _mpiexec(2, sys.executable, str(HERE / "ranks_fail.py"), "broadcast", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model-6.index").exists()


def test_resume_refuses_ranks_with_different_checkpoints(tmp_path) -> None:
    # MPMD launch: rank 1 is pointed at another run; refused before any step, naming both.
    case = FIXTURES / "train" / "mlp_softmax_v2_gd_resource"
    other = FIXTURES / "train" / "mlp_softmax_v2_gd_ref"
    data = tmp_path / "data.npz"
    arrays = np.load(case / "continue.npz")
    np.savez(data, x=arrays["feed/x"].reshape(-1, 20), y=arrays["feed/y"].reshape(-1, 3))
    cli = [sys.executable, "-m", "gpugraph.cli", "resume"]
    tail = ["--steps", "2", "--batch-size", "8", "--no-progress", "--data-parallel",
            "--feed", f"x:0={data}:x", "--feed", f"y:0={data}:y"]
    result = subprocess.run(
        [MPIEXEC, "-n", "1", *cli, str(case), "--out", str(tmp_path / "a"), *tail, ":",
         "-n", "1", *cli, str(other), "--out", str(tmp_path / "b"), *tail],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode != 0
    assert "the ranks would not start from the same files" in result.stderr, result.stderr
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").glob("model-*"))
