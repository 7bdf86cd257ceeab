"""Collectives by device: how the gradients that live on one device are summed over ranks.

The generic path works for every device: the values go to the host and through MPI (on the
CPU they are host arrays already; virtual GPUs stand in for GPUs this way).  A device with a
faster path returns its own from :meth:`gpugraph.devices.base.Device.collectives` (CUDA GPUs:
NCCL on the device, ``devices/cuda/nccl.py``), in its own room, as kernels are registered
per (op, device kind).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Collectives:
    """Sums and gathers of one device's arrays over the ranks of ``world``.

    ``start_sum`` begins a sum of a flat buffer and returns a handle; ``finish_sum`` returns
    the summed buffer on the device (waiting for it as the device requires).
    """

    def __init__(self, world: Any, device: Any):
        self.world = world
        self.device = device

    def start_sum(self, flat: Any) -> Any:
        host = np.ascontiguousarray(self.device.to_host(flat))
        return self.world.start_allreduce_sum(host)

    def finish_sum(self, handle: Any, what: str) -> Any:
        request, out = handle
        self.world.wait(request, what)
        return self.device.to_device(out)

    def gather_rows(self, array: Any, what: str) -> Any:
        """The ranks' ``array`` concatenated along axis 0, in rank order."""
        host = self.world.allgather_rows(np.asarray(self.device.to_host(array)), what)
        return self.device.to_device(host)


def for_device(world: Any, device: Any) -> Any:
    """The collectives of ``device``: its own (``Device.collectives``), else the host path."""
    return device.collectives(world) or Collectives(world, device)
