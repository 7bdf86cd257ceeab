"""Edge cases of recently added kernels, each checked against what TF 2.21 does (values and
messages observed with TF; see the comments)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import node, out

import gpugraph as gg
from gpugraph import errors

F32 = gg.dtypes.float32


@pytest.fixture
def graph():
    with gg.Graph().as_default() as g:
        yield g


def _run(fetch, feeds=None, **config):
    with gg.Session(config=config or None) as sess:
        return sess.run(fetch, feeds)


@pytest.mark.parametrize("loops", ["1", "0"])
def test_relu_grad_multiplies_like_tf(graph, loops, monkeypatch) -> None:
    # TF: gradients * (features > 0), so NaN/inf gradients stay NaN and -1 * 0 is -0.
    monkeypatch.setenv("GPUGRAPH_CPU_LOOPS", loops)
    g = gg.constant(np.array([np.nan, np.inf, -1, 2, 3], np.float32))
    f = gg.constant(np.array([-1, -1, -1, 0, 1], np.float32))
    got = _run(out("ReluGrad", g, f, T=F32))
    np.testing.assert_array_equal(got, [np.nan, np.nan, -0.0, 0.0, 3])
    assert np.signbit(got[2]) and not np.signbit(got[3])


@pytest.mark.parametrize("loops", ["1", "0"])
def test_optimizer_scalars_must_be_scalars(graph, loops, monkeypatch) -> None:
    # TF: InvalidArgumentError "lr is not a scalar: [2]" (whatever the update would do).
    monkeypatch.setenv("GPUGRAPH_CPU_LOOPS", loops)
    var = out("VariableV2", shape=gg.TensorShape([2]), dtype=F32)
    accum = out("VariableV2", shape=gg.TensorShape([2]), dtype=F32)
    inits = [node("Assign", v, gg.constant(np.zeros(2, np.float32)), T=F32) for v in (var, accum)]
    update = node("ApplyMomentum", var, accum, gg.constant(np.ones(2, np.float32)),
                  gg.constant(np.ones(2, np.float32)), gg.constant(np.float32(0.9)), T=F32)
    with gg.Session() as sess:
        sess.run(inits)
        with pytest.raises(errors.InvalidArgumentError, match=r"lr is not a scalar: \[2\]"):
            sess.run(update)


def test_top_k_of_the_smallest_integer(graph) -> None:
    # TF: [[5, 3]] at [2, 0]; negating INT32_MIN overflows, which must not reorder it.
    x = gg.constant(np.array([[3, np.iinfo(np.int32).min, 5, 0]], np.int32))
    values, indices = _run(node("TopKV2", x, gg.constant(np.int32(2)), T=gg.dtypes.int32).outputs)
    np.testing.assert_array_equal(values, [[5, 3]])
    np.testing.assert_array_equal(indices, [[2, 0]])


def test_integer_scatter_div_is_exact_and_truncates(graph) -> None:
    var = out("VariableV2", shape=gg.TensorShape([3]), dtype=gg.dtypes.int64)
    start = np.array([2**62 + 1, -7, 7], np.int64)
    init = node("Assign", var, gg.constant(start), T=gg.dtypes.int64)
    div = out("ScatterDiv", var, gg.constant(np.array([0, 1, 2], np.int32)),
              gg.constant(np.array([1, 2, -2], np.int64)), T=gg.dtypes.int64,
              Tindices=gg.dtypes.int32)
    with gg.Session() as sess:
        sess.run(init)
        np.testing.assert_array_equal(sess.run(div), [2**62 + 1, -3, -3])


@pytest.mark.parametrize(("ksize", "error"), [
    ([1, 2, 2], errors.InvalidArgumentError),  # TF: must specify 4 dimensions
    ([2, 2, 2, 1], errors.UnimplementedError),  # TF: not yet supported on the batch dimension
    ([1, 0, 2, 1], errors.InvalidArgumentError),
])
def test_max_pool_v2_checks_its_windows(graph, ksize, error) -> None:
    x = gg.constant(np.zeros((2, 4, 4, 1), np.float32))
    pooled = out("MaxPoolV2", x, gg.constant(np.array(ksize, np.int32)),
                 gg.constant(np.array([1, 2, 2, 1][:len(ksize)], np.int32)), T=F32,
                 padding=b"VALID")
    with pytest.raises(error):
        _run(pooled)


def test_multinomial_needs_classes(graph) -> None:
    logits = gg.placeholder(F32, [2, None], name="logits")
    m = out("Multinomial", logits, gg.constant(np.int32(3)), T=F32)
    with pytest.raises(errors.InvalidArgumentError, match="num_classes should be positive"):
        _run(m, {logits: np.zeros((2, 0), np.float32)})


def test_string_format_escapes_as_tf(graph) -> None:
    # TF: control bytes in octal, other UTF-8 and invalid bytes as they are.
    s = gg.constant(np.array([b"a\x01b", "é".encode(), b"\xff"], dtype=object))
    text = out("StringFormat", s, T=[gg.dtypes.string], template=b"{}", placeholder=b"{}")
    assert _run(text) == b'["a\\001b" "\xc3\xa9" "\xff"]'


def test_assert_prints_bools_as_digits(graph) -> None:
    check = node("Assert", gg.constant(False), gg.constant(np.array([True, False])),
                 T=[gg.dtypes.bool])
    with pytest.raises(errors.InvalidArgumentError, match=r"assertion failed: \[1 0\]"):
        _run(check)


def test_matrix_diag_v3_sizes_one_dimension_or_refuses(graph) -> None:
    # num_rows given: the columns grow until the diagonal fits; a size it can never fit in is
    # an error (it used to search forever).
    diagonal = gg.constant(np.arange(1.0, 4.0))

    def diag(rows: int, cols: int):
        return out("MatrixDiagV3", diagonal, gg.constant(np.int32(1)), gg.constant(np.int32(rows)),
                   gg.constant(np.int32(cols)), gg.constant(0.0), T=gg.dtypes.float64)

    got = _run(diag(3, -1))
    assert got.shape == (3, 4)
    np.testing.assert_array_equal(np.diagonal(got, 1), [1, 2, 3])
    with pytest.raises(errors.InvalidArgumentError, match="do not fit"):
        _run(diag(2, -1))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("labels,bad", [([0, -1, 2], -1), ([2, 3, 0], 3),
                                        ([np.iinfo(np.int32).min, 0, 0], np.iinfo(np.int32).min)])
def test_sparse_xent_rejects_every_out_of_range_label(graph, dtype, labels, bad) -> None:
    # TF's CPU kernel: "Received a label value of -1 which is outside the valid range of
    # [0, 3).  Label values: 0 -1 2".  The numpy check views the labels as unsigned, so a
    # negative label must read as out of range, not as a large index that wraps.
    logits = gg.constant(np.zeros((3, 3), np.float32))
    op = node("SparseSoftmaxCrossEntropyWithLogits", logits, gg.constant(np.array(labels, dtype)),
              T=F32, Tlabels=gg.as_dtype(dtype))
    with pytest.raises(errors.InvalidArgumentError, match=f"label value of {bad} which is "):
        _run(op.outputs[0])


def test_sparse_xent_of_an_empty_batch(graph) -> None:
    # TF: an empty loss and an empty [0, 3] backprop, no error.
    op = node("SparseSoftmaxCrossEntropyWithLogits", gg.constant(np.zeros((0, 3), np.float32)),
              gg.constant(np.zeros(0, np.int64)), T=F32, Tlabels=gg.dtypes.int64)
    loss, backprop = _run(op.outputs)
    assert loss.shape == (0,) and backprop.shape == (0, 3)


@pytest.mark.parametrize("op_type", ["Sum", "Prod", "Mean", "Max", "Min"])
@pytest.mark.parametrize("keep_dims", [False, True])
def test_reducing_over_no_axes_gives_the_input(graph, op_type, keep_dims) -> None:
    # TF: the input itself, -0.0 and NaN included (its kernels forward the input).
    x = np.array([[-0.0, np.nan, -3.5], [2.0, np.inf, 1e-40]], np.float32)
    got = _run(out(op_type, gg.constant(x), gg.constant(np.zeros(0, np.int32)), T=F32,
                   Tidx=gg.dtypes.int32, keep_dims=keep_dims))
    assert got.shape == x.shape and got.tobytes() == x.tobytes()


def test_euclidean_norm_over_no_axes_is_the_magnitude(graph) -> None:
    # TF: sqrt(x * x) element by element, not the input (the one reduction that is not the
    # identity over no axes).
    x = np.array([-3.0, 4.0, -0.0], np.float32)
    got = _run(out("EuclideanNorm", gg.constant(x), gg.constant(np.zeros(0, np.int32)), T=F32,
                   Tidx=gg.dtypes.int32))
    np.testing.assert_array_equal(got, [3.0, 4.0, 0.0])


def test_broadcast_gradient_args_follows_each_runs_shapes(graph) -> None:
    # The kernel remembers answers by the shapes' values: each run's shapes must still get
    # their own reduction indices (TF: [] and [0]; [1] and []; [] and [0, 1]).
    i32 = gg.dtypes.int32
    s0 = out("Placeholder", dtype=i32, shape=gg.TensorShape([None]))
    s1 = out("Placeholder", dtype=i32, shape=gg.TensorShape([None]))
    bga = node("BroadcastGradientArgs", s0, s1, T=i32).outputs
    with gg.Session() as sess:
        for a, b, r0, r1 in [([2, 3], [3], [], [0]), ([2, 1], [2, 3], [1], []),
                             ([2, 3], [], [], [0, 1]), ([2, 3], [3], [], [0])]:
            got = sess.run(bga, {s0: np.array(a, np.int32), s1: np.array(b, np.int32)})
            assert [g.tolist() for g in got] == [r0, r1], (a, b)
        remembered = sess.run(bga[1], {s0: np.array([2, 3], np.int32), s1: np.array([3], np.int32)})
        with pytest.raises(ValueError):  # shared with later runs: not writable
            remembered[0] = 5
        with pytest.raises(errors.InvalidArgumentError, match="Incompatible shapes"):
            sess.run(bga, {s0: np.array([2, 3], np.int32), s1: np.array([4], np.int32)})
