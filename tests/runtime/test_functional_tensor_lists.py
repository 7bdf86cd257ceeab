"""TensorList ops (control flow v2's loop state) on simple values, with TF's semantics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import node, out

import gpugraph as gg
from gpugraph import errors
from gpugraph.ops.tensor_list_ops import TensorList

f32, i32 = gg.dtypes.float32, gg.dtypes.int32


@pytest.fixture
def graph():
    with gg.Graph().as_default() as g:
        yield g


def _c(value: Any) -> Any:
    return gg.constant(np.asarray(value))


def _list(op: str, *inputs: Any, **attrs: Any) -> Any:
    return out(op, *inputs, element_dtype=f32, **attrs)


def _reserve(n: int, shape: Any = (2,)) -> Any:
    return _list("TensorListReserve", _c(np.array(shape, np.int32)), _c(np.int32(n)),
                 shape_type=i32)


def _empty(shape: Any = (2,), limit: int = -1) -> Any:
    return _list("EmptyTensorList", _c(np.array(shape, np.int32)), _c(np.int32(limit)),
                 shape_type=i32)


def _stack(handle: Any, shape: Any = (-1,), **attrs: Any) -> Any:
    return _list("TensorListStack", handle, _c(np.array(shape, np.int32)), **attrs)


def _run(fetches: Any) -> Any:
    with gg.Session() as sess:
        return sess.run(fetches)


def test_push_back_then_stack_length_and_element_shape(graph) -> None:
    handle = _empty()
    for row in ([1, 2], [3, 4], [5, 6]):
        handle = _list("TensorListPushBack", handle, _c(np.array(row, np.float32)))
    length = out("TensorListLength", handle)
    shape = out("TensorListElementShape", handle, shape_type=i32)
    stacked, n, element_shape = _run([_stack(handle, num_elements=3), length, shape])
    np.testing.assert_array_equal(stacked, [[1, 2], [3, 4], [5, 6]])
    assert n == 3 and n.dtype == np.int32
    np.testing.assert_array_equal(element_shape, [2])


def test_lists_are_values_every_op_returns_a_new_list(graph) -> None:
    first = _list("TensorListPushBack", _empty(), _c(np.array([1, 2], np.float32)))
    second = _list("TensorListPushBack", first, _c(np.array([3, 4], np.float32)))
    popped = node("TensorListPopBack", second, _c(np.array([2], np.int32)), element_dtype=f32)
    a, b, rest, item = _run([first, second, popped.outputs[0], popped.outputs[1]])
    assert isinstance(a, TensorList) and (len(a), len(b), len(rest)) == (1, 2, 1)
    np.testing.assert_array_equal(item, [3, 4])


def test_reserved_elements_read_as_zeros_once_their_shape_is_known(graph) -> None:
    handle = _list("TensorListSetItem", _reserve(3), _c(np.int32(1)),
                   _c(np.array([7, 8], np.float32)))
    got = _list("TensorListGetItem", handle, _c(np.int32(0)), _c(np.array([-1], np.int32)))
    stacked, zeros = _run([_stack(handle), got])
    np.testing.assert_array_equal(stacked, [[0, 0], [7, 8], [0, 0]])
    np.testing.assert_array_equal(zeros, [0, 0])


def test_unknown_element_shape_is_inferred_from_set_elements(graph) -> None:
    handle = _list("TensorListSetItem", _reserve(2, -1), _c(np.int32(1)),
                   _c(np.array([[1, 2, 3]], np.float32)))
    got = _list("TensorListGetItem", handle, _c(np.int32(0)), _c(np.int32(-1)))
    np.testing.assert_array_equal(_run(got), [[0, 0, 0]])


def test_from_tensor_gather_scatter_and_resize(graph) -> None:
    values = np.arange(8, dtype=np.float32).reshape(4, 2)
    handle = _list("TensorListFromTensor", _c(values), _c(np.array([2], np.int32)),
                   shape_type=i32)
    gathered = _list("TensorListGather", handle, _c(np.array([3, 0], np.int32)),
                     _c(np.array([-1], np.int32)))
    scattered = _list("TensorListScatterV2", _c(values[:2]), _c(np.array([2, 0], np.int32)),
                      _c(np.array([2], np.int32)), _c(np.int32(4)), shape_type=i32)
    resized = out("TensorListResize", handle, _c(np.int32(6)))
    into = _list("TensorListScatterIntoExistingList", _reserve(1), _c(values[:1]),
                 _c(np.array([2], np.int32)))
    g, s, r, i = _run([gathered, _stack(scattered), _stack(resized), _stack(into)])
    np.testing.assert_array_equal(g, values[[3, 0]])
    np.testing.assert_array_equal(s, [[2, 3], [0, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(r, np.concatenate([values, np.zeros((2, 2), np.float32)]))
    np.testing.assert_array_equal(i, [[0, 0], [0, 0], [0, 1]])


def test_split_and_concat(graph) -> None:
    values = np.arange(10, dtype=np.float32).reshape(5, 2)
    handle = _list("TensorListSplit", _c(values), _c(np.array([-1, 2], np.int32)),
                   _c(np.array([2, 0, 3], np.int64)), shape_type=i32)
    concat = node("TensorListConcatV2", handle, _c(np.array([-1, 2], np.int32)),
                  _c(np.zeros([0], np.int64)), element_dtype=f32, shape_type=i32)
    joined, lengths = _run(concat.outputs)
    np.testing.assert_array_equal(joined, values)
    np.testing.assert_array_equal(lengths, [2, 0, 3])


def test_zeros_like_and_add_n_of_lists_as_gradients_need(graph) -> None:
    values = np.arange(4, dtype=np.float32).reshape(2, 2)
    full = _list("TensorListFromTensor", _c(values), _c(np.array([2], np.int32)),
                 shape_type=i32)
    partial = _list("TensorListSetItem", _reserve(2), _c(np.int32(0)),
                    _c(np.array([10, 10], np.float32)))
    zeros = out("ZerosLike", full, T=gg.dtypes.variant)
    total = out("AddN", full, partial, zeros, N=3, T=gg.dtypes.variant)
    np.testing.assert_array_equal(_run(_stack(total)), [[10, 11], [2, 3]])
    np.testing.assert_array_equal(_run(_stack(zeros)), np.zeros((2, 2)))


@pytest.mark.parametrize("make, message", [
    (lambda: node("TensorListPopBack", _empty(), _c(np.array([2], np.int32)),
                  element_dtype=f32).outputs[1], "Trying to pop from an empty list."),
    (lambda: _list("TensorListGetItem", _reserve(2), _c(np.int32(2)), _c(np.int32(-1))),
     "Trying to access element 2 in a list with 2 elements."),
    (lambda: _list("TensorListGetItem", _reserve(2, -1), _c(np.int32(0)), _c(np.int32(-1))),
     "element_shape is not fully defined: <unknown> and no list element is set"),
    (lambda: _list("TensorListPushBack", _empty(), _c(np.zeros([3], np.float32))),
     r"incompatible shape to a list. Op element shape: \[3\] list shape: \[2\]"),
    (lambda: _list("TensorListPushBack", _empty(limit=0), _c(np.zeros([2], np.float32))),
     "Tried to push item into a full list"),
    (lambda: _stack(_empty((-1,))), "Tried to stack elements of an empty list with "
     r"non-fully-defined element_shape: \[\?\]"),
])
def test_errors_read_like_tf(graph, make: Any, message: str) -> None:
    with pytest.raises(errors.InvalidArgumentError, match=message):
        _run(make())


def test_element_dtype_mismatch_is_refused(graph) -> None:
    handle = _empty()
    got = out("TensorListGetItem", handle, _c(np.int32(0)), _c(np.int32(-1)), element_dtype=i32)
    with pytest.raises(errors.InvalidArgumentError, match="op elements int32 but list elements "
                       "float"):
        _run(got)


def test_list_ops_on_a_virtual_gpu_keep_elements_on_the_device(graph) -> None:
    values = np.arange(6, dtype=np.float32).reshape(3, 2)
    handle = _list("TensorListFromTensor", _c(values), _c(np.array([2], np.int32)),
                   shape_type=i32)
    handle = _list("TensorListSetItem", handle, _c(np.int32(1)), _c(np.ones(2, np.float32)))
    popped = node("TensorListPopBack", handle, _c(np.array([2], np.int32)), element_dtype=f32)
    total = out("AddN", popped.outputs[0], out("ZerosLike", popped.outputs[0],
                                                T=gg.dtypes.variant), N=2, T=gg.dtypes.variant)
    with gg.Session(config={"virtual_gpus": 1}) as sess:
        stacked, last = sess.run([_stack(total), popped.outputs[1]])
        assert sess.placement_report().assignments["TensorListPopBack"].device.endswith("GPU:0")
    np.testing.assert_array_equal(stacked, [[0, 1], [1, 1]])
    np.testing.assert_array_equal(last, [4, 5])
