"""A numpy-backed virtual GPU as a device (for CPU-only machines and CI)."""

from __future__ import annotations

from typing import Any

from gpugraph.devices.base import CUPY_AT_DTYPES, Device
from gpugraph.devices.virtual import xp as _virtual_gpu


class VirtualGpuDevice(Device):
    """A numpy-backed GPU stand-in whose arrays are bound to it (for CPU-only machines and CI)."""

    device_type = "GPU"
    kind = "virtual"
    at_dtypes = CUPY_AT_DTYPES  # as CuPy's, so kernels that would fail on a GPU fail here

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
