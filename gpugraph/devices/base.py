"""The device protocol: what a plan needs from a place where kernels run.

A :class:`Device` is what placement hands each node: its canonical TF name, its array module
``xp`` (numpy, CuPy, or numpy bound to a virtual GPU), ``to_device``/``to_host``, and the hooks
through which the plan reaches a backend without knowing it (:meth:`Device.plan_context`,
:meth:`Device.fuser`, :meth:`Device.open_session`).  Each kind lives in its own sub-package
(``devices/cpu``, ``devices/cuda``, ``devices/virtual``); nothing above this layer imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

LOCAL_PREFIX = "/job:localhost/replica:0/task:0/device:"

# What CuPy's ufunc.at can do (cupy/_core/_routines_indexing.pyx _scatter_op_single): only
# these ufuncs, for these dtypes; anything else raises NotImplementedError there.  CUDA devices
# report it as their ``at_dtypes``, and virtual GPUs enforce it, so CI catches a kernel that
# would fail on a real GPU.
CUPY_AT_DTYPES: Mapping[str, frozenset[str]] = {
    "add": frozenset({"int32", "float16", "float32", "float64", "uint32", "uint64"}),
    # (CuPy 14's float64 maximum.at/minimum.at round through float32 on an H100: host instead)
    "maximum": frozenset({"int32", "float32", "uint32", "uint64"}),
    "minimum": frozenset({"int32", "float32", "uint32", "uint64"}),
}


def owns_memory(value: Any) -> bool:
    """Whether ``value`` is a whole writable buffer (not a view, not an immutable numpy scalar),
    so that updating it in place changes no other array."""
    if isinstance(value, np.generic):
        return False
    return value.base is None and getattr(value.flags, "writeable", True)


def host_value(value: Any) -> Any:
    """``value`` on the host: a CuPy array copied there (``.get()``), anything else as it is."""
    get = getattr(value, "get", None)
    return get() if callable(get) else value


class Device:
    """A place where kernels run.

    Attributes:
        name: canonical TF device name, e.g. ``/job:localhost/replica:0/task:0/device:CPU:0``.
        device_type: ``"CPU"`` or ``"GPU"``.
        index: the device number within its type.
        xp: the array module kernels use on this device.
        kind: the backend, ``"cpu"``, ``"cuda"`` or ``"virtual"``: the key kernels are
            registered under (:func:`gpugraph.ops.registry.op`'s ``device=``).
        at_dtypes: for each ufunc, the dtypes whose ``xp.<ufunc>.at`` runs on the device;
            None where every ufunc.at runs (numpy).
    """

    device_type = "CPU"
    kind = "cpu"
    xp: Any = np
    at_dtypes: Mapping[str, frozenset[str]] | None = None

    def __init__(self, index: int = 0):
        self.index = index
        self.name = f"{LOCAL_PREFIX}{self.device_type}:{index}"
        self.short_name = f"{self.device_type}:{index}"

    @property
    def is_host(self) -> bool:
        """Whether this device's arrays are host (numpy) memory."""
        return True

    def to_device(self, value: Any) -> Any:
        """A host (numpy) value as this device's array type."""
        return value

    def to_host(self, value: Any) -> Any:
        """A value of this device as a numpy value."""
        return value

    def copy_from(self, source: Device, value: Any) -> Any:
        """``value``, an array of ``source``, as this device's array (through the host unless
        the two devices know a direct path)."""
        return self.to_device(source.to_host(value))

    def synchronize(self) -> None:
        """Waits until queued work on this device is done (no-op on the CPU)."""

    def run_context(self) -> Any:
        """A context manager entered around every kernel placed here (None if not needed)."""
        return None

    def checked_kernel(self, fn: Any, node: str, host_inputs: frozenset[int],
                       host_outputs: frozenset[int]) -> Any:
        """``fn`` as this device runs it (virtual GPUs check where its values live)."""
        return fn

    def open_session(self) -> None:
        """Called once by each session that uses this device, before its first run."""

    def plan_context(self, steps: Sequence[Any]) -> Callable[[], Any] | None:
        """A factory of the context manager a plan with ``steps`` runs inside (every run), or
        None.  The CPU sets TF's floating-point environment and hands its cores to gpugraph's
        threads there."""
        return None

    def owns_cores(self, steps: Sequence[Any]) -> bool:
        """Whether a plan with ``steps`` keeps this device's cores for its own threads while
        it runs (fused kernels that split work over those threads serve only then)."""
        return False

    def owns(self, value: Any) -> bool:
        """Whether ``value``, an array of this device, is a whole buffer nothing else views
        (a variable may then be updated in place)."""
        return owns_memory(value)

    def graphs(self) -> Graphs | None:
        """This device's stream-capture hooks when plans should run on it as captured graphs
        (CUDA graphs), else None."""
        return None

    def renumbered(self, index: int) -> Device:
        """This device shown under another number (a session shown some GPUs only)."""
        raise NotImplementedError(f"{self.name} cannot be renumbered")

    def share_cores(self, processes: int) -> None:
        """This machine's cores serve ``processes`` processes (data-parallel ranks): a device
        that runs threads on them takes its share."""

    def collectives(self, world: Any) -> Any | None:
        """This device's sums and gathers over the ranks of a data-parallel ``world``
        (``start_sum``, ``finish_sum``, ``gather_rows``: see
        :class:`gpugraph.distributed.collectives.Collectives`), or None to go through the
        host and MPI."""
        return None

    def fuser(self, dtype: np.dtype) -> Any | None:
        """This device's compiler of fused elementwise trees for ``dtype`` (its ``templates``
        and ``compile(expression, n)``, or ``compile_program(lines, n)`` with ``max_depth =
        None``: see :mod:`gpugraph.plan.fusion`), or None where this device does not fuse (the
        ops then run one by one)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Graphs:
    """What a device offers for running plan segments as captured graphs (CUDA graphs).

    :mod:`gpugraph.plan.graphs` runs a segment eagerly once per signature, then captures it:
    it copies the segment's device inputs into buffers from :meth:`static_copy`, calls
    :meth:`capture` with the segment, launches the graph it returns, and on later runs copies
    new inputs into those buffers (:meth:`copy_into`) and launches again.
    """

    def is_buffer(self, value: Any) -> bool:
        """Whether ``value`` is an array in this device's memory."""
        raise NotImplementedError

    def static_copy(self, value: Any) -> Any:
        """A new buffer holding ``value``, kept as long as the graph that reads it."""
        raise NotImplementedError

    def copy_into(self, target: Any, value: Any) -> None:
        """Writes ``value`` into the static buffer ``target`` (before a launch)."""
        raise NotImplementedError

    def capture(self, fn: Callable[[], Any]) -> tuple[Any, Any]:
        """(graph, result): ``fn`` recorded, not run; ``graph.launch()`` runs it, writing into
        the arrays of ``result``; ``graph.references()`` lists the arrays it keeps."""
        raise NotImplementedError

    def refusal(self, error: BaseException) -> str | None:
        """Why ``error``, raised while capturing, means the operation cannot be captured (None
        when it is an ordinary failure)."""
        raise NotImplementedError

    def capturing(self) -> bool:
        """Whether a capture is in progress on the calling thread."""
        raise NotImplementedError

    def references_to(self, value: Any) -> int:
        """References the capture in progress keeps to ``value`` (0 where it keeps none)."""
        return 0
