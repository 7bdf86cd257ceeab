"""The NodeDef fields an import reads, as columns: scanned from the wire in bulk, or read
through upb.

An import reads each node's name, op, device, inputs and a few attrs.  Through upb's Python
objects that costs ~2 us a node, a third of a whole import; a compiled scan of the serialized
GraphDef (:mod:`gpugraph.io._wire_scan`, numba) gives the same columns in ~0.7 us a node and
keys that let the importer skip the attrs of nodes like ones it has seen.  The scan reads the
GraphDef's bytes as parsed when the caller has them (a binary ``.meta`` file, bytes), else a
serialization of the proto.  Small graphs, and anything the scan gives up on or a process
without numba, are read through upb.  Both ways give equal columns
(``tests/io/test_node_table.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gpugraph import config
from gpugraph._optional import optional_module

# Where the scan pays: ~2 us a node saved on a graph read from a binary file, but the first
# compiled call in a process starts numba (~0.5 s, which CPU training would pay later anyway).
SCAN_MIN_NODES = 8192


class NodeTable:
    """Per node of a GraphDef, in order: its NodeDef proto and the fields an import reads.

    Attributes:
        defs: the NodeDef protos, a GraphDef's ``node`` field or a list (indexed as needed:
            the scan leaves the NodeDefs' Python objects unmade).
        names, ops, devices: strings.
        inputs: every node's inputs, flat; node ``i``'s are ``inputs[starts[i]:starts[i + 1]]``.
        class_keys: per node, the first node whose ``_class`` AttrValue has the same bytes
            (equal keys, equal values), None where it has none.
        signature_keys: per node, the first node of the same op type whose attrs that an
            OpDef can name (no leading ``_``) have the same bytes: equal keys, equal input and
            output dtypes.
        A table read through upb has neither key column (None): the importer reads those
        attrs from the NodeDefs as it goes, which costs the same.
    """

    __slots__ = ("defs", "names", "ops", "devices", "inputs", "starts", "class_keys",
                 "signature_keys")

    def __init__(self, defs: list, names: list[str], ops: list[str], devices: list[str],
                 inputs: list[str], starts: list[int], class_keys: list[int | None] | None,
                 signature_keys: list[int] | None) -> None:
        self.defs = defs
        self.names = names
        self.ops = ops
        self.devices = devices
        self.inputs = inputs
        self.starts = starts
        self.class_keys = class_keys
        self.signature_keys = signature_keys

    def map_devices(self, fn: Callable[[str], str]) -> None:
        """Rewrites every node's device (``clear_devices``, a device map) for this import."""
        self.devices = [fn(device) for device in self.devices]


def node_table(graph_def: Any, wire: bytes | memoryview | None = None) -> NodeTable:
    """The columns of ``graph_def``, scanned when it has ``SCAN_MIN_NODES`` nodes or more
    (``GPUGRAPH_WIRE_SCAN=0``: never, ``=1``: always).

    ``wire``: its serialized bytes as parsed, when the caller has them; else it is serialized
    for the scan (~1 us a node, half of what the scan saves).
    """
    defs = graph_def.node
    if _wanted(len(defs)):
        table = scanned_table(defs, graph_def.SerializeToString() if wire is None else wire)
        if table is not None:
            return table
    return read_table(defs)


def _wanted(nodes: int) -> bool:
    setting = config.settings.wire_scan
    if setting is not None:
        return setting
    return nodes >= SCAN_MIN_NODES


def read_table(defs: Any) -> NodeTable:
    """The columns read through upb, field by field."""
    names: list[str] = []
    ops: list[str] = []
    devices: list[str] = []
    inputs: list[str] = []
    starts = [0]
    for node in defs:
        names.append(node.name)
        ops.append(node.op)
        devices.append(node.device)
        inputs.extend(node.input)
        starts.append(len(inputs))
    return NodeTable(defs, names, ops, devices, inputs, starts, None, None)


def scanned_table(defs: Any, wire: bytes | memoryview) -> NodeTable | None:
    """The columns scanned from ``wire``; None when numba is missing or the scan gives up."""
    scanner = optional_module("gpugraph.io._wire_scan")  # None without numba
    if scanner is None:
        return None
    buf = np.frombuffer(wire, np.uint8)
    size = buf.size
    # Bounds: a node costs >= 2 bytes of wire and adds one separator per string column; a
    # signature key repeats the node's op type and 4 bytes, at most 3x the node's wire size.
    lines = np.empty((3, size + size // 2 + 16), np.uint8)
    inputs, keys = np.empty(size + 16, np.uint8), np.empty(3 * size + 16, np.uint8)
    per_node = np.empty((5, size // 2 + 1), np.int64)
    ends = np.zeros(5, np.int64)
    status, count = scanner.scan(buf, lines, inputs, keys, per_node, ends)
    if status != scanner.OK or count != len(defs):
        return None
    counts, class_lo, class_hi, key_lo, key_hi = per_node[:, :count]
    names, ops, devices = (_split_lines(line, end) for line, end in zip(lines, ends.tolist()))
    starts = [0]
    starts.extend(np.cumsum(counts).tolist())
    class_ids, signature_ids = np.empty(count, np.int64), np.empty(count, np.int64)
    scanner.first_equal(buf, class_lo, class_hi, class_ids)
    scanner.first_equal(keys, key_lo, key_hi, signature_ids)
    return NodeTable(defs, names, ops, devices, _split_lines(inputs, int(ends[3])), starts,
                     [None if i < 0 else i for i in class_ids.tolist()], signature_ids.tolist())


def _split_lines(buffer: np.ndarray, end: int) -> list[str]:
    # upb checked that every string is UTF-8, and the separators are ASCII.
    return str(memoryview(buffer)[:end], "utf-8").split("\n")[:-1]

