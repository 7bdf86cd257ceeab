"""The plan's remapper: chains of ops that run as one kernel, as Grappler's remapper does.

Before a session runs a graph on the CPU, TF's Grappler rewrites Conv2D -> BiasAdd -> Relu
into one ``_FusedConv2D`` node whose kernel adds the bias and applies the Relu while the
convolution's output is still in cache; the two extra passes over a large activation (W3's
first convolution: 6.4 MB each) disappear.  This pass does the same on a plan's steps, and one
more rewrite of the same kind for the gradient of MaxPool(Relu(.)):

* ``Conv2D -> BiasAdd [-> Relu]`` (on the CPU: the direct convolution kernel with an
  epilogue);
* ``BiasAdd -> Relu`` elsewhere (a dense layer's activation; on the CPU one loop);
* ``MaxPoolGrad -> ReluGrad`` (ReluGrad's features being MaxPoolGrad's pooled input, which
  is the Relu's output; on the CPU one pass of the tiled MaxPoolGrad loop that also applies
  the Relu mask);
* ``MatMul(transpose_a) -> Apply*`` (a dense layer's weight gradient, read only by its
  optimizer update; on the CPU the gradient is made and applied a block of rows at a time,
  so it never goes through memory).  TF does not do this one.

This module finds the chains; the kernels that run them are registrations of the device kind
(:func:`gpugraph.ops.registry.fused`, in ``ops/<kind>/``).  Where a kind registers none for a
chain, or its builder declines, the ops run one by one.  A chain is fused only where nothing
else can tell: each inner value has one reader and is neither fetched nor fed, and all steps
are plain kernels on the same device (or, between a weight gradient and its update,
``tf.tuple``'s Identity steps).  The fused
step takes the last op's place (as ``_FusedConv2D`` takes the Relu node's name in TF): every
value and control input any member waits for precedes it there.  Its results have the bits
of the separate ops; where the fused kernel does not serve the values of a run (another dtype
or layout, a bad shape), it runs the original kernels one by one, which also raise their own
errors.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gpugraph.ops import registry
from gpugraph.ops.registry import UNSERVED, FusedContext



def remap(steps: list[Any], keep: set[int], make_step: Any) -> list[Any]:
    """Returns ``steps`` with fusable chains replaced by fused steps.

    Args:
        steps: the plan's steps, in execution order.
        keep: slots that must stay materialised (fetched or fed).
        make_step: ``make_step(chain, inputs, fn)`` builds the fused step, which replaces the
            chain's last step.
    """
    chains = _Chains(steps, keep)
    replaced: dict[int, Any] = {}
    removed: set[int] = set()
    for step in steps:
        match = _PATTERNS.get(step.op.type)
        if match is None or id(step) in removed or not chains.plain(step):
            continue
        fused = match(step, chains)
        if fused is not None:
            chain, inputs, fn = fused
            replaced[id(chain[-1])] = make_step(chain, inputs, fn)
            removed.update(id(s) for s in chain[:-1])
    if not replaced:
        return steps
    return [replaced.get(id(s), s) for s in steps if id(s) not in removed]


class _Chains:
    """Who reads which slot, for finding fusable chains."""

    def __init__(self, steps: list[Any], keep: set[int]):
        self.keep = keep
        self.steps = steps
        self.readers = Counter(i for s in steps for i in (*s.inputs, *s.tokens))
        self.reader: dict[int, Any] = {}
        for s in steps:
            for slot in s.inputs:
                self.reader[slot] = s

    def plain(self, step: Any, outputs: tuple[int, ...] = (1,)) -> bool:
        """A kernel step with one output (or a count in ``outputs``), all used: no
        dead-awareness, refs or tokens."""
        return (step.kind == "kernel" and step.token < 0 and not step.tokens and not step.deref
                and not step.dead_aware and len(step.outputs) in outputs
                and all(o >= 0 for o in step.outputs))

    def kernel(self, chain: list[Any], members: list[Any] | None = None) -> Any | None:
        """The fused kernel the chain's device kind registers for the op types of ``chain``,
        built for ``members`` (default: the chain), or None."""
        members = chain if members is None else members
        build = registry.lookup_fused(tuple(s.op.type for s in chain), chain[0].device.kind)
        if build is None:
            return None
        device = chain[0].device
        # For attrs only: a fused kernel gets its slots and values as arguments.
        contexts = [registry.BuildContext(s.op, device, None) for s in members]
        return build(FusedContext(contexts, self.steps))

    def next(self, step: Any, op_type: str | None, position: int,
             outputs: tuple[int, ...] = (1,)) -> Any | None:
        """The one step that reads ``step``'s output, if it is a plain ``op_type`` (any type
        for None) step on the same device reading it at input ``position``, and the value is
        not kept."""
        slot = step.outputs[0]
        if self.readers[slot] != 1 or slot in self.keep:
            return None
        after = self.reader.get(slot)
        if after is None or op_type not in (None, after.op.type) or \
                not self.plain(after, outputs) or \
                after.device is not step.device or len(after.inputs) <= position or \
                after.inputs[position] != slot:
            return None
        return after

    def identities_after(self, step: Any) -> list[Any]:
        """The Identity steps (aliases) ``step``'s output passes through, each the one reader
        of an unkept value, up to the first step that is not one."""
        found = []
        while True:
            slot = step.outputs[0]
            after = self.reader.get(slot)
            if after is None or after.kind != "alias" or self.readers[slot] != 1 or \
                    slot in self.keep or after.token >= 0 or after.tokens or \
                    after.dead_aware or len(after.outputs) != 1 or after.outputs[0] < 0 or \
                    after.device is not step.device:
                return found
            found.append(after)
            step = after


def _channels_last(step: Any) -> bool:
    try:
        return step.op.get_attr("data_format") in (b"NHWC", "NHWC")
    except (ValueError, KeyError):
        return True  # TF's default


def _conv_bias_relu(conv: Any, chains: _Chains) -> tuple | None:
    add = chains.next(conv, "BiasAdd", 0)
    if add is None or not _channels_last(conv) or not _channels_last(add):
        return None
    relu = chains.next(add, "Relu", 0)
    chain = [conv, add] if relu is None else [conv, add, relu]
    kernel = chains.kernel(chain)
    if kernel is None and relu is not None:  # the kind may fuse the first two only
        chain = [conv, add]
        kernel = chains.kernel(chain)
    if kernel is None:
        return None
    conv_fn, add_fn = conv.fn, add.fn
    relu_fn = chain[2].fn if len(chain) == 3 else None

    def fused(x: Any, w: Any, bias: Any) -> Any:
        out = kernel(x, w, bias)
        if out is UNSERVED:
            out = add_fn(conv_fn(x, w), bias)
            if relu_fn is not None:
                out = relu_fn(out)
        return out

    return chain, (*conv.inputs, add.inputs[1]), fused


def _bias_add_relu(add: Any, chains: _Chains) -> tuple | None:
    relu = chains.next(add, "Relu", 0)
    if relu is None or not _channels_last(add):
        return None
    kernel = chains.kernel([add, relu])
    if kernel is None:
        return None
    add_fn, relu_fn = add.fn, relu.fn

    def fused(value: Any, bias: Any) -> Any:
        out = kernel(value, bias)
        return relu_fn(add_fn(value, bias)) if out is UNSERVED else out

    return [add, relu], add.inputs, fused


def _max_pool_relu_grad(pool_grad: Any, chains: _Chains) -> tuple | None:
    grad = chains.next(pool_grad, "ReluGrad", 0)
    if grad is None or grad.inputs[1] != pool_grad.inputs[0] or \
            not _channels_last(pool_grad):
        return None
    kernel = chains.kernel([pool_grad, grad])
    if kernel is None:
        return None
    pool_fn, grad_fn = pool_grad.fn, grad.fn

    def fused(x: Any, y: Any, dy: Any) -> Any:
        out = kernel(x, y, dy)
        return grad_fn(pool_fn(x, y, dy), x) if out is UNSERVED else out

    return [pool_grad, grad], pool_grad.inputs, fused


def _grad_input(op: Any) -> int | None:
    """The position of an optimizer update's gradient input (``grad``, or GradientDescent's
    ``delta``, in its OpDef), or None."""
    op_def = op.op_def
    names = [] if op_def is None else [arg.name for arg in op_def.input_arg]
    for name in ("grad", "delta"):
        if name in names:
            return names.index(name)
    return None


def _product_into_update(product: Any, chains: _Chains) -> tuple | None:
    if not product.op.get_attr("transpose_a") or product.op.get_attr("transpose_b"):
        return None
    identities = chains.identities_after(product)  # tf.tuple's control_dependency
    last = identities[-1] if identities else product
    after = chains.reader.get(last.outputs[0])
    at = None if after is None else _grad_input(after.op)
    if at is None:
        return None
    update = chains.next(last, None, at, outputs=(0, 1))  # ResourceApply*: no output
    if update is None:
        return None
    kernel = chains.kernel([product, update])
    if kernel is None:
        return None
    product_fn, update_fn = product.fn, update.fn

    def fused(a: Any, b: Any, *rest: Any) -> Any:
        args = (*rest[:at], None, *rest[at:])
        done = kernel(a, b, *args)
        if done is UNSERVED:
            return update_fn(*args[:at], product_fn(a, b), *args[at + 1:])
        return done

    inputs = (*product.inputs, *update.inputs[:at], *update.inputs[at + 1:])
    return [product, *identities, update], inputs, fused


# The first op of each chain -> the function that matches the rest: (chain, inputs, kernel).
_PATTERNS = {"Conv2D": _conv_bias_relu, "BiasAdd": _bias_add_relu,
             "MaxPoolGrad": _max_pool_relu_grad, "MatMul": _product_into_update}
