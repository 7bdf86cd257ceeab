"""The numba CPU loops (gpugraph/ops/cpu_loops.py) give the array-module bodies' exact bits.

Each op runs twice on the same inputs, once through its loop (a spy checks the loop really
ran) and once with ``GPUGRAPH_CPU_LOOPS=0``; every output and updated slot must be bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import node, out

import gpugraph as gg
from gpugraph import _optional
from gpugraph._optional import optional_module
from gpugraph.framework.tensor_shape import TensorShape
from gpugraph.devices.cpu import loops as cpu_loops

pytestmark = pytest.mark.skipif(optional_module("numba") is None, reason="numba unavailable")


@pytest.fixture(params=["unsplit", "split"])
def image_split(request, monkeypatch):
    """Loops that split their images over threads (cpu_loops.over_images) run once unsplit and
    once split over three threads, however small the arrays."""
    if request.param == "split":
        monkeypatch.setattr(cpu_loops, "_SPLIT_MIN", 0)
        monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "3")
    else:
        monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "1")
    return request.param


class _Owned:
    def __init__(self, owning: bool) -> None:
        self.owning = owning

    def chunks(self, rows: int) -> int:
        """How many calls a loop over ``rows`` rows (or elements) makes: one per thread's chunk
        inside a plan that owns the cores, else one."""
        return min(3, rows) if self.owning else 1


@pytest.fixture(params=["alone", "owning"])
def owned(request, monkeypatch):
    """Runs a test's plans once as plans that leave the cores alone (loops on the plan's
    thread) and once as plans that own them (cpu_threads.owning: elementwise and pooling
    loops split over three threads, however small the arrays)."""
    from gpugraph.devices.cpu import threads as cpu_threads

    if request.param == "owning":
        monkeypatch.setattr(cpu_threads, "wants_cores", lambda steps: True)
        monkeypatch.setattr(cpu_threads, "_SPLIT_MIN_ELEMENTS", 0)
        monkeypatch.setattr(cpu_loops, "_SPLIT_MIN", 0)
        monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "3")
    return _Owned(request.param == "owning")


@pytest.fixture
def spy(monkeypatch):
    """Counts calls of every loop handed out by cpu_loops.get."""
    calls: dict[str, int] = {}
    real_get = cpu_loops.get

    def get(name, xp):
        loop = real_get(name, xp)
        if loop is None:
            return None

        def counted(*args):
            calls[name] = calls.get(name, 0) + 1
            return loop(*args)

        return counted

    monkeypatch.setattr(cpu_loops, "get", get)
    return calls


def _variable(name: str, value: np.ndarray):
    dtype = gg.dtypes.as_dtype(value.dtype)
    var = out("VariableV2", name=name, shape=TensorShape(value.shape), dtype=dtype)
    init = node("Assign", var, gg.constant(value), T=dtype)
    return var, init


def _run(build, monkeypatch, loops: bool) -> list[np.ndarray]:
    """Builds a fresh graph with ``build()`` -> (fetches, initializers[, feeds]) and runs it
    once."""
    monkeypatch.setenv("GPUGRAPH_CPU_LOOPS", "1" if loops else "0")
    with gg.Graph().as_default():
        fetches, inits, *feeds = build()
        with gg.Session(config={"virtual_gpus": 0}) as sess:
            sess.run(inits)
            return [np.array(v) for v in sess.run(fetches, *feeds)]


def _fed(*values: np.ndarray) -> tuple[list, dict]:
    """Placeholders for ``values`` and the feeds that give them (ops of constants would be
    folded when the plan is built, outside the run that may own the cores)."""
    holders = [out("Placeholder", dtype=gg.dtypes.as_dtype(v.dtype)) for v in values]
    return holders, dict(zip(holders, values, strict=True))


def _assert_same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x.view(np.uint8), y.view(np.uint8))


def _values(dtype, shape, seed, positive=False):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(shape).astype(dtype)
    v.flat[:3] = (0, -0.0, 1e-30)  # zeros and a denormal-range value (flushed during runs)
    return np.abs(v) if positive else v


def _optimizer_graph(op_type, slots, scalars, grad, **attrs):
    """A graph updating variables ``slots`` once; fetches every slot after the update."""

    def build():
        dtype = gg.dtypes.as_dtype(grad.dtype)
        pairs = [_variable(f"s{i}", v) for i, v in enumerate(slots)]
        consts = [gg.constant(grad.dtype.type(s)) for s in scalars]
        inputs = [var for var, _ in pairs]
        if op_type == "ApplyMomentum":  # (var, accum, lr, grad, momentum)
            inputs += [consts[0], gg.constant(grad), consts[1]]
        else:  # (slots..., scalars..., grad)
            inputs += [*consts, gg.constant(grad)]
        update = node(op_type, *inputs, T=dtype, **attrs)
        with gg.get_default_graph().control_dependencies([update]):
            reads = [out("Identity", var, T=dtype) for var, _ in pairs]
        return reads, [init for _, init in pairs]

    return build


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_adam_loop_matches_array_body(dtype, nesterov, spy, owned, monkeypatch) -> None:
    shape = (33, 17)
    slots = [_values(dtype, shape, 1), _values(dtype, shape, 2),
             _values(dtype, shape, 3, positive=True)]
    scalars = [0.9 ** 3, 0.999 ** 3, 0.01, 0.9, 0.999, 1e-7]  # beta powers, lr, betas, eps
    build = _optimizer_graph("ApplyAdam", slots, scalars, _values(dtype, shape, 4),
                             use_nesterov=nesterov)
    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("adam") == owned.chunks(33 * 17)
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))
    assert spy.get("adam") == owned.chunks(33 * 17)  # the second run did not use the loop


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_loop_matches_array_body(dtype, nesterov, spy, owned, monkeypatch) -> None:
    shape = (5, 7, 3)
    slots = [_values(dtype, shape, 5), _values(dtype, shape, 6)]
    build = _optimizer_graph("ApplyMomentum", slots, [0.05, 0.9], _values(dtype, shape, 7),
                             use_nesterov=nesterov)
    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("momentum") == owned.chunks(5 * 7 * 3)
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("op_type", "loop", "num_slots", "scalars", "attrs"), [
    ("ApplyRMSProp", "rms_prop", 3, [0.01, 0.9, 0.5, 1e-7], {}),  # lr, rho, momentum, epsilon
    ("ApplyCenteredRMSProp", "centered_rms_prop", 4, [0.01, 0.9, 0.5, 1e-7], {}),
    ("ApplyAdagrad", "adagrad", 2, [0.1], {}),
    ("ApplyAdagrad", "adagrad", 2, [0.1], {"update_slots": False}),
])
def test_rms_prop_and_adagrad_loops_match_array_bodies(dtype, op_type, loop, num_slots, scalars,
                                                       attrs, spy, owned, monkeypatch) -> None:
    shape = (9, 13)
    # var and momentum-like slots any sign; accumulators positive (one zero: 1/sqrt(0) = inf)
    slots = [_values(dtype, shape, 20 + i, positive=i > 0) for i in range(num_slots)]
    if op_type == "ApplyCenteredRMSProp":
        slots[1] = _values(dtype, shape, 30)  # mg: any sign
    build = _optimizer_graph(op_type, slots, scalars, _values(dtype, shape, 31), **attrs)
    looped = _run(build, monkeypatch, loops=True)
    assert spy.get(loop) == owned.chunks(9 * 13)
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


def _relu_grad_graph(g: np.ndarray, features: np.ndarray):
    def build():
        dtype = gg.dtypes.as_dtype(g.dtype)
        (g_in, f_in), feeds = _fed(g, features)
        return [out("ReluGrad", g_in, f_in, T=dtype)], [], feeds

    return build


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_grad_loop_matches_array_body(dtype, spy, owned, monkeypatch) -> None:
    g, features = _values(dtype, (64, 9), 8), _values(dtype, (64, 9), 9)
    features.flat[5:8] = (np.nan, np.inf, -np.inf)
    g.flat[10] = np.nan
    build = _relu_grad_graph(g, features)
    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("relu_grad") == owned.chunks(64 * 9)
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_loop_matches_array_body(dtype, spy, owned, monkeypatch) -> None:
    x = _values(dtype, (50, 7), 16)
    x.flat[5:10] = (np.nan, -np.nan, np.inf, -np.inf, -0.0)  # NaN keeps its sign, -0 -> +0

    def build():
        (x_in,), feeds = _fed(x)
        return [out("Relu", x_in, T=gg.dtypes.as_dtype(x.dtype))], [], feeds

    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("relu") == owned.chunks(50 * 7)
    assert np.signbit(looped[0].flat[6]) and not np.signbit(looped[0].flat[9])
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "data_format", "looped_rows"), [
    ((6, 5, 4, 3), b"NHWC", 6 * 5 * 4), ((40, 17), b"NHWC", 40), ((6, 3, 5, 4), b"NCHW", 0),
    ((0, 3), b"NHWC", 0)])
def test_bias_add_loop_matches_array_body(dtype, shape, data_format, looped_rows, spy, owned,
                                          monkeypatch) -> None:
    value = _values(dtype, shape, 17)
    channels = shape[1] if data_format == b"NCHW" else shape[-1]
    bias = _values(dtype, (channels,), 18)
    bias[0] = np.nan

    def build():
        inputs, feeds = _fed(value, bias)
        return [out("BiasAdd", *inputs, data_format=data_format,
                    T=gg.dtypes.as_dtype(value.dtype))], [], feeds

    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("bias_add", 0) == (owned.chunks(looped_rows) if looped_rows else
                                      int(data_format == b"NHWC"))
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 5, 7, 2), (64, 28, 28, 32), (1000, 3)])
def test_bias_add_grad_loop_matches_array_body(dtype, shape, spy, monkeypatch) -> None:
    grad = _values(dtype, shape, 12) * np.logspace(-3, 3, shape[0], dtype=dtype).reshape(
        (-1,) + (1,) * (len(shape) - 1))  # magnitudes that make the summation order matter

    def build():
        return [out("BiasAddGrad", gg.constant(grad), T=gg.dtypes.as_dtype(grad.dtype))], []

    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("column_sums") == 1
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


def test_bias_add_grad_of_one_channel_keeps_numpy_pairwise_sum(spy, monkeypatch) -> None:
    grad = _values(np.float32, (4000, 1), 13)

    def build():
        return [out("BiasAddGrad", gg.constant(grad), T=gg.float32)], []

    (got,) = _run(build, monkeypatch, loops=True)
    assert "column_sums" not in spy
    np.testing.assert_array_equal(got, grad.sum(axis=0))


def test_loops_skip_what_they_cannot_take(spy, monkeypatch) -> None:
    # float16 is not a loop dtype: the array body runs, and still gives TF's formula.
    g, features = _values(np.float16, (4, 4), 10), _values(np.float16, (4, 4), 11)
    (got,) = _run(_relu_grad_graph(g, features), monkeypatch, loops=True)
    assert "relu_grad" not in spy
    np.testing.assert_array_equal(got, np.where(features > 0, g, np.float16(0)))
    assert not cpu_loops.fits(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32).T)
    assert not cpu_loops.fits(np.zeros(3, np.float32), np.zeros(3, np.float64))
    assert not cpu_loops.fits(np.zeros(3, np.float32), np.zeros(4, np.float32))


def test_virtual_gpus_and_missing_numba_use_the_array_bodies(monkeypatch) -> None:
    monkeypatch.delenv("GPUGRAPH_CPU_LOOPS", raising=False)
    assert cpu_loops.get("adam", np) is not None
    assert cpu_loops.get("adam", object()) is None  # a virtual GPU's array module
    monkeypatch.setitem(_optional._modules, "numba", False)
    monkeypatch.setattr(cpu_loops, "_compiled", {})
    assert cpu_loops.get("adam", np) is None


def _conv_input_grad_graph(dy: np.ndarray, w: np.ndarray, input_sizes, **attrs):
    def build():
        dtype = gg.dtypes.as_dtype(dy.dtype)
        sizes = gg.constant(np.array(input_sizes, np.int32))
        return [out("Conv2DBackpropInput", sizes, gg.constant(w), gg.constant(dy), T=dtype,
                    **attrs)], []

    return build


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("strides", "dilations", "padding"), [
    ([1, 1, 1, 1], [1, 1, 1, 1], b"SAME"),
    ([1, 2, 3, 1], [1, 1, 1, 1], b"VALID"),
    ([1, 1, 1, 1], [1, 2, 2, 1], b"SAME"),
])
def test_col2im_loop_matches_array_body(dtype, strides, dilations, padding, spy,
                                        monkeypatch) -> None:
    monkeypatch.setenv("GPUGRAPH_CPU_CONV", "0")  # stride 1 would take the direct kernel
    n, h, w, cin, cout, k = 3, 11, 10, 4, 5, 3
    span = 2 * dilations[1] + 1
    oh = -(-h // strides[1]) if padding == b"SAME" else (h - span) // strides[1] + 1
    ow = -(-w // strides[2]) if padding == b"SAME" else (w - span) // strides[2] + 1
    dy, filt = _values(dtype, (n, oh, ow, cout), 12), _values(dtype, (k, k, cin, cout), 13)
    build = _conv_input_grad_graph(dy, filt, [n, h, w, cin], strides=strides,
                                   dilations=dilations, padding=padding)
    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("col2im") == 1
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_grad_loop_matches_array_body(dtype, spy, owned, monkeypatch) -> None:
    x = _values(dtype, (4, 6, 8, 3), 14)
    x[0, :2, :2, 0] = 7  # a tie: the first tap in row-major order takes the gradient
    x[1, 2, 3, 2] = np.nan  # a window whose max is NaN: no tap equals it
    pooled = x.reshape(4, 3, 2, 4, 2, 3).max(axis=(2, 4))
    dy = _values(dtype, pooled.shape, 15)
    dy[0, 0, 0, 0] = 1.5

    def build():
        t = gg.dtypes.as_dtype(x.dtype)
        inputs, feeds = _fed(x, pooled, dy)
        return [out("MaxPoolGrad", *inputs, T=t, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                    padding=b"VALID")], [], feeds

    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("max_pool_grad_tiles") == owned.chunks(4)
    np.testing.assert_array_equal(looped[0][0, :2, :2, 0], [[1.5, 0], [0, 0]])
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("ksize", "strides", "padding", "data_format"), [
    ((2, 2), (2, 2), b"VALID", b"NHWC"), ((3, 3), (2, 2), b"SAME", b"NHWC"),
    ((3, 2), (1, 3), b"SAME", b"NHWC"), ((1, 1), (1, 1), b"VALID", b"NHWC"),
    ((2, 2), (2, 2), b"SAME", b"NCHW")])
def test_max_pool_loop_matches_array_body(dtype, ksize, strides, padding, data_format, spy,
                                          owned, monkeypatch) -> None:
    x = _values(dtype, (5, 7, 9, 4), 19)
    x[0, 0, :3, 0] = (np.nan, 1, 2)  # NaN wins over later taps ...
    x[0, 1, :3, 1] = (1, -np.nan, 2)  # ... and over earlier ones
    x[1, :2, :2, 2] = (-0.0, 0.0)  # a tie of zeros: numpy's rule picks the later tap
    x[2, :, :, 3] = -np.inf
    if data_format == b"NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    window = [1, *ksize, 1] if data_format == b"NHWC" else [1, 1, *ksize]
    step = [1, *strides, 1] if data_format == b"NHWC" else [1, 1, *strides]

    def build():
        (x_in,), feeds = _fed(x)
        return [out("MaxPool", x_in, T=gg.dtypes.as_dtype(x.dtype), ksize=window, strides=step,
                    padding=padding, data_format=data_format)], [], feeds

    looped = _run(build, monkeypatch, loops=True)
    # NCHW's channels-last view is not contiguous unless padding copied it
    expected = 0 if data_format == b"NCHW" and padding == b"VALID" else owned.chunks(5)
    assert spy.get("max_pool", 0) == expected
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("before", "after"),
                         [((2, 2), (2, 2)), ((0, 1), (3, 0)), ((1, 0), (0, 0))])
@pytest.mark.parametrize("threads", [1, 3])
def test_pad_images_loop_matches_np_pad(dtype, before, after, threads, spy,
                                        monkeypatch) -> None:
    from gpugraph.devices.cpu import threads as cpu_threads
    from gpugraph.ops.cpu import conv as conv_ops

    monkeypatch.setattr(cpu_threads, "_SPLIT_MIN_ELEMENTS", 0)
    monkeypatch.setattr(cpu_loops, "_SPLIT_MIN", 0)
    monkeypatch.setenv("GPUGRAPH_CPU_THREADS", str(threads))
    x = _values(dtype, (4, 5, 3, 6), 21)
    x[1, 2, 0, :2] = (np.nan, -0.0)
    want = np.pad(x, [(0, 0), (before[0], after[0]), (before[1], after[1]), (0, 0)])
    with cpu_threads.owning(True):
        got = conv_ops._pad_images(x, before, after)
    assert spy.get("pad_images") == threads and got.flags.c_contiguous
    _assert_same_bits([got], [want])


@pytest.mark.parametrize("op_type", ["Erf", "Erfc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_loop_matches_array_body(op_type, dtype, spy, monkeypatch) -> None:
    x = np.linspace(-6, 6, 20001).astype(dtype)

    def build():
        return [out(op_type, gg.constant(x), T=gg.dtypes.as_dtype(x.dtype))], []

    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("erf") == 1
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("multiplier", "strides", "padding"), [
    (1, [1, 1, 1, 1], b"SAME"), (2, [1, 2, 2, 1], b"VALID"), (3, [1, 1, 2, 1], b"SAME")])
def test_depthwise_loop_matches_array_body(dtype, multiplier, strides, padding, spy,
                                           monkeypatch, image_split) -> None:
    x, w = _values(dtype, (2, 9, 8, 5), 40), _values(dtype, (3, 3, 5, multiplier), 41)

    def build():
        t = gg.dtypes.as_dtype(x.dtype)
        return [out("DepthwiseConv2dNative", gg.constant(x), gg.constant(w), T=t,
                    strides=strides, padding=padding)], []

    looped = _run(build, monkeypatch, loops=True)
    assert spy.get("depthwise") == (2 if image_split == "split" else 1)  # 2 images
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


_DEPTHWISE_CASES = [  # (input shape, multiplier, strides, padding, dilations)
    ((2, 9, 8, 5), 1, [1, 1, 1, 1], b"SAME", [1, 1, 1, 1]),
    ((2, 9, 8, 5), 2, [1, 2, 2, 1], b"VALID", [1, 1, 1, 1]),
    ((3, 10, 7, 4), 3, [1, 1, 2, 1], b"SAME", [1, 1, 1, 1]),
    ((5, 6, 6, 2), 1, [1, 1, 1, 1], b"SAME", [1, 1, 1, 1]),   # 5 images over 3 threads
    ((1, 12, 11, 3), 1, [1, 3, 2, 1], b"SAME", [1, 1, 1, 1]),  # windows skip input rows
    ((2, 11, 10, 4), 2, [1, 1, 1, 1], b"SAME", [1, 2, 2, 1]),  # dilated (the loops take it)
    ((1, 4, 4, 8), 1, [1, 1, 1, 1], b"VALID", [1, 1, 1, 1]),   # a single output row
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "multiplier", "strides", "padding", "dilations"),
                         _DEPTHWISE_CASES)
@pytest.mark.parametrize("op_type", ["DepthwiseConv2dNativeBackpropInput",
                                     "DepthwiseConv2dNativeBackpropFilter"])
def test_depthwise_backprop_loops_match_array_bodies(op_type, dtype, shape, multiplier, strides,
                                                     padding, dilations, spy, monkeypatch,
                                                     image_split) -> None:
    x, w = _values(dtype, shape, 42), _values(dtype, (3, 3, shape[3], multiplier), 43)
    t = gg.dtypes.as_dtype(x.dtype)
    attrs = {"T": t, "strides": strides, "padding": padding, "dilations": dilations}
    with gg.Graph().as_default():  # the output gradient's shape, from the forward op
        y = out("DepthwiseConv2dNative", gg.constant(x), gg.constant(w), **attrs)
        with gg.Session(config={"virtual_gpus": 0}) as sess:
            dy = _values(dtype, sess.run(y).shape, 44)

    def build():
        if op_type.endswith("Input"):
            args = (gg.constant(np.array(shape, np.int32)), gg.constant(w), gg.constant(dy))
        else:
            args = (gg.constant(x), gg.constant(np.array(w.shape, np.int32)), gg.constant(dy))
        return [out(op_type, *args, **attrs)], []

    looped = _run(build, monkeypatch, loops=True)
    name = (op_type.replace("DepthwiseConv2dNativeBackp", "depthwise_backp")
            .replace("Input", "_input").replace("Filter", "_filter"))
    assert spy.get(name) == (min(3, shape[0]) if image_split == "split" else 1)  # one per chunk
    _assert_same_bits(looped, _run(build, monkeypatch, loops=False))


def test_over_images_splits_the_batched_arrays_and_reraises_a_chunks_error(monkeypatch) -> None:
    monkeypatch.setattr(cpu_loops, "_SPLIT_MIN", 0)
    monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "3")
    seen = []

    def loop(images, labels, scale):
        seen.append((images[:, 0].tolist(), labels.tolist(), scale))
        if 6 in labels:
            raise ValueError("bad chunk")

    images, labels = np.arange(14).reshape(7, 2), np.arange(7)
    cpu_loops.over_images(loop, (images[:6], labels[:6], 1.5), (0, 1))
    assert sorted(seen) == [([0, 2], [0, 1], 1.5), ([4, 6], [2, 3], 1.5),
                            ([8, 10], [4, 5], 1.5)]
    with pytest.raises(ValueError, match="bad chunk"):  # the last chunk runs in a worker
        cpu_loops.over_images(loop, (images, labels, 1.5), (0, 1))
    monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "1")
    seen.clear()
    cpu_loops.over_images(loop, (images[:2], labels[:2], 0.5), (0, 1))
    assert seen == [([0, 2], [0, 1], 0.5)]
