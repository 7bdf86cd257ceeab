"""Ops that move values between spatial, depth and batch dimensions, and MirrorPad's gradient.

SpaceToBatchND / BatchToSpaceND are how tf.compat.v1 builds dilated ("atrous") convolutions;
DepthToSpace / SpaceToDepth appear in super-resolution and detection models.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, op


def _block(ctx: BuildContext) -> tuple[int, bool]:
    block = ctx.attr("block_size")
    fmt = ctx.attr_or("data_format", b"NHWC")
    if fmt not in (b"NHWC", b"NCHW"):
        raise errors.InvalidArgumentError(None, ctx.op, f"Unsupported data_format {fmt.decode()}")
    if block < 2:
        raise errors.InvalidArgumentError(None, ctx.op, f"Block size should be > 1, but was: "
                                          f"{block}")
    return block, fmt == b"NCHW"


@op("DepthToSpace")
def _depth_to_space(ctx: BuildContext):
    (b, nchw), xp, node = _block(ctx), ctx.xp, ctx.op

    def kernel(x: Any) -> Any:
        x = xp.transpose(x, (0, 2, 3, 1)) if nchw else x
        n, h, w, c = x.shape
        if c % (b * b):
            raise errors.InvalidArgumentError(
                None, node, f"Input depth dimension {c} should be divisible by: {b * b}")
        out = x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
        out = out.reshape(n, h * b, w * b, c // (b * b))
        return xp.ascontiguousarray(xp.transpose(out, (0, 3, 1, 2)) if nchw else out)

    return kernel


@op("SpaceToDepth")
def _space_to_depth(ctx: BuildContext):
    (b, nchw), xp, node = _block(ctx), ctx.xp, ctx.op

    def kernel(x: Any) -> Any:
        x = xp.transpose(x, (0, 2, 3, 1)) if nchw else x
        n, h, w, c = x.shape
        if h % b or w % b:
            raise errors.InvalidArgumentError(
                None, node, f"Image width {w} and height {h} should be divisible by block_size: "
                f"{b}")
        out = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
        out = out.reshape(n, h // b, w // b, b * b * c)
        return xp.ascontiguousarray(xp.transpose(out, (0, 3, 1, 2)) if nchw else out)

    return kernel


def _block_shape(node: Any, value: Any, x: Any) -> list[int]:
    block = [int(v) for v in np.asarray(value).reshape(-1)]
    if any(v < 1 for v in block):
        raise errors.InvalidArgumentError(None, node, f"block_shape must be positive, got "
                                          f"{block}")
    if x.ndim < 1 + len(block):
        raise errors.InvalidArgumentError(
            None, node, f"input rank should be >= {1 + len(block)} instead of {x.ndim}")
    return block


@op("SpaceToBatchND", host_inputs=(1, 2))
def _space_to_batch(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any, block_value: Any, paddings: Any) -> Any:
        block = _block_shape(node, block_value, x)
        m = len(block)
        pads = np.asarray(paddings).reshape(m, 2).astype(int)
        if (pads < 0).any():
            raise errors.InvalidArgumentError(None, node, "paddings must be non-negative")
        padded = xp.pad(x, [(0, 0), *map(tuple, pads), *[(0, 0)] * (x.ndim - 1 - m)])
        spatial = padded.shape[1:1 + m]
        if any(s % b for s, b in zip(spatial, block)):
            raise errors.InvalidArgumentError(
                None, node, f"padded spatial shape {list(spatial)} must be divisible by "
                f"block_shape {block}")
        batch, rest = padded.shape[0], padded.shape[1 + m:]
        shape = [batch] + [v for s, b in zip(spatial, block) for v in (s // b, b)] + list(rest)
        order = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)] + \
            list(range(1 + 2 * m, 1 + 2 * m + len(rest)))
        out = padded.reshape(shape).transpose(order)
        return xp.ascontiguousarray(out).reshape(
            batch * int(np.prod(block)), *[s // b for s, b in zip(spatial, block)], *rest)

    return kernel


@op("BatchToSpaceND", host_inputs=(1, 2))
def _batch_to_space(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any, block_value: Any, crops_value: Any) -> Any:
        block = _block_shape(node, block_value, x)
        m, total = len(block), int(np.prod(block))
        crops = np.asarray(crops_value).reshape(m, 2).astype(int)
        if x.shape[0] % total:
            raise errors.InvalidArgumentError(
                None, node, f"Input batch dimension ({x.shape[0]}) is not divisible by product "
                f"of block sizes ({total})")
        batch, spatial, rest = x.shape[0] // total, x.shape[1:1 + m], x.shape[1 + m:]
        out = x.reshape(*block, batch, *spatial, *rest)
        order = [m] + [v for i in range(m) for v in (m + 1 + i, i)] + \
            list(range(1 + 2 * m, 1 + 2 * m + len(rest)))
        out = xp.ascontiguousarray(out.transpose(order)).reshape(
            batch, *[s * b for s, b in zip(spatial, block)], *rest)
        index = [slice(None)] + [slice(c0, s * b - c1) for (c0, c1), s, b in
                                 zip(crops, spatial, block)]
        if (crops < 0).any() or any(c0 + c1 > s * b for (c0, c1), s, b in
                                    zip(crops, spatial, block)):
            raise errors.InvalidArgumentError(None, node, f"crops {crops.tolist()} are invalid "
                                              f"for the block-expanded shape")
        return xp.ascontiguousarray(out[tuple(index)])

    return kernel


@op("MirrorPadGrad", host_inputs=(1,))
def _mirror_pad_grad(ctx: BuildContext):
    # Folds the padded border back onto the values it mirrored, one dimension at a time.
    mode, xp, node = ctx.attr("mode"), ctx.xp, ctx.op
    shift = 1 if mode == b"REFLECT" else 0  # REFLECT mirrors around the edge value

    def kernel(dy: Any, paddings: Any) -> Any:
        pads = np.asarray(paddings).reshape(dy.ndim, 2).astype(int)
        out = dy
        for axis, (before, after) in enumerate(pads):
            size = out.shape[axis] - before - after
            _check_mirror_padding(node, before, after, size, shift)
            take = lambda a, b: out[(slice(None),) * axis + (slice(a, b),)]  # noqa: E731
            core = xp.array(take(before, before + size), copy=True)
            place = lambda a, b: (slice(None),) * axis + (slice(a, b),)  # noqa: E731
            if before:
                core[place(shift, shift + before)] += xp.flip(take(0, before), axis=axis)
            if after:
                core[place(size - after - shift, size - shift)] += xp.flip(
                    take(before + size, before + size + after), axis=axis)
            out = core
        return out

    return kernel


def _check_mirror_padding(node: Any, before: int, after: int, size: int, shift: int) -> None:
    if before < 0 or after < 0 or size < 0:
        raise errors.InvalidArgumentError(
            None, node, f"Paddings must be non-negative and fit in the gradient: {before}, "
                        f"{after} for an output of size {size}")
    if shift and (before >= size or after >= size):  # REFLECT
        raise errors.InvalidArgumentError(
            None, node, f"paddings must be less than the output dimension size: {before}, "
                        f"{after} not less than {size}")
    if not shift and (before > size or after > size):  # SYMMETRIC
        raise errors.InvalidArgumentError(
            None, node, f"paddings must be no greater than the output dimension size: {before}, "
                        f"{after} greater than {size}")


# --- reversals and rolls ------------------------------------------------------------------------
@op("ReverseSequence")
def _reverse_sequence(ctx: BuildContext):
    # Row b reverses its first seq_lengths[b] steps along seq_dim (bidirectional RNNs).
    xp, node, device = ctx.xp, ctx.op, ctx.device
    seq_dim, batch_dim = ctx.attr("seq_dim"), ctx.attr_or("batch_dim", 0)

    def kernel(x: Any, seq_lengths: Any) -> Any:
        lengths = np.asarray(device.to_host(seq_lengths)).astype(np.int64)
        steps = x.shape[seq_dim]
        if lengths.shape != (x.shape[batch_dim],):
            raise errors.InvalidArgumentError(
                None, node, f"Length of seq_lengths != input.dims({batch_dim}), "
                f"({lengths.size} vs. {x.shape[batch_dim]})")
        if (lengths > steps).any() or (lengths < 0).any():
            bad = int(np.flatnonzero((lengths > steps) | (lengths < 0))[0])
            raise errors.InvalidArgumentError(
                None, node, f"seq_lens({bad}) > input.dims({seq_dim}), ({int(lengths[bad])} vs. "
                f"{steps})")
        t = np.arange(steps)[None, :]
        source = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # [batch, steps]
        # laid out along (batch_dim, seq_dim) in their order in x, size 1 elsewhere
        order = source if batch_dim < seq_dim else source.T
        sizes = [x.shape[d] if d in (batch_dim, seq_dim) else 1 for d in range(x.ndim)]
        index = device.to_device(order.reshape(sizes))
        return xp.take_along_axis(x, xp.broadcast_to(index, x.shape), axis=seq_dim)

    return kernel


@op("Roll", host_inputs=(1, 2))
def _roll(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any, shift: Any, axis: Any) -> Any:
        shifts = [int(v) for v in np.asarray(shift).reshape(-1)]
        axes = [int(v) for v in np.asarray(axis).reshape(-1)]
        if len(shifts) != len(axes):
            raise errors.InvalidArgumentError(None, node, "shift and axis must have the same size")
        return xp.roll(x, shifts, axes) if axes else x

    return kernel


@op("Reverse", host_inputs=(1,))
def _reverse_v1(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any, dims: Any) -> Any:
        flags = np.asarray(dims).reshape(-1)
        if flags.size != x.ndim:
            raise errors.InvalidArgumentError(
                None, node, f"'dims' must have the same number of values as 'input' has "
                f"dimensions. 'input' has {x.ndim}'dims' has {flags.size} values")
        axes = tuple(int(i) for i in np.flatnonzero(flags))
        return xp.flip(x, axes) if axes else x

    return kernel
