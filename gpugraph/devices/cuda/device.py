"""A CUDA GPU as a device, through CuPy."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import config
from gpugraph.devices.base import CUPY_AT_DTYPES, Device, host_value
from gpugraph.devices.cuda import cublas, cudnn, fusion, nccl, rawmodule, staging
from gpugraph.devices.cuda.graphs import CudaGraphs


class CudaDevice(Device):
    """CUDA device ``index`` through CuPy (CUDA's device ``physical``, by default the same:
    a session shown only some GPUs numbers them from 0, as TF's ``visible_device_list``)."""

    device_type = "GPU"
    kind = "cuda"
    at_dtypes = CUPY_AT_DTYPES

    def __init__(self, index: int, cupy: Any, physical: int | None = None):
        super().__init__(index)
        self.xp = cupy
        self.physical = index if physical is None else physical
        self._cuda_device = cupy.cuda.Device(self.physical)
        self._graphs = CudaGraphs(self._cuda_device, cupy)
        self._blas: cublas.Blas | None = None
        self._convolutions: cudnn.Convolutions | None = None
        self._staging = staging.Staging(cupy)

    @property
    def is_host(self) -> bool:
        return False

    def to_device(self, value: Any) -> Any:
        # Feeds of some size go through pinned staging (an asynchronous copy).
        with self._cuda_device:
            if staging.stageable(value):
                return self._staging.upload(value)
            return self.xp.asarray(value)

    def to_host(self, value: Any) -> Any:
        return host_value(value)

    def copy_from(self, source: Device, value: Any) -> Any:
        """From another CUDA GPU: a device-to-device copy (peer to peer where the GPUs allow
        it), queued on this device's stream after the work queued on the source's, with no
        host round trip."""
        cupy = self.xp
        if not isinstance(source, CudaDevice) or not isinstance(value, cupy.ndarray):
            return super().copy_from(source, value)
        with source._cuda_device:
            value = cupy.ascontiguousarray(value)
            source_stream = cupy.cuda.get_current_stream()
            ready = source_stream.record()
        with self._cuda_device:
            stream = cupy.cuda.get_current_stream()
            stream.wait_event(ready)
            out = cupy.empty(value.shape, dtype=value.dtype)
            if value.nbytes:
                out.data.copy_from_device_async(value.data, value.nbytes, stream)
            copied = stream.record()
        # The source's memory may be reused by its stream once ``value`` is freed: not before
        # the copy has read it.
        source_stream.wait_event(copied)
        return out

    def synchronize(self) -> None:
        self._cuda_device.synchronize()

    def run_context(self) -> Any:
        return self._cuda_device

    def graphs(self) -> CudaGraphs | None:
        # On unless GPUGRAPH_CUDA_GRAPHS=0.
        return None if config.settings.cuda_graphs is False else self._graphs

    def blas(self) -> cublas.Blas:
        """This device's cuBLAS (matrix products that CUDA graphs can capture)."""
        if self._blas is None:
            self._blas = cublas.Blas(self.xp, self._cuda_device, config.settings.allow_tf32)
        return self._blas

    def convolutions(self) -> cudnn.Convolutions:
        """This device's cuDNN convolutions (None results where cuDNN does not serve)."""
        if self._convolutions is None:
            self._convolutions = cudnn.Convolutions(self.xp, self._cuda_device,
                                                    config.settings.allow_tf32)
        return self._convolutions

    def fuser(self, dtype: np.dtype) -> Any:
        return fusion.fuser(dtype, self.xp) if rawmodule.enabled(self.xp) else None

    def renumbered(self, index: int) -> CudaDevice:
        """This GPU shown as GPU ``index``."""
        return CudaDevice(index, self.xp, self.physical)

    def collectives(self, world: Any) -> Any | None:
        """Gradient sums over the ranks on the GPU through NCCL (None: no NCCL in CuPy)."""
        return nccl.NcclCollectives.create(world, self)


def discover(notes: list[str]) -> list[Device]:
    """The CUDA devices CuPy finds, or none (with the reason added to ``notes``)."""
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
