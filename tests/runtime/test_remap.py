"""The plan's remapper (gpugraph/plan/remap.py): fused chains give the separate ops' exact bits.

Each graph runs twice, with the remapper and without it (the pass replaced by one that
returns the steps unchanged); the outputs must be bit-identical, and the plan's step labels
show whether the chain really ran as one step.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import out

import gpugraph as gg
from gpugraph import errors
from gpugraph.plan import build as plan_module
from gpugraph.devices.cpu import conv as cpu_conv
from gpugraph.devices.cpu import loops as cpu_loops
from gpugraph.devices.cpu import threads as cpu_threads

pytestmark = pytest.mark.skipif(not cpu_conv.available(np, np.zeros(1, np.float32)),
                                reason="llvmlite unavailable or not x86-64")


def _run(build, remapped: bool, monkeypatch) -> tuple[list[np.ndarray], list[str]]:
    """Builds a fresh graph with ``build()`` -> (fetches, feeds), runs it once; returns the
    values and the labels of the plan's fused steps."""
    with monkeypatch.context() as patch:
        if not remapped:
            patch.setattr(plan_module, "remap", lambda steps, keep, make_step: steps)
        with gg.Graph().as_default():
            fetches, feeds = build()
            with gg.Session(config={"virtual_gpus": 0}) as sess:
                values = [np.array(v) for v in sess.run(fetches, feeds)]
                (plan,) = sess._plans.values()
    return values, [s.label for s in plan.steps if s.label.endswith("as one kernel")]


def _both(build, monkeypatch) -> tuple[list[np.ndarray], list[str]]:
    fused, labels = _run(build, True, monkeypatch)
    plain, plain_labels = _run(build, False, monkeypatch)
    assert plain_labels == []
    for a, b in zip(fused, plain, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    return fused, labels


def _fed(*values: np.ndarray) -> tuple[list, dict]:
    holders = [out("Placeholder", dtype=gg.dtypes.as_dtype(v.dtype)) for v in values]
    return holders, dict(zip(holders, values, strict=True))


def _conv_inputs(dtype, cout=17, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 7, 6, 5)).astype(dtype)
    x[0, 3, 3, :] = np.nan  # NaN sums: the Relu keeps them
    w = rng.standard_normal((3, 3, 5, cout)).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype)
    return x, w, bias


def _conv_chain(x, w, bias, relu=True, strides=(1, 1), padding=b"SAME", fetch_conv=False,
                data_format=b"NHWC"):
    def build():
        (xs, ws, bs), feeds = _fed(x, w, bias)
        t = gg.dtypes.as_dtype(x.dtype)
        conv = out("Conv2D", xs, ws, T=t, strides=[1, *strides, 1], padding=padding,
                   data_format=data_format, name="conv")
        y = out("BiasAdd", conv, bs, T=t, data_format=data_format, name="add")
        if relu:
            y = out("Relu", y, T=t, name="relu")
        return ([y, conv] if fetch_conv else [y]), feeds

    return build


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize(("strides", "padding"), [((1, 1), b"SAME"), ((2, 1), b"VALID")])
def test_conv_bias_relu_runs_as_one_step_with_the_same_bits(dtype, relu, strides, padding,
                                                            monkeypatch) -> None:
    x, w, bias = _conv_inputs(dtype)
    (y,), labels = _both(_conv_chain(x, w, bias, relu, strides, padding), monkeypatch)
    chain = "Conv2D 'conv' -> BiasAdd 'add'" + (" -> Relu 'relu'" if relu else "")
    assert labels == [chain + " as one kernel"]
    assert np.isnan(y).any() and (not relu or (y == 0).any())
    if not relu:
        assert (y < 0).any()


def test_conv_epilogue_is_the_kernel_that_runs(monkeypatch) -> None:
    calls = []
    real = cpu_conv.gather_gemm_classes

    def spy(*args, **kwargs):
        calls.append((kwargs.get("bias") is not None, kwargs.get("relu", False)))
        return real(*args, **kwargs)

    monkeypatch.setattr(cpu_conv, "gather_gemm_classes", spy)
    _run(_conv_chain(*_conv_inputs(np.float32)), True, monkeypatch)
    assert calls == [(True, True)]


@pytest.mark.parametrize("case", ["fetched", "nchw", "two readers"])
def test_conv_chains_others_can_see_stay_apart(case, monkeypatch) -> None:
    x, w, bias = _conv_inputs(np.float32)
    if case == "fetched":
        build = _conv_chain(x, w, bias, fetch_conv=True)
    elif case == "nchw":
        build = _conv_chain(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), w, bias,
                            data_format=b"NCHW")
    else:
        def build():
            (xs, ws, bs), feeds = _fed(x, w, bias)
            conv = out("Conv2D", xs, ws, T=gg.dtypes.float32, strides=[1, 1, 1, 1],
                       padding=b"SAME")
            added = out("BiasAdd", conv, bs, T=gg.dtypes.float32)
            return [out("Relu", added, T=gg.dtypes.float32),
                    out("Neg", added, T=gg.dtypes.float32)], feeds
    values, labels = _both(build, monkeypatch)
    if case == "two readers":  # Conv2D -> BiasAdd still fuses; the Relu stays apart
        assert labels == ["Conv2D 'Conv2D' -> BiasAdd 'BiasAdd' as one kernel"]
    elif case == "fetched":  # the fetched convolution stays apart; BiasAdd -> Relu fuses
        assert labels == ["BiasAdd 'add' -> Relu 'relu' as one kernel"]
    else:
        assert labels == []


def test_fused_conv_falls_back_to_the_separate_kernels(monkeypatch) -> None:
    x, w, bias = (a.astype(np.float16) for a in _conv_inputs(np.float32))  # no direct kernel
    (y,), labels = _both(_conv_chain(x, w, bias), monkeypatch)
    assert labels and y.dtype == np.float16


def test_fused_conv_reports_a_bad_bias_as_bias_add_does(monkeypatch) -> None:
    x, w, _ = _conv_inputs(np.float32)
    build = _conv_chain(x, w, np.zeros(4, np.float32))
    with pytest.raises(errors.InvalidArgumentError, match="as many biases") as info:
        _run(build, True, monkeypatch)
    assert info.value.op.name == "add"


def _dense_chain(value, bias, fetch_sum=False):
    def build():
        (vs, bs), feeds = _fed(value, bias)
        t = gg.dtypes.as_dtype(value.dtype)
        added = out("BiasAdd", vs, bs, T=t, name="add")
        y = out("Relu", added, T=t, name="relu")
        return ([y, added] if fetch_sum else [y]), feeds

    return build


def _dense_inputs(dtype):
    rng = np.random.default_rng(4)
    value = rng.standard_normal((9, 11)).astype(dtype)
    value[2, 3] = np.nan  # the Relu keeps a NaN
    bias = rng.standard_normal(11).astype(dtype)
    bias[4] = -0.0
    value[:, 4] = -0.0  # -0 + -0 = -0: the Relu makes it +0
    return value, bias


@pytest.mark.skipif(cpu_loops.get("bias_add_relu", np) is None, reason="numba unavailable")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_add_relu_runs_as_one_step_with_the_same_bits(dtype, split, monkeypatch) -> None:
    (y,), labels = _both(_dense_chain(*_dense_inputs(dtype)), monkeypatch)
    assert (y[:, 4] == 0).all()
    assert labels == ["BiasAdd 'add' -> Relu 'relu' as one kernel"]
    assert np.isnan(y).any() and (y == 0).any() and not np.signbit(y[~np.isnan(y)]).any()


@pytest.mark.parametrize("case", ["fetched", "nchw"])
def test_bias_add_others_can_see_stays_apart(case, monkeypatch) -> None:
    value, bias = _dense_inputs(np.float32)
    if case == "fetched":
        _, labels = _both(_dense_chain(value, bias, fetch_sum=True), monkeypatch)
    else:  # channels-first: the loop does not serve it
        def build():
            (xs, bs), feeds = _fed(np.ones((2, 11, 3, 3), np.float32), bias)
            added = out("BiasAdd", xs, bs, T=gg.dtypes.float32, data_format=b"NCHW")
            return [out("Relu", added, T=gg.dtypes.float32)], feeds
        _, labels = _both(build, monkeypatch)
    assert labels == []


def test_fused_bias_add_relu_falls_back_and_reports_a_bad_bias(monkeypatch) -> None:
    value, bias = (a.astype(np.float16) for a in _dense_inputs(np.float32))  # no half loop
    (y,), labels = _both(_dense_chain(value, bias), monkeypatch)
    assert labels and y.dtype == np.float16
    with pytest.raises(errors.InvalidArgumentError, match="as many biases") as info:
        _run(_dense_chain(value, bias[:3]), True, monkeypatch)
    assert info.value.op.name == "add"


def _pool_grad_chain(x, dy, features=None):
    def build():
        pooled = x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2,
                           x.shape[3]).max(axis=(2, 4))
        values = (x, pooled, dy) if features is None else (x, pooled, dy, features)
        holders, feeds = _fed(*values)
        t = gg.dtypes.as_dtype(x.dtype)
        grad = out("MaxPoolGrad", *holders[:3], T=t, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                   padding=b"VALID", name="pool_grad")
        return [out("ReluGrad", grad, holders[3 if features is not None else 0], T=t,
                    name="relu_grad")], feeds

    return build


@pytest.fixture(params=["alone", "split"])
def split(request, monkeypatch):
    """Runs once on the plan's thread and once split over three threads (however small)."""
    if request.param == "split":
        monkeypatch.setattr(cpu_threads, "wants_cores", lambda steps: True)
        monkeypatch.setattr(cpu_threads, "_SPLIT_MIN_ELEMENTS", 0)
        monkeypatch.setattr(cpu_loops, "_SPLIT_MIN", 0)
        monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "3")
    return request.param


@pytest.mark.skipif(cpu_loops.get("relu_grad", np) is None, reason="numba unavailable")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_grad_relu_grad_runs_as_one_step_with_the_same_bits(dtype, split,
                                                                      monkeypatch) -> None:
    rng = np.random.default_rng(1)
    x = np.maximum(rng.standard_normal((3, 4, 6, 5)), 0).astype(dtype)  # a Relu's output
    x[0, :2, :2, 0] = 0  # a window of zeros: its gradient is masked to -0 or +0
    dy = rng.standard_normal((3, 2, 3, 5)).astype(dtype)
    dy[0, 0, 0, 0] = -1.5
    dy[1, 0, 0, 1] = np.nan
    x[1, :2, :2, 1] = 0
    (g,), labels = _both(_pool_grad_chain(x, dy), monkeypatch)
    assert labels == ["MaxPoolGrad 'pool_grad' -> ReluGrad 'relu_grad' as one kernel"]
    assert np.signbit(g[0, 0, 0, 0]) and g[0, 0, 0, 0] == 0
    assert np.isnan(g[1, 0, 0, 1])


def test_relu_grad_of_other_features_stays_apart(monkeypatch) -> None:
    rng = np.random.default_rng(2)
    x = np.abs(rng.standard_normal((2, 4, 4, 3))).astype(np.float32)
    dy = rng.standard_normal((2, 2, 2, 3)).astype(np.float32)
    features = rng.standard_normal(x.shape).astype(np.float32)
    _, labels = _both(_pool_grad_chain(x, dy, features), monkeypatch)
    assert labels == []


# --- a dense layer's weight gradient made and applied by its optimizer update ------------------
def _continue_mlp(case: str, fused: bool, monkeypatch) -> tuple[dict, list[str], list[str]]:
    """TF's MLP fixture continued 3 steps in a plan that owns the cores (as one with
    convolutions does), with the remapper or without it; -> (variables, fused labels, which
    fused paths ran: "blocks" or "momentum", once per update)."""
    import json
    import pathlib

    from gpugraph.ops.cpu import training as training_ops

    directory = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "train" / case
    config = json.loads((directory / f"{case}.json").read_text())
    data = np.load(directory / "continue.npz")
    blocked = []
    with monkeypatch.context() as patch:
        patch.setattr(cpu_threads, "wants_cores", lambda steps: True)
        patch.setattr(training_ops, "_BLOCKED_MIN_ELEMENTS", 0)  # the fixtures' layers are small
        real = training_ops._by_row_blocks
        patch.setattr(training_ops, "_by_row_blocks",
                      lambda *a: blocked.append("blocks") or real(*a))
        fused_momentum = cpu_conv.gather_gemm_momentum  # momentum's own fused path
        patch.setattr(cpu_conv, "gather_gemm_momentum",
                      lambda *a: blocked.append("momentum") or fused_momentum(*a))
        if not fused:
            patch.setattr(plan_module, "remap", lambda steps, keep, make_step: steps)
        with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 0}) as sess:
            saver = gg.train.import_meta_graph(str(directory / config["meta"]))
            saver.restore(sess, str(directory / config["checkpoint"]))
            train_op = gg.get_collection("train_op")[0]
            for k in range(3):
                sess.run(train_op, {name: data[f"feed/{key}"][k]
                                    for key, name in config["feeds"].items()})
            values = sess.run({v.op.name: v for v in gg.global_variables()})
            labels = [s.label for plan in sess._plans.values() for s in plan.steps
                      if s.label.endswith("as one kernel")]
    return values, labels, blocked


@pytest.mark.parametrize("case", [
    "mlp_sparse_gd_ref", "mlp_sparse_momentum_resource", "mlp_sparse_nesterov_ref",
    "mlp_sparse_adam_resource", "mlp_sparse_rmsprop_ref", "mlp_sparse_rmsprop_centered_resource",
    "mlp_sparse_adagrad_ref", "mlp_softmax_v2_adam_ref"])
def test_weight_gradient_into_update_has_the_separate_ops_bits(case, monkeypatch) -> None:
    fused, labels, calls = _continue_mlp(case, True, monkeypatch)
    plain, plain_labels, _ = _continue_mlp(case, False, monkeypatch)
    assert plain_labels == [] and calls
    # Momentum makes the gradient in the kernel's registers; the others a block at a time.
    assert set(calls) == {"momentum" if "momentum" in case or "nesterov" in case else "blocks"}
    assert any(label.startswith("MatMul 'gradients/") and "Apply" in label for label in labels)
    assert fused.keys() == plain.keys()
    for name, value in fused.items():
        np.testing.assert_array_equal(value, plain[name], err_msg=name)


def test_weight_gradient_someone_reads_is_not_absorbed(monkeypatch) -> None:
    """A fetched (or otherwise read) gradient must exist: its MatMul stays a step of its own."""
    with gg.Graph().as_default():
        a, dy = (out("Placeholder", dtype=gg.dtypes.float32, name=n) for n in ("a", "dy"))
        grad = out("MatMul", a, dy, T=gg.dtypes.float32, transpose_a=True, transpose_b=False,
                   name="grad")
        var = out("VariableV2", dtype=gg.dtypes.float32, shape=gg.TensorShape([3, 2]), name="var")
        init = out("Assign", var, gg.constant(np.zeros((3, 2), np.float32)),
                   T=gg.dtypes.float32, name="init")
        step = out("ApplyGradientDescent", var, gg.constant(np.float32(0.5)), grad,
                   T=gg.dtypes.float32, name="apply")
        feeds = {a: np.ones((4, 3), np.float32), dy: np.ones((4, 2), np.float32)}
        with monkeypatch.context() as patch, gg.Session(config={"virtual_gpus": 0}) as sess:
            patch.setattr(cpu_threads, "wants_cores", lambda steps: True)
            sess.run(init)
            got_grad, got_var = sess.run([grad, step], feeds)
            labels = [s.label for p in sess._plans.values() for s in p.steps
                      if s.label.endswith("as one kernel")]
    assert labels == []
    np.testing.assert_array_equal(got_grad, np.full((3, 2), 4, np.float32))
    np.testing.assert_array_equal(got_var, np.full((3, 2), -2, np.float32))
