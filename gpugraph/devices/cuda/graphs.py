"""Stream capture on a CUDA device: a plan segment as a CUDA graph, through CuPy.

Capture runs on a private non-blocking stream in relaxed mode (allocations during capture are
legal) with a memory pool private to the graph: memory the segment frees while capturing goes
back to that pool only, so no later array is handed an address the graph's replays overwrite
(PyTorch's graph-private pools, for the same reason).  The pool, the graph and the arrays the
segment returned live together.  Replays launch on the current stream, in order with the eager
work around them.

CuPy refuses what CUDA cannot capture: host copies and syncs (RuntimeError), cuBLAS through
CuPy (NotImplementedError, cupy/cupy#6290), and CUDA reports an invalidated capture; these are
:meth:`CudaGraphs.refusal` s, and the node then runs outside the graphs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpugraph.devices.base import Graphs


class CudaGraph:
    """A captured segment: :meth:`launch` replays it on the current stream."""

    def __init__(self, graph: Any, pool: Any, cupy: Any):
        self._graph = graph
        self._pool = pool  # freed only with the graph
        self._cupy = cupy

    def launch(self) -> None:
        self._graph.launch(self._cupy.cuda.get_current_stream())

    def references(self) -> list:
        return []  # CuPy's graph keeps addresses, not arrays


class CudaGraphs(Graphs):
    """The capture hooks of one CUDA device (see :class:`gpugraph.devices.base.Graphs`)."""

    def __init__(self, device: Any, cupy: Any):
        self._device = device
        self._cupy = cupy

    def is_buffer(self, value: Any) -> bool:
        return isinstance(value, self._cupy.ndarray)

    def static_copy(self, value: Any) -> Any:
        with self._device:
            return value.copy()

    def copy_into(self, target: Any, value: Any) -> None:
        if target.flags.c_contiguous and value.flags.c_contiguous and \
                target.dtype == value.dtype and target.size == value.size:
            target.data.copy_from_device_async(value.data, value.nbytes)
        else:
            self._cupy.copyto(target, value)

    def capture(self, fn: Callable[[], Any]) -> tuple[CudaGraph, Any]:
        cupy = self._cupy
        pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=True)
        # The capture stream must see the eager work queued before it.
        stream.wait_event(cupy.cuda.get_current_stream().record())
        with self._device, cupy.cuda.using_allocator(pool.malloc), stream:
            stream.begin_capture()
            try:
                result = fn()
            except BaseException:
                _end_quietly(stream)
                raise
            graph = stream.end_capture()
        graph.upload(cupy.cuda.get_current_stream())
        return CudaGraph(graph, pool, cupy), result

    def refusal(self, error: BaseException) -> str | None:
        text = f"{type(error).__name__}: {error}"
        lowered = text.lower()
        if isinstance(error, NotImplementedError) or "captur" in lowered or \
                "cudaerrorstreamcapture" in lowered:
            return text
        return None

    def capturing(self) -> bool:
        return bool(self._cupy.cuda.get_current_stream().is_capturing())


def _end_quietly(stream: Any) -> None:
    try:
        stream.end_capture()
    except Exception:  # noqa: BLE001, S110  (an invalidated capture raises here too)
        pass
