"""The CUDA backend's cuDNN convolutions (devices/cuda/cudnn.py), their layout plumbing checked
on the CPU: a stand-in for the cuDNN frontend executes each graph by reading every tensor
through the dims and strides the backend declared (logical NCHW / KCRS over the real memory),
so the NHWC strides, the HWIO -> KRSC filter transposes, TF's uneven SAME padding as pre- and
post-padding, and the declared output shapes must all be right to give TF's numbers (the
generic kernels', which match TF in tests/fixtures/ops)."""

from __future__ import annotations

import contextlib
import itertools
import sys
import types

import numpy as np
import pytest
from helpers import out
from numpy.lib.stride_tricks import as_strided

import gpugraph as gg
from gpugraph.devices.cuda.cudnn import Convolutions
from gpugraph.ops.conv_ops import output_geometry

_LIVE: dict[int, np.ndarray] = {}


class _Buffer(np.ndarray):
    """A numpy array with CuPy's ``.data.ptr``."""

    @property
    def data(self):  # noqa: D102
        _LIVE[self.ctypes.data] = self
        return types.SimpleNamespace(ptr=self.ctypes.data)


_cupy = types.SimpleNamespace(
    empty=lambda shape, dtype: np.empty(shape, dtype).view(_Buffer),
    ascontiguousarray=lambda x: np.ascontiguousarray(x).view(_Buffer),
    cuda=types.SimpleNamespace(get_current_stream=lambda: types.SimpleNamespace(ptr=7)))


class _Tensor:
    def __init__(self, dim=None, stride=None, op=None):
        self.dim, self.stride, self.op = dim, stride, op

    def set_output(self, flag):
        return self

    def set_dim(self, dim):
        self.dim = list(dim)
        return self

    def set_stride(self, stride):
        self.stride = list(stride)
        return self

    def set_data_type(self, kind):
        return self


class _Graph:
    def __init__(self, **kwargs):
        self.outputs = []

    def tensor(self, name, dim, stride, data_type):
        return _Tensor(list(dim), list(stride))

    def _node(self, kind, inputs, attrs):
        y = _Tensor(op=(kind, inputs, attrs))
        self.outputs.append(y)
        return y

    def conv_fprop(self, image, weight, **attrs):
        return self._node("fprop", (image, weight), attrs)

    def conv_dgrad(self, loss, filter, **attrs):  # noqa: A002  (cuDNN's own keyword)
        return self._node("dgrad", (loss, filter), attrs)

    def conv_wgrad(self, image, loss, **attrs):
        return self._node("wgrad", (image, loss), attrs)

    def validate(self):
        pass

    build_operation_graph = check_support = build_plans = validate

    def deselect_numeric_notes(self, notes):
        pass

    def create_execution_plans(self, modes):
        pass

    def get_workspace_size(self):
        return 0

    def execute(self, buffers, workspace, handle):
        (y,) = self.outputs
        kind, inputs, attrs = y.op
        a, b = (_view(t, buffers[t]) for t in inputs)
        _view(y, buffers[y])[...] = _REFERENCE[kind](a, b, np.zeros(y.dim), attrs)


def _view(tensor, pointer):
    memory = _LIVE[pointer]
    return as_strided(memory, shape=tensor.dim,
                      strides=[s * memory.itemsize for s in tensor.stride])


def _windows(shape, attrs, k):
    # For each filter tap (r, s): the padded input rows/cols it reads for every output position.
    (sh, sw), (dh, dw) = attrs["stride"], attrs["dilation"]
    for r, s in itertools.product(range(k[0]), range(k[1])):
        yield r, s, (slice(r * dh, r * dh + (shape[0] - 1) * sh + 1, sh),
                     slice(s * dw, s * dw + (shape[1] - 1) * sw + 1, sw))


def _padded(x, attrs):
    (pre_h, pre_w), (post_h, post_w) = attrs["pre_padding"], attrs["post_padding"]
    return np.pad(x, [(0, 0), (0, 0), (pre_h, post_h), (pre_w, post_w)])


def _fprop(x, w, y, attrs):  # x NCHW, w KCRS, y NKPQ
    xp = _padded(x, attrs)
    for r, s, (rows, cols) in _windows(y.shape[2:], attrs, w.shape[2:]):
        y += np.einsum("nchw,kc->nkhw", xp[:, :, rows, cols], w[:, :, r, s])
    return y


def _dgrad(dy, w, dx, attrs):
    (pre_h, pre_w), (post_h, post_w) = attrs["pre_padding"], attrs["post_padding"]
    n, c, h, wd = dx.shape
    dxp = np.zeros((n, c, h + pre_h + post_h, wd + pre_w + post_w))
    for r, s, (rows, cols) in _windows(dy.shape[2:], attrs, w.shape[2:]):
        dxp[:, :, rows, cols] += np.einsum("nkhw,kc->nchw", dy, w[:, :, r, s])
    return dxp[:, :, pre_h:pre_h + h, pre_w:pre_w + wd]


def _wgrad(x, dy, dw, attrs):
    xp = _padded(x, attrs)
    for r, s, (rows, cols) in _windows(dy.shape[2:], attrs, dw.shape[2:]):
        dw[:, :, r, s] = np.einsum("nchw,nkhw->kc", xp[:, :, rows, cols], dy)
    return dw


_REFERENCE = {"fprop": _fprop, "dgrad": _dgrad, "wgrad": _wgrad}


@pytest.fixture
def convolutions(monkeypatch):
    fake = types.SimpleNamespace(
        data_type=types.SimpleNamespace(FLOAT="float", DOUBLE="double", HALF="half"),
        numerical_note=types.SimpleNamespace(TENSOR_CORE=1, DOWN_CONVERT_INPUTS=2),
        heur_mode=types.SimpleNamespace(A=0, FALLBACK=1),
        create_handle=lambda: "handle", set_stream=lambda handle, stream: None, pygraph=_Graph)
    monkeypatch.setitem(sys.modules, "cudnn", fake)
    return Convolutions(_cupy, contextlib.nullcontext())


CASES = {  # x NHWC, filter HWIO, strides, dilations, padding
    "SAME, stride 2 (uneven padding)": ((2, 9, 8, 3), (3, 3, 3, 4), (2, 2), (1, 1), b"SAME"),
    "VALID, stride (2, 1)": ((1, 7, 6, 2), (2, 3, 2, 5), (2, 1), (1, 1), b"VALID"),
    "SAME, dilation 2": ((2, 8, 8, 2), (3, 3, 2, 3), (1, 1), (2, 2), b"SAME"),
    "1x1 filter": ((3, 4, 5, 6), (1, 1, 6, 2), (1, 1), (1, 1), b"SAME"),
}


def _tf_numbers(x, w, dy, strides, dilations, padding):
    # The generic kernels on the CPU (held to TF's outputs by the op fixtures).
    attrs = {"T": gg.float32, "strides": [1, *strides, 1], "padding": padding,
             "dilations": [1, *dilations, 1]}
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 0}) as sess:
        fx, fw, fdy = gg.constant(x), gg.constant(w), gg.constant(dy)
        return sess.run([
            out("Conv2D", fx, fw, **attrs),
            out("Conv2DBackpropInput", gg.constant(np.int32(x.shape)), fw, fdy, **attrs),
            out("Conv2DBackpropFilter", fx, gg.constant(np.int32(w.shape)), fdy, **attrs)])


@pytest.mark.parametrize("case", sorted(CASES))
def test_cudnn_graphs_read_tf_layouts(convolutions, case) -> None:
    x_shape, w_shape, strides, dilations, padding = CASES[case]
    rng = np.random.default_rng(3)
    geometry = [output_geometry(None, x_shape[1 + d], w_shape[d], strides[d], dilations[d],
                                padding, (0, 0)) for d in range(2)]
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    dy = rng.standard_normal((x_shape[0], geometry[0].out, geometry[1].out,
                              w_shape[3])).astype(np.float32)
    pads = tuple((g.pad_before, g.pad_after) for g in geometry)
    want = _tf_numbers(x, w, dy, strides, dilations, padding)
    got = [convolutions.forward(x.view(_Buffer), w.view(_Buffer), pads, strides, dilations),
           convolutions.backward_data(dy.view(_Buffer), w.view(_Buffer), x_shape, pads, strides,
                                      dilations),
           convolutions.backward_filter(x.view(_Buffer), dy.view(_Buffer), w_shape, pads,
                                        strides, dilations)]
    for name, g, expected in zip(("forward", "data", "filter"), got, want):
        assert g is not None and g.shape == expected.shape, name
        np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-4, atol=1e-4, err_msg=name)


def test_without_the_frontend_the_caller_runs_im2col(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cudnn", None)  # import fails
    convolutions = Convolutions(_cupy, contextlib.nullcontext())
    x = np.ones((1, 4, 4, 1), np.float32).view(_Buffer)
    w = np.ones((2, 2, 1, 1), np.float32).view(_Buffer)
    assert convolutions.forward(x, w, ((0, 0), (0, 0)), (1, 1), (1, 1)) is None
    assert "cudnn" in convolutions.unavailable
