"""Matrix products through cuBLAS called directly, so that they can be captured in CUDA graphs.

CuPy's own cuBLAS wrappers refuse to run while a stream is capturing (every one calls its
``setStream``, which raises NotImplementedError then: cupy/cupy#6290), though cuBLAS itself
supports capture.  This module calls the libcublas CuPy has already loaded through ctypes: one
handle per device, a fixed workspace (so a captured GEMM does not allocate one of its own), the
stream set only when it changes, and alpha/beta as host scalars (1 and 0: baked into a graph,
as they should be).  float32 runs ``cublasSgemm_v2`` (``cublasSgemmStridedBatched`` for
batches), float64 the D versions: the routines CuPy's ``matmul`` calls for the same operands.
Other dtypes, layouts cuBLAS cannot read without a copy, and broadcast batches take CuPy's
``matmul`` (which runs eagerly but not under capture).

fp32 products use fp32 arithmetic unless ``GPUGRAPH_ALLOW_TF32=1`` (TensorFloat-32 tensor
cores, as TF's default and ``NVIDIA_TF32_OVERRIDE``).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

WORKSPACE_BYTES = 32 << 20  # cuBLAS's recommendation for Hopper
_OP_N, _OP_T = 0, 1
_DEFAULT_MATH, _TF32_MATH = 0, 3
_ROUTINES = {np.dtype(np.float32): ("cublasSgemm_v2", "cublasSgemmStridedBatched",
                                    ctypes.c_float),
             np.dtype(np.float64): ("cublasDgemm_v2", "cublasDgemmStridedBatched",
                                    ctypes.c_double)}


class CublasError(RuntimeError):
    """A cuBLAS call returned a status other than CUBLAS_STATUS_SUCCESS."""


def operand(shape: tuple, strides: tuple, itemsize: int) -> tuple[int, int, int] | None:
    """How cuBLAS reads the matrices (the last two axes) of a row-major operand: (operation,
    leading dimension, stride between matrices in elements), or None when it cannot read them
    in place.  A C-ordered matrix is the transpose of the column-major matrix in the same
    memory (operation N on the swapped product); an F-ordered one (a transposed view) is T."""
    rows, cols = shape[-2], shape[-1]
    row_step, col_step = strides[-2] // itemsize, strides[-1] // itemsize
    if (col_step == 1 or cols == 1) and row_step >= max(cols, 1):
        op, ld = _OP_N, max(row_step, cols, 1)
    elif (row_step == 1 or rows == 1) and col_step >= max(rows, 1):
        op, ld = _OP_T, max(col_step, rows, 1)
    else:
        return None
    if strides[-2] % itemsize or strides[-1] % itemsize:
        return None
    batch = 0
    if len(shape) == 3:
        batch = strides[0] // itemsize if shape[0] > 1 else 0
        if strides[0] % itemsize or batch < 0:
            return None
    return op, ld, batch


def plan(a_shape: tuple, a_strides: tuple, b_shape: tuple, b_strides: tuple,
         itemsize: int) -> tuple | None:
    """The arguments of one (strided-batched) GEMM computing ``a @ b`` into a new C-ordered
    result, in cuBLAS's column-major terms: (op_b, op_a, n, m, k, ldb, lda, ldc, stride_b,
    stride_a, stride_c, batch); None where cuBLAS cannot take the operands as they lie.

    Row-major C = A B is column-major C^T = B^T A^T, so B comes first."""
    if len(a_shape) != len(b_shape) or len(a_shape) not in (2, 3):
        return None
    batch = a_shape[0] if len(a_shape) == 3 else 1
    if len(a_shape) == 3 and b_shape[0] != batch:
        return None
    m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
    if b_shape[-2] != k or 0 in (m, n, k, batch):
        return None
    a, b = operand(a_shape, a_strides, itemsize), operand(b_shape, b_strides, itemsize)
    if a is None or b is None:
        return None
    return (b[0], a[0], n, m, k, b[1], a[1], n, b[2], a[2], m * n, batch)


class Blas:
    """cuBLAS on one CUDA device: a handle, its workspace, and :meth:`matmul`."""

    def __init__(self, cupy: Any, cuda_device: Any, tf32: bool = False):
        self._cupy = cupy
        self._device = cuda_device
        self._tf32 = tf32
        self._lib: Any = None
        self._handle = ctypes.c_void_p()
        self._workspace: Any = None
        self._stream: int | None = None
        self._lock = threading.Lock()

    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` (2-D, or 3-D with equal batches) through cuBLAS where it can; else
        CuPy's ``matmul`` (the same numbers, not capturable)."""
        routines = _ROUTINES.get(a.dtype)
        args = None
        if routines is not None and a.dtype == b.dtype:
            args = plan(a.shape, a.strides, b.shape, b.strides, a.dtype.itemsize)
        if args is None:
            return self._cupy.matmul(a, b)
        out = self._cupy.empty((*a.shape[:-1], b.shape[-1]), dtype=a.dtype)
        with self._lock:
            self._ready()
            self._gemm(routines, args, a, b, out)
        return out

    # --- the library -------------------------------------------------------------------------
    def _ready(self) -> None:
        if self._lib is None:
            self._lib = _library(self._cupy)
            with self._device:
                self._check("cublasCreate_v2", ctypes.byref(self._handle))
                self._check("cublasSetMathMode", self._handle,
                            _TF32_MATH if self._tf32 else _DEFAULT_MATH)
                self._workspace = self._cupy.empty(WORKSPACE_BYTES, dtype=np.uint8)
        stream = self._cupy.cuda.get_current_stream().ptr
        if stream != self._stream:
            # (setting the stream resets the workspace to cuBLAS's own: set it again)
            self._check("cublasSetStream_v2", self._handle, ctypes.c_void_p(stream))
            self._check("cublasSetWorkspace_v2", self._handle,
                        ctypes.c_void_p(self._workspace.data.ptr),
                        ctypes.c_size_t(WORKSPACE_BYTES))
            self._stream = stream

    def _gemm(self, routines: tuple, args: tuple, a: Any, b: Any, out: Any) -> None:
        single, batched, scalar = routines
        op_b, op_a, n, m, k, ldb, lda, ldc, stride_b, stride_a, stride_c, batch = args
        one, zero = scalar(1), scalar(0)
        common = (self._handle, op_b, op_a, n, m, k, ctypes.byref(one),
                  ctypes.c_void_p(b.data.ptr), ldb)
        if a.ndim == 2:
            self._check(single, *common, ctypes.c_void_p(a.data.ptr), lda, ctypes.byref(zero),
                        ctypes.c_void_p(out.data.ptr), ldc)
        else:
            self._check(batched, *common, ctypes.c_longlong(stride_b),
                        ctypes.c_void_p(a.data.ptr), lda, ctypes.c_longlong(stride_a),
                        ctypes.byref(zero), ctypes.c_void_p(out.data.ptr), ldc,
                        ctypes.c_longlong(stride_c), batch)

    def _check(self, name: str, *args: Any) -> None:
        status = getattr(self._lib, name)(*args)
        if status != 0:
            raise CublasError(f"{name} returned cuBLAS status {status}")


def _library(cupy: Any) -> Any:
    """The libcublas CuPy loaded (CuPy's own cuBLAS module loads it): found by path in this
    process's mappings, so that both use one copy of the library."""
    cupy.cuda.device.get_cublas_handle()  # loads libcublas through CuPy
    path = _mapped("libcublas.so")
    return ctypes.CDLL(path if path is not None else "libcublas.so")


def _mapped(prefix: str) -> str | None:
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1]
                if path.rsplit("/", 1)[-1].startswith(prefix):
                    return path
    except OSError:
        return None
    return None
