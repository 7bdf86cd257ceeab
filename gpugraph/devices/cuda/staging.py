"""Host-to-GPU copies of feeds through pinned (page-locked) staging buffers.

``cupy.asarray(numpy_array)`` copies from pageable memory: CUDA first copies into its own
pinned buffer and the call returns only when the transfer is done.  Here each upload goes
through a pinned buffer of this device's own (one per size class, reused): the feed is copied
into it on the host, then transferred asynchronously on the current stream, so the host goes
on queuing the step's kernels while the bytes move.  An event per buffer keeps a later upload
from overwriting bytes still in flight.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_BYTES = 1 << 12  # smaller feeds: CuPy's own copy (staging costs more than it saves)


class Staging:
    """Pinned staging buffers of one CUDA device."""

    def __init__(self, cupy: Any):
        self._cupy = cupy
        self._buffers: dict[int, tuple[Any, Any]] = {}  # size class -> (pinned memory, event)

    def upload(self, array: np.ndarray) -> Any:
        """``array`` (C-contiguous, numeric) as a new device array, copied asynchronously on
        the current stream."""
        cupy = self._cupy
        size = 1 << max(array.nbytes - 1, 1).bit_length()  # the power of two that holds it
        memory, event = self._buffers.get(size, (None, None))
        if memory is None:
            memory = cupy.cuda.alloc_pinned_memory(size)
        elif event is not None:
            event.synchronize()  # (the previous upload through it has been read)
        staged = np.frombuffer(memory, dtype=array.dtype, count=array.size).reshape(array.shape)
        np.copyto(staged, array)
        out = cupy.empty(array.shape, dtype=array.dtype)
        stream = cupy.cuda.get_current_stream()
        out.data.copy_from_host_async(memory.ptr, array.nbytes, stream)
        self._buffers[size] = (memory, stream.record())
        return out


def stageable(value: Any) -> bool:
    """Whether ``value`` goes through staging: a numeric numpy array of some size."""
    return (isinstance(value, np.ndarray) and value.nbytes >= MIN_BYTES
            and value.dtype.kind in "biufc" and value.flags.c_contiguous)
