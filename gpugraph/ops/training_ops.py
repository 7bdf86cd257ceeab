"""Optimizer updates: ``Apply*`` (ref variables) and ``ResourceApply*`` (resource variables).

Each update is TF's CPU formula (tensorflow/core/kernels/training_ops.cc), computed in the
variable's dtype with dtype-typed scalars, in place on the slot's buffer (copy-on-write when
someone still holds the old value; see :meth:`VarSlot.writable`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpugraph import errors
from gpugraph.ops import cpu_loops
from gpugraph.ops.registry import BuildContext
from gpugraph.ops.registry import op as register
from gpugraph.ops.resources import VarSlot


def _kernel(ctx: BuildContext, num_state: int, update: Callable[..., None], grad_pos: int = -1):
    """A kernel reading ``num_state`` variable slots, then scalars and the gradient (at
    ``grad_pos`` among the non-state inputs), updating the slots in place."""
    node = ctx.op
    resource = node.type.startswith("Resource")
    xp = ctx.xp

    def kernel(*args: Any) -> Any:
        slots: tuple[VarSlot, ...] = args[:num_state]
        arrays = [slot.writable(node) for slot in slots]
        rest = args[num_state:]
        grad = rest[grad_pos]
        for slot, array in zip(slots, arrays):
            if array.shape != grad.shape:
                raise errors.InvalidArgumentError(
                    None, node, f"{slot.name!r} and grad do not have the same shape"
                    f"{list(array.shape)} {list(grad.shape)}")
        one = arrays[0].dtype.type(1)
        update(xp, one, *arrays, *rest)
        return None if resource else slots[0]

    return kernel


@register("ApplyGradientDescent", "ResourceApplyGradientDescent")
def _gradient_descent(ctx: BuildContext):
    def update(xp, one, var, lr, grad):
        var -= grad * lr

    return _kernel(ctx, 1, update)


@register("ApplyMomentum", "ResourceApplyMomentum")
def _momentum(ctx: BuildContext):
    nesterov = ctx.attr_or("use_nesterov", False)
    loop = cpu_loops.get("momentum", ctx.xp)

    def update(xp, one, var, accum, lr, grad, momentum):
        if loop is not None and cpu_loops.fits(var, accum, grad):
            scalar = var.dtype.type
            loop(*map(cpu_loops.flat, (var, accum, grad)), scalar(lr), scalar(momentum), nesterov)
            return
        accum *= momentum
        accum += grad
        if nesterov:
            var -= grad * lr + accum * momentum * lr
        else:
            var -= accum * lr

    return _kernel(ctx, 2, update, grad_pos=1)  # inputs: (var, accum, lr, grad, momentum)


@register("ApplyAdam", "ResourceApplyAdam")
def _adam(ctx: BuildContext):
    nesterov = ctx.attr_or("use_nesterov", False)
    loop = cpu_loops.get("adam", ctx.xp)

    def update(xp, one, var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad):
        alpha = lr * xp.sqrt(one - beta2_power) / (one - beta1_power)
        if loop is not None and cpu_loops.fits(var, m, v, grad):
            scalar = var.dtype.type
            loop(*map(cpu_loops.flat, (var, m, v, grad)), scalar(alpha), scalar(one - beta1),
                 scalar(one - beta2), scalar(epsilon), scalar(beta1), nesterov)
            return
        # TF's formulas, evaluated in the same order, through one scratch buffer (Adam runs
        # over every parameter each step: temporaries cost memory bandwidth).
        t = xp.empty_like(var)
        xp.subtract(grad, m, out=t)
        t *= one - beta1
        m += t
        xp.square(grad, out=t)
        t -= v
        t *= one - beta2
        v += t
        xp.sqrt(v, out=t)
        t += epsilon
        if nesterov:
            step = grad * (one - beta1)
            step += beta1 * m
        else:
            step = xp.array(m, copy=True)
        step *= alpha
        step /= t
        var -= step

    return _kernel(ctx, 3, update)


@register("ApplyRMSProp", "ResourceApplyRMSProp")
def _rms_prop(ctx: BuildContext):
    loop = cpu_loops.get("rms_prop", ctx.xp)

    def update(xp, one, var, ms, mom, lr, rho, momentum, epsilon, grad):
        if loop is not None and cpu_loops.fits(var, ms, mom, grad):
            scalar = var.dtype.type
            loop(*map(cpu_loops.flat, (var, ms, mom, grad)), scalar(lr), scalar(one - rho),
                 scalar(momentum), scalar(epsilon))
            return
        ms += (xp.square(grad) - ms) * (one - rho)
        mom *= momentum
        mom += (grad * lr) / xp.sqrt(ms + epsilon)
        var -= mom

    return _kernel(ctx, 3, update)


@register("ApplyCenteredRMSProp", "ResourceApplyCenteredRMSProp")
def _centered_rms_prop(ctx: BuildContext):
    loop = cpu_loops.get("centered_rms_prop", ctx.xp)

    def update(xp, one, var, mg, ms, mom, lr, rho, momentum, epsilon, grad):
        if loop is not None and cpu_loops.fits(var, mg, ms, mom, grad):
            scalar = var.dtype.type
            loop(*map(cpu_loops.flat, (var, mg, ms, mom, grad)), scalar(lr), scalar(one - rho),
                 scalar(momentum), scalar(epsilon))
            return
        ms += (xp.square(grad) - ms) * (one - rho)
        mg += (grad - mg) * (one - rho)
        denom = (ms - xp.square(mg)) + epsilon
        mom *= momentum
        mom += (grad * lr) / xp.sqrt(denom)
        var -= mom

    return _kernel(ctx, 4, update)


@register("ApplyAdagrad", "ResourceApplyAdagrad")
def _adagrad(ctx: BuildContext):
    update_slots = ctx.attr_or("update_slots", True)
    loop = cpu_loops.get("adagrad", ctx.xp)

    def update(xp, one, var, accum, lr, grad):
        if loop is not None and cpu_loops.fits(var, accum, grad):
            loop(*map(cpu_loops.flat, (var, accum, grad)), var.dtype.type(lr), one,
                 bool(update_slots))
            return
        if update_slots:
            accum += xp.square(grad)
        var -= grad * lr * (one / xp.sqrt(accum))

    return _kernel(ctx, 2, update)


@register("ApplyAdagradV2", "ResourceApplyAdagradV2")
def _adagrad_v2(ctx: BuildContext):
    update_slots = ctx.attr_or("update_slots", True)

    def update(xp, one, var, accum, lr, epsilon, grad):
        if update_slots:
            accum += xp.square(grad)
        var -= grad * lr / (xp.sqrt(accum) + epsilon)

    return _kernel(ctx, 2, update)


@register("ApplyAdadelta", "ResourceApplyAdadelta")
def _adadelta(ctx: BuildContext):
    def update(xp, one, var, accum, accum_update, lr, rho, epsilon, grad):
        accum *= rho
        accum += xp.square(grad) * (one - rho)
        step = xp.sqrt(accum_update + epsilon) * (one / xp.sqrt(accum + epsilon)) * grad
        var -= step * lr
        accum_update *= rho
        accum_update += xp.square(step) * (one - rho)

    return _kernel(ctx, 3, update)


@register("ApplyAdaMax", "ResourceApplyAdaMax")
def _ada_max(ctx: BuildContext):
    def update(xp, one, var, m, v, beta1_power, lr, beta1, beta2, epsilon, grad):
        m += (grad - m) * (one - beta1)
        xp.maximum(beta2 * v, xp.abs(grad), out=v)
        var -= lr / (one - beta1_power) * (m / (v + epsilon))

    return _kernel(ctx, 3, update)
