"""CPU kernels for matrix products and erf: products split over gpugraph's threads in a plan
that owns the cores, erf as a numba loop.  Same bits as the generic bodies (``math_ops.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph.devices.cpu import loops as cpu_loops
from gpugraph.devices.cpu import threads as cpu_threads
from gpugraph.ops import math_ops
from gpugraph.ops.registry import BuildContext, op


def _product(a: Any, b: Any) -> Any:
    return cpu_threads.matmul(np, a, b)


@op("MatMul", device="cpu")
def _matmul(ctx: BuildContext):
    return math_ops.matmul(ctx, _product)


@op("Erf", "Erfc", device="cpu")
def _erf(ctx: BuildContext):
    generic, loop = math_ops.erf(ctx), cpu_loops.get("erf", np)
    complement = ctx.op.type == "Erfc"

    def kernel(x: Any) -> Any:
        wide = x if x.dtype.itemsize >= 4 else x.astype(np.float32)
        if loop is None or not cpu_loops.fits(wide):
            return generic(x)
        out = np.empty_like(wide)
        loop(cpu_loops.flat(out), cpu_loops.flat(np.ascontiguousarray(wide)), complement)
        return out.astype(x.dtype, copy=False)

    return kernel
