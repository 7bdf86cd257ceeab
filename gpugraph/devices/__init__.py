"""Devices a plan's steps run on, and their discovery.

* ``CPU:0`` runs numpy (:mod:`gpugraph.devices.cpu`).
* ``GPU:k`` is CuPy device k when CuPy imports and CUDA reports devices
  (:mod:`gpugraph.devices.cuda`).  CuPy is imported only when looked for, so
  ``import gpugraph`` never needs it.
* With ``virtual_gpus=N`` (or ``GPUGRAPH_VIRTUAL_GPUS=N``), N numpy-backed virtual GPUs stand
  in for real ones (:mod:`gpugraph.devices.virtual`): their arrays are bound to their device, so
  a tensor used on the wrong device without a copy fails as it would on real GPUs.

Discovery never fails: a missing CuPy or a broken CUDA install leaves the CPU (and any virtual
GPUs) and records why in :attr:`DeviceSet.notes`.  What a device offers the plan is the
protocol of :class:`~gpugraph.devices.base.Device`.
"""

from __future__ import annotations

import logging

from gpugraph import config
from gpugraph.devices.base import LOCAL_PREFIX, Device, host_value
from gpugraph.devices.cpu.device import CpuDevice
from gpugraph.devices.virtual.device import VirtualGpuDevice

__all__ = ["LOCAL_PREFIX", "CpuDevice", "Device", "DeviceSet", "VirtualGpuDevice", "discover",
           "host_value"]

_log = logging.getLogger("gpugraph.devices")


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

    def visible(self, gpus: list[int]) -> DeviceSet:
        """Only GPUs ``gpus`` (in that order), numbered from 0 (TF's ``visible_device_list``);
        a number this machine has no GPU for is left out, with a note."""
        mine = self.gpus
        shown = [mine[k].renumbered(i) for i, k in enumerate(g for g in gpus if g < len(mine))]
        notes = list(self.notes)
        missing = [g for g in gpus if g >= len(mine)]
        if missing:
            notes.append(f"visible GPUs {missing} do not exist here ({len(mine)} GPU(s)).")
        return DeviceSet([self.cpu, *shown], notes)

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


def discover(virtual_gpus: int | None = None) -> DeviceSet:
    """The devices this process can run on.

    Args:
        virtual_gpus: stand in this many numpy-backed GPUs instead of looking for CUDA ones;
            None reads ``GPUGRAPH_VIRTUAL_GPUS`` (unset: use real GPUs if any).
    """
    notes: list[str] = []
    if virtual_gpus is None:
        virtual_gpus = config.settings.virtual_gpus
        raw = config.settings.raw.get("GPUGRAPH_VIRTUAL_GPUS")
        if virtual_gpus is None and raw:
            notes.append(f"Ignoring GPUGRAPH_VIRTUAL_GPUS={raw!r} (not an integer).")
    devices: list[Device] = [CpuDevice(0)]
    if virtual_gpus is not None and virtual_gpus > 0:
        devices += [VirtualGpuDevice(i) for i in range(virtual_gpus)]
        notes.append(f"{virtual_gpus} virtual GPU(s) (numpy-backed) stand in for CUDA devices.")
    elif virtual_gpus is None:
        from gpugraph.devices.cuda.device import discover as cuda_devices  # noqa: PLC0415

        devices += cuda_devices(notes)
    for note in notes:
        _log.info("%s", note)
    return DeviceSet(devices, notes)
