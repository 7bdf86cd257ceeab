"""Per-session state kernels reach through their :class:`BuildContext`: variables and RNGs.

A variable's storage is a :class:`VarSlot`, shared by ref variables (``VariableV2``, whose output
*is* the slot) and resource variables (``VarHandleOp``, whose output is the slot as a handle).
Slots live in the session, keyed as TF's resource manager keys them, so two ops naming the same
shared variable see the same storage and a new session starts uninitialized.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from gpugraph import errors


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
        # References: self.value, `value`, getrefcount's argument.
        if sys.getrefcount(value) > 3 or not _owns_data(value):
            value = np.array(value) if isinstance(value, np.generic) else value.copy()
            self.value = value
        return value

    def assign(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        state = "uninitialized" if self.value is None else f"shape={tuple(self.value.shape)}"
        return f"<VarSlot {self.name!r} {self.dtype} {state}>"


def _owns_data(value: Any) -> bool:
    # A view (e.g. an assigned Reshape output) shares its base's memory, and a numpy scalar
    # (what numpy returns for 0-d results) is immutable: both need a private array first.
    if isinstance(value, np.generic):
        return False
    return value.base is None and getattr(value.flags, "writeable", True)


class SessionState:
    """Everything a session keeps between ``run`` calls."""

    def __init__(self) -> None:
        self.variables: dict[tuple, VarSlot] = {}
        self.rngs: dict[str, np.random.Generator] = {}

    def variable(self, key: tuple, make: Any) -> VarSlot:
        """The slot under ``key``, created by ``make()`` on first use."""
        slot = self.variables.get(key)
        if slot is None:
            slot = self.variables[key] = make()
        return slot

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
