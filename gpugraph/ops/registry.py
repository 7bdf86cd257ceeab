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
    from gpugraph.devices.base import Device
    from gpugraph.framework.ops import Operation
    from gpugraph.state import SessionState

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


GENERIC = "generic"  # the device key of the bodies written against xp, for every device
_KERNELS: dict[tuple[str, str], KernelSpec] = {}


def op(*op_types: str, host_inputs: tuple[int, ...] | str = (),
       host_outputs: tuple[int, ...] | str = (), kind: str = "kernel", host_only: bool = False,
       device: str = GENERIC):
    """Registers a kernel builder for ``op_types`` (``@op("AddV2", "Add")``).

    ``device``: the device kind (``"cpu"``, ``"cuda"``, ...) this builder serves; by default the
    generic body, which every kind runs unless it registers its own.  An override keeps the
    generic registration's host inputs and outputs, kind and placement facts.
    """

    def register(build: Builder) -> Builder:
        for op_type in op_types:
            if device != GENERIC:
                generic = _KERNELS.get((op_type, GENERIC))
                if generic is None:
                    raise ValueError(f"No generic kernel for op type {op_type!r} to override "
                                     f"on {device!r} devices.")
                add_kernel(dataclasses.replace(generic, build=build), device)
                continue
            every_out, every_in = host_outputs == "all", host_inputs == "all"
            add_kernel(KernelSpec(op_type, build, frozenset(() if every_in else host_inputs),
                                  frozenset(() if every_out else host_outputs), kind, host_only,
                                  every_out, every_in))
        return build

    return register


def add_kernel(spec: KernelSpec, device: str = GENERIC) -> None:
    """Adds ``spec`` for ``device``; registering a *different* builder under a taken name is a
    bug."""
    old = _KERNELS.get((spec.op_type, device))
    if old is not None and old.build is not spec.build:
        raise ValueError(f"A kernel for op type {spec.op_type!r} on {device!r} is already "
                         f"registered ({old.build.__module__}.{old.build.__qualname__}).")
    _KERNELS[(spec.op_type, device)] = spec


def lookup(op_type: str, device: str = GENERIC) -> KernelSpec | None:
    """The kernel spec for ``op_type`` on device kind ``device``: the kind's own, else the
    generic one, else None."""
    spec = _KERNELS.get((op_type, device))
    return _KERNELS.get((op_type, GENERIC)) if spec is None else spec


def registered_op_types() -> list[str]:
    """Every op type with a kernel, sorted."""
    return sorted({op_type for op_type, _ in _KERNELS})


# --- fused chains ----------------------------------------------------------------------------
class _Unserved:
    """What a fused kernel returns where it does not serve the values of a run."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSERVED"


UNSERVED = _Unserved()
FusedBuilder = Callable[["FusedContext"], "Kernel | None"]
_FUSED: dict[tuple[tuple[str, ...], str], FusedBuilder] = {}


def fused(*chains: tuple[str, ...], device: str):
    """Registers a builder of one kernel for each chain of op types (``@fused(("Conv2D",
    "BiasAdd", "Relu"), device="cpu")``) that the plan's remapper may run in the chain's place
    on ``device`` kinds (:mod:`gpugraph.plan.remap` finds the chains).

    The builder gets a :class:`FusedContext` and returns the kernel, or None where it declines
    the chain.  The kernel takes the fused step's inputs and returns the last op's output, or
    :data:`UNSERVED` where it does not serve those values: the plan then runs the chain's own
    kernels, one by one (which also raise their own errors).  It must give their bits.
    """

    def register(build: FusedBuilder) -> FusedBuilder:
        for chain in chains:
            old = _FUSED.get((tuple(chain), device))
            if old is not None and old is not build:
                raise ValueError(f"A fused kernel for {chain} on {device!r} is already registered.")
            _FUSED[(tuple(chain), device)] = build
        return build

    return register


def lookup_fused(chain: tuple[str, ...], device: str) -> FusedBuilder | None:
    """The fused kernel builder for ``chain`` (op types) on device kind ``device``, or None."""
    return _FUSED.get((chain, device))


@dataclasses.dataclass
class FusedContext:
    """What a fused kernel's builder may know about the chain it replaces.

    Attributes:
        contexts: each member op's :class:`BuildContext` (for attrs), in chain order.
        plan_steps: every step of the plan being built.
    """

    contexts: list[BuildContext]
    plan_steps: list[Any]

    @property
    def device(self) -> Device:
        return self.contexts[0].device


class BuildContext:
    """What a builder may know about the node it builds a kernel for.

    Attributes:
        op: the :class:`~gpugraph.Operation`.
        device: the :class:`~gpugraph.devices.Device` the node was placed on.
        xp: the device's array module.
        state: the session's per-run-independent state (variables, random streams).
        functions: how function-calling kernels compile their bodies (the plan's
            :class:`~gpugraph.plan.functions.FunctionCompiler`; None outside a plan).
    """

    def __init__(self, op: Operation, device: Device, state: SessionState,
                 host: Device | None = None, max_iterations: int | None = None,
                 functions: Any = None):
        self.op = op
        self.device = device
        self.xp = device.xp
        self.state = state
        self.host = host  # the plan's CPU device (function bodies build sub-plans with it)
        self.max_iterations = max_iterations  # the plan's while-loop cap
        self.functions = functions

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
