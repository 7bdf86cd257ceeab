"""Crash safety: a saving process killed with SIGKILL at any moment leaves checkpoints that
restore completely and bit for bit.

``saver_crash_child.py`` forks saving processes over ~3.3 MB of variables (ref and resource,
``Saver(max_to_keep=2)``; each step's values are a function of the step) and kills them: once
right before *every* file-system mutation of a save that also deletes an old checkpoint
(instrumented), and at random moments of a save loop.  After each kill, ``latest_checkpoint``
must be None or name a checkpoint that restores bit-exactly to its step's values, and so must
every checkpoint the state file still lists; the latest ``.meta`` must import.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from saver_crash_child import WARMUP, value
from saver_support import FIXTURES

import gpugraph as gg
from gpugraph.train.meta_graph import import_scoped_meta_graph

HERE = pathlib.Path(__file__).resolve().parent
META = FIXTURES / "crash_model" / "vars.meta"
N_RANDOM = 10

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL")


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("crash")
    path = [str(HERE.parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    # The child forks after its session is built, and CUDA does not survive a fork: it runs
    # on the CPU alone, which is all a test of checkpoint files needs.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), GPUGRAPH_VIRTUAL_GPUS="0")
    proc = subprocess.run([sys.executable, str(HERE / "saver_crash_child.py"), str(out),
                           str(META), "20260101", str(N_RANDOM)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def restorer():
    graph = gg.Graph()
    with graph.as_default():
        import_scoped_meta_graph(str(META))
        saver = gg.train.Saver(max_to_keep=2)
    # On the CPU, as the child saved them (a GPU here would be a device change, refused).
    with gg.Session(graph=graph, config={"virtual_gpus": 0}) as sess:
        yield graph, saver, sess


def _check_restores(restorer, prefix: str) -> None:
    graph, saver, sess = restorer
    step = int(re.search(r"-(\d+)$", prefix).group(1))
    saver.restore(sess, prefix)
    variables = graph.get_collection("variables")
    got = sess.run({v.op.name: v for v in variables})
    for var in variables:
        want = value(var.op.name, var.shape.as_list(), var.dtype.base_dtype.as_numpy_dtype, step)
        assert got[var.op.name].dtype == want.dtype
        np.testing.assert_array_equal(got[var.op.name], want, err_msg=f"{prefix}: {var.op.name}")


def _check_directory(restorer, directory: str) -> int | None:
    """The invariants after a kill; returns the latest checkpoint's step (None: none)."""
    latest = gg.train.latest_checkpoint(directory)
    if latest is None:
        return None
    state = gg.train.get_checkpoint_state(directory)
    assert state.model_checkpoint_path == latest
    for prefix in state.all_model_checkpoint_paths:
        _check_restores(restorer, prefix)
    with gg.Graph().as_default():
        gg.train.import_meta_graph(latest + ".meta")
    return int(latest.rsplit("-", 1)[1])


def test_killed_before_every_file_operation(killed, restorer) -> None:
    count = killed["count"]
    assert count >= 10, "a save that deletes an old checkpoint does more file operations"
    steps = []
    for result in killed["results"]:
        name = os.path.basename(result["dir"])
        if not name.startswith("at"):
            continue
        k = int(name[2:])
        if k <= count:
            assert result["signal"] == signal.SIGKILL, result
        else:
            assert result["exit"] == 0, result  # the last scenario's save completes
        steps.append(_check_directory(restorer, result["dir"]))
    # Every kill leaves the warm-up's or the new checkpoint, and both outcomes occur.
    assert set(steps) == {WARMUP, WARMUP + 1}
    assert steps == sorted(steps)


def test_killed_at_random_moments(killed, restorer) -> None:
    randoms = [r for r in killed["results"] if "random" in r["dir"]]
    assert len(randoms) == N_RANDOM
    for result in randoms:
        assert result["signal"] == signal.SIGKILL, result
        _check_directory(restorer, result["dir"])
