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

import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

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
