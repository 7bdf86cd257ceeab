"""Conv2D with both backprops, MaxPool/AvgPool with their gradients (NHWC; NCHW transposed).

These are the generic bodies, written against ``xp``: convolutions are im2col + GEMM (a
strided *view* of the padded input gives every patch without copying, a reshape materialises
the patch matrix, and a GEMM does the rest; the input gradient is the transpose: a GEMM into
patch space, then a strided add per kernel tap).  Inputs with few channels (a first layer)
build the transposed patch matrix instead, tap by tap, copying whole image rows rather than
runs of a few values.

A backend hands the builders its own pieces (``ops/cpu/conv.py``): a direct kernel tried
first, patch blocks sized to its caches (``block_bytes``), a col2im loop, and loops for
depthwise convolutions and pooling; each returns None where it does not serve the arrays, and
the body here runs.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, op

_SHORT_RUN_BYTES = 64  # window rows shorter than a cache line: patches built tap by tap


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


class ConvAttrs:
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

    def with_windows(self, ksize: Any, strides: Any) -> ConvAttrs:
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


def _windows(xp: Any, xpad: Any, a: ConvAttrs, gh: Geometry, gw: Geometry, kh: int,
             kw: int) -> Any:
    """A [N, OH, OW, KH, KW, C] strided view of the padded input's patches."""
    n, _, _, c = xpad.shape
    sn, sh, sw, sc = xpad.strides
    shape = (n, gh.out, gw.out, kh, kw, c)
    strides = (sn, sh * a.strides[0], sw * a.strides[1], sh * a.dilations[0],
               sw * a.dilations[1], sc)
    return xp.lib.stride_tricks.as_strided(xpad, shape=shape, strides=strides)


def _blocks(n: int, bytes_per_image: int, block_bytes: int | None) -> list[slice]:
    """The batch in runs of images whose patch matrices fit ``block_bytes`` (one empty run for
    an empty batch).  Only a CPU's caches want this (its kernels pass ``block_bytes``): by
    default the whole batch is one block (one GEMM; a GPU has the memory and no cache to keep
    it in)."""
    if block_bytes is None:
        return [slice(0, n)]
    step = max(1, block_bytes // max(bytes_per_image, 1))
    return [slice(s, min(n, s + step)) for s in range(0, max(n, 1), step)]


def _count(block: slice) -> int:
    return block.stop - block.start


def _patch_blocks(xp: Any, x: Any, a: ConvAttrs, gh: Geometry, gw: Geometry, kh: int,
                  kw: int, block_bytes: int | None) -> Iterator[tuple[slice, Any]]:
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
    runs = _blocks(n, gh.out * gw.out * depth * x.dtype.itemsize, block_bytes)
    if len(runs) == 1:
        yield runs[0], view.reshape(n * gh.out * gw.out, depth)
        return
    buf = xp.empty((_count(runs[0]), *view.shape[1:]), dtype=x.dtype)
    for b in runs:
        part = buf[:_count(b)]
        xp.copyto(part, view[b])
        yield b, part.reshape(_count(b) * gh.out * gw.out, depth)


def _tap_major_patches(xp: Any, xpad: Any, a: ConvAttrs, gh: Geometry, gw: Geometry, kh: int,
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
            xp.copyto(patches[i, j], xp.moveaxis(tap(xpad, a, gh, gw, i, j), 3, 0))
    return patches.reshape(kh * kw * c, n * gh.out * gw.out)


# A backend's direct kernel for one of the three convolutions: the result, or None where it
# does not serve the arrays (the im2col + GEMM body runs instead).
Direct = Callable[..., Any]


# A backend's matrix product for the GEMMs of im2col (CUDA: cuBLAS that graphs can capture).
Product = Callable[[Any, Any], Any]


def conv2d(ctx: BuildContext, direct: Direct | None = None, block_bytes: int | None = None,
           product: Product | None = None):
    """The Conv2D kernel: im2col + GEMM (``product``, default ``xp.matmul``), ``block_bytes`` of
    patches at a time (None: the whole batch); ``direct(x, w, attrs, gh, gw)`` first where
    given."""
    a, xp = ConvAttrs(ctx), ctx.xp
    gemm = product or xp.matmul

    def kernel(x: Any, w: Any) -> Any:
        x = _to_nhwc(xp, x, a.nchw)
        kh, kw, cin, cout = w.shape
        if x.shape[3] != cin:
            raise errors.InvalidArgumentError(
                None, a.node, f"input depth must be evenly divisible by filter depth: "
                f"{x.shape[3]} vs {cin}")
        gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
        out = None if direct is None else direct(x, w, a, gh, gw)
        if out is not None:
            return _from_nhwc(xp, out, a.nchw)
        n, rows = x.shape[0], gh.out * gw.out
        w2 = w.reshape(kh * kw * cin, cout)
        for b, cols in _patch_blocks(xp, x, a, gh, gw, kh, kw, block_bytes):
            if b.start == 0 and b.stop == n:
                out = gemm(cols, w2)
            else:  # several runs: each GEMM writes its rows of the output
                out = xp.empty((n * rows, cout), dtype=x.dtype) if out is None else out
                part = out[b.start * rows:b.stop * rows]
                if product is None:
                    xp.matmul(cols, w2, out=part)
                else:
                    part[...] = product(cols, w2)
        return _from_nhwc(xp, out.reshape(n, gh.out, gw.out, cout), a.nchw)

    return kernel


@op("Conv2D")
def _conv2d(ctx: BuildContext):
    return conv2d(ctx)


def conv2d_backprop_filter(ctx: BuildContext, direct: Direct | None = None,
                           block_bytes: int | None = None, product: Product | None = None):
    """The Conv2DBackpropFilter kernel (as :func:`conv2d`; ``direct(x, dy, sizes, attrs, gh,
    gw)``)."""
    a, xp = ConvAttrs(ctx), ctx.xp
    gemm = product or xp.matmul

    def kernel(x: Any, filter_sizes: Any, dy: Any) -> Any:
        kh, kw, cin, cout = (int(v) for v in np.asarray(filter_sizes))
        x, dy = _to_nhwc(xp, x, a.nchw), _to_nhwc(xp, dy, a.nchw)
        gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
        dw = None if direct is None else direct(x, dy, (kh, kw, cin, cout), a, gh, gw)
        if dw is not None:
            return dw
        for b, cols in _patch_blocks(xp, x, a, gh, gw, kh, kw, block_bytes):
            part = gemm(cols.T, dy[b].reshape(cols.shape[0], cout))
            dw = part if dw is None else xp.add(dw, part, out=dw)
        return dw.reshape(kh, kw, cin, cout)

    return kernel


@op("Conv2DBackpropFilter", host_inputs=(1,))
def _conv2d_backprop_filter(ctx: BuildContext):
    return conv2d_backprop_filter(ctx)


def conv2d_backprop_input(ctx: BuildContext, direct: Direct | None = None,
                          block_bytes: int | None = None, col2im: Direct | None = None,
                          product: Product | None = None):
    """The Conv2DBackpropInput kernel (as :func:`conv2d`; ``direct(dy, w, sizes, attrs, gh,
    gw)``); ``col2im(cols, dx, attrs, kh, kw)`` adds a block's patches into its padded input
    gradient (False where it does not serve them: :func:`_add_taps` does)."""
    a, xp = ConvAttrs(ctx), ctx.xp
    gemm = product or xp.matmul

    def kernel(input_sizes: Any, w: Any, dy: Any) -> Any:
        n, h, wd, c = nhwc_sizes(input_sizes, a.nchw)
        dy = _to_nhwc(xp, dy, a.nchw)
        kh, kw, cin, cout = w.shape
        gh, gw = a.geometry(h, wd, kh, kw)
        dx = None if direct is None else direct(dy, w, (n, h, wd, c), a, gh, gw)
        if dx is not None:
            return _from_nhwc(xp, dx, a.nchw)
        wt = w.reshape(kh * kw * cin, cout).T
        dx = xp.zeros((n, h + gh.pad_before + gh.pad_after, wd + gw.pad_before + gw.pad_after, c),
                      dtype=dy.dtype)
        for b in _blocks(n, gh.out * gw.out * kh * kw * cin * dy.dtype.itemsize, block_bytes):
            cols = gemm(dy[b].reshape(_count(b) * gh.out * gw.out, cout), wt).reshape(
                _count(b), gh.out, gw.out, kh * kw * cin)
            if col2im is None or not col2im(cols, dx[b], a, kh, kw):
                _add_taps(dx[b], cols.reshape(*cols.shape[:3], kh, kw, cin), a, gh, gw)
        dx = dx[:, gh.pad_before:gh.pad_before + h, gw.pad_before:gw.pad_before + wd, :]
        return _from_nhwc(xp, xp.ascontiguousarray(dx), a.nchw)

    return kernel


@op("Conv2DBackpropInput", host_inputs=(0,))
def _conv2d_backprop_input(ctx: BuildContext):
    return conv2d_backprop_input(ctx)


def _add_taps(dx: Any, cols: Any, a: ConvAttrs, gh: Geometry, gw: Geometry) -> None:
    """dx[n, oh*stride + i*dilation, ow*stride + j*dilation, :] += cols[n, oh, ow, i, j, :]."""
    for i in range(cols.shape[3]):
        for j in range(cols.shape[4]):
            tap(dx, a, gh, gw, i, j)[...] += cols[:, :, :, i, j, :]


# --- depthwise convolutions (MobileNet) -------------------------------------------------------
# Channel c with multiplier m writes output channel c * M + m.  Each window tap is a strided view
# of the padded input, so every op is one multiply-add per tap over [N, OH, OW, C, M]: no patch
# matrix, and no per-channel GEMM with a 9-long inner dimension.
def tap(x: Any, a: ConvAttrs, gh: Geometry, gw: Geometry, i: int, j: int) -> Any:
    return tap_view(x, (gh, gw), a.strides, a.dilations, (i, j))


def depthwise_conv2d(ctx: BuildContext, fast: Direct | None = None):
    """The DepthwiseConv2dNative kernel; ``fast(x, w, attrs, gh, gw, shape)`` first where
    given (None where it does not serve)."""
    a, xp = ConvAttrs(ctx), ctx.xp

    def kernel(x: Any, w: Any) -> Any:
        x = _to_nhwc(xp, x, a.nchw)
        kh, kw, c, m = w.shape
        if x.shape[3] != c:
            raise errors.InvalidArgumentError(
                None, a.node, f"input and filter must have the same depth: {x.shape[3]} vs {c}")
        gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
        shape = (x.shape[0], gh.out, gw.out, c, m)
        out = None if fast is None else fast(x, w, a, gh, gw, shape)
        if out is not None:
            return _from_nhwc(xp, out.reshape(*shape[:3], c * m), a.nchw)
        xpad = pad_spatial(xp, x, (gh, gw))
        out = xp.zeros(shape, dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                out += tap(xpad, a, gh, gw, i, j)[..., None] * w[i, j]
        return _from_nhwc(xp, out.reshape(*shape[:3], c * m), a.nchw)

    return kernel


@op("DepthwiseConv2dNative")
def _depthwise_conv2d(ctx: BuildContext):
    return depthwise_conv2d(ctx)


def depthwise_backprop_filter(ctx: BuildContext, fast: Direct | None = None):
    """The DepthwiseConv2dNativeBackpropFilter kernel; ``fast(x, dy, attrs, gh, gw, sizes)``
    first where given (dy [N, OH, OW, C, M]; None where it does not serve)."""
    a, xp = ConvAttrs(ctx), ctx.xp

    def kernel(x: Any, filter_sizes: Any, dy: Any) -> Any:
        kh, kw, c, m = (int(v) for v in np.asarray(filter_sizes))
        x, dy = _to_nhwc(xp, x, a.nchw), _to_nhwc(xp, dy, a.nchw)
        gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
        dy = dy.reshape(*dy.shape[:3], c, m)
        dw = None if fast is None else fast(x, dy, a, gh, gw, (kh, kw, c, m))
        if dw is not None:
            return dw
        xpad = pad_spatial(xp, x, (gh, gw))
        # Per image, each tap's products summed over the output positions, then the images
        # summed: numpy sums these axes in order, which the CPU's loop repeats bit for bit.
        parts = xp.empty((dy.shape[0], kh, kw, c, m), dtype=dy.dtype)
        for i in range(kh):
            for j in range(kw):
                parts[:, i, j] = (tap(xpad, a, gh, gw, i, j)[..., None] * dy).sum(axis=(1, 2))
        return parts.sum(axis=0)

    return kernel


@op("DepthwiseConv2dNativeBackpropFilter", host_inputs=(1,))
def _depthwise_backprop_filter(ctx: BuildContext):
    return depthwise_backprop_filter(ctx)


def depthwise_backprop_input(ctx: BuildContext, fast: Direct | None = None):
    """The DepthwiseConv2dNativeBackpropInput kernel; ``fast(dy, w, attrs, gh, gw, shape)``
    first where given (dy [N, OH, OW, C, M]; None where it does not serve)."""
    a, xp = ConvAttrs(ctx), ctx.xp

    def kernel(input_sizes: Any, w: Any, dy: Any) -> Any:
        n, h, wd, c = nhwc_sizes(input_sizes, a.nchw)
        dy = _to_nhwc(xp, dy, a.nchw)
        kh, kw, _, m = w.shape
        gh, gw = a.geometry(h, wd, kh, kw)
        dy = dy.reshape(*dy.shape[:3], c, m)
        dx = None if fast is None else fast(dy, w, a, gh, gw, (n, h, wd, c))
        if dx is None:
            dx = _scatter_taps(xp, a, dy, w, (n, h, wd, c), gh, gw)
        return _from_nhwc(xp, dx, a.nchw)

    return kernel


@op("DepthwiseConv2dNativeBackpropInput", host_inputs=(0,))
def _depthwise_backprop_input(ctx: BuildContext):
    return depthwise_backprop_input(ctx)


def nhwc_sizes(sizes: Any, nchw: bool) -> tuple[int, int, int, int]:
    """An input_sizes vector (N, H, W, C or N, C, H, W) as (N, H, W, C)."""
    n, *rest = (int(v) for v in np.asarray(sizes))
    return (n, rest[1], rest[2], rest[0]) if nchw else (n, *rest)


def tap_sources(size: int, geo: Geometry, taps: int, stride: int, dilation: int) -> Any:
    """[size, taps]: the output position whose window reads input position p through tap t
    (p + pad_before = o * stride + t * dilation), or -1 where none does."""
    o = np.arange(size)[:, None] + geo.pad_before - np.arange(taps)[None, :] * dilation
    reads = (o >= 0) & (o % stride == 0) & (o // stride < geo.out)
    return np.where(reads, o // stride, -1).astype(np.int64)


def swap_last_axes(xp: Any, array: Any) -> Any:
    """``array`` with its last two axes swapped, contiguous: the depthwise loops' [.., m, c]
    layouts of filters [kh, kw, c, m] and gradients [n, oh, ow, c, m] (c innermost), and
    back.  With m == 1 (MobileNet) that is a free view."""
    return xp.ascontiguousarray(xp.swapaxes(array, -1, -2))


def _scatter_taps(xp: Any, a: ConvAttrs, dy: Any, w: Any, shape: tuple, gh: Geometry,
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
            tap(dx, a, gh, gw, i, j)[...] += part
    dx = dx[:, gh.pad_before:gh.pad_before + h, gw.pad_before:gw.pad_before + wd, :]
    return xp.ascontiguousarray(dx)


# --- pooling ----------------------------------------------------------------------------------
def _pool_windows(xp: Any, x: Any, a: ConvAttrs, fill: float) -> tuple[Any, Geometry, Geometry]:
    kh, kw = a.ksize
    gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
    xpad = xp.ascontiguousarray(pad_spatial(xp, x, (gh, gw), fill))
    return _windows(xp, xpad, a, gh, gw, kh, kw), gh, gw


def tiles(x: Any, a: ConvAttrs) -> Any | None:
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


def max_pool(ctx: BuildContext, fast: Direct | None = None, windows_as_inputs: bool = False):
    """The MaxPool (MaxPoolV2 with ``windows_as_inputs``) kernel; ``fast(xpad, attrs, gh,
    gw)`` on the padded input first where given (None where it does not serve)."""
    a, xp = ConvAttrs(ctx, pool=True, windows_as_inputs=windows_as_inputs), ctx.xp
    if windows_as_inputs:
        return lambda x, ksize, strides: _max_pool_value(xp, a.with_windows(ksize, strides),
                                                         fast, x)
    return lambda x: _max_pool_value(xp, a, fast, x)


@op("MaxPool")
def _max_pool(ctx: BuildContext):
    return max_pool(ctx)


@op("MaxPoolV2", host_inputs=(1, 2))
def _max_pool_v2(ctx: BuildContext):
    return max_pool(ctx, windows_as_inputs=True)


def _max_pool_value(xp: Any, a: ConvAttrs, fast: Direct | None, x: Any) -> Any:
    x = _to_nhwc(xp, x, a.nchw)
    kh, kw = a.ksize
    gh, gw = a.geometry(x.shape[1], x.shape[2], kh, kw)
    xpad = pad_spatial(xp, x, (gh, gw), lowest_value(x.dtype))
    out = None if fast is None else fast(xpad, a, gh, gw)
    if out is None:
        out = max_over_taps(xp, xpad, (gh, gw), a.strides, a.dilations, a.ksize)
    return _from_nhwc(xp, out, a.nchw)


def _scatter_windows(xp: Any, shape: tuple, a: ConvAttrs, gh: Geometry, gw: Geometry,
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


def max_pool_grad(ctx: BuildContext, tiled: Direct | None = None,
                  windows_as_inputs: bool = False):
    """The MaxPoolGrad (MaxPoolGradV2 with ``windows_as_inputs``) kernel; ``tiled(attrs,
    blocks, x, y, dy)`` first for NHWC windows that tile the input (:func:`tiles`; None where
    it does not serve)."""
    a, xp = ConvAttrs(ctx, pool=True, windows_as_inputs=windows_as_inputs), ctx.xp
    if windows_as_inputs:
        return lambda x, y, dy, ksize, strides: _max_pool_grad_value(
            xp, a.with_windows(ksize, strides), tiled, x, y, dy)
    return lambda x, y, dy: _max_pool_grad_value(xp, a, tiled, x, y, dy)


@op("MaxPoolGrad")
def _max_pool_grad(ctx: BuildContext):
    return max_pool_grad(ctx)


@op("MaxPoolGradV2", host_inputs=(3, 4))
def _max_pool_grad_v2(ctx: BuildContext):
    return max_pool_grad(ctx, windows_as_inputs=True)


def _max_pool_grad_value(xp: Any, a: ConvAttrs, tiled: Direct | None, x: Any, y: Any,
                         dy: Any) -> Any:
    x, dy = _to_nhwc(xp, x, a.nchw), _to_nhwc(xp, dy, a.nchw)
    blocks = tiles(x, a)
    if blocks is not None:
        y = _to_nhwc(xp, y, a.nchw)
        out = None if tiled is None else tiled(a, blocks, x, y, dy)
        if out is None:
            out = _tiled_max_grad(xp, blocks, y, dy)
        return _from_nhwc(xp, out, a.nchw)
    win, gh, gw = _pool_windows(xp, x, a, lowest_value(x.dtype))
    n, oh, ow, kh, kw, c = win.shape
    # The first maximum in row-major window order gets the gradient, as in TF's CPU kernel.
    flat = xp.moveaxis(win, 5, 3).reshape(n, oh, ow, c, kh * kw)
    tap = xp.argmax(flat, axis=-1)
    return _from_nhwc(xp, _scatter_windows(xp, x.shape, a, gh, gw, tap, dy), a.nchw)


def _window_counts(xp: Any, a: ConvAttrs, h: int, w: int, dtype: Any) -> tuple:
    """Per output position, how many window elements lie inside the input (padding excluded)."""
    kh, kw = a.ksize
    gh, gw = a.geometry(h, w, kh, kw)
    ones = xp.ones((1, h, w, 1), dtype=dtype)
    counts = _windows(xp, xp.ascontiguousarray(pad_spatial(xp, ones, (gh, gw))), a, gh, gw,
                      kh, kw)
    return counts.sum(axis=(3, 4)), gh, gw


@op("AvgPool")
def _avg_pool(ctx: BuildContext):
    a, xp = ConvAttrs(ctx, pool=True), ctx.xp

    def kernel(x: Any) -> Any:
        x = _to_nhwc(xp, x, a.nchw)
        win, _, _ = _pool_windows(xp, x, a, 0)
        counts, _, _ = _window_counts(xp, a, x.shape[1], x.shape[2], x.dtype)
        return _from_nhwc(xp, (win.sum(axis=(3, 4)) / counts).astype(x.dtype), a.nchw)

    return kernel


@op("AvgPoolGrad", host_inputs=(0,))
def _avg_pool_grad(ctx: BuildContext):
    a, xp = ConvAttrs(ctx, pool=True), ctx.xp

    def kernel(input_shape: Any, dy: Any) -> Any:
        shape = nhwc_sizes(input_shape, a.nchw)
        dy = _to_nhwc(xp, dy, a.nchw)
        counts, gh, gw = _window_counts(xp, a, shape[1], shape[2], dy.dtype)
        share = dy / counts
        kh, kw = a.ksize
        total = xp.zeros(shape, dtype=dy.dtype)
        for t in range(kh * kw):
            total += _scatter_windows(xp, shape, a, gh, gw, xp.full(share.shape, t), share)
        return _from_nhwc(xp, total, a.nchw)

    return kernel


