"""Reading V1 (legacy) checkpoints: TF's tensor-slice tables.

Savers of TF <= 0.12, and later ones built with ``write_version=SaverDef.V1``, write a checkpoint
as one file named by the prefix (``model.ckpt``), or as shards ``model.ckpt-00000-of-00002``
named by a glob pattern (``model.ckpt-?????-of-00002``, what a sharded V1 Saver returns and the
``checkpoint`` state file records).  Each file is a sorted string table
(:mod:`gpugraph.io.table`, the format of a V2 ``.index``) of serialized ``SavedTensorSlices``:

* key ``""``: ``meta``: for each tensor in this file its name, dtype, full shape and the slices
  the file stores (``SavedSliceMeta``);
* key ``EncodeTensorNameSlice(name, slice)`` (the encoding of V2 slice keys): ``data``: one
  ``SavedSlice`` whose ``TensorProto`` holds the slice's values in its typed repeated field
  (``float_val``, ``int_val``, ...) with neither dtype nor shape: those come from the meta.

:class:`TensorSliceReader` offers the reading interface of
:class:`gpugraph.io.bundle_read.BundleReader` (``keys``, ``dtype_and_shape``, ``read``,
``read_slice``), so RestoreV2 (which, as TF's, falls back to V1 files when there is no
``.index``), RestoreSlice, Restore and the checkpoint utilities read both formats.  Messages
are TF's (``tensorflow/core/util/tensor_slice_reader.cc``, ``kernels/save_restore_tensor.cc``).
"""

from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np

from gpugraph import _proto as pb
from gpugraph import dtypes
from gpugraph.errors import DataLossError, InvalidArgumentError, NotFoundError
from gpugraph.io.bundle_read import BundleReader
from gpugraph.io.bundle_format import TensorSlice, _err, _key_bytes, _key_str, encode_slice_key
from gpugraph.io.table import Corrupt, Table
from gpugraph.io.tensor import make_ndarray

_SavedTensorSlices = pb.message_class("tensorflow.SavedTensorSlices")


def matching_files(pattern: str) -> list[str]:
    """The files a V1 checkpoint path names: itself, or what it matches as a glob pattern."""
    if os.path.isfile(pattern):
        return [pattern]
    return sorted(p for p in glob.glob(pattern) if os.path.isfile(p))


def open_checkpoint(prefix: str | os.PathLike) -> Any:
    """A reader of the checkpoint at ``prefix``: :class:`~gpugraph.io.bundle_read.BundleReader`
    for a V2 checkpoint (``prefix.index``), else :class:`TensorSliceReader` for the V1 files
    the prefix names, else the BundleReader's NotFoundError."""
    prefix = os.fspath(prefix)
    if not os.path.exists(prefix + ".index") and is_v1_checkpoint(prefix):
        return TensorSliceReader(prefix)
    return BundleReader(prefix)


def is_v1_checkpoint(pattern: str) -> bool:
    """Whether ``pattern`` names V1 checkpoint files (tables with a tensor-slice meta)."""
    files = matching_files(pattern)
    if not files:
        return False
    try:
        return Table.open(files[0]).get(b"") is not None
    except Exception:  # noqa: BLE001  (anything unreadable is not a V1 checkpoint)
        return False


class _Stored:
    """One tensor of the checkpoint: dtype, full shape, and where each stored slice lives."""

    def __init__(self, dtype: dtypes.DType, shape: tuple[int, ...]):
        self.dtype, self.shape = dtype, shape
        self.pieces: list[tuple[TensorSlice, int]] = []  # (slice, file index)


class TensorSliceReader:
    """Reads a V1 checkpoint (``TensorSliceReader(file_pattern)``).

    Raises (from the constructor):
        NotFoundError: no file matches the pattern.
        DataLossError: a file is not a readable tensor-slice table; the message names it.
    """

    format_version = 1

    def __init__(self, pattern: str | os.PathLike):
        self.prefix = os.fspath(pattern)
        self.files = matching_files(self.prefix)
        if not self.files:
            raise _err(NotFoundError, "Unsuccessful TensorSliceReader constructor: Failed to "
                       f"find any matching files for {self.prefix}", prefix=self.prefix)
        self._tables = [self._open(path) for path in self.files]
        self._tensors: dict[str, _Stored] = {}
        for index, table in enumerate(self._tables):
            self._add_meta(index, table)

    # -- the BundleReader interface --

    def keys(self) -> list[str]:
        """The names of the stored tensors, sorted."""
        return sorted(self._tensors)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, (str, bytes)) and _key_str(_key_bytes(key)) in self._tensors

    def __len__(self) -> int:
        return len(self._tensors)

    def dtype_and_shape(self, key: str | bytes) -> tuple[dtypes.DType, tuple[int, ...]]:
        stored = self._get(key)
        return stored.dtype, stored.shape

    def read(self, key: str | bytes) -> np.ndarray:
        """The whole tensor ``key``, assembled from its stored slices."""
        stored = self._get(key)
        return self._assemble(_key_str(_key_bytes(key)), stored,
                              tuple((0, d) for d in stored.shape))

    def read_slice(self, key: str | bytes, slc: TensorSlice | str) -> np.ndarray:
        """The part of tensor ``key`` that ``slc`` selects."""
        stored = self._get(key)
        slc = TensorSlice.from_string(slc) if isinstance(slc, str) else slc
        slc.check(stored.shape)
        return self._assemble(_key_str(_key_bytes(key)), stored, slc.bounds(stored.shape))

    def close(self) -> None:
        """Nothing to release (the tables are read into memory)."""

    def __enter__(self) -> TensorSliceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --

    def _open(self, path: str) -> Table:
        try:
            table = Table.open(path)
        except (Corrupt, DataLossError) as e:
            raise _err(DataLossError, f"Unable to open table file {path}: Data loss: not an "
                       f"sstable (bad magic number) or damaged ({e})", file=path) from None
        return table

    def _add_meta(self, index: int, table: Table) -> None:
        path = self.files[index]
        raw = table.get(b"")
        if raw is None:
            raise _err(DataLossError, f"Unable to open table file {path}: no tensor-slice meta "
                       "(not a V1 checkpoint)", file=path)
        meta = self._parse(raw, path).meta
        for tensor in meta.tensor:
            shape = tuple(d.size for d in tensor.shape.dim)
            stored = self._tensors.get(tensor.name)
            if stored is None:
                try:
                    dtype = dtypes.as_dtype(tensor.type)
                except (TypeError, ValueError):
                    raise _err(DataLossError, f"{path}: tensor {tensor.name!r} has an unknown "
                               f"dtype {tensor.type}", file=path) from None
                stored = self._tensors[tensor.name] = _Stored(dtype, shape)
            elif stored.shape != shape:
                raise _err(InvalidArgumentError, f"Incompatible tensor shapes detected for "
                           f"tensor {tensor.name}: existing = {list(stored.shape)}, new = "
                           f"{list(shape)}", file=path)
            stored.pieces.extend((TensorSlice.from_proto(s), index) for s in tensor.slice)

    def _parse(self, raw: bytes, path: str) -> Any:
        message = _SavedTensorSlices()
        try:
            message.ParseFromString(raw)
        except Exception:  # noqa: BLE001  (protobuf's DecodeError)
            raise _err(DataLossError, f"{path}: a damaged SavedTensorSlices record",
                       file=path) from None
        return message

    def _get(self, key: str | bytes) -> _Stored:
        name = _key_str(_key_bytes(key))
        stored = self._tensors.get(name)
        if stored is None:
            raise _err(NotFoundError, f"Tensor name \"{name}\" not found in checkpoint files "
                       f"{self.prefix}", tensor=name, prefix=self.prefix)
        return stored

    def _assemble(self, name: str, stored: _Stored, box: tuple) -> np.ndarray:
        out = np.zeros(tuple(stop - start for start, stop in box),
                       dtype=stored.dtype.as_numpy_dtype)
        covered = np.zeros(out.shape, dtype=bool)
        for slc, index in stored.pieces:
            piece_box = slc.bounds(stored.shape)
            overlap = tuple((max(a, c), min(b, d)) for (a, b), (c, d) in zip(box, piece_box))
            if any(lo >= hi for lo, hi in overlap) and out.size:
                continue
            piece = self._piece(name, stored, slc, index)
            source = tuple(slice(lo - c, hi - c) for (lo, hi), (c, _) in zip(overlap, piece_box))
            target = tuple(slice(lo - a, hi - a) for (lo, hi), (a, _) in zip(overlap, box))
            out[target] = piece[source]
            covered[target] = True
        if not covered.all():
            raise _err(NotFoundError, f"Can not find the saved slices of tensor {name} that "
                       f"cover the requested slice in checkpoint files {self.prefix}",
                       tensor=name, prefix=self.prefix)
        return out

    def _piece(self, name: str, stored: _Stored, slc: TensorSlice, index: int) -> np.ndarray:
        path = self.files[index]
        raw = self._tables[index].get(encode_slice_key(name, slc))
        if raw is None:
            raise _err(DataLossError, f"{path}: the meta lists slice {slc.to_string()!r} of "
                       f"tensor {name!r}, but the file has no data for it", file=path)
        data = self._parse(raw, path).data.data
        proto = pb.TensorProto()
        proto.CopyFrom(data)
        proto.dtype = stored.dtype.as_datatype_enum
        proto.tensor_shape.CopyFrom(_shape_proto(slc.shape(stored.shape)))
        value = make_ndarray(proto, name=name)
        return np.asarray(value).reshape(slc.shape(stored.shape))


def _shape_proto(shape: tuple[int, ...]) -> Any:
    proto = pb.TensorShapeProto()
    for size in shape:
        proto.dim.add().size = size
    return proto
