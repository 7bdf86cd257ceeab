"""The process group of a data-parallel run: MPI through mpi4py.

MPI is what launches data-parallel TF1 jobs already (``horovodrun`` and ``mpirun`` run
Horovod; ``srun`` and every HPC scheduler start MPI ranks), it finds the other processes on
this and other machines, and its collectives are tuned by the MPI library for the network
there.  gpugraph therefore adds no launcher, rendezvous or wire protocol of its own.

Every wait on a collective polls its request against a deadline
(``GPUGRAPH_COLLECTIVE_TIMEOUT``): a rank whose peer died or stopped calling the same
collectives raises :class:`~gpugraph.errors.DataParallelError` instead of hanging; the
launcher's abort (:meth:`World.abort`) then ends every rank.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from typing import Any

import numpy as np

from gpugraph import config, errors

_WORLD: list[World | None] = [None]
_ABORT_GRACE_S = 0.3  # seconds between flushing output and MPI_Abort


def _mpi() -> Any:
    try:
        from mpi4py import MPI  # noqa: PLC0415  (optional: pip install gpugraph[mpi])
    except ImportError as e:
        raise errors.DataParallelError(
            None, None, "Data parallelism needs mpi4py and an MPI library: pip install "
            f"'gpugraph[mpi]' (mpi4py and MPICH's wheels), or mpi4py over a system MPI ({e})",
            {"missing": "mpi4py"}) from None
    return MPI


class World:
    """This process's view of the run: its rank, the ranks on its machine, and collectives
    on host (numpy) buffers that give up after the configured timeout."""

    def __init__(self) -> None:
        mpi = _mpi()
        self.mpi = mpi
        self.comm = mpi.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.local = self.comm.Split_type(mpi.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = self.local.Get_rank()
        self.local_size = self.local.Get_size()
        self.timeout = config.settings.collective_timeout

    # -- waiting with a deadline --

    def wait(self, request: Any, what: str) -> None:
        """Completes ``request`` or raises DataParallelError after the timeout."""
        deadline = time.monotonic() + self.timeout
        pause = 0.0
        while not request.Test():
            if time.monotonic() > deadline:
                raise errors.DataParallelError(
                    None, None, f"rank {self.rank} of {self.size}: {what} did not complete "
                    f"within {self.timeout:g} s (GPUGRAPH_COLLECTIVE_TIMEOUT): another rank "
                    "died, hangs, or runs a different graph", {"rank": self.rank, "what": what})
            time.sleep(pause)  # spin briefly, then yield the core to the other ranks
            pause = min(0.001, pause + 0.00002)

    # -- collectives on host buffers --

    def allreduce_sum(self, buffer: np.ndarray, what: str) -> np.ndarray:
        """The elementwise sum of ``buffer`` over all ranks (a new array)."""
        out = np.empty_like(buffer)
        self.wait(self.comm.Iallreduce(buffer, out, op=self.mpi.SUM), what)
        return out

    def start_allreduce_sum(self, buffer: np.ndarray) -> tuple[Any, np.ndarray]:
        """A non-blocking sum: (request, output buffer) to :meth:`wait` on."""
        out = np.empty_like(buffer)
        return self.comm.Iallreduce(buffer, out, op=self.mpi.SUM), out

    def allgather_rows(self, array: np.ndarray, what: str) -> np.ndarray:
        """The ranks' arrays concatenated along axis 0, in rank order (rows may differ)."""
        array = np.ascontiguousarray(array)
        rows = self.allgather_object(int(array.shape[0]), what)
        row_size = int(np.prod(array.shape[1:], dtype=np.int64))
        out = np.empty((sum(rows), *array.shape[1:]), dtype=array.dtype)
        counts = [r * row_size for r in rows]
        request = self.comm.Iallgatherv(array.reshape(-1), [out.reshape(-1), counts])
        self.wait(request, what)
        return out

    def allgather_object(self, value: Any, what: str) -> list[Any]:
        """Every rank's (small, picklable) ``value``, in rank order."""
        payload = np.frombuffer(_pickle(value), dtype=np.uint8)
        sizes = np.empty(self.size, dtype=np.int64)
        self.wait(self.comm.Iallgather(np.array([payload.size], np.int64), sizes), what)
        out = np.empty(int(sizes.sum()), dtype=np.uint8)
        self.wait(self.comm.Iallgatherv(payload, [out, sizes.tolist()]), what)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        return [_unpickle(out[offsets[k]:offsets[k + 1]].tobytes()) for k in range(self.size)]

    def broadcast(self, buffer: np.ndarray, root: int, what: str) -> np.ndarray:
        """``buffer`` of rank ``root`` on every rank (a new array on the others)."""
        out = np.array(buffer, order="C")  # (a copy, keeping 0-d arrays 0-d)
        self.wait(self.comm.Ibcast(out, root=root), what)
        return out

    def barrier(self, what: str = "barrier") -> None:
        self.wait(self.comm.Ibarrier(), what)

    def abort(self, code: int = 1) -> None:
        """Ends every rank (MPI_Abort: the launcher kills the others)."""
        sys.stdout.flush()
        sys.stderr.flush()
        # The launcher forwards each rank's output from a pipe; killed at once, it can drop
        # the last lines (the error that says why), so they get a moment to travel first.
        time.sleep(_ABORT_GRACE_S)
        self.comm.Abort(code)


def _pickle(value: Any) -> bytes:
    import pickle  # noqa: PLC0415

    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickle(data: bytes) -> Any:
    import pickle  # noqa: PLC0415

    return pickle.loads(data)  # noqa: S301  (our own ranks' values)


def world() -> World:
    """The process group, set up on first use (MPI_Init)."""
    if _WORLD[0] is None:
        _WORLD[0] = World()
        _install_abort_on_error(_WORLD[0])
    return _WORLD[0]


def initialized() -> World | None:
    """The process group if this process joined one, else None."""
    return _WORLD[0]


def under_launcher() -> bool:
    """Whether an MPI launcher started this process (its environment says so)."""
    keys = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS",
            "HYDRA_CONTROL_FD")
    return any(k in os.environ for k in keys)


def _install_abort_on_error(w: World) -> None:
    """An uncaught exception on one rank ends all of them, naming the rank, instead of
    leaving the others waiting in a collective (mpi4py's ``-m mpi4py`` does the same)."""
    if w.size == 1:
        return
    previous = sys.excepthook

    def hook(kind: type, value: BaseException, tb: Any) -> None:
        sys.stderr.write(f"gpugraph: rank {w.rank} of {w.size} failed; ending every rank\n")
        previous(kind, value, tb)
        w.abort(1)

    sys.excepthook = hook


def digest(data: bytes) -> str:
    """A short fingerprint of ``data`` (to compare what ranks loaded)."""
    return hashlib.sha256(data).hexdigest()[:16]
