"""The V2 checkpoint ("tensor bundle") format's building blocks, shared by writer and reader.

Constants and file names, key encodings, tensor slices (TF's TensorSlice and slice keys),
tensor values <-> stored bytes (strings with their length checksum, byte order), and crc32c
overlapped with I/O.  The format itself is described in :mod:`gpugraph.io.bundle`.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from gpugraph import _proto as pb
from gpugraph import dtypes, errors
from gpugraph.errors import InvalidArgumentError, NotFoundError, UnimplementedError
from gpugraph.io.table import (
    Corrupt,
    crc32c,
    decode_varint,
    encode_varint,
    mask_crc,
    unmask_crc,
)

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
