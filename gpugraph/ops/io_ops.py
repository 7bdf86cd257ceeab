"""Checkpoint I/O kernels: SaveV2, RestoreV2, MergeV2Checkpoints and the filename string ops.

They run the Saver ops of an imported graph exactly as TF's kernels do, on top of
:mod:`gpugraph.io.bundle`; error messages are TF's (the Saver wraps them further).
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from gpugraph import dtypes, errors
from gpugraph.io import bundle, tensor_slices
from gpugraph.ops.registry import BuildContext, op


def _text(value: Any) -> str:
    item = np.asarray(value).reshape(-1)[0] if np.size(value) else b""
    return item.decode("utf-8") if isinstance(item, bytes) else str(item)


def _texts(value: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v)
            for v in np.asarray(value, dtype=object).reshape(-1)]


def _host(ctx: BuildContext, value: Any) -> np.ndarray:
    return np.asarray(ctx.device.to_host(value))


@op("SaveV2", host_inputs=(0, 1, 2), host_only=True)
def _save_v2(ctx: BuildContext):
    node = ctx.op
    types = ctx.attr("dtypes") if node.type == "SaveV2" else ctx.attr("T")  # (Save, SaveSlices)

    def kernel(prefix: Any, tensor_names: Any, shape_and_slices: Any, *tensors: Any) -> None:
        names, specs = _texts(tensor_names), _texts(shape_and_slices)
        if not len(names) == len(specs) == len(tensors):
            raise errors.InvalidArgumentError(
                None, node, f"Expected {len(names)} tensors and shape_and_slices, got "
                f"{len(tensors)} and {len(specs)}")
        with bundle.BundleWriter(_text(prefix)) as writer:
            for name, spec, value, dtype in zip(names, specs, tensors, types):
                value = _host(ctx, value)
                parsed = bundle.parse_shape_and_slice(spec) if spec else None
                if parsed is None:
                    writer.add(name, value, dtype)
                else:
                    writer.add_slice(name, parsed[0], parsed[1], value, dtype)

    return kernel


@op("RestoreV2", host_inputs=(0, 1, 2), host_only=True)
def _restore_v2(ctx: BuildContext):
    node, types, device = ctx.op, ctx.attr("dtypes"), ctx.device

    def kernel(prefix: Any, tensor_names: Any, shape_and_slices: Any) -> tuple:
        path = _text(prefix)
        names, specs = _texts(tensor_names), _texts(shape_and_slices)
        with _open(path, node) as reader:
            return tuple(device.to_device(_restore_one(reader, node, name, spec, dtype))
                         for name, spec, dtype in zip(names, specs, types))

    return kernel


def _open(path: str, node: Any) -> Any:
    """The checkpoint at ``path``: a V2 bundle, or, as TF's RestoreV2 falls back to, the V1
    files the path names."""
    if os.path.exists(bundle.index_filename(path)):
        return bundle.BundleReader(path)
    if tensor_slices.matching_files(path):
        return tensor_slices.TensorSliceReader(path)
    raise errors.NotFoundError(
        None, node, "Unsuccessful TensorSliceReader constructor: Failed to find any matching "
        f"files for {path}", {"prefix": path})


def _restore_one(reader: Any, node: Any, name: str, spec: str, want: np.dtype) -> np.ndarray:
    if isinstance(reader, tensor_slices.TensorSliceReader):
        return _restore_v1(reader, node, name, spec, want)
    if name not in reader:
        raise errors.NotFoundError(None, node, f"Key {name} not found in checkpoint",
                                   {"tensor": name, "prefix": reader.prefix})
    stored, shape = reader.dtype_and_shape(name)
    if np.dtype(stored.as_numpy_dtype) != np.dtype(want):
        raise errors.InvalidArgumentError(
            None, node, f"tensor_name = {name}; expected dtype {dtypes.type_string(want)} does "
            f"not equal original dtype {dtypes.type_string(stored)}",
            {"tensor": name, "expected": str(np.dtype(want)), "stored": stored.name})
    parsed = bundle.parse_shape_and_slice(spec) if spec else None
    if parsed is None:
        return reader.read(name)
    full_shape, slc = parsed
    if tuple(full_shape) != tuple(shape):
        raise errors.InvalidArgumentError(
            None, node, f"tensor_name = {name}; shape in shape_and_slice spec "
            f"{list(full_shape)} does not match the shape stored in checkpoint: {list(shape)}")
    return reader.read_slice(name, slc)


@op("MergeV2Checkpoints", host_inputs=(0, 1), host_only=True)
def _merge_v2(ctx: BuildContext):
    delete = ctx.attr_or("delete_old_dirs", True)

    def kernel(prefixes: Any, destination: Any) -> None:
        bundle.merge_bundles(_texts(prefixes), _text(destination), delete_old_dirs=delete)

    return kernel


@op("ShardedFilename", host_inputs=(0, 1, 2), host_outputs=(0,), host_only=True)
def _sharded_filename(ctx: BuildContext):
    def kernel(basename: Any, shard: Any, num_shards: Any) -> Any:
        name = f"{_text(basename)}-{int(shard):05d}-of-{int(num_shards):05d}"
        return np.asarray(name.encode(), dtype=object)

    return kernel


@op("StringJoin", host_outputs=(0,), host_only=True)
def _string_join(ctx: BuildContext):
    separator = ctx.attr_or("separator", b"")

    def kernel(*inputs: Any) -> Any:
        arrays = [np.asarray(i, dtype=object) for i in inputs]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        parts = [np.broadcast_to(a, shape).reshape(-1) for a in arrays]
        joined = [separator.join(items) for items in zip(*parts)] if parts else []
        out = np.empty(len(joined), dtype=object)
        out[:] = joined
        return out.reshape(shape)

    return kernel


@op("StaticRegexFullMatch", host_outputs=(0,), host_only=True)
def _static_regex_full_match(ctx: BuildContext):
    pattern = re.compile(ctx.attr("pattern"))

    def kernel(value: Any) -> Any:
        array = np.asarray(value, dtype=object)
        flat = [pattern.fullmatch(v) is not None for v in array.reshape(-1)]
        return np.asarray(flat, dtype=bool).reshape(array.shape)

    return kernel


# --- V1 checkpoints -----------------------------------------------------------------------------
def _restore_v1(reader: tensor_slices.TensorSliceReader, node: Any, name: str, spec: str,
                want: np.dtype) -> np.ndarray:
    """One tensor (or the slice ``spec`` names) of a V1 checkpoint, with TF's V1 messages
    (kernels/save_restore_tensor.cc)."""
    try:
        stored, shape = reader.dtype_and_shape(name)
    except errors.NotFoundError as e:
        raise errors.NotFoundError(None, node, e.message, {"tensor": name}) from None
    if np.dtype(stored.as_numpy_dtype) != np.dtype(want):
        raise errors.InvalidArgumentError(
            None, node, f"Expected to restore a tensor of type {dtypes.type_string(want)}, got a "
            f"tensor of type {dtypes.type_string(stored)} instead: tensor_name = {name}",
            {"tensor": name})
    parsed = bundle.parse_shape_and_slice(spec) if spec else None
    if parsed is None:
        return reader.read(name)
    full_shape, slc = parsed
    if tuple(full_shape) != tuple(shape):
        raise errors.InvalidArgumentError(
            None, node, f"Shape in shape_and_slice spec does not match the shape in the save "
            f"file: {_dims(full_shape)}, save file shape: {_dims(shape)}", {"tensor": name})
    return reader.read_slice(name, slc)


def _dims(shape: Any) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _open_v1(path: str, node: Any) -> tensor_slices.TensorSliceReader:
    try:
        return tensor_slices.TensorSliceReader(path)
    except errors.NotFoundError as e:
        raise errors.NotFoundError(None, node, e.message, {"prefix": path}) from None


@op("RestoreSlice", host_inputs=(0, 1, 2), host_only=True)
def _restore_slice(ctx: BuildContext):
    # The restore op of V1 Savers: one tensor, or one slice of it ("<shape> <slice>").
    node, want, device = ctx.op, ctx.attr("dt"), ctx.device

    def kernel(pattern: Any, tensor_name: Any, shape_and_slice: Any) -> Any:
        with _open_v1(_text(pattern), node) as reader:
            value = _restore_v1(reader, node, _text(tensor_name), _text(shape_and_slice), want)
        return device.to_device(value)

    return kernel


@op("Restore", host_inputs=(0, 1), host_only=True)
def _restore(ctx: BuildContext):
    node, want, device = ctx.op, ctx.attr("dt"), ctx.device

    def kernel(pattern: Any, tensor_name: Any) -> Any:
        with _open_v1(_text(pattern), node) as reader:
            return device.to_device(_restore_v1(reader, node, _text(tensor_name), "", want))

    return kernel


@op("SaveSlices", host_inputs=(0, 1, 2), host_only=True)
def _save_slices(ctx: BuildContext):
    # A V1 Saver's save op: gpugraph writes the V2 format under the same prefix (as a V2 Saver
    # would; TF reads either, and the V2 files replace the V1 file as the newest checkpoint).
    save = _save_v2(ctx)
    return lambda filename, tensor_names, shapes_and_slices, *data: save(
        filename, tensor_names, _v1_slice_specs(shapes_and_slices, len(data)), *data)


@op("Save", host_inputs=(0, 1), host_only=True)
def _save(ctx: BuildContext):
    save = _save_v2(ctx)
    return lambda filename, tensor_names, *data: save(
        filename, tensor_names, np.asarray([b""] * len(data), dtype=object), *data)


def _v1_slice_specs(specs: Any, count: int) -> Any:
    # SaveSlices' "shape_and_slices" are V2's format already ("" for a whole tensor).
    return np.asarray(specs, dtype=object).reshape(-1) if np.size(specs) else \
        np.asarray([b""] * count, dtype=object)


# --- files ------------------------------------------------------------------------------------
@op("ReadFile", host_only=True)
def _read_file(ctx: BuildContext):
    node = ctx.op

    def kernel(filename: Any) -> Any:
        path = _text(filename)
        try:
            with open(path, "rb") as f:
                return np.asarray(f.read(), dtype=object)
        except OSError as e:
            raise errors.NotFoundError(None, node, f"{path}; {e.strerror}") from None

    return kernel


@op("WriteFile", host_only=True)
def _write_file(ctx: BuildContext):
    node = ctx.op

    def kernel(filename: Any, contents: Any) -> None:
        path = _text(filename)
        data = np.asarray(contents, dtype=object).reshape(())[()]
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # (as TF's kernel)
            with open(path, "wb") as f:
                f.write(data if isinstance(data, bytes) else str(data).encode())
        except OSError as e:
            raise errors.PermissionDeniedError(None, node, f"{path}; {e.strerror}") from None

    return kernel


@op("MatchingFiles", host_only=True)
def _matching_files(ctx: BuildContext):
    import glob  # noqa: PLC0415  (only this kernel globs)

    def kernel(pattern: Any) -> Any:
        found = sorted({m for p in _texts(pattern) for m in glob.glob(p)})
        out = np.empty(len(found), dtype=object)
        out[:] = [m.encode() for m in found]
        return out

    return kernel
