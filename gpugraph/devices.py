"""Devices a plan's steps run on: an array module plus host transfers.

A :class:`Device` is what placement hands each node: its canonical TF name, its array module
``xp`` (numpy or CuPy), and ``to_device``/``to_host`` transfers.  Only :class:`CpuDevice`
exists today; CUDA devices (CuPy, imported lazily so ``import gpugraph`` never needs it) and
numpy-backed virtual GPUs come with the device-placement work and plug in here.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Device:
    """A place where kernels run.

    Attributes:
        name: canonical TF device name, e.g. ``/job:localhost/replica:0/task:0/device:CPU:0``.
        device_type: ``"CPU"`` or ``"GPU"``.
        index: the device number within its type.
        xp: the array module kernels use on this device.
    """

    device_type = "CPU"
    xp: Any = np

    def __init__(self, index: int = 0, job: str = "localhost"):
        self.index = index
        self.name = f"/job:{job}/replica:0/task:0/device:{self.device_type}:{index}"

    def to_device(self, value: Any) -> Any:
        """A host (numpy) value as this device's array type."""
        return value

    def to_host(self, value: Any) -> Any:
        """A value of this device as a numpy value."""
        return value

    def synchronize(self) -> None:
        """Waits until queued work on this device is done (no-op on the CPU)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class CpuDevice(Device):
    """The host CPU, running numpy kernels."""


def local_devices() -> list[Device]:
    """The devices this process can run on (today: the CPU)."""
    return [CpuDevice(0)]
