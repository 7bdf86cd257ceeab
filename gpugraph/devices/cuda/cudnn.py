"""2-D convolutions through cuDNN, by NVIDIA's cuDNN frontend (the ``nvidia-cudnn-frontend``
package, optional: CuPy 14 no longer binds cuDNN).

One cuDNN graph per (direction, shapes, dtype, padding, strides, dilations), built and planned
once, outside any capture, with its workspace allocated then; later calls only execute it, on
the current stream (capturable: cuDNN launches its kernels there).  Activations are NHWC
(cuDNN's channels-last strides); TF's HWIO filters are transposed to KRSC, which cuDNN's NHWC
engines read.  TF's uneven SAME padding is cuDNN's pre- and post-padding.  float32 runs in
fp32: engines whose numerical notes say they use tensor cores (TF32 for float inputs) are
deselected unless ``GPUGRAPH_ALLOW_TF32=1``.

Anything cuDNN does not support, or a missing frontend, gives None: the caller's im2col + GEMM
body runs instead (and the reason is kept in :attr:`Convolutions.unavailable`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_DTYPES = ("float32", "float64", "float16")


def nhwc(n: int, c: int, h: int, w: int) -> tuple[list[int], list[int]]:
    """cuDNN's (dims, strides) of a C-ordered [n, h, w, c] array: logical NCHW dims with
    channels-last strides."""
    return [n, c, h, w], [h * w * c, 1, w * c, c]


class Convolutions:
    """cuDNN convolutions on one CUDA device."""

    def __init__(self, cupy: Any, cuda_device: Any, tf32: bool = False):
        self._cupy = cupy
        self._device = cuda_device
        self._tf32 = tf32
        self._cudnn: Any = None
        self._handle: Any = None
        self._stream: int | None = None
        self._graphs: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self.unavailable: str | None = None  # why cuDNN is not used, once known

    # --- the three directions ------------------------------------------------------------------
    def forward(self, x: Any, w: Any, pads: tuple, strides: tuple, dilations: tuple) -> Any:
        """Conv2D of NHWC ``x`` with HWIO ``w``, or None."""
        key = ("fprop", x.shape, w.shape, x.dtype.name, pads, strides, dilations)
        built = self._built(key, x.dtype, lambda g, cudnn: _fprop(g, cudnn, key))
        if built is None:
            return None
        graph, tensors, workspace, out_shape = built
        y = self._cupy.empty(out_shape, dtype=x.dtype)
        self._execute(graph, {tensors[0]: self._cupy.ascontiguousarray(x),
                              tensors[1]: _krsc(self._cupy, w), tensors[2]: y}, workspace)
        return y

    def backward_data(self, dy: Any, w: Any, x_shape: tuple, pads: tuple, strides: tuple,
                      dilations: tuple) -> Any:
        """Conv2DBackpropInput: the NHWC input gradient of shape ``x_shape``, or None."""
        key = ("dgrad", dy.shape, w.shape, dy.dtype.name, pads, strides, dilations,
               tuple(x_shape))
        built = self._built(key, dy.dtype, lambda g, cudnn: _dgrad(g, cudnn, key))
        if built is None:
            return None
        graph, tensors, workspace, _ = built
        dx = self._cupy.empty(tuple(x_shape), dtype=dy.dtype)
        self._execute(graph, {tensors[0]: self._cupy.ascontiguousarray(dy),
                              tensors[1]: _krsc(self._cupy, w), tensors[2]: dx}, workspace)
        return dx

    def backward_filter(self, x: Any, dy: Any, w_shape: tuple, pads: tuple, strides: tuple,
                        dilations: tuple) -> Any:
        """Conv2DBackpropFilter: the HWIO filter gradient of shape ``w_shape``, or None."""
        key = ("wgrad", x.shape, dy.shape, x.dtype.name, pads, strides, dilations,
               tuple(w_shape))
        built = self._built(key, x.dtype, lambda g, cudnn: _wgrad(g, cudnn, key))
        if built is None:
            return None
        graph, tensors, workspace, _ = built
        kh, kw, cin, cout = w_shape
        dw = self._cupy.empty((cout, kh, kw, cin), dtype=x.dtype)  # KRSC
        contiguous = self._cupy.ascontiguousarray
        self._execute(graph, {tensors[0]: contiguous(x), tensors[1]: contiguous(dy),
                              tensors[2]: dw}, workspace)
        return self._cupy.ascontiguousarray(dw.transpose(1, 2, 3, 0))

    # --- graphs --------------------------------------------------------------------------------
    def _built(self, key: tuple, dtype: np.dtype, define: Any) -> Any:
        if dtype.name not in _DTYPES or not all(key[1]) or not all(key[2]):
            return None
        with self._lock:
            if key in self._graphs:
                return self._graphs[key]
            cudnn = self._library()
            built = None
            if cudnn is not None:
                try:
                    built = self._build(cudnn, dtype, define)
                except Exception:  # noqa: BLE001  (cuDNN: not supported here; im2col runs)
                    built = None
            self._graphs[key] = built
            return built

    def _build(self, cudnn: Any, dtype: np.dtype, define: Any) -> tuple:
        kind = {"float32": cudnn.data_type.FLOAT, "float64": cudnn.data_type.DOUBLE,
                "float16": cudnn.data_type.HALF}[dtype.name]
        compute = cudnn.data_type.DOUBLE if dtype.name == "float64" else cudnn.data_type.FLOAT
        with self._device:
            graph = cudnn.pygraph(io_data_type=kind, intermediate_data_type=compute,
                                  compute_data_type=compute, handle=self._handle)
            tensors, out_shape = define(graph, (cudnn, kind, compute))
            graph.validate()
            graph.build_operation_graph()
            if dtype.name == "float32" and not self._tf32:
                graph.deselect_numeric_notes([cudnn.numerical_note.TENSOR_CORE,
                                              cudnn.numerical_note.DOWN_CONVERT_INPUTS])
            graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
            graph.check_support()
            graph.build_plans()
            workspace = self._cupy.empty(max(graph.get_workspace_size(), 1), dtype=np.uint8)
        return graph, tensors, workspace, out_shape

    def _library(self) -> Any:
        if self._cudnn is None and self.unavailable is None:
            try:
                import cudnn  # noqa: PLC0415  (optional: nvidia-cudnn-frontend)

                with self._device:
                    self._handle = cudnn.create_handle()
                self._cudnn = cudnn
            except Exception as e:  # noqa: BLE001  (missing package or libcudnn)
                self.unavailable = f"{type(e).__name__}: {e}"
        return self._cudnn

    def _execute(self, graph: Any, buffers: dict, workspace: Any) -> None:
        stream = self._cupy.cuda.get_current_stream().ptr
        with self._lock:
            if stream != self._stream:
                self._cudnn.set_stream(handle=self._handle, stream=stream)
                self._stream = stream
            graph.execute({t: a.data.ptr for t, a in buffers.items()}, workspace.data.ptr,
                          handle=self._handle)


def _krsc(cupy: Any, w: Any) -> Any:
    # TF's [kh, kw, cin, cout] filter as [cout, kh, kw, cin] (what NHWC engines read)
    return cupy.ascontiguousarray(w.transpose(3, 0, 1, 2))


def _conv_args(key: tuple) -> dict:
    pads, strides, dilations = key[4], key[5], key[6]
    return {"pre_padding": [pads[0][0], pads[1][0]], "post_padding": [pads[0][1], pads[1][1]],
            "stride": list(strides), "dilation": list(dilations)}


def _filter(graph: Any, kind: Any, w_shape: tuple) -> Any:
    kh, kw, cin, cout = w_shape
    return graph.tensor(name="w", dim=[cout, cin, kh, kw], stride=[kh * kw * cin, 1, kw * cin, cin],
                        data_type=kind)


def out_size(size: int, k: int, pads: tuple, stride: int, dilation: int) -> int:
    """A convolution's output size along one dimension (as cuDNN and TF compute it)."""
    return (size + pads[0] + pads[1] - ((k - 1) * dilation + 1)) // stride + 1


def _fprop(graph: Any, types: tuple, key: tuple) -> tuple:
    cudnn, kind, compute = types
    (n, h, wd, c), w_shape = key[1], key[2]
    pads, strides, dilations = key[4], key[5], key[6]
    oh = out_size(h, w_shape[0], pads[0], strides[0], dilations[0])
    ow = out_size(wd, w_shape[1], pads[1], strides[1], dilations[1])
    dims, steps = nhwc(n, c, h, wd)
    x = graph.tensor(name="x", dim=dims, stride=steps, data_type=kind)
    f = _filter(graph, kind, w_shape)
    y = graph.conv_fprop(image=x, weight=f, compute_data_type=compute, name="fprop",
                         **_conv_args(key))
    dims, steps = nhwc(n, w_shape[3], oh, ow)
    y.set_output(True).set_dim(dims).set_stride(steps).set_data_type(kind)
    return (x, f, y), (n, oh, ow, w_shape[3])


def _dgrad(graph: Any, types: tuple, key: tuple) -> tuple:
    cudnn, kind, compute = types
    (n, oh, ow, k), w_shape, x_shape = key[1], key[2], key[7]
    dims, steps = nhwc(n, k, oh, ow)
    dy = graph.tensor(name="dy", dim=dims, stride=steps, data_type=kind)
    f = _filter(graph, kind, w_shape)
    dx = graph.conv_dgrad(loss=dy, filter=f, compute_data_type=compute, name="dgrad",
                          **_conv_args(key))
    dims, steps = nhwc(x_shape[0], x_shape[3], x_shape[1], x_shape[2])
    dx.set_output(True).set_dim(dims).set_stride(steps).set_data_type(kind)
    return (dy, f, dx), tuple(x_shape)


def _wgrad(graph: Any, types: tuple, key: tuple) -> tuple:
    cudnn, kind, compute = types
    (n, h, wd, c), (_, oh, ow, k), w_shape = key[1], key[2], key[7]
    dims, steps = nhwc(n, c, h, wd)
    x = graph.tensor(name="x", dim=dims, stride=steps, data_type=kind)
    dims, steps = nhwc(n, k, oh, ow)
    dy = graph.tensor(name="dy", dim=dims, stride=steps, data_type=kind)
    dw = graph.conv_wgrad(image=x, loss=dy, compute_data_type=compute, name="wgrad",
                          **_conv_args(key))
    kh, kw, cin, cout = w_shape
    dw.set_output(True).set_dim([cout, cin, kh, kw]).set_stride(
        [kh * kw * cin, 1, kw * cin, cin]).set_data_type(kind)
    return (x, dy, dw), (cout, kh, kw, cin)
