"""CUDA kernels for 2-D convolutions: cuDNN first (``devices/cuda/cudnn.py``, through NVIDIA's
cuDNN frontend when it is installed), else the generic im2col bodies with their GEMMs through
the device's cuBLAS (``ops/cuda/math.py``); both can be captured in CUDA graphs."""

from __future__ import annotations

from typing import Any

from gpugraph.ops import conv_ops
from gpugraph.ops.conv_ops import ConvAttrs, Geometry
from gpugraph.ops.cuda.math import product
from gpugraph.ops.registry import BuildContext, op


def _window(a: ConvAttrs, gh: Geometry, gw: Geometry) -> tuple:
    # (pads as (before, after) per dimension, strides, dilations) in cuDNN's terms
    return (((gh.pad_before, gh.pad_after), (gw.pad_before, gw.pad_after)), tuple(a.strides),
            tuple(a.dilations))


@op("Conv2D", device="cuda")
def _conv2d(ctx: BuildContext):
    convolutions = ctx.device.convolutions()

    def direct(x: Any, w: Any, a: ConvAttrs, gh: Geometry, gw: Geometry) -> Any:
        return convolutions.forward(x, w, *_window(a, gh, gw))

    return conv_ops.conv2d(ctx, direct=direct, product=product(ctx))


@op("Conv2DBackpropFilter", device="cuda")
def _conv2d_backprop_filter(ctx: BuildContext):
    convolutions = ctx.device.convolutions()

    def direct(x: Any, dy: Any, sizes: tuple, a: ConvAttrs, gh: Geometry, gw: Geometry) -> Any:
        return convolutions.backward_filter(x, dy, sizes, *_window(a, gh, gw))

    return conv_ops.conv2d_backprop_filter(ctx, direct=direct, product=product(ctx))


@op("Conv2DBackpropInput", device="cuda")
def _conv2d_backprop_input(ctx: BuildContext):
    convolutions = ctx.device.convolutions()

    def direct(dy: Any, w: Any, sizes: tuple, a: ConvAttrs, gh: Geometry, gw: Geometry) -> Any:
        return convolutions.backward_data(dy, w, sizes, *_window(a, gh, gw))

    return conv_ops.conv2d_backprop_input(ctx, direct=direct, product=product(ctx))
