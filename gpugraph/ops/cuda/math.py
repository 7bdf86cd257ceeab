"""CUDA kernels for matrix products and erf.

Matrix products go through the device's own cuBLAS calls (``devices/cuda/cublas.py``), which
CUDA graphs can capture (CuPy's ``matmul`` cannot be); erf through cupyx.scipy.special (CuPy
has no ``cupy.erf``).
"""

from __future__ import annotations

from typing import Any

from gpugraph.ops import math_ops
from gpugraph.ops.registry import BuildContext, op


def product(ctx: BuildContext):
    """``x @ y`` on the kernel's CUDA device: cuBLAS for 2-D operands and for batches of equal
    shape (flattened to one strided batch), CuPy's ``matmul`` for broadcast batches."""
    blas, xp = ctx.device.blas(), ctx.xp

    def run(x: Any, y: Any) -> Any:
        if x.ndim == 2 and y.ndim == 2:
            return blas.matmul(x, y)
        if x.ndim == y.ndim > 2 and x.shape[:-2] == y.shape[:-2]:
            got = blas.matmul(x.reshape(-1, *x.shape[-2:]), y.reshape(-1, *y.shape[-2:]))
            return got.reshape(*x.shape[:-2], *got.shape[-2:])
        return xp.matmul(x, y)

    return run


@op("MatMul", device="cuda")
def _matmul(ctx: BuildContext):
    return math_ops.matmul(ctx, product(ctx))


@op("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", device="cuda")
def _batch_matmul(ctx: BuildContext):
    return math_ops.batch_matmul(ctx, product(ctx))


@op("Erf", "Erfc", device="cuda")
def _erf(ctx: BuildContext):
    import cupyx.scipy.special as special  # noqa: PLC0415  (only with CuPy)

    fn = special.erfc if ctx.op.type == "Erfc" else special.erf
    # (it returns float64 for half inputs: rounded once, as TF's half results are)
    return lambda x: fn(x).astype(x.dtype, copy=False)
