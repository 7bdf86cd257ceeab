"""The layout arithmetic of the CUDA backend's direct cuBLAS calls (devices/cuda/cublas.py),
checked on the CPU: a column-major GEMM emulated over the operands' own memory, with the
arguments :func:`plan` derives, must give ``a @ b`` for every layout it accepts."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from gpugraph.devices.cuda.cublas import plan


def _stored(x: np.ndarray, rows: int, cols: int, ld: int, batch: int, stride: int) -> np.ndarray:
    # What cuBLAS reads: ``batch`` column-major rows x cols matrices, leading dimension ld.
    size = x.itemsize
    return as_strided(x, shape=(batch, rows, cols), strides=(stride * size, size, ld * size))


def _emulate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    args = plan(a.shape, a.strides, b.shape, b.strides, a.itemsize)
    assert args is not None, (a.shape, a.strides, b.shape, b.strides)
    op_b, op_a, n, m, k, ldb, lda, ldc, stride_b, stride_a, stride_c, batch = args
    first = _stored(b, *((n, k) if op_b == 0 else (k, n)), ldb, batch, stride_b)
    second = _stored(a, *((k, m) if op_a == 0 else (m, k)), lda, batch, stride_a)
    first = first if op_b == 0 else first.transpose(0, 2, 1)
    second = second if op_a == 0 else second.transpose(0, 2, 1)
    assert ldc == n and stride_c == m * n
    out_t = first @ second  # [batch, n, m]: the column-major result, i.e. C transposed
    got = out_t.transpose(0, 2, 1)
    return got[0] if a.ndim == 2 else got


rng = np.random.default_rng(0)


def _m(*shape):
    return rng.standard_normal(shape).astype(np.float32)


LAYOUTS = {
    "plain": lambda: (_m(5, 3), _m(3, 4)),
    "a transposed": lambda: (_m(3, 5).T, _m(3, 4)),
    "b transposed": lambda: (_m(5, 3), _m(4, 3).T),
    "both transposed": lambda: (_m(3, 5).T, _m(4, 3).T),
    "row slices (ld > cols)": lambda: (_m(5, 8)[:, 2:5], _m(3, 9)[:, :4]),
    "vector shapes": lambda: (_m(1, 3), _m(3, 1)),
    "a column": lambda: (_m(6, 1), _m(1, 2)),
    "batch": lambda: (_m(2, 5, 3), _m(2, 3, 4)),
    "batch, adjoint views": lambda: (np.swapaxes(_m(2, 3, 5), 1, 2), np.swapaxes(_m(2, 4, 3), 1, 2)),
    "batch of one": lambda: (_m(1, 5, 3), _m(1, 3, 4)),
    "broadcast batch (stride 0)": lambda: (np.broadcast_to(_m(5, 3), (3, 5, 3)), _m(3, 3, 4)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_plan_reads_the_operands_as_they_lie(layout) -> None:
    a, b = LAYOUTS[layout]()
    np.testing.assert_allclose(_emulate(a, b), np.matmul(a, b), rtol=1e-5, atol=1e-6)


def test_what_cublas_cannot_read_in_place_goes_elsewhere() -> None:
    strided = _m(5, 6)[:, ::2]  # neither rows nor columns contiguous
    assert plan(strided.shape, strided.strides, (3, 4), (16, 4), 4) is None
    assert plan((2, 5, 3), (60, 12, 4), (3, 3, 4), (48, 16, 4), 4) is None  # batches differ
    assert plan((5, 0), (0, 4), (0, 4), (16, 4), 4) is None  # empty: CuPy's zeros
    reversed_rows = _m(5, 3)[::-1]
    assert plan(reversed_rows.shape, reversed_rows.strides, (3, 4), (16, 4), 4) is None
