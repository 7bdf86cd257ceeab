"""TensorList ops: the loop state of control-flow-v2 ``dynamic_rnn`` and its gradient.

A TensorList is a ``DT_VARIANT`` scalar in TF; here it is a :class:`TensorList` value.  TF's
lists have value semantics (a kernel may forward its input buffer only when nobody else holds
it), so every op here returns a new list and never changes its input.  Elements are device
arrays; an element that was reserved but never set is ``None`` (TF's ``DT_INVALID`` tensor) and
reads as zeros once its shape is known.  Semantics and messages follow TF's list kernels
(list_kernels.h/.cc); element shapes are "partial shapes": None for an unknown rank, else a
tuple whose unknown dims are None.

``ZerosLike`` and ``AddN`` of lists (what gradients of list-carrying loops need) work through
the ordinary kernels: ``np.zeros_like`` dispatches to :meth:`TensorList.__array_function__`
and ``+`` is :meth:`TensorList.__add__` (TF's TensorListZerosLike / TensorListBinaryAdd).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import dtypes, errors
from gpugraph.ops.registry import BuildContext, dims_text, op

Shape = tuple | None  # a partial shape: None = unknown rank, None dims = unknown


def _fail(node: Any, message: str) -> errors.InvalidArgumentError:
    return errors.InvalidArgumentError(None, node, message)


def shape_text(shape: Shape) -> str:
    """A partial shape as TF's DebugString prints it: ``[?,3]`` or ``<unknown>``."""
    if shape is None:
        return "<unknown>"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def merge_shapes(a: Shape, b: Shape) -> Shape:
    """The most specific shape compatible with both (TF's PartialTensorShape::MergeWith)."""
    if a is None:
        return b
    if b is None:
        return a
    if len(a) != len(b):
        raise ValueError(f"Shapes must be equal rank, but are {len(a)} and {len(b)}")
    out = []
    for x, y in zip(a, b):
        if x is not None and y is not None and x != y:
            raise ValueError(f"Incompatible shapes during merge: {shape_text(a)} vs. "
                             f"{shape_text(b)}")
        out.append(x if x is not None else y)
    return tuple(out)


def compatible(shape: Shape, dims: tuple) -> bool:
    """Whether a concrete shape ``dims`` fits the partial ``shape``."""
    if shape is None or shape == dims:  # (the common case, without the generator: a loop
        return True                     # pushes to every list each iteration)
    return len(shape) == len(dims) and all(s is None or s == d for s, d in zip(shape, dims))


def _dtype_name(dtype: Any) -> str:
    return dtypes.type_string(dtype) if isinstance(dtype, np.dtype) else str(dtype)


class TensorList:
    """An immutable list of tensors (TF's ``TensorList`` variant).

    Attributes:
        items: the elements (device arrays), ``None`` where reserved but never set.
        element_shape: the partial shape every element must have.
        element_dtype: numpy dtype of the elements.
        max_num_elements: the push limit (-1: unbounded).
    """

    __slots__ = ("items", "element_shape", "element_dtype", "max_num_elements")

    def __init__(self, items: tuple, element_shape: Shape, element_dtype: Any,
                 max_num_elements: int = -1):
        self.items = items
        self.element_shape = element_shape
        self.element_dtype = element_dtype
        self.max_num_elements = max_num_elements

    def replace(self, items: tuple) -> TensorList:
        """This list with other elements."""
        return TensorList(items, self.element_shape, self.element_dtype, self.max_num_elements)

    def __len__(self) -> int:
        return len(self.items)

    def copy(self) -> TensorList:
        return self  # immutable: AddN of one list returns it

    def __add__(self, other: Any) -> TensorList:
        if not isinstance(other, TensorList):
            return NotImplemented
        return _binary_add(self, other)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is np.zeros_like and not kwargs:
            return self.replace(tuple(None if t is None else np.zeros_like(t)
                                      for t in self.items))
        return NotImplemented

    def __repr__(self) -> str:
        return (f"<TensorList {len(self.items)} x {shape_text(self.element_shape)} "
                f"{_dtype_name(self.element_dtype)}>")


def _binary_add(a: TensorList, b: TensorList) -> TensorList:
    # Matches TF's TensorListBinaryAdd: an unset element on either side takes the other's.
    if a.element_dtype != b.element_dtype:
        raise ValueError("Trying to add two lists of tensors of different dtypes. One is "
                         f"{_dtype_name(a.element_dtype)} and the other is "
                         f"{_dtype_name(b.element_dtype)}")
    shape = merge_shapes(a.element_shape, b.element_shape)
    if len(a.items) != len(b.items):
        raise ValueError("Trying to add two lists of tensors with different lengths. One is "
                         f"{len(a.items)} and the other is {len(b.items)}")
    items = tuple(y if x is None else x if y is None else x + y for x, y in zip(a.items, b.items))
    return TensorList(items, shape, a.element_dtype, a.max_num_elements)


# --- helpers ----------------------------------------------------------------------------------
def shape_from_tensor(node: Any, value: Any) -> Shape:
    """An element_shape input as a partial shape (-1 scalar: unknown rank; -1 dims: unknown)."""
    array = np.asarray(value)
    if array.ndim == 0:
        if int(array) == -1:
            return None
        raise _fail(node, "The only valid scalar shape tensor is the fully unknown shape "
                    "specified as -1.")
    if array.ndim != 1:
        raise _fail(node, f"Shape must be at most rank 1 but is rank {array.ndim}")
    dims = [int(d) for d in array]
    if any(d < -1 for d in dims):
        raise _fail(node, f"Dimension {min(dims)} must be >= -1")
    return tuple(None if d == -1 else d for d in dims)


def _list_input(node: Any, value: Any, dtype: Any) -> TensorList:
    if not isinstance(value, TensorList):
        raise _fail(node, f"Input handle is not a list. Saw: '{type(value).__name__}'")
    if dtype is not None and value.element_dtype != dtype:
        raise _fail(node, f"Invalid data types; op elements {_dtype_name(dtype)} but list "
                    f"elements {_dtype_name(value.element_dtype)}")
    return value


def _merged(node: Any, shape: Shape, other: Shape) -> Shape:
    try:
        return merge_shapes(shape, other)
    except ValueError as e:
        raise _fail(node, str(e)) from None


def _infer_from_items(node: Any, shape: Shape, items: Any) -> Shape:
    """``shape`` merged with every set element's shape (TF does this when it is partial)."""
    for item in items:
        if item is not None:
            shape = _merged(node, shape, tuple(item.shape))
    return shape


def _full(shape: Shape) -> bool:
    return shape is not None and all(d is not None for d in shape)


def _index(node: Any, value: Any, length: int, verb: str) -> int:
    index = int(np.asarray(value))
    if index < 0 or index >= length:
        raise _fail(node, f"Trying to {verb} element {index} in a list with {length} elements.")
    return index


def _element_dtype(ctx: BuildContext) -> Any:
    return ctx.attr("element_dtype")


# --- creating lists ---------------------------------------------------------------------------
@op("EmptyTensorList", host_inputs=(0, 1))
def _empty(ctx: BuildContext):
    node, dtype = ctx.op, _element_dtype(ctx)

    def kernel(element_shape: Any, max_num_elements: Any) -> TensorList:
        if np.ndim(max_num_elements) != 0:
            raise _fail(node, "max_num_elements expected to be a scalar but got shape: "
                        f"{dims_text(np.shape(max_num_elements))}")
        return TensorList((), shape_from_tensor(node, element_shape), dtype,
                          int(max_num_elements))

    return kernel


@op("TensorListReserve", host_inputs=(0, 1))
def _reserve(ctx: BuildContext):
    node, dtype = ctx.op, _element_dtype(ctx)

    def kernel(element_shape: Any, num_elements: Any) -> TensorList:
        count = int(np.asarray(num_elements))
        if count < 0:
            raise _fail(node, f"The num_elements to reserve must be a non negative number, but "
                        f"got {count}")
        return TensorList((None,) * count, shape_from_tensor(node, element_shape), dtype)

    return kernel


@op("TensorListFromTensor", host_inputs=(1,))
def _from_tensor(ctx: BuildContext):
    node = ctx.op

    def kernel(tensor: Any, element_shape: Any) -> TensorList:
        shape = shape_from_tensor(node, element_shape)
        if tensor.ndim < 1:
            raise _fail(node, "Tensor must be at least a vector, but saw shape: []")
        if not compatible(shape, tuple(tensor.shape[1:])):
            raise _fail(node, f"Specified a list with shape {shape_text(shape)} from a tensor "
                        f"with shape {dims_text(tensor.shape[1:])}")
        return TensorList(tuple(tensor), shape, tensor.dtype)

    return kernel


@op("TensorListSplit", host_inputs=(1, 2))
def _split(ctx: BuildContext):
    node = ctx.op

    def kernel(tensor: Any, element_shape: Any, lengths: Any) -> TensorList:
        shape = shape_from_tensor(node, element_shape)
        if tensor.ndim < 1:
            raise _fail(node, "Tensor must be at least a vector, but saw shape: []")
        if shape is not None and (not shape or not compatible(shape[1:], tuple(tensor.shape[1:]))):
            raise _fail(node, f"tensor shape {dims_text(tensor.shape)} is not compatible with "
                        f"element_shape {shape_text(shape)}")
        items, start = [], 0
        for length in (int(n) for n in np.asarray(lengths).reshape(-1)):
            if length < 0 or start + length > tensor.shape[0]:
                raise _fail(node, f"Attempting to slice [{start}, {start + length}] from tensor "
                            f"with length {tensor.shape[0]}")
            items.append(tensor[start:start + length])
            start += length
        if start != tensor.shape[0]:
            raise _fail(node, f"Unused values in tensor. Length of tensor: {tensor.shape[0]} "
                        f"Values used: {start}")
        return TensorList(tuple(items), shape, tensor.dtype)

    return kernel


@op("TensorListScatterV2", host_inputs=(1, 2, 3))
def _scatter_v2(ctx: BuildContext):
    return _scatter(ctx)


@op("TensorListScatter", host_inputs=(1, 2))
def _scatter(ctx: BuildContext):
    node = ctx.op

    def kernel(tensor: Any, indices: Any, element_shape: Any, num_elements: Any = -1) -> Any:
        shape = shape_from_tensor(node, element_shape)
        if not compatible(shape, tuple(tensor.shape[1:])):
            raise _fail(node, f"Specified a list with shape {shape_text(shape)} from a tensor "
                        f"with shape {dims_text(tensor.shape[1:])}")
        where = [int(i) for i in np.asarray(indices).reshape(-1)]
        count = int(np.asarray(num_elements))
        if any(i < 0 for i in where):
            raise _fail(node, "Indices in TensorListScatter must all be non-negative.")
        if count != -1 and any(i >= count for i in where):
            raise _fail(node, f"TensorListScatter: Trying to scatter at index {max(where)} in "
                        f"list with size {count}")
        items = [None] * max(max(where, default=-1) + 1, count)
        _scatter_into(node, items, tensor, where)
        return TensorList(tuple(items), shape, tensor.dtype)

    return kernel


def _scatter_into(node: Any, items: list, tensor: Any, where: list[int]) -> None:
    if len(where) != tensor.shape[0]:
        raise _fail(node, f"Invalid number of rows in input tensor. Expected: {len(where)} "
                    f"Actual: {tensor.shape[0]}")
    for row, i in enumerate(where):
        items[i] = tensor[row]


@op("TensorListScatterIntoExistingList", host_inputs=(2,))
def _scatter_existing(ctx: BuildContext):
    node, dtype = ctx.op, _element_dtype(ctx)

    def kernel(handle: Any, tensor: Any, indices: Any) -> TensorList:
        tl = _list_input(node, handle, dtype)
        where = [int(i) for i in np.asarray(indices).reshape(-1)]
        items = list(tl.items)
        items.extend([None] * (max(where, default=-1) + 1 - len(items)))
        _scatter_into(node, items, tensor, where)
        return tl.replace(tuple(items))

    return kernel


# --- reading ----------------------------------------------------------------------------------
@op("TensorListLength", host_outputs=(0,))
def _length(ctx: BuildContext):
    node = ctx.op
    return lambda handle: np.int32(len(_list_input(node, handle, None).items))


@op("TensorListElementShape", host_outputs=(0,))
def _element_shape(ctx: BuildContext):
    node, out = ctx.op, ctx.out_dtype(0)

    def kernel(handle: Any) -> Any:
        shape = _list_input(node, handle, None).element_shape
        if shape is None:
            return np.array(-1, dtype=out)
        return np.array([-1 if d is None else d for d in shape], dtype=out)

    return kernel


@op("TensorListGetItem", host_inputs=(1, 2))
def _get_item(ctx: BuildContext):
    node, dtype, xp = ctx.op, _element_dtype(ctx), ctx.xp

    def kernel(handle: Any, index: Any, element_shape: Any) -> Any:
        tl = _list_input(node, handle, dtype)
        item = tl.items[_index(node, index, len(tl.items), "access")]
        if item is not None:
            return item
        shape = _merged(node, shape_from_tensor(node, element_shape), tl.element_shape)
        if not _full(shape):
            shape = _infer_from_items(node, shape, tl.items)
        if not _full(shape):
            raise _fail(node, "Trying to read an uninitialized tensor but element_shape is not "
                        f"fully defined: {shape_text(shape)} and no list element is set.")
        return xp.zeros(shape, dtype)

    return kernel


@op("TensorListStack", host_inputs=(1,))
def _stack(ctx: BuildContext):
    node, dtype, xp = ctx.op, _element_dtype(ctx), ctx.xp
    num_elements = ctx.attr_or("num_elements", -1)

    def kernel(handle: Any, element_shape: Any) -> Any:
        tl = _list_input(node, handle, dtype)
        if num_elements != -1 and len(tl.items) != num_elements:
            raise _fail(node, f"Operation expected a list with {num_elements} elements but got "
                        f"a list with {len(tl.items)} elements.")
        return _gather(node, xp, tl, tl.items, shape_from_tensor(node, element_shape))

    return kernel


def _gather(node: Any, xp: Any, tl: TensorList, items: Any, shape: Shape) -> Any:
    """The elements stacked; unset ones as zeros (Stack and Gather)."""
    verb = "stack" if node.type == "TensorListStack" else "gather"
    shape = _merged(node, shape, tl.element_shape)
    if not items and not _full(shape):
        raise _fail(node, f"Tried to {verb} elements of an empty list with non-fully-defined "
                    f"element_shape: {shape_text(shape)}")
    if not _full(tl.element_shape):
        shape = _infer_from_items(node, shape, items)
    if not _full(shape):
        raise _fail(node, f"Tried to {verb} list which only contains uninitialized tensors and "
                    f"has a non-fully-defined element_shape: {shape_text(shape)}")
    if not items:
        return xp.zeros((0, *shape), tl.element_dtype)
    zeros = None
    if any(item is None for item in items):
        zeros = xp.zeros(shape, tl.element_dtype)
    return xp.stack([zeros if item is None else item for item in items])


@op("TensorListGather", host_inputs=(1, 2))
def _gather_op(ctx: BuildContext):
    node, dtype, xp = ctx.op, _element_dtype(ctx), ctx.xp

    def kernel(handle: Any, indices: Any, element_shape: Any) -> Any:
        tl = _list_input(node, handle, dtype)
        where = [int(i) for i in np.asarray(indices).reshape(-1)]
        for i in where:
            if i < 0 or i >= len(tl.items):
                raise _fail(node, f"Index {i} out o range; list only has {len(tl.items)} "
                            "elements.")
        items = [tl.items[i] for i in where]
        return _gather(node, xp, tl, items, shape_from_tensor(node, element_shape))

    return kernel


@op("TensorListConcatV2", host_inputs=(1, 2), host_outputs=(1,))
def _concat(ctx: BuildContext):
    node, dtype, xp = ctx.op, _element_dtype(ctx), ctx.xp

    def kernel(handle: Any, element_shape: Any, leading_dims: Any) -> tuple:
        tl = _list_input(node, handle, dtype)
        shape = _merged(node, shape_from_tensor(node, element_shape), tl.element_shape)
        if shape is not None and not shape:
            raise _fail(node, "Concat requires elements to be at least vectors, found scalars "
                        "instead.")
        rest = _concat_rest(node, None if shape is None else shape[1:], tl.items)
        leading = [int(d) for d in np.asarray(leading_dims).reshape(-1)]
        first = _first_dim(shape, tl.items)
        parts = [item if item is not None else
                 xp.zeros((_leading_dim(node, i, leading, first), *rest), tl.element_dtype)
                 for i, item in enumerate(tl.items)]
        lengths = np.array([p.shape[0] for p in parts], dtype=np.int64)
        if not parts:
            return xp.zeros((0, *rest), tl.element_dtype), lengths
        return xp.concatenate(parts), lengths

    return kernel


def _concat_rest(node: Any, rest: Shape, items: tuple) -> tuple:
    """The elements' shape after the first dim, merged over the set ones; must be known."""
    for i, item in enumerate(items):
        if item is not None:
            if item.ndim < 1:
                raise _fail(node, f"Concat saw a scalar shape at index {i} but requires at "
                            "least vectors.")
            rest = _merged(node, rest, tuple(item.shape[1:]))
    if not _full(rest):
        raise _fail(node, "Trying to concat list with only uninitialized tensors but "
                    f"element_shape_except_first_dim_ is not fully defined: {shape_text(rest)}")
    return rest


def _leading_dim(node: Any, i: int, leading: list[int], first: int | None) -> int:
    # Matches TF: an unset element takes leading_dims[i], else the shared first dim.
    if i < len(leading):
        return leading[i]
    if first is None:
        raise _fail(node, f"List contains uninitialized tensor at index {i} but leading_dims "
                    f"has only {len(leading)} elements.")
    return first


def _first_dim(shape: Shape, items: tuple) -> int | None:
    """The elements' leading dim: the element_shape's, else the one all set elements share."""
    if shape is not None and shape[0] is not None:
        return shape[0]
    firsts = {t.shape[0] for t in items if t is not None}
    return firsts.pop() if len(firsts) == 1 else None


# --- changing lists ---------------------------------------------------------------------------
@op("TensorListSetItem", host_inputs=(1,))
def _set_item(ctx: BuildContext):
    node, dtype = ctx.op, _element_dtype(ctx)
    resize = ctx.attr_or("resize_if_index_out_of_bounds", False)

    def kernel(handle: Any, index: Any, item: Any) -> TensorList:
        tl = _list_input(node, handle, dtype)
        items = list(tl.items)
        i = int(np.asarray(index))
        if resize and i >= len(items):
            items.extend([None] * (i + 1 - len(items)))
        _index(node, i, len(items), "modify")
        if not compatible(tl.element_shape, tuple(item.shape)):
            raise _fail(node, "Tried to set a tensor with incompatible shape at a list index. "
                        f"Item element shape: {dims_text(item.shape)} list shape: "
                        f"{shape_text(tl.element_shape)}")
        items[i] = item
        return tl.replace(tuple(items))

    return kernel


@op("TensorListPushBack")
def _push_back(ctx: BuildContext):
    node, dtype = ctx.op, _element_dtype(ctx)

    def kernel(handle: Any, item: Any) -> TensorList:
        tl = _list_input(node, handle, dtype)
        if not compatible(tl.element_shape, tuple(item.shape)):
            raise _fail(node, "Tried to append a tensor with incompatible shape to a list. Op "
                        f"element shape: {dims_text(item.shape)} list shape: "
                        f"{shape_text(tl.element_shape)}")
        if tl.max_num_elements != -1 and len(tl.items) >= tl.max_num_elements:
            raise _fail(node, f"Tried to push item into a full list list size: {len(tl.items)} "
                        f"max_num_elements: {tl.max_num_elements}")
        return tl.replace((*tl.items, item))

    return kernel


@op("TensorListPopBack", host_inputs=(1,))
def _pop_back(ctx: BuildContext):
    node, dtype, xp = ctx.op, _element_dtype(ctx), ctx.xp

    def kernel(handle: Any, element_shape: Any) -> tuple:
        tl = _list_input(node, handle, dtype)
        if not tl.items:
            raise _fail(node, "Trying to pop from an empty list.")
        item = tl.items[-1]
        if item is None:
            shape = _merged(node, shape_from_tensor(node, element_shape), tl.element_shape)
            if not _full(shape):
                raise _fail(node, "Trying to read an uninitialized tensor but element_shape is "
                            f"not fully defined.{shape_text(shape)}")
            item = xp.zeros(shape, tl.element_dtype)
        return tl.replace(tl.items[:-1]), item

    return kernel


@op("TensorListResize", host_inputs=(1,))
def _resize(ctx: BuildContext):
    node = ctx.op

    def kernel(handle: Any, size: Any) -> TensorList:
        tl = _list_input(node, handle, None)
        n = int(np.asarray(size))
        if n < 0:
            raise _fail(node, f"TensorListSlice expects size to be non-negative. Got: {n}")
        items = tl.items[:n] + (None,) * max(0, n - len(tl.items))
        return tl.replace(items)

    return kernel


@op("TensorListConcatLists")
def _concat_lists(ctx: BuildContext):
    node, dtype = ctx.op, _element_dtype(ctx)

    def kernel(a: Any, b: Any) -> TensorList:
        a, b = _list_input(node, a, dtype), _list_input(node, b, dtype)
        if a.element_shape != b.element_shape:
            raise _fail(node, "input_a and input_b TensorList element shapes are not identical "
                        f"at index 0.  Saw {shape_text(a.element_shape)} vs. "
                        f"{shape_text(b.element_shape)}")
        return a.replace(a.items + b.items)

    return kernel
