"""Colocation and devices of imported ops, with TF's rules.

TF's importer rewrites each ``_class`` entry (``loc:@name``) as its target node was renamed and
rejects unknown targets (GraphConstructor), then sets devices (``importer._ProcessNewOps``): a
colocated op takes the device of its first colocation target that has one; any other op keeps
its NodeDef device in canonical form, merged under outer ``device`` scopes.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from gpugraph.errors import GraphDefError
from gpugraph.framework import names
from gpugraph.framework.device_spec import DeviceSpec
from gpugraph.framework.graph import Graph
from gpugraph.framework.ops import Operation

_Classes = tuple[tuple[bytes, ...], Sequence[str]]  # `_class` entries, colocation targets


class Colocation:
    """Rewrites ``_class`` values as nodes were renamed, once per distinct value.

    Many ops share one ``_class`` value (every op touching a variable has the same), so a key
    of the value (its bytes) indexes a cache of (new entries, colocation targets).
    """

    def __init__(self, known: set[str], renames: dict[str, str] | None) -> None:
        self._known = known
        self._renames = renames
        self._cache: dict[bytes, _Classes] = {}

    def rewrite(self, node_defs: Any, index: int, key: Hashable, name: str) -> _Classes:
        """The new ``_class`` entries of ``node_defs[index]`` (a tuple shared by the ops with
        the same value), and the names of the other ops it colocates with.  ``key``: equal
        for equal values (the value's bytes, or a node table's class key)."""
        hit = self._cache.get(key)
        if hit is None:
            node_def = node_defs[index]
            hit = self._cache[key] = self._rewrite_value(node_def, node_def.attr["_class"])
        entries, targets = hit
        if name in targets:
            targets = tuple(t for t in targets if t != name)
        return entries, targets

    def _rewrite_value(self, node_def: Any, value: Any) -> _Classes:
        entries: list[bytes] = []
        targets: list[str] = []
        for entry in value.list.s:
            target = names.colocation_target(entry)
            if target is None:
                entries.append(entry)
                continue
            if target not in self._known:
                raise GraphDefError(None, None, (
                    f"Node '{node_def.name}' expects to be colocated with unknown node '{target}'"))
            new_target = target if self._renames is None else self._renames[target]
            entries.append(f"{names.COLOCATION_PREFIX}{new_target}".encode())
            targets.append(new_target)
        return tuple(entries), tuple(targets)


def assign_devices(graph: Graph, ops: list[Operation],
                   devices: list[tuple[Operation, Sequence[str]]]) -> None:
    """TF's ``importer._ProcessNewOps`` device rules.

    Without outer device scopes only ``devices`` (ops with a NodeDef device or a colocation
    target, in creation order) can change; the others keep their empty device.
    """
    if graph._device_stack:
        _assign_devices_under_scopes(graph, ops)
        return
    for op, targets in devices:
        if targets:
            op._device = ""
        else:
            op._device = DeviceSpec.from_string(op._device).to_string()
    for op, targets in devices:
        if targets:
            _copy_colocated_device(graph, op, targets)


def _assign_devices_under_scopes(graph: Graph, ops: list[Operation]) -> None:
    colocated: list[tuple[Operation, list[str]]] = []
    for op in ops:
        original = op._device
        op._device = ""
        targets = op._colocation_targets() if op._colocation else ()
        if targets:
            colocated.append((op, targets))
        else:
            if original:
                op._device = DeviceSpec.from_string(original).to_string()
            graph._apply_device_scopes(op)
    for op, targets in colocated:
        _copy_colocated_device(graph, op, targets)


def _copy_colocated_device(graph: Graph, op: Operation, targets: Sequence[str]) -> None:
    for target in targets:
        other = graph._by_name.get(target)
        if other is not None and other._device:
            op._device = DeviceSpec.from_string(other._device).to_string()
            return
