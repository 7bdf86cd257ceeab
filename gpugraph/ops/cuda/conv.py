"""CUDA kernels for 2-D convolutions: the generic im2col bodies with their GEMMs through the
device's cuBLAS (``ops/cuda/math.py``), so that a captured step can hold them."""

from __future__ import annotations

from gpugraph.ops import conv_ops
from gpugraph.ops.cuda.math import product
from gpugraph.ops.registry import BuildContext, op


@op("Conv2D", device="cuda")
def _conv2d(ctx: BuildContext):
    return conv_ops.conv2d(ctx, product=product(ctx))


@op("Conv2DBackpropFilter", device="cuda")
def _conv2d_backprop_filter(ctx: BuildContext):
    return conv_ops.conv2d_backprop_filter(ctx, product=product(ctx))


@op("Conv2DBackpropInput", device="cuda")
def _conv2d_backprop_input(ctx: BuildContext):
    return conv_ops.conv2d_backprop_input(ctx, product=product(ctx))
