"""TensorFlow's V2 checkpoint format (the "tensor bundle"): writer and shard merging here, the
reader in :mod:`gpugraph.io.bundle_read`, shared pieces in :mod:`gpugraph.io.bundle_format`
(all re-exported here).

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
only in :meth:`BundleWriter.finish`: the index is written in full first, then the data file is
renamed, then the index, which moves last.  A reader only ever looks at ``P.index``, so a crash
before the final rename leaves no index and therefore no checkpoint (only stray ``.tempstate``
files); a crash between the two renames of a save *over an existing prefix* pairs the old index
with the new data, which the per-tensor checksums catch.  Savers avoid that case by putting the
step number in the prefix.  Sharded saves write each shard as its own bundle
(``P_temp/part-%05d-of-%05d``) and :func:`merge_bundles` renames their data files into place and
moves the merged ``P.index`` (written in full beforehand) last.  Files are not fsync'ed (neither
does TF): the protocol protects against a process crash, not against power loss.

Write errors (a full disk, a file-size limit, a read-only directory, ...) raise the gpugraph error
of their errno (:func:`write_error`: ResourceExhaustedError for ENOSPC/EDQUOT/EFBIG,
PermissionDeniedError for EACCES/EPERM/EROFS, ...) naming the file, after removing the save's
temporary files, and after removing any file already renamed into place when the index never
was: a failed save leaves no file behind.  Every temporary file is held under an advisory lock
(:class:`TempFile`) from its creation until its rename, so the leftovers of a *killed* save, whose
locks the kernel released, can be told from another process's save in flight
(:func:`remove_if_abandoned`, used by the Saver before each save).

Sources: ``tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc}``,
``core/util/saved_tensor_slice_util.cc``, ``core/lib/strings/ordered_code.cc``; all byte-level
claims are checked against TensorFlow-written files in ``tests/fixtures/bundles``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so stale temporary files are left alone
    fcntl = None  # type: ignore[assignment]

import numpy as np

from gpugraph import _proto as pb
from gpugraph import dtypes, errors
from gpugraph.errors import InvalidArgumentError
from gpugraph.io.bundle_format import (  # noqa: F401  (re-exported: the bundle API)
    _TOFILE_MIN,
    _WRITE_BUFFER,
    BUNDLE_VERSION,
    HEADER_KEY,
    SavedSlice,
    TensorSlice,
    _as_bytes,
    _byteswap,
    _err,
    _key_bytes,
    _key_str,
    _little_endian_bytes,
    _os_error,
    _show,
    _signed_num_increasing,
    _to_array,
    data_filename,
    decode_strings,
    encode_slice_key,
    encode_strings,
    index_filename,
    parse_shape_and_slice,
    transfer_with_crc,
)
from gpugraph.io.bundle_read import BundleReader
from gpugraph.io.table import (
    build_table,
    mask_crc,
)
from gpugraph.io.tensor import shape_to_proto

# --- write errors and temporary files -----------------------------------------------------------

# TF's errno -> code table (tsl/platform/errors.cc, ErrnoToCode), except EFBIG: TF calls a file
# grown past RLIMIT_FSIZE OUT_OF_RANGE, but for a save it is a resource running out, as a full
# disk is, and callers should handle both alike.
_ERRNO_ERRORS: dict[int, type[errors.OpError]] = {
    code: cls
    for cls, names in (
        (errors.ResourceExhaustedError,
         ("ENOSPC", "EDQUOT", "EFBIG", "EMFILE", "ENFILE", "ENOMEM")),
        (errors.PermissionDeniedError, ("EACCES", "EPERM", "EROFS")),
        (errors.NotFoundError, ("ENOENT",)),
        (errors.AlreadyExistsError, ("EEXIST",)),
        (errors.FailedPreconditionError, ("ENOTDIR", "EISDIR", "ENOTEMPTY", "EBUSY", "ETXTBSY")),
        (errors.InvalidArgumentError, ("EINVAL", "ENAMETOOLONG")),
        (errors.UnimplementedError, ("ENOSYS", "ENOTSUP", "EOPNOTSUPP", "EXDEV")),
        (errors.UnavailableError, ("EAGAIN", "EINTR")),
    )
    for name in names
    if (code := getattr(errno, name, None)) is not None
}
_CREATE_TRIES = 5


def write_error(e: OSError, path: str, doing: str) -> errors.OpError:
    """The gpugraph error for an OSError while writing ``path``.

    Its class is the errno's (TF's table; ResourceExhaustedError for ENOSPC, EDQUOT and EFBIG,
    PermissionDeniedError for EACCES, EPERM and EROFS, UnknownError when unknown), its message
    ``"<path>: <doing>: <strerror> (<ERRNO>)"``, ``details`` hold ``file`` and ``errno``.
    """
    cls = _ERRNO_ERRORS.get(e.errno, errors.UnknownError) if e.errno else errors.UnknownError
    reason = e.strerror or str(e)
    if e.errno in errno.errorcode:
        reason += f" ({errno.errorcode[e.errno]})"
    return cls(None, None, f"{path}: {doing}: {reason}", {"file": path, "errno": e.errno})


def _short_write_reason(file: BinaryIO, e: OSError) -> OSError:
    """numpy's ``tofile`` reports a short write without an errno; one more write(2) at the same
    offset fails with the reason (ENOSPC, EFBIG, EIO).  The file is abandoned anyway."""
    if e.errno is not None:
        return e
    try:
        os.write(file.fileno(), b"\0")
    except OSError as reason:
        return reason
    return e


def tempstate_suffix() -> str:
    """TF's temporary-name suffix for bundle files: ``.tempstate<random decimal>``."""
    return f".tempstate{random.getrandbits(64)}"


def tmp_suffix() -> str:
    """The temporary-name suffix of gpugraph's other files: ``.tmp<16 hex digits>``."""
    return f".tmp{random.getrandbits(64):016x}"


def _lock_new(path: str) -> int | None:
    """Locks a file or directory this process just created until the descriptor returned is
    closed (None: no locks here).

    Raises FileNotFoundError when :func:`remove_if_abandoned` in another process removed it
    between its creation and the lock (unlocked, it looked abandoned): the caller makes another.
    """
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError:  # not readable (an odd umask): the file is just not protected
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a cleaner looks at the file
        if os.fstat(fd).st_nlink == 0:
            raise FileNotFoundError(errno.ENOENT, "removed before it was locked", path)
    except FileNotFoundError:
        os.close(fd)
        raise
    except OSError:  # a file system without locks
        os.close(fd)
        return None
    return fd


def remove_if_abandoned(path: str, remove: Callable[[str], None] = os.remove) -> bool:
    """Removes ``path`` (with ``remove``), a temporary file or directory of a save, if no live
    process holds its lock; returns whether it did.

    Every writer here holds the lock of its temporary file from creation until after the rename,
    and the kernel releases a process's locks when it dies (SIGKILL included), so an unlocked
    temporary file is a killed save's leftover, and a locked one another process's save in
    flight, which stays.  Where locks are unsupported nothing is removed: a save in flight could
    not be recognized.  Never raises.
    """
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO of that name must not hang us
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        here, locked = os.stat(path), os.fstat(fd)
        if (here.st_dev, here.st_ino) != (locked.st_dev, locked.st_ino):
            return False  # renamed into place meanwhile, and the name reused
        remove(path)
        return True
    except OSError:  # BlockingIOError: in flight; or gone meanwhile, no locks, not removable
        return False
    finally:
        os.close(fd)


def lock_new_directory(path: str) -> int | None:
    """Creates directory ``path`` if missing and locks it like a temporary file (see
    :func:`remove_if_abandoned`); returns the lock's descriptor, to ``os.close`` when done.

    Raises:
        OpError: the directory cannot be created (:func:`write_error`).
    """
    for _ in range(_CREATE_TRIES):
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise write_error(e, path, "cannot create directory") from None
        with contextlib.suppress(FileNotFoundError):  # removed by a cleaner meanwhile: again
            return _lock_new(path)
    raise _err(errors.AbortedError, f"{path}: removed by other processes while created",
               file=path)


class TempFile:
    """A file written under a temporary name next to ``path``, then renamed onto it.

    From its creation until after the rename the writer holds an advisory lock on it, which is
    how :func:`remove_if_abandoned` tells a killed save's leftovers from a save in flight.  Every
    OSError becomes the gpugraph error of its errno (:func:`write_error`) naming the file.  As a
    context manager it removes the temporary file if the block raises.

    Args:
        path: the final name.
        suffix: returns the random suffix of the temporary name (TF's ``.tempstate<n>``).
        buffering: as ``open``'s.
    """

    def __init__(self, path: str, suffix: Callable[[], str] = tempstate_suffix,
                 buffering: int = -1):
        self.path = path
        self.published = False
        self._lock: int | None = None
        for _ in range(_CREATE_TRIES):
            self.name = path + suffix()
            try:
                self.file: BinaryIO = open(self.name, "xb", buffering=buffering)  # noqa: SIM115
            except FileExistsError:
                continue  # the random name is taken: draw another
            except OSError as e:
                raise write_error(e, self.name, "cannot create file") from None
            try:
                self._lock = _lock_new(self.name)
                return
            except FileNotFoundError:
                self.file.close()  # a cleaner took it for a leftover: draw another name
        raise _err(errors.AbortedError, f"{path}: cannot create a temporary file next to it",
                   file=path)

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as e:
            raise write_error(e, self.name, "cannot write") from None

    def close(self, durable: bool = False) -> None:
        """Flushes (with ``durable`` also fsyncs) and closes the file, still under its
        temporary name."""
        try:
            if durable and not self.file.closed:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
        except OSError as e:
            raise write_error(e, self.name, "cannot write") from None

    def publish(self, durable: bool = False) -> None:
        """Closes the file and renames it onto ``path``."""
        self.close(durable)
        try:
            os.replace(self.name, self.path)
        except OSError as e:
            raise write_error(e, self.path, f"cannot rename {self.name} to it") from None
        self.published = True
        self._release()

    def discard(self) -> None:
        """Closes and removes the temporary file (best effort: it is given up on anyway)."""
        with contextlib.suppress(OSError):
            self.file.close()
        if not self.published:
            with contextlib.suppress(OSError):
                os.remove(self.name)
        self._release()  # after the removal: a cleaner never sees it unlocked under its name

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> TempFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()


def write_file_atomically(path: str, data: bytes, suffix: Callable[[], str] = tmp_suffix,
                          durable: bool = False) -> None:
    """Writes ``data`` to ``path`` through a locked temporary file renamed onto it.

    With ``durable`` the bytes are fsync'ed before the rename.  On failure the temporary file is
    removed and ``path`` is as it was.

    Raises:
        OpError: the errno's class (:func:`write_error`), naming the file.
    """
    with TempFile(path, suffix) as tmp:
        tmp.write(data)
        tmp.publish(durable)


def _make_parent(prefix: str) -> None:
    parent = os.path.dirname(prefix) or "."
    try:
        os.makedirs(parent, exist_ok=True)
    except FileExistsError:
        pass  # a file in the way: creating the first file under it fails with ENOTDIR
    except OSError as e:
        raise write_error(e, parent, "cannot create checkpoint directory") from None


# --- writing ------------------------------------------------------------------------------------


class BundleWriter:
    """Writes one V2 checkpoint shard (``P.index`` + ``P.data-00000-of-00001``) like TF.

    Tensors go to the data file in the order they are added; :meth:`finish` writes the index in
    key order and renames both files into place (see the module docstring for the protocol).
    Usable as a context manager: it finishes on a normal exit and removes its temporary files if
    the block raises.  A write error (full disk, ...) aborts the writer at once, raising the
    errno's gpugraph error (:func:`write_error`) naming the file.  Arrays must not change while
    :meth:`add` writes them (the same holds in TF, whose copy is not atomic either); the
    checksum is taken of the caller's memory.

    Args:
        prefix: the checkpoint prefix; its directory is created if missing.
    """

    def __init__(self, prefix: str | os.PathLike):
        self.prefix = os.fspath(prefix)
        self._entries: dict[bytes, Any] = {}
        self._size = 0
        self._done = False
        self._index: TempFile | None = None
        _make_parent(self.prefix)
        self._data = TempFile(data_filename(self.prefix, 0, 1), buffering=_WRITE_BUFFER)
        self._file = self._data.file
        self._data_tmp = self._data.name

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
        """Writes the index in full, then renames the data file and the index into place.

        Raises:
            OpError: a write or rename failed (:func:`write_error`); the writer is aborted.
        """
        self._check_open()
        self._done = True
        header = pb.BundleHeaderProto(num_shards=1)
        header.version.producer = BUNDLE_VERSION
        try:
            self._data.close()
            # The index is complete on disk before anything moves: a full disk fails here, while
            # the directory still holds only temporary files.
            self._index = TempFile(index_filename(self.prefix))
            self._index.write(build_table(_index_entries(header, self._entries)))
            self._index.close()
            self._data.publish()
            self._index.publish()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Closes and deletes the temporary files, and a data file renamed into place whose
        index never was.  A new prefix is left without files; an existing one (overwritten)
        may have lost its data file."""
        self._done = True
        self._data.discard()
        if self._index is not None:
            self._index.discard()
        if self._data.published and not (self._index is not None and self._index.published):
            with contextlib.suppress(OSError):
                os.remove(self._data.path)

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
            return self._write_bytes(dt, arr, key)
        except OSError as e:
            reason = _short_write_reason(self._file, e)
            self.abort()  # the data file is unusable: no temporary file outlives the error
            doing = f"cannot write tensor {_show(key)!r}"
            raise write_error(reason, self._data_tmp, doing) from None

    def _write_bytes(self, dt: dtypes.DType, arr: np.ndarray, key: bytes) -> tuple[int, int]:
        if dt == dtypes.string:
            chunks, crc = encode_strings([_as_bytes(key, x) for x in arr.reshape(-1)])
            for chunk in chunks:
                self._file.write(chunk)
            return sum(len(c) for c in chunks), crc
        flat = _little_endian_bytes(arr)
        return flat.size, transfer_with_crc(memoryview(flat), self._chunk_writer(flat))

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
    numbered in the order the inputs' entries are met; the merged index, written in full first,
    is renamed into place last; the inputs' index files are deleted, and with
    ``delete_old_dirs`` so are their (then empty) directories when they differ from the
    output's.  Slices of one partitioned tensor spread over several inputs are merged into one
    entry.  If a write or rename fails, the data files already moved are deleted, so no file of
    the output prefix is left without its index.

    Raises:
        InvalidArgumentError: duplicate tensors, or inputs with conflicting endianness/version.
        NotFoundError, DataLossError: an input is missing or damaged.
        OpError: a write or rename failed (:func:`write_error`'s class for its errno).
    """
    output_prefix = os.fspath(output_prefix)
    merge = _MergeState()
    for prefix in prefixes:
        _merge_one(os.fspath(prefix), merge)
    header = pb.BundleHeaderProto(num_shards=merge.num_shards)
    if merge.header is not None:
        header.endianness = merge.header.endianness
        header.version.CopyFrom(merge.header.version)
    _make_parent(output_prefix)
    with TempFile(index_filename(output_prefix)) as index:
        index.write(build_table(_index_entries(header, merge.entries)))
        index.close()
        moved = _move_data_files(merge.data_files, output_prefix)
        try:
            index.publish()
        except BaseException:
            _remove_quietly(moved)
            raise
    _delete_inputs([os.fspath(p) for p in prefixes], output_prefix, delete_old_dirs)


def _move_data_files(data_files: Mapping[str, int], output_prefix: str) -> list[str]:
    """Renames the inputs' data files to the output's names; on failure deletes those moved."""
    moved: list[str] = []
    try:
        for old, shard_id in data_files.items():
            new = data_filename(output_prefix, shard_id, len(data_files))
            try:
                os.replace(old, new)
            except OSError as e:
                raise write_error(e, new, f"cannot rename {old} to it") from None
            moved.append(new)
    except BaseException:
        _remove_quietly(moved)
        raise
    return moved


def _remove_quietly(paths: Sequence[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.remove(path)


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
