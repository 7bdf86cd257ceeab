"""CUDA kernels for erf: cupyx.scipy.special (CuPy has no ``cupy.erf``)."""

from __future__ import annotations


from gpugraph.ops.registry import BuildContext, op


@op("Erf", "Erfc", device="cuda")
def _erf(ctx: BuildContext):
    import cupyx.scipy.special as special  # noqa: PLC0415  (only with CuPy)

    fn = special.erfc if ctx.op.type == "Erfc" else special.erf
    # (it returns float64 for half inputs: rounded once, as TF's half results are)
    return lambda x: fn(x).astype(x.dtype, copy=False)
