"""gpugraph's CPU worker threads (gpugraph/ops/cpu_crew.py): native units of kernel calls taken
from a shared counter, Python jobs, sleeping and waking, errors, nesting, concurrent callers,
fork."""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np
import pytest

from gpugraph.devices.cpu import crew as cpu_crew
from gpugraph.devices.cpu import jit as cpu_jit

pytestmark = pytest.mark.skipif(cpu_crew.get() is None, reason="llvmlite unavailable or not x86")

# A stand-in kernel with the direct convolution kernel's signature: stamps its call's place in
# the global order (an atomic counter at a1) into a0[n0], and n1 + 1000 * n2 into a5[n0].
_STAMP = """
define void @stamp(ptr %a0, ptr %a1, ptr %a2, ptr %a3, ptr %a4, ptr %a5, ptr %a6,
                   i64 %n0, i64 %n1, i64 %n2, i64 %n3, i64 %n4) {
  %order = atomicrmw add ptr %a1, i64 1 seq_cst
  %slot = getelementptr i64, ptr %a0, i64 %n0
  store i64 %order, ptr %slot
  %scaled = mul i64 %n2, 1000
  %value = add i64 %n1, %scaled
  %vslot = getelementptr i64, ptr %a5, i64 %n0
  store i64 %value, ptr %vslot
  ret void
}
"""


@pytest.fixture(scope="module")
def stamp():
    assert cpu_jit.machine() is not None
    fn = cpu_jit.compile_ir(_STAMP, "stamp", None, [ctypes.c_void_p] * 7 + [ctypes.c_int64] * 5)
    return fn, ctypes.cast(fn, ctypes.c_void_p).value


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("unit_sizes", [[1], [3, 1, 4, 1, 5, 9, 2, 6], [0, 2, 0, 7], [1] * 40])
def test_run_units_runs_every_call_once_each_unit_in_order(stamp, threads, unit_sizes) -> None:
    _, address = stamp
    calls = sum(unit_sizes)
    order = np.full(calls + 3, -1, dtype=np.int64)
    counter = np.zeros(8, dtype=np.int64)
    values = np.zeros(calls + 3, dtype=np.int64)
    # Offsets are added to the bases: a0 and a5 point 3 elements in, so slot n0 is index n0 + 3.
    records = np.array([(address, 24, 0, 0, 0, 0, 24, 0, i, i * 7, 2, 0, 0) for i in range(calls)],
                       dtype=np.int64).reshape(-1, cpu_crew.RECORD)
    starts = np.concatenate([[0], np.cumsum(unit_sizes)]).astype(np.int64)
    bases = [order.ctypes.data, counter.ctypes.data, 0, 0, 0, values.ctypes.data, 0]
    cpu_crew.get().run_units(bases, records, starts, threads)
    assert counter[0] == calls
    assert sorted(order[3:]) == list(range(calls)) and (order[:3] == -1).all()
    np.testing.assert_array_equal(values[3:], np.arange(calls) * 7 + 2000)
    for first, last in zip(starts[:-1], starts[1:], strict=True):
        assert list(order[3 + first:3 + last]) == sorted(order[3 + first:3 + last])


def test_in_parallel_runs_every_call_and_reraises_errors() -> None:
    crew = cpu_crew.get()
    seen = []
    crew.in_parallel([lambda i=i: seen.append(i) for i in range(4)])
    assert sorted(seen) == [0, 1, 2, 3]

    def fail():
        raise ValueError("worker failed")

    with pytest.raises(ValueError, match="worker failed"):
        crew.in_parallel([lambda: None, fail])
    with pytest.raises(KeyError):
        crew.in_parallel([lambda: {}["main"], lambda: None])
    seen.clear()
    crew.in_parallel([lambda: seen.append("after"), lambda: seen.append("errors")])
    assert sorted(seen) == ["after", "errors"]  # a failed split leaves the workers usable


def test_sleeping_workers_wake_for_each_job(monkeypatch) -> None:
    crew = cpu_crew.get()
    monkeypatch.setattr(crew, "_idle_spins", 0)  # workers sleep as soon as they are idle
    crew.in_parallel([lambda: None, lambda: None])  # let the workers reach the sleeping path
    total = []
    for i in range(200):
        crew.in_parallel([lambda i=i: total.append(i), lambda i=i: total.append(-i)])
    assert len(total) == 400 and sum(total) == 0


def test_nested_and_concurrent_splits_run_each_call_once() -> None:
    crew = cpu_crew.get()
    seen = []
    lock = threading.Lock()

    def record(tag):
        with lock:
            seen.append(tag)

    def nested(tag):
        crew.in_parallel([lambda: record(tag + "a"), lambda: record(tag + "b")])

    crew.in_parallel([lambda: nested("x"), lambda: nested("y")])  # a worker's job splits again
    assert sorted(seen) == ["xa", "xb", "ya", "yb"]
    seen.clear()

    def caller(tag):
        for i in range(100):
            crew.in_parallel([lambda i=i: record((tag, i, 0)), lambda i=i: record((tag, i, 1))])

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(seen) == sorted((t, i, j) for t in range(3) for i in range(100) for j in (0, 1))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_gets_its_own_crew() -> None:
    parent = cpu_crew.get()
    parent.in_parallel([lambda: None, lambda: None])  # the parent's workers exist
    pid = os.fork()
    if pid == 0:  # the child: its parent's worker threads do not exist here
        code = 1
        try:
            import signal

            signal.alarm(20)  # a hang fails the test instead of blocking it
            child = cpu_crew.get()
            seen = []
            child.in_parallel([lambda: seen.append(1), lambda: seen.append(2)])
            code = 0 if child is not parent and sorted(seen) == [1, 2] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
