"""NCCL collectives for data parallelism on CUDA GPUs (``cupy.cuda.nccl``).

Each rank's GPU joins one NCCL communicator; its unique id travels from rank 0 over MPI (the
data-parallel world).  A bucket of gradients is summed by one ``ncclAllReduce`` queued on the
GPU's current stream: the kernels that read the sum are queued after it on the same stream, so
the host never waits and nothing goes through host memory.  Sparse gradients (an
IndexedSlices' rows differ in number between ranks) are padded to the largest count, gathered
with ``ncclAllGather`` and compacted; the counts themselves go over MPI.

A rank that dies leaves NCCL calls waiting on the GPU; the MPI launcher's abort (every rank
ends when one does) is what ends them, not the collective timeout of the host path.
"""

from __future__ import annotations

from typing import Any

_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32",
               "float64": "NCCL_FLOAT64", "int32": "NCCL_INT32", "int64": "NCCL_INT64"}


class NcclCollectives:
    """The ``start_sum`` / ``finish_sum`` / ``gather_rows`` of one CUDA device over NCCL."""

    def __init__(self, world: Any, device: Any, cupy: Any, nccl: Any):
        self.world, self.device, self.cupy, self.nccl = world, device, cupy, nccl
        unique_id = nccl.get_unique_id() if world.rank == 0 else None
        unique_id = world.allgather_object(unique_id, "the NCCL communicator's id")[0]
        with device.run_context():
            self.comm = nccl.NcclCommunicator(world.size, unique_id, world.rank)

    @classmethod
    def create(cls, world: Any, device: Any) -> NcclCollectives | None:
        """NCCL collectives for ``device``, or None where CuPy has no NCCL (host path)."""
        try:
            from cupy.cuda import nccl  # noqa: PLC0415  (CuPy's NCCL binding is optional)
        except ImportError:
            return None
        if not getattr(nccl, "available", True):
            return None
        return cls(world, device, device.xp, nccl)

    def _type(self, dtype: Any) -> int:
        name = _NCCL_TYPES.get(str(dtype))
        if name is None:
            raise TypeError(f"NCCL has no type for {dtype}")
        return getattr(self.nccl, name)

    def start_sum(self, flat: Any) -> Any:
        cupy = self.cupy
        with self.device.run_context():
            flat = cupy.ascontiguousarray(flat)
            out = cupy.empty_like(flat)
            stream = cupy.cuda.get_current_stream()
            self.comm.allReduce(flat.data.ptr, out.data.ptr, flat.size, self._type(flat.dtype),
                                self.nccl.NCCL_SUM, stream.ptr)
        return out, flat  # (the input stays alive until the sum is taken)

    def finish_sum(self, handle: Any, what: str) -> Any:
        return handle[0]  # stream-ordered: what reads it runs after the all-reduce

    def gather_rows(self, array: Any, what: str) -> Any:
        cupy = self.cupy
        rows = self.world.allgather_object(int(array.shape[0]), what)
        most = max(rows)
        with self.device.run_context():
            padded = cupy.zeros((most, *array.shape[1:]), dtype=array.dtype)
            padded[:len(array)] = array
            out = cupy.empty((self.world.size * most, *array.shape[1:]), dtype=array.dtype)
            stream = cupy.cuda.get_current_stream()
            self.comm.allGather(padded.data.ptr, out.data.ptr, padded.size,
                                self._type(array.dtype), stream.ptr)
            return cupy.concatenate([out[k * most:k * most + n] for k, n in enumerate(rows)])
