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
                                  "batchnorm_rmsprop_resource", "mlp_sparse_gd_ref",
                                  "mlp_softmax_v2_nesterov_resource", "mlp_sparse_adam_ref"])
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


def _updates(xp, dtype, nesterov: bool) -> dict:
    """Each kernels/training.cu update's array-module formula (TF's CPU order), on ``xp``."""
    one = dtype(1)

    def adam(var, m, v, g, b1p, b2p, lr, b1, b2, eps):
        alpha = lr * xp.sqrt(one - b2p) / (one - b1p)
        m += (g - m) * (one - b1)
        v += (g * g - v) * (one - b2)
        step = g * (one - b1) + b1 * m if nesterov else m
        var -= (step * alpha) / (xp.sqrt(v) + eps)

    def momentum(var, accum, g, lr, mom):
        accum *= mom
        accum += g
        var -= g * lr + accum * mom * lr if nesterov else accum * lr

    def gradient_descent(var, g, lr):
        var -= g * lr

    return {"apply_adam": (adam, 3, 6), "apply_momentum": (momentum, 2, 2),
            "apply_gradient_descent": (gradient_descent, 1, 1)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("name", ["apply_adam", "apply_momentum", "apply_gradient_descent"])
def test_update_kernels_match_the_array_formulas(name: str, nesterov: bool, dtype) -> None:
    """One launch per update gives the bits of the array-module body's ~12 launches."""
    import cupy

    from gpugraph.devices.cuda import rawmodule as cuda

    body, n_arrays, n_scalars = _updates(cupy, dtype, nesterov)[name]
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(100_003).astype(dtype) for _ in range(n_arrays + 1)]
    if name == "apply_adam":
        arrays[2] = np.abs(arrays[2])  # v, a running mean of squares
    scalars = [dtype(x) for x in (0.9 ** 3, 0.999 ** 3, 0.01, 0.9, 0.999, 1e-7)[-n_scalars:]]
    if name == "apply_momentum":
        scalars = [dtype(0.01), dtype(0.9)]
    want = [cupy.asarray(a) for a in arrays]
    body(*want, *(cupy.asarray(x) for x in scalars))
    kernel = cuda.elementwise("training", name, cupy)
    got = [cupy.asarray(a) for a in arrays]
    device_scalars = tuple(cupy.asarray(x) for x in scalars)
    assert kernel is not None and kernel.fits(tuple(got), device_scalars)
    flags = [] if name == "apply_gradient_descent" else [int(nesterov)]
    kernel(tuple(got), device_scalars, *flags)
    for w, g in zip(want[:n_arrays], got[:n_arrays], strict=True):
        np.testing.assert_array_equal(g.get(), w.get())


def _every_fusable_op(dtype):
    """x -> a chain through each op the fusion pass knows, with broadcast constants."""
    graph = gg.get_default_graph()
    t = gg.dtypes.as_dtype(dtype)

    def node(op_type, *inputs):
        return graph.create_op(op_type, list(inputs), attrs={
            "T": gg.framework.attrs.to_attr_value(t)}).outputs[0]

    x = gg.placeholder(t, [4, 16], name="x")
    c = gg.constant(np.linspace(0.5, 1.5, 16).astype(dtype), name="c")
    y = x
    for _ in range(20):
        y = node("Tanh", node("Add", node("Mul", y, c), c))
        y = node("RealDiv", node("Sqrt", node("Abs", node("Sub", y, c))), c)
        y = node("Neg", node("Log", node("AddV2", node("Exp", node("Square", y)), c)))
    return x, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_chains_on_cuda_round_as_unfused_kernels(dtype, monkeypatch) -> None:
    values = np.linspace(-2, 2, 64).reshape(4, 16).astype(dtype)
    results, steps = [], []
    for enabled in ("1", "0"):
        monkeypatch.setenv("GPUGRAPH_CUDA_KERNELS", enabled)
        with gg.Graph().as_default():
            x, y = _every_fusable_op(dtype)
            with gg.Session() as sess:
                results.append(sess.run(y, {x: values}))
                steps.append(len(list(sess._plans.values())[0].steps))
                assert "GPU" in sess.placement_report().assignments[y.op.name].device
    np.testing.assert_array_equal(results[0], results[1])
    assert results[0].dtype == dtype and steps[0] < steps[1] // 10


def test_bad_gather_index_on_cuda_reads_zeros_as_tf_gpu() -> None:
    # TF's GPU Gather does not ask the host whether an index is in range (a sync): an
    # out-of-range index reads a zero row there, where TF's CPU kernel raises.
    with gg.Graph().as_default():
        params = gg.constant(np.arange(12, dtype=np.float32).reshape(4, 3), name="params")
        indices = gg.placeholder(gg.dtypes.int32, [None], name="indices")
        axis = gg.constant(np.int32(0), name="axis")
        got = gg.get_default_graph().create_op(
            "GatherV2", [params, indices, axis], name="gather",
            attrs={"Tparams": gg.framework.attrs.to_attr_value(gg.dtypes.float32),
                   "Tindices": gg.framework.attrs.to_attr_value(gg.dtypes.int32),
                   "Taxis": gg.framework.attrs.to_attr_value(gg.dtypes.int32)}).outputs[0]
        with gg.Session() as sess:
            np.testing.assert_array_equal(sess.run(got, {indices: [3, 0]}), [[9, 10, 11],
                                                                              [0, 1, 2]])
            assert "GPU" in sess.placement_report().assignments["gather"].device
            np.testing.assert_array_equal(sess.run(got, {indices: [1, 7]}), [[3, 4, 5],
                                                                              [0, 0, 0]])


def _layouts(cupy, dtype):
    rng = np.random.default_rng(1)

    def m(*shape):
        return cupy.asarray(rng.standard_normal(shape).astype(dtype))

    return [(m(64, 32), m(32, 48)), (m(32, 64).T, m(32, 48)), (m(64, 32), m(48, 32).T),
            (m(7, 1), m(1, 5)), (m(3, 64, 32), m(3, 32, 16)),
            (cupy.swapaxes(m(3, 32, 64), 1, 2), m(3, 32, 16))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_cublas_gives_cupys_matmul_bits(dtype) -> None:
    import cupy  # noqa: PLC0415

    blas = _GPUS[0].blas()
    for a, b in _layouts(cupy, dtype):
        got, want = blas.matmul(a, b), cupy.matmul(a, b)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(cupy.asnumpy(got), cupy.asnumpy(want),
                                      err_msg=f"{a.shape} {a.strides} @ {b.shape} {b.strides}")


def test_direct_cublas_is_captured_and_replays() -> None:
    import cupy  # noqa: PLC0415

    blas, graphs = _GPUS[0].blas(), _GPUS[0].graphs()
    a, b = _layouts(cupy, np.float32)[0]
    blas.matmul(a, b)  # warm-up: the handle and workspace exist before the capture
    graph, result = graphs.capture(lambda: blas.matmul(a, b) * 2)
    for scale in (1, 3):
        a *= scale
        graph.launch()
        np.testing.assert_allclose(cupy.asnumpy(result), cupy.asnumpy(cupy.matmul(a, b) * 2),
                                   rtol=1e-5)


def test_a_dense_training_step_replays_with_its_matmuls_inside() -> None:
    # The MLP fixture: its MatMuls (forward and backward) run inside the captured graphs.
    config = json.loads((FIXTURES / "train" / "mlp_softmax_v2_nesterov_resource" /
                         "mlp_softmax_v2_nesterov_resource.json").read_text())
    directory = FIXTURES / "train" / "mlp_softmax_v2_nesterov_resource"
    data = np.load(directory / "continue.npz")
    with gg.Graph().as_default(), gg.Session() as sess:
        saver = gg.train.import_meta_graph(str(directory / config["meta"]))
        saver.restore(sess, str(directory / config["checkpoint"]))
        train_op = gg.get_collection(config.get("train_op_collection", "train_op"))[0]
        losses = []
        for k in range(len(data["loss"])):
            feeds = {name: data[f"feed/{key}"][k] for key, name in config["feeds"].items()}
            feeds.update(config.get("const_feeds", {}))
            losses.append(sess.run([config["loss"], train_op], feeds)[0])
        report = sess.cuda_graph_report()
    np.testing.assert_allclose(losses, data["loss"], rtol=1e-4)
    assert not [r for r in report["refused"] if r["op"] in ("MatMul", "BatchMatMulV2")], report
    assert report["replays"] >= len(losses) - 2, report


def _conv_family(x, w, dy, strides, padding):
    attrs = {"T": gg.float32, "strides": [1, *strides, 1], "padding": padding}
    fx, fw, fdy = gg.constant(x), gg.constant(w), gg.constant(dy)
    node = gg.get_default_graph().create_op
    to = gg.framework.attrs.to_attr_value
    attrs = {k: to(v) for k, v in attrs.items()}
    return [node("Conv2D", [fx, fw], attrs=attrs).outputs[0],
            node("Conv2DBackpropInput", [gg.constant(np.int32(x.shape)), fw, fdy],
                 attrs=attrs).outputs[0],
            node("Conv2DBackpropFilter", [fx, gg.constant(np.int32(w.shape)), fdy],
                 attrs=attrs).outputs[0]]


@pytest.mark.parametrize(("strides", "padding"), [((1, 1), b"SAME"), ((2, 2), b"SAME"),
                                                  ((2, 1), b"VALID")])
def test_convolutions_on_cuda_match_the_cpu(strides, padding) -> None:
    # cuDNN where the frontend is installed (else im2col + direct cuBLAS): TF's numbers.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 13, 12, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 5, 8)).astype(np.float32)
    out_h = -(-13 // strides[0]) if padding == b"SAME" else (13 - 3) // strides[0] + 1
    out_w = -(-12 // strides[1]) if padding == b"SAME" else (12 - 3) // strides[1] + 1
    dy = rng.standard_normal((4, out_h, out_w, 8)).astype(np.float32)
    results = []
    for device in ("/cpu:0", "/gpu:0"):
        with gg.Graph().as_default():
            with gg.get_default_graph().device(device):
                fetches = _conv_family(x, w, dy, strides, padding)
            with gg.Session() as sess:
                results.append(sess.run(fetches))
                where = sess.placement_report().assignments[fetches[0].op.name].device
                assert device[1:4].upper() in where, where
    for name, got, want in zip(("forward", "input", "filter"), results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=name)


def test_feeds_upload_through_pinned_staging_intact() -> None:
    # Back-to-back uploads through the same staging buffer (each waits for the previous copy).
    import cupy  # noqa: PLC0415

    gpu = _GPUS[0]
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(n).astype(np.float32) for n in (5000, 5000, 3000, 70000)]
    uploaded = [gpu.to_device(a) for a in arrays]
    for a, u in zip(arrays, uploaded):
        assert isinstance(u, cupy.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(u), a)
