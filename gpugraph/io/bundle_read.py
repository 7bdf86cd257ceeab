"""Reading V2 checkpoints: :class:`BundleReader` (see :mod:`gpugraph.io.bundle` for the format)."""

from __future__ import annotations

import math
import mmap
import os
import struct
import weakref
from typing import Any

import numpy as np

from gpugraph import _proto as pb
from gpugraph import config, dtypes
from gpugraph.errors import (
    DataLossError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    UnimplementedError,
)
from gpugraph.io.bundle_format import (
    _LITTLE_HOST,
    BUNDLE_VERSION,
    HEADER_KEY,
    TensorSlice,
    _byteswap,
    _err,
    _key_bytes,
    _key_str,
    _os_error,
    _show,
    data_filename,
    decode_strings,
    encode_slice_key,
    index_filename,
    transfer_with_crc,
)
from gpugraph.io.table import (
    FOOTER_SIZE,
    MAGIC,
    Corrupt,
    Table,
    unmask_crc,
)

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
        if count > entry.size:  # (each string takes at least its 1-byte length)
            raise self._corrupt(key, f"Invalid size in bundle entry: {entry.size} bytes cannot "
                                f"hold {count} strings")
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
        shape = want.shape(full_shape)
        claimed = math.prod(shape) * np.dtype(dt.as_numpy_dtype).itemsize
        if claimed > config.max_tensor_bytes():  # (its slices' sizes are checked as read)
            raise _err(ResourceExhaustedError, f"Tensor {_show(key)} of {self.prefix}: "
                       f"shape {list(shape)} would take {claimed:,} bytes, more than the "
                       f"{config.max_tensor_bytes():,} allowed (GPUGRAPH_MAX_TENSOR_BYTES)",
                       tensor=_show(key))
        out = np.empty(shape, dtype=dt.as_numpy_dtype)
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
