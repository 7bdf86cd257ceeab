"""TensorArrayV3 and StackV2 families: the loop state of v1 ``dynamic_rnn`` and its gradient.

Each TensorArray/Stack op creates its resource anew on every run (as TF's are per step); the
handle is the Python object itself and the ``flow`` tensors only order the ops.  Semantics and
messages follow TF's CPU kernels (tensor_array_ops.cc, stack.cc): a gradient TensorArray sums
repeated writes, a read of an unwritten index gives zeros when the element shape is known,
``clear_after_read`` forbids a second read.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from gpugraph import dtypes, errors
from gpugraph.ops.registry import BuildContext, dims_text, op

_ids = itertools.count(1)
_FLOW = np.float32(0)


def _flow(ctx: BuildContext) -> Any:
    """The node's ``flow`` output: a dummy scalar living on its device, as TF's does."""
    return ctx.device.to_device(_FLOW)


def _fail(node: Any, message: str, cls: type = errors.InvalidArgumentError) -> errors.OpError:
    return cls(None, node, message)


def _shape_text(shape: Any) -> str:
    if shape is None or shape.rank is None:
        return "<unknown>"
    return "[" + ",".join("?" if d is None else str(d) for d in shape.dims) + "]"


class TensorArray:
    """One TensorArray resource."""

    def __init__(self, name: str, dtype: np.dtype, size: int, dynamic: bool, clear: bool,
                 element_shape: Any, identical: bool, gradient: bool = False):
        self.name, self.dtype, self.dynamic, self.clear = name, dtype, dynamic, clear
        self.element_shape = element_shape  # TensorShape (may be partial/unknown)
        self.identical = identical
        self.gradient = gradient
        self.values: list[Any] = [None] * size
        self.cleared = [False] * size
        # Each written element's shape, kept after a read clears it: a gradient array starts
        # with its forward array's (TF's CopyShapesFrom), so an element no gradient was written
        # to reads as zeros of the right shape even when the element shape is unknown.
        self.shapes: list[tuple | None] = [None] * size
        self.grads: dict[bytes, TensorArray] = {}
        self.closed = False
        self._checked: tuple | None = None  # the last value shape _check_shape accepted

    def check_open(self, node: Any) -> None:
        if self.closed:
            raise _fail(node, f"TensorArray {self.name} has already been closed.")

    def write(self, node: Any, index: int, value: Any) -> None:
        self.check_open(node)
        if value.dtype != self.dtype:
            raise _fail(node, f"TensorArray dtype is {dtypes.type_string(self.dtype)} but Op is "
                        f"trying to write dtype {dtypes.type_string(value.dtype)}.")
        if index < 0:
            raise _fail(node, f"Tried to write to index {index} but array size is: "
                        f"{len(self.values)}")
        if index >= len(self.values):
            if not self.dynamic:
                raise _fail(node, f"TensorArray {self.name}: Tried to write to index {index} but "
                            f"array is not resizeable and size is: {len(self.values)}")
            grow = index + 1 - len(self.values)
            self.values += [None] * grow
            self.cleared += [False] * grow
            self.shapes += [None] * grow
        self._check_shape(node, index, value)
        old = self.values[index]
        if old is not None or self.cleared[index]:
            if not self.gradient:
                raise _fail(node, f"TensorArray {self.name}: Could not write to TensorArray index "
                            f"{index} because it has already been written to.")
            if old is not None and old.shape != value.shape:
                raise _fail(node, f"TensorArray {self.name}: Could not aggregate to TensorArray "
                            f"index {index} because the existing shape is {dims_text(old.shape)} "
                            f"but the new input shape is {dims_text(value.shape)}.")
            value = value + old if old is not None else value
        self.values[index] = value
        self.shapes[index] = tuple(value.shape)

    def _check_shape(self, node: Any, index: int, value: Any) -> None:
        if value.shape == self._checked:
            # Accepted before, and the element shape only ever narrows to an accepted shape:
            # skips building a TensorShape per write (~8 us; a loop writes every iteration).
            return
        shape = self.element_shape
        if shape is not None and shape.rank is not None and not shape.is_compatible_with(
                value.shape):
            raise _fail(node, f"TensorArray {self.name}: Could not write to TensorArray index "
                        f"{index} because the value shape is {dims_text(value.shape)} which is "
                        f"incompatible with the TensorArray's inferred element shape: "
                        f"{_shape_text(shape)} (consider setting infer_shape=False).")
        if self.identical and (shape is None or shape.rank is None or not
                               shape.is_fully_defined()):
            from gpugraph.framework.tensor_shape import TensorShape

            self.element_shape = TensorShape(value.shape)
        self._checked = value.shape

    def read(self, node: Any, index: int, xp: Any) -> Any:
        self.check_open(node)
        if not 0 <= index < len(self.values):
            raise _fail(node, f"Tried to read from index {index} but array size is: "
                        f"{len(self.values)}")
        if self.cleared[index]:
            raise _fail(node, f"TensorArray {self.name}: Could not read index {index} twice "
                        "because it was cleared after a previous read (perhaps try setting "
                        "clear_after_read = false?).")
        value = self.values[index]
        if value is None:
            value = self._zeros(node, index, xp)
        elif self.clear and not self.gradient:
            self.values[index] = None
            self.cleared[index] = True
        return value

    def _zeros(self, node: Any, index: int, xp: Any) -> Any:
        known = self.shapes[index] if index < len(self.shapes) else None
        if self.gradient and known:  # (TF: a non-scalar shape copied from the forward array)
            return xp.zeros(known, dtype=self.dtype)
        shape = self.element_shape
        if shape is None or shape.rank is None or not shape.is_fully_defined():
            raise _fail(node, f"TensorArray {self.name}: Could not read from TensorArray index "
                        f"{index}.  Furthermore, the element shape is not fully defined: "
                        f"{_shape_text(shape)}.  It is possible you are working with a "
                        "resizeable TensorArray and stop_gradients is not allowing the gradients "
                        "to be written.  If you set the full element_shape property on the "
                        "forward TensorArray, the proper all-zeros tensor will be returned "
                        "instead of incurring this error.")
        return xp.zeros(tuple(shape.dims), dtype=self.dtype)

    def grad(self, source: bytes) -> TensorArray:
        found = self.grads.get(source)
        if found is None:
            found = TensorArray(f"{self.name}@{source.decode()}", self.dtype, len(self.values),
                                self.dynamic, False, self.element_shape, self.identical, True)
            found.shapes = list(self.shapes)
            self.grads[source] = found
        return found


def _shape_attr(ctx: BuildContext, name: str) -> Any:
    try:
        return ctx.attr(name)
    except ValueError:
        return None


@op("TensorArrayV3", host_inputs=(0,))
def _tensor_array(ctx: BuildContext):
    flow_out = _flow(ctx)
    dtype, dynamic = ctx.attr("dtype"), ctx.attr_or("dynamic_size", False)
    clear = ctx.attr_or("clear_after_read", True)
    identical = ctx.attr_or("identical_element_shapes", False)
    element_shape = _shape_attr(ctx, "element_shape")
    label = (ctx.attr_or("tensor_array_name", b"") or b"").decode() or ctx.name

    def kernel(size: Any) -> tuple:
        array = TensorArray(f"{label}_{next(_ids)}", dtype, int(size), dynamic, clear,
                            element_shape, identical)
        return array, flow_out

    return kernel


@op("TensorArrayWriteV3", host_inputs=(1,))
def _write(ctx: BuildContext):
    flow_out = _flow(ctx)
    node = ctx.op

    def kernel(array: TensorArray, index: Any, value: Any, flow: Any) -> Any:
        array.write(node, int(index), value)
        return flow_out

    return kernel


@op("TensorArrayReadV3", host_inputs=(1,))
def _read(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp
    return lambda array, index, flow: array.read(node, int(index), xp)


@op("TensorArrayGatherV3", host_inputs=(1,))
def _gather(ctx: BuildContext):
    node, xp, element_shape = ctx.op, ctx.xp, _shape_attr(ctx, "element_shape")

    def kernel(array: TensorArray, indices: Any, flow: Any) -> Any:
        array.check_open(node)
        indices = np.asarray(indices).reshape(-1).tolist()
        if not indices:
            shape = element_shape
            if shape is None or shape.rank is None or not shape.is_fully_defined():
                raise _fail(node, f"TensorArray has size zero, but element shape "
                            f"{_shape_text(shape)} is not fully defined. Currently only static "
                            "shapes are supported when packing zero-size TensorArrays.",
                            errors.UnimplementedError)
            return xp.zeros((0, *shape.dims), dtype=array.dtype)
        values = [array.read(node, i, xp) for i in indices]
        _same_shapes(node, values)
        return xp.stack(values)

    return kernel


def _same_shapes(node: Any, values: list, except0: bool = False) -> None:
    first = values[0].shape[1:] if except0 else values[0].shape
    for i, v in enumerate(values[1:], 1):
        shape = v.shape[1:] if except0 else v.shape
        if shape != first:
            what = " (excepting dimension 0)" if except0 else ""
            raise _fail(node, f"TensorArray has inconsistent shapes.  Index 0 has{what} shape: "
                        f"{dims_text(first)} but index {i} has{what} shape: {dims_text(shape)}")


@op("TensorArrayScatterV3", host_inputs=(1,))
def _scatter(ctx: BuildContext):
    flow_out = _flow(ctx)
    node = ctx.op

    def kernel(array: TensorArray, indices: Any, value: Any, flow: Any) -> Any:
        array.check_open(node)
        indices = np.asarray(indices).reshape(-1).tolist()
        if len(indices) != value.shape[0]:
            raise _fail(node, f"Expected len(indices) == values.shape[0], but saw: "
                        f"{len(indices)} vs. {value.shape[0]}")
        if indices and not array.dynamic and max(indices) >= len(array.values):
            raise _fail(node, f"Max scatter index must be < array size ({max(indices)} vs. "
                        f"{len(array.values)})")
        for row, index in enumerate(indices):
            array.write(node, index, value[row])
        return flow_out

    return kernel


@op("TensorArrayConcatV3", host_outputs=(1,))
def _concat(ctx: BuildContext):
    node, xp = ctx.op, ctx.xp
    except0 = _shape_attr(ctx, "element_shape_except0")

    def kernel(array: TensorArray, flow: Any) -> tuple:
        array.check_open(node)
        if not array.values:
            if except0 is None or except0.rank is None or not except0.is_fully_defined():
                raise _fail(node, "TensorArray has size zero, but element_shape_except0 "
                            f"{_shape_text(except0)} is not fully defined. Currently only static "
                            "shapes are supported when concatenating zero-size TensorArrays.",
                            errors.UnimplementedError)
            return xp.zeros((0, *except0.dims), dtype=array.dtype), np.zeros(0, np.int64)
        values = [array.read(node, i, xp) for i in range(len(array.values))]
        for i, v in enumerate(values):
            if v.ndim == 0:
                raise _fail(node, f"Concat saw a scalar shape at index {i} but requires at least "
                            "vectors.  Did you mean to call pack?")
        _same_shapes(node, values, except0=True)
        lengths = np.asarray([v.shape[0] for v in values], dtype=np.int64)
        return xp.concatenate(values), lengths

    return kernel


@op("TensorArraySplitV3", host_inputs=(2,))
def _split(ctx: BuildContext):
    flow_out = _flow(ctx)
    node = ctx.op

    def kernel(array: TensorArray, value: Any, lengths: Any, flow: Any) -> Any:
        array.check_open(node)
        lengths = [int(n) for n in np.asarray(lengths).reshape(-1)]
        if sum(lengths) != value.shape[0]:
            raise _fail(node, f"Expected sum of lengths to be equal to values.shape[0], but sum "
                        f"of lengths is {sum(lengths)} and value's shape is: "
                        f"{dims_text(value.shape)}")
        if len(lengths) != len(array.values) and not array.dynamic:
            raise _fail(node, f"TensorArray's size is not equal to the size of lengths "
                        f"({len(array.values)} vs. {len(lengths)}), and the TensorArray is not "
                        "marked as dynamically resizeable")
        start = 0
        for index, n in enumerate(lengths):
            array.write(node, index, value[start:start + n])
            start += n
        return flow_out

    return kernel


@op("TensorArraySizeV3", host_outputs=(0,))
def _size(ctx: BuildContext):
    node = ctx.op

    def kernel(array: TensorArray, flow: Any) -> Any:
        array.check_open(node)
        return np.int32(len(array.values))

    return kernel


@op("TensorArrayCloseV3")
def _close(ctx: BuildContext):
    def kernel(array: TensorArray) -> None:
        array.closed = True

    return kernel


@op("TensorArrayGradV3")
def _grad(ctx: BuildContext):
    flow_out = _flow(ctx)
    node, source = ctx.op, ctx.attr("source")

    def kernel(array: TensorArray, flow: Any) -> tuple:
        array.check_open(node)
        return array.grad(source), flow_out

    return kernel


# --- stacks -------------------------------------------------------------------------------
class Stack:
    """One StackV2 resource: a LIFO list."""

    def __init__(self, name: str, dtype: np.dtype, max_size: int):
        self.name, self.dtype, self.max_size = name, dtype, max_size
        self.items: list[Any] = []
        self.closed = False

    def check(self, node: Any) -> None:
        if self.closed:
            raise _fail(node, f"Stack[{self.name}] has already been closed.")


@op("StackV2", host_inputs=(0,))
def _stack(ctx: BuildContext):
    dtype = ctx.attr("elem_type")
    label = (ctx.attr_or("stack_name", b"") or b"").decode() or ctx.name
    return lambda max_size: Stack(f"{label}_{next(_ids)}", dtype, int(max_size))


@op("StackPushV2")
def _push(ctx: BuildContext):
    node = ctx.op

    def kernel(stack: Stack, elem: Any) -> Any:
        stack.check(node)
        if elem.dtype != stack.dtype:
            raise _fail(node, f"Must have type {dtypes.as_dtype(stack.dtype).as_datatype_enum} "
                        f"but got {dtypes.as_dtype(elem.dtype).as_datatype_enum}")
        if 0 <= stack.max_size <= len(stack.items):
            raise _fail(node, f"Stack[{stack.name}] overflowed its max_size ({stack.max_size})")
        stack.items.append(elem)
        return elem

    return kernel


@op("StackPopV2")
def _pop(ctx: BuildContext):
    node = ctx.op

    def kernel(stack: Stack) -> Any:
        stack.check(node)
        if not stack.items:
            raise _fail(node, f"Stack[{stack.name}] is empty when calling Pop().")
        return stack.items.pop()

    return kernel


@op("StackCloseV2")
def _stack_close(ctx: BuildContext):
    def kernel(stack: Stack) -> None:
        stack.closed = True

    return kernel


# --- the TF <= 1.x names: Stack (ref handles) and TensorArray / TensorArray*V2 ----------------
# Graphs written by TF 0.12-1.0 (while-loop gradients, dynamic_rnn) use the stacks and
# TensorArrays under their first names: the same semantics, a ``Ref(string)`` (unversioned) or
# ``string`` (V2) handle instead of a resource, no ``flow`` output from the creating ops, and
# ``TensorArrayPack``/``Unpack`` for a gather/scatter of every element.  A V2 handle is a
# string tensor: it stays in host memory (as TF keeps it), so the plan never copies it.
@op("Stack")
def _stack_v1(ctx: BuildContext):
    dtype = ctx.attr("elem_type")
    label = (ctx.attr_or("stack_name", b"") or b"").decode() or ctx.name
    return lambda: Stack(f"{label}_{next(_ids)}", dtype, -1)  # (no max_size: unbounded)


op("StackPush")(_push)
op("StackPop")(_pop)
op("StackClose")(_stack_close)


def _handle_only(build: Any):
    """A creating op's builder without its ``flow`` output (the V1/V2 ops have none)."""

    def wrapped(ctx: BuildContext):
        kernel = build(ctx)
        return lambda *args: kernel(*args)[0]

    return wrapped


op("TensorArray", host_inputs=(0,))(_handle_only(_tensor_array))
op("TensorArrayV2", host_inputs=(0,), host_outputs=(0,))(_handle_only(_tensor_array))
op("TensorArrayGrad")(_handle_only(_grad))
op("TensorArrayGradV2", host_inputs=(0,), host_outputs=(0,))(_handle_only(_grad))
for _v1, _v2, _build, _host_in, _host_out in (
        ("TensorArrayWrite", "TensorArrayWriteV2", _write, (1,), ()),
        ("TensorArrayRead", "TensorArrayReadV2", _read, (1,), ()),
        ("TensorArrayGather", "TensorArrayGatherV2", _gather, (1,), ()),
        ("TensorArrayScatter", "TensorArrayScatterV2", _scatter, (1,), ()),
        ("TensorArrayConcat", "TensorArrayConcatV2", _concat, (), (1,)),
        ("TensorArraySplit", "TensorArraySplitV2", _split, (2,), ()),
        ("TensorArraySize", "TensorArraySizeV2", _size, (), (0,)),
        ("TensorArrayClose", "TensorArrayCloseV2", _close, (), ())):
    op(_v1, host_inputs=_host_in, host_outputs=_host_out)(_build)
    op(_v2, host_inputs=(0, *_host_in), host_outputs=_host_out)(_build)


@op("TensorArrayPack")
def _pack(ctx: BuildContext):
    # TensorArrayGather of every index, in order.
    gather = _gather(ctx)
    return lambda array, flow: gather(array, np.arange(len(array.values)), flow)


@op("TensorArrayUnpack")
def _unpack(ctx: BuildContext):
    # TensorArrayScatter of value's rows to indices 0..n-1.
    scatter = _scatter(ctx)
    return lambda array, value, flow: scatter(array, np.arange(value.shape[0]), value, flow)
