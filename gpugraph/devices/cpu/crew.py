"""gpugraph's CPU worker threads, and a hand-off to them that costs microseconds, not ~90.

A plan that owns the cores (:mod:`cpu_threads`) splits each convolution, large MatMul and
memory-bound loop over the CPU's threads, ~25 times in a W3 training step.  With a thread pool
each split costs a wake-up: the pool's worker sleeps in the kernel between jobs, and on a
virtual machine waking it takes ~60-90 us (an inter-processor interrupt that leaves the guest),
while the calling thread has already done half the work; measured on W3, the worker started
its half 90 us late (median) and the splits' wall time exceeded their longest half by 3.3 ms
per 43 ms step.  TF's Eigen thread pool spins before it sleeps for the same reason.

So a :class:`Crew` worker waits for work by spinning (with ``pause``) in compiled code, for
about a millisecond after its last job, and only then sleeps on a condition variable.  Two
kinds of job reach it through a row of shared words:

* **native** (:meth:`Crew.run_units`): units of compiled-kernel calls (the direct convolution
  kernel's row blocks) that every thread, the caller included, takes from one atomic counter
  until none are left.  The worker runs them inside its spin loop, without ever taking the
  GIL, so a hand-off costs a cache-line transfer; and since units are taken as threads become
  free, a worker that starts late, or runs on a slower core, does less of the work instead of
  holding up the op.
* **Python** (:meth:`Crew.in_parallel`): a callable (numba loops, BLAS calls) that the worker
  runs after its spin loop returns; it still needs the GIL, but no longer a wake-up.

Everything here is x86-64 IR compiled by :mod:`cpu_jit`; where that is unavailable,
:func:`get` returns None and callers use a thread pool.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gpugraph import config
from gpugraph.devices.cpu import jit as cpu_jit
from gpugraph.devices.cpu.fpenv import flush_denormals

_SPIN_SECONDS = 1e-3  # how long an idle worker spins before it sleeps
_WORDS = 16  # int64 words per worker: 128 bytes, two cache lines of its own
_SEQ, _KIND, _ARGS, _DONE = 0, 1, 2, 8  # word indices: posted job, its kind, its args, done job
_NATIVE, _PYTHON = 1, 2  # job kinds
_POINTERS = 7  # pointer arguments of a native call (then 5 integers)
RECORD = 13  # int64 fields of a native call: function, 7 pointer offsets, 5 integers
_INTS = 1 + _POINTERS  # where a record's integers start
_crew: list[Any] = []  # [(pid, Crew or None)]
_crew_lock = threading.Lock()

_IR = """
define void @run_units(ptr %bases, ptr %records, ptr %starts, i64 %units, ptr %counter) {
entry:
""" + "".join(f"""  %bp{j} = getelementptr i64, ptr %bases, i64 {j}
  %b{j} = load i64, ptr %bp{j}
""" for j in range(_POINTERS)) + """  br label %next
next:
  %u = atomicrmw add ptr %counter, i64 1 monotonic
  %more = icmp ult i64 %u, %units
  br i1 %more, label %unit, label %exit
unit:
  %sp = getelementptr i64, ptr %starts, i64 %u
  %first = load i64, ptr %sp
  %sp1 = getelementptr i64, ptr %sp, i64 1
  %last = load i64, ptr %sp1
  %empty = icmp uge i64 %first, %last
  br i1 %empty, label %next, label %call
call:
  %r = phi i64 [%first, %unit], [%r.next, %call]
  %at = mul i64 %r, """ + str(RECORD) + """
  %rec = getelementptr i64, ptr %records, i64 %at
  %fi = load i64, ptr %rec
  %fn = inttoptr i64 %fi to ptr
""" + "".join(f"""  %o{j}p = getelementptr i64, ptr %rec, i64 {j + 1}
  %o{j} = load i64, ptr %o{j}p
  %s{j} = add i64 %o{j}, %b{j}
  %a{j} = inttoptr i64 %s{j} to ptr
""" for j in range(_POINTERS)) + "".join(f"""  %n{j}p = getelementptr i64, ptr %rec, i64 {_INTS + j}
  %n{j} = load i64, ptr %n{j}p
""" for j in range(5)) + """  call void %fn(""" + \
    "".join(f"ptr %a{j}, " for j in range(_POINTERS)) + """
                i64 %n0, i64 %n1, i64 %n2, i64 %n3, i64 %n4)
  %r.next = add i64 %r, 1
  %again = icmp ult i64 %r.next, %last
  br i1 %again, label %call, label %next
exit:
  ret void
}

define i64 @serve(ptr %w, i64 %iters) {
entry:
  %donep = getelementptr i64, ptr %w, i64 8
  %kindp = getelementptr i64, ptr %w, i64 1
  br label %wait
wait:
  %done = load atomic i64, ptr %donep monotonic, align 8
  %posted = call i64 @spin(ptr %w, i64 %done, i64 0, i64 %iters)
  %idle = icmp eq i64 %posted, 0
  br i1 %idle, label %sleep, label %job
sleep:
  ret i64 0
job:
  %seq = load atomic i64, ptr %w acquire, align 8
  %kind = load i64, ptr %kindp
  %is_native = icmp eq i64 %kind, 1
  br i1 %is_native, label %native, label %other
native:
""" + "".join(f"""  %ap{j} = getelementptr i64, ptr %w, i64 {j + 2}
  %av{j} = load i64, ptr %ap{j}
""" for j in range(5)) + """  %pa0 = inttoptr i64 %av0 to ptr
  %pa1 = inttoptr i64 %av1 to ptr
  %pa2 = inttoptr i64 %av2 to ptr
  %pa4 = inttoptr i64 %av4 to ptr
  call void @run_units(ptr %pa0, ptr %pa1, ptr %pa2, i64 %av3, ptr %pa4)
  store atomic i64 %seq, ptr %donep release, align 8
  br label %wait
other:
  ret i64 %kind
}

; 1 as soon as (*p == value) == equal, 0 after iters pause instructions without that.
define i64 @spin(ptr %p, i64 %value, i64 %equal, i64 %iters) {
entry:
  br label %check
check:
  %i = phi i64 [0, %entry], [%i.next, %pause]
  %v = load atomic i64, ptr %p acquire, align 8
  %same = icmp eq i64 %v, %value
  %same64 = zext i1 %same to i64
  %hit = icmp eq i64 %same64, %equal
  br i1 %hit, label %yes, label %pause
pause:
  call void @llvm.x86.sse2.pause()
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %iters
  br i1 %more, label %check, label %no
yes:
  ret i64 1
no:
  ret i64 0
}

declare void @llvm.x86.sse2.pause()
"""


def get() -> Crew | None:
    """This process's crew (made on first use; a forked child makes its own), or None where
    its compiled hand-off loops are unavailable (see :mod:`cpu_jit`)."""
    with _crew_lock:
        if not _crew or _crew[0][0] != os.getpid():
            crew = Crew() if cpu_jit.machine() is not None else None
            _crew[:] = [(os.getpid(), crew)]
        return _crew[0][1]


class Crew:
    """Worker threads that spin for work before they sleep (see the module doc); made by
    :func:`get`, grown on demand to as many workers as a split asks for."""

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []  # per worker: its _WORDS shared words
        self._jobs: list[Callable[[], Any] | None] = []
        self._errors: list[BaseException | None] = []
        self._sleeping: list[bool] = []
        self._cond = threading.Condition()
        self._grow_lock = threading.Lock()
        self._busy = threading.Lock()  # one split at a time uses the workers
        self._run_units = cpu_jit.compile_ir(_IR, "run_units", None, [ctypes.c_void_p] * 3 + [
            ctypes.c_int64, ctypes.c_void_p])
        self._serve = cpu_jit.compile_ir(_IR, "serve", ctypes.c_int64,
                                         [ctypes.c_void_p, ctypes.c_int64])
        self._spin = cpu_jit.compile_ir(_IR, "spin", ctypes.c_int64,
                                        [ctypes.c_void_p] + [ctypes.c_int64] * 3)
        self._spins = self._calibrate()  # ~_SPIN_SECONDS of pause instructions
        # GPUGRAPH_CPU_SPIN=0: idle workers sleep at once, as in a thread pool (for comparisons)
        self._idle_spins = self._spins if config.settings.cpu_spin else 0

    def run_units(self, bases: Sequence[int], records: np.ndarray, starts: np.ndarray,
                  threads: int) -> None:
        """Runs native calls on ``threads`` threads (this one included): ``records`` [n, 13]
        int64 rows (function address; seven byte offsets, added to the seven ``bases``
        addresses, passed as pointers; five integers), grouped into units
        ``starts[u]:starts[u+1]``, each unit's calls in order on one thread, units taken in
        order by whichever thread is free.  The arrays must stay alive until it returns."""
        control = np.zeros(_WORDS, dtype=np.int64)  # [0]: the units' counter; [8:15]: bases
        control[8:8 + _POINTERS] = bases
        units = len(starts) - 1
        args = (control[8:].ctypes.data, records.ctypes.data, starts.ctypes.data, units,
                control.ctypes.data)
        if not self._busy.acquire(blocking=False):  # another thread's split, or a nested one
            self._run_units(*args)
            return
        try:
            posted = [self._post(i, _NATIVE, None, args)
                      for i in range(max(0, min(threads, units) - 1))]
            self._run_units(*args)
            self._finish(posted)
        finally:
            self._busy.release()

    def in_parallel(self, calls: Sequence[Callable[[], Any]]) -> None:
        """Runs ``calls``: the first on this thread, the others on workers; returns when all
        are done, re-raising the first exception."""
        if not self._busy.acquire(blocking=False):  # another thread's split, or a nested one
            for call in calls:
                call()
            return
        try:
            posted = [self._post(i, _PYTHON, call, None) for i, call in enumerate(calls[1:])]
            try:
                calls[0]()
            finally:
                self._finish(posted)
            errors = [self._errors[i] for i in range(len(posted))]
            self._errors[:len(posted)] = [None] * len(posted)
        finally:
            self._busy.release()
        for error in errors:
            if error is not None:
                raise error

    # --- the calling side ----------------------------------------------------------------------
    def _post(self, i: int, kind: int, job: Callable[[], Any] | None,
              args: Sequence[int] | None) -> int:
        self._grow(i + 1)
        row = self._rows[i]
        self._jobs[i] = job
        row[_KIND] = kind
        if args is not None:
            row[_ARGS:_ARGS + len(args)] = args
        seq = int(row[_SEQ]) + 1
        row[_SEQ] = seq  # last: a spinning worker sees the whole job (x86 keeps store order)
        with self._cond:  # a sleeping worker checks for work under the lock: no lost wake-up
            if self._sleeping[i]:
                self._cond.notify_all()
        return seq

    def _finish(self, posted: Sequence[int]) -> None:
        for i, seq in enumerate(posted):
            address = self._rows[i].ctypes.data + 8 * _DONE
            while not self._spin(address, seq, 1, self._spins):  # the GIL is free meanwhile
                pass

    # --- the workers ---------------------------------------------------------------------------
    def _grow(self, count: int) -> None:
        with self._grow_lock:
            while len(self._rows) < count:
                i = len(self._rows)
                self._rows.append(_aligned_words())
                self._jobs.append(None)
                self._errors.append(None)
                self._sleeping.append(False)
                threading.Thread(target=self._work, args=(i,), daemon=True,
                                 name=f"gpugraph-cpu-{i + 1}").start()

    def _work(self, i: int) -> None:
        row = self._rows[i]
        address = row.ctypes.data
        with flush_denormals():  # as on the plan's thread (MXCSR is per thread)
            while True:
                kind = self._serve(address, self._idle_spins)  # runs native jobs itself
                if kind == _PYTHON:
                    seq = int(row[_SEQ])
                    try:
                        self._jobs[i]()
                    except BaseException as error:  # noqa: BLE001 - re-raised by the caller
                        self._errors[i] = error
                    self._jobs[i] = None
                    row[_DONE] = seq
                elif kind == 0:
                    self._sleep(i, row)

    def _sleep(self, i: int, row: np.ndarray) -> None:
        with self._cond:
            self._sleeping[i] = True
            while row[_SEQ] == row[_DONE]:
                self._cond.wait(0.1)  # the timeout only guards against the unforeseen
            self._sleeping[i] = False

    def _calibrate(self) -> int:
        """``pause`` iterations in about _SPIN_SECONDS (its latency varies ~30x across x86
        cores)."""
        word = _aligned_words()
        count = 20000
        start = time.perf_counter()
        self._spin(word.ctypes.data, 1, 1, count)  # never 1: spins all the way
        elapsed = max(time.perf_counter() - start, 1e-6)
        return max(1000, int(count * _SPIN_SECONDS / elapsed))


def _aligned_words() -> np.ndarray:
    """_WORDS zeroed int64 words starting on a cache line (so no two threads' words share one)."""
    raw = np.zeros(_WORDS + 8, dtype=np.int64)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip:skip + _WORDS]
