"""Placement: which :class:`~gpugraph.devices.Device` each node of a plan runs on.

Today every node runs on the CPU; honouring ``NodeDef.device`` (``GPU:N`` on CuPy or on
numpy-backed virtual GPUs, with a report of every assignment that can't be met) replaces
:func:`place` without touching the plan, which already treats the device as per-node data.
"""

from __future__ import annotations

from collections.abc import Iterable

from gpugraph.devices import Device
from gpugraph.framework.ops import Operation


def place(ops: Iterable[Operation], devices: list[Device]) -> dict[Operation, Device]:
    """Assigns each op a device (the first CPU, until device placement lands)."""
    cpu = next(d for d in devices if d.device_type == "CPU")
    return {op: cpu for op in ops}
