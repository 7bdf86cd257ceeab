"""Who runs on the CPU's cores while a plan with direct convolutions runs: gpugraph, not BLAS.

The direct convolution kernels (:mod:`cpu_conv`) split their rows over gpugraph's own worker
threads.  numpy's OpenBLAS has worker threads of its own, and after every multi-threaded GEMM
they spin, waiting for the next one, for long enough (~0.1 s) that in a training step they
never stop: a convolution's threads then share the cores with a spinning BLAS thread and run
at half speed (measured on W3: the second convolution's forward op took 6.7 ms alone and
10-13 ms right after a MatMul).

So a plan that contains such ops *owns the cores* while it runs (:func:`owning`): BLAS is
limited to one thread (through threadpoolctl, which finds numpy's BLAS library whatever its
vendor), its workers go idle and sleep, and the plan's MatMuls split themselves over
gpugraph's threads instead (:func:`matmul`: the halves of a large GEMM, each single-threaded
BLAS).  The memory-bound loops of :mod:`cpu_loops` (Relu, BiasAdd, pooling, ReluGrad, the
optimizer updates) split over those threads as well (:func:`over_rows`, :func:`elementwise`).
The limit is lifted when the run ends, so the caller's own numpy code keeps its BLAS threads.
Plans without direct convolutions (an MLP: every flop is a GEMM) leave BLAS as it is, and run
their loops on the plan's thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from gpugraph import config
from gpugraph._optional import optional_module
from gpugraph.devices.cpu import conv as cpu_conv
from gpugraph.devices.cpu import loops as cpu_loops

OWNING_OPS = frozenset({"Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput"})
_SPLIT_MIN_FLOPS = 1 << 22  # GEMMs below this run whole (a thread hand-off costs ~20 us)
_GATHER_MAX_ROWS = 128  # a @ w.T with at most this many rows of a: the direct kernel's product
# Loops over fewer elements run whole: ~80 us of work on one thread, about what a hand-off to
# a worker (a Python job: ~35 us) and the second thread's share would take.
_SPLIT_MIN_ELEMENTS = 1 << 18
_state = threading.local()  # .depth: nesting of owning() on this thread
# Plans running now that own the cores, in all threads, and BLAS's thread counts from before
# the first of them: the last one out restores those (sessions on several threads would
# otherwise restore each other's limit mid-run, or leave BLAS at one thread for good).
_owners = [0]
_saved: list[tuple[Any, int]] = []
_owners_lock = threading.Lock()
_blas: list[list[Any]] = []  # [threadpoolctl's controllers of the loaded BLAS libraries]


def wants_cores(steps: Sequence[Any]) -> bool:
    """Whether a plan with ``steps`` should own the cores (:func:`owning`): it has an op the
    direct CPU kernels serve, on the real CPU, and those kernels can run here."""
    return any(step.op.type in OWNING_OPS and step.device.xp is np for step in steps) and \
        cpu_conv.enabled() and bool(_controller())


@contextlib.contextmanager
def owning(enabled: bool) -> Iterator[None]:
    """Limits BLAS to one thread inside the block when ``enabled`` (see the module doc), and
    makes :func:`matmul` split large products over gpugraph's threads."""
    if not enabled:
        yield
        return
    depth = getattr(_state, "depth", 0)
    if depth == 0:
        _limit_blas()
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth
        if depth == 0:
            _unlimit_blas()


def _limit_blas() -> None:
    with _owners_lock:
        if _owners[0] == 0:
            _saved[:] = [(lib, lib.num_threads) for lib in _controller()]
            for lib, _ in _saved:
                _set_threads(lib, 1)
        _owners[0] += 1


def _unlimit_blas() -> None:
    with _owners_lock:
        _owners[0] -= 1
        if _owners[0] == 0:
            for lib, threads in _saved:
                _set_threads(lib, threads)
            _saved.clear()


def _set_threads(lib: Any, count: int) -> None:
    # threadpoolctl (3.6+) lets only the first Python thread that sets OpenBLAS's count change
    # it and silently ignores the others: a session running in a second thread then left BLAS
    # at full width and its steps ran ~3x slower (W3: 88-126 ms against 33).  The count above
    # keeps threads from undoing each other, so the library's own setter is called directly.
    real = getattr(lib, "_real_set_num_threads", None)
    (real if callable(real) else lib.set_num_threads)(count)


def owned() -> bool:
    """Whether this thread runs a plan that owns the cores (inside :func:`owning`)."""
    return bool(getattr(_state, "depth", 0))


@contextlib.contextmanager
def inline() -> Iterator[None]:
    """Loops and products in the block run whole on this thread: for work a caller has already
    split over gpugraph's threads (a worker handing out more work to the crew would wait on
    itself)."""
    depth = getattr(_state, "depth", 0)
    _state.depth = 0
    try:
        yield
    finally:
        _state.depth = depth


def matmul(xp: Any, a: Any, b: Any) -> Any:
    """``a @ b`` for 2-D operands; inside :func:`owning`, a large float product is split in
    halves (rows, or columns when there are few rows) computed on gpugraph's threads, or, when
    ``b`` is a transposed matrix and ``a`` has few rows, computed by the direct convolution
    kernel (:func:`_product_by_rows_of`), as is, whatever its size, a product whose ``a`` is
    the transpose of a matrix with few rows (:func:`by_columns`)."""
    # Cheapest tests first: a small product outside an owning plan pays ~1 us here, not the
    # ~2.5 us of reading the thread count (an environment variable and the CPU affinity).
    if xp is not np or not owned():
        return xp.matmul(a, b)
    if by_columns(xp, a.T, b):
        return product_by_columns(a.T, b)
    if a.shape[0] * a.shape[1] * b.shape[1] < _SPLIT_MIN_FLOPS or \
            a.dtype != b.dtype or a.dtype.kind != "f" or a.shape[1] != b.shape[0]:
        return xp.matmul(a, b)
    count = cpu_loops.threads()
    if count < 2:
        return xp.matmul(a, b)
    m, n = a.shape[0], b.shape[1]
    if m <= _GATHER_MAX_ROWS and b.T.flags.c_contiguous and cpu_conv.available(xp, a, b):
        return _product_by_rows_of(b.T, a)
    out = np.empty((m, n), dtype=a.dtype)
    by_rows = m >= n or m >= 64 * count
    size = m if by_rows else n
    bounds = [size * t // count for t in range(count + 1)]
    parts = [slice(bounds[t], bounds[t + 1]) for t in range(count)]
    if by_rows:
        calls = [lambda s=s: np.matmul(a[s], b, out=out[s]) for s in parts]
    else:
        calls = [lambda s=s: np.matmul(a, b[:, s], out=out[:, s]) for s in parts]
    cpu_loops.in_parallel(calls)
    return out


def by_columns(xp: Any, a: Any, b: Any) -> bool:
    """Whether ``a.T @ b``, for ``a`` [K, M] with few rows (a dense layer's weight gradient:
    K is the batch), runs on the direct kernel (:func:`product_by_columns`): in a plan that
    owns the cores, for C-contiguous float operands it serves.  The optimizer updates that
    make this gradient a block at a time, or in the kernel's registers, ask the same question,
    so a fused gradient and a separate MatMul's have the same bits."""
    return xp is np and owned() and a.ndim == 2 and b.ndim == 2 and \
        a.shape[0] == b.shape[0] and a.shape[0] <= _GATHER_MAX_ROWS and \
        a.flags.c_contiguous and b.flags.c_contiguous and cpu_conv.available(xp, a, b)


def product_by_columns(a: np.ndarray, b: np.ndarray, rows: slice = slice(None),
                       out: np.ndarray | None = None) -> np.ndarray:
    """``a[:, rows].T @ b`` (into ``out``, C-contiguous, when given) by the direct kernel: a
    row per column of ``a``, read in place (the kernel's table of row starts holds the column
    indices, its reduction table the rows' offsets), reduced against ``b``, whose columns stay
    in registers.  OpenBLAS made W3's first dense-layer weight gradient ([64, 3136].T @
    [64, 1024], a reduction only 64 long) at ~80 GFLOP/s on two cores, the kernel at ~150."""
    start, stop, _ = rows.indices(a.shape[1])
    if out is None:
        out = np.empty((stop - start, b.shape[1]), dtype=a.dtype)
    cpu_conv.gather_gemm(a, *column_tables(a, start, stop), b, out)
    return out


def column_tables(a: np.ndarray, start: int = 0, stop: int | None = None) -> tuple:
    """The direct kernel's (row, reduction) tables that read columns [start, stop) of a
    C-contiguous ``a`` [K, M] as rows: the column indices, and each row's offset."""
    stop = a.shape[1] if stop is None else stop
    return (np.arange(start, stop, dtype=np.int64),
            np.arange(a.shape[0], dtype=np.int64) * a.shape[1])


def over_rows(loop: Callable[..., None], args: Sequence[Any], batched: Sequence[int]) -> None:
    """``loop(*args)``; inside :func:`owning`, with the arrays at ``batched`` split along axis 0
    over gpugraph's threads (:func:`cpu_loops.over_images`; same bits, each element is written
    by one thread).  Outside it, on this thread: a plan that does not own the cores shares them
    with BLAS's spinning workers, and a second thread of ours would only fight them."""
    if owned() and max(args[i].size for i in batched) >= _SPLIT_MIN_ELEMENTS:
        cpu_loops.over_images(loop, args, batched)
    else:
        loop(*args)


def elementwise(loop: Callable[..., None], arrays: Sequence[np.ndarray], *scalars: Any) -> None:
    """``loop(*flat arrays, *scalars)`` for a loop over same-shape C-contiguous ``arrays``
    (:func:`cpu_loops.fits`), their elements split over threads as by :func:`over_rows`."""
    flats = [cpu_loops.flat(a) for a in arrays]
    over_rows(loop, (*flats, *scalars), range(len(flats)))


def _product_by_rows_of(w: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``a @ w.T`` for C-contiguous ``w`` [N, K] and a short ``a`` [M, K], as the transpose of
    ``w @ a.T`` computed by the direct convolution kernel: a row per row of ``w``, reduced
    against ``a.T`` [K, M], whose M columns stay in registers.  MatMul's input gradient has
    this shape (``dy @ W.T``, a small batch); OpenBLAS runs it ~25% slower (W3's first dense
    layer: M=64, K=1024, N=3136), the kernel's column counts being what it is built for."""
    n, k = w.shape
    out = np.empty((n, a.shape[0]), dtype=a.dtype)
    cpu_conv.gather_gemm(w, np.arange(n, dtype=np.int64) * k, np.arange(k, dtype=np.int64),
                         np.ascontiguousarray(a.T), out)
    return np.ascontiguousarray(out.T)


def fit_blas() -> None:
    """BLAS's threads follow gpugraph's count (:func:`cpu_loops.threads`: the cores free of
    other work), set when it changes: BLAS threads waiting on a core another process holds make
    every product wait for them."""
    count = cpu_loops.threads()
    if _fitted and _fitted[0] == count:
        return
    with _owners_lock:
        if _owners[0]:  # a plan owning the cores keeps BLAS at 1 (restored to this later)
            _saved[:] = [(lib, count) for lib, _ in _saved]
        else:
            for lib in _controller():
                _set_threads(lib, count)
        _fitted[:] = [count]


_fitted: list[int] = []  # the BLAS thread count fit_blas set last


def share_cores(processes: int) -> None:
    """This machine's cores are shared by ``processes`` (data-parallel ranks): unless
    ``GPUGRAPH_CPU_THREADS`` says otherwise, gpugraph's threads and BLAS's take 1/N of them
    each (as Horovod asks of OMP_NUM_THREADS), so the ranks do not fight over the cores."""
    if processes <= 1 or config.settings.cpu_threads:
        return
    count = max(1, cpu_loops.threads() // processes)
    config.settings.cpu_threads = count
    for lib in _controller():
        _set_threads(lib, count)


def _controller() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process, numpy's among
    them (none without threadpoolctl)."""
    if not _blas:
        threadpoolctl = optional_module("threadpoolctl")
        found = []
        if threadpoolctl is not None:
            np.dot(np.ones((2, 2)), np.ones((2, 2)))  # numpy's BLAS is loaded by now anyway
            found = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
        _blas.append(list(found))
    return _blas[0]
