"""Optimizer updates: ``Apply*`` (ref variables) and ``ResourceApply*`` (resource variables).

Each update is TF's CPU formula (tensorflow/core/kernels/training_ops.cc), computed in the
variable's dtype with dtype-typed scalars, in place on the slot's buffer (copy-on-write when
someone still holds the old value; see :meth:`VarSlot.writable`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph import cuda, errors
from gpugraph.ops import cpu_conv, cpu_loops, cpu_threads
from gpugraph.ops.registry import BuildContext
from gpugraph.ops.registry import op as register
from gpugraph.ops.resources import VarSlot


def _kernel(ctx: BuildContext, num_state: int, update: Callable[..., None], grad_pos: int = -1,
            product_update: Callable[..., bool] | None = None):
    """A kernel reading ``num_state`` variable slots, then scalars and the gradient (at
    ``grad_pos`` among the non-state inputs), updating the slots in place.

    ``product_update(a, b, *slot arrays, *scalars)``: the update with its gradient ``a.T @ b``
    made inside it (see ``with_product``), or False where it does not serve those arrays.

    The ``SparseApply*`` forms of an op take ``indices`` right after the gradient and update
    only those rows of every slot: the same formula runs on the gathered rows (TF's sparse
    kernels write a few formulas differently, e.g. RMSProp's ``ms * rho + g*g * (1 - rho)``;
    results agree to about 1 ulp).
    """
    node = ctx.op
    resource = node.type.startswith("Resource")
    sparse = "Sparse" in node.type
    xp, device = ctx.xp, ctx.device
    names = [arg.name for arg in node.op_def.input_arg][num_state:]

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

    def with_product(a: Any, b: Any, *args: Any) -> Any:
        """The update with its gradient ``a.T @ b`` (a MatMul with ``transpose_a`` feeding it:
        a dense layer's weight gradient) made a block of rows at a time, each block applied
        while it is in cache, the blocks split over gpugraph's threads: the gradient never
        goes through memory, and the update does not read it back (W3's first dense layer,
        3.2M weights: the step's median fell 1.4-1.9 ms).  Only in a plan that owns the cores
        (elsewhere BLAS's threads make each block's product, and an MLP step got slower).
        ``args`` are the update's inputs with None for the gradient.  The
        bits of the two ops (each gradient element is the same dot product; the update is
        elementwise).  Returns (the update's output,), or None where this does not serve
        (the caller runs the two ops)."""
        shape = (a.shape[1], b.shape[1]) if a.ndim == 2 and b.ndim == 2 else None
        if sparse or xp is not np or not cpu_threads.owned() or shape is None or \
                shape[0] * shape[1] < _BLOCKED_MIN_ELEMENTS or \
                a.shape[0] != b.shape[0] or not cpu_loops.fits(a, b, same_shape=False) or \
                a.dtype != b.dtype or not all(_holds(slot, shape, a.dtype)
                                              for slot in args[:num_state]):
            return None
        rest = list(args[num_state:])
        for name, value in zip(names, rest, strict=True):
            if name != "grad" and getattr(value, "ndim", 0) != 0:
                return None
        slots: tuple[VarSlot, ...] = args[:num_state]
        # No block's product can read a row an earlier block updated: a or b being (a view of)
        # a slot's value means someone else holds that value, so writable() hands out a copy.
        arrays = [slot.writable(node) for slot in slots]
        if product_update is None or not product_update(
                a, b, *arrays, *(v for i, v in enumerate(rest) if i != grad_pos % len(rest))):
            one = arrays[0].dtype.type(1)
            _by_row_blocks(shape, one.dtype, _block_product(a, b),
                           lambda rows, grad: update(xp, one, *(x[rows] for x in arrays),
                                                     *_with(rest, grad_pos, grad)))
        return (None if resource else slots[0],)

    kernel.with_product = with_product  # for the plan's remapper (gpugraph/remap.py)
    kernel.grad_input = num_state + grad_pos % len(names)
    return kernel


# Smaller gradients are made and applied whole: the blocks' hand-offs would cost more than
# the gradient's trip through memory (W3's second dense layer, 10K weights: 0.3 ms, not 0.08).
_BLOCKED_MIN_ELEMENTS = 1 << 18


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


@register("ApplyGradientDescent", "ResourceApplyGradientDescent")
def _gradient_descent(ctx: BuildContext):
    gpu = cuda.elementwise("training", "apply_gradient_descent", ctx.xp)

    def update(xp, one, var, lr, grad):
        if gpu is not None and gpu.fits((var, grad), (lr,)):
            gpu((var, grad), (lr,))
            return
        var -= grad * lr

    return _kernel(ctx, 1, update)


@register("ApplyMomentum", "ResourceApplyMomentum", "SparseApplyMomentum",
          "ResourceSparseApplyMomentum")
def _momentum(ctx: BuildContext):
    nesterov = ctx.attr_or("use_nesterov", False)
    loop = cpu_loops.get("momentum", ctx.xp)
    gpu = cuda.elementwise("training", "apply_momentum", ctx.xp)

    def update(xp, one, var, accum, lr, grad, momentum):
        if gpu is not None and gpu.fits((var, accum, grad), (lr, momentum)):
            gpu((var, accum, grad), (lr, momentum), nesterov)
            return
        if loop is not None and cpu_loops.fits(var, accum, grad):
            scalar = var.dtype.type
            cpu_threads.elementwise(loop, (var, accum, grad), scalar(lr), scalar(momentum),
                                    nesterov)
            return
        accum *= momentum
        accum += grad
        if nesterov:
            var -= grad * lr + accum * momentum * lr
        else:
            var -= accum * lr

    def product_update(a, b, var, accum, lr, momentum) -> bool:
        """The update with its gradient ``a.T @ b`` made in the direct kernel's registers
        (:func:`cpu_conv.gather_gemm_momentum`): the gradient never exists in memory."""
        if loop is None or not cpu_threads.by_columns(np, a, b) or var.dtype != a.dtype or \
                not cpu_loops.fits(var, accum):
            return False
        scalar = var.dtype.type
        cpu_conv.gather_gemm_momentum(a, *cpu_threads.column_tables(a), b, var, accum,
                                      scalar(lr), scalar(momentum), nesterov)
        return True

    # inputs: (var, accum, lr, grad, momentum)
    return _kernel(ctx, 2, update, grad_pos=1, product_update=product_update)


@register("ApplyAdam", "ResourceApplyAdam")
def _adam(ctx: BuildContext):
    nesterov = ctx.attr_or("use_nesterov", False)
    loop = cpu_loops.get("adam", ctx.xp)
    gpu = cuda.elementwise("training", "apply_adam", ctx.xp)

    def update(xp, one, var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad):
        scalars = (beta1_power, beta2_power, lr, beta1, beta2, epsilon)
        if gpu is not None and gpu.fits((var, m, v, grad), scalars):
            gpu((var, m, v, grad), scalars, nesterov)
            return
        alpha = lr * xp.sqrt(one - beta2_power) / (one - beta1_power)
        if loop is not None and cpu_loops.fits(var, m, v, grad):
            scalar = var.dtype.type
            cpu_threads.elementwise(loop, (var, m, v, grad), scalar(alpha), scalar(one - beta1),
                                    scalar(one - beta2), scalar(epsilon), scalar(beta1),
                                    nesterov)
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


@register("ApplyRMSProp", "ResourceApplyRMSProp", "SparseApplyRMSProp",
          "ResourceSparseApplyRMSProp")
def _rms_prop(ctx: BuildContext):
    loop = cpu_loops.get("rms_prop", ctx.xp)

    def update(xp, one, var, ms, mom, lr, rho, momentum, epsilon, grad):
        if loop is not None and cpu_loops.fits(var, ms, mom, grad):
            scalar = var.dtype.type
            cpu_threads.elementwise(loop, (var, ms, mom, grad), scalar(lr), scalar(one - rho),
                                    scalar(momentum), scalar(epsilon))
            return
        ms += (xp.square(grad) - ms) * (one - rho)
        mom *= momentum
        mom += (grad * lr) / xp.sqrt(ms + epsilon)
        var -= mom

    return _kernel(ctx, 3, update)


@register("ApplyCenteredRMSProp", "ResourceApplyCenteredRMSProp", "SparseApplyCenteredRMSProp",
          "ResourceSparseApplyCenteredRMSProp")
def _centered_rms_prop(ctx: BuildContext):
    loop = cpu_loops.get("centered_rms_prop", ctx.xp)

    def update(xp, one, var, mg, ms, mom, lr, rho, momentum, epsilon, grad):
        if loop is not None and cpu_loops.fits(var, mg, ms, mom, grad):
            scalar = var.dtype.type
            cpu_threads.elementwise(loop, (var, mg, ms, mom, grad), scalar(lr),
                                    scalar(one - rho), scalar(momentum), scalar(epsilon))
            return
        ms += (xp.square(grad) - ms) * (one - rho)
        mg += (grad - mg) * (one - rho)
        denom = (ms - xp.square(mg)) + epsilon
        mom *= momentum
        mom += (grad * lr) / xp.sqrt(denom)
        var -= mom

    return _kernel(ctx, 4, update)


@register("ApplyAdagrad", "ResourceApplyAdagrad", "SparseApplyAdagrad",
          "ResourceSparseApplyAdagrad")
def _adagrad(ctx: BuildContext):
    update_slots = ctx.attr_or("update_slots", True)
    loop = cpu_loops.get("adagrad", ctx.xp)

    def update(xp, one, var, accum, lr, grad):
        if loop is not None and cpu_loops.fits(var, accum, grad):
            cpu_threads.elementwise(loop, (var, accum, grad), var.dtype.type(lr), one,
                                    bool(update_slots))
            return
        if update_slots:
            accum += xp.square(grad)
        var -= grad * lr * (one / xp.sqrt(accum))

    return _kernel(ctx, 2, update)


@register("ApplyAdagradV2", "ResourceApplyAdagradV2", "SparseApplyAdagradV2",
          "ResourceSparseApplyAdagradV2")
def _adagrad_v2(ctx: BuildContext):
    update_slots = ctx.attr_or("update_slots", True)

    def update(xp, one, var, accum, lr, epsilon, grad):
        if update_slots:
            accum += xp.square(grad)
        var -= grad * lr / (xp.sqrt(accum) + epsilon)

    return _kernel(ctx, 2, update)


@register("ApplyAdadelta", "ResourceApplyAdadelta", "SparseApplyAdadelta",
          "ResourceSparseApplyAdadelta")
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


@register("ApplyFtrl", "ResourceApplyFtrl", "SparseApplyFtrl", "ResourceSparseApplyFtrl",
          "ApplyFtrlV2", "ResourceApplyFtrlV2", "SparseApplyFtrlV2", "ResourceSparseApplyFtrlV2")
def _ftrl(ctx: BuildContext):
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

    return _kernel(ctx, 3, update, grad_pos=0)  # inputs: (var, accum, linear, grad, lr, ...)


def _proximal(xp, var, prox, rate, l1, l2, one):
    # sign(prox) * max(|prox| - rate * l1, 0) / (1 + l2 * rate), or prox / (1 + l2 * rate).
    if l1 > 0:
        var[...] = xp.sign(prox) * xp.maximum(xp.abs(prox) - rate * l1, var.dtype.type(0)) / (
            one + l2 * rate)
    else:
        var[...] = prox / (one + l2 * rate)


@register("ApplyProximalAdagrad", "ResourceApplyProximalAdagrad", "SparseApplyProximalAdagrad",
          "ResourceSparseApplyProximalAdagrad")
def _proximal_adagrad(ctx: BuildContext):
    def update(xp, one, var, accum, lr, l1, l2, grad):
        accum += xp.square(grad)
        rate = lr * (one / xp.sqrt(accum))
        _proximal(xp, var, var - grad * rate, rate, l1, l2, one)

    return _kernel(ctx, 2, update)


@register("ApplyProximalGradientDescent", "ResourceApplyProximalGradientDescent",
          "SparseApplyProximalGradientDescent", "ResourceSparseApplyProximalGradientDescent")
def _proximal_gradient_descent(ctx: BuildContext):
    def update(xp, one, var, alpha, l1, l2, grad):
        _proximal(xp, var, var - grad * alpha, alpha, l1, l2, one)

    return _kernel(ctx, 1, update)
