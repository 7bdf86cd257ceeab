"""CPU kernels for convolutions and pooling: the direct convolution (cpu_conv's gather-GEMM
kernel reads every window from the input through offset tables, with no patch matrix and no
multiply by a padded zero), im2col in cache-sized blocks with a numba col2im, and numba loops
for depthwise convolutions, max pooling and its gradient.

Each gives the generic body's bits (``ops/conv_ops.py``) and hands that body the arrays it does
not serve (half floats, NCHW where noted, ``GPUGRAPH_CPU_CONV=0``, no llvmlite or numba).
Conv2D -> BiasAdd [-> Relu] and MaxPoolGrad -> ReluGrad are fused chains here.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np

from gpugraph.devices.cpu import conv as cpu_conv
from gpugraph.devices.cpu import loops as cpu_loops
from gpugraph.devices.cpu import threads as cpu_threads
from gpugraph.ops import conv_ops
from gpugraph.ops.conv_ops import ConvAttrs, Geometry, swap_last_axes, tap_sources
from gpugraph.ops.registry import UNSERVED, BuildContext, FusedContext, fused, op

_PATCH_BLOCK_BYTES = 4 << 20  # patches built per GEMM: about the size of a core's L2 + share of L3

# The direct filter gradient streams the output gradient once per block of filter rows (and
# per block of columns): unless the gradient fits a core's L2 it goes through it in tiles of
# pixels whose gradient rows take about this many bytes, so a tile stays in L2 while every
# block of filter rows uses it.  W3's second convolution (a 3.2 MB gradient, 2 cores): AVX2
# (6 x 16-column blocks, each reading a quarter of every gradient row) 38.9 ms streamed
# whole, 11.5 ms in 128 KB tiles; AVX-512 (7 x 64) 10.4 ms, 8.8 ms.
_PIXEL_TILE_BYTES = 128 << 10
# Below this many input channels a filter gradient's classes (a tap's channels) are too few
# rows for the kernel's row blocks: W3's first convolution (one channel) ran 2.2x slower by
# classes than over the padded input; 3 channels, even; 8, 14% faster; 32, 10% faster.
_CLASS_MIN_CHANNELS = 8


# --- direct convolutions on the CPU (cpu_conv's gather GEMM; no patch matrix) -----------------
# The tables depend on shapes only: built once per shape (0.5 ms per W3 step when rebuilt).
@functools.lru_cache(maxsize=64)
def _window_starts(shape: tuple, out: tuple, steps: tuple) -> Any:
    """Flat offsets into a C-contiguous [N, H, W, C] array where each output pixel's window
    starts, [N * OH * OW] in pixel order (``steps``: the strides along H and W); read-only."""
    n, h, w, c = shape
    starts = (np.arange(n)[:, None, None] * (h * w * c)
              + np.arange(out[0])[None, :, None] * (steps[0] * w * c)
              + np.arange(out[1])[None, None, :] * (steps[1] * c))
    return _read_only(starts.reshape(-1).astype(np.int64))


@functools.lru_cache(maxsize=64)
def _window_taps(shape: tuple, kernel: tuple, dilations: tuple) -> Any:
    """Flat offsets of a window's (kh, kw, c) taps from its start, in filter row order;
    read-only."""
    _, _, w, c = shape
    taps = (np.arange(kernel[0])[:, None, None] * (dilations[0] * w * c)
            + np.arange(kernel[1])[None, :, None] * (dilations[1] * c)
            + np.arange(c)[None, None, :])
    return _read_only(taps.reshape(-1).astype(np.int64))


@functools.lru_cache(maxsize=64)
def _window_classes(shape: tuple, out: tuple, steps: tuple, dilations: tuple, before: tuple,
                    kernel: tuple, cols: int) -> tuple[Any, Any, tuple]:
    """The tables of :func:`cpu_conv.gather_gemm_classes` for a convolution of the unpadded
    C-contiguous [N, H, W, C] input (padded by ``before`` rows and columns, and by whatever the
    windows need after) into an [N, OH, OW, ``cols``] output, filter rows in (kh, kw, c) order.

    Along each axis an output index's window keeps a range of its taps inside the image; a
    class is the output pixels with the same pair of ranges (a 5x5 SAME window on 14x14: 5
    ranges per axis, 25 classes, the interior 10x10 one of them).  Per row: the offset its
    window starts at (negative where it starts in the padding) and its offset in the output;
    per tap: its offset in the window and its row's offset in the filter."""
    n, h, w, c = shape
    axes = [_tap_ranges(size, o, step, dil, pad, k) for size, o, step, dil, pad, k in
            zip((h, w), out, steps, dilations, before, kernel, strict=True)]
    parts = []
    for (h_lo, h_hi), ohs in axes[0].items():
        for (w_lo, w_hi), ows in axes[1].items():
            oh, ow = np.array(ohs), np.array(ows)
            rows = (_grid(n, oh * steps[0] - before[0], ow * steps[1] - before[1], h, w, c),
                    _grid(n, oh, ow, *out, cols))
            i = np.arange(h_lo, h_hi + 1)[:, None, None]
            j = np.arange(w_lo, w_hi + 1)[None, :, None]
            ch = np.arange(c)[None, None, :]
            taps = (i * (dilations[0] * w * c) + j * (dilations[1] * c) + ch,
                    ((i * kernel[1] + j) * c + ch) * cols)
            parts.append((rows, taps))
    return _class_tables(parts)


@functools.lru_cache(maxsize=64)
def _filter_classes(shape: tuple, out: tuple, steps: tuple, dilations: tuple, before: tuple,
                    kernel: tuple, cols: int) -> tuple[Any, Any, tuple]:
    """The tables of :func:`cpu_conv.gather_gemm_classes` for a filter gradient (the filter's
    rows, ``cols`` output channels) of a convolution as :func:`_window_classes`'s: a class per
    window tap (kh, kw), its rows the tap's input channels, its reduction the output pixels
    whose window has that tap inside the image, in pixel order.  Per row: the tap's offset in a
    window and its filter row's offset; per pixel: its window's start and its offset in the
    output gradient."""
    n, h, w, c = shape
    axes = [_tap_ranges(size, o, step, dil, pad, k) for size, o, step, dil, pad, k in
            zip((h, w), out, steps, dilations, before, kernel, strict=True)]
    inside = [[np.array(sorted(o for (lo, hi), outs in groups.items() if lo <= t <= hi
                               for o in outs), dtype=np.int64) for t in range(k)]
              for groups, k in zip(axes, kernel, strict=True)]
    channels = np.arange(c)
    parts = []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows = (i * (dilations[0] * w * c) + j * (dilations[1] * c) + channels,
                    ((i * kernel[1] + j) * c + channels) * cols)
            oh, ow = inside[0][i], inside[1][j]
            pixels = (_grid(n, oh * steps[0] - before[0], ow * steps[1] - before[1], h, w, c),
                      _grid(n, oh, ow, *out, cols))
            parts.append((rows, pixels))
    return _class_tables(parts)


def _grid(n: int, hs: Any, ws: Any, height: int, width: int, channels: int) -> Any:
    """Flat offsets of the pixels (image, hs[a], ws[b]) of an [n, height, width, channels]
    array, in (image, a, b) order (indices outside the array give offsets outside it)."""
    images = np.arange(n)[:, None, None]
    return (((images * height + hs[None, :, None]) * width + ws[None, None, :])
            * channels).reshape(-1)


def _class_tables(parts: list) -> tuple[Any, Any, tuple]:
    """:func:`cpu_conv.gather_gemm_classes`' read-only tables from per-class parts, each
    ((row offsets, row output offsets), (tap offsets, tap b offsets)) as broadcastable int
    arrays, and the classes."""
    rows, taps, classes = [], [], []
    row_at = tap_at = 0
    for part in parts:
        for pairs, into in zip(part, (rows, taps), strict=True):
            first, second = np.broadcast_arrays(*pairs)
            into.append(np.stack([first.reshape(-1), second.reshape(-1)], axis=1))
        classes.append((row_at, len(rows[-1]), tap_at, len(taps[-1])))
        row_at, tap_at = row_at + len(rows[-1]), tap_at + len(taps[-1])
    tables = [np.ascontiguousarray(np.concatenate(t).astype(np.int64)) if t else
              np.zeros((0, 2), np.int64) for t in (rows, taps)]
    return _read_only(tables[0]), _read_only(tables[1]), tuple(classes)


def _tap_ranges(size: int, out: int, step: int, dilation: int, before: int,
                taps: int) -> dict[tuple[int, int], list[int]]:
    """Output indices along one axis grouped by the range [lo, hi] of their window's taps
    that fall inside the input (an empty range, lo > hi, where none does)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for o in range(out):
        start = o * step - before
        lo = max(0, -(start // dilation))
        hi = min(taps - 1, (size - 1 - start) // dilation)
        groups.setdefault((lo, hi) if lo <= hi else (0, -1), []).append(o)
    return groups


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by every later call of this shape
    return array


def _pad_images(x: np.ndarray, before: tuple, after: tuple) -> np.ndarray:
    """NHWC ``x`` zero-padded by ``before`` / ``after`` rows and columns, C-contiguous: by the
    ``pad_images`` loop, split over images in a plan that owns the cores, else by np.pad."""
    if not any(before) and not any(after):
        return np.ascontiguousarray(x)
    loop = cpu_loops.get("pad_images", np)
    if loop is None or not cpu_loops.fits(x):
        widths = [(0, 0), (before[0], after[0]), (before[1], after[1]), (0, 0)]
        return np.ascontiguousarray(np.pad(x, widths))
    n, h, w, c = x.shape
    out = np.empty((n, h + before[0] + after[0], w + before[1] + after[1], c), dtype=x.dtype)
    cpu_threads.over_rows(loop, (out, x, before[0], before[1], x.dtype.type(0)), (0, 1))
    return out


def _direct_conv(x: Any, w: Any, a: ConvAttrs, gh: Geometry, gw: Geometry,
                 bias: Any = None, relu: bool = False) -> Any:
    """Conv2D of NHWC ``x``: a row of the gather GEMM per output pixel, ``k`` over its taps
    (``bias``, ``relu``: the kernel's epilogue, see :func:`cpu_conv.gather_gemm`)."""
    kh, kw, cin, cout = w.shape
    x = np.ascontiguousarray(x)
    out = np.empty((x.shape[0], gh.out, gw.out, cout), dtype=x.dtype)
    tables = _window_classes(x.shape, (gh.out, gw.out), a.strides, a.dilations,
                             (gh.pad_before, gw.pad_before), (kh, kw), cout)
    cpu_conv.gather_gemm_classes(x, *tables, np.ascontiguousarray(w).reshape(kh * kw * cin, cout),
                                 out.reshape(out.size // max(cout, 1), cout), bias=bias,
                                 relu=relu)
    return out


def _direct_filter_grad(x: Any, dy: Any, sizes: tuple, a: ConvAttrs, gh: Geometry,
                        gw: Geometry) -> Any:
    """Conv2DBackpropFilter: a row per filter tap, ``k`` over the output pixels, those whose
    window has the tap inside the image (:func:`_filter_classes`); for few input channels, or
    an output gradient larger than a core's L2, over the padded input, in pixel tiles."""
    kh, kw, cin, cout = sizes
    dw = np.empty((kh * kw * cin, cout), dtype=x.dtype)
    dy = np.ascontiguousarray(dy).reshape(dy.size // max(cout, 1), cout)
    if dy.nbytes <= _PIXEL_TILE_BYTES and cin >= _CLASS_MIN_CHANNELS:
        x = np.ascontiguousarray(x)
        tables = _filter_classes(x.shape, (gh.out, gw.out), a.strides, a.dilations,
                                 (gh.pad_before, gw.pad_before), (kh, kw), cout)
        cpu_conv.gather_gemm_classes(x, *tables, dy, dw)
        return dw.reshape(sizes)
    xpad = _pad_images(x, (gh.pad_before, gw.pad_before), (gh.pad_after, gw.pad_after))
    cpu_conv.gather_gemm(xpad, _window_taps(xpad.shape, (kh, kw), a.dilations),
                         _window_starts(xpad.shape, (gh.out, gw.out), a.strides),
                         dy, dw, k_tile=max(1, _PIXEL_TILE_BYTES // max(1, dy.strides[0])))
    return dw.reshape(sizes)


def _direct_input_grad(dy: Any, w: Any, shape: tuple, a: ConvAttrs, gh: Geometry,
                       gw: Geometry) -> Any:
    """Conv2DBackpropInput: a row per input pixel, ``k`` over the (kh, kw, output channel)
    taps whose output pixel exists (:func:`_input_grad_classes`), ``b`` the filter with its
    channel axes swapped; at stride 1, the forward convolution of the output gradient padded
    for a full correlation, with the filter flipped."""
    n, h, wd, c = shape
    kh, kw, cin, cout = w.shape
    dx = np.empty((n, h, wd, c), dtype=dy.dtype)
    dy = np.ascontiguousarray(dy)
    swapped = np.ascontiguousarray(np.swapaxes(w, 2, 3)).reshape(kh * kw * cout, cin)
    tables = _input_grad_classes(dy.shape, (h, wd), a.strides, a.dilations,
                                 (gh.pad_before, gw.pad_before), (kh, kw), c)
    cpu_conv.gather_gemm_classes(dy, *tables, swapped, dx.reshape(n * h * wd, c))
    return dx


@functools.lru_cache(maxsize=64)
def _input_grad_classes(shape: tuple, size: tuple, steps: tuple, dilations: tuple,
                        before: tuple, kernel: tuple, cols: int) -> tuple[Any, Any, tuple]:
    """The tables of :func:`cpu_conv.gather_gemm_classes` for the input gradient [N, H, W,
    ``cols``] (``size``: H, W) of a convolution whose C-contiguous output gradient has
    ``shape`` [N, OH, OW, O], filter rows in (kh, kw, o) order (the filter with its channel
    axes swapped).

    Input row ``i`` gets tap ``k`` from output row ``(i + pad - k * dilation) / stride`` where
    that is a whole number in [0, OH): along each axis the input indices are grouped by that
    set of taps (and, at a stride, by ``(i + pad) % stride``, which makes the output row of
    every tap a fixed offset from the input row's).  Taps go from the last to the first,
    output rows in increasing order: the order of a stride-1 correlation with the flipped
    filter."""
    n, oh, ow, o = shape
    axes = [_input_taps(i, out, step, dil, pad, k) for i, out, step, dil, pad, k in
            zip(size, (oh, ow), steps, dilations, before, kernel, strict=True)]
    parts = []
    for (h_taps, h_base, h_rows), (w_taps, w_base, w_rows) in itertools.product(*axes):
        rows = (_grid(n, np.array(h_base), np.array(w_base), oh, ow, o),
                _grid(n, np.array(h_rows), np.array(w_rows), *size, cols))
        h_pairs = np.array(h_taps, dtype=np.int64).reshape(-1, 2)  # (tap, row offset)
        w_pairs = np.array(w_taps, dtype=np.int64).reshape(-1, 2)
        i, di = h_pairs[:, 0, None, None], h_pairs[:, 1, None, None]
        j, dj = w_pairs[None, :, 0, None], w_pairs[None, :, 1, None]
        ch = np.arange(o)[None, None, :]
        taps = ((di * ow + dj) * o + ch, ((i * kernel[1] + j) * o + ch) * cols)
        parts.append((rows, taps))
    return _class_tables(parts)


def _input_taps(size: int, out: int, step: int, dilation: int, before: int,
                taps: int) -> list[tuple[tuple, list[int], list[int]]]:
    """Input indices along one axis grouped by the taps that reach them: per group, the taps
    as (tap, output-row offset) pairs from the last tap to the first, each index's base
    output row (the tap's output row is base + offset), and the indices."""
    groups: dict[tuple, tuple[list[int], list[int]]] = {}
    for i in range(size):
        phase = (i + before) % step
        found = tuple((k, (phase - k * dilation) // step) for k in reversed(range(taps))
                      if (i + before - k * dilation) % step == 0
                      and 0 <= (i + before - k * dilation) // step < out)
        base = (i + before - phase) // step
        bases, indices = groups.setdefault((found, phase if found else 0), ([], []))
        bases.append(base)
        indices.append(i)
    return [(found, bases, indices) for (found, _), (bases, indices) in groups.items()]


# --- the three convolutions -------------------------------------------------------------------
def _conv(x: Any, w: Any, a: ConvAttrs, gh: Geometry, gw: Geometry) -> Any:
    return _direct_conv(x, w, a, gh, gw) if cpu_conv.available(np, x, w) else None


def _filter_grad(x: Any, dy: Any, sizes: tuple, a: ConvAttrs, gh: Geometry,
                 gw: Geometry) -> Any:
    return _direct_filter_grad(x, dy, sizes, a, gh, gw) if cpu_conv.available(np, x, dy) \
        else None


def _input_grad(dy: Any, w: Any, shape: tuple, a: ConvAttrs, gh: Geometry,
                gw: Geometry) -> Any:
    return _direct_input_grad(dy, w, shape, a, gh, gw) if cpu_conv.available(np, w, dy) \
        else None


@op("Conv2D", device="cpu")
def _conv2d(ctx: BuildContext):
    return conv_ops.conv2d(ctx, _conv, _PATCH_BLOCK_BYTES)


@op("Conv2DBackpropFilter", device="cpu")
def _conv2d_backprop_filter(ctx: BuildContext):
    return conv_ops.conv2d_backprop_filter(ctx, _filter_grad, _PATCH_BLOCK_BYTES)


@op("Conv2DBackpropInput", device="cpu")
def _conv2d_backprop_input(ctx: BuildContext):
    loop = cpu_loops.get("col2im", np)

    def col2im(cols: Any, dx: Any, a: ConvAttrs, kh: int, kw: int) -> bool:
        if loop is None or not cpu_loops.fits(cols, dx, same_shape=False):
            return False
        loop(cols, dx, kh, kw, *a.strides, *a.dilations)
        return True

    return conv_ops.conv2d_backprop_input(ctx, _input_grad, _PATCH_BLOCK_BYTES, col2im)


@fused(("Conv2D", "BiasAdd", "Relu"), ("Conv2D", "BiasAdd"), device="cpu")
def _conv_bias_relu(fctx: FusedContext):
    """Relu(BiasAdd(Conv2D(x, w), bias)) (without the Relu for a two-op chain) in one pass,
    the bias and Relu applied by the direct kernel as it stores each sum: the bits of the ops.
    UNSERVED where that kernel does not serve the inputs (the ops then run one by one, which
    also reports any bad input)."""
    a, relu = ConvAttrs(fctx.contexts[0]), len(fctx.contexts) == 3

    def kernel(x: Any, w: Any, bias: Any) -> Any:
        if a.nchw or x.ndim != 4 or w.ndim != 4 or bias.ndim != 1 or \
                x.shape[3] != w.shape[2] or bias.shape[0] != w.shape[3] or \
                not cpu_conv.available(np, x, w, bias):
            return UNSERVED
        gh, gw = a.geometry(x.shape[1], x.shape[2], w.shape[0], w.shape[1])
        return _direct_conv(x, w, a, gh, gw, np.ascontiguousarray(bias), relu)

    return kernel


# --- depthwise convolutions: loops that pad as they read (no padded copy) -----------------------
@op("DepthwiseConv2dNative", device="cpu")
def _depthwise_conv2d(ctx: BuildContext):
    loop = cpu_loops.get("depthwise", np)

    def fast(x: Any, w: Any, a: ConvAttrs, gh: Geometry, gw: Geometry, shape: tuple) -> Any:
        x, wt = np.ascontiguousarray(x), swap_last_axes(np, w)
        out = np.empty(shape, dtype=x.dtype)
        if not cpu_loops.fits(out, x, wt, same_shape=False):
            return None
        cpu_loops.over_images(loop, (out, x, wt, *a.strides, *a.dilations, gh.pad_before,
                                     gw.pad_before), (0, 1))
        return out

    return conv_ops.depthwise_conv2d(ctx, None if loop is None else fast)


@op("DepthwiseConv2dNativeBackpropFilter", device="cpu")
def _depthwise_backprop_filter(ctx: BuildContext):
    loop = cpu_loops.get("depthwise_backprop_filter", np)

    def fast(x: Any, dy: Any, a: ConvAttrs, gh: Geometry, gw: Geometry, sizes: tuple) -> Any:
        if not dy.size:
            return None
        kh, kw, c, m = sizes
        x, dy_mc = np.ascontiguousarray(x), swap_last_axes(np, dy)
        parts = np.empty((dy.shape[0], kh, kw, m, c), dtype=dy.dtype)
        if not cpu_loops.fits(parts, x, dy_mc, same_shape=False):
            return None
        cpu_loops.over_images(loop, (parts, x, dy_mc, *a.strides, *a.dilations,
                                     gh.pad_before, gw.pad_before), (0, 1, 2))
        return swap_last_axes(np, parts.sum(axis=0))

    return conv_ops.depthwise_backprop_filter(ctx, None if loop is None else fast)


@op("DepthwiseConv2dNativeBackpropInput", device="cpu")
def _depthwise_backprop_input(ctx: BuildContext):
    loop = cpu_loops.get("depthwise_backprop_input", np)

    def fast(dy: Any, w: Any, a: ConvAttrs, gh: Geometry, gw: Geometry, shape: tuple) -> Any:
        # [.., m, c] layouts: a free view when m == 1 (MobileNet)
        n, h, wd, c = shape
        kh, kw = w.shape[:2]
        dy_mc, wt = swap_last_axes(np, dy), swap_last_axes(np, w)
        dx = np.empty((n, h, wd, c), dtype=dy.dtype)
        if not cpu_loops.fits(dx, dy_mc, wt, same_shape=False):
            return None
        rows = tap_sources(h, gh, kh, a.strides[0], a.dilations[0])
        cols = tap_sources(wd, gw, kw, a.strides[1], a.dilations[1])
        cpu_loops.over_images(loop, (dx, dy_mc, wt, rows, cols), (0, 1))
        return dx

    return conv_ops.depthwise_backprop_input(ctx, None if loop is None else fast)


# --- max pooling ----------------------------------------------------------------------------------
def _max_pool_loop() -> Any:
    loop = cpu_loops.get("max_pool", np)
    if loop is None:
        return None

    def fast(xpad: Any, a: ConvAttrs, gh: Geometry, gw: Geometry) -> Any:
        if not cpu_loops.fits(xpad):
            return None
        kh, kw = a.ksize
        out = np.empty((xpad.shape[0], gh.out, gw.out, xpad.shape[3]), dtype=xpad.dtype)
        cpu_threads.over_rows(loop, (out, xpad, kh, kw, *a.strides, *a.dilations), (0, 1))
        return out

    return fast


@op("MaxPool", device="cpu")
def _max_pool(ctx: BuildContext):
    return conv_ops.max_pool(ctx, _max_pool_loop())


@op("MaxPoolV2", device="cpu")
def _max_pool_v2(ctx: BuildContext):
    return conv_ops.max_pool(ctx, _max_pool_loop(), windows_as_inputs=True)


def _tiled_loop(relu_grad: bool) -> Any:
    """MaxPoolGrad of NHWC ``x`` whose windows tile it (``blocks``: conv_ops.tiles) by the
    ``max_pool_grad_tiles`` loop, split over images in a plan that owns the cores; with
    ``relu_grad``, times ``x > 0`` as ReluGrad would.  None where the loop does not serve."""
    loop = cpu_loops.get("max_pool_grad_tiles", np)
    if loop is None:
        return None

    def tiled(a: ConvAttrs, blocks: Any, x: Any, y: Any, dy: Any) -> Any:
        if blocks is None or not cpu_loops.fits(x, y, dy, same_shape=False) or \
                not y.shape == dy.shape == blocks.shape[:2] + blocks.shape[3:4] + \
                blocks.shape[5:]:
            return None
        out = np.empty_like(x)
        cpu_threads.over_rows(loop, (x, y, dy, out, *a.ksize, relu_grad, x.dtype.type(0)),
                              (0, 1, 2, 3))
        return out

    return tiled


@op("MaxPoolGrad", device="cpu")
def _max_pool_grad(ctx: BuildContext):
    return conv_ops.max_pool_grad(ctx, _tiled_loop(relu_grad=False))


@op("MaxPoolGradV2", device="cpu")
def _max_pool_grad_v2(ctx: BuildContext):
    return conv_ops.max_pool_grad(ctx, _tiled_loop(relu_grad=False), windows_as_inputs=True)


@fused(("MaxPoolGrad", "ReluGrad"), device="cpu")
def _max_pool_relu_grad(fctx: FusedContext):
    """ReluGrad(MaxPoolGrad(x, y, dy), features=x) in one pass (the gradient of
    MaxPool(Relu(.)), whose pooled input is the Relu's output): the bits of the two ops.
    UNSERVED where the tiled loop does not serve these inputs."""
    a, tiled = ConvAttrs(fctx.contexts[0], pool=True), _tiled_loop(relu_grad=True)
    if tiled is None:
        return None

    def kernel(x: Any, y: Any, dy: Any) -> Any:
        if a.nchw or x.ndim != 4:
            return UNSERVED
        out = tiled(a, conv_ops.tiles(x, a), x, y, dy)
        return UNSERVED if out is None else out

    return kernel
