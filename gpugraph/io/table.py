"""The LevelDB-format sorted string table ("SSTable", ``tsl::table``) of a checkpoint ``.index``.

A table maps byte-string keys to byte-string values, sorted by key (memcmp order).  Layout::

    data block 0 | trailer | ... | data block k | trailer | metaindex block | trailer |
    index block | trailer | footer (48 bytes)

* **Block**: entries, then ``restarts: fixed32[num_restarts]`` and ``num_restarts: fixed32``.
  An entry is ``varint32 shared, varint32 non_shared, varint32 value_len, key[shared:],
  value``: its key shares ``shared`` leading bytes with the previous key.  Every
  ``restart_interval``-th entry (16 in data blocks, 1 in the index block) stores its whole key
  (``shared == 0``) and its offset is listed in ``restarts``, which is what makes binary search
  inside a block possible.
* **Trailer**: one compression-type byte (0 = none; TF's checkpoint writer never compresses,
  1 = snappy is not supported here) and the *masked* crc32c of the block contents plus that byte.
* **Data blocks** are cut once their size estimate (entries + restart array) reaches
  ``block_size`` (256 KiB in TF), and before an entry whose key plus value is at least twice
  that.
* **Index block**: one entry per data block whose value is the block's handle (``varint64
  offset, varint64 size``, size without trailer) and whose key is >= every key of that block and
  < every key of the next: the shortest separator between the two (for the last block, the
  shortest successor of its last key), exactly as LevelDB's ``BytewiseComparator`` computes it.
* **Metaindex block**: empty (TF writes no meta blocks).
* **Footer**: the metaindex and index handles, zero padding to 40 bytes, then the magic
  ``0xdb4775248b80fb57`` as two little-endian fixed32 (low word first).

Sources: ``xla/tsl/lib/io/{table_builder,block_builder,format}.cc``; facts verified byte for byte
against TensorFlow-written checkpoints (``tests/fixtures/bundles``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import crc32c as _crc32c

from gpugraph.errors import (
    DataLossError,
    NotFoundError,
    PermissionDeniedError,
    UnimplementedError,
    UnknownError,
)

BLOCK_SIZE = 262144  # tsl::table::Options::block_size; BundleWriter keeps the default
RESTART_INTERVAL = 16  # data blocks; the index block uses 1
FOOTER_SIZE = 48  # 2 * BlockHandle::kMaxEncodedLength (20) + 8 bytes of magic
BLOCK_TRAILER_SIZE = 5  # type byte + fixed32 masked crc
MAGIC = 0xDB4775248B80FB57
_MASK_DELTA = 0xA282EAD8
_NO_COMPRESSION = 0
_SNAPPY_COMPRESSION = 1
_U32 = 0xFFFFFFFF
_CONTINUE = 0x80  # varint: more bytes follow
_MAX_BYTE = 0xFF
_FIXED32 = 4  # bytes in a fixed32


# --- checksums and varints ----------------------------------------------------------------------


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data`` (any buffer), extending ``crc`` (TF's crc32c::Extend)."""
    return _crc32c.crc32c(data, crc)


def mask_crc(crc: int) -> int:
    """TF's ``crc32c::Mask``: rotate right by 15 and add a constant.

    Why: a crc of data that itself holds crcs is weak, so stored crcs are always masked.
    """
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def unmask_crc(masked: int) -> int:
    """Inverse of :func:`mask_crc`."""
    rot = (masked - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32


def encode_varint(value: int) -> bytes:
    """LevelDB/protobuf base-128 varint of a non-negative integer."""
    if value < _CONTINUE:
        return bytes((value,))
    out = bytearray()
    while value >= _CONTINUE:
        out.append((value & 0x7F) | _CONTINUE)
        value >>= 7
    out.append(value)
    return bytes(out)


class Corrupt(Exception):  # noqa: N818  (internal signal, converted to DataLossError with a file)
    """A structural error found while decoding bytes that carry no file name yet."""


def decode_varint(buf, pos: int, limit: int, max_bytes: int = 10) -> tuple[int, int]:
    """Decodes a varint at ``buf[pos:limit]``; returns ``(value, next_pos)``.

    Raises:
        Corrupt: the varint runs past ``limit`` or is longer than ``max_bytes`` (5 for a
            varint32, 10 for a varint64).
    """
    result = shift = 0
    for i in range(pos, min(limit, pos + max_bytes)):
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        if byte < _CONTINUE:
            return result, i + 1
        shift += 7
    raise Corrupt("bad varint")


# --- reading ------------------------------------------------------------------------------------


class BlockHandle(NamedTuple):
    """Where a block sits in the file (``size`` excludes the 5-byte trailer)."""

    offset: int
    size: int

    def encode(self) -> bytes:
        return encode_varint(self.offset) + encode_varint(self.size)

    @classmethod
    def decode(cls, buf, pos: int = 0, limit: int | None = None) -> tuple[BlockHandle, int]:
        limit = len(buf) if limit is None else limit
        try:
            offset, pos = decode_varint(buf, pos, limit)
            size, pos = decode_varint(buf, pos, limit)
        except Corrupt:
            raise Corrupt("bad block handle") from None
        return cls(offset, size), pos


class Table:
    """A parsed table: every entry, in key order, checked against its block checksums.

    The whole table is decoded when it is opened: a checkpoint index is small (about 100 bytes per
    tensor), and decoding everything up front means a damaged file fails at open time, naming
    the file, rather than later in the middle of a restore.

    Use :meth:`open` for a file and :meth:`from_bytes` for a buffer.
    """

    def __init__(self, entries: list[tuple[bytes, bytes]], path: str):
        self.path = path
        self._keys = [k for k, _ in entries]
        self._values = dict(entries)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Table:
        """Reads and decodes the table file at ``path``.

        Raises:
            NotFoundError: no file at ``path`` (PermissionDeniedError, UnknownError: other
                failures to read it).
            DataLossError: the file is not a valid table (too short, bad magic, bad block
                checksum, malformed block, keys out of order); the message names the file.
            UnimplementedError: a block is snappy-compressed.
        """
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            cls_ = {FileNotFoundError: NotFoundError, PermissionError: PermissionDeniedError}
            error = cls_.get(type(e), UnknownError)
            raise error(None, None, f"{path}: {e.strerror or e}", {"file": path}) from None
        return cls.from_bytes(data, path)

    @classmethod
    def from_bytes(cls, data: bytes, path: str = "<memory>") -> Table:
        """Decodes a table held in memory; ``path`` is only used in error messages."""
        try:
            return cls(_parse_table(memoryview(data)), path)
        except Corrupt as e:
            raise DataLossError(
                None,
                None,
                f"Unable to read table {path}: {e} (the file is corrupt or not a "
                "TensorFlow checkpoint index)",
                {"file": path, "reason": str(e)},
            ) from None
        except _Snappy:
            raise UnimplementedError(
                None,
                None,
                f"Unable to read table {path}: it holds snappy-compressed blocks, "
                "which gpugraph does not support (TensorFlow's checkpoint writer never "
                "compresses its index)",
                {"file": path},
            ) from None

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        """The value stored under ``key``, or ``default``."""
        return self._values.get(key, default)

    def keys(self) -> list[bytes]:
        """All keys, in table (memcmp) order."""
        return list(self._keys)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs in key order."""
        return ((k, self._values[k]) for k in self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._keys)


class _Snappy(Exception):  # noqa: N818
    pass


def _parse_table(data: memoryview) -> list[tuple[bytes, bytes]]:
    if len(data) < FOOTER_SIZE:
        raise Corrupt(f"file is too short ({len(data)} bytes) to be an sstable")
    metaindex, index = _parse_footer(data[-FOOTER_SIZE:])
    _parse_block(_read_block(data, metaindex))  # empty in TF's files, but checked all the same
    entries: list[tuple[bytes, bytes]] = []
    for index_key, handle_bytes in _parse_block(_read_block(data, index)):
        handle, end = BlockHandle.decode(handle_bytes)
        if end != len(handle_bytes):
            raise Corrupt("bad block handle")
        block = _parse_block(_read_block(data, handle))
        if block and block[-1][0] > index_key:
            raise Corrupt("index key below the last key of its block")
        entries += block
    _check_sorted(entries)
    return entries


def _parse_footer(footer: memoryview) -> tuple[BlockHandle, BlockHandle]:
    lo, hi = struct.unpack_from("<II", footer, FOOTER_SIZE - 8)
    if (hi << 32) | lo != MAGIC:
        raise Corrupt("not an sstable (bad magic number)")
    metaindex, pos = BlockHandle.decode(footer, 0, FOOTER_SIZE - 8)
    index, _ = BlockHandle.decode(footer, pos, FOOTER_SIZE - 8)
    return metaindex, index  # the rest is padding, skipped as TF does


def _read_block(data: memoryview, handle: BlockHandle) -> memoryview:
    end = handle.offset + handle.size
    if end + BLOCK_TRAILER_SIZE > len(data) - FOOTER_SIZE:
        raise Corrupt("truncated block read")
    (stored,) = struct.unpack_from("<I", data, end + 1)
    if crc32c(data[handle.offset : end + 1]) != unmask_crc(stored):
        raise Corrupt(f"block checksum mismatch (block at offset {handle.offset})")
    kind = data[end]
    if kind == _SNAPPY_COMPRESSION:
        raise _Snappy()
    if kind != _NO_COMPRESSION:
        raise Corrupt(f"bad block type {kind}")
    return data[handle.offset : end]


def _parse_block(block: memoryview) -> list[tuple[bytes, bytes]]:
    if len(block) < _FIXED32:
        raise Corrupt("bad block contents (shorter than its restart count)")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - _FIXED32)
    limit = len(block) - _FIXED32 * (1 + num_restarts)
    if limit < 0 or (num_restarts == 0 and limit > 0):
        raise Corrupt("bad block contents (bad restart count)")
    entries, pos, key = [], 0, b""
    while pos < limit:
        shared, pos = decode_varint(block, pos, limit, 5)
        non_shared, pos = decode_varint(block, pos, limit, 5)
        value_len, pos = decode_varint(block, pos, limit, 5)
        value_at = pos + non_shared
        if shared > len(key) or value_at + value_len > limit:
            raise Corrupt("bad entry in block")
        key = key[:shared] + bytes(block[pos:value_at])
        entries.append((key, bytes(block[value_at : value_at + value_len])))
        pos = value_at + value_len
    return entries


def _check_sorted(entries: list[tuple[bytes, bytes]]) -> None:
    for (a, _), (b, _) in zip(entries, entries[1:], strict=False):
        if a >= b:
            raise Corrupt(f"keys out of order ({a[:40]!r} before {b[:40]!r})")


# --- writing ------------------------------------------------------------------------------------


class _BlockBuilder:
    """Prefix-compressed entries plus the restart array (``block_builder.cc``)."""

    def __init__(self, restart_interval: int):
        self._interval = restart_interval
        self.reset()

    def reset(self) -> None:
        self._buf = bytearray()
        self._restarts = [0]
        self._counter = 0
        self._last_key = b""

    def empty(self) -> bool:
        return not self._buf

    def size_estimate(self) -> int:
        return len(self._buf) + 4 * len(self._restarts) + 4

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self._counter < self._interval:
            shared = _common_prefix_len(self._last_key, key)
        else:
            self._restarts.append(len(self._buf))
            self._counter = 0
        self._buf += encode_varint(shared) + encode_varint(len(key) - shared)
        self._buf += encode_varint(len(value))
        self._buf += key[shared:]
        self._buf += value
        self._last_key = key
        self._counter += 1

    def finish(self) -> bytes:
        restarts = struct.pack(f"<{len(self._restarts)}I", *self._restarts)
        return bytes(self._buf) + restarts + struct.pack("<I", len(self._restarts))


def _common_prefix_len(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]; bisect, since keys can be long
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    """A short key k with ``start <= k < limit`` (LevelDB ``FindShortestSeparator``).

    Increments the first byte where the two differ and cuts after it, when that byte is not 0xff
    and the result stays below ``limit``; otherwise ``start`` unchanged.
    """
    diff = _common_prefix_len(start, limit)
    if diff >= min(len(start), len(limit)):
        return start  # one is a prefix of the other
    byte = start[diff]
    if byte < _MAX_BYTE and byte + 1 < limit[diff]:
        return start[:diff] + bytes((byte + 1,))
    return start


def short_successor(key: bytes) -> bytes:
    """A short key >= ``key`` (LevelDB ``FindShortSuccessor``): bump the first non-0xff byte."""
    for i, byte in enumerate(key):
        if byte != _MAX_BYTE:
            return key[:i] + bytes((byte + 1,))
    return key  # all 0xff: left alone


class TableBuilder:
    """Builds a table in memory, byte-identical to TF's ``TableBuilder`` without compression.

    Keys must be added in strictly increasing memcmp order.  :meth:`finish` returns the file's
    bytes; a checkpoint index is small, so nothing is streamed.
    """

    def __init__(self, *, block_size: int = BLOCK_SIZE, restart_interval: int = RESTART_INTERVAL):
        self._block_size = block_size
        self._out = bytearray()
        self._data = _BlockBuilder(restart_interval)
        self._index = _BlockBuilder(1)
        self._last_key: bytes | None = None
        self._pending: BlockHandle | None = None  # last flushed block, awaiting its index key

    def add(self, key: bytes, value: bytes) -> None:
        """Appends one entry.

        Raises:
            ValueError: ``key`` does not sort after the previous key.
        """
        key, value = bytes(key), bytes(value)
        if self._last_key is not None:
            if key <= self._last_key:
                raise ValueError(f"table keys must increase: {key!r} after {self._last_key!r}")
            # Matches TF: an entry that would make the block overly large starts a new one.
            if len(key) + len(value) >= 2 * self._block_size:
                self._flush()
        if self._pending is not None:
            self._index.add(shortest_separator(self._last_key, key), self._pending.encode())
            self._pending = None
        self._last_key = key
        self._data.add(key, value)
        if self._data.size_estimate() >= self._block_size:
            self._flush()

    def finish(self) -> bytes:
        """Writes the last data block, the metaindex, the index and the footer; returns the file."""
        self._flush()
        metaindex = self._write_block(_BlockBuilder(RESTART_INTERVAL))
        if self._pending is not None:
            self._index.add(short_successor(self._last_key), self._pending.encode())
            self._pending = None
        index = self._write_block(self._index)
        footer = (metaindex.encode() + index.encode()).ljust(FOOTER_SIZE - 8, b"\0")
        self._out += footer + struct.pack("<II", MAGIC & _U32, MAGIC >> 32)
        return bytes(self._out)

    def _flush(self) -> None:
        if not self._data.empty():
            self._pending = self._write_block(self._data)

    def _write_block(self, block: _BlockBuilder) -> BlockHandle:
        contents = block.finish()
        block.reset()
        handle = BlockHandle(len(self._out), len(contents))
        trailer_crc = mask_crc(crc32c(bytes((_NO_COMPRESSION,)), crc32c(contents)))
        self._out += contents + struct.pack("<BI", _NO_COMPRESSION, trailer_crc)
        return handle


def build_table(entries: Iterable[tuple[bytes, bytes]], **options) -> bytes:
    """Builds a whole table from ``(key, value)`` pairs given in increasing key order."""
    builder = TableBuilder(**options)
    for key, value in entries:
        builder.add(key, value)
    return builder.finish()
