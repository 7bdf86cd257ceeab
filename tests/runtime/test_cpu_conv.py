"""The direct CPU convolutions (gpugraph/ops/cpu_conv.py) and the plan's ownership of the cores
(gpugraph/ops/cpu_threads.py).

The gather-GEMM kernel is checked against a float64 product; the three convolution ops, run
through it, against the im2col + BLAS path (``GPUGRAPH_CPU_CONV=0``) over strides, dilations,
paddings, layouts, channel counts that leave masked tails, and empty shapes.  Its bits must not
depend on the thread split or on the reduction tiling.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import out

import gpugraph as gg
from gpugraph.devices.cpu import conv as cpu_conv
from gpugraph.devices.cpu import isa as cpu_isa
from gpugraph.devices.cpu import threads as cpu_threads

pytestmark = pytest.mark.skipif(not cpu_conv.available(np, np.zeros(1, np.float32)),
                                reason="llvmlite unavailable or not x86-64")


@pytest.fixture
def calls(monkeypatch):
    """Counts gather_gemm and gather_gemm_classes calls (to prove an op really took the
    direct path)."""
    counted = {"n": 0}

    def spy(real):
        def counting(*args, **kwargs):
            counted["n"] += 1
            return real(*args, **kwargs)
        return counting

    for name in ("gather_gemm", "gather_gemm_classes"):
        monkeypatch.setattr(cpu_conv, name, spy(getattr(cpu_conv, name)))
    return counted


def _gather_case(dtype, rows, k, cols, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(4000).astype(dtype)
    rowtab = rng.integers(0, 2000, rows).astype(np.int64)
    redtab = rng.integers(0, 2000, k).astype(np.int64)
    b = rng.standard_normal((k, cols)).astype(dtype)
    want = x[rowtab[:, None] + redtab[None, :]].astype(np.float64) @ b.astype(np.float64)
    return x, rowtab, redtab, b, want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("rows", "k", "cols"), [
    (1, 1, 1), (7, 3, 64), (30, 50, 17), (100, 300, 64), (13, 5, 100), (3, 2, 8), (50, 33, 48),
    (29, 7, 32), (9, 4, 15), (200, 20, 130)])
def test_gather_gemm_matches_a_float64_product(dtype, rows, k, cols, monkeypatch) -> None:
    x, rowtab, redtab, b, want = _gather_case(dtype, rows, k, cols)
    results = []
    for threads, tile in (("1", None), ("3", None), ("2", 2)):
        monkeypatch.setenv("GPUGRAPH_CPU_THREADS", threads)
        got = np.full((rows, cols), np.nan, dtype)
        cpu_conv.gather_gemm(x, rowtab, redtab, b, got, k_tile=tile)
        results.append(got)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[0], want, rtol=tol, atol=tol * np.abs(want).max())
    for other in results[1:]:  # thread split and tiling keep each element's order of adds
        np.testing.assert_array_equal(other.view(np.uint8), results[0].view(np.uint8))


def _relu_rule(v: np.ndarray) -> np.ndarray:
    """The Relu kernel's rule: v where v > 0 or v is NaN, else +0."""
    return np.where((v > 0) | np.isnan(v), v, np.zeros_like(v))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("rows", "k", "cols"), [(30, 50, 17), (100, 300, 64), (9, 4, 130)])
@pytest.mark.parametrize("relu", [False, True])
def test_gather_gemm_epilogue_has_the_bits_of_separate_passes(dtype, rows, k, cols, relu,
                                                              monkeypatch) -> None:
    x, rowtab, redtab, b, _ = _gather_case(dtype, rows, k, cols, seed=5)
    x[rowtab[3] + redtab[0]] = np.nan  # a NaN sum: kept by the Relu
    bias = np.random.default_rng(6).standard_normal(cols).astype(dtype)
    bias[1] = np.inf
    plain = np.empty((rows, cols), dtype)
    cpu_conv.gather_gemm(x, rowtab, redtab, b, plain)
    want = plain + bias
    want = _relu_rule(want) if relu else want
    for threads, tile in (("1", None), ("3", None), ("2", 7)):
        monkeypatch.setenv("GPUGRAPH_CPU_THREADS", threads)
        got = np.full((rows, cols), np.nan, dtype)
        cpu_conv.gather_gemm(x, rowtab, redtab, b, got, k_tile=tile, bias=bias, relu=relu)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    assert np.isnan(want[3]).any()  # the NaN reached the epilogue
    assert not relu or ((want == 0).any() and not (np.signbit(want) & ~np.isnan(want)).any())


def test_gather_gemm_epilogue_on_an_empty_reduction() -> None:
    got = np.full((3, 4), np.nan, np.float32)
    bias = np.array([1.5, -2, 0, np.nan], np.float32)
    cpu_conv.gather_gemm(np.ones(4, np.float32), np.zeros(3, np.int64), np.zeros(0, np.int64),
                         np.zeros((0, 4), np.float32), got, bias=bias, relu=True)
    np.testing.assert_array_equal(got, np.tile([1.5, 0, 0, np.nan], (3, 1)).astype(np.float32))


def test_gather_gemm_empty_reduction_writes_zeros() -> None:
    got = np.full((3, 5), np.nan, np.float32)
    cpu_conv.gather_gemm(np.ones(4, np.float32), np.zeros(3, np.int64), np.zeros(0, np.int64),
                         np.zeros((0, 5), np.float32), got)
    assert not got.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [1, 17, 64, 130])
@pytest.mark.parametrize("epilogue", [(False, False), (True, False), (True, True)])
def test_gather_gemm_classes_matches_a_float64_product(dtype, cols, epilogue,
                                                       monkeypatch) -> None:
    # Classes of different sizes and reductions, one with no taps, rows written out of order.
    rng = np.random.default_rng(5)
    x = rng.standard_normal(3000).astype(dtype)
    b = rng.standard_normal((40, cols)).astype(dtype)
    sizes = [(23, 17), (1, 40), (9, 0), (50, 3), (8, 1)]  # (rows, taps) per class
    order = rng.permutation(sum(r for r, _ in sizes))
    rows = np.stack([rng.integers(0, 1000, len(order)), order * cols], axis=1).astype(np.int64)
    classes, taps, want = [], [], np.zeros((len(order), cols))
    row = 0
    for count, k in sizes:
        chosen = rng.choice(40, k, replace=False)
        tap_rows = np.stack([rng.integers(0, 2000, k), chosen * cols], axis=1)
        classes.append((row, count, sum(len(t) for t in taps), k))
        taps.append(tap_rows)
        for r in range(row, row + count):
            want[order[r]] = x[rows[r, 0] + tap_rows[:, 0]].astype(np.float64) @ b[chosen]
        row += count
    taps = np.ascontiguousarray(np.concatenate(taps).astype(np.int64))
    bias = rng.standard_normal(cols).astype(dtype) if epilogue[0] else None
    if bias is not None:
        want = want + bias
        want = np.maximum(want, 0) if epilogue[1] else want
    for threads in ("1", "2"):
        monkeypatch.setenv("GPUGRAPH_CPU_THREADS", threads)
        got = np.full((len(order), cols), np.nan, dtype)
        cpu_conv.gather_gemm_classes(x, rows, taps, tuple(classes), b, got, bias=bias,
                                     relu=epilogue[1])
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10)


def _table_terms(rows, taps, classes, cols):
    """Every product a gather_gemm_classes call with these tables makes, as (output row,
    element of x, row of b)."""
    return {(int(at) // cols, int(start + offset), int(b_row) // cols)
            for first, count, tap, k in classes
            for start, at in rows[first:first + count]
            for offset, b_row in taps[tap:tap + k]}


def _in_image_terms(n, size, kernel, strides, dilations, before, out=None):
    """Every (image, oh, ow, kh, kw, ih, iw) of a convolution whose tap reads the image, by
    brute force; and the output size (``out``, else the size padded by ``before`` on both
    sides gives)."""
    out = out or [(length + 2 * pad - (k - 1) * d - 1) // s + 1 for length, pad, k, d, s in
                  zip(size, before, kernel, dilations, strides, strict=True)]
    terms = []
    for i in range(n):
        for oh in range(out[0]):
            for ow in range(out[1]):
                for a in range(kernel[0]):
                    for b in range(kernel[1]):
                        ih = oh * strides[0] + a * dilations[0] - before[0]
                        iw = ow * strides[1] + b * dilations[1] - before[1]
                        if 0 <= ih < size[0] and 0 <= iw < size[1]:
                            terms.append((i, oh, ow, a, b, ih, iw))
    return terms, tuple(out)


CLASS_CASES = [  # (shape, kernel, strides, dilations, before)
    ((2, 14, 14, 3), (5, 5), (1, 1), (1, 1), (2, 2)),
    ((1, 9, 8, 2), (3, 2), (2, 3), (1, 1), (1, 0)),
    ((2, 12, 12, 1), (3, 3), (1, 1), (2, 2), (2, 2)),
    ((1, 6, 7, 2), (3, 3), (1, 1), (1, 1), (4, 3)),  # windows and taps wholly in the padding
]


@pytest.mark.parametrize(("shape", "kernel", "strides", "dilations", "before"), CLASS_CASES)
def test_window_classes_read_exactly_the_taps_inside_the_image(shape, kernel, strides,
                                                                dilations, before) -> None:
    from gpugraph.ops.cpu import conv as conv_ops
    n, h, w, c = shape
    terms, out = _in_image_terms(n, (h, w), kernel, strides, dilations, before)
    rows, taps, classes = conv_ops._window_classes(shape, out, strides, dilations, before,
                                                   kernel, 4)
    assert _table_terms(rows, taps, classes, 4) == {
        ((i * out[0] + oh) * out[1] + ow, ((i * h + ih) * w + iw) * c + ch,
         (a * kernel[1] + b) * c + ch)
        for i, oh, ow, a, b, ih, iw in terms for ch in range(c)}
    assert sorted(int(a) for a in rows[:, 1] // 4) == list(range(n * out[0] * out[1]))


@pytest.mark.parametrize(("shape", "kernel", "strides", "dilations", "before"), CLASS_CASES)
def test_filter_classes_reduce_exactly_the_pixels_inside_the_image(shape, kernel, strides,
                                                                   dilations, before) -> None:
    from gpugraph.ops.cpu import conv as conv_ops
    n, h, w, c = shape
    terms, out = _in_image_terms(n, (h, w), kernel, strides, dilations, before)
    rows, taps, classes = conv_ops._filter_classes(shape, out, strides, dilations, before,
                                                   kernel, 4)
    for _, _, tap, k in classes:
        pixels = [int(p) for p in taps[tap:tap + k, 1] // 4]
        assert pixels == sorted(pixels)  # the reduction keeps the pixels' order
    assert _table_terms(rows, taps, classes, 4) == {
        ((a * kernel[1] + b) * c + ch, ((i * h + ih) * w + iw) * c + ch,
         (i * out[0] + oh) * out[1] + ow)
        for i, oh, ow, a, b, ih, iw in terms for ch in range(c)}
    assert sorted(int(r) for r in rows[:, 1] // 4) == list(range(kernel[0] * kernel[1] * c))


def test_filter_gradient_paths_have_the_same_bits(monkeypatch) -> None:
    # By classes (no padded taps), over the padded input, and over it in pixel tiles.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 10, 9, 16)).astype(np.float32)
    dy = rng.standard_normal((3, 10, 9, 24)).astype(np.float32)

    def filter_grad():
        return out("Conv2DBackpropFilter", gg.constant(x),
                   gg.constant(np.array([5, 3, 16, 24], np.int32)), gg.constant(dy),
                   T=gg.float32, strides=[1, 1, 1, 1], padding=b"SAME")

    from gpugraph.ops.cpu import conv as conv_ops
    results = []
    # (tiles of 37 pixels: 37 gradient rows of 24 float32)
    for channels, tile in ((8, 1 << 30), (100, 1 << 30), (8, 37 * 24 * 4)):
        monkeypatch.setattr(conv_ops, "_CLASS_MIN_CHANNELS", channels)
        monkeypatch.setattr(conv_ops, "_PIXEL_TILE_BYTES", tile)
        with gg.Graph().as_default():
            fetch = filter_grad()
            with gg.Session(config={"virtual_gpus": 0}) as sess:
                results.append(sess.run(fetch))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


@pytest.mark.parametrize(("size", "out_hw", "kernel", "strides", "dilations", "before"), [
    ((14, 14), (14, 14), (5, 5), (1, 1), (1, 1), (2, 2)),
    ((9, 10), (5, 4), (3, 4), (2, 3), (1, 1), (1, 2)),
    ((12, 12), (8, 8), (3, 3), (1, 1), (2, 2), (0, 0)),
    ((9, 9), (3, 3), (1, 1), (3, 3), (1, 1), (0, 0)),
    ((7, 6), (3, 3), (3, 2), (2, 2), (1, 1), (1, 0)),
])
def test_input_grad_classes_gather_exactly_the_taps_that_reach_a_pixel(size, out_hw, kernel,
                                                                       strides, dilations,
                                                                       before) -> None:
    from gpugraph.ops.cpu import conv as conv_ops
    n, o = 2, 3
    terms, out = _in_image_terms(n, size, kernel, strides, dilations, before, out_hw)
    rows, taps, classes = conv_ops._input_grad_classes((n, *out, o), size, strides,
                                                       dilations, before, kernel, 4)
    for _, _, tap, k in classes:
        order = [int(f) // 4 for f in taps[tap:tap + k, 1]]
        assert order == sorted(order, key=lambda r: (-(r // o // kernel[1]),
                                                     -(r // o % kernel[1]), r % o))
    assert _table_terms(rows, taps, classes, 4) == {
        ((i * size[0] + ih) * size[1] + iw, ((i * out[0] + oh) * out[1] + ow) * o + ch,
         (a * kernel[1] + b) * o + ch)
        for i, oh, ow, a, b, ih, iw in terms for ch in range(o)}
    assert sorted(int(r) for r in rows[:, 1] // 4) == list(range(n * size[0] * size[1]))


def test_input_grad_at_stride_one_has_the_bits_of_the_padded_correlation() -> None:
    # The full correlation of the zero-padded output gradient with the flipped filter: the
    # same sums in the same order, without the padded zeros.
    from gpugraph.ops.cpu import conv as conv_ops
    rng = np.random.default_rng(10)
    dy = rng.standard_normal((3, 14, 14, 64)).astype(np.float32)
    w = rng.standard_normal((5, 5, 32, 64)).astype(np.float32)
    dyp = np.pad(dy, [(0, 0), (2, 2), (2, 2), (0, 0)])
    flipped = np.ascontiguousarray(np.swapaxes(w[::-1, ::-1], 2, 3)).reshape(-1, 32)
    want = np.empty((3 * 14 * 14, 32), np.float32)
    cpu_conv.gather_gemm(dyp, conv_ops._window_starts(dyp.shape, (14, 14), (1, 1)),
                         conv_ops._window_taps(dyp.shape, (5, 5), (1, 1)), flipped, want)
    attrs = type("A", (), {"strides": (1, 1), "dilations": (1, 1)})()
    geo = conv_ops.Geometry(14, 2, 2)
    got = conv_ops._direct_input_grad(dy, w, (3, 14, 14, 32), attrs, geo, geo)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_conv_without_the_padded_taps_has_the_bits_of_the_padded_product() -> None:
    # Skipping a tap that reads a padded zero drops an fma(0, w, acc) == acc: same bits as the
    # gather GEMM over the zero-padded input, epilogue included.
    from gpugraph.ops.cpu import conv as conv_ops
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 14, 14, 32)).astype(np.float32)
    w = rng.standard_normal((5, 5, 32, 64)).astype(np.float32)
    bias = rng.standard_normal(64).astype(np.float32)
    xpad = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)])
    want = np.empty((3 * 14 * 14, 64), np.float32)
    cpu_conv.gather_gemm(xpad, conv_ops._window_starts(xpad.shape, (14, 14), (1, 1)),
                         conv_ops._window_taps(xpad.shape, (5, 5), (1, 1)), w.reshape(-1, 64),
                         want, bias=bias, relu=True)
    got = np.empty_like(want)
    tables = conv_ops._window_classes(x.shape, (14, 14), (1, 1), (1, 1), (2, 2), (5, 5), 64)
    cpu_conv.gather_gemm_classes(x, *tables, w.reshape(-1, 64), got, bias=bias, relu=True)
    np.testing.assert_array_equal(got, want)
    work = sum(count * taps for _, count, _, taps in tables[2])
    assert work == 3 * 64 * 64 * 32  # per axis 64 of the 14 x 5 window positions are inside


def test_masked_tail_leaves_columns_beyond_the_output_alone() -> None:
    # A 17-column output whose rows are 20 apart: the tail vector must not touch columns 17-19.
    x, rowtab, redtab, b, want = _gather_case(np.float32, 11, 6, 17)
    pitch = np.full((11, 20), 7.0, np.float32)
    view = pitch[:, :17]
    flat = np.zeros((11, 17), np.float32)
    cpu_conv.gather_gemm(x, rowtab, redtab, b, flat)
    np.testing.assert_allclose(flat, want, rtol=1e-5, atol=1e-5)
    fn = cpu_conv._kernel(cpu_isa.current(), np.dtype(np.float32), 11, 1, 1)
    fn(x.ctypes.data, rowtab.ctypes.data, redtab.ctypes.data, b.ctypes.data + 16 * 4,
       view.ctypes.data + 16 * 4, 0, 0, 1, 6, 17, 20, 0)
    np.testing.assert_allclose(pitch[:, 16], want[:, 16], rtol=1e-5, atol=1e-5)
    assert (pitch[:, 17:] == 7).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize(("rows", "k", "cols"), [(1, 1, 1), (30, 50, 17), (100, 64, 130),
                                                  (15, 3, 64), (8, 0, 5)])
def test_gather_gemm_momentum_has_the_product_and_update_bits(dtype, nesterov, rows, k,
                                                              cols) -> None:
    """The fused weight gradient + momentum update equals gather_gemm's product fed to the
    momentum loop, bit for bit, var and accum (masked tails, an empty reduction included)."""
    from gpugraph.devices.cpu import loops as cpu_loops

    if k:
        x, rowtab, redtab, b, _ = _gather_case(dtype, rows, k, cols)
    else:
        x, rowtab = np.zeros(4, dtype), np.zeros(rows, np.int64)
        redtab, b = np.zeros(0, np.int64), np.zeros((0, cols), dtype)
    rng = np.random.default_rng(1)
    var, accum = (rng.standard_normal((rows, cols)).astype(dtype) for _ in range(2))
    lr, momentum = dtype(0.05), dtype(0.9)
    grad = np.empty((rows, cols), dtype)
    cpu_conv.gather_gemm(x, rowtab, redtab, b, grad)
    want_var, want_accum = var.copy(), accum.copy()
    cpu_loops.get("momentum", np)(want_var.reshape(-1), want_accum.reshape(-1),
                                  grad.reshape(-1), lr, momentum, nesterov)
    cpu_conv.gather_gemm_momentum(x, rowtab, redtab, b, var, accum, lr, momentum, nesterov)
    np.testing.assert_array_equal(var.view(np.uint8), want_var.view(np.uint8))
    np.testing.assert_array_equal(accum.view(np.uint8), want_accum.view(np.uint8))


def _conv_graph(op_type, x, w_or_sizes, dy=None, **attrs):
    dtype = gg.dtypes.as_dtype(x.dtype if dy is None else dy.dtype)
    if op_type == "Conv2D":
        return out(op_type, gg.constant(x), gg.constant(w_or_sizes), T=dtype, **attrs)
    if op_type == "Conv2DBackpropFilter":
        return out(op_type, gg.constant(x), gg.constant(np.array(w_or_sizes, np.int32)),
                   gg.constant(dy), T=dtype, **attrs)
    return out(op_type, gg.constant(np.array(x, np.int32)), gg.constant(w_or_sizes),
               gg.constant(dy), T=dtype, **attrs)


def _run_both(monkeypatch, build):
    results = []
    for direct in ("1", "0"):
        monkeypatch.setenv("GPUGRAPH_CPU_CONV", direct)
        with gg.Graph().as_default():
            fetch = build()
            with gg.Session(config={"virtual_gpus": 0}) as sess:
                results.append(np.array(sess.run(fetch)))
    return results


CASES = [  # (n, h, w, cin, cout, kh, kw, strides, dilations, padding, explicit)
    (2, 9, 8, 3, 16, 3, 3, (1, 1), (1, 1), b"SAME", None),
    (2, 9, 8, 32, 64, 5, 5, (1, 1), (1, 1), b"SAME", None),
    (3, 11, 10, 4, 5, 3, 2, (2, 3), (1, 1), b"VALID", None),
    (2, 12, 12, 16, 33, 3, 3, (1, 1), (2, 2), b"SAME", None),
    (1, 7, 9, 1, 32, 5, 5, (1, 1), (1, 1), b"VALID", None),
    (2, 6, 7, 17, 20, 3, 3, (1, 1), (1, 1), b"EXPLICIT", [0, 0, 1, 4, 3, 0, 0, 0]),
    (2, 6, 6, 8, 16, 2, 2, (1, 1), (1, 1), b"EXPLICIT", [0, 0, 3, 3, 0, 2, 0, 0]),
    (0, 5, 5, 3, 16, 3, 3, (1, 1), (1, 1), b"SAME", None),
    (2, 9, 9, 8, 12, 3, 3, (2, 2), (1, 1), b"SAME", None),
    (2, 10, 7, 4, 6, 4, 3, (3, 2), (1, 1), b"SAME", None),
    (1, 8, 9, 3, 5, 3, 3, (2, 2), (1, 1), b"EXPLICIT", [0, 0, 1, 2, 2, 1, 0, 0]),
    (1, 9, 10, 2, 3, 1, 1, (3, 3), (1, 1), b"VALID", None),  # pixels no window reads
]


@pytest.mark.parametrize("op_type", ["Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", [b"NHWC", b"NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_convolutions_match_im2col(op_type, case, layout, dtype, calls,
                                          monkeypatch) -> None:
    n, h, w, cin, cout, kh, kw, strides, dilations, padding, explicit = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    filt = rng.standard_normal((kh, kw, cin, cout)).astype(dtype)
    pad = explicit or [0] * 8
    span_h, span_w = (kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1
    if padding == b"SAME":
        oh, ow = -(-h // strides[0]), -(-w // strides[1])
    else:
        oh = (h + pad[2] + pad[3] - span_h) // strides[0] + 1
        ow = (w + pad[4] + pad[5] - span_w) // strides[1] + 1
    dy = rng.standard_normal((n, oh, ow, cout)).astype(dtype)
    to_layout = (lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2))) \
        if layout == b"NCHW" else (lambda a: a)
    four = (lambda p: [1, 1, *p]) if layout == b"NCHW" else (lambda p: [1, *p, 1])
    if layout == b"NCHW" and explicit:
        pad = [*pad[:2], *pad[6:], *pad[2:6]]
    attrs = {"strides": four(strides), "dilations": four(dilations), "padding": padding,
             "data_format": layout, **({"explicit_paddings": pad} if explicit else {})}
    sizes = [n, cin, h, w] if layout == b"NCHW" else [n, h, w, cin]
    args = {"Conv2D": (to_layout(x), filt),
            "Conv2DBackpropFilter": (to_layout(x), [kh, kw, cin, cout], to_layout(dy)),
            "Conv2DBackpropInput": (sizes, filt, to_layout(dy))}[op_type]
    direct, im2col = _run_both(monkeypatch, lambda: _conv_graph(op_type, *args, **attrs))
    assert calls["n"] > 0
    tol = 1e-5 if dtype == np.float32 else 1e-12
    scale = max(1.0, float(np.abs(im2col).max()) if im2col.size else 1.0)
    np.testing.assert_allclose(direct, im2col, rtol=tol, atol=tol * scale)


def test_virtual_gpus_half_floats_and_the_switch_keep_im2col(monkeypatch) -> None:
    x = np.zeros((1, 4, 4, 16), np.float32)
    assert cpu_conv.available(np, x)
    assert not cpu_conv.available(object(), x)  # a virtual GPU's array module
    assert not cpu_conv.available(np, x.astype(np.float16))
    monkeypatch.setenv("GPUGRAPH_CPU_CONV", "0")
    assert not cpu_conv.available(np, x)


# --- cpu_threads: the plan owns the cores -------------------------------------------------------
def _plan_owns_cores(build) -> bool:
    with gg.Graph().as_default():
        fetch = build()
        with gg.Session(config={"virtual_gpus": 0}) as sess:
            sess.run(fetch)
            return any(plan.owns_cores for plan in sess._plans.values())


def test_only_plans_with_direct_convolutions_own_the_cores(monkeypatch) -> None:
    x = np.ones((1, 5, 5, 2), np.float32)
    w = np.ones((3, 3, 2, 16), np.float32)
    conv = lambda: _conv_graph("Conv2D", x, w, strides=[1, 1, 1, 1], padding=b"SAME")  # noqa: E731
    matmul = lambda: out("MatMul", gg.constant(np.ones((4, 4), np.float32)),  # noqa: E731
                         gg.constant(np.ones((4, 4), np.float32)), T=gg.float32)
    if not cpu_threads._controller():
        pytest.skip("threadpoolctl finds no BLAS library to limit")
    assert _plan_owns_cores(conv)
    assert not _plan_owns_cores(matmul)
    monkeypatch.setenv("GPUGRAPH_CPU_CONV", "0")
    assert not _plan_owns_cores(conv)


def test_owning_limits_blas_to_one_thread_and_restores_it() -> None:
    libs = cpu_threads._controller()
    if not libs:
        pytest.skip("threadpoolctl finds no BLAS library to limit")
    before = [lib.num_threads for lib in libs]
    with cpu_threads.owning(True):
        assert all(lib.num_threads == 1 for lib in libs)
        with cpu_threads.owning(True):  # nested: still limited, restored only by the outer
            pass
        assert all(lib.num_threads == 1 for lib in libs)
    assert [lib.num_threads for lib in libs] == before
    with cpu_threads.owning(False):
        assert [lib.num_threads for lib in libs] == before


def test_plans_on_two_threads_restore_blas_only_when_both_are_done(monkeypatch) -> None:
    """Thread A's plan ends while B's still runs: BLAS stays at one thread until B ends, then
    gets back the count it had before either (not the 1 that B would have saved).  (A fake
    BLAS: OpenBLAS 0.3.31 ignores set_num_threads from a thread once the main thread set it.)"""
    import threading

    class FakeBlas:
        num_threads = 3

        def set_num_threads(self, n: int) -> None:
            self.num_threads = n

    blas = FakeBlas()
    monkeypatch.setattr(cpu_threads, "_controller", lambda: [blas])
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def plan_a() -> None:
        with cpu_threads.owning(True):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def plan_b() -> None:
        a_in.wait(5)
        with cpu_threads.owning(True):
            b_in.set()
            a_out.wait(5)
            seen["after A"] = blas.num_threads

    threads = [threading.Thread(target=plan_a), threading.Thread(target=plan_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["after A"] == 1 and blas.num_threads == 3


def test_a_plan_in_a_second_thread_limits_blas_too() -> None:
    """threadpoolctl ignores thread-count changes from any Python thread but the first that
    made one; a session running in a worker thread must still limit BLAS."""
    import threading

    libs = cpu_threads._controller()
    if not libs:
        pytest.skip("threadpoolctl finds no BLAS library to limit")
    before = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(2)  # this thread (or an earlier one) now controls BLAS's count
    outside = [lib.num_threads for lib in libs]
    seen = {}

    def plan() -> None:
        with cpu_threads.owning(True):
            seen["inside"] = [lib.num_threads for lib in libs]

    try:
        worker = threading.Thread(target=plan)
        worker.start()
        worker.join(10)
        assert seen["inside"] == [1] * len(libs)
        assert [lib.num_threads for lib in libs] == outside
    finally:
        for lib, n in zip(libs, before, strict=True):
            lib.set_num_threads(n)


@pytest.mark.parametrize(("m", "k", "n"), [(64, 300, 1024), (3000, 64, 100), (8, 8, 8)])
def test_split_matmul_matches_numpy(m, k, n, monkeypatch) -> None:
    monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "2")
    rng = np.random.default_rng(5)
    a = rng.standard_normal((k, m)).astype(np.float32).T  # a transposed operand, as MatMul has
    b = rng.standard_normal((k, n)).astype(np.float32)
    monkeypatch.setattr(cpu_threads, "_SPLIT_MIN_FLOPS", 1)
    with cpu_threads.owning(True):
        got = cpu_threads.matmul(np, a, b)
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("m", "k", "n", "direct"), [
    (64, 300, 1024, True), (5, 1000, 900, True), (128, 64, 2000, True), (129, 300, 1024, False)])
def test_matmul_by_a_transposed_matrix_takes_the_direct_kernel(m, k, n, direct, calls,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "2")
    monkeypatch.setattr(cpu_threads, "_SPLIT_MIN_FLOPS", 1)
    rng = np.random.default_rng(6)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)  # MatMul(a, w, transpose_b=True)
    with cpu_threads.owning(True):
        got = cpu_threads.matmul(np, a, w.T)
    assert calls["n"] == int(direct)
    assert got.shape == (m, n) and got.flags.c_contiguous
    np.testing.assert_allclose(got, a.astype(np.float64) @ w.T.astype(np.float64), rtol=1e-4,
                               atol=1e-4)
