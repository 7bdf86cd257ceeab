"""TensorFlow's V2 checkpoint format (the "tensor bundle"): reader, writer and shard merging.

A checkpoint with prefix ``P`` is one metadata file plus one or more data files::

    P.index                          sorted string table (gpugraph.io.table): key -> proto
    P.data-00000-of-0000N ...        the tensors' bytes, one file per shard

The index maps string keys to serialized protos:

* key ``""`` (it sorts first): the ``BundleHeaderProto``: ``num_shards``, ``endianness``
  (LITTLE, the default, is what every writer today produces) and ``version {producer: 1}``.
* key = tensor name: a ``BundleEntryProto``: ``dtype``, ``shape`` (always present; empty for a
  scalar), ``shard_id``, ``offset`` and ``size`` of its bytes in shard ``shard_id``, and
  ``crc32c``, the *masked* CRC-32C of those bytes.  Zero fields are omitted (proto3).
* partitioned tensors: the full tensor's key holds dtype, full shape and ``slices`` (one
  ``TensorSliceProto`` per stored piece) but no location.  Each piece is an ordinary entry under
  ``encode_slice_key(name, slice)`` (TF's ``EncodeTensorNameSlice``, an OrderedCode string that
  starts with a 0 byte, so slice keys never collide with variable names).

A data file holds the tensors back to back with no padding, in the order they were added (TF's
Saver sorts variable names first, so Saver checkpoints end up in key order); the index is always
in memcmp key order.  Encodings:

* fixed-size dtypes: the raw little-endian C-order bytes (bool as one byte; bfloat16/half as
  their 16-bit patterns; complex as (re, im) pairs).
* DT_STRING: ``varint64`` length of each element, then the masked crc32c of the lengths, then the
  element bytes.  That length crc, and the entry's crc, are *not* computed over the varint bytes:
  each length enters the checksum as a little-endian uint32 (uint64 if it exceeds 2**32-1).  The
  entry crc is crc32c(lengths as uint32s ++ the 4 masked-length-crc bytes ++ the string bytes).
* DT_RESOURCE / DT_VARIANT: not supported here (variables save their values, never handles).

Checksums: every stored crc is masked (``table.mask_crc``); the reader recomputes the crc of the
bytes it read and raises DataLossError on a mismatch, naming the tensor and the file.

Writing protocol (crash safety): :class:`BundleWriter` writes ``P.data-00000-of-00001`` and
``P.index`` under temporary names (``.tempstate<random>``, as TF does) and renames them into place
only in :meth:`BundleWriter.finish`: first the data file, then the index, which is written last.
A reader only ever looks at ``P.index``, so a crash before the final rename leaves no index and
therefore no checkpoint (only stray ``.tempstate`` files); a crash between the two renames of a
save *over an existing prefix* pairs the old index with the new data, which the per-tensor
checksums catch.  Savers avoid that case by putting the step number in the prefix.  Sharded saves
write each shard as its own bundle (``P_temp/part-%05d-of-%05d``) and :func:`merge_bundles`
renames their data files into place and writes the merged ``P.index`` last, again through a
temporary name.  Files are not fsync'ed (neither does TF): the protocol protects against a
process crash, not against power loss.

Sources: ``tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc}``,
``core/util/saved_tensor_slice_util.cc``, ``core/lib/strings/ordered_code.cc``; all byte-level
claims are checked against TensorFlow-written files in ``tests/fixtures/bundles``.
"""

from __future__ import annotations

import math
import mmap
import os
import random
import struct
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from gpugraph import _proto as pb
from gpugraph import dtypes, errors
from gpugraph.errors import DataLossError, InvalidArgumentError, NotFoundError, UnimplementedError
from gpugraph.io.table import (
    FOOTER_SIZE,
    MAGIC,
    Corrupt,
    Table,
    build_table,
    crc32c,
    decode_varint,
    encode_varint,
    mask_crc,
    unmask_crc,
)
from gpugraph.io.tensor import shape_to_proto

HEADER_KEY = b""
BUNDLE_VERSION = 1  # kTensorBundleVersion; readers accept producer >= 0, min_consumer <= 1
_WRITE_BUFFER = 8 << 20  # like TF's FileOutputBuffer
_TOFILE_MIN = 1 << 20  # smaller pieces of a tensor go through the buffered file object
_U32 = 0xFFFFFFFF
_LITTLE_HOST = struct.pack("=I", 1) == struct.pack("<I", 1)


def index_filename(prefix: str | os.PathLike) -> str:
    """``<prefix>.index``."""
    return f"{os.fspath(prefix)}.index"


def data_filename(prefix: str | os.PathLike, shard_id: int, num_shards: int) -> str:
    """``<prefix>.data-%05d-of-%05d`` (TF's ``DataFilename``)."""
    return f"{os.fspath(prefix)}.data-{shard_id:05d}-of-{num_shards:05d}"


# --- keys and errors ----------------------------------------------------------------------------


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)


def _key_str(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def _show(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")


def _err(cls: type[errors.OpError], message: str, **details: Any) -> errors.OpError:
    return cls(None, None, message, details)


def _os_error(e: OSError, path: str, doing: str) -> errors.OpError:
    """Maps an OSError to the gpugraph error TF would report for the same failure."""
    cls = {FileNotFoundError: NotFoundError, PermissionError: errors.PermissionDeniedError}.get(
        type(e), errors.UnknownError
    )
    return _err(cls, f"{path}: {doing}: {e.strerror or e}", file=path)


# --- tensor slices ------------------------------------------------------------------------------


class TensorSlice(NamedTuple):
    """A box inside a tensor: one ``(start, length)`` per dimension, length -1 = all of it.

    The string form is TF's: ``"0,2:-"`` is rows 0..1 and every column.
    """

    extents: tuple[tuple[int, int], ...]

    @classmethod
    def full(cls, rank: int) -> TensorSlice:
        return cls(((0, -1),) * rank)

    @classmethod
    def from_string(cls, spec: str) -> TensorSlice:
        """Parses ``"start,length:...:-"``; ``""`` is the rank-0 slice.

        Raises:
            InvalidArgumentError: the string does not parse.
        """
        try:
            return cls(tuple(_parse_extent(part) for part in spec.split(":")) if spec else ())
        except ValueError:
            msg = f"Invalid tensor slice specification {spec!r}: expected 'start,length' or '-'"
            raise _err(InvalidArgumentError, msg + " per dimension, separated by ':'") from None

    @classmethod
    def from_proto(cls, proto: Any) -> TensorSlice:
        return cls(tuple((e.start, e.length if e.HasField("length") else -1) for e in proto.extent))

    def to_string(self) -> str:
        return ":".join("-" if n == -1 else f"{s},{n}" for s, n in self.extents)

    def to_proto(self) -> Any:
        proto = pb.TensorSliceProto()
        for start, length in self.extents:
            extent = proto.extent.add()
            if length != -1:  # as TensorSlice::AsProto: a full extent stays empty
                extent.start = start
                extent.length = length
        return proto

    def bounds(self, shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(start, stop)`` per dimension of a tensor of ``shape`` (same rank)."""
        pairs = zip(self.extents, shape, strict=True)
        return tuple((s, dim) if n == -1 else (s, s + n) for (s, n), dim in pairs)

    def shape(self, full_shape: Sequence[int]) -> tuple[int, ...]:
        return tuple(stop - start for start, stop in self.bounds(full_shape))

    def covers(self, full_shape: Sequence[int]) -> bool:
        """Whether the slice is the whole tensor (TF's ``IsFullSlice``)."""
        return self.shape(full_shape) == tuple(full_shape)

    def check(self, full_shape: Sequence[int]) -> None:
        """Raises InvalidArgumentError unless the slice fits inside ``full_shape``."""
        if len(self.extents) == len(full_shape) and all(
            s >= 0 and n >= -1 and (n == -1 or s + n <= dim)
            for (s, n), dim in zip(self.extents, full_shape, strict=True)
        ):
            return
        raise _err(
            InvalidArgumentError,
            f"Tensor slice {self.to_string()!r} does not fit a tensor of shape {list(full_shape)}",
            slice=self.to_string(),
            shape=list(full_shape),
        )


def _parse_extent(part: str) -> tuple[int, int]:
    if part == "-":
        return 0, -1
    start, length = (int(x) for x in part.split(","))
    if start < 0 or length < 0:
        raise ValueError(part)
    return start, length


def parse_shape_and_slice(spec: str) -> tuple[tuple[int, ...], TensorSlice] | None:
    """Parses a SaveV2/RestoreV2 ``shape_and_slices`` string such as ``"4 3 0,2:-"``.

    Returns ``(full_shape, slice)``, or None for ``""`` (the whole tensor).

    Raises:
        InvalidArgumentError: malformed string, or the slice does not fit the shape.
    """
    if not spec:
        return None
    *dims, slice_spec = spec.split(" ")
    if not all(d.isdigit() for d in dims):
        raise _err(InvalidArgumentError, f"Invalid shape_and_slice {spec!r}: bad dimension")
    shape = tuple(int(d) for d in dims)
    slc = TensorSlice.from_string(slice_spec)
    slc.check(shape)
    return shape, slc


# OrderedCode's header bits for an encoding of 1..10 bytes, in its first two bytes.
_SIGNED_HEADER = ((0, 0), (0x80, 0), (0xC0, 0), (0xE0, 0), (0xF0, 0), (0xF8, 0), (0xFC, 0),
                  (0xFE, 0), (0xFF, 0), (0xFF, 0x80), (0xFF, 0xC0))  # fmt: skip
_ONE_BYTE_LIMIT = 64  # |value| < 64 fits the sign bit and 6 value bits


def _signed_num_increasing(value: int) -> bytes:
    # OrderedCode::WriteSignedNumIncreasing: a sign bit, then one more bit equal to it per extra
    # byte, then the two's complement value, big-endian; order-preserving under memcmp.
    x = ~value if value < 0 else value
    if x < _ONE_BYTE_LIMIT:
        return bytes(((0x80 ^ value) & 0xFF,))
    length = x.bit_length() // 7 + 1
    buf = bytearray((value & ((1 << 80) - 1)).to_bytes(10, "big")[10 - length :])
    buf[0] ^= _SIGNED_HEADER[length][0]
    buf[1] ^= _SIGNED_HEADER[length][1]
    return bytes(buf)


def encode_slice_key(name: str | bytes, slc: TensorSlice) -> bytes:
    """The index key of one stored slice of ``name`` (TF's ``EncodeTensorNameSlice``)."""
    escaped = _key_bytes(name).replace(b"\xff", b"\xff\x00").replace(b"\x00", b"\x00\xff")
    rank = len(slc.extents)
    out = bytearray(b"\x00" + escaped + b"\x00\x01")  # NumIncreasing(0), String(name)
    out += bytes((1, rank)) if rank else b"\x00"  # NumIncreasing(rank), rank < 256
    for start, length in slc.extents:
        out += _signed_num_increasing(start) + _signed_num_increasing(length)
    return bytes(out)


class SavedSlice(NamedTuple):
    """One stored piece of a partitioned tensor, for :func:`write_bundle`."""

    full_shape: tuple[int, ...]
    slice: TensorSlice
    value: Any


# --- values <-> stored bytes ---------------------------------------------------------------------


def _to_array(key: bytes, value: Any, dtype: Any) -> tuple[dtypes.DType, np.ndarray]:
    """Resolves the TF dtype of a value and returns it with a C-contiguous numpy array."""
    try:
        if dtype is not None:
            dt = dtypes.as_dtype(dtype).base_dtype
            arr = np.asarray(value, object if dt == dtypes.string else dt.as_numpy_dtype)
        else:
            arr = np.asarray(value)
            dt = dtypes.string if arr.dtype.kind in "OSUT" else dtypes.as_dtype(arr.dtype)
    except (TypeError, ValueError) as e:
        raise _err(InvalidArgumentError, f"Cannot save tensor {_show(key)!r}: {e}") from None
    if not dt.is_numpy_compatible:
        msg = f"Cannot save tensor {_show(key)!r} of dtype {dt.name}: gpugraph's checkpoints"
        raise _err(UnimplementedError, msg + " hold values, not resource or variant handles")
    # Not np.ascontiguousarray: it turns a 0-d array into a 1-element 1-d one.
    return dt, arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _little_endian_bytes(arr: np.ndarray) -> np.ndarray:
    """A flat uint8 view of ``arr``'s bytes in little-endian order (a copy only if needed)."""
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not _LITTLE_HOST):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr.reshape(-1).view(np.uint8)


def _as_bytes(key: bytes, item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    try:
        return bytes(memoryview(item))
    except TypeError:
        msg = f"Cannot save tensor {_show(key)!r} as a string tensor: element {item!r}"
        raise _err(InvalidArgumentError, msg + " is neither bytes nor str") from None


def _length_crc(lengths: Sequence[int]) -> int:
    # Each length enters the crc as a little-endian uint32, or uint64 past 4 GiB (older
    # checkpoints only had uint32 lengths, and TF keeps reading them).
    if all(n <= _U32 for n in lengths):
        return crc32c(np.asarray(lengths, dtype="<u4").tobytes())
    return crc32c(b"".join(struct.pack("<I" if n <= _U32 else "<Q", n) for n in lengths))


def encode_strings(items: Sequence[bytes]) -> tuple[list[bytes], int]:
    """A string tensor's stored form: ``(chunks to write, unmasked entry crc)``."""
    lengths = [len(s) for s in items]
    crc = _length_crc(lengths)
    length_crc = struct.pack("<I", mask_crc(crc))
    crc = crc32c(length_crc, crc)
    for s in items:
        crc = crc32c(s, crc)
    return [b"".join(encode_varint(n) for n in lengths), length_crc, *items], crc


def decode_strings(raw: bytes | bytearray, count: int, swap: bool = False) -> tuple[list, int]:
    """Parses a stored string tensor: ``(elements, unmasked crc of all of raw)``.

    ``swap``: the checkpoint comes from a machine of the other endianness.

    Raises:
        Corrupt: the length checksum does not match or the lengths do not add up.
    """
    end, pos, lengths = len(raw) - 4, 0, []
    for _ in range(count):
        n, pos = decode_varint(raw, pos, end)
        lengths.append(n)
    crc = _length_crc([_swap_length(n) for n in lengths] if swap else lengths)
    stored = struct.unpack_from(">I" if swap else "<I", raw, pos)[0] if pos <= end else 0
    if pos > end or unmask_crc(stored) != crc:
        raise Corrupt(
            f"The length checksum does not match: expected {unmask_crc(stored):08d} but actual "
            f"is {crc:08d}"
        )
    pos += 4
    if pos + sum(lengths) != len(raw):
        raise Corrupt(f"string lengths add up to {pos + sum(lengths)} bytes, entry has {len(raw)}")
    crc = crc32c(memoryview(raw)[pos - 4 :], crc)
    items = []
    for n in lengths:
        items.append(bytes(raw[pos : pos + n]))
        pos += n
    return items, crc


def _swap_length(n: int) -> int:
    size = 4 if n <= _U32 else 8
    return int.from_bytes(n.to_bytes(size, "little"), "big")


def _byteswap(arr: np.ndarray) -> None:
    item = arr.dtype.itemsize // (2 if arr.dtype.kind == "c" else 1)
    if item > 1:
        arr.reshape(-1).view(f"u{item}").byteswap(inplace=True)


# --- checksums overlapped with I/O -------------------------------------------------------------

_CHUNK = 16 << 20
_crc_pools: dict[int, ThreadPoolExecutor] = {}  # by process id, created on first use
_crc_pool_lock = threading.Lock()


def _crc_worker() -> ThreadPoolExecutor:
    # One worker: it runs the chunk checksums of a tensor in submission order, so each can extend
    # the previous one's result.  crc32c, numpy's copies and file writes all release the GIL.
    # Keyed by pid: a forked child inherits the executor but not its thread, and would wait
    # forever on work submitted to it.
    with _crc_pool_lock:
        pool = _crc_pools.get(os.getpid())
        if pool is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="gpugraph-crc32c")
            _crc_pools.clear()
            _crc_pools[os.getpid()] = pool
        return pool


def _extend_crc(previous: Future | None, chunk: memoryview) -> int:
    return crc32c(chunk, previous.result() if previous else 0)


def transfer_with_crc(buf: memoryview, transfer: Callable[[memoryview, int], object]) -> int:
    """Calls ``transfer(chunk, start)`` on consecutive chunks of ``buf``; returns its crc32c.

    Why: checksumming 1 GiB takes ~0.08 s and copying it to or from the page cache ~0.2 s; done
    one after the other the checksum adds a third.  Here the checksum of chunk i runs on a second
    core while chunk i+1 is transferred, and is taken of chunk i only after its transfer, so a
    read's checksum covers the bytes actually read.  Small buffers, and one-core machines, skip
    the thread.
    """
    if len(buf) < 2 * _CHUNK or (os.cpu_count() or 1) == 1:
        transfer(buf, 0)
        return crc32c(buf)
    pool, pending = _crc_worker(), None
    for start in range(0, len(buf), _CHUNK):
        chunk = buf[start : start + _CHUNK]
        transfer(chunk, start)
        pending = pool.submit(_extend_crc, pending, chunk)
    return pending.result()


# --- writing ------------------------------------------------------------------------------------


class BundleWriter:
    """Writes one V2 checkpoint shard (``P.index`` + ``P.data-00000-of-00001``) like TF.

    Tensors go to the data file in the order they are added; :meth:`finish` writes the index in
    key order and renames both files into place (see the module docstring for the protocol).
    Usable as a context manager: it finishes on a normal exit and removes its temporary files if
    the block raises.  Arrays must not change while :meth:`add` writes them (the same holds in
    TF, whose copy is not atomic either); the checksum is taken of the caller's memory.

    Args:
        prefix: the checkpoint prefix; its directory is created if missing.
    """

    def __init__(self, prefix: str | os.PathLike):
        self.prefix = os.fspath(prefix)
        self._entries: dict[bytes, Any] = {}
        self._size = 0
        self._done = False
        suffix = f".tempstate{random.getrandbits(64)}"
        self._data_tmp = data_filename(self.prefix, 0, 1) + suffix
        self._index_tmp = index_filename(self.prefix) + suffix
        try:
            os.makedirs(os.path.dirname(self.prefix) or ".", exist_ok=True)
            self._file = open(self._data_tmp, "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115
        except OSError as e:
            raise _os_error(e, self._data_tmp, "cannot create checkpoint data file") from None

    def add(self, key: str | bytes, value: Any, dtype: Any = None) -> None:
        """Appends a tensor to the data file and records its index entry.

        Args:
            key: the tensor's name in the checkpoint (``str`` is stored as UTF-8).
            value: array-like; str/bytes/object arrays are saved as DT_STRING.
            dtype: optional TF dtype (anything ``dtypes.as_dtype`` takes) to save as.

        Raises:
            InvalidArgumentError: empty or duplicate key, or a value that has no TF dtype.
            UnimplementedError: resource/variant/quantized dtypes.
            FailedPreconditionError: the writer was finished or aborted.
        """
        kb = self._new_key(key)
        dt, arr = _to_array(kb, value, dtype)
        entry = pb.BundleEntryProto(dtype=dt.as_datatype_enum, offset=self._size)
        entry.shape.CopyFrom(shape_to_proto(arr.shape))
        entry.size, crc = self._write_value(kb, dt, arr)
        entry.crc32c = mask_crc(crc)
        self._size += entry.size
        self._entries[kb] = entry

    def add_slice(
        self,
        key: str | bytes,
        full_shape: Sequence[int],
        slc: TensorSlice | str,
        value: Any,
        dtype: Any = None,
    ) -> None:
        """Appends one piece of a partitioned tensor (TF's ``BundleWriter::AddSlice``).

        Args:
            key: the full tensor's name.
            full_shape: the full tensor's shape.
            slc: where the piece sits (a TensorSlice or its string form, e.g. ``"0,2:-"``).
            value: the piece's values, of shape ``slc.shape(full_shape)``.
            dtype: as in :meth:`add`.

        Raises:
            InvalidArgumentError: the slice does not fit, the value's shape or dtype disagrees
                with the slice or with earlier pieces.
        """
        slc = TensorSlice.from_string(slc) if isinstance(slc, str) else slc
        full_shape = tuple(int(d) for d in full_shape)
        slc.check(full_shape)
        kb = _key_bytes(key)
        if slc.covers(full_shape):  # as TF: a single full slice is an ordinary tensor
            return self.add(kb, value, dtype)
        dt, arr = _to_array(kb, value, dtype)
        if arr.shape != slc.shape(full_shape):
            raise _err(
                InvalidArgumentError,
                f"Slice {slc.to_string()!r} of tensor {_show(kb)!r} has shape "
                f"{list(slc.shape(full_shape))} but the value has shape {list(arr.shape)}",
                tensor=_show(kb),
            )
        full = self._existing_full_entry(kb, dt, full_shape)
        self.add(encode_slice_key(kb, slc), arr, dt)
        if full is None:
            full = self._entries[kb] = pb.BundleEntryProto(dtype=dt.as_datatype_enum)
            full.shape.CopyFrom(shape_to_proto(full_shape))
        full.slices.add().CopyFrom(slc.to_proto())
        return None

    def finish(self) -> None:
        """Closes the data file, writes the index and renames both into place."""
        self._check_open()
        self._done = True
        header = pb.BundleHeaderProto(num_shards=1)
        header.version.producer = BUNDLE_VERSION
        try:
            self._file.close()
            os.replace(self._data_tmp, data_filename(self.prefix, 0, 1))
            index = build_table(_index_entries(header, self._entries))
            _write_atomically(index_filename(self.prefix), index, self._index_tmp)
        except OSError as e:
            self.abort()
            raise _os_error(e, self.prefix, "cannot finish checkpoint") from None

    def abort(self) -> None:
        """Closes and deletes the temporary files; the prefix is left untouched."""
        self._done = True
        self._file.close()
        for path in (self._data_tmp, self._index_tmp):
            if os.path.exists(path):
                os.remove(path)

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()

    def _check_open(self) -> None:
        if self._done:
            raise _err(errors.FailedPreconditionError, f"BundleWriter for {self.prefix} is closed")

    def _new_key(self, key: str | bytes) -> bytes:
        self._check_open()
        kb = _key_bytes(key)
        if kb == HEADER_KEY:
            raise _err(InvalidArgumentError, "The empty key is reserved for the checkpoint header")
        if kb in self._entries:
            raise _err(InvalidArgumentError, f"Adding duplicate key: {_show(kb)}", tensor=_show(kb))
        return kb

    def _existing_full_entry(self, key: bytes, dt: dtypes.DType, full_shape: tuple) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        old = tuple(d.size for d in entry.shape.dim)
        if not entry.slices or entry.dtype != dt.as_datatype_enum or old != full_shape:
            raise _err(
                InvalidArgumentError,
                f"Slice of tensor {_show(key)!r} ({dt.name}, {list(full_shape)}) conflicts with "
                "what was already added under that key",
                tensor=_show(key),
            )
        return entry

    def _write_value(self, key: bytes, dt: dtypes.DType, arr: np.ndarray) -> tuple[int, int]:
        try:
            if dt == dtypes.string:
                chunks, crc = encode_strings([_as_bytes(key, x) for x in arr.reshape(-1)])
                for chunk in chunks:
                    self._file.write(chunk)
                return sum(len(c) for c in chunks), crc
            flat = _little_endian_bytes(arr)
            return flat.size, transfer_with_crc(memoryview(flat), self._chunk_writer(flat))
        except OSError as e:
            raise _os_error(e, self._data_tmp, f"cannot write tensor {_show(key)!r}") from None

    def _chunk_writer(self, flat: np.ndarray) -> Callable[[memoryview, int], None]:
        def write(chunk: memoryview, start: int) -> None:
            if len(chunk) < _TOFILE_MIN:
                self._file.write(chunk)
            else:
                # Measured on Linux: ndarray.tofile (stdio fwrite) of a large chunk takes ~30%
                # less time than file.write() of the same memory, though both issue the same
                # single write(2); tofile flushes and re-syncs the Python file object itself.
                flat[start : start + len(chunk)].tofile(self._file)

        return write


def _index_entries(header: Any, entries: Mapping[bytes, Any]) -> Iterator[tuple[bytes, bytes]]:
    yield HEADER_KEY, header.SerializeToString()
    for key in sorted(entries):
        yield key, entries[key].SerializeToString()


def _write_atomically(path: str, data: bytes, tmp: str | None = None) -> None:
    tmp = tmp or f"{path}.tempstate{random.getrandbits(64)}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_bundle(
    prefix: str | os.PathLike,
    tensors: Mapping[str, Any],
    *,
    dtypes: Mapping[str, Any] | None = None,
) -> None:
    """Writes ``tensors`` as a one-shard V2 checkpoint, in the mapping's order.

    A value may be array-like, or a :class:`SavedSlice` (or a list of them) for a partitioned
    tensor.  ``dtypes`` optionally gives the TF dtype to save some keys as.
    """
    with BundleWriter(prefix) as writer:
        for key, value in tensors.items():
            dtype = (dtypes or {}).get(key)
            pieces = [value] if isinstance(value, SavedSlice) else value
            if isinstance(pieces, list) and pieces and isinstance(pieces[0], SavedSlice):
                for piece in pieces:
                    writer.add_slice(key, piece.full_shape, piece.slice, piece.value, dtype)
            else:
                writer.add(key, value, dtype)


def write_sharded_bundle(prefix: str | os.PathLike, shards: Sequence[Mapping[str, Any]]) -> None:
    """Writes one data file per element of ``shards`` and merges them, as ``Saver(sharded=True)``.

    Each shard goes to ``<prefix>_temp/part-%05d-of-%05d`` first; :func:`merge_bundles` then
    moves the data files to ``<prefix>.data-*`` and writes ``<prefix>.index`` last.
    """
    prefix = os.fspath(prefix)
    parts = [f"{prefix}_temp/part-{i:05d}-of-{len(shards):05d}" for i in range(len(shards))]
    for part, tensors in zip(parts, shards, strict=True):
        write_bundle(part, tensors)
    merge_bundles(parts, prefix)


# --- merging ------------------------------------------------------------------------------------


class _MergeState:
    def __init__(self) -> None:
        self.num_shards = 0
        self.header: Any = None
        self.entries: dict[bytes, Any] = {}
        self.data_files: dict[str, int] = {}  # old data file -> new shard id, first seen first


def merge_bundles(
    prefixes: Sequence[str | os.PathLike],
    output_prefix: str | os.PathLike,
    *,
    delete_old_dirs: bool = True,
) -> None:
    """Merges bundles into one checkpoint, as TF's ``MergeV2Checkpoints`` op.

    Data files are renamed (not copied) to ``<output_prefix>.data-%05d-of-%05d``, shard ids
    numbered in the order the inputs' entries are met; the merged index is written last; the
    inputs' index files are deleted, and with ``delete_old_dirs`` so are their (then empty)
    directories when they differ from the output's.  Slices of one partitioned tensor spread over
    several inputs are merged into one entry.

    Raises:
        InvalidArgumentError: duplicate tensors, or inputs with conflicting endianness/version.
        NotFoundError, DataLossError: an input is missing or damaged.
    """
    output_prefix = os.fspath(output_prefix)
    merge = _MergeState()
    for prefix in prefixes:
        _merge_one(os.fspath(prefix), merge)
    header = pb.BundleHeaderProto(num_shards=merge.num_shards)
    if merge.header is not None:
        header.endianness = merge.header.endianness
        header.version.CopyFrom(merge.header.version)
    try:
        os.makedirs(os.path.dirname(output_prefix) or ".", exist_ok=True)
        for old, shard_id in merge.data_files.items():
            os.replace(old, data_filename(output_prefix, shard_id, len(merge.data_files)))
        index = build_table(_index_entries(header, merge.entries))
        _write_atomically(index_filename(output_prefix), index)
    except OSError as e:
        raise _os_error(e, output_prefix, "cannot merge checkpoint shards") from None
    _delete_inputs([os.fspath(p) for p in prefixes], output_prefix, delete_old_dirs)


def _merge_one(prefix: str, merge: _MergeState) -> None:
    reader = BundleReader(prefix)
    header = reader.header
    if merge.header is None:
        merge.header = header
    elif header.endianness != merge.header.endianness:
        msg = "Merging bundles with conflicting endianness; inputs corrupted?"
        raise _err(InvalidArgumentError, msg, prefix=prefix)
    elif header.version.SerializeToString() != merge.header.version.SerializeToString():
        msg = f"Merging bundles with different format versions: {prefix}"
        raise _err(InvalidArgumentError, msg, prefix=prefix)
    merge.num_shards += header.num_shards
    for key in reader.raw_keys():
        _merge_entry(prefix, key, reader.entry(key), reader.num_shards, merge)


def _merge_entry(prefix: str, key: bytes, entry: Any, num_shards: int, merge: _MergeState) -> None:
    existing = merge.entries.get(key)
    if existing is not None:
        if not existing.slices or not entry.slices:
            msg = f"Duplicate tensor keyed by {_show(key)} encountered, when merging prefix: "
            raise _err(InvalidArgumentError, msg + prefix, tensor=_show(key), prefix=prefix)
        existing.slices.extend(entry.slices)
        return
    # Matches TF: every new entry, even a partitioned tensor's location-less full entry, gets the
    # new id of "its" data file (shard_id 0's file for the latter), and that id is stored.
    data_file = data_filename(prefix, entry.shard_id, num_shards)
    entry.shard_id = merge.data_files.setdefault(data_file, len(merge.data_files))
    merge.entries[key] = entry


def _delete_inputs(prefixes: list[str], output_prefix: str, delete_old_dirs: bool) -> None:
    # Best effort, as in TF: a leftover input index or directory does not fail the merge.
    out_dir = os.path.dirname(output_prefix)
    for prefix in prefixes:
        doomed = [(os.remove, index_filename(prefix))]
        if delete_old_dirs and os.path.dirname(prefix) != out_dir:
            doomed.append((os.rmdir, os.path.dirname(prefix)))  # only once it is empty
        for remove, path in doomed:
            try:
                remove(path)
            except OSError:
                pass


# --- reading ------------------------------------------------------------------------------------


class _Shard:
    """One data file, opened and memory-mapped on first use."""

    def __init__(self, path: str):
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as e:
            raise _os_error(e, path, "cannot open checkpoint data file") from None
        self._close_fd = weakref.finalize(self, os.close, self._fd)  # also if never closed
        self._map: mmap.mmap | None = None
        self._mapped_size = 0

    def view(self, offset: int, size: int, what: str) -> np.ndarray:
        """The bytes [offset, offset + size) of the file, as a uint8 array over the mapping.

        Why a mapping: copying out of it runs in user space (numpy's memcpy, into destination
        arrays that get huge pages), measured twice as fast as read()/pread() into the same
        arrays, whose kernel-side copy is the bottleneck.  The file's size is checked on every
        call, before anything is allocated, and the mapping redone if it changed: touching a
        mapping past the end of a file that shrank would kill the process with SIGBUS.
        """
        current = os.fstat(self._fd).st_size
        if offset < 0 or size < 0 or offset + size > current:
            raise _err(
                DataLossError,
                f"{self.path} is truncated: {what} needs bytes [{offset}, {offset + size}) but "
                f"the file has {current} bytes",
                file=self.path,
            )
        if size == 0:
            return np.empty(0, np.uint8)
        if current != self._mapped_size:
            self._map = mmap.mmap(self._fd, current, access=mmap.ACCESS_READ)
            self._mapped_size = current
        return np.frombuffer(self._map, np.uint8, size, offset)

    def close(self) -> None:
        self._map = None  # unmapped when the last view of it goes away
        self._close_fd()


class BundleReader:
    """Reads a V2 checkpoint: ``BundleReader(prefix)`` opens ``<prefix>.index``.

    The index is read and checked when the reader is created; data files are opened and
    memory-mapped on first use, and a tensor is copied out of the mapping, so fetching one tensor
    never reads a whole shard.  Every tensor read is checked against its crc32c.

    Raises (from the constructor):
        NotFoundError: no ``<prefix>.index`` (and no V1 checkpoint) exists.
        UnimplementedError: ``prefix`` is a legacy V1 checkpoint.
        DataLossError: the index is damaged; the message names the file.
        InvalidArgumentError: the checkpoint's format version is too new.
    """

    def __init__(self, prefix: str | os.PathLike):
        self.prefix = os.fspath(prefix)
        self.index_path = index_filename(self.prefix)
        self._table = _open_index(self.prefix)
        self.header = self._parse_header()
        self.num_shards = self.header.num_shards
        self._swap = (self.header.endianness == pb.BundleHeaderProto.BIG) == _LITTLE_HOST
        self._shards: dict[int, _Shard] = {}
        self._slice_keys: set[bytes] | None = None

    # -- metadata --

    def raw_keys(self) -> list[bytes]:
        """Every index key but the header's, slice keys included, in key order."""
        return [k for k in self._table.keys() if k != HEADER_KEY]

    def keys(self) -> list[str]:
        """The names of the checkpoint's tensors, sorted; pieces of partitioned tensors excluded.

        Names are decoded as UTF-8 (undecodable bytes as surrogate escapes, which the other
        methods accept back).
        """
        slice_keys = self._get_slice_keys()
        return [_key_str(k) for k in self.raw_keys() if k not in slice_keys]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, (str, bytes)) and _key_bytes(key) in self._table and bool(key)

    def __len__(self) -> int:
        return len(self.keys())

    def entry(self, key: str | bytes) -> Any:
        """The ``BundleEntryProto`` stored under ``key`` (a fresh copy).

        Raises:
            NotFoundError: no such key.
            DataLossError: the entry does not parse or holds an invalid shape.
        """
        kb = _key_bytes(key)
        value = self._table.get(kb)
        if value is None or kb == HEADER_KEY:
            msg = f"Key {_show(kb)} not found in checkpoint {self.prefix}"
            raise _err(NotFoundError, msg, tensor=_show(kb), prefix=self.prefix)
        try:
            entry = pb.BundleEntryProto.FromString(value)
        except Exception:  # noqa: BLE001  (protobuf raises DecodeError or RuntimeError)
            raise self._corrupt(kb, "entry not parseable") from None
        self._shape(kb, entry)
        return entry

    def dtype_and_shape(self, key: str | bytes) -> tuple[dtypes.DType, tuple[int, ...]]:
        """The stored dtype and (full) shape of ``key``."""
        kb = _key_bytes(key)
        entry = self.entry(kb)
        return self._dtype(kb, entry), self._shape(kb, entry)

    def slices(self, key: str | bytes) -> list[TensorSlice]:
        """The stored pieces of a partitioned tensor; ``[]`` for an ordinary one."""
        return [TensorSlice.from_proto(p) for p in self.entry(key).slices]

    # -- values --

    def read(self, key: str | bytes) -> np.ndarray:
        """The value of tensor ``key``, reassembled from its pieces if partitioned.

        DT_STRING tensors come back as numpy object arrays of ``bytes``.

        Raises:
            NotFoundError: no such key, or its data file is missing.
            DataLossError: checksum mismatch, truncated data file or inconsistent entry; the
                message names the tensor and the file.
            UnimplementedError: resource or variant tensors.
        """
        kb = _key_bytes(key)
        entry = self.entry(kb)
        if entry.slices:
            return self._read_sliced(kb, entry, TensorSlice.full(len(entry.shape.dim)))
        return self._read_entry(kb, entry)

    def read_slice(self, key: str | bytes, slc: TensorSlice | str) -> np.ndarray:
        """The part ``slc`` (e.g. ``"0,2:-"``) of tensor ``key``, from whichever pieces hold it.

        Raises:
            InvalidArgumentError: the slice does not fit, or the stored pieces do not cover it.
        """
        kb = _key_bytes(key)
        slc = TensorSlice.from_string(slc) if isinstance(slc, str) else slc
        entry = self.entry(kb)
        slc.check(self._shape(kb, entry))
        if entry.slices:
            return self._read_sliced(kb, entry, slc)
        full = self._read_entry(kb, entry)
        return full[_index(slc.bounds(full.shape), (0,) * full.ndim)].copy()

    def close(self) -> None:
        """Closes the data files (the index was read at open time)."""
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --

    def _parse_header(self) -> Any:
        value = self._table.get(HEADER_KEY)
        if value is None:
            raise self._corrupt(None, "failed to seek to header entry")
        try:
            header = pb.BundleHeaderProto.FromString(value)
        except Exception:  # noqa: BLE001
            raise self._corrupt(None, "unable to parse header") from None
        if header.num_shards < 1 or header.endianness not in (0, 1):
            what = f"{header.num_shards} shards, endianness {header.endianness}"
            raise self._corrupt(None, f"bad header ({what})")
        _check_version(header.version, self.index_path)
        return header

    def _get_slice_keys(self) -> set[bytes]:
        if self._slice_keys is None:
            self._slice_keys = set()
            for key in self.raw_keys():
                if key[:1] != b"\x00":  # slice keys themselves never hold slices
                    for proto in self.entry(key).slices:
                        slc = TensorSlice.from_proto(proto)
                        self._slice_keys.add(encode_slice_key(key, slc))
        return self._slice_keys

    def _corrupt(self, key: bytes | None, what: str) -> DataLossError:
        tensor = None if key is None else _show(key)
        where = self.index_path + ("" if key is None else f" (tensor {tensor})")
        msg = f"Unable to read checkpoint index {where}: {what}"
        return _err(DataLossError, msg, file=self.index_path, tensor=tensor)

    def _shape(self, key: bytes, entry: Any) -> tuple[int, ...]:
        dims = tuple(d.size for d in entry.shape.dim)
        if entry.shape.unknown_rank or any(d < 0 for d in dims) or math.prod(dims) >= 2**62:
            raise self._corrupt(key, f"Invalid tensor shape {list(dims)}")
        return dims

    def _dtype(self, key: bytes, entry: Any) -> dtypes.DType:
        try:
            dt = dtypes.as_dtype(entry.dtype)
        except TypeError:
            dt = None
        if dt is None or dt.is_ref_dtype:
            raise self._corrupt(key, f"invalid dtype enum {entry.dtype}")
        if not dt.is_numpy_compatible:
            msg = f"Cannot read tensor {_show(key)} of dtype {dt.name} from {self.prefix}: "
            msg += f"gpugraph does not support {dt.name} tensors in checkpoints"
            raise _err(UnimplementedError, msg, tensor=_show(key), prefix=self.prefix)
        return dt

    def _shard(self, key: bytes, entry: Any) -> _Shard:
        shard_id = entry.shard_id
        if not 0 <= shard_id < self.num_shards:
            raise self._corrupt(key, f"shard id {shard_id} outside [0, {self.num_shards})")
        if shard_id not in self._shards:
            self._shards[shard_id] = _Shard(data_filename(self.prefix, shard_id, self.num_shards))
        return self._shards[shard_id]

    def _read_entry(self, key: bytes, entry: Any) -> np.ndarray:
        dt, shape = self._dtype(key, entry), self._shape(key, entry)
        shard = self._shard(key, entry)
        if dt == dtypes.string:
            out, crc = self._read_strings(key, entry, shape, shard)
        else:
            out, crc = self._read_fixed(key, entry, dt, shape, shard)
        if crc != unmask_crc(entry.crc32c):
            raise _err(
                DataLossError,
                f"Checksum does not match for tensor {_show(key)} in {shard.path} ({entry.size} "
                f"bytes at offset {entry.offset}): stored {unmask_crc(entry.crc32c):08d} vs. "
                f"calculated on the restored bytes {crc}",
                tensor=_show(key),
                file=shard.path,
            )
        if self._swap and dt != dtypes.string:
            _byteswap(out)
        return out

    def _read_fixed(self, key, entry, dt, shape, shard) -> tuple[np.ndarray, int]:
        np_type = np.dtype(dt.as_numpy_dtype)
        expected = math.prod(shape) * np_type.itemsize
        if entry.size != expected:
            what = f"Invalid size in bundle entry: stored size {entry.size}; expected {expected}"
            raise self._corrupt(key, what)
        source = shard.view(entry.offset, entry.size, f"tensor {_show(key)}")
        out = np.empty(shape, np_type)
        flat = out.reshape(-1).view(np.uint8)

        def copy_chunk(chunk: memoryview, start: int) -> None:
            np.copyto(flat[start : start + len(chunk)], source[start : start + len(chunk)])

        return out, transfer_with_crc(memoryview(flat), copy_chunk)

    def _read_strings(self, key, entry, shape, shard) -> tuple[np.ndarray, int]:
        count = math.prod(shape)
        if entry.size == 0 and count:  # TF's writer stores at least the length crc
            raise self._corrupt(key, "Invalid size in bundle entry: 0 bytes for strings")
        raw = bytes(shard.view(entry.offset, entry.size, f"tensor {_show(key)}"))
        try:
            items, crc = decode_strings(raw, count, self._swap) if raw else ([], 0)
        except Corrupt as e:
            msg = f"Tensor {_show(key)} in {shard.path} is corrupt: {e}"
            raise _err(DataLossError, msg, tensor=_show(key), file=shard.path) from None
        out = np.empty(count, dtype=object)
        out[:] = items
        return out.reshape(shape), crc

    def _read_sliced(self, key: bytes, entry: Any, want: TensorSlice) -> np.ndarray:
        full_shape, dt = self._shape(key, entry), self._dtype(key, entry)
        wanted = want.bounds(full_shape)
        out = np.empty(want.shape(full_shape), dtype=dt.as_numpy_dtype)
        covered = 0
        for proto in entry.slices:
            stored = TensorSlice.from_proto(proto)
            box = _intersect(stored.bounds(full_shape), wanted)
            if box is not None:
                piece = self._read_piece(key, stored, full_shape)
                starts = [a for a, _ in stored.bounds(full_shape)]
                out[_index(box, [a for a, _ in wanted])] = piece[_index(box, starts)]
                covered += math.prod(b - a for a, b in box)
        if covered != out.size:
            raise _err(
                InvalidArgumentError,
                f"Does not have sufficient slices for partitioned tensor {_show(key)} to restore "
                f"in slice_spec: {want.to_string()}",
                tensor=_show(key),
            )
        return out

    def _read_piece(self, key: bytes, stored: TensorSlice, full_shape: tuple) -> np.ndarray:
        try:
            stored.check(full_shape)
        except InvalidArgumentError as e:
            raise self._corrupt(key, e.message) from None
        slice_key = encode_slice_key(key, stored)
        if slice_key not in self._table:
            raise self._corrupt(key, f"missing the entry of its slice {stored.to_string()}")
        piece = self._read_entry(slice_key, self.entry(slice_key))
        if piece.shape != stored.shape(full_shape):
            what = f"slice {stored.to_string()} is stored with shape {list(piece.shape)}"
            raise self._corrupt(key, what)
        return piece


def _intersect(a, b) -> tuple[tuple[int, int], ...] | None:
    box = tuple((max(a0, b0), min(a1, b1)) for (a0, a1), (b0, b1) in zip(a, b, strict=True))
    return None if any(lo >= hi for lo, hi in box) else box


def _index(box, origin) -> tuple[slice, ...]:
    """Numpy index of ``box`` inside an array whose element 0 sits at ``origin``."""
    return tuple(slice(lo - o, hi - o) for (lo, hi), o in zip(box, origin, strict=True))


def _check_version(version: Any, path: str) -> None:
    # CheckVersions(version, kTensorBundleVersion, kTensorBundleMinProducer, "Checkpoint").
    problem = None
    if version.producer < 0:
        problem = f"producer version {version.producer} below min producer 0 supported"
    elif version.min_consumer > BUNDLE_VERSION:
        problem = f"min consumer version {version.min_consumer} above current version 1"
    elif BUNDLE_VERSION in version.bad_consumers:
        problem = "disallows consumer version 1"
    if problem:
        msg = f"Checkpoint {path}: {problem}; it was written by an incompatible TensorFlow"
        raise _err(InvalidArgumentError, msg, file=path)


def _open_index(prefix: str) -> Table:
    path = index_filename(prefix)
    if os.path.exists(path):
        return Table.open(path)
    if _looks_like_v1(prefix):
        raise _err(
            UnimplementedError,
            f"{prefix} is a V1 (legacy) TensorFlow checkpoint, which gpugraph does not read; "
            "re-save it with TensorFlow in the V2 format (tf.compat.v1.train.Saver("
            "write_version=tf.compat.v1.train.SaverDef.V2))",
            prefix=prefix,
        )
    hint = " (a directory: pass a checkpoint prefix such as dir/model-100)"
    hint = hint if os.path.isdir(prefix) else ""
    msg = f"No checkpoint found at prefix {prefix}{hint}: {path} does not exist"
    raise _err(NotFoundError, msg, prefix=prefix, file=path)


def _looks_like_v1(prefix: str) -> bool:
    # A V1 checkpoint is the same kind of table, in a file named exactly the prefix.
    try:
        with open(prefix, "rb") as f:
            f.seek(-8, os.SEEK_END)
            lo, hi = struct.unpack("<II", f.read(8))
    except (OSError, struct.error):  # no such file, a directory, shorter than 8 bytes
        return False
    return (hi << 32) | lo == MAGIC and os.path.getsize(prefix) >= FOOTER_SIZE
