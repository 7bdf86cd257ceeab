"""The host allocator tuning a Session applies (gpugraph/devices/cpu/host_memory.py)."""

from __future__ import annotations

import sys

import pytest

from gpugraph.devices.cpu import host_memory as _host_memory


def test_can_be_turned_off(monkeypatch) -> None:
    monkeypatch.setattr(_host_memory, "_done", False)
    monkeypatch.setenv("GPUGRAPH_HOST_ALLOCATOR_CACHE", "0")
    assert _host_memory.keep_freed_buffers() is False
    assert _host_memory._done is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_applies_once_on_glibc(monkeypatch) -> None:
    calls = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr(_host_memory, "_done", False)
    monkeypatch.delenv("GPUGRAPH_HOST_ALLOCATOR_CACHE", raising=False)
    monkeypatch.setattr(_host_memory.ctypes, "CDLL", lambda name: FakeLibc())
    assert _host_memory.keep_freed_buffers() is True
    assert _host_memory.keep_freed_buffers() is True  # second call: already applied
    assert calls == [(-3, 1 << 30), (-1, 1 << 30)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
