"""Image ops in training graphs: local response normalization and resizing, with gradients.

Formulas and conventions are TF's CPU kernels': LRN sums squares over a depth window without
dividing alpha by its size (lrn_op.cc); resize coordinates are computed in float32 with TF's
align_corners / half_pixel_centers scalers (image_resizer_state.h).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops._indexing import Tables, scatter_at
from gpugraph.ops.registry import BuildContext, dims_text, op


# --- LRN ---------------------------------------------------------------------------------------
def _window_sum(xp: Any, a: Any, radius: int) -> Any:
    """Per depth d, the sum of ``a[..., d - radius : d + radius + 1]`` (clipped at the edges)."""
    total = a.copy()
    depth = a.shape[-1]
    for offset in range(1, min(radius, depth - 1) + 1):
        total[..., :depth - offset] += a[..., offset:]
        total[..., offset:] += a[..., :depth - offset]
    return total


class _LrnAttrs:
    def __init__(self, ctx: BuildContext):
        self.radius = ctx.attr_or("depth_radius", 5)
        self.bias = ctx.attr_or("bias", 1.0)
        self.alpha = ctx.attr_or("alpha", 1.0)
        self.beta = ctx.attr_or("beta", 0.5)

    def norm(self, xp: Any, x: Any) -> Any:
        """bias + alpha * (window sum of squares), in x's dtype."""
        t = x.dtype.type
        return t(self.bias) + t(self.alpha) * _window_sum(xp, x * x, self.radius)


def _check_4d(node: Any, *arrays: Any) -> None:
    for array in arrays:
        if array.ndim != 4:
            raise errors.InvalidArgumentError(None, node, "input must be 4-dimensional")


@op("LRN")
def _lrn(ctx: BuildContext):
    a, xp, node = _LrnAttrs(ctx), ctx.xp, ctx.op

    def kernel(x: Any) -> Any:
        _check_4d(node, x)
        return x * a.norm(xp, x) ** x.dtype.type(-a.beta)

    return kernel


@op("LRNGrad")
def _lrn_grad(ctx: BuildContext):
    # d out[j] / d x[k] = [k == j] N[j]^-beta - 2 alpha beta x[k] out[j] / N[j] over the window,
    # so dx = dy N^-beta - 2 alpha beta x (window sum of dy out / N).
    a, xp, node = _LrnAttrs(ctx), ctx.xp, ctx.op

    def kernel(dy: Any, x: Any, y: Any) -> Any:
        _check_4d(node, dy, x, y)
        if not dy.shape == x.shape == y.shape:
            raise errors.InvalidArgumentError(
                None, node, "input_grads, input_image, and out_image should have the same shape")
        t = x.dtype.type
        norm = a.norm(xp, x)
        spread = _window_sum(xp, dy * y / norm, a.radius)
        return dy * norm ** t(-a.beta) - t(2 * a.alpha * a.beta) * x * spread

    return kernel


# --- resizing ------------------------------------------------------------------------------------
def _scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    if align_corners and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def _source(out_size: int, scale: np.float32, half_pixel: bool, nearest: bool) -> np.ndarray:
    """The float32 source coordinate of every output position."""
    i = np.arange(out_size, dtype=np.float32)
    if not half_pixel:
        return i * scale
    return (i + np.float32(0.5)) * scale - (np.float32(0) if nearest else np.float32(0.5))


def _linear(out_size: int, in_size: int, scale: np.float32, half_pixel: bool) -> tuple:
    """(lower index, upper index, lerp) per output position (compute_interpolation_weights)."""
    source = _source(out_size, scale, half_pixel, nearest=False)
    floor = np.floor(source)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(source).astype(np.int64), in_size - 1)
    return lower, upper, (source - floor).astype(np.float32)


def _nearest(out_size: int, in_size: int, scale: np.float32, align_corners: bool,
             half_pixel: bool) -> np.ndarray:
    source = _source(out_size, scale, half_pixel, nearest=True)
    # roundf: halves away from zero (coordinates here are >= 0 or clamped below)
    index = np.floor(source + np.float32(0.5)) if align_corners else np.floor(source)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return np.maximum(index, 0) if half_pixel else index


class _ResizeAttrs:
    def __init__(self, ctx: BuildContext):
        self.align = ctx.attr_or("align_corners", False)
        self.half = ctx.attr_or("half_pixel_centers", False)
        self.node = ctx.op
        if self.align and self.half:
            raise errors.InvalidArgumentError(
                None, ctx.op, "If half_pixel_centers is True, align_corners must be False.")

    def size(self, value: Any) -> tuple[int, int]:
        size = np.asarray(value)
        if size.shape != (2,) or (size <= 0).any():
            raise errors.InvalidArgumentError(
                None, self.node, f"size must be a 1-D int32 Tensor of 2 elements with positive "
                f"values, got {size.tolist()}")
        return int(size[0]), int(size[1])


@op("ResizeBilinear", host_inputs=(1,))
def _resize_bilinear(ctx: BuildContext):
    a, tables = _ResizeAttrs(ctx), Tables(ctx.device)

    def kernel(images: Any, size: Any) -> Any:
        _check_4d(a.node, images)
        (out_h, out_w), (_, in_h, in_w, _) = a.size(size), images.shape
        y0, y1, ly, x0, x1, lx = tables.get((out_h, in_h, out_w, in_w), lambda: (
            *_linear(out_h, in_h, _scale(in_h, out_h, a.align), a.half),
            *_linear(out_w, in_w, _scale(in_w, out_w, a.align), a.half)))
        x = images.astype(np.float32, copy=False)
        ly, lx = ly.reshape(1, -1, 1, 1), lx.reshape(1, 1, -1, 1)
        rows_top, rows_bottom = x[:, y0], x[:, y1]
        top = rows_top[:, :, x0] + (rows_top[:, :, x1] - rows_top[:, :, x0]) * lx
        bottom = rows_bottom[:, :, x0] + (rows_bottom[:, :, x1] - rows_bottom[:, :, x0]) * lx
        return top + (bottom - top) * ly

    return kernel


@op("ResizeBilinearGrad")
def _resize_bilinear_grad(ctx: BuildContext):
    a, xp, device = _ResizeAttrs(ctx), ctx.xp, ctx.device
    tables = Tables(device)

    def corners(out_h: int, in_h: int, out_w: int, in_w: int) -> tuple:
        # (rows, cols, weights) of the four source corners of each output pixel
        y0, y1, ly = _linear(out_h, in_h, _scale(in_h, out_h, a.align), a.half)
        x0, x1, lx = _linear(out_w, in_w, _scale(in_w, out_w, a.align), a.half)
        one = np.float32(1)
        return tuple(part for rows, wy in ((y0, one - ly), (y1, ly))
                     for cols, wx in ((x0, one - lx), (x1, lx))
                     for part in (rows, cols, np.outer(wy, wx).astype(np.float32)))

    def kernel(grads: Any, original: Any) -> Any:
        _check_4d(a.node, grads, original)
        n, in_h, in_w, c = original.shape
        out_h, out_w = grads.shape[1:3]
        parts = tables.get((out_h, in_h, out_w, in_w), lambda: corners(out_h, in_h, out_w, in_w))
        out = xp.zeros((n, in_h, in_w, c), dtype=np.float32)
        g = grads.astype(np.float32, copy=False)
        for k in range(0, len(parts), 3):
            rows, cols, weight = parts[k:k + 3]
            index = (slice(None), rows[:, None], cols[None, :])
            scatter_at(xp, device, "add", out, index, g * weight[None, :, :, None])
        return out.astype(original.dtype, copy=False)

    return kernel


# --- bicubic (resize_bicubic_op.cc) --------------------------------------------------------
_CUBIC_TABLE_SIZE = 1 << 10


@functools.lru_cache(maxsize=2)
def _cubic_table(a: float) -> np.ndarray:
    """[1025, 2] float32: the cubic kernel at x and x + 1 for x = i / 1024, as TF tabulates
    it (x a float, the polynomial evaluated in double)."""
    table = np.empty((_CUBIC_TABLE_SIZE + 1, 2), dtype=np.float32)
    for i in range(_CUBIC_TABLE_SIZE + 1):
        x = float(np.float32(i * 1.0 / _CUBIC_TABLE_SIZE))
        table[i, 0] = ((a + 2) * x - (a + 3)) * x * x + 1
        x = float(np.float32(x + 1.0))
        table[i, 1] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return table


def _cubic(out_size: int, in_size: int, scale: np.float32, half_pixel: bool) -> tuple:
    """(indices [out, 4], weights [out, 4] float32) of the four taps of each output position
    (GetWeightsAndIndices): the legacy scaler with Keys' a = -0.75 and edge taps repeated;
    half-pixel centers with a = -0.5, taps outside the image weighted 0 and the rest
    renormalized."""
    source = _source(out_size, scale, half_pixel, nearest=False)
    floor = np.floor(source)
    base = floor.astype(np.int64)
    offset = np.rint((source - floor).astype(np.float32) * np.float32(_CUBIC_TABLE_SIZE))
    offset = offset.astype(np.int64)
    table = _cubic_table(-0.5 if half_pixel else -0.75)
    weights = np.stack([table[offset, 1], table[offset, 0],
                        table[_CUBIC_TABLE_SIZE - offset, 0],
                        table[_CUBIC_TABLE_SIZE - offset, 1]], axis=1)
    taps = base[:, None] + np.arange(-1, 3)
    indices = np.clip(taps, 0, in_size - 1)
    if half_pixel:
        weights = np.where(indices == taps, weights, np.float32(0))
        total = ((weights[:, 0] + weights[:, 1]) + weights[:, 2]) + weights[:, 3]
        big = np.abs(total) >= np.float32(1000) * np.finfo(np.float32).tiny
        inverse = np.float32(1) / np.where(big, total, np.float32(1))
        weights = np.where(big[:, None], weights * inverse[:, None], weights)
    return indices, weights.astype(np.float32)


def _cubic_taps(a: _ResizeAttrs, tables: Tables, out_h: int, in_h: int, out_w: int,
                in_w: int) -> tuple:
    """(rows, row weights, columns, column weights) of a bicubic resize of these sizes, built
    once per shape (the op and its gradient use the same taps)."""
    return tables.get(("cubic", out_h, in_h, out_w, in_w), lambda: (
        *_cubic(out_h, in_h, _scale(in_h, out_h, a.align), a.half),
        *_cubic(out_w, in_w, _scale(in_w, out_w, a.align), a.half)))


def _sum4(terms: list) -> Any:
    """((t0 + t1) + t2) + t3, each a product already rounded: Interpolate1D's order."""
    return ((terms[0] + terms[1]) + terms[2]) + terms[3]


@op("ResizeBicubic", host_inputs=(1,))
def _resize_bicubic(ctx: BuildContext):
    """Each output pixel from a 4 x 4 patch: four columns interpolated down the rows, then
    across them, in float32 (the order of TF's kernel, so its bits)."""
    a, tables = _ResizeAttrs(ctx), Tables(ctx.device)

    def kernel(images: Any, size: Any) -> Any:
        _check_4d(a.node, images)
        out_h, out_w = (int(v) for v in np.asarray(size).reshape(-1)[:2])
        if out_h <= 0 or out_w <= 0:
            raise errors.InvalidArgumentError(None, a.node, "output dimensions must be positive")
        _, in_h, in_w, _ = images.shape
        rows, wy, cols, wx = _cubic_taps(a, tables, out_h, in_h, out_w, in_w)
        x = images.astype(np.float32, copy=False)
        columns = []
        for k in range(4):
            patch = x[:, :, cols[:, k]]  # [n, in_h, out_w, c]
            columns.append(_sum4([patch[:, rows[:, i]] * wy[:, i].reshape(1, -1, 1, 1)
                                  for i in range(4)]))
        return _sum4([columns[k] * wx[:, k].reshape(1, 1, -1, 1) for k in range(4)])

    return kernel


@op("ResizeBicubicGrad")
def _resize_bicubic_grad(ctx: BuildContext):
    """Each incoming gradient spread over its 4 x 4 patch with weight wy * wx (in the
    original's dtype), accumulated tap by tap: TF adds pixel by pixel, so sums of several
    contributions can differ from TF's in the last bit (the forward op gives TF's bits)."""
    a, xp, device = _ResizeAttrs(ctx), ctx.xp, ctx.device
    tables = Tables(device)

    def kernel(grads: Any, original: Any) -> Any:
        _check_4d(a.node, grads, original)
        n, in_h, in_w, c = original.shape
        out_h, out_w = grads.shape[1:3]
        rows, wy, cols, wx = _cubic_taps(a, tables, out_h, in_h, out_w, in_w)
        kind = original.dtype
        out = xp.zeros((n, in_h, in_w, c), dtype=kind)
        g = grads.astype(kind, copy=False)
        for i in range(4):
            for j in range(4):
                weight = (g * wy[:, i].astype(kind).reshape(1, -1, 1, 1)) \
                    * wx[:, j].astype(kind).reshape(1, 1, -1, 1)
                index = (slice(None), rows[:, i][:, None], cols[:, j][None, :])
                scatter_at(xp, device, "add", out, index, weight)
        return out

    return kernel


@op("ResizeNearestNeighbor", host_inputs=(1,))
def _resize_nearest(ctx: BuildContext):
    a, tables = _ResizeAttrs(ctx), Tables(ctx.device)

    def kernel(images: Any, size: Any) -> Any:
        _check_4d(a.node, images)
        (out_h, out_w), (_, in_h, in_w, _) = a.size(size), images.shape
        rows, cols = tables.get((out_h, in_h, out_w, in_w), lambda: (
            _nearest(out_h, in_h, _scale(in_h, out_h, a.align), a.align, a.half),
            _nearest(out_w, in_w, _scale(in_w, out_w, a.align), a.align, a.half)))
        return images[:, rows][:, :, cols]

    return kernel


@op("ResizeNearestNeighborGrad", host_inputs=(1,))
def _resize_nearest_grad(ctx: BuildContext):
    a, xp, device = _ResizeAttrs(ctx), ctx.xp, ctx.device
    tables = Tables(device)

    def kernel(grads: Any, size: Any) -> Any:
        _check_4d(a.node, grads)
        (out_h, out_w), (n, in_h, in_w, c) = a.size(size), grads.shape
        # The forward map from the gradient's positions (the resized image) to the original.
        rows, cols = tables.get((out_h, in_h, out_w, in_w), lambda: (
            _nearest(in_h, out_h, _scale(out_h, in_h, a.align), a.align, a.half),
            _nearest(in_w, out_w, _scale(out_w, in_w, a.align), a.align, a.half)))
        out = xp.zeros((n, out_h, out_w, c), dtype=grads.dtype)
        index = (slice(None), rows[:, None], cols[None, :])
        scatter_at(xp, device, "add", out, index, grads)
        return out

    return kernel


# --- colour: contrast, HSV, saturation, hue --------------------------------------------------
# Each follows TF's CPU kernel operation for operation in float32 (colorspace_op.h,
# adjust_contrast_op.cc, adjust_saturation_op.cc, adjust_hue_op.cc), so results round as TF's.
_F = np.float32


def _channels(node: Any, images: Any, what: str = "input") -> None:
    if images.ndim < 1 or images.shape[-1] != 3:  # (TF: FailedPrecondition, not InvalidArgument)
        raise errors.FailedPreconditionError(
            None, node, f"input must have 3 channels but {what} only has "
            f"{images.shape[-1] if images.ndim else 0} channels.")


@op("AdjustContrastv2")
def _adjust_contrast(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp

    def kernel(images: Any, factor: Any) -> Any:
        if images.ndim < 3:
            raise errors.InvalidArgumentError(
                None, node, f"input must be at least 3-D, got shape{dims_text(images.shape)}")
        x = images.astype(np.float32, copy=False)
        mean = xp.mean(x, axis=(-3, -2), keepdims=True, dtype=np.float32)
        out = (x - mean) * factor.astype(np.float32) + mean
        return out.astype(images.dtype, copy=False)

    return kernel


def rgb_to_hsv(xp: Any, rgb: Any) -> tuple:
    """TF's RGBToHSV arithmetic in the input's float type (h in [0, 1))."""
    t = rgb.dtype.type
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = xp.maximum(xp.maximum(r, g), b)
    spread = v - xp.minimum(xp.minimum(r, g), b)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = xp.where(v > 0, spread / v, t(0))
        norm = (t(1) / spread) * (t(1) / t(6))
        h = xp.where(r == v, norm * (g - b),
                     xp.where(g == v, norm * (b - r) + t(2) / t(6), norm * (r - g) + t(4) / t(6)))
    h = xp.where(spread > 0, h, t(0))
    return xp.where(h < 0, h + t(1), h), s, v


def hsv_to_rgb(xp: Any, h: Any, s: Any, v: Any) -> Any:
    """TF's HSVToRGB arithmetic in the input's float type."""
    t = h.dtype.type
    dh = h * t(6)
    dr = xp.clip(xp.abs(dh - t(3)) - t(1), t(0), t(1))
    dg = xp.clip(-xp.abs(dh - t(2)) + t(2), t(0), t(1))
    db = xp.clip(-xp.abs(dh - t(4)) + t(2), t(0), t(1))
    one_s = -s + t(1)
    return xp.stack([(one_s + s * dr) * v, (one_s + s * dg) * v, (one_s + s * db) * v], axis=-1)


@op("RGBToHSV")
def _rgb_to_hsv(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp

    def kernel(images: Any) -> Any:
        _channels(node, images, "input")
        x = images if images.dtype.itemsize >= 4 else images.astype(np.float32)
        return xp.stack(rgb_to_hsv(xp, x), axis=-1).astype(images.dtype, copy=False)

    return kernel


@op("HSVToRGB")
def _hsv_to_rgb(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp

    def kernel(images: Any) -> Any:
        _channels(node, images, "input")
        x = images if images.dtype.itemsize >= 4 else images.astype(np.float32)
        return hsv_to_rgb(xp, x[..., 0], x[..., 1], x[..., 2]).astype(images.dtype, copy=False)

    return kernel


def _pixel_rgb_to_hsv(xp: Any, r: Any, g: Any, b: Any) -> tuple:
    # adjust_saturation_op.cc's scalar helper (the 2/6 and 4/6 constants are doubles there).
    v = xp.maximum(r, xp.maximum(g, b))
    spread = v - xp.minimum(r, xp.minimum(g, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = xp.where(v > 0, spread / v, _F(0))
        norm = _F(1) / (_F(6) * spread)
        h = xp.where(r == v, norm * (g - b),
                     xp.where(g == v, (norm * (b - r)).astype(np.float64) + 2.0 / 6.0,
                              (norm * (r - g)).astype(np.float64) + 4.0 / 6.0).astype(np.float32))
    h = xp.where(spread <= 0, _F(0), h)
    return xp.where(h < 0, h + _F(1), h), s, v


def _pixel_hsv_to_rgb(xp: Any, h: Any, s: Any, v: Any) -> Any:
    c = s * v
    m = v - c
    dh = h * _F(6)
    category = dh.astype(np.int32)  # (a truncation, as C's static_cast<int>)
    fmodu = xp.where(dh <= 0, dh + _F(2) * xp.ceil((-dh + _F(1e-30)) / _F(2)), dh)
    fmodu = xp.where(fmodu >= 2, fmodu - _F(2) * xp.floor(fmodu / _F(2)), fmodu)
    x = c * (_F(1) - xp.abs(fmodu - _F(1)))
    zero = xp.zeros_like(c)
    table = [(c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x)]
    channels = []
    for k in range(3):
        value = zero
        for case, parts in enumerate(table):
            value = xp.where(category == case, parts[k], value)
        channels.append(value + m)
    return xp.stack(channels, axis=-1)


def _adjust_hsv(ctx: BuildContext, change: Any):
    node, xp = ctx.op, ctx.xp

    def kernel(images: Any, amount: Any) -> Any:
        if images.ndim < 3:
            raise errors.InvalidArgumentError(
                None, node, f"input must be at least 3-D, got shape{dims_text(images.shape)}")
        _channels(node, images, "input")
        x = images.astype(np.float32, copy=False)
        h, s, v = _pixel_rgb_to_hsv(xp, x[..., 0], x[..., 1], x[..., 2])
        h, s = change(xp, h, s, amount.astype(np.float32))
        return _pixel_hsv_to_rgb(xp, h, s, v).astype(images.dtype, copy=False)

    return kernel


@op("AdjustSaturation")
def _adjust_saturation(ctx: BuildContext):
    return _adjust_hsv(ctx, lambda xp, h, s, scale: (h, xp.clip(s * scale, _F(0), _F(1))))


@op("AdjustHue")
def _adjust_hue(ctx: BuildContext):
    def change(xp: Any, h: Any, s: Any, delta: Any) -> tuple:
        h = xp.fmod(h + delta, _F(1))
        return xp.where(h < 0, h + _F(1), h), s

    return _adjust_hsv(ctx, change)
