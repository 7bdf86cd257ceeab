"""Per-session state kernels reach through their :class:`BuildContext`: variables and RNGs.

A variable's storage is a :class:`VarSlot`, shared by ref variables (``VariableV2``, whose output
*is* the slot) and resource variables (``VarHandleOp``, whose output is the slot as a handle).
Slots live in the session, keyed as TF's resource manager keys them, so two ops naming the same
shared variable see the same storage and a new session starts uninitialized.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from gpugraph import errors

# References captured graphs keep to device arrays (id -> count): they are not "someone else
# holding the value" in the sense of VarSlot.writable's sharing rule.
_HELD: Counter[int] = Counter()
_rebinding = threading.local()


def hold(values: Iterable[Any]) -> list[int]:
    """Notes that a captured graph keeps one reference to each of ``values`` (a value listed
    twice, two) until :func:`release` gets the ids this returns.  (Ids, not the values: the
    note itself must not be one more reference.)"""
    ids = [id(v) for v in values]
    _HELD.update(ids)
    return ids


def release(ids: Iterable[int]) -> None:
    for key in ids:
        _HELD[key] -= 1
        if _HELD[key] <= 0:
            del _HELD[key]


@contextlib.contextmanager
def rebinding() -> Iterator[None]:
    """Assignments in the block give variables new buffers instead of writing into theirs (a
    restore does, so that a failed one can be undone by keeping the old buffers)."""
    previous = getattr(_rebinding, "on", False)
    _rebinding.on = True
    try:
        yield
    finally:
        _rebinding.on = previous


class VariableRebindError(RuntimeError):
    """A variable would get a new buffer while a graph reading it is being captured."""


class VarSlot:
    """The storage of one variable in one session.

    Attributes:
        name: the variable's name (its op name, or its ``shared_name``).
        dtype: numpy dtype.
        shape: static shape (None dims unknown), or None for unknown rank.
        value: the current array, or None while uninitialized.
        resource: True for resource variables (TF's error messages differ).
    """

    __slots__ = ("name", "dtype", "shape", "value", "resource", "device")

    def __init__(self, name: str, dtype: np.dtype, shape: Any, resource: bool, device: Any = None):
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.value: Any = None
        self.resource = resource
        self.device = device

    @property
    def initialized(self) -> bool:
        return self.value is not None

    def read(self, op: Any = None) -> Any:
        """The current value; FailedPreconditionError if the variable is uninitialized."""
        value = self.value
        if value is None:
            raise errors.FailedPreconditionError(None, op, self._uninitialized_message(),
                                                 {"variable": self.name})
        return value

    def _uninitialized_message(self) -> str:
        if self.resource:
            return (f"Could not find variable {self.name}. This could mean that the variable has "
                    "been deleted. In TF1, it can also mean the variable is uninitialized.")
        return f"Attempting to use uninitialized value {self.name}"

    def writable(self, op: Any = None) -> Any:
        """The current value, safe to update in place.

        Updates happen in place (no allocation per step), but a value someone else still holds
        (a fetched result, a tensor not yet consumed in this run, a view of it) must not change
        under them: then the slot gets a private copy first.  This is TF's own rule for
        resource variables (copy-on-write when the buffer is shared).
        """
        value = self.read(op)
        # References: self.value, `value`, getrefcount's argument (and captured graphs').
        refs = sys.getrefcount(value)
        owned = _owns_data(value) if self.device is None else self.device.owns(value)
        if (refs > 3 and refs > 3 + self._held(value)) or not owned:
            self._refuse_rebind("its value is shared (copy-on-write would move it)")
            value = np.array(value) if isinstance(value, np.generic) else value.copy()
            self.value = value
        return value

    def assign(self, value: Any) -> None:
        """Sets the value.  On a device that runs captured graphs, a value of the same shape and
        dtype is copied into the variable's buffer, which keeps its address."""
        old = self.value
        if self._graphs() is None or getattr(_rebinding, "on", False) or old is value:
            self.value = value
            return
        if (old is not None and old.shape == value.shape and old.dtype == value.dtype
                and sys.getrefcount(old) <= 3 + self._held(old) and self.device.owns(old)):
            self.device.xp.copyto(old, value)
            return
        self._refuse_rebind("the assigned value's shape or dtype differs, or its buffer is shared")
        # A buffer a captured graph writes must not become a variable's.
        self.value = value.copy() if id(value) in _HELD else value

    def _held(self, value: Any) -> int:
        """References captured graphs (and a capture in progress) keep to ``value``."""
        held = _HELD.get(id(value), 0)
        graphs = self._graphs()
        if graphs is not None and graphs.capturing():
            held += graphs.references_to(value)
        return held

    def _graphs(self) -> Any:
        return None if self.device is None else self.device.graphs()

    def _refuse_rebind(self, why: str) -> None:
        graphs = self._graphs()
        if graphs is not None and graphs.capturing():
            raise VariableRebindError(f"variable {self.name!r} would move to a new buffer ({why}) "
                                      "while a graph reading it is being captured")

    def __repr__(self) -> str:
        state = "uninitialized" if self.value is None else f"shape={tuple(self.value.shape)}"
        return f"<VarSlot {self.name!r} {self.dtype} {state}>"


def _owns_data(value: Any) -> bool:
    # (What Device.owns says for host memory; slots made without a device use it.)
    if isinstance(value, np.generic):
        return False
    return value.base is None and getattr(value.flags, "writeable", True)


class GraphStats:
    """How a session's captured graphs ran (:meth:`gpugraph.Session.cuda_graph_report`)."""

    def __init__(self) -> None:
        self.replays = 0
        self.eager_runs = 0
        self.captures = 0
        self.refused: list[dict[str, str]] = []

    def refuse(self, node: str, op: str, reason: str) -> None:
        self.refused.append({"node": node, "op": op, "reason": reason})

    def report(self) -> dict[str, Any]:
        return {"replays": self.replays, "eager_runs": self.eager_runs,
                "captures": self.captures, "refused": [dict(r) for r in self.refused]}


class SessionState:
    """Everything a session keeps between ``run`` calls."""

    def __init__(self) -> None:
        self.variables: dict[tuple, VarSlot] = {}
        self.rngs: dict[str, np.random.Generator] = {}
        self.resources: dict[tuple, Any] = {}  # iterators, queues: (kind, container, name) ->
        self.graph_stats = GraphStats()

    def variable(self, key: tuple, make: Any) -> VarSlot:
        """The slot under ``key``, created by ``make()`` on first use."""
        slot = self.variables.get(key)
        if slot is None:
            slot = self.variables[key] = make()
        return slot

    def resource(self, key: tuple, make: Any) -> Any:
        """The stateful resource (an iterator, a queue) under ``key``, created by ``make()`` on
        first use; it lives as long as the session, as TF's resource manager keeps it."""
        found = self.resources.get(key)
        if found is None:
            found = self.resources[key] = make()
        return found

    def rng(self, op_name: str, seed: int, seed2: int) -> np.random.Generator:
        """The random stream of one random op; it advances from run to run, as TF's does.

        ``seed == seed2 == 0`` means "no seed" in TF: a nondeterministic stream.
        """
        gen = self.rngs.get(op_name)
        if gen is None:
            seeded = seed != 0 or seed2 != 0
            gen = np.random.default_rng([seed & 0xFFFFFFFF, seed2 & 0xFFFFFFFF] if seeded else None)
            self.rngs[op_name] = gen
        return gen
