"""Optimizer updates: ``Apply*`` (ref variables) and ``ResourceApply*`` (resource variables).

Each update is TF's CPU formula (tensorflow/core/kernels/training_ops.cc), computed in the
variable's dtype with dtype-typed scalars, in place on the slot's buffer (copy-on-write when
someone still holds the old value; see :meth:`VarSlot.writable`).

Each optimizer is written once as an :class:`UpdateRule`: how many variable slots it updates,
where its gradient is, and its formula against ``xp``.  The kernel around a rule
(:func:`update_kernel`) checks the inputs and runs the dense or the sparse form.  Backends
build their kernels from the same rules with faster formulas (``ops/cpu/training.py``,
``ops/cuda/training.py``), so they run exactly what this module defines where their own
kernels do not serve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext
from gpugraph.ops.registry import op as register
from gpugraph.state import VarSlot


@dataclasses.dataclass(frozen=True)
class UpdateRule:
    """One optimizer's update.

    Attributes:
        num_state: the variable slots it updates (the op's first inputs).
        update: ``update(xp, one, *slot arrays, *other inputs)``, in place on the slots' arrays
            (``one``: 1 in the variable's dtype).
        grad_pos: the gradient's position among the inputs after the slots.
    """

    num_state: int
    update: Callable[..., None]
    grad_pos: int = -1


RuleBuilder = Callable[[BuildContext], UpdateRule]
RULES: dict[str, RuleBuilder] = {}  # op type -> its rule's builder


def rule(*op_types: str):
    """Registers a rule builder for ``op_types``: the generic kernel, and :data:`RULES`."""

    def register_rule(build: RuleBuilder) -> RuleBuilder:
        for op_type in op_types:
            RULES[op_type] = build
        register(*op_types)(lambda ctx: update_kernel(ctx, build(ctx)))
        return build

    return register_rule


def update_kernel(ctx: BuildContext, rule: UpdateRule):
    """A kernel reading ``rule.num_state`` variable slots, then scalars and the gradient,
    updating the slots in place.

    The ``SparseApply*`` forms of an op take ``indices`` right after the gradient and update
    only those rows of every slot: the same formula runs on the gathered rows (TF's sparse
    kernels write a few formulas differently, e.g. RMSProp's ``ms * rho + g*g * (1 - rho)``;
    results agree to about 1 ulp).
    """
    node = ctx.op
    num_state, update, grad_pos = rule.num_state, rule.update, rule.grad_pos
    resource = node.type.startswith("Resource")
    sparse = "Sparse" in node.type
    xp, device = ctx.xp, ctx.device
    names = input_names(node)[num_state:]

    def kernel(*args: Any) -> Any:
        slots: tuple[VarSlot, ...] = args[:num_state]
        arrays = [slot.writable(node) for slot in slots]
        rest = list(args[num_state:])
        for name, value in zip(names, rest):
            if name not in ("grad", "delta", "indices") and getattr(value, "ndim", 0) != 0:
                raise errors.InvalidArgumentError(
                    None, node, f"{name} is not a scalar: {list(value.shape)}")
        if sparse:
            position = grad_pos % (len(rest) - 1)
            indices = rest.pop(position + 1)
            _sparse_update(xp, node, update, slots, arrays, rest, position, indices,
                           np.asarray(device.to_host(indices)))
        else:
            _check_shapes(node, slots, arrays, rest[grad_pos].shape)
            update(xp, arrays[0].dtype.type(1), *arrays, *rest)
        return None if resource else slots[0]

    return kernel


def input_names(node: Any) -> list[str]:
    """The names of ``node``'s inputs in its OpDef."""
    return [arg.name for arg in node.op_def.input_arg]


def _check_shapes(node: Any, slots: Any, arrays: list, grad_shape: tuple) -> None:
    for slot, array in zip(slots, arrays):
        if array.shape != grad_shape:
            raise errors.InvalidArgumentError(
                None, node, f"{slot.name!r} and grad do not have the same shape"
                f"{list(array.shape)} {list(grad_shape)}")


def _sparse_update(xp: Any, node: Any, update: Callable[..., None], slots: Any, arrays: list,
                   rest: list, position: int, indices: Any, host: np.ndarray) -> None:
    """Runs ``update`` on rows ``indices`` of every slot (TF's SparseApply* kernels)."""
    grad, first = rest[position], arrays[0]
    if indices.ndim != 1:
        raise errors.InvalidArgumentError(None, node, "indices must be one-dimensional")
    if first.ndim < 1:
        raise errors.InvalidArgumentError(None, node, "var must be at least 1 dimensional")
    _check_shapes(node, slots, arrays, first.shape)
    if grad.shape != (indices.shape[0], *first.shape[1:]):
        raise errors.InvalidArgumentError(
            None, node, f"grad must be the same shape as var except for the first dimension, "
            f"which must match the size of indices: grad {list(grad.shape)}, var "
            f"{list(first.shape)}, indices {list(indices.shape)}")
    bad = np.flatnonzero((host < 0) | (host >= first.shape[0]))
    if bad.size:
        raise errors.InvalidArgumentError(
            None, node, f"Index {int(host[bad[0]])} at offset {int(bad[0])} in indices is out "
            "of range")
    one = first.dtype.type(1)
    if np.unique(host).size == host.size:  # the usual case: optimizers deduplicate first
        rows = [a[indices] for a in arrays]
        update(xp, one, *rows, *rest)
        for array, row in zip(arrays, rows):
            array[indices] = row
        return
    for i, index in enumerate(host.tolist()):  # repeated rows: one at a time, in order, as TF
        row_rest = list(rest)
        row_rest[position] = grad[i:i + 1]
        update(xp, one, *(a[index:index + 1] for a in arrays), *row_rest)


@rule("ApplyGradientDescent", "ResourceApplyGradientDescent")
def gradient_descent(ctx: BuildContext) -> UpdateRule:
    def update(xp, one, var, lr, grad):
        var -= grad * lr

    return UpdateRule(1, update)


@rule("ApplyMomentum", "ResourceApplyMomentum", "SparseApplyMomentum",
      "ResourceSparseApplyMomentum")
def momentum(ctx: BuildContext) -> UpdateRule:
    nesterov = ctx.attr_or("use_nesterov", False)

    def update(xp, one, var, accum, lr, grad, momentum):
        accum *= momentum
        accum += grad
        if nesterov:
            var -= grad * lr + accum * momentum * lr
        else:
            var -= accum * lr

    # inputs: (var, accum, lr, grad, momentum)
    return UpdateRule(2, update, 1)


@rule("ApplyAdam", "ResourceApplyAdam")
def adam(ctx: BuildContext) -> UpdateRule:
    nesterov = ctx.attr_or("use_nesterov", False)

    def update(xp, one, var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad):
        alpha = adam_step_size(xp, one, beta1_power, beta2_power, lr)
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

    return UpdateRule(3, update)


def adam_step_size(xp: Any, one: Any, beta1_power: Any, beta2_power: Any, lr: Any) -> Any:
    """Adam's ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)``, as TF computes it."""
    return lr * xp.sqrt(one - beta2_power) / (one - beta1_power)


@rule("ApplyRMSProp", "ResourceApplyRMSProp", "SparseApplyRMSProp",
      "ResourceSparseApplyRMSProp")
def rms_prop(ctx: BuildContext) -> UpdateRule:
    def update(xp, one, var, ms, mom, lr, rho, momentum, epsilon, grad):
        ms += (xp.square(grad) - ms) * (one - rho)
        mom *= momentum
        mom += (grad * lr) / xp.sqrt(ms + epsilon)
        var -= mom

    return UpdateRule(3, update)


@rule("ApplyCenteredRMSProp", "ResourceApplyCenteredRMSProp", "SparseApplyCenteredRMSProp",
      "ResourceSparseApplyCenteredRMSProp")
def centered_rms_prop(ctx: BuildContext) -> UpdateRule:
    def update(xp, one, var, mg, ms, mom, lr, rho, momentum, epsilon, grad):
        ms += (xp.square(grad) - ms) * (one - rho)
        mg += (grad - mg) * (one - rho)
        denom = (ms - xp.square(mg)) + epsilon
        mom *= momentum
        mom += (grad * lr) / xp.sqrt(denom)
        var -= mom

    return UpdateRule(4, update)


@rule("ApplyAdagrad", "ResourceApplyAdagrad", "SparseApplyAdagrad",
      "ResourceSparseApplyAdagrad")
def adagrad(ctx: BuildContext) -> UpdateRule:
    update_slots = ctx.attr_or("update_slots", True)

    def update(xp, one, var, accum, lr, grad):
        if update_slots:
            accum += xp.square(grad)
        var -= grad * lr * (one / xp.sqrt(accum))

    return UpdateRule(2, update)


@rule("ApplyAdagradV2", "ResourceApplyAdagradV2", "SparseApplyAdagradV2",
      "ResourceSparseApplyAdagradV2")
def _adagrad_v2(ctx: BuildContext) -> UpdateRule:
    update_slots = ctx.attr_or("update_slots", True)

    def update(xp, one, var, accum, lr, epsilon, grad):
        if update_slots:
            accum += xp.square(grad)
        var -= grad * lr / (xp.sqrt(accum) + epsilon)

    return UpdateRule(2, update)


@rule("ApplyAdadelta", "ResourceApplyAdadelta", "SparseApplyAdadelta",
      "ResourceSparseApplyAdadelta")
def _adadelta(ctx: BuildContext) -> UpdateRule:
    def update(xp, one, var, accum, accum_update, lr, rho, epsilon, grad):
        accum *= rho
        accum += xp.square(grad) * (one - rho)
        step = xp.sqrt(accum_update + epsilon) * (one / xp.sqrt(accum + epsilon)) * grad
        var -= step * lr
        accum_update *= rho
        accum_update += xp.square(step) * (one - rho)

    return UpdateRule(3, update)


@rule("ApplyAdaMax", "ResourceApplyAdaMax")
def _ada_max(ctx: BuildContext) -> UpdateRule:
    def update(xp, one, var, m, v, beta1_power, lr, beta1, beta2, epsilon, grad):
        m += (grad - m) * (one - beta1)
        xp.maximum(beta2 * v, xp.abs(grad), out=v)
        var -= lr / (one - beta1_power) * (m / (v + epsilon))

    return UpdateRule(3, update)


@rule("ApplyFtrl", "ResourceApplyFtrl", "SparseApplyFtrl", "ResourceSparseApplyFtrl",
      "ApplyFtrlV2", "ResourceApplyFtrlV2", "SparseApplyFtrlV2", "ResourceSparseApplyFtrlV2")
def _ftrl(ctx: BuildContext) -> UpdateRule:
    # training_ops.cc ApplyFtrl / ApplyFtrlV2 (and their MultiplyLinearByLr forms).
    by_lr = ctx.attr_or("multiply_linear_by_lr", False)
    v2 = ctx.op.type.endswith("V2")

    def update(xp, one, var, accum, linear, grad, lr, l1, l2, *shrink_and_power):
        l2_shrinkage, lr_power = shrink_and_power if v2 else (None, shrink_and_power[0])
        two = one + one
        shrunk = grad + two * l2_shrinkage * var if v2 else grad
        new_accum = accum + grad * grad
        half = lr_power == var.dtype.type(-0.5)
        power = (lambda a: xp.sqrt(a)) if half else (lambda a: a ** -lr_power)
        if by_lr:
            linear += shrunk * lr - (power(new_accum) - power(accum)) * var
            x = l1 * lr * xp.sign(linear) - linear
            y = power(new_accum) + two * l2 * lr
            threshold = l1 * lr
        else:
            linear += shrunk - (power(new_accum) - power(accum)) / lr * var
            x = l1 * xp.sign(linear) - linear
            y = power(new_accum) / lr + two * l2
            threshold = l1
        var[...] = xp.where(xp.abs(linear) > threshold, x / y, var.dtype.type(0))
        accum += grad * grad

    return UpdateRule(3, update, 0)  # inputs: (var, accum, linear, grad, lr, ...)


def _proximal(xp, var, prox, rate, l1, l2, one):
    # sign(prox) * max(|prox| - rate * l1, 0) / (1 + l2 * rate), or prox / (1 + l2 * rate).
    if l1 > 0:
        var[...] = xp.sign(prox) * xp.maximum(xp.abs(prox) - rate * l1, var.dtype.type(0)) / (
            one + l2 * rate)
    else:
        var[...] = prox / (one + l2 * rate)


@rule("ApplyProximalAdagrad", "ResourceApplyProximalAdagrad", "SparseApplyProximalAdagrad",
      "ResourceSparseApplyProximalAdagrad")
def _proximal_adagrad(ctx: BuildContext) -> UpdateRule:
    def update(xp, one, var, accum, lr, l1, l2, grad):
        accum += xp.square(grad)
        rate = lr * (one / xp.sqrt(accum))
        _proximal(xp, var, var - grad * rate, rate, l1, l2, one)

    return UpdateRule(2, update)


@rule("ApplyProximalGradientDescent", "ResourceApplyProximalGradientDescent",
      "SparseApplyProximalGradientDescent", "ResourceSparseApplyProximalGradientDescent")
def _proximal_gradient_descent(ctx: BuildContext) -> UpdateRule:
    def update(xp, one, var, alpha, l1, l2, grad):
        _proximal(xp, var, var - grad * alpha, alpha, l1, l2, one)

    return UpdateRule(1, update)
