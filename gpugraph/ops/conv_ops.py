"""Conv2D with both backprops, MaxPool/AvgPool with their gradients (NHWC; NCHW transposed).

On the real CPU, float convolutions and both their gradients are direct: cpu_conv's
gather-GEMM kernel reads every window from the input through offset tables, with no patch
matrix and no multiply by a padded zero (``_direct_*`` below).  Everywhere else (CuPy,
virtual GPUs, half floats, ``GPUGRAPH_CPU_CONV=0``) convolutions are im2col + GEMM: a strided
*view* of the padded input gives every patch without copying, a reshape materialises the
patch matrix, and BLAS does the rest.  The input gradient is the transpose: a GEMM into patch
space, then a strided add per kernel tap (a numba loop on the CPU).  Patch matrices are
25-100x the size of the input, so all three work through the batch a few images at a time:
each block of patches is built and consumed while it is still in cache, instead of a round
trip through memory (1.5-2x faster for W3's 5x5 convolutions on the CPU).
Inputs with few channels (a first layer) build the transposed patch matrix instead, tap by tap,
copying whole image rows rather than runs of a few values.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops import cpu_conv, cpu_loops, cpu_threads
from gpugraph.ops.registry import BuildContext, op

_PATCH_BLOCK_BYTES = 4 << 20  # patches built per GEMM: about the size of a core's L2 + share of L3
_SHORT_RUN_BYTES = 64  # window rows shorter than a cache line: patches built tap by tap
# The direct filter gradient streams the whole output gradient once per block of filter rows;
# past the size of a share of L3 it goes through it in tiles of this many pixels instead.
_PIXEL_TILE = 2048
_TILED_ABOVE_BYTES = 8 << 20
# Below this many input channels a filter gradient's classes (a tap's channels) are too few
# rows for the kernel's row blocks: W3's first convolution (one channel) ran 2.2x slower by
# classes than over the padded input; 3 channels, even; 8, 14% faster; 32, 10% faster.
_CLASS_MIN_CHANNELS = 8


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Output size and padding of one spatial dimension."""

    out: int
    pad_before: int
    pad_after: int


def output_geometry(node: Any, size: int, k: int, stride: int, dilation: int, padding: bytes,
                    explicit: tuple[int, int]) -> Geometry:
    """TF's output size and padding of one spatial dimension (VALID, SAME or EXPLICIT)."""
    span = (k - 1) * dilation + 1
    if padding == b"VALID":
        out, before, after = (size - span) // stride + 1, 0, 0
    elif padding == b"SAME":
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        before, after = total // 2, total - total // 2
    else:  # EXPLICIT
        before, after = explicit
        out = (size + before + after - span) // stride + 1
    if out < 0 or (padding == b"VALID" and size < span):
        raise errors.InvalidArgumentError(
            None, node, f"Computed output size would be negative: {out} [input_size: {size}, "
            f"effective_filter_size: {span}, stride: {stride}]")
    return Geometry(max(out, 0), before, after)


class _ConvAttrs:
    """Conv2D-family attrs, normalised to NHWC order."""

    def __init__(self, ctx: BuildContext, pool: bool = False, windows_as_inputs: bool = False):
        self.nchw = ctx.attr_or("data_format", b"NHWC").startswith(b"NC")
        pick = self._pick = (lambda v: (v[2], v[3])) if self.nchw else (lambda v: (v[1], v[2]))
        # MaxPoolV2 and its gradient take ksize and strides as (host) inputs: with_windows().
        self.strides = None if windows_as_inputs else pick(ctx.attr("strides"))
        self.dilations = (1, 1) if pool else pick(ctx.attr_or("dilations", [1, 1, 1, 1]))
        self.ksize = pick(ctx.attr("ksize")) if pool and not windows_as_inputs else None
        self.padding = ctx.attr("padding")
        explicit = ctx.attr_or("explicit_paddings", []) or [0] * 8
        pairs = [tuple(explicit[i:i + 2]) for i in range(0, 8, 2)]
        self.explicit = (pairs[2], pairs[3]) if self.nchw else (pairs[1], pairs[2])
        self.node = ctx.op

    def with_windows(self, ksize: Any, strides: Any) -> _ConvAttrs:
        """A copy with the window sizes and strides given as 4-element vectors (checked as
        MaxPoolV2's kernel checks them)."""
        k, st = ([int(v) for v in np.asarray(value).reshape(-1)] for value in (ksize, strides))
        if len(k) != 4 or len(st) != 4:
            raise errors.InvalidArgumentError(
                None, self.node, "Sliding window ksize and strides fields must specify 4 "
                "dimensions")
        outer = (0, 1) if self.nchw else (0, 3)  # batch and depth positions
        if any(k[i] != 1 or st[i] != 1 for i in outer):
            raise errors.UnimplementedError(
                None, self.node, "Pooling is not yet supported on the batch dimension.")
        if min(k) < 1 or min(st) < 1:
            raise errors.InvalidArgumentError(
                None, self.node, f"Sliding window ksize and strides must be positive: ksize {k}, "
                f"strides {st}")
        other = copy.copy(self)
        other.ksize, other.strides = self._pick(k), self._pick(st)
        return other

    def geometry(self, h: int, w: int, kh: int, kw: int) -> tuple[Geometry, Geometry]:
        return (output_geometry(self.node, h, kh, self.strides[0], self.dilations[0], self.padding,
                          self.explicit[0]),
                output_geometry(self.node, w, kw, self.strides[1], self.dilations[1], self.padding,
                          self.explicit[1]))


def _to_nhwc(xp: Any, x: Any, nchw: bool) -> Any:
    return xp.transpose(x, (0, 2, 3, 1)) if nchw else x


def _from_nhwc(xp: Any, x: Any, nchw: bool) -> Any:
    return xp.ascontiguousarray(xp.transpose(x, (0, 3, 1, 2))) if nchw else x


def pad_spatial(xp: Any, x: Any, geo: Any, value: float = 0) -> Any:
    """Channels-last ``x`` padded in its spatial dimensions as ``geo`` (one Geometry each)
    says, with ``value``; ``x`` itself when nothing is padded (2-D and 3-D ops alike)."""
    if not any(g.pad_before or g.pad_after for g in geo):
        return x
    widths = [(0, 0), *((g.pad_before, g.pad_after) for g in geo), (0, 0)]
    return xp.pad(x, widths, constant_values=value)


def tap_view(x: Any, geo: Any, strides: Any, dilations: Any, tap: tuple) -> Any:
    """The [N, *out, C] view of padded ``x`` that window tap ``tap`` reads (2-D or 3-D)."""
    index = [slice(None)]
    for t, g, s, d in zip(tap, geo, strides, dilations):
        index.append(slice(t * d, t * d + (g.out - 1) * s + 1, s))
    return x[tuple(index)]


def max_over_taps(xp: Any, xpad: Any, geo: Any, strides: Any, dilations: Any,
                  ksize: Any) -> Any:
    """Max pooling of padded channels-last ``xpad`` (2-D or 3-D): one elementwise maximum per
    window tap, in row-major tap order (NaN wins either way), about 4x faster on the CPU than
    a reduction over the strided window axes of a window view."""
    out = None
    for tap in itertools.product(*(range(k) for k in ksize)):
        view = tap_view(xpad, geo, strides, dilations, tap)
        out = xp.array(view, copy=True) if out is None else xp.maximum(out, view, out=out)
    return out


def _windows(xp: Any, xpad: Any, a: _ConvAttrs, gh: Geometry, gw: Geometry, kh: int,
             kw: int) -> Any:
    """A [N, OH, OW, KH, KW, C] strided view of the padded input's patches."""
    n, _, _, c = xpad.shape
    sn, sh, sw, sc = xpad.strides
    shape = (n, gh.out, gw.out, kh, kw, c)
    strides = (sn, sh * a.strides[0], sw * a.strides[1], sh * a.dilations[0],
               sw * a.dilations[1], sc)
    return xp.lib.stride_tricks.as_strided(xpad, shape, strides) if xp is np else \
        xp.lib.stride_tricks.as_strided(xpad, shape=shape, strides=strides)


def _blocks(xp: Any, n: int, bytes_per_image: int) -> list[slice]:
    """The batch in runs of images whose patch matrices fit one ``_PATCH_BLOCK_BYTES`` block
    (one empty run for an empty batch).  Only the CPU's caches want this: elsewhere the whole
    batch is one block (one GEMM; a GPU has the memory and no cache to keep it in)."""
    if xp is not np:
        return [slice(0, n)]
    step = max(1, _PATCH_BLOCK_BYTES // max(bytes_per_image, 1))
    return [slice(s, min(n, s + step)) for s in range(0, max(n, 1), step)]


def _count(block: slice) -> int:
    return block.stop - block.start


def _patch_blocks(xp: Any, x: Any, a: _ConvAttrs, gh: Geometry, gw: Geometry, kh: int,
                  kw: int) -> Iterator[tuple[slice, Any]]:
    """(images, patch matrix [images * OH * OW, KH * KW * C]) for runs of images covering the
    batch (the im2col of ``x``).  A matrix may share its buffer with the next one: consume each
    before asking for the next."""
    n, c = x.shape[0], x.shape[3]
    depth = kh * kw * c
    xpad = xp.ascontiguousarray(pad_spatial(xp, x, (gh, gw)))
    if kw * c * x.dtype.itemsize < _SHORT_RUN_BYTES:
        yield slice(0, n), _tap_major_patches(xp, xpad, a, gh, gw, kh, kw).T
        return
    view = _windows(xp, xpad, a, gh, gw, kh, kw)
    runs = _blocks(xp, n, gh.out * gw.out * depth * x.dtype.itemsize)
    if len(runs) == 1:
        yield runs[0], view.reshape(n * gh.out * gw.out, depth)
        return
    buf = np.empty((_count(runs[0]), *view.shape[1:]), dtype=x.dtype)  # several runs: numpy
    for b in runs:
        part = buf[:_count(b)]
        np.copyto(part, view[b])
        yield b, part.reshape(_count(b) * gh.out * gw.out, depth)


def _tap_major_patches(xp: Any, xpad: Any, a: _ConvAttrs, gh: Geometry, gw: Geometry, kh: int,
                       kw: int) -> Any:
    """The patch matrix transposed, [KH * KW * C, N * OH * OW], built tap by tap.

    For inputs with few channels (an image's first layer) a window row's taps are a run of a
    few values, and a row-major patch matrix copies them a handful at a time (2.5x slower for
    MNIST's 5x5x1 filter); tap by tap, each copy moves whole rows of the image instead.
    """
    n, c = xpad.shape[0], xpad.shape[3]
    patches = xp.empty((kh, kw, c, n, gh.out, gw.out), dtype=xpad.dtype)
    for i in range(kh):
        for j in range(kw):
            xp.copyto(patches[i, j], xp.moveaxis(_tap(xpad, a, gh, gw, i, j), 3, 0))
    return patches.reshape(kh * kw * c, n * gh.out * gw.out)


@op("Conv2D")
def _conv2d(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx), ctx.xp

    def kernel(x: Any, w: Any) -> Any:
        x = _to_nhwc(xp, x, a.nchw)
        kh, kw, cin, cout = w.shape
        if x.shape[3] != cin:
            raise errors.InvalidArgumentError(
                None, a.node, f"input depth must be evenly divisible by filter depth: "
                f"{x.shape[3]} vs {cin}")
        gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
        if cpu_conv.available(xp, x, w):
            return _from_nhwc(xp, _direct_conv(x, w, a, gh, gw), a.nchw)
        n, rows = x.shape[0], gh.out * gw.out
        w2 = w.reshape(kh * kw * cin, cout)
        out = None
        for b, cols in _patch_blocks(xp, x, a, gh, gw, kh, kw):
            if b.start == 0 and b.stop == n:
                out = xp.matmul(cols, w2)
            else:  # several runs (numpy): each GEMM writes its rows of the output in place
                out = np.empty((n * rows, cout), dtype=x.dtype) if out is None else out
                np.matmul(cols, w2, out=out[b.start * rows:b.stop * rows])
        return _from_nhwc(xp, out.reshape(n, gh.out, gw.out, cout), a.nchw)

    def with_bias(x: Any, w: Any, bias: Any, relu: bool) -> Any:
        """Relu(BiasAdd(Conv2D(x, w), bias)) (without the Relu when ``relu`` is false) in one
        pass, the bias and Relu applied by the direct kernel as it stores each sum: the bits
        of the three ops.  None where that kernel does not serve these inputs (the caller
        then runs the ops one by one, which also reports any bad input)."""
        if a.nchw or x.ndim != 4 or w.ndim != 4 or bias.ndim != 1 or \
                x.shape[3] != w.shape[2] or bias.shape[0] != w.shape[3] or \
                not cpu_conv.available(xp, x, w, bias):
            return None
        gh, gw = a.geometry(x.shape[1], x.shape[2], w.shape[0], w.shape[1])
        return _direct_conv(x, w, a, gh, gw, np.ascontiguousarray(bias), relu)

    kernel.with_bias = with_bias  # for the plan's remapper (gpugraph/remap.py)
    return kernel


@op("Conv2DBackpropFilter", host_inputs=(1,))
def _conv2d_backprop_filter(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx), ctx.xp

    def kernel(x: Any, filter_sizes: Any, dy: Any) -> Any:
        kh, kw, cin, cout = (int(v) for v in np.asarray(filter_sizes))
        x, dy = _to_nhwc(xp, x, a.nchw), _to_nhwc(xp, dy, a.nchw)
        gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
        if cpu_conv.available(xp, x, dy):
            return _direct_filter_grad(x, dy, (kh, kw, cin, cout), a, gh, gw)
        dw = None
        for b, cols in _patch_blocks(xp, x, a, gh, gw, kh, kw):
            part = xp.matmul(cols.T, dy[b].reshape(cols.shape[0], cout))
            dw = part if dw is None else xp.add(dw, part, out=dw)
        return dw.reshape(kh, kw, cin, cout)

    return kernel


@op("Conv2DBackpropInput", host_inputs=(0,))
def _conv2d_backprop_input(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx), ctx.xp
    col2im = cpu_loops.get("col2im", xp)

    def kernel(input_sizes: Any, w: Any, dy: Any) -> Any:
        n, h, wd, c = _nhwc_sizes(input_sizes, a.nchw)
        dy = _to_nhwc(xp, dy, a.nchw)
        kh, kw, cin, cout = w.shape
        gh, gw = a.geometry(h, wd, kh, kw)
        if cpu_conv.available(xp, w, dy):
            return _from_nhwc(xp, _direct_input_grad(dy, w, (n, h, wd, c), a, gh, gw), a.nchw)
        wt = w.reshape(kh * kw * cin, cout).T
        dx = xp.zeros((n, h + gh.pad_before + gh.pad_after, wd + gw.pad_before + gw.pad_after, c),
                      dtype=dy.dtype)
        for b in _blocks(xp, n, gh.out * gw.out * kh * kw * cin * dy.dtype.itemsize):
            cols = xp.matmul(dy[b].reshape(_count(b) * gh.out * gw.out, cout), wt).reshape(
                _count(b), gh.out, gw.out, kh * kw * cin)
            if col2im is not None and cpu_loops.fits(cols, dx, same_shape=False):
                col2im(cols, dx[b], kh, kw, *a.strides, *a.dilations)
            else:
                _add_taps(dx[b], cols.reshape(*cols.shape[:3], kh, kw, cin), a, gh, gw)
        dx = dx[:, gh.pad_before:gh.pad_before + h, gw.pad_before:gw.pad_before + wd, :]
        return _from_nhwc(xp, xp.ascontiguousarray(dx), a.nchw)

    return kernel


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


def _direct_conv(x: Any, w: Any, a: _ConvAttrs, gh: Geometry, gw: Geometry,
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


def _direct_filter_grad(x: Any, dy: Any, sizes: tuple, a: _ConvAttrs, gh: Geometry,
                        gw: Geometry) -> Any:
    """Conv2DBackpropFilter: a row per filter tap, ``k`` over the output pixels, those whose
    window has the tap inside the image (:func:`_filter_classes`); for few input channels, or
    an output gradient too large for a share of L3, over the padded input, in pixel tiles."""
    kh, kw, cin, cout = sizes
    dw = np.empty((kh * kw * cin, cout), dtype=x.dtype)
    dy = np.ascontiguousarray(dy).reshape(dy.size // max(cout, 1), cout)
    if dy.nbytes <= _TILED_ABOVE_BYTES and cin >= _CLASS_MIN_CHANNELS:
        x = np.ascontiguousarray(x)
        tables = _filter_classes(x.shape, (gh.out, gw.out), a.strides, a.dilations,
                                 (gh.pad_before, gw.pad_before), (kh, kw), cout)
        cpu_conv.gather_gemm_classes(x, *tables, dy, dw)
        return dw.reshape(sizes)
    xpad = _pad_images(x, (gh.pad_before, gw.pad_before), (gh.pad_after, gw.pad_after))
    cpu_conv.gather_gemm(xpad, _window_taps(xpad.shape, (kh, kw), a.dilations),
                         _window_starts(xpad.shape, (gh.out, gw.out), a.strides),
                         dy, dw, k_tile=_PIXEL_TILE)
    return dw.reshape(sizes)


def _direct_input_grad(dy: Any, w: Any, shape: tuple, a: _ConvAttrs, gh: Geometry,
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


def _add_taps(dx: Any, cols: Any, a: _ConvAttrs, gh: Geometry, gw: Geometry) -> None:
    """dx[n, oh*stride + i*dilation, ow*stride + j*dilation, :] += cols[n, oh, ow, i, j, :]."""
    for i in range(cols.shape[3]):
        for j in range(cols.shape[4]):
            _tap(dx, a, gh, gw, i, j)[...] += cols[:, :, :, i, j, :]


# --- depthwise convolutions (MobileNet) -------------------------------------------------------
# Channel c with multiplier m writes output channel c * M + m.  Each window tap is a strided view
# of the padded input, so every op is one multiply-add per tap over [N, OH, OW, C, M]: no patch
# matrix, and no per-channel GEMM with a 9-long inner dimension.
def _tap(x: Any, a: _ConvAttrs, gh: Geometry, gw: Geometry, i: int, j: int) -> Any:
    return tap_view(x, (gh, gw), a.strides, a.dilations, (i, j))


@op("DepthwiseConv2dNative")
def _depthwise_conv2d(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx), ctx.xp
    loop = cpu_loops.get("depthwise", xp)

    def kernel(x: Any, w: Any) -> Any:
        x = _to_nhwc(xp, x, a.nchw)
        kh, kw, c, m = w.shape
        if x.shape[3] != c:
            raise errors.InvalidArgumentError(
                None, a.node, f"input and filter must have the same depth: {x.shape[3]} vs {c}")
        gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
        shape = (x.shape[0], gh.out, gw.out, c, m)
        if loop is not None:  # the loop pads as it reads: no padded copy
            x, wt = xp.ascontiguousarray(x), _swap_last_axes(xp, w)
            out = xp.empty(shape, dtype=x.dtype)
            if cpu_loops.fits(out, x, wt, same_shape=False):
                cpu_loops.over_images(loop, (out, x, wt, *a.strides, *a.dilations,
                                             gh.pad_before, gw.pad_before), (0, 1))
                return _from_nhwc(xp, out.reshape(*shape[:3], c * m), a.nchw)
        xpad = pad_spatial(xp, x, (gh, gw))
        out = xp.zeros(shape, dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                out += _tap(xpad, a, gh, gw, i, j)[..., None] * w[i, j]
        return _from_nhwc(xp, out.reshape(*shape[:3], c * m), a.nchw)

    return kernel


@op("DepthwiseConv2dNativeBackpropFilter", host_inputs=(1,))
def _depthwise_backprop_filter(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx), ctx.xp
    loop = cpu_loops.get("depthwise_backprop_filter", xp)

    def kernel(x: Any, filter_sizes: Any, dy: Any) -> Any:
        kh, kw, c, m = (int(v) for v in np.asarray(filter_sizes))
        x, dy = _to_nhwc(xp, x, a.nchw), _to_nhwc(xp, dy, a.nchw)
        gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
        dy = dy.reshape(*dy.shape[:3], c, m)
        if loop is not None and dy.size:  # the loop pads as it reads: no padded copy
            x = xp.ascontiguousarray(x)
            dy_mc = _swap_last_axes(xp, dy)
            parts = xp.empty((dy.shape[0], kh, kw, m, c), dtype=dy.dtype)
            if cpu_loops.fits(parts, x, dy_mc, same_shape=False):
                cpu_loops.over_images(loop, (parts, x, dy_mc, *a.strides, *a.dilations,
                                             gh.pad_before, gw.pad_before), (0, 1, 2))
                return _swap_last_axes(xp, parts.sum(axis=0))
        xpad = pad_spatial(xp, x, (gh, gw))
        # Per image, each tap's products summed over the output positions, then the images
        # summed: numpy sums these axes in order, which the loop above repeats bit for bit.
        parts = xp.empty((dy.shape[0], kh, kw, c, m), dtype=dy.dtype)
        for i in range(kh):
            for j in range(kw):
                parts[:, i, j] = (_tap(xpad, a, gh, gw, i, j)[..., None] * dy).sum(axis=(1, 2))
        return parts.sum(axis=0)

    return kernel


@op("DepthwiseConv2dNativeBackpropInput", host_inputs=(0,))
def _depthwise_backprop_input(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx), ctx.xp
    loop = cpu_loops.get("depthwise_backprop_input", xp)

    def kernel(input_sizes: Any, w: Any, dy: Any) -> Any:
        n, h, wd, c = _nhwc_sizes(input_sizes, a.nchw)
        dy = _to_nhwc(xp, dy, a.nchw)
        kh, kw, _, m = w.shape
        gh, gw = a.geometry(h, wd, kh, kw)
        dy = dy.reshape(*dy.shape[:3], c, m)
        if loop is not None:  # [.., m, c] layouts: a free view when m == 1 (MobileNet)
            dy_mc, wt = _swap_last_axes(xp, dy), _swap_last_axes(xp, w)
            dx = xp.empty((n, h, wd, c), dtype=dy.dtype)
            if cpu_loops.fits(dx, dy_mc, wt, same_shape=False):
                rows = _tap_sources(h, gh, kh, a.strides[0], a.dilations[0])
                cols = _tap_sources(wd, gw, kw, a.strides[1], a.dilations[1])
                cpu_loops.over_images(loop, (dx, dy_mc, wt, rows, cols), (0, 1))
                return _from_nhwc(xp, dx, a.nchw)
        return _from_nhwc(xp, _scatter_taps(xp, a, dy, w, (n, h, wd, c), gh, gw), a.nchw)

    return kernel


def _nhwc_sizes(sizes: Any, nchw: bool) -> tuple[int, int, int, int]:
    """An input_sizes vector (N, H, W, C or N, C, H, W) as (N, H, W, C)."""
    n, *rest = (int(v) for v in np.asarray(sizes))
    return (n, rest[1], rest[2], rest[0]) if nchw else (n, *rest)


def _tap_sources(size: int, geo: Geometry, taps: int, stride: int, dilation: int) -> Any:
    """[size, taps]: the output position whose window reads input position p through tap t
    (p + pad_before = o * stride + t * dilation), or -1 where none does."""
    o = np.arange(size)[:, None] + geo.pad_before - np.arange(taps)[None, :] * dilation
    reads = (o >= 0) & (o % stride == 0) & (o // stride < geo.out)
    return np.where(reads, o // stride, -1).astype(np.int64)


def _swap_last_axes(xp: Any, array: Any) -> Any:
    """``array`` with its last two axes swapped, contiguous: the depthwise loops' [.., m, c]
    layouts of filters [kh, kw, c, m] and gradients [n, oh, ow, c, m] (c innermost), and
    back.  With m == 1 (MobileNet) that is a free view."""
    return xp.ascontiguousarray(xp.swapaxes(array, -1, -2))


def _scatter_taps(xp: Any, a: _ConvAttrs, dy: Any, w: Any, shape: tuple, gh: Geometry,
                  gw: Geometry) -> Any:
    # Tap by tap, in order, each adds its contribution (summed over the multiplier in order)
    # to the padded input gradient; cpu_loops' gather adds the same terms in the same order.
    n, h, wd, c = shape
    kh, kw, _, m = w.shape
    dx = xp.zeros((n, h + gh.pad_before + gh.pad_after, wd + gw.pad_before + gw.pad_after, c),
                  dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            part = dy[..., 0] * w[i, j, :, 0]
            for q in range(1, m):
                part += dy[..., q] * w[i, j, :, q]
            _tap(dx, a, gh, gw, i, j)[...] += part
    dx = dx[:, gh.pad_before:gh.pad_before + h, gw.pad_before:gw.pad_before + wd, :]
    return xp.ascontiguousarray(dx)


# --- pooling ----------------------------------------------------------------------------------
def _pool_windows(xp: Any, x: Any, a: _ConvAttrs, fill: float) -> tuple[Any, Geometry, Geometry]:
    kh, kw = a.ksize
    gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
    xpad = xp.ascontiguousarray(pad_spatial(xp, x, (gh, gw), fill))
    return _windows(xp, xpad, a, gh, gw, kh, kw), gh, gw


def _tiles(x: Any, a: _ConvAttrs) -> Any | None:
    """x as [N, OH, KH, OW, KW, C] when the pooling windows tile it exactly, else None."""
    (kh, kw), (sh, sw) = a.ksize, a.strides
    n, h, w, c = x.shape
    if (kh, kw) != (sh, sw) or h % kh or w % kw or a.padding == b"EXPLICIT":
        return None
    return x.reshape(n, h // kh, kh, w // kw, kw, c)


def _tiled_max_grad(xp: Any, blocks: Any, y: Any, dy: Any) -> Any:
    """MaxPoolGrad for tiling windows: each window's first maximum gets its gradient.

    Scans the taps in row-major window order (TF's CPU order) with a "taken" mask, comparing
    against the pooled output ``y``: a few elementwise passes, no gather or scatter.
    """
    n, oh, kh, ow, kw, c = blocks.shape
    out = xp.zeros(blocks.shape, dtype=dy.dtype)
    taken = xp.zeros(y.shape, dtype=bool)
    for i in range(kh):
        for j in range(kw):
            hit = blocks[:, :, i, :, j, :] == y
            hit &= ~taken
            out[:, :, i, :, j, :] = xp.where(hit, dy, 0)
            taken |= hit
    return out.reshape(n, oh * kh, ow * kw, c)


def lowest_value(dtype: np.dtype) -> Any:
    """What max pooling pads with: -inf, or the integer type's minimum."""
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


@op("MaxPool")
def _max_pool(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx, pool=True), ctx.xp
    loop = cpu_loops.get("max_pool", xp)
    return lambda x: _max_pool_value(xp, a, loop, x)


@op("MaxPoolV2", host_inputs=(1, 2))
def _max_pool_v2(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx, pool=True, windows_as_inputs=True), ctx.xp
    loop = cpu_loops.get("max_pool", xp)
    return lambda x, ksize, strides: _max_pool_value(xp, a.with_windows(ksize, strides), loop,
                                                     x)


def _max_pool_value(xp: Any, a: _ConvAttrs, loop: Any, x: Any) -> Any:
    x = _to_nhwc(xp, x, a.nchw)
    kh, kw = a.ksize
    gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
    xpad = pad_spatial(xp, x, (gh, gw), lowest_value(x.dtype))
    if loop is not None and cpu_loops.fits(xpad):
        out = np.empty((x.shape[0], gh.out, gw.out, x.shape[3]), dtype=x.dtype)
        cpu_threads.over_rows(loop, (out, xpad, kh, kw, *a.strides, *a.dilations), (0, 1))
        return _from_nhwc(xp, out, a.nchw)
    return _from_nhwc(xp, max_over_taps(xp, xpad, (gh, gw), a.strides, a.dilations, a.ksize),
                      a.nchw)


def _scatter_windows(xp: Any, shape: tuple, a: _ConvAttrs, gh: Geometry, gw: Geometry,
                     tap: Any, values: Any) -> Any:
    """Adds ``values[n,oh,ow,c]`` at input position tap[n,oh,ow,c] (a kh*kw window index)."""
    n, h, w, c = shape
    kw = a.ksize[1]
    oh = xp.arange(gh.out).reshape(1, -1, 1, 1)
    ow = xp.arange(gw.out).reshape(1, 1, -1, 1)
    rows = oh * a.strides[0] + tap // kw - gh.pad_before
    cols = ow * a.strides[1] + tap % kw - gw.pad_before
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)  # taps in padding add nothing
    flat = ((xp.arange(n).reshape(-1, 1, 1, 1) * h + rows) * w + cols) * c + xp.arange(c)
    flat = xp.where(inside, flat, 0)
    weights = xp.where(inside, values, 0).astype(np.float64)
    total = xp.bincount(flat.reshape(-1), weights=weights.reshape(-1), minlength=n * h * w * c)
    return total.astype(values.dtype).reshape(shape)


@op("MaxPoolGrad")
def _max_pool_grad(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx, pool=True), ctx.xp
    loop = cpu_loops.get("max_pool_grad_tiles", xp)

    def kernel(x: Any, y: Any, dy: Any) -> Any:
        return _max_pool_grad_value(xp, a, loop, x, y, dy)

    def with_relu_grad(x: Any, y: Any, dy: Any) -> Any:
        """ReluGrad(MaxPoolGrad(x, y, dy), features=x) in one pass (the gradient of
        MaxPool(Relu(.)), whose pooled input is the Relu's output): the bits of the two ops.
        None where the tiled loop does not serve these inputs."""
        if a.nchw or x.ndim != 4:
            return None
        return _looped_tiled_max_grad(a, loop, _tiles(x, a), x, y, dy, relu_grad=True)

    kernel.with_relu_grad = with_relu_grad  # for the plan's remapper (gpugraph/remap.py)
    return kernel


@op("MaxPoolGradV2", host_inputs=(3, 4))
def _max_pool_grad_v2(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx, pool=True, windows_as_inputs=True), ctx.xp
    loop = cpu_loops.get("max_pool_grad_tiles", xp)
    return lambda x, y, dy, ksize, strides: _max_pool_grad_value(
        xp, a.with_windows(ksize, strides), loop, x, y, dy)


def _looped_tiled_max_grad(a: _ConvAttrs, loop: Any, blocks: Any, x: Any, y: Any, dy: Any,
                           relu_grad: bool) -> Any:
    """MaxPoolGrad of NHWC ``x`` whose windows tile it (``blocks``: :func:`_tiles`, None
    where they don't) by the ``max_pool_grad_tiles`` loop, split over images in a plan that
    owns the cores; with ``relu_grad``, times ``x > 0`` as ReluGrad would.  None where the
    loop does not serve these arrays."""
    if loop is None or blocks is None or not cpu_loops.fits(x, y, dy, same_shape=False) or \
            not y.shape == dy.shape == blocks.shape[:2] + blocks.shape[3:4] + blocks.shape[5:]:
        return None
    out = np.empty_like(x)
    cpu_threads.over_rows(loop, (x, y, dy, out, *a.ksize, relu_grad, x.dtype.type(0)),
                          (0, 1, 2, 3))
    return out


def _max_pool_grad_value(xp: Any, a: _ConvAttrs, loop: Any, x: Any, y: Any, dy: Any) -> Any:
    x, dy = _to_nhwc(xp, x, a.nchw), _to_nhwc(xp, dy, a.nchw)
    blocks = _tiles(x, a)
    if blocks is not None:
        y = _to_nhwc(xp, y, a.nchw)
        out = _looped_tiled_max_grad(a, loop, blocks, x, y, dy, relu_grad=False)
        if out is None:
            out = _tiled_max_grad(xp, blocks, y, dy)
        return _from_nhwc(xp, out, a.nchw)
    win, gh, gw = _pool_windows(xp, x, a, lowest_value(x.dtype))
    n, oh, ow, kh, kw, c = win.shape
    # The first maximum in row-major window order gets the gradient, as in TF's CPU kernel.
    flat = xp.moveaxis(win, 5, 3).reshape(n, oh, ow, c, kh * kw)
    tap = xp.argmax(flat, axis=-1)
    return _from_nhwc(xp, _scatter_windows(xp, x.shape, a, gh, gw, tap, dy), a.nchw)


def _window_counts(xp: Any, a: _ConvAttrs, h: int, w: int, dtype: Any) -> tuple:
    """Per output position, how many window elements lie inside the input (padding excluded)."""
    kh, kw = a.ksize
    gh, gw = a.geometry(h, w, kh, kw)
    ones = xp.ones((1, h, w, 1), dtype=dtype)
    counts = _windows(xp, xp.ascontiguousarray(pad_spatial(xp, ones, (gh, gw))), a, gh, gw,
                      kh, kw)
    return counts.sum(axis=(3, 4)), gh, gw


@op("AvgPool")
def _avg_pool(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx, pool=True), ctx.xp

    def kernel(x: Any) -> Any:
        x = _to_nhwc(xp, x, a.nchw)
        win, _, _ = _pool_windows(xp, x, a, 0)
        counts, _, _ = _window_counts(xp, a, x.shape[1], x.shape[2], x.dtype)
        return _from_nhwc(xp, (win.sum(axis=(3, 4)) / counts).astype(x.dtype), a.nchw)

    return kernel


@op("AvgPoolGrad", host_inputs=(0,))
def _avg_pool_grad(ctx: BuildContext):
    a, xp = _ConvAttrs(ctx, pool=True), ctx.xp

    def kernel(input_shape: Any, dy: Any) -> Any:
        shape = _nhwc_sizes(input_shape, a.nchw)
        dy = _to_nhwc(xp, dy, a.nchw)
        counts, gh, gw = _window_counts(xp, a, shape[1], shape[2], dy.dtype)
        share = dy / counts
        kh, kw = a.ksize
        total = xp.zeros(shape, dtype=dy.dtype)
        for t in range(kh * kw):
            total += _scatter_windows(xp, shape, a, gh, gw, xp.full(share.shape, t), share)
        return _from_nhwc(xp, total, a.nchw)

    return kernel


