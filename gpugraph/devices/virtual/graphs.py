"""Stream capture on a virtual GPU: CUDA graphs' rules, checked on a CPU.

A real GPU records a step's kernels into a CUDA graph and replays them against the same
buffers; it refuses synchronizations and host copies while capturing, and a replay reads
whatever is in those buffers.  :class:`VirtualGraphs` gives a numpy-backed GPU the same
contract (:class:`gpugraph.devices.virtual.xp.Recording`), so CI without a GPU catches a kernel
that syncs, a variable that moves, or a value baked into a capture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph.devices.base import Graphs

from gpugraph.devices.virtual import xp as _virtual_gpu


class VirtualGraph:
    """A recorded step: :meth:`launch` replays it."""

    def __init__(self, recording: _virtual_gpu.Recording):
        self.recording = recording

    def launch(self) -> None:
        self.recording.replay()

    def references(self) -> list:
        return self.recording.references()


class VirtualGraphs(Graphs):
    """The capture hooks of virtual GPU ``index`` (see :class:`gpugraph.devices.base.Graphs`)."""

    def __init__(self, index: int):
        self.index = index

    def is_buffer(self, value: Any) -> bool:
        return isinstance(value, _virtual_gpu.DeviceArray)

    def static_copy(self, value: Any) -> Any:
        return _virtual_gpu.bind(np.array(value.view(np.ndarray), copy=True), self.index)

    def copy_into(self, target: Any, value: Any) -> None:
        np.copyto(target.view(np.ndarray), value.view(np.ndarray))

    def capture(self, fn: Callable[[], Any]) -> tuple[VirtualGraph, Any]:
        recording = _virtual_gpu.start_recording()
        try:
            result = fn()
        finally:
            _virtual_gpu.stop_recording()
            recording.restore()
        return VirtualGraph(recording), result

    def refusal(self, error: BaseException) -> str | None:
        if isinstance(error, _virtual_gpu.StreamCaptureError):
            return str(error)
        return None

    @staticmethod
    def capturing() -> bool:
        return _virtual_gpu.recording_active()

    @staticmethod
    def references_to(value: Any) -> int:
        return _virtual_gpu.references_to(value)
