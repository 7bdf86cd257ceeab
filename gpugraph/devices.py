"""Devices a plan's steps run on: an array module plus host transfers, and their discovery.

A :class:`Device` is what placement hands each node: its canonical TF name, its array module
``xp`` (numpy, CuPy, or numpy bound to a virtual GPU), and ``to_device``/``to_host``.

* ``CPU:0`` runs numpy.
* ``GPU:k`` is CuPy device k when CuPy imports and CUDA reports devices.  CuPy is imported only
  here and only when looked for, so ``import gpugraph`` never needs it.
* With ``virtual_gpus=N`` (or ``GPUGRAPH_VIRTUAL_GPUS=N``), N numpy-backed virtual GPUs stand
  in for real ones (:mod:`gpugraph._virtual_gpu`): their arrays are bound to their device, so a
  tensor used on the wrong device without a copy fails as it would on real GPUs.

Discovery never fails: a missing CuPy or a broken CUDA install leaves the CPU (and any virtual
GPUs) and records why in :attr:`DeviceSet.notes`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from gpugraph import _virtual_gpu

_log = logging.getLogger("gpugraph.devices")
LOCAL_PREFIX = "/job:localhost/replica:0/task:0/device:"


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
        kind: ``"cpu"``, ``"cuda"`` or ``"virtual"``.
    """

    device_type = "CPU"
    kind = "cpu"
    xp: Any = np

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

    def synchronize(self) -> None:
        """Waits until queued work on this device is done (no-op on the CPU)."""

    def run_context(self) -> Any:
        """A context manager entered around every kernel placed here (None if not needed)."""
        return None

    def checked_kernel(self, fn: Any, node: str, host_inputs: frozenset[int],
                       host_outputs: frozenset[int]) -> Any:
        """``fn`` as this device runs it (virtual GPUs check where its values live)."""
        return fn

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class CpuDevice(Device):
    """The host CPU, running numpy kernels."""


class VirtualGpuDevice(Device):
    """A numpy-backed GPU stand-in whose arrays are bound to it (for CPU-only machines and CI)."""

    device_type = "GPU"
    kind = "virtual"

    def __init__(self, index: int):
        super().__init__(index)
        self.xp = _virtual_gpu.VirtualXp(index)

    @property
    def is_host(self) -> bool:
        return False

    def to_device(self, value: Any) -> Any:
        return _virtual_gpu.to_device(value, self.index)

    def to_host(self, value: Any) -> Any:
        return _virtual_gpu.to_host(value)

    def run_context(self) -> Any:
        return _virtual_gpu.running_on(self.index)

    def checked_kernel(self, fn: Any, node: str, host_inputs: frozenset[int],
                       host_outputs: frozenset[int]) -> Any:
        return _virtual_gpu.memory_checked(fn, node, self.index, host_inputs, host_outputs)


class CudaDevice(Device):
    """CUDA device ``index`` through CuPy."""

    device_type = "GPU"
    kind = "cuda"

    def __init__(self, index: int, cupy: Any):
        super().__init__(index)
        self.xp = cupy
        self._cuda_device = cupy.cuda.Device(index)

    @property
    def is_host(self) -> bool:
        return False

    def to_device(self, value: Any) -> Any:
        with self._cuda_device:
            return self.xp.asarray(value)

    def to_host(self, value: Any) -> Any:
        return host_value(value)

    def synchronize(self) -> None:
        self._cuda_device.synchronize()

    def run_context(self) -> Any:
        return self._cuda_device


class DeviceSet:
    """The devices of one session, with the reasons any expected ones are missing.

    Attributes:
        devices: CPU:0 first, then GPUs in index order.
        notes: human-readable lines on discovery (e.g. "CuPy not installed").
    """

    def __init__(self, devices: list[Device], notes: list[str]):
        self.devices = devices
        self.notes = notes

    @property
    def cpu(self) -> Device:
        return self.devices[0]

    @property
    def gpus(self) -> list[Device]:
        return [d for d in self.devices if d.device_type == "GPU"]

    def find(self, device_type: str, index: int) -> Device | None:
        for d in self.devices:
            if d.device_type == device_type and d.index == index:
                return d
        return None

    def names(self) -> list[str]:
        return [d.name for d in self.devices]

    def __iter__(self):
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)


def _cuda_devices(notes: list[str]) -> list[Device]:
    try:
        import cupy  # noqa: PLC0415  (optional dependency, imported only when looked for)
    except Exception as e:  # noqa: BLE001  (ImportError, or a CUDA library failing to load)
        notes.append(f"CuPy is not usable ({type(e).__name__}: {e}); no CUDA GPUs.")
        return []
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001  (cupy raises CUDARuntimeError for a broken driver)
        notes.append(f"CUDA is not usable ({type(e).__name__}: {e}); no CUDA GPUs.")
        return []
    if count == 0:
        notes.append("CuPy found no CUDA devices.")
    return [CudaDevice(i, cupy) for i in range(count)]


def discover(virtual_gpus: int | None = None) -> DeviceSet:
    """The devices this process can run on.

    Args:
        virtual_gpus: stand in this many numpy-backed GPUs instead of looking for CUDA ones;
            None reads ``GPUGRAPH_VIRTUAL_GPUS`` (unset: use real GPUs if any).
    """
    notes: list[str] = []
    if virtual_gpus is None and os.environ.get("GPUGRAPH_VIRTUAL_GPUS"):
        try:
            virtual_gpus = int(os.environ["GPUGRAPH_VIRTUAL_GPUS"])
        except ValueError:
            notes.append(f"Ignoring GPUGRAPH_VIRTUAL_GPUS={os.environ['GPUGRAPH_VIRTUAL_GPUS']!r} "
                         "(not an integer).")
    devices: list[Device] = [CpuDevice(0)]
    if virtual_gpus is not None and virtual_gpus > 0:
        devices += [VirtualGpuDevice(i) for i in range(virtual_gpus)]
        notes.append(f"{virtual_gpus} virtual GPU(s) (numpy-backed) stand in for CUDA devices.")
    elif virtual_gpus is None:
        devices += _cuda_devices(notes)
    for note in notes:
        _log.info("%s", note)
    return DeviceSet(devices, notes)
