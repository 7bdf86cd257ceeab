"""CPU kernels for optimizer updates: one-pass numba loops over every parameter, and a dense
layer's weight gradient made and applied inside its update (a fused chain).

The generic rules (``ops/training_ops.py``) take ~10 passes over every parameter; the loops
here take one, with the same bits, and the rules run where a loop does not serve the arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph.devices.cpu import conv as cpu_conv
from gpugraph.devices.cpu import loops as cpu_loops
from gpugraph.devices.cpu import threads as cpu_threads
from gpugraph.ops import training_ops
from gpugraph.ops.registry import UNSERVED, BuildContext, FusedContext, fused, op
from gpugraph.ops.training_ops import RULES, UpdateRule, input_names, update_kernel
from gpugraph.state import VarSlot


def _momentum(ctx: BuildContext, rule: UpdateRule) -> Callable[..., None] | None:
    loop, nesterov = cpu_loops.get("momentum", np), ctx.attr_or("use_nesterov", False)
    if loop is None:
        return None

    def update(xp, one, var, accum, lr, grad, momentum):
        if not cpu_loops.fits(var, accum, grad):
            return rule.update(xp, one, var, accum, lr, grad, momentum)
        scalar = var.dtype.type
        return cpu_threads.elementwise(loop, (var, accum, grad), scalar(lr), scalar(momentum),
                                       nesterov)

    return update


def _adam(ctx: BuildContext, rule: UpdateRule) -> Callable[..., None] | None:
    loop, nesterov = cpu_loops.get("adam", np), ctx.attr_or("use_nesterov", False)
    if loop is None:
        return None

    def update(xp, one, var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad):
        if not cpu_loops.fits(var, m, v, grad):
            return rule.update(xp, one, var, m, v, beta1_power, beta2_power, lr, beta1, beta2,
                               epsilon, grad)
        alpha = training_ops.adam_step_size(xp, one, beta1_power, beta2_power, lr)
        scalar = var.dtype.type
        return cpu_threads.elementwise(loop, (var, m, v, grad), scalar(alpha),
                                       scalar(one - beta1), scalar(one - beta2),
                                       scalar(epsilon), scalar(beta1), nesterov)

    return update


def _rms_prop(ctx: BuildContext, rule: UpdateRule) -> Callable[..., None] | None:
    loop = cpu_loops.get("rms_prop", np)
    if loop is None:
        return None

    def update(xp, one, var, ms, mom, lr, rho, momentum, epsilon, grad):
        if not cpu_loops.fits(var, ms, mom, grad):
            return rule.update(xp, one, var, ms, mom, lr, rho, momentum, epsilon, grad)
        scalar = var.dtype.type
        return cpu_threads.elementwise(loop, (var, ms, mom, grad), scalar(lr),
                                       scalar(one - rho), scalar(momentum), scalar(epsilon))

    return update


def _centered_rms_prop(ctx: BuildContext, rule: UpdateRule) -> Callable[..., None] | None:
    loop = cpu_loops.get("centered_rms_prop", np)
    if loop is None:
        return None

    def update(xp, one, var, mg, ms, mom, lr, rho, momentum, epsilon, grad):
        if not cpu_loops.fits(var, mg, ms, mom, grad):
            return rule.update(xp, one, var, mg, ms, mom, lr, rho, momentum, epsilon, grad)
        scalar = var.dtype.type
        return cpu_threads.elementwise(loop, (var, mg, ms, mom, grad), scalar(lr),
                                       scalar(one - rho), scalar(momentum), scalar(epsilon))

    return update


def _adagrad(ctx: BuildContext, rule: UpdateRule) -> Callable[..., None] | None:
    loop, update_slots = cpu_loops.get("adagrad", np), ctx.attr_or("update_slots", True)
    if loop is None:
        return None

    def update(xp, one, var, accum, lr, grad):
        if not cpu_loops.fits(var, accum, grad):
            return rule.update(xp, one, var, accum, lr, grad)
        return cpu_threads.elementwise(loop, (var, accum, grad), var.dtype.type(lr), one,
                                       bool(update_slots))

    return update


# The rules with a one-pass loop: op types of the generic rule -> the loop's update.
_LOOPS = {training_ops.momentum: _momentum, training_ops.adam: _adam,
          training_ops.rms_prop: _rms_prop, training_ops.centered_rms_prop: _centered_rms_prop,
          training_ops.adagrad: _adagrad}


def cpu_rule(ctx: BuildContext) -> UpdateRule:
    """The op's update rule with its one-pass loop where it has one."""
    rule = RULES[ctx.op.type](ctx)
    make = _LOOPS.get(RULES[ctx.op.type])
    update = None if make is None else make(ctx, rule)
    return rule if update is None else UpdateRule(rule.num_state, update, rule.grad_pos)


def _register_loops() -> None:
    for op_type, build in RULES.items():
        if build in _LOOPS:
            op(op_type, device="cpu")(lambda ctx: update_kernel(ctx, cpu_rule(ctx)))


_register_loops()


# --- a dense layer's weight gradient inside its update ------------------------------------------
# Smaller gradients are made and applied whole: the blocks' hand-offs would cost more than
# the gradient's trip through memory (W3's second dense layer, 10K weights: 0.3 ms, not 0.08).
_BLOCKED_MIN_ELEMENTS = 1 << 18


def _product_momentum(ctx: BuildContext) -> Callable[..., bool]:
    """Momentum with its gradient ``a.T @ b`` made in the direct kernel's registers
    (:func:`cpu_conv.gather_gemm_momentum`): the gradient never exists in memory.  False where
    that kernel does not serve the arrays."""
    loop, nesterov = cpu_loops.get("momentum", np), ctx.attr_or("use_nesterov", False)

    def product_update(a, b, var, accum, lr, momentum) -> bool:
        if loop is None or not cpu_threads.by_columns(np, a, b) or var.dtype != a.dtype or \
                not cpu_loops.fits(var, accum):
            return False
        scalar = var.dtype.type
        cpu_conv.gather_gemm_momentum(a, *cpu_threads.column_tables(a), b, var, accum,
                                      scalar(lr), scalar(momentum), nesterov)
        return True

    return product_update


def _product_into_update(fctx: FusedContext):
    """The update with its gradient ``a.T @ b`` (a MatMul with ``transpose_a`` feeding it: a
    dense layer's weight gradient) made a block of rows at a time, each block applied while it
    is in cache, the blocks split over gpugraph's threads: the gradient never goes through
    memory, and the update does not read it back (W3's first dense layer, 3.2M weights: the
    step's median fell 1.4-1.9 ms).  Only in a plan that owns the cores (elsewhere BLAS's
    threads make each block's product, and an MLP step got slower).  The bits of the two ops
    (each gradient element is the same dot product; the update is elementwise).

    The kernel takes the MatMul's inputs and the update's, with None for the gradient."""
    ctx = fctx.contexts[-1]
    node = ctx.op
    if "Sparse" in node.type or not fctx.device.owns_cores(fctx.plan_steps):
        return None
    rule = cpu_rule(ctx)
    num_state, update, grad_pos = rule.num_state, rule.update, rule.grad_pos
    names = input_names(node)[num_state:]
    product_update = _product_momentum(ctx) if RULES[node.type] is training_ops.momentum \
        else None
    resource = node.type.startswith("Resource")

    def kernel(a: Any, b: Any, *args: Any) -> Any:
        shape = (a.shape[1], b.shape[1]) if a.ndim == 2 and b.ndim == 2 else None
        if not cpu_threads.owned() or shape is None or \
                shape[0] * shape[1] < _BLOCKED_MIN_ELEMENTS or \
                a.shape[0] != b.shape[0] or not cpu_loops.fits(a, b, same_shape=False) or \
                a.dtype != b.dtype or not all(_holds(slot, shape, a.dtype)
                                              for slot in args[:num_state]):
            return UNSERVED
        rest = list(args[num_state:])
        for name, value in zip(names, rest, strict=True):
            if name != "grad" and getattr(value, "ndim", 0) != 0:
                return UNSERVED
        slots: tuple[VarSlot, ...] = args[:num_state]
        # No block's product can read a row an earlier block updated: a or b being (a view of)
        # a slot's value means someone else holds that value, so writable() hands out a copy.
        arrays = [slot.writable(node) for slot in slots]
        if product_update is None or not product_update(
                a, b, *arrays, *(v for i, v in enumerate(rest) if i != grad_pos % len(rest))):
            one = arrays[0].dtype.type(1)
            _by_row_blocks(shape, one.dtype, _block_product(a, b),
                           lambda rows, grad: update(np, one, *(x[rows] for x in arrays),
                                                     *_with(rest, grad_pos, grad)))
        return None if resource else slots[0]

    return kernel


def _register_products() -> None:
    for op_type in RULES:
        if "Sparse" not in op_type:
            fused(("MatMul", op_type), device="cpu")(_product_into_update)


_register_products()


def _block_product(a: np.ndarray, b: np.ndarray) -> Callable[[slice, np.ndarray], Any]:
    """``product(rows, out)``: ``out = a[:, rows].T @ b``, by the kernel a separate MatMul
    would use (:func:`cpu_threads.by_columns`), so the bits are the same."""
    if cpu_threads.by_columns(np, a, b):
        return lambda rows, grad: cpu_threads.product_by_columns(a, b, rows, grad)
    return lambda rows, grad: np.matmul(a[:, rows].T, b, out=grad)


def _holds(slot: Any, shape: tuple, dtype: np.dtype) -> bool:
    value = slot.value if isinstance(slot, VarSlot) else None
    return type(value) is np.ndarray and value.shape == shape and value.dtype == dtype and \
        value.flags.c_contiguous


def _with(values: list, position: int, value: Any) -> list:
    out = list(values)
    out[position] = value
    return out


def _by_row_blocks(shape: tuple, dtype: np.dtype, product: Callable[..., Any],
                   apply: Callable[..., None]) -> None:
    """``product(rows, out)`` then ``apply(rows, out)`` for blocks of rows (about four per
    thread, interleaved), each thread with its own gradient buffer."""
    threads = cpu_loops.threads()
    step = max(16, -(-shape[0] // (4 * threads)))
    blocks = [slice(s, min(shape[0], s + step)) for s in range(0, shape[0], step)]
    threads = min(threads, len(blocks))

    def work(first: int) -> None:
        scratch = np.empty((step, shape[1]), dtype=dtype)
        with cpu_threads.inline():
            for rows in blocks[first::threads]:
                grad = scratch[:rows.stop - rows.start]
                product(rows, grad)
                apply(rows, grad)

    cpu_loops.in_parallel([lambda t=t: work(t) for t in range(threads)])
