"""The kernel registry: one registered builder per TF op type (several names where TF aliases).

Kernels are two-phase, as in tf2jax: a *builder* runs once when a plan is built, reads and
checks the node's attrs through a :class:`BuildContext`, and returns the *kernel*, a callable
that sees only arrays.  Executing a plan therefore does no attr decoding or name lookups.

A kernel takes the node's inputs positionally and returns the single output of a one-output op
as is, or a tuple/list with one entry per output (the executor unpacks by the op's output
count).  Kernels are written once against ``ctx.xp`` (numpy or CuPy), so the same body runs on
every device.  Inputs that TF keeps in host memory (shapes, axes, sizes) are declared with
``host_inputs``; the plan hands those to the kernel as numpy values on every device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from gpugraph import dtypes
from gpugraph.framework.tensor_shape import TensorShape
from gpugraph.io.tensor import shape_from_proto

if TYPE_CHECKING:
    from gpugraph.devices import Device
    from gpugraph.framework.ops import Operation
    from gpugraph.ops.resources import SessionState

Kernel = Callable[..., Any]
Builder = Callable[["BuildContext"], Kernel]


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """How to build the kernel of one op type."""

    op_type: str
    build: Builder
    host_inputs: frozenset[int] = frozenset()
    host_outputs: frozenset[int] = frozenset()
    # "kernel": run every time; "constant": no inputs and the same value for the whole session
    # (Const, a variable's storage), computed once when the plan is built; "alias": returns its
    # first input unchanged (Identity), so the plan forwards the value without a call;
    # "noop": does nothing (NoOp), only its control edges matter.
    kind: str = "kernel"
    host_only: bool = False  # runs on the CPU only (checkpoint I/O, string ops), as in TF
    all_host_outputs: bool = False  # every output is host memory (ShapeN, ConcatOffset)
    all_host_inputs: bool = False  # every input is host memory (ConcatOffset)


_KERNELS: dict[str, KernelSpec] = {}


def op(*op_types: str, host_inputs: tuple[int, ...] | str = (),
       host_outputs: tuple[int, ...] | str = (), kind: str = "kernel", host_only: bool = False):
    """Registers a kernel builder for ``op_types`` (``@op("AddV2", "Add")``)."""

    def register(build: Builder) -> Builder:
        for op_type in op_types:
            every_out, every_in = host_outputs == "all", host_inputs == "all"
            add_kernel(KernelSpec(op_type, build, frozenset(() if every_in else host_inputs),
                                  frozenset(() if every_out else host_outputs), kind, host_only,
                                  every_out, every_in))
        return build

    return register


def add_kernel(spec: KernelSpec) -> None:
    """Adds ``spec``; registering a *different* builder under a taken name is a bug."""
    old = _KERNELS.get(spec.op_type)
    if old is not None and old.build is not spec.build:
        raise ValueError(f"A kernel for op type {spec.op_type!r} is already registered "
                         f"({old.build.__module__}.{old.build.__qualname__}).")
    _KERNELS[spec.op_type] = spec


def lookup(op_type: str) -> KernelSpec | None:
    """The kernel spec for ``op_type``, or None."""
    return _KERNELS.get(op_type)


def registered_op_types() -> list[str]:
    """Every op type with a kernel, sorted."""
    return sorted(_KERNELS)


class BuildContext:
    """What a builder may know about the node it builds a kernel for.

    Attributes:
        op: the :class:`~gpugraph.Operation`.
        device: the :class:`~gpugraph.devices.Device` the node was placed on.
        xp: the device's array module.
        state: the session's per-run-independent state (variables, random streams).
    """

    def __init__(self, op: Operation, device: Device, state: SessionState,
                 host: Device | None = None, max_iterations: int | None = None):
        self.op = op
        self.device = device
        self.xp = device.xp
        self.state = state
        self.host = host  # the plan's CPU device (function bodies build sub-plans with it)
        self.max_iterations = max_iterations  # the plan's while-loop cap

    @property
    def name(self) -> str:
        return self.op.name

    def attr(self, name: str) -> Any:
        """The decoded attr (TF's ``get_attr`` types); DTypes come back as numpy dtypes."""
        value = self.op.get_attr(name)
        if isinstance(value, dtypes.DType):
            return np.dtype(value.as_numpy_dtype) if value.is_numpy_compatible else value
        if isinstance(value, list) and value and isinstance(value[0], dtypes.DType):
            return [np.dtype(v.as_numpy_dtype) for v in value]
        if hasattr(value, "unknown_rank") and hasattr(value, "dim"):  # TensorShapeProto
            return TensorShape(shape_from_proto(value))
        return value

    def attr_or(self, name: str, default: Any) -> Any:
        """``attr(name)``, or ``default`` when the node and its OpDef lack it."""
        try:
            return self.attr(name)
        except ValueError:
            return default

    def out_dtype(self, index: int = 0) -> np.dtype:
        """numpy dtype of output ``index`` (ref types map to their base)."""
        return np.dtype(self.op.outputs[index].dtype.base_dtype.as_numpy_dtype)

    def in_dtype(self, index: int = 0) -> np.dtype:
        return np.dtype(self.op.inputs[index].dtype.base_dtype.as_numpy_dtype)

    @property
    def num_inputs(self) -> int:
        return len(self.op.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.op.outputs)


class _Dead:
    """The value of a tensor on the untaken side of a ``Switch`` (TF's "dead" tensors)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEAD"


DEAD = _Dead()

# Ops that receive dead inputs instead of dying with them (they pick the live one).
DEAD_INPUT_OPS = frozenset({"Merge", "RefMerge"})


def dims_text(shape: Any) -> str:
    """A shape as TF's C++ messages print it: ``[2,3]``."""
    return "[" + ",".join(str(int(d)) for d in shape) + "]"
