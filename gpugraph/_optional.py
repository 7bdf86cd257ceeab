"""Optional modules (numba, and gpugraph's parts compiled with it), imported once on first use."""

from __future__ import annotations

import importlib
from typing import Any

_modules: dict[str, Any] = {}  # name -> the module, or False where it cannot be imported


def optional_module(name: str) -> Any | None:
    """The module ``name``, or None when it cannot be imported here (remembered either way)."""
    module = _modules.get(name)
    if module is None:
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - ImportError, or numba refusing this numpy version
            module = False
        _modules[name] = module
    return module or None
