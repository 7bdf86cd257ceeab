"""Data parallelism over MPI ranks (as Horovod carries TF1 runs over processes and machines).

Under a launcher (``mpiexec -n N python train.py``), a Session with
``config={"data_parallel": "mpi"}`` (or ``GPUGRAPH_DATA_PARALLEL=mpi``) averages every
gradient that flows into an optimizer update over the ranks before the update runs
(:mod:`gpugraph.plan.data_parallel`), so N ranks that each feed 1/N of a batch train as one
process on the whole batch would.  These functions are for scripts that shard their own
feeds, report averaged metrics, or initialize variables randomly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph.distributed import mpi
from gpugraph.distributed.reducer import average_over_ranks


def init() -> mpi.World:
    """Joins the ranks the launcher started (MPI_Init on first call); returns the group."""
    return mpi.world()


def _world() -> mpi.World | None:
    found = mpi.initialized()
    if found is None and mpi.under_launcher():
        found = mpi.world()
    return found


def rank() -> int:
    """This process's rank (0 outside a launcher)."""
    w = _world()
    return w.rank if w else 0


def size() -> int:
    """How many ranks run (1 outside a launcher)."""
    w = _world()
    return w.size if w else 1


def local_rank() -> int:
    """This process's rank among those on its machine (its GPU, when there are GPUs)."""
    w = _world()
    return w.local_rank if w else 0


def local_size() -> int:
    """How many ranks run on this machine."""
    w = _world()
    return w.local_size if w else 1


def allreduce_mean(value: Any) -> np.ndarray:
    """The mean of ``value`` (a number or host array) over the ranks: a loss or metric each
    rank computed on its shard, as one process would report it for the whole batch."""
    w = _world()
    return np.asarray(value) if w is None else average_over_ranks(w, value)


def broadcast_variables(sess: Any, root: int = 0) -> int:
    """Gives every rank rank ``root``'s values of the session's initialized variables (after a
    random initialization; ranks that restored one checkpoint agree already).  Returns how
    many variables were sent (Horovod's ``broadcast_global_variables``)."""
    w = _world()
    return 0 if w is None else sess._broadcast_variables(w, root)
