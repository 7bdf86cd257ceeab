"""Fixtures shared across test directories."""

from __future__ import annotations

import importlib.util

import pytest

from gpugraph import config


@pytest.fixture(autouse=True)
def _config_after_each_test():
    """gpugraph reads its GPUGRAPH_* switches once (gpugraph.config); after a test that
    changed them, the next one starts from the environment again."""
    yield
    config.reload()


@pytest.fixture(autouse=True)
def _switches_follow_the_environment(monkeypatch):
    """A test's ``monkeypatch.setenv("GPUGRAPH_...")``/``delenv`` sets a switch as a user's
    environment would before the process starts: gpugraph.config re-reads it."""
    setenv, delenv = monkeypatch.setenv, monkeypatch.delenv

    def set_switch(name, value, prepend=None):
        setenv(name, value, prepend)
        if name.startswith("GPUGRAPH_"):
            config.reload()

    def del_switch(name, raising=True):
        delenv(name, raising)
        if name.startswith("GPUGRAPH_"):
            config.reload()

    monkeypatch.setenv, monkeypatch.delenv = set_switch, del_switch


@pytest.fixture(params=["read", "scan"])
def node_tables(request, monkeypatch):
    """Runs a test once with each way an import reads its NodeDefs: through upb, and with the
    compiled wire scan (gpugraph/io/node_table.py), whatever the graph's size."""
    if request.param == "scan" and importlib.util.find_spec("numba") is None:
        pytest.skip("the wire scan needs numba")
    monkeypatch.setenv("GPUGRAPH_WIRE_SCAN", "0" if request.param == "read" else "1")
    return request.param
