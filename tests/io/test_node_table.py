"""The import's node table: the compiled wire scan gives what reading through upb gives.

The scan must agree with upb's decoding wherever it answers (last field wins, repeated fields
concatenate, unknown fields skipped, map entries in any field order) and give up, never guess,
where it would not (a newline in a string, groups, an AttrValue with two fields set).
"""

from __future__ import annotations

import pathlib

import pytest

from gpugraph import _optional
from gpugraph import _proto as pb
from gpugraph.io import meta as meta_io
from gpugraph.io import node_table as nt

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
META_FILES = sorted(p for p in FIXTURES.rglob("*.meta") if p.parent.name != "errors")  # intact
COLUMNS = ("names", "ops", "devices", "inputs", "starts")

pytest.importorskip("numba")  # the scan's compiler (a dependency; without it imports read upb)


# --- wire encoding, by hand, for cases no serializer writes ---------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | int, wire_type: int = 2) -> bytes:
    tag = _varint(number << 3 | wire_type)
    if wire_type == 2:
        return tag + _varint(len(payload)) + payload
    if wire_type == 0:
        return tag + _varint(payload)
    return tag + payload  # fixed 1 (8 bytes) / 5 (4 bytes)


def _entry(key: bytes, value: pb.AttrValue, value_first: bool = False) -> bytes:
    parts = [_field(1, key), _field(2, value.SerializeToString())]
    return _field(5, b"".join(reversed(parts) if value_first else parts))


def _graph(*nodes: bytes) -> bytes:
    return b"".join(_field(1, node) for node in nodes)


def _tables(wire: bytes) -> tuple[nt.NodeTable | None, nt.NodeTable]:
    graph_def = pb.GraphDef.FromString(wire)  # upb accepts it: the scan only sees parsed bytes
    defs = list(graph_def.node)
    return nt.scanned_table(defs, wire), nt.read_table(defs)


def _check_same(wire: bytes) -> nt.NodeTable:
    scanned, read = _tables(wire)
    assert scanned is not None
    for column in COLUMNS:
        assert getattr(scanned, column) == getattr(read, column), column
    _check_keys(scanned)
    return scanned


def _check_keys(table: nt.NodeTable) -> None:
    """Equal keys mean equal values; a class key exactly where a node has ``_class``."""
    for i, node in enumerate(table.defs):
        assert (table.class_keys[i] is not None) == ("_class" in node.attr), node.name
        if table.class_keys[i] is not None:
            first = table.defs[table.class_keys[i]]
            assert first.attr["_class"] == node.attr["_class"], node.name
        first = table.defs[table.signature_keys[i]]
        assert first.op == node.op, node.name
        assert _op_attrs(first) == _op_attrs(node), node.name


def _op_attrs(node) -> dict:
    # What a signature can read: attrs an OpDef can name, a tensor value's content aside.
    return {k: "a tensor" if v.WhichOneof("value") == "tensor" else v.SerializeToString()
            for k, v in node.attr.items() if not k.startswith("_")}


# --- files TF wrote -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", META_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_scan_matches_upb_on_fixture_files(path):
    meta, wire = meta_io.load_meta_graph(path)
    if wire is None:  # a text file: the scan reads a serialization
        wire = meta.graph_def.SerializeToString()
    defs = list(meta.graph_def.node)
    scanned, read = nt.scanned_table(defs, wire), nt.read_table(defs)
    assert scanned is not None
    for column in COLUMNS:
        assert getattr(scanned, column) == getattr(read, column), column
    _check_keys(scanned)


def test_fixture_files_have_what_the_keys_are_for():
    # Guards the test above: the files have colocated nodes and shared signatures.
    tables = [_check_same(bytes(meta_io.load_meta_graph(p)[1]))
              for p in META_FILES if meta_io.load_meta_graph(p)[1] is not None]
    assert any(k is not None for t in tables for k in t.class_keys)
    assert any(len(set(t.signature_keys)) < len(t.signature_keys) for t in tables)


def test_graph_def_bytes_are_the_parsed_field():
    path = FIXTURES / "meta" / "devices.meta"
    meta, wire = meta_io.load_meta_graph(path)
    assert pb.GraphDef.FromString(bytes(wire)) == meta.graph_def
    text_meta, text_wire = meta_io.load_meta_graph(FIXTURES / "meta" / "mlp_ref_sgd_text.meta")
    assert text_wire is None and len(text_meta.graph_def.node) > 0
    twice = meta.SerializeToString() + _field(2, meta.graph_def.SerializeToString())
    assert meta_io.graph_def_bytes(twice) is None  # upb merges the two; no scan then


# --- the wire, as upb decodes it ------------------------------------------------------------------
def _attr_type(enum: int) -> pb.AttrValue:
    return pb.AttrValue(type=enum)


def _class(*targets: str) -> pb.AttrValue:
    value = pb.AttrValue()
    value.list.s.extend(f"loc:@{t}".encode() for t in targets)
    return value


def test_last_field_wins_and_repeated_fields_concatenate():
    node = (_field(1, b"first") + _field(2, b"Op") + _field(3, b"a") + _field(1, b"b")
            + _field(3, b"c:1") + _field(4, b"/cpu:0") + _field(2, b"Identity") + _field(3, b"^d"))
    table = _check_same(_graph(node, _field(1, b"a"), _field(1, b"c"), _field(1, b"d")))
    assert table.names == ["b", "a", "c", "d"]
    assert table.ops == ["Identity", "", "", ""]
    assert table.inputs == ["a", "c:1", "^d"]
    assert table.starts == [0, 3, 3, 3, 3]


def test_unknown_fields_and_empty_nodes_are_skipped():
    unknown = (_field(9, 7, 0) + _field(10, b"\x01" * 8, 1) + _field(11, b"\x02" * 4, 5)
               + _field(12, b"whatever") + _field(6, b"\x0a\x00")  # 6: experimental_debug_info
               + _field(2, 5, 0) + _field(3, -1 & (2**64 - 1), 0))  # known numbers, wrong types
    graph = (_field(4, b"\x08\x05") + _graph(_field(1, b"x") + unknown, b"", _field(1, b"y"))
             + _field(3, 17, 0))  # GraphDef.versions, and the deprecated version
    table = _check_same(graph)
    assert table.names == ["x", "", "y"]


def test_map_entries_in_any_order_and_the_last_class_wins():
    node = (_field(1, b"n") + _field(2, b"Identity")
            + _entry(b"T", _attr_type(1), value_first=True)
            + _entry(b"_class", _class("a"))
            + _entry(b"_class", _class("b")))
    other = _field(1, b"m") + _field(2, b"Identity") + _entry(b"T", _attr_type(1)) \
        + _entry(b"_class", _class("b"))
    table = _check_same(_graph(node, other, _field(1, b"a"), _field(1, b"b")))
    assert table.class_keys[:2] == [0, 0]  # both end up colocated with b
    assert table.signature_keys[:2] == [0, 1]  # same attrs, written differently: own keys


def test_signature_keys_tell_types_and_op_types_apart():
    def node(name: str, op: bytes, dtype: int, extra: bytes = b"") -> bytes:
        return _field(1, name.encode()) + _field(2, op) + _entry(b"T", _attr_type(dtype)) + extra

    shapes = pb.AttrValue()
    shapes.list.shape.add().dim.add(size=3)
    tensor = pb.AttrValue()
    tensor.tensor.dtype = 1
    tensor.tensor.float_val.append(2.0)
    nodes = [node("a", b"Identity", 1), node("b", b"Identity", 2), node("c", b"Neg", 1),
             node("d", b"Identity", 1, _entry(b"_output_shapes", shapes)),  # "_": not an OpDef attr
             node("e", b"Const", 1, _entry(b"value", tensor)),
             node("f", b"Const", 1, _entry(b"value", pb.AttrValue(tensor=pb.TensorProto(dtype=1)))),
             node("g", b"Identity", 1, _entry(b"N", pb.AttrValue(i=2))),
             node("h", b"Identity", 1, _entry(b"N", pb.AttrValue(i=-1))),  # a 10-byte varint
             node("i", b"Identity", 1, _entry(b"N", pb.AttrValue(i=-1)))]
    table = _check_same(_graph(*nodes))
    # a tensor value stands in as a marker: e and f share a key, their op and dtype agree
    assert table.signature_keys == [0, 1, 2, 0, 4, 4, 6, 7, 7]


@pytest.mark.parametrize("node, why", [
    (_field(1, b"a\nb"), "a newline in a name"),
    (_field(1, b"a") + _field(3, b"x\n"), "a newline in an input"),
    (_field(1, b"a") + _field(13, b"", 3) + _field(13, b"", 4), "a group"),
    (_field(1, b"a") + _field(5, _field(1, b"T") + _field(2, _field(6, 1, 0) + _field(3, 2, 0))),
     "an AttrValue with two fields set"),
    (_field(1, b"a") + _field(5, _field(1, b"T") + _field(1, b"U") + _field(2, b"")),
     "a map entry with two keys"),
])
def test_the_scan_gives_up_where_it_would_guess(node, why):
    wire = _graph(node)
    graph_def = pb.GraphDef.FromString(wire)  # upb takes it
    assert nt.scanned_table(list(graph_def.node), wire) is None, why
    table = nt.node_table(graph_def, wire)  # falls back to upb
    assert table.signature_keys is None and table.names == [n.name for n in graph_def.node]


# --- choosing -------------------------------------------------------------------------------------
def _big_graph_def(nodes: int) -> pb.GraphDef:
    graph_def = pb.GraphDef()
    for i in range(nodes):
        node = graph_def.node.add(name=f"n{i}", op="NoOp")
        if i:
            node.input.append(f"^n{i - 1}")
    return graph_def


def test_large_graphs_are_scanned_small_ones_read(monkeypatch):
    monkeypatch.delenv("GPUGRAPH_WIRE_SCAN", raising=False)
    small, large = _big_graph_def(10), _big_graph_def(nt.SCAN_MIN_NODES)
    assert nt.node_table(small).signature_keys is None
    table = nt.node_table(large)  # no bytes given: serialized for the scan
    assert table.signature_keys is not None
    assert table.inputs == nt.read_table(list(large.node)).inputs
    monkeypatch.setenv("GPUGRAPH_WIRE_SCAN", "0")
    assert nt.node_table(large).signature_keys is None
    monkeypatch.setenv("GPUGRAPH_WIRE_SCAN", "1")
    assert nt.node_table(small).signature_keys is not None


def test_without_numba_tables_are_read(monkeypatch):
    monkeypatch.setenv("GPUGRAPH_WIRE_SCAN", "1")
    monkeypatch.setitem(_optional._modules, "gpugraph.io._wire_scan", False)  # as without numba
    graph_def = _big_graph_def(3)
    table = nt.node_table(graph_def, graph_def.SerializeToString())
    assert table.signature_keys is None and table.names == ["n0", "n1", "n2"]


def test_device_rewrites_apply_to_the_table():
    table = nt.read_table(list(_big_graph_def(2).node))
    table.map_devices(lambda device: "/cpu:0")
    assert table.devices == ["/cpu:0", "/cpu:0"]
