"""A numpy-backed virtual GPU as a device (for CPU-only machines and CI)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from gpugraph import config
from gpugraph.devices.base import CUPY_AT_DTYPES, Device
from gpugraph.devices.virtual import xp as _virtual_gpu
from gpugraph.devices.virtual.graphs import VirtualGraphs


class VirtualGpuDevice(Device):
    """A numpy-backed GPU stand-in whose arrays are bound to it (for CPU-only machines and CI)."""

    device_type = "GPU"
    kind = "virtual"
    at_dtypes = CUPY_AT_DTYPES  # as CuPy's, so kernels that would fail on a GPU fail here

    def __init__(self, index: int):
        super().__init__(index)
        self.xp = _virtual_gpu.VirtualXp(index)
        self._graphs = VirtualGraphs(index)

    @property
    def is_host(self) -> bool:
        return False

    def to_device(self, value: Any) -> Any:
        return _virtual_gpu.to_device(value, self.index)

    def to_host(self, value: Any) -> Any:
        return _virtual_gpu.to_host(value)

    def run_context(self) -> Any:
        return _virtual_gpu.running_on(self.index)

    def renumbered(self, index: int) -> VirtualGpuDevice:
        """A stand-in for this GPU shown as GPU ``index``."""
        return VirtualGpuDevice(index)

    def checked_kernel(self, fn: Any, node: str, host_inputs: frozenset[int],
                       host_outputs: frozenset[int]) -> Any:
        return _virtual_gpu.memory_checked(fn, node, self.index, host_inputs, host_outputs)

    def graphs(self) -> VirtualGraphs | None:
        # Only when asked (GPUGRAPH_CUDA_GRAPHS=1): recording costs more than it saves here.
        return self._graphs if config.settings.cuda_graphs else None

    def owns(self, value: Any) -> bool:
        # A device array is a view of the numpy array its op returned (sometimes through a
        # view of that): it owns its memory when every array down its chain of bases covers
        # the same bytes and is referenced only by the view above it (references: that view,
        # ``link`` here, getrefcount's argument).  Views that captured steps' logs keep do not
        # count: on a GPU a graph holds addresses, not arrays.
        link = value.base
        if link is None:
            return bool(value.flags.writeable)
        if not (value.flags.writeable and value.flags.c_contiguous):
            return False
        while link is not None:
            if (type(link) is not np.ndarray or link.nbytes != value.nbytes
                    or not link.flags.c_contiguous
                    or sys.getrefcount(link) > 3 + _virtual_gpu.view_references(link)):
                return False
            link = link.base
        return True
