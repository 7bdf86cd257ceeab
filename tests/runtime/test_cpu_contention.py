"""gpugraph's CPU threads under a cgroup quota and beside other busy processes
(gpugraph/devices/cpu/contention.py, loops.threads, threads.fit_blas)."""

from __future__ import annotations

import pytest

from gpugraph import config
from gpugraph.devices.cpu import contention, loops
from gpugraph.devices.cpu import threads as cpu_threads


@pytest.mark.parametrize(("files", "cpus"), [
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None)])
def test_a_cgroup_quota_is_read_from_v2_or_v1_files(tmp_path, files, cpus) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert loops.cgroup_cpus(str(tmp_path)) == cpus


class _Clock:
    def __init__(self) -> None:
        self.now, self.machine, self.ours = 1000.0, 0.0, 0.0

    def advance(self, seconds: float, others: float, ours: float) -> None:
        self.now += seconds
        self.machine += (others + ours) * seconds
        self.ours += ours * seconds


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    sampler = contention._Sampler()
    monkeypatch.setattr(contention, "_SAMPLER", sampler)
    monkeypatch.setattr(contention.time, "monotonic", lambda: fake.now)
    monkeypatch.setattr(contention, "_machine_busy", lambda: fake.machine)
    monkeypatch.setattr(contention, "_own_cpu", lambda: fake.ours)
    return fake


def test_cores_busy_with_other_processes_are_taken_off(clock) -> None:
    assert contention.free_cores(2) == 2  # (no interval measured yet)
    clock.advance(0.6, others=1.0, ours=1.0)  # one busy process beside a 1-thread step
    assert contention.free_cores(2) == 1
    clock.advance(0.2, others=0.0, ours=2.0)  # within the interval: the estimate stands
    assert contention.free_cores(2) == 1
    clock.advance(0.6, others=0.1, ours=2.0)  # the other process stopped
    assert contention.free_cores(2) == 2
    clock.advance(0.6, others=7.0, ours=1.0)  # never below one
    assert contention.free_cores(8) == 1


def test_a_pause_says_nothing_of_the_load_to_come(clock) -> None:
    contention.free_cores(2)
    clock.advance(0.6, others=0.0, ours=2.0)
    assert contention.free_cores(2) == 2
    clock.advance(10.0, others=2.0, ours=0.0)  # another program ran while this one waited
    assert contention.free_cores(2) == 2
    clock.advance(0.6, others=1.0, ours=1.0)  # measured again once it runs
    assert contention.free_cores(2) == 1


def test_time_between_runs_says_nothing_of_the_load_the_runs_meet(clock) -> None:
    # A benchmark's other side ran both cores busy while this process waited between its runs.
    contention.run_started()
    contention.free_cores(2)
    clock.advance(0.3, others=0.0, ours=2.0)
    contention.run_ended()
    clock.advance(0.3, others=2.0, ours=0.0)
    contention.run_started()
    assert contention.free_cores(2) == 2
    clock.advance(0.6, others=0.0, ours=2.0)  # (its runs alone, back to back)
    contention.run_ended()
    contention.run_started()
    assert contention.free_cores(2) == 2
    clock.advance(0.55, others=1.0, ours=1.0)  # a short gap: a busy process beside the runs
    contention.run_ended()
    clock.advance(0.04, others=1.0, ours=0.0)
    contention.run_started()
    assert contention.free_cores(2) == 1


def test_threads_and_blas_follow_the_free_cores(clock, monkeypatch) -> None:
    monkeypatch.setattr(loops, "_cores", [2])
    monkeypatch.delenv("GPUGRAPH_CPU_THREADS", raising=False)
    config.reload()
    contention.free_cores(2)
    clock.advance(0.6, others=1.0, ours=1.0)
    assert loops.threads() == 1
    calls = []
    monkeypatch.setattr(cpu_threads, "_controller", lambda: ["blas"])
    monkeypatch.setattr(cpu_threads, "_set_threads", lambda lib, n: calls.append(n))
    monkeypatch.setattr(cpu_threads, "_fitted", [])
    cpu_threads.fit_blas()
    cpu_threads.fit_blas()  # (unchanged: not set again)
    clock.advance(0.6, others=0.0, ours=2.0)
    cpu_threads.fit_blas()
    assert calls == [1, 2]
    monkeypatch.setenv("GPUGRAPH_CPU_THREADS", "2")  # an explicit count is kept
    config.reload()
    clock.advance(0.6, others=1.0, ours=1.0)
    assert loops.threads() == 2
    monkeypatch.delenv("GPUGRAPH_CPU_THREADS")
    config.reload()
