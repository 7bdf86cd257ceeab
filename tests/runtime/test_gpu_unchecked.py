"""Index-driven kernels on GPUs follow TF's GPU kernels, which never ask the host whether an
index is in range: an out-of-range gather index reads zeros, an out-of-range scatter index or
segment id is dropped.  So they run inside captured graphs (no host synchronization); on the
CPU the same inputs raise TF's CPU errors (tests/fixtures/ops)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import node, out

import gpugraph as gg
from gpugraph.framework.builders import constant, placeholder

F32, I32 = gg.float32, gg.int32


def _run_on_gpu(build, feeds_of, capture: str, monkeypatch, runs: int = 3):
    """``build()`` on GPU:0 of a virtual GPU, wrapped in enough kernels to make a segment;
    returns every run's result and the captured-graph report."""
    monkeypatch.setenv("GPUGRAPH_CUDA_GRAPHS", capture)
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        with gg.get_default_graph().device("/gpu:0"):
            x = placeholder(F32, [None], name="x")
            scale = out("Exp", out("Mul", x, constant(np.float32(0)), T=F32), T=F32)  # ones
            result = build()
            one = out("Sum", scale, constant(np.int32(0)), T=F32, Tidx=I32, keep_dims=False)
            fetch = out("Mul", result, one, T=F32)
        got = [sess.run(fetch, feeds_of(x, k)) for k in range(runs)]
        return got, sess.cuda_graph_report()


def _ones(x, k):
    return {x: np.full(1, 0, np.float32)}  # Sum of exp(0) over one element: 1


CASES = {
    # GatherNd: [2, 0] reads params[2, 0]; [3, 0] is outside [3, 2]: a zero.
    "GatherNd": (lambda: out("GatherNd", constant(np.arange(6, dtype=np.float32).reshape(3, 2)),
                             constant(np.int32([[2, 0], [3, 0], [-1, 1]])), Tparams=F32,
                             Tindices=I32),
                 [4, 0, 0]),
    # ScatterNd: index 5 (outside [4]) is dropped, index 1 accumulates.
    "ScatterNd": (lambda: out("ScatterNd", constant(np.int32([[1], [5], [1], [-2]])),
                              constant(np.float32([1, 10, 2, 20])), constant(np.int32([4])),
                              T=F32, Tindices=I32),
                  [0, 3, 0, 0]),
    "TensorScatterUpdate": (lambda: out(
        "TensorScatterUpdate", constant(np.float32([1, 2, 3])), constant(np.int32([[0], [3]])),
        constant(np.float32([7, 8])), T=F32, Tindices=I32), [7, 2, 3]),
    "TensorScatterMax": (lambda: out(
        "TensorScatterMax", constant(np.float32([1, 2, 3])), constant(np.int32([[2], [9]])),
        constant(np.float32([5, 8])), T=F32, Tindices=I32), [1, 2, 5]),
    # UnsortedSegmentSum: id 3 is outside [0, 3) (dropped on GPUs), -1 is dropped everywhere.
    "UnsortedSegmentSum": (lambda: out(
        "UnsortedSegmentSum", constant(np.float32([1, 2, 4, 8])), constant(np.int32([0, 3, 0, -1])),
        constant(np.int32(3)), T=F32, Tindices=I32, Tnumsegments=I32), [5, 0, 0]),
    "UnsortedSegmentMax": (lambda: out(
        "UnsortedSegmentMax", constant(np.float32([1, 2, 4])), constant(np.int32([1, 3, 1])),
        constant(np.int32(2)), T=F32, Tindices=I32, Tnumsegments=I32),
        [np.finfo(np.float32).min, 4]),
    # SparseSegmentMeanWithNumSegments: index 7 reads a zero row, id 5 is dropped.
    "SparseSegmentMeanWithNumSegments": (lambda: out(
        "SparseSegmentMeanWithNumSegments", constant(np.float32([2, 4, 6])),
        constant(np.int32([0, 7, 2, 1])), constant(np.int32([0, 0, 1, 5])), constant(np.int32(2)),
        T=F32, Tidx=I32, Tsegmentids=I32, Tnumsegments=I32), [1, 6]),
    # SparseSegmentSumGrad: index 4 is outside output_dim0 = 3 (dropped).
    "SparseSegmentSumGrad": (lambda: out(
        "SparseSegmentSumGrad", constant(np.float32([1, 10])), constant(np.int32([2, 4])),
        constant(np.int32([0, 1])), constant(np.int32(3)), T=F32, Tidx=I32, Tsegmentids=I32),
        [0, 0, 1]),
}


@pytest.mark.parametrize("capture", ["0", "1"])
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_out_of_range_indices_follow_tf_gpu_kernels(op_type, capture, monkeypatch) -> None:
    build, want = CASES[op_type]
    got, report = _run_on_gpu(build, _ones, capture, monkeypatch)
    for value in got:
        np.testing.assert_array_equal(value, np.asarray(want, np.float32))
    assert report["refused"] == []
    if capture == "1":
        assert report["replays"] >= 1, report


def test_a_scatter_into_a_variable_drops_what_is_outside(monkeypatch) -> None:
    # ResourceScatterNdAdd on a GPU variable: [3] is outside the variable's [3]; the variable
    # keeps its buffer (updated in place) and the captured graph keeps replaying.
    monkeypatch.setenv("GPUGRAPH_CUDA_GRAPHS", "1")
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        with gg.get_default_graph().device("/gpu:0"):
            handle = out("VarHandleOp", dtype=F32, shape=gg.TensorShape([3]), shared_name="v")
            init = node("AssignVariableOp", handle, constant(np.float32([1, 2, 3])), dtype=F32)
            x = placeholder(F32, [2], name="x")
            update = node("ResourceScatterNdAdd", handle, constant(np.int32([[1], [3]])),
                          out("Abs", out("Neg", out("Square", x, T=F32), T=F32), T=F32),
                          T=F32, Tindices=I32)
            read = out("ReadVariableOp", handle, dtype=F32)
        sess.run(init)
        for _ in range(4):
            sess.run(update, {x: np.float32([2, 100])})
        value = sess.run(read)
        report = sess.cuda_graph_report()
    np.testing.assert_array_equal(value, [1, 2 + 4 * 4, 3])
    assert report["refused"] == [] and report["replays"] >= 1, report
