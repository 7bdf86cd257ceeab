"""Shape and layout ops: Reshape, slicing, concatenation, gathering, padding, broadcasting.

Shape-like inputs (the new shape of Reshape, axes, begin/end/strides, multiples, paddings) are
host inputs: kernels read them as numpy integers on every device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.devices.base import host_value
from gpugraph.ops.registry import BuildContext, dims_text, op


def _ints(value: Any) -> list[int]:
    return np.asarray(value).reshape(-1).tolist()


def _axis(value: Any, rank: int, node: Any, what: str = "axis") -> int:
    axis = int(np.asarray(value).reshape(-1)[0]) if np.size(value) else 0
    if not -rank <= axis < max(rank, 1):
        raise errors.InvalidArgumentError(
            None, node, f"Expected {what} in the range [{-rank}, {rank}), but got {axis}")
    return axis + rank if axis < 0 else axis


# --- reshaping -------------------------------------------------------------------------------
@op("Reshape", host_inputs=(1,))
def _reshape(ctx: BuildContext):
    node = ctx.op

    def kernel(x: Any, shape: Any) -> Any:
        dims = _ints(shape)
        try:
            return x.reshape(dims)  # numpy agrees with TF except on the errors and 0-sized -1
        except ValueError:
            pass
        known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
        if dims.count(-1) > 1:
            raise errors.InvalidArgumentError(None, node, f"Only one input size may be -1, not "
                                              f"both {dims.index(-1)} and {len(dims) - 1}")
        if dims.count(-1) == 1:
            dims[dims.index(-1)] = _missing_dim(node, x, dims)
        elif known != x.size:
            raise _reshape_error(node, x, dims)
        return x.reshape(dims)

    return kernel


def _missing_dim(node: Any, x: Any, dims: list[int]) -> int:
    """The size TF's Reshape gives the -1 of ``dims`` (reshape_op.h ValidateSizes): where
    ``dims`` has a 0, zero-sized dimensions count on neither side, so a [1917, 1, 0, 0] tensor
    reshaped to [-1, 1, 0, 0] keeps its 1917 (numpy cannot tell, and refuses)."""
    zero_in_dims = 0 in dims
    product = int(np.prod([d for d in dims if d > 0], dtype=np.int64))
    sizes = [d for d in x.shape if d > 0 or not zero_in_dims]
    elements = int(np.prod(sizes, dtype=np.int64))
    missing = elements // product
    if len(sizes) == x.ndim and product * missing != elements:  # (no zero-sized dim skipped)
        raise _reshape_error(node, x, dims)
    return missing


def _reshape_error(node: Any, x: Any, dims: list[int]) -> errors.InvalidArgumentError:
    return errors.InvalidArgumentError(
        None, node, f"Input to reshape is a tensor with {x.size} values, but the requested shape "
        f"{'requires a multiple of' if -1 in dims else 'has'} "
        f"{int(np.prod([d for d in dims if d != -1], dtype=np.int64))}")


@op("Squeeze")
def _squeeze(ctx: BuildContext):
    dims, node = ctx.attr_or("squeeze_dims", []), ctx.op

    def kernel(x: Any) -> Any:
        axes = tuple(d + x.ndim if d < 0 else d for d in dims)
        if not axes:
            return x.reshape([d for d in x.shape if d != 1])
        for a in axes:
            if x.shape[a] != 1:
                raise errors.InvalidArgumentError(
                    None, node, f"Can not squeeze dim[{a}], expected a dimension of 1, got "
                    f"{x.shape[a]}")
        return x.reshape([d for i, d in enumerate(x.shape) if i not in axes])

    return kernel


@op("ExpandDims", host_inputs=(1,))
def _expand_dims(ctx: BuildContext):
    node = ctx.op

    def kernel(x: Any, dim: Any) -> Any:
        axis = _axis(dim, x.ndim + 1, node, "dim")
        return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])

    return kernel


@op("Transpose", "ConjugateTranspose", host_inputs=(1,))
def _transpose(ctx: BuildContext):
    xp, conj = ctx.xp, ctx.op.type == "ConjugateTranspose"

    def kernel(x: Any, perm: Any) -> Any:
        axes = _ints(perm)
        _check_permutation(ctx.op, x, axes)
        out = xp.transpose(x, axes)
        return xp.conj(out) if conj else out

    return kernel


def _check_permutation(node: Any, x: Any, axes: list[int]) -> None:
    if len(axes) != x.ndim:
        raise errors.InvalidArgumentError(
            None, node, f"transpose expects a vector of size {x.ndim}. But input(1) is a vector "
            f"of size {len(axes)}")
    for d in range(x.ndim):
        if d not in axes:
            raise errors.InvalidArgumentError(
                None, node, f"{d} is missing from {{{','.join(str(a) for a in axes)}}}.")


@op("InvertPermutation")
def _invert_permutation(ctx: BuildContext):
    def kernel(perm: Any) -> Any:
        out = np.empty_like(perm)
        out[perm] = np.arange(perm.size, dtype=perm.dtype)
        return out

    return kernel


# --- concatenation and splitting ------------------------------------------------------------
def _concat(xp: Any, node: Any, values: tuple, axis_value: Any) -> Any:
    rank = values[0].ndim
    axis = _axis(axis_value, rank, node)
    for i, v in enumerate(values[1:], 1):
        if v.ndim != rank:
            raise errors.InvalidArgumentError(
                None, node, f"ConcatOp : Ranks of all input tensors should match: shape[0] = "
                f"{dims_text(values[0].shape)} vs. shape[{i}] = {dims_text(v.shape)}")
    return xp.concatenate(values, axis=axis)


@op("ConcatV2", host_inputs=(-1,))
def _concat_v2(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op
    return lambda *args: _concat(xp, node, args[:-1], args[-1])


@op("Concat", host_inputs=(0,))
def _concat_v1(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op
    return lambda axis, *values: _concat(xp, node, values, axis)


@op("ConcatOffset", host_inputs="all", host_outputs="all")
def _concat_offset(ctx: BuildContext):
    node = ctx.op

    def kernel(concat_dim: Any, *shapes: Any) -> tuple:
        axis = _axis(concat_dim, len(shapes[0]), node)
        offsets, running = [], 0
        for shape in shapes:
            offset = np.zeros_like(shape)
            offset[axis] = running
            running += int(shape[axis])
            offsets.append(offset)
        return tuple(offsets)

    return kernel


@op("Split", host_inputs=(0,))
def _split(ctx: BuildContext):
    num, node = ctx.attr("num_split"), ctx.op

    def kernel(axis_value: Any, x: Any) -> tuple:
        axis = _axis(axis_value, x.ndim, node)
        if x.shape[axis] % num:
            raise errors.InvalidArgumentError(
                None, node, f"Number of ways to split should evenly divide the split dimension, "
                f"but got split_dim {axis} (size = {x.shape[axis]}) and num_split {num}")
        # Basic slices, as np.split makes (the same views) without its Python-level
        # array_split (~10 us; an LSTM cell splits its gates every time step).
        size, lead = x.shape[axis] // num, (slice(None),) * axis
        return tuple(x[(*lead, slice(i * size, (i + 1) * size))] for i in range(num))

    return kernel


@op("SplitV", host_inputs=(1, 2))
def _split_v(ctx: BuildContext):
    node = ctx.op

    def kernel(x: Any, size_splits: Any, axis_value: Any) -> tuple:
        axis = _axis(axis_value, x.ndim, node)
        sizes = _ints(size_splits)
        if -1 in sizes:
            sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
        if sum(sizes) != x.shape[axis] or min(sizes, default=0) < 0:
            raise errors.InvalidArgumentError(
                None, node, f"Determined shape must either match input shape along split_dim "
                f"exactly if fully specified, or be less than the size of the input along "
                f"split_dim if not fully specified.  Got: {sum(sizes)}")
        bounds = np.cumsum(sizes)[:-1]
        index = [slice(None)] * x.ndim
        parts, start = [], 0
        for stop in [*bounds.tolist(), x.shape[axis]]:
            index[axis] = slice(start, stop)
            parts.append(x[tuple(index)])
            start = stop
        return tuple(parts)

    return kernel


@op("Pack")
def _pack(ctx: BuildContext):
    axis, xp = ctx.attr("axis"), ctx.xp
    return lambda *values: xp.stack(values, axis=axis)


@op("Unpack")
def _unpack(ctx: BuildContext):
    axis, xp = ctx.attr("axis"), ctx.xp

    def kernel(x: Any) -> tuple:
        moved = xp.moveaxis(x, axis, 0)
        return tuple(moved[i] for i in range(moved.shape[0]))

    return kernel


# --- slicing --------------------------------------------------------------------------------
@op("Slice", host_inputs=(1, 2))
def _slice(ctx: BuildContext):
    node = ctx.op

    def kernel(x: Any, begin: Any, size: Any) -> Any:
        b, s = _ints(begin), _ints(size)
        index = []
        for i, (start, length) in enumerate(zip(b, s)):
            stop = x.shape[i] if length == -1 else start + length
            if start < 0 or stop > x.shape[i] or stop < start:
                raise errors.InvalidArgumentError(
                    None, node, f"Expected size[{i}] in [0, {x.shape[i] - start}], but got "
                    f"{length}")
            index.append(slice(start, stop))
        return x[tuple(index)]

    return kernel


def strided_index(ctx: BuildContext):
    """index(begin, end, strides) -> the numpy index tuple of a StridedSlice node (its masks)."""
    masks = {k: ctx.attr_or(k, 0) for k in (
        "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}

    def index(begin: Any, end: Any, strides: Any) -> tuple:
        b, e, s = _ints(begin), _ints(end), _ints(strides)
        spec: list[Any] = []
        for i in range(len(b)):
            bit = 1 << i
            if masks["ellipsis_mask"] & bit:
                spec.append(Ellipsis)
            elif masks["new_axis_mask"] & bit:
                spec.append(None)
            elif masks["shrink_axis_mask"] & bit:
                spec.append(b[i])
            else:
                if s[i] == 0:
                    raise ValueError("strides[%d] must be non-zero" % i)
                spec.append(slice(None if masks["begin_mask"] & bit else b[i],
                                  None if masks["end_mask"] & bit else e[i], s[i]))
        return tuple(spec)

    return index


@op("StridedSlice", host_inputs=(1, 2, 3))
def _strided_slice(ctx: BuildContext):
    index, node = strided_index(ctx), ctx.op

    def kernel(x: Any, begin: Any, end: Any, strides: Any) -> Any:
        spec = index(begin, end, strides)
        _check_shrink_bounds(node, x, spec)
        return x[spec]

    return kernel


def _check_shrink_bounds(node: Any, x: Any, spec: tuple) -> None:
    # numpy wraps a negative index like TF but raises a bare IndexError when out of range.
    dim = 0
    for item in spec:
        if item is Ellipsis:
            dim = x.ndim - sum(1 for s in spec if s is not None and s is not Ellipsis) + dim
            continue
        if item is None:
            continue
        if isinstance(item, int) and not -x.shape[dim] <= item < x.shape[dim]:
            raise errors.InvalidArgumentError(
                None, node, f"slice index {item} of dimension {dim} out of bounds.")
        dim += 1


@op("StridedSliceGrad", host_inputs=(0, 1, 2, 3))
def _strided_slice_grad(ctx: BuildContext):
    index, xp = strided_index(ctx), ctx.xp

    def kernel(shape: Any, begin: Any, end: Any, strides: Any, dy: Any) -> Any:
        out = xp.zeros(_ints(shape), dtype=dy.dtype)
        target = out[index(begin, end, strides)]
        out[index(begin, end, strides)] = dy.reshape(target.shape)
        return out

    return kernel


# --- tiling, filling, ranges, broadcasting -------------------------------------------------
@op("Tile", host_inputs=(1,))
def _tile(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any, multiples: Any) -> Any:
        reps = _ints(multiples)
        if len(reps) != x.ndim:
            raise errors.InvalidArgumentError(
                None, node, f"Expected multiples argument to be a vector of length {x.ndim} "
                f"but got length {len(reps)}")
        return xp.tile(x, reps) if x.ndim else x.copy()

    return kernel


@op("Fill", host_inputs=(0,))
def _fill(ctx: BuildContext):
    xp = ctx.xp
    return lambda dims, value: xp.full(_ints(dims), value, dtype=value.dtype)


@op("Range", host_inputs=(0, 1, 2))
def _range(ctx: BuildContext):
    xp, out, node = ctx.xp, ctx.out_dtype(), ctx.op

    def kernel(start: Any, limit: Any, delta: Any) -> Any:
        if delta == 0:
            raise errors.InvalidArgumentError(None, node, f"Requires delta != 0: {delta}")
        return xp.arange(start, limit, delta, dtype=out)

    return kernel


@op("BroadcastTo", host_inputs=(1,))
def _broadcast_to(ctx: BuildContext):
    xp = ctx.xp
    return lambda x, shape: xp.broadcast_to(x, _ints(shape))


def _broadcast_shapes(node: Any, a: list[int], b: list[int]) -> list[int]:
    rank = max(len(a), len(b))
    a2, b2 = [1] * (rank - len(a)) + a, [1] * (rank - len(b)) + b
    out = []
    for x, y in zip(a2, b2):
        if x != y and 1 not in (x, y):
            raise errors.InvalidArgumentError(
                None, node, f"Incompatible shapes: {dims_text(a)} vs. {dims_text(b)}")
        out.append(y if x == 1 else x)
    return out


@op("BroadcastArgs", host_inputs=(0, 1), host_outputs=(0,))
def _broadcast_args(ctx: BuildContext):
    node, out = ctx.op, ctx.out_dtype()
    return lambda s0, s1: np.asarray(_broadcast_shapes(node, _ints(s0), _ints(s1)), dtype=out)


@op("BroadcastGradientArgs", host_inputs=(0, 1), host_outputs=(0, 1))
def _broadcast_gradient_args(ctx: BuildContext):
    node, out = ctx.op, ctx.out_dtype()
    # By the shapes' bytes: in a while loop's gradient the shapes come off a stack, new
    # arrays every iteration that memoize_shape_math cannot recognise, with the same values.
    # Shared between calls, the answers are read-only: a fetched one changed in place would
    # otherwise change every later run's.
    known: dict[tuple, tuple] = {}

    def kernel(s0: Any, s1: Any) -> tuple:
        key = (s0.dtype.str, s0.tobytes(), s1.tobytes())
        result = known.get(key)
        if result is None:
            if len(known) >= 64:  # (graphs whose shapes keep changing)
                known.clear()
            result = known[key] = reduction_indices(s0, s1)
            for array in result:
                array.flags.writeable = False
        return result

    def reduction_indices(s0: Any, s1: Any) -> tuple:
        a, b = _ints(s0), _ints(s1)
        _broadcast_shapes(node, a, b)
        if a == b:  # TF's BCast fast path: identical shapes reduce nothing
            return np.zeros(0, dtype=out), np.zeros(0, dtype=out)
        rank = max(len(a), len(b))
        a2, b2 = [1] * (rank - len(a)) + a, [1] * (rank - len(b)) + b
        # Matches TF's BCast: a dim where the *other* side is larger is reduced; where both
        # sides are 1 the dim is reduced on both (summing over a size-1 axis is harmless).
        r0 = [i for i in range(rank) if a2[i] == 1 and (b2[i] != 1 or a2[i] == b2[i] == 1)]
        r1 = [i for i in range(rank) if b2[i] == 1 and (a2[i] != 1 or a2[i] == b2[i] == 1)]
        return np.asarray(r0, dtype=out), np.asarray(r1, dtype=out)

    return kernel


# --- shapes -----------------------------------------------------------------------------------
@op("Shape", host_outputs=(0,))
def _shape(ctx: BuildContext):
    out = ctx.out_dtype()
    return lambda x: np.asarray(x.shape, dtype=out)


@op("ShapeN", host_outputs="all")
def _shape_n(ctx: BuildContext):
    out = ctx.out_dtype()
    return lambda *xs: tuple(np.asarray(x.shape, dtype=out) for x in xs)


@op("Size", host_outputs=(0,))
def _size(ctx: BuildContext):
    out = ctx.out_dtype()
    return lambda x: out.type(x.size)


@op("Rank", host_outputs=(0,))
def _rank(ctx: BuildContext):
    return lambda x: np.int32(x.ndim)


@op("ZerosLike")
def _zeros_like(ctx: BuildContext):
    if not isinstance(ctx.attr("T"), np.dtype):  # a variant (TensorList): numpy's hook on it
        return np.zeros_like
    return ctx.xp.zeros_like


@op("OnesLike")
def _ones_like(ctx: BuildContext):
    return ctx.xp.ones_like


# --- gathering --------------------------------------------------------------------------------
def _check_indices(node: Any, indices: Any, limit: int) -> None:
    bad = (indices < 0) | (indices >= limit)
    if bool(bad.any()):
        # (CuPy arrays refuse np.asarray: they are copied to the host first)
        bad, indices = np.asarray(host_value(bad)), np.asarray(host_value(indices))
        pos = np.argwhere(bad)[0]
        value = int(indices[tuple(pos)])
        where = ",".join(str(int(p)) for p in pos)
        raise errors.InvalidArgumentError(
            None, node, f"indices[{where}] = {value} is not in [0, {limit})")


def _gather(xp: Any, node: Any, params: Any, indices: Any, axis: int, batch_dims: int,
            checked: bool | None = True) -> Any:
    """TF's Gather; ``checked``: an index out of range raises (TF's CPU kernel); False: its
    output is 0 (TF's GPU kernel, with no host synchronization); None: indices known good."""
    if checked is False:
        limit = params.shape[axis]
        bad = (indices < 0) | (indices >= limit)
        out = _gather(xp, node, params, xp.clip(indices, 0, max(limit - 1, 0)), axis,
                      batch_dims, None) if limit else xp.zeros(
            params.shape[:axis] + indices.shape[batch_dims:] + params.shape[axis + 1:],
            params.dtype)
        shape = (1,) * (axis - batch_dims) + indices.shape[batch_dims:] + \
            (1,) * (params.ndim - axis - 1)
        lead = indices.shape[:batch_dims]
        return xp.where(bad.reshape(lead + shape), _zero(out), out)
    if checked:
        _check_indices(node, indices, params.shape[axis])
    if batch_dims == 0:
        return xp.take(params, indices, axis=axis)
    lead = params.shape[:batch_dims]
    p = params.reshape((-1,) + params.shape[batch_dims:])
    i = indices.reshape((-1,) + indices.shape[batch_dims:])
    parts = [xp.take(p[n], i[n], axis=axis - batch_dims) for n in range(p.shape[0])]
    stacked = xp.stack(parts) if parts else xp.zeros(
        (0,) + params.shape[batch_dims:axis] + indices.shape[batch_dims:] + params.shape[axis + 1:],
        dtype=params.dtype)
    return stacked.reshape(lead + stacked.shape[1:])


@op("GatherV2", host_inputs=(2,))
def _gather_v2(ctx: BuildContext):
    batch_dims, xp, node = ctx.attr_or("batch_dims", 0), ctx.xp, ctx.op
    checked = ctx.device.is_host  # GPUs: out-of-range indices give zeros (as TF's GPU kernel)

    def kernel(params: Any, indices: Any, axis_value: Any) -> Any:
        axis = _axis(axis_value, params.ndim, node)
        bd = batch_dims + indices.ndim if batch_dims < 0 else batch_dims
        return _gather(xp, node, params, indices, axis, bd, checked)

    return kernel


@op("Gather")
def _gather_v1(ctx: BuildContext):
    xp, node, checked = ctx.xp, ctx.op, ctx.device.is_host
    return lambda params, indices: _gather(xp, node, params, indices, 0, 0, checked)


@op("OneHot", host_inputs=(1,))
def _one_hot(ctx: BuildContext):
    axis, xp = ctx.attr("axis"), ctx.xp

    def kernel(indices: Any, depth: Any, on: Any, off: Any) -> Any:
        classes = xp.arange(int(depth), dtype=indices.dtype)
        hot = indices[..., None] == classes
        out = xp.where(hot, on, off).astype(on.dtype, copy=False)
        return out if axis == -1 else xp.moveaxis(out, -1, axis)

    return kernel


@op("DynamicStitch", "ParallelDynamicStitch")
def _dynamic_stitch(ctx: BuildContext):
    n, xp = ctx.attr("N"), ctx.xp

    def kernel(*args: Any) -> Any:
        indices, data = args[:n], args[n:]
        size = max((int(i.max()) + 1 for i in indices if i.size), default=0)
        tail = data[0].shape[indices[0].ndim:]
        out = xp.zeros((size,) + tail, dtype=data[0].dtype)
        for idx, values in zip(indices, data):
            out[idx.reshape(-1)] = values.reshape((-1,) + tail)
        return out

    return kernel


@op("Where")
def _where(ctx: BuildContext):
    xp = ctx.xp
    return lambda cond: xp.argwhere(cond).astype(np.int64)


# --- padding and reversal ----------------------------------------------------------------------
def _pad_width(node: Any, x: Any, paddings: Any) -> list[tuple[int, int]]:
    pads = np.asarray(paddings).reshape(-1, 2).tolist()
    if len(pads) != x.ndim:
        raise errors.InvalidArgumentError(
            None, node, f"The first dimension of paddings must be the rank of inputs"
            f"{list(np.shape(paddings))} {list(x.shape)}")
    return [(int(a), int(b)) for a, b in pads]


# PadV2's constant_values is host memory, as in TF's GPU kernel (CuPy's pad takes no device
# scalar, and reading one would synchronize).
@op("PadV2", host_inputs=(1, 2))
@op("Pad", host_inputs=(1,))
def _pad(ctx: BuildContext):
    xp, node = ctx.xp, ctx.op

    def kernel(x: Any, paddings: Any, constant: Any = 0) -> Any:
        if hasattr(constant, "item"):
            constant = constant.item()
        return xp.pad(x, _pad_width(node, x, paddings), constant_values=constant)

    return kernel


@op("MirrorPad", host_inputs=(1,))
def _mirror_pad(ctx: BuildContext):
    mode = ctx.attr("mode").decode().lower()
    xp, node = ctx.xp, ctx.op
    return lambda x, paddings: xp.pad(x, _pad_width(node, x, paddings), mode=mode)


@op("ReverseV2", host_inputs=(1,))
def _reverse_v2(ctx: BuildContext):
    xp = ctx.xp
    return lambda x, axis: xp.flip(x, axis=tuple(a % x.ndim for a in _ints(axis))) if np.size(
        axis) else x


@op("Cumsum", "Cumprod", host_inputs=(1,))
def _cumulative(ctx: BuildContext):
    exclusive, reverse, xp = ctx.attr("exclusive"), ctx.attr("reverse"), ctx.xp
    product = ctx.op.type == "Cumprod"

    def kernel(x: Any, axis_value: Any) -> Any:
        axis = int(axis_value) % max(x.ndim, 1)
        y = xp.flip(x, axis) if reverse else x
        out = (xp.cumprod if product else xp.cumsum)(y, axis=axis, dtype=x.dtype)
        if exclusive:
            first = xp.ones_like if product else xp.zeros_like
            head = first(xp.take(out, [0], axis=axis))
            out = xp.concatenate([head, xp.take(out, range(out.shape[axis] - 1), axis=axis)], axis)
        return xp.flip(out, axis) if reverse else out

    return kernel


def _zero(like: Any) -> Any:
    return like.dtype.type(0)
