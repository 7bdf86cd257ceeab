"""3-D convolutions and pooling (video, volumetric models), NDHWC (NCDHW transposed).

Every window tap is a strided view of the padded input, so each op is a loop over the taps:
a GEMM per tap for the convolutions ([rows, Cin] @ [Cin, Cout]), a max or a sum per tap for
the pools.  Output sizes and padding follow the 2-D ops (conv_ops.output_geometry).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.conv_ops import (
    Geometry,
    lowest_value,
    max_over_taps,
    output_geometry,
    pad_spatial,
    tap_view,
)
from gpugraph.ops.registry import BuildContext, op


class _Attrs:
    """Conv3D-family attrs in NDHWC order: strides, dilations, windows, padding."""

    def __init__(self, ctx: BuildContext, pool: bool = False):
        self.ncdhw = ctx.attr_or("data_format", b"NDHWC").startswith(b"NC")
        pick = (lambda v: tuple(v[2:5])) if self.ncdhw else (lambda v: tuple(v[1:4]))
        self.strides = pick(ctx.attr("strides"))
        self.dilations = (1, 1, 1) if pool else pick(ctx.attr_or("dilations", [1] * 5))
        self.ksize = pick(ctx.attr("ksize")) if pool else None
        self.padding = ctx.attr("padding")
        self.node = ctx.op

    def geometry(self, sizes: tuple, window: tuple) -> list[Geometry]:
        return [output_geometry(self.node, size, k, s, d, self.padding, (0, 0))
                for size, k, s, d in zip(sizes, window, self.strides, self.dilations)]

    def to_ndhwc(self, xp: Any, x: Any) -> Any:
        return xp.transpose(x, (0, 2, 3, 4, 1)) if self.ncdhw else x

    def from_ndhwc(self, xp: Any, x: Any) -> Any:
        return xp.ascontiguousarray(xp.transpose(x, (0, 4, 1, 2, 3))) if self.ncdhw else x


def _tap(x: Any, a: _Attrs, geo: list[Geometry], tap: tuple) -> Any:
    """The [N, OD, OH, OW, C] view of padded ``x`` that window tap ``tap`` reads."""
    return tap_view(x, geo, a.strides, a.dilations, tap)


def _taps(window: tuple) -> itertools.product:
    return itertools.product(*(range(k) for k in window))


def _padded_zeros(xp: Any, sizes: tuple, geo: list[Geometry], dtype: Any) -> Any:
    """Zeros shaped like an NDHWC input of ``sizes`` after padding (gradients gather there)."""
    padded = [n + g.pad_before + g.pad_after for n, g in zip(sizes[1:4], geo)]
    return xp.zeros((sizes[0], *padded, sizes[4]), dtype=dtype)


def _unpad(x: Any, geo: list[Geometry], sizes: tuple) -> Any:
    index = [slice(None)] + [slice(g.pad_before, g.pad_before + n) for g, n in zip(geo, sizes)]
    return x[tuple(index)]


def _check_backprop(a: _Attrs, name: str, sizes: tuple, window: tuple, geo: list[Geometry],
                    dy: Any) -> None:
    """dy's spatial sizes are the forward output's, else TF's message for the first one off."""
    for dim, (size, k, g) in enumerate(zip(sizes[1:4], window, geo), start=1):
        if dy.shape[dim] != g.out:
            raise errors.InvalidArgumentError(
                None, a.node, f"{name}: Size of out_backprop doesn't match computed: actual = "
                f"{dy.shape[dim]}, computed = {g.out} spatial_dim: {dim} input: {size} filter: "
                f"{k} output: {dy.shape[dim]} stride: {a.strides[dim - 1]} dilation: "
                f"{a.dilations[dim - 1]}")


def _sizes(a: _Attrs, value: Any) -> tuple[int, ...]:
    sizes = [int(v) for v in np.asarray(value).reshape(-1)]
    return (sizes[0], *sizes[2:], sizes[1]) if a.ncdhw else tuple(sizes)


@op("Conv3D")
def _conv3d(ctx: BuildContext):
    a, xp = _Attrs(ctx), ctx.xp

    def kernel(x: Any, w: Any) -> Any:
        x = a.to_ndhwc(xp, x)
        if w.shape[3] == 0 or x.shape[4] % w.shape[3]:
            raise errors.InvalidArgumentError(
                None, a.node, f"Input depth must be evenly divisible by filter depth: "
                f"{x.shape[4]} vs {w.shape[3]}")
        if x.shape[4] != w.shape[3]:  # grouped 3-D convolutions have no CPU kernel in TF
            raise errors.InvalidArgumentError(
                None, a.node, f"Number of channels in filter ({w.shape[3]}) must match last "
                f"dimension of input ({x.shape[4]})")
        geo = a.geometry(x.shape[1:4], w.shape[:3])
        xpad = pad_spatial(xp, x, geo)
        out = xp.zeros((x.shape[0], *(g.out for g in geo), w.shape[4]), dtype=x.dtype)
        rows = out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3]
        for tap in _taps(w.shape[:3]):
            patch = xp.ascontiguousarray(_tap(xpad, a, geo, tap)).reshape(rows, w.shape[3])
            out += xp.matmul(patch, w[tap]).reshape(out.shape)
        return a.from_ndhwc(xp, out)

    return kernel


@op("Conv3DBackpropInputV2", host_inputs=(0,))  # (the V1 ops are deprecated since GraphDef 10)
def _conv3d_backprop_input(ctx: BuildContext):
    a, xp = _Attrs(ctx), ctx.xp

    def kernel(input_sizes: Any, w: Any, dy: Any) -> Any:
        sizes = _sizes(a, input_sizes)
        dy = a.to_ndhwc(xp, dy)
        geo = a.geometry(sizes[1:4], w.shape[:3])
        _check_backprop(a, "Conv3DBackpropInputOp", sizes, w.shape[:3], geo, dy)
        dx = _padded_zeros(xp, sizes, geo, dy.dtype)
        flat = dy.reshape(-1, dy.shape[4])
        for tap in _taps(w.shape[:3]):
            _tap(dx, a, geo, tap)[...] += xp.matmul(flat, w[tap].T).reshape(
                *dy.shape[:4], sizes[4])
        return a.from_ndhwc(xp, xp.ascontiguousarray(_unpad(dx, geo, sizes[1:4])))

    return kernel


@op("Conv3DBackpropFilterV2", host_inputs=(1,))
def _conv3d_backprop_filter(ctx: BuildContext):
    a, xp = _Attrs(ctx), ctx.xp

    def kernel(x: Any, filter_sizes: Any, dy: Any) -> Any:
        shape = tuple(int(v) for v in np.asarray(filter_sizes).reshape(-1))
        x, dy = a.to_ndhwc(xp, x), a.to_ndhwc(xp, dy)
        geo = a.geometry(x.shape[1:4], shape[:3])
        _check_backprop(a, "Conv3DBackpropFilterOp", x.shape, shape[:3], geo, dy)
        xpad = pad_spatial(xp, x, geo)
        flat = dy.reshape(-1, dy.shape[4])
        dw = xp.empty(shape, dtype=dy.dtype)
        for tap in _taps(shape[:3]):
            patch = xp.ascontiguousarray(_tap(xpad, a, geo, tap)).reshape(-1, shape[3])
            dw[tap] = xp.matmul(patch.T, flat)
        return dw

    return kernel


# --- pooling ---------------------------------------------------------------------------------
def _pool_input(xp: Any, a: _Attrs, x: Any, fill: Any) -> tuple[Any, list[Geometry], Any]:
    """(x as NDHWC, the window geometry, x padded with ``fill``)."""
    x = a.to_ndhwc(xp, x)
    geo = a.geometry(x.shape[1:4], a.ksize)
    return x, geo, pad_spatial(xp, x, geo, fill)


@op("MaxPool3D")
def _max_pool3d(ctx: BuildContext):
    a, xp = _Attrs(ctx, pool=True), ctx.xp

    def kernel(x: Any) -> Any:
        x, geo, xpad = _pool_input(xp, a, x, lowest_value(x.dtype))
        return a.from_ndhwc(xp, max_over_taps(xp, xpad, geo, a.strides, a.dilations, a.ksize))

    return kernel


@op("MaxPool3DGrad")
def _max_pool3d_grad(ctx: BuildContext):
    # Every input equal to its window's maximum gets the window's gradient (TF's 3-D kernel,
    # unlike the 2-D one, does not pick one of several tied maxima).
    a, xp = _Attrs(ctx, pool=True), ctx.xp

    def kernel(x: Any, y: Any, dy: Any) -> Any:
        x, geo, xpad = _pool_input(xp, a, x, lowest_value(x.dtype))
        y, dy = a.to_ndhwc(xp, y), a.to_ndhwc(xp, dy)
        dx = xp.zeros(xpad.shape, dtype=dy.dtype)
        zero = xp.zeros((), dtype=dy.dtype)
        for tap in _taps(a.ksize):
            _tap(dx, a, geo, tap)[...] += xp.where(_tap(xpad, a, geo, tap) == y, dy, zero)
        return a.from_ndhwc(xp, xp.ascontiguousarray(_unpad(dx, geo, x.shape[1:4])))

    return kernel


def _window_counts(xp: Any, a: _Attrs, geo: list[Geometry], sizes: tuple, dtype: Any) -> Any:
    """How many window elements lie inside the input, per output position (padding excluded)."""
    ones = pad_spatial(xp, xp.ones((1, *sizes, 1), dtype=dtype), geo)
    counts = xp.zeros((1, *(g.out for g in geo), 1), dtype=dtype)
    for tap in _taps(a.ksize):
        counts += _tap(ones, a, geo, tap)
    return counts


@op("AvgPool3D")
def _avg_pool3d(ctx: BuildContext):
    a, xp = _Attrs(ctx, pool=True), ctx.xp

    def kernel(x: Any) -> Any:
        x, geo, xpad = _pool_input(xp, a, x, 0)
        total = xp.zeros((x.shape[0], *(g.out for g in geo), x.shape[4]), dtype=x.dtype)
        for tap in _taps(a.ksize):
            total += _tap(xpad, a, geo, tap)
        return a.from_ndhwc(xp, total / _window_counts(xp, a, geo, x.shape[1:4], x.dtype))

    return kernel


@op("AvgPool3DGrad", host_inputs=(0,))
def _avg_pool3d_grad(ctx: BuildContext):
    a, xp = _Attrs(ctx, pool=True), ctx.xp

    def kernel(input_shape: Any, dy: Any) -> Any:
        sizes = _sizes(a, input_shape)
        dy = a.to_ndhwc(xp, dy)
        geo = a.geometry(sizes[1:4], a.ksize)
        share = dy / _window_counts(xp, a, geo, sizes[1:4], dy.dtype)
        dx = _padded_zeros(xp, sizes, geo, dy.dtype)
        for tap in _taps(a.ksize):
            _tap(dx, a, geo, tap)[...] += share
        return a.from_ndhwc(xp, xp.ascontiguousarray(_unpad(dx, geo, sizes[1:4])))

    return kernel
