"""Fixtures shared across test directories."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(params=["read", "scan"])
def node_tables(request, monkeypatch):
    """Runs a test once with each way an import reads its NodeDefs: through upb, and with the
    compiled wire scan (gpugraph/io/node_table.py), whatever the graph's size."""
    if request.param == "scan" and importlib.util.find_spec("numba") is None:
        pytest.skip("the wire scan needs numba")
    monkeypatch.setenv("GPUGRAPH_WIRE_SCAN", "0" if request.param == "read" else "1")
    return request.param
