"""Reading checkpoints without a graph: ``tf.train.list_variables`` / ``load_variable`` /
``load_checkpoint`` and ``tf.compat.v1.train.NewCheckpointReader``.

A :class:`CheckpointReader` wraps :class:`gpugraph.io.bundle.BundleReader` with the interface
of TF's ``CheckpointReader``: the maps of tensor names to shapes and dtypes (a partitioned
variable appears once, under its full name and shape), ``get_tensor`` (a partitioned variable
reassembled; a scalar comes back as a numpy scalar, as TF returns it), ``has_tensor`` and
``debug_string``.  Errors are TF's: a missing checkpoint or tensor is a NotFoundError naming it,
a damaged file a DataLossError naming the file.
"""

from __future__ import annotations

import os
from typing import Any

from gpugraph import _proto as pb
from gpugraph import dtypes, errors
from gpugraph.io import bundle, tensor_slices
from gpugraph.train import checkpoint_management as cm


class CheckpointReader:
    """Reads the tensors of a V2 checkpoint, or of a V1 one (TF's ``CheckpointReader``).

    Args:
        prefix: the checkpoint prefix (``dir/model-100``).

    Raises:
        NotFoundError: no checkpoint at ``prefix``.
        DataLossError: its index is damaged.
    """

    def __init__(self, prefix: str | os.PathLike):
        self.prefix = os.fspath(prefix)
        if not os.path.exists(bundle.index_filename(self.prefix)) and not \
                tensor_slices.matching_files(self.prefix):
            raise _no_checkpoint(self.prefix)
        self._reader = tensor_slices.open_checkpoint(self.prefix)

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        """``{tensor name: shape as a list}`` (a partitioned tensor under its full name)."""
        return {k: list(self._reader.dtype_and_shape(k)[1]) for k in self._reader.keys()}

    def get_variable_to_dtype_map(self) -> dict[str, dtypes.DType]:
        """``{tensor name: DType}``."""
        return {k: self._reader.dtype_and_shape(k)[0] for k in self._reader.keys()}

    def has_tensor(self, name: str | bytes) -> bool:
        """Whether the checkpoint has an entry named ``name``."""
        return name in self._reader

    def get_tensor(self, name: str | bytes) -> Any:
        """The value of ``name`` (a numpy array; a numpy scalar for a 0-d tensor).

        Raises:
            NotFoundError: no such tensor (``Key <name> not found in checkpoint <prefix>``).
            DataLossError: its bytes are damaged; the message names the data file.
        """
        value = self._reader.read(name)
        return value[()] if value.ndim == 0 else value

    def debug_string(self) -> bytes:
        """One line ``<key> (<DT_TYPE>) [<dims>]`` per stored tensor, in key order (TF's
        format: the pieces of a partitioned tensor appear under their encoded slice keys)."""
        if isinstance(self._reader, tensor_slices.TensorSliceReader):
            return b"".join(self._v1_line(k) for k in self._reader.keys())
        lines = []
        for key in self._reader.raw_keys():
            entry = self._reader.entry(key)
            if entry.slices:
                continue
            dims = ",".join(str(d.size) for d in entry.shape.dim)
            lines.append(key + f" ({pb.DataType.Name(entry.dtype)}) [{dims}]\n".encode())
        return b"".join(lines)

    def _v1_line(self, key: str) -> bytes:
        dtype, shape = self._reader.dtype_and_shape(key)
        dims = ",".join(str(d) for d in shape)
        return f"{key} ({pb.DataType.Name(dtype.as_datatype_enum)}) [{dims}]\n".encode()

    def close(self) -> None:
        """Closes the data files."""
        self._reader.close()

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def NewCheckpointReader(filepattern: str | os.PathLike) -> CheckpointReader:  # noqa: N802
    """A :class:`CheckpointReader` for the checkpoint ``filepattern`` (TF's name)."""
    return CheckpointReader(filepattern)


def _no_checkpoint(prefix: str) -> errors.NotFoundError:
    hint = ""
    if os.path.isdir(prefix):
        hint = " (a directory: pass a checkpoint prefix such as dir/model-100, or use " \
               "gpugraph.train.load_checkpoint(directory))"
    return errors.NotFoundError(
        None, None, "Unsuccessful TensorSliceReader constructor: Failed to find any matching "
        f"files for {prefix}{hint}", {"prefix": prefix})


def _checkpoint_filename(ckpt_dir_or_file: str | os.PathLike) -> str:
    path = os.fspath(ckpt_dir_or_file)
    if os.path.isdir(path):
        return cm.latest_checkpoint(path) or ""
    return path


def load_checkpoint(ckpt_dir_or_file: str | os.PathLike) -> CheckpointReader:
    """A reader for a checkpoint prefix, or for the latest checkpoint of a directory.

    Raises:
        ValueError: a directory without a state file naming an existing checkpoint.
        NotFoundError: no checkpoint at the prefix.
    """
    filename = _checkpoint_filename(ckpt_dir_or_file)
    if not filename:
        raise ValueError("Couldn't find 'checkpoint' file or checkpoints in given directory "
                         f"{os.fspath(ckpt_dir_or_file)}")
    return CheckpointReader(filename)


def list_variables(ckpt_dir_or_file: str | os.PathLike) -> list[tuple[str, list[int]]]:
    """``[(name, shape), ...]`` of every tensor in the checkpoint, sorted by name."""
    with load_checkpoint(ckpt_dir_or_file) as reader:
        shapes = reader.get_variable_to_shape_map()
    return [(name, shapes[name]) for name in sorted(shapes)]


def load_variable(ckpt_dir_or_file: str | os.PathLike, name: str) -> Any:
    """The value of tensor ``name`` (a trailing ``:0`` is dropped) in the checkpoint.

    Raises:
        NotFoundError: no such tensor, naming it and the checkpoint.
    """
    if name.endswith(":0"):
        name = name[:-2]
    with load_checkpoint(ckpt_dir_or_file) as reader:
        return reader.get_tensor(name)


__all__ = ["CheckpointReader", "NewCheckpointReader", "list_variables", "load_checkpoint",
           "load_variable"]
