"""How many of this process's cores other work leaves free, so gpugraph's threads and BLAS's
do not outnumber them.

A step split over 2 threads on 2 cores where another process keeps one core busy waits for
the thread that shares its core: measured on W1 (2 cores, one busy process beside it), BLAS on
2 threads took 35 ms a step and on 1 thread 22 ms, TF's pool 21 ms.  So the CPU time other
processes used over the last half second (the machine's busy and stolen time in ``/proc/stat``
less this process's own, ``os.times``) is taken off the cores this process may use; the
sample is taken at most every 0.5 s, when a plan starts a run.  An interval in which this
process spent more than a tenth of the time between runs is not used: what other processes did
while it waited (a benchmark's other side, another job between epochs) says nothing of the
cores its runs meet.  Where ``/proc/stat`` does not exist (not Linux), every core counts as
free.
"""

from __future__ import annotations

import os
import threading
import time

_INTERVAL = 0.5  # seconds between samples
_STALE = 4 * _INTERVAL
_IDLE_SHARE = 0.1  # of an interval spent between runs, above which it is not used
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class _Sampler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: tuple[float, float, float] | None = None  # (wall, machine busy, ours)
        self.others = 0.0  # cores other processes kept busy over the last interval
        self.ended: float | None = None  # when the last run ended (None: one is running)
        self.idle = 0.0  # seconds spent between runs since the last sample

    def run_started(self) -> None:
        if self.ended is not None:
            self.idle += time.monotonic() - self.ended
            self.ended = None

    def run_ended(self) -> None:
        self.ended = time.monotonic()

    def others_busy(self) -> float:
        now = time.monotonic()
        if self.last is not None and now - self.last[0] < _INTERVAL:
            return self.others
        with self.lock:
            busy, ours = _machine_busy(), _own_cpu()
            if busy is None:
                return 0.0
            # An interval much longer than the sampling one, or one this process spent partly
            # between runs, spans a pause of this process (while another program ran on its
            # own, say): it says nothing of the load the next runs meet, so the last estimate
            # stands.
            wall = now - self.last[0] if self.last is not None else 0.0
            if 0 < wall <= _STALE and self.idle <= _IDLE_SHARE * wall:
                self.others = max(0.0, ((busy - self.last[1]) - (ours - self.last[2])) / wall)
            self.last = (now, busy, ours)
            self.idle = 0.0
        return self.others


_SAMPLER = _Sampler()


def run_started() -> None:
    """A plan starts a run (the time since the last one ended counts as a pause)."""
    _SAMPLER.run_started()


def run_ended() -> None:
    """A plan's run ended."""
    _SAMPLER.run_ended()


def free_cores(total: int) -> int:
    """Of ``total`` cores, those other processes left free lately (at least 1)."""
    return max(1, min(total, round(total - _SAMPLER.others_busy())))


def _machine_busy() -> float | None:
    """CPU-seconds all processes used (and the hypervisor stole) since boot."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...
    values = [int(v) for v in fields[1:9]]
    return (sum(values[:3]) + sum(values[5:8])) / _TICK


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system
