"""Which tensors data parallelism averages (gpugraph.plan.data_parallel), and how the reducer
buckets them (gpugraph.distributed.reducer), checked in one process with a stand-in world."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph import config, errors
from gpugraph.devices.cpu.device import CpuDevice
from gpugraph.distributed.reducer import DENSE, INDICES, VALUES, GradientReducer
from gpugraph.plan.data_parallel import find_gradients

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


def _gradients(path: pathlib.Path) -> dict[str, str]:
    with gg.Graph().as_default() as graph:
        gg.train.import_meta_graph(str(path))
        found = find_gradients(graph.get_operations(), set(), set())
    return {g.tensor.name: g.kind for g in found}


def test_dense_gradients_are_what_leaves_the_gradients_scope() -> None:
    case = FIXTURES / "train" / "mlp_softmax_v2_momentum_ref"
    assert _gradients(case / "mlp_softmax_v2_momentum_ref-3.meta") == {
        f"gradients/{name}_grad/tuple/control_dependency_1:0": DENSE
        for name in ("logits", "MatMul_1", "BiasAdd", "MatMul")}


def test_an_indexed_slices_gives_values_and_indices_not_its_shape() -> None:
    case = FIXTURES / "train_sparse" / "embedding_adam_resource"
    assert _gradients(case / "embedding_adam_resource-3.meta") == {
        "gradients/embedding_lookup_grad/Reshape:0": VALUES,
        "gradients/embedding_lookup_grad/Reshape_1:0": INDICES,
        "gradients/MatMul_grad/tuple/control_dependency_1:0": DENSE,
        "gradients/logits_grad/tuple/control_dependency_1:0": DENSE}


def test_an_update_without_a_gradients_scope_is_refused() -> None:
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "runtime"))
    from helpers import node, out

    with gg.Graph().as_default() as graph:
        var = node("VariableV2", name="w", shape=gg.TensorShape([2]), dtype=gg.float32)
        step = gg.constant(np.float32(0.1), name="lr")
        grad = out("Placeholder", name="my_grads/w", dtype=gg.float32)
        node("ApplyGradientDescent", var.outputs[0], step, grad, name="update_w")
        with pytest.raises(errors.DataParallelError, match="'update_w' .* reads no gradient"):
            find_gradients(graph.get_operations(), set(), set())


class _World:
    """A stand-in for 2 ranks that hold the same gradients: sums are twice the value."""

    size = rank = 0

    def __init__(self) -> None:
        self.size, self.rank, self.calls = 2, 0, []

    def start_allreduce_sum(self, buffer):
        self.calls.append(("sum", buffer.size))
        return None, buffer * 2

    def wait(self, request, what):
        pass

    def allgather_rows(self, array, what):
        self.calls.append(("gather", len(array)))
        return np.concatenate([array, array])


@pytest.mark.parametrize("fusion,sums", [(64 << 20, [("sum", 7)]),
                                         (0, [("sum", 3), ("sum", 4)])])
def test_buckets_fuse_up_to_the_threshold(monkeypatch, fusion, sums) -> None:
    monkeypatch.setenv("GPUGRAPH_FUSION_BYTES", str(fusion))
    config.reload()
    try:
        world, cpu = _World(), CpuDevice()
        reducer = GradientReducer(world)
        a, b = np.arange(3, dtype=np.float32), np.ones((2, 2), np.float32)
        values, indices = np.ones((3, 2), np.float32), np.array([0, 2, 2])
        tickets = [reducer.enqueue("a", DENSE, a, cpu), reducer.enqueue("b", DENSE, b, cpu),
                   reducer.enqueue("v", VALUES, values, cpu),
                   reducer.enqueue("i", INDICES, indices, cpu)]
        got = [reducer.result(t) for t in tickets]
    finally:
        monkeypatch.delenv("GPUGRAPH_FUSION_BYTES")
        config.reload()
    assert world.calls == [*sums, ("gather", 3), ("gather", 3)]
    np.testing.assert_array_equal(got[0], a)  # (a + a) / 2
    np.testing.assert_array_equal(got[1], b)
    np.testing.assert_array_equal(got[2], np.concatenate([values, values]) / 2)
    np.testing.assert_array_equal(got[3], [0, 2, 2, 0, 2, 2])
