"""The restart rule: a checkpoint remembers where its variables lived.

TF documents that "restarting training from saved meta_graph only works if the device
assignments have not changed", but nothing enforces it.  With every checkpoint it writes,
gpugraph stores ``<prefix>.gpugraph-devices.json``: the device each variable was placed on.
TF ignores the file (it reads only ``.index``/``.data``).  Restoring such a checkpoint into a
session that places any of those variables elsewhere raises one DevicePlacementError with an
old -> new table, unless the session opted in (``device_map`` or ``allow_device_change``).
For checkpoints TF wrote there is no file: the graph's device fields are the record, and
placement itself refuses requests that can't be honoured.
"""

from __future__ import annotations

import json
from typing import Any

from gpugraph import errors
from gpugraph.io import bundle

SUFFIX = ".gpugraph-devices.json"
FORMAT = "gpugraph-devices-v1"


def record_path(prefix: str) -> str:
    return prefix + SUFFIX


def write_record(prefix: str, devices: dict[str, str]) -> None:
    """Atomically writes the variable -> device record next to checkpoint ``prefix``.

    Raises:
        OpError: the file cannot be written (:func:`gpugraph.io.bundle.write_error`), naming
            it; no temporary file is left then.
    """
    text = json.dumps({"format": FORMAT, "variables": dict(sorted(devices.items()))}, indent=1)
    bundle.write_file_atomically(record_path(prefix), text.encode("utf-8"))


def read_record(prefix: str) -> dict[str, str] | None:
    """The record of checkpoint ``prefix``, or None if it has none (e.g. TF wrote it)."""
    try:
        with open(record_path(prefix), encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise errors.DataLossError(None, None, f"Unreadable device record {record_path(prefix)}: "
                                   f"{e}", {"path": record_path(prefix)}) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise errors.DataLossError(None, None, f"{record_path(prefix)} is not a gpugraph device "
                                   "record", {"path": record_path(prefix)})
    return dict(data.get("variables", {}))


def check_restart(prefix: str, recorded: dict[str, str], current: dict[str, str]) -> None:
    """Raises DevicePlacementError when variables would move between save and restore."""
    moved = [(name, old, current[name]) for name, old in sorted(recorded.items())
             if name in current and current[name] != old]
    if not moved:
        return
    width = max(len(n) for n, _, _ in moved)
    rows = [f"  {name:<{width}}  {old}  ->  {new}" for name, old, new in moved]
    message = "\n".join([
        f"Checkpoint {prefix} was saved with {len(moved)} variable(s) on other devices than "
        "this session places them (TF: restarting from a meta graph only works if the device "
        "assignments have not changed):", *rows,
        "Fixes: restore on the same devices; or opt in to the move with "
        "config={'allow_device_change': True} or a device_map that maps the old devices."])
    report: dict[str, Any] = {"checkpoint": prefix,
                              "moved": [{"variable": n, "saved_on": o, "restored_on": w}
                                        for n, o, w in moved]}
    raise errors.DevicePlacementError(None, None, message, {"report": report})
