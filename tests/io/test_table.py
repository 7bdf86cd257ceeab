"""gpugraph.io.table (the LevelDB-format .index container) against TF-written tables and itself."""

from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path

import pytest

from gpugraph import _proto as pb
from gpugraph.errors import DataLossError, NotFoundError, UnimplementedError, UnknownError
from gpugraph.io import table
from gpugraph.io.table import (
    Corrupt,
    Table,
    TableBuilder,
    build_table,
    crc32c,
    decode_varint,
    encode_varint,
    mask_crc,
    short_successor,
    shortest_separator,
    unmask_crc,
)

BUNDLES = Path(__file__).parents[1] / "fixtures" / "bundles"

# tf_facts.md §5.1: the .index TF wrote for SaveV2(['zz','aa','mm'], f32[1] 1.0, 2.0, 3.0).
WORKED_EXAMPLE = bytes.fromhex(
    "00000608011a02080100021161610801120412020801200428043510fd784f0002116d6d0801120412020801"
    "2008280435efd682c300020f7a7a080112041202080128043581a5da2b00000000010000000000b949490000"
    "00000100000000c0f2a1b00001027b0051000000000100000000d2590aed5608630e00000000000000000000"
    "000000000000000000000000000000000000000000000000000057fb808b247547db"
)


def tf_index(case: str) -> bytes:
    """The bytes of a TF-written .index fixture (multiblock's is stored gzip-compressed)."""
    path = next((BUNDLES / case).glob("*.index*"))
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


# --- checksums and varints ----------------------------------------------------------------------


def test_crc32c_known_values():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283  # extending, as crc32c::Extend
    assert mask_crc(0) == 0xA282EAD8
    # tf_facts §5.1: the crc of 1.0f is 0xdd54c4ab, stored masked as 0x2bdaa581.
    assert crc32c(struct.pack("<f", 1.0)) == 0xDD54C4AB
    assert mask_crc(0xDD54C4AB) == 0x2BDAA581


def test_mask_round_trips():
    rng = random.Random(0)
    for crc in [0, 1, 0xFFFFFFFF, *(rng.getrandbits(32) for _ in range(1000))]:
        assert unmask_crc(mask_crc(crc)) == crc
        assert 0 <= mask_crc(crc) <= 0xFFFFFFFF


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1])
def test_varint_round_trips(value):
    data = encode_varint(value)
    assert decode_varint(data, 0, len(data)) == (value, len(data))


def test_varint_errors():
    with pytest.raises(Corrupt):
        decode_varint(b"\x80\x80", 0, 2)  # runs off the end
    with pytest.raises(Corrupt):
        decode_varint(b"\x80" * 6 + b"\x01", 0, 7, max_bytes=5)  # too long for a varint32


# --- LevelDB comparator helpers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        (b"the quick brown fox", b"the who", b"the r"),  # leveldb's own example
        (b"k0126", b"k0133", b"k0126"),  # differing byte + 1 == limit's byte: unchanged
        (b"abc", b"abcd", b"abc"),  # prefix: unchanged
        (b"a\xff", b"b", b"a\xff"),  # no change possible at 'a' (a+1 == b), unchanged
        (b"\xffa", b"\xffc", b"\xffb"),
        (b"k444/xxx", b"k481/xxx", b"k45"),
    ],
)
def test_shortest_separator(start, limit, expected):
    sep = shortest_separator(start, limit)
    assert sep == expected
    assert start <= sep < limit


@pytest.mark.parametrize(
    ("key", "expected"),
    [(b"u8", b"v"), (b"zz", b"{"), (b"\xff\xffa", b"\xff\xffb"), (b"\xff\xff", b"\xff\xff")],
)
def test_short_successor(key, expected):
    assert short_successor(key) == expected


# --- building ------------------------------------------------------------------------------------


def test_builder_reproduces_tf_worked_example():
    header = pb.BundleHeaderProto(num_shards=1)
    header.version.producer = 1
    entries = [(b"", header.SerializeToString())]
    for key, offset, crc in (
        (b"aa", 4, 0x4F78FD10),
        (b"mm", 8, 0xC382D6EF),
        (b"zz", 0, 0x2BDAA581),
    ):
        entry = pb.BundleEntryProto(dtype=1, offset=offset, size=4, crc32c=crc)
        entry.shape.dim.add(size=1)
        entries.append((key, entry.SerializeToString()))
    assert build_table(entries) == WORKED_EXAMPLE


@pytest.mark.parametrize("case", ["dtypes", "keys", "many", "partitioned", "sharded", "multiblock"])
def test_rebuilding_tf_index_is_byte_identical(case):
    data = tf_index(case)
    assert build_table(Table.from_bytes(data).items()) == data


def index_entries(data: bytes) -> list[tuple[bytes, table.BlockHandle]]:
    """The index block's (separator key, data block handle) pairs."""
    view = memoryview(data)
    _, index = table._parse_footer(view[-table.FOOTER_SIZE :])
    return [
        (k, table.BlockHandle.decode(v)[0])
        for k, v in table._parse_block(table._read_block(view, index))
    ]


def test_multiblock_fixture_has_the_interesting_structure():
    # Several data blocks, the giant key alone in its block and kept unshortened in the index.
    index_keys = [k for k, _ in index_entries(tf_index("multiblock"))]
    assert len(index_keys) >= 4
    assert [k for k in index_keys if len(k) == 1] == [b"l", b"o"]  # shortened, successor
    assert any(len(k) > 500_000 for k in index_keys)


def test_restart_points():
    keys = [f"layer{i:02d}/kernel".encode() for i in range(40)]
    data = build_table((k, b"v") for k in keys)
    ((_, handle),) = index_entries(data)
    block = table._read_block(memoryview(data), handle)
    count = struct.unpack_from("<I", block, len(block) - 4)[0]
    restarts = struct.unpack_from(f"<{count}I", block, len(block) - 4 - 4 * count)
    assert count == 3  # entries 0, 16 and 32
    for restart in restarts:  # a restart entry stores its whole key
        assert decode_varint(block, restart, len(block))[0] == 0
    assert Table.from_bytes(data).keys() == keys


@pytest.mark.parametrize("seed", range(6))
def test_round_trip_with_small_blocks(seed):
    rng = random.Random(seed)
    keys = sorted({rng.randbytes(rng.randint(0, 12)) for _ in range(rng.randint(0, 300))})
    entries = [(k, rng.randbytes(rng.randint(0, 40))) for k in keys]
    options = {"block_size": rng.choice([1, 64, 256, 4096]), "restart_interval": rng.randint(1, 20)}
    parsed = Table.from_bytes(build_table(entries, **options))
    assert list(parsed.items()) == entries
    assert len(parsed) == len(entries)


def test_empty_table():
    data = build_table([])
    assert len(data) == 13 + 13 + 48  # empty metaindex and index blocks, footer
    assert list(Table.from_bytes(data).items()) == []


def test_builder_rejects_unsorted_keys():
    builder = TableBuilder()
    builder.add(b"b", b"")
    with pytest.raises(ValueError, match="must increase"):
        builder.add(b"a", b"")
    with pytest.raises(ValueError, match="must increase"):
        builder.add(b"b", b"")


def test_table_lookup():
    parsed = Table.from_bytes(WORKED_EXAMPLE, "x.index")
    assert parsed.keys() == [b"", b"aa", b"mm", b"zz"]
    assert b"mm" in parsed and b"m" not in parsed
    assert parsed.get(b"m") is None
    assert list(parsed) == parsed.keys()


# --- corruption -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["keys", "partitioned", "sharded"])
def test_every_flipped_byte_is_detected(case):
    data = tf_index(case)
    expected = list(Table.from_bytes(data).items())
    handles = range(len(data) - 48, len(data) - 8)
    for pos in range(len(data)):
        for mask in (0x01, 0x80):
            bad = bytearray(data)
            bad[pos] ^= mask
            if pos in handles:
                # The footer's padding is never read (as in TF), and a continuation bit set on
                # the last handle byte only pads the varint: either error or the same entries.
                try:
                    assert list(Table.from_bytes(bytes(bad)).items()) == expected
                except DataLossError:
                    pass
                continue
            with pytest.raises(DataLossError, match="x/y.index"):
                Table.from_bytes(bytes(bad), "x/y.index")


def test_every_truncation_is_detected():
    data = tf_index("keys")
    for size in range(len(data)):
        with pytest.raises(DataLossError, match="t.index") as info:
            Table.from_bytes(data[:size], "t.index")
        assert info.value.details["file"] == "t.index"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too short"),
        (b"\0" * 48, "bad magic"),
        (WORKED_EXAMPLE[:-1] + b"\0", "bad magic"),
        (bytes(random.Random(1).randbytes(5000)), "bad magic"),
        (b"\0" * 40 + struct.pack("<Q", table.MAGIC), "truncated block read"),
    ],
)
def test_garbage_is_data_loss(data, reason):
    with pytest.raises(DataLossError, match=reason):
        Table.from_bytes(data, "g.index")


def rewrite_block_type(data: bytes, handle: table.BlockHandle, kind: int) -> bytes:
    """Changes a block's compression byte and fixes up its crc, so only the type is wrong."""
    out = bytearray(data)
    end = handle.offset + handle.size
    out[end] = kind
    crc = mask_crc(crc32c(bytes(out[handle.offset : end + 1])))
    out[end + 1 : end + 5] = struct.pack("<I", crc)
    return bytes(out)


def test_snappy_blocks_are_unimplemented():
    bad = rewrite_block_type(WORKED_EXAMPLE, table.BlockHandle(0, 81), 1)
    with pytest.raises(UnimplementedError, match="snappy.*s.index|s.index.*snappy"):
        Table.from_bytes(bad, "s.index")


def test_unknown_block_type_is_data_loss():
    bad = rewrite_block_type(WORKED_EXAMPLE, table.BlockHandle(0, 81), 7)
    with pytest.raises(DataLossError, match="bad block type 7"):
        Table.from_bytes(bad, "s.index")


def test_valid_crc_but_malformed_block():
    # A block whose crc is right but whose entries are nonsense (a buggy writer, not bit rot).
    contents = b"\x05\x01\x01ab" + struct.pack("<II", 0, 1)  # shared 5 > len(previous key)
    trailer = struct.pack("<BI", 0, mask_crc(crc32c(contents + b"\0")))
    index = b"\x00\x01\x02z" + table.BlockHandle(0, len(contents)).encode()
    index += struct.pack("<II", 0, 1)
    body = contents + trailer
    index_handle = table.BlockHandle(len(body), len(index))
    body += index + struct.pack("<BI", 0, mask_crc(crc32c(index + b"\0")))
    footer = (index_handle.encode() + index_handle.encode()).ljust(40, b"\0")
    data = body + footer + struct.pack("<Q", table.MAGIC)
    with pytest.raises(DataLossError, match="bad entry in block"):
        Table.from_bytes(data)


def test_open_missing_file(tmp_path):
    with pytest.raises(NotFoundError, match="nope.index"):
        Table.open(tmp_path / "nope.index")
    (tmp_path / "dir.index").mkdir()
    with pytest.raises(UnknownError, match="dir.index"):
        Table.open(tmp_path / "dir.index")
