"""CUDA kernels for optimizer updates: one grid-stride loop per update
(``devices/cuda/kernels/training.cu``) instead of ~10 CuPy launches, with the same roundings
(``--fmad=false``).  Where a kernel does not serve the arrays (another dtype, a non-contiguous
array, ``GPUGRAPH_CUDA_KERNELS=0``), the generic rule runs (``ops/training_ops.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpugraph.devices.cuda import rawmodule
from gpugraph.ops import training_ops
from gpugraph.ops.registry import BuildContext, op
from gpugraph.ops.training_ops import UpdateRule, update_kernel


def _with_kernel(ctx: BuildContext, rule: UpdateRule, name: str,
                 call: Callable[..., bool]) -> Any:
    gpu = rawmodule.elementwise("training", name, ctx.xp)
    if gpu is None:
        return update_kernel(ctx, rule)

    def update(xp: Any, one: Any, *args: Any) -> None:
        if not call(gpu, *args):
            rule.update(xp, one, *args)

    return update_kernel(ctx, UpdateRule(rule.num_state, update, rule.grad_pos))


@op("ApplyGradientDescent", "ResourceApplyGradientDescent", device="cuda")
def _gradient_descent(ctx: BuildContext):
    def call(gpu, var, lr, grad) -> bool:
        if not gpu.fits((var, grad), (lr,)):
            return False
        gpu((var, grad), (lr,))
        return True

    return _with_kernel(ctx, training_ops.gradient_descent(ctx), "apply_gradient_descent", call)


@op("ApplyMomentum", "ResourceApplyMomentum", "SparseApplyMomentum",
    "ResourceSparseApplyMomentum", device="cuda")
def _momentum(ctx: BuildContext):
    nesterov = ctx.attr_or("use_nesterov", False)

    def call(gpu, var, accum, lr, grad, momentum) -> bool:
        if not gpu.fits((var, accum, grad), (lr, momentum)):
            return False
        gpu((var, accum, grad), (lr, momentum), nesterov)
        return True

    return _with_kernel(ctx, training_ops.momentum(ctx), "apply_momentum", call)


@op("ApplyAdam", "ResourceApplyAdam", device="cuda")
def _adam(ctx: BuildContext):
    nesterov = ctx.attr_or("use_nesterov", False)

    def call(gpu, var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad) -> bool:
        scalars = (beta1_power, beta2_power, lr, beta1, beta2, epsilon)
        if not gpu.fits((var, m, v, grad), scalars):
            return False
        gpu((var, m, v, grad), scalars, nesterov)
        return True

    return _with_kernel(ctx, training_ops.adam(ctx), "apply_adam", call)
