"""The host CPU as a device: numpy kernels, TF's floating-point environment, the plan's threads."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from gpugraph.devices.base import Device
from gpugraph.devices.cpu import contention, fusion, host_memory
from gpugraph.devices.cpu import threads as cpu_threads
from gpugraph.devices.cpu.fpenv import flush_denormals


class CpuDevice(Device):
    """The host CPU, running numpy kernels."""

    def open_session(self) -> None:
        # Large temporaries are reused instead of page-faulted in again every run.
        host_memory.keep_freed_buffers()

    def owns_cores(self, steps: Sequence[Any]) -> bool:
        return cpu_threads.wants_cores(steps)

    def plan_context(self, steps: Sequence[Any]) -> Callable[[], Any]:
        owns = self.owns_cores(steps)
        return lambda: _running(owns)

    def fuser(self, dtype: np.dtype) -> Any:
        return fusion.fuser(dtype)

    def share_cores(self, processes: int) -> None:
        cpu_threads.share_cores(processes)


@contextlib.contextmanager
def _running(owns_cores: bool) -> Iterator[None]:
    # Denormals flush to zero, as in TF.  A plan with direct CPU convolutions keeps BLAS's
    # spinning threads off the cores (devices/cpu/threads.py).
    contention.run_started()
    cpu_threads.fit_blas()  # (to the cores other processes leave free)
    try:
        with flush_denormals(), cpu_threads.owning(owns_cores):
            yield
    finally:
        contention.run_ended()
