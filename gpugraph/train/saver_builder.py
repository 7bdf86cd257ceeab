"""Builds a new Saver's save and restore ops exactly as TF's ``BulkSaverBuilder`` does.

The ops, their names, inputs, devices, colocation, control inputs and attrs (down to
``_has_manual_control_dependencies`` and ``_output_shapes``) are TF 2.21's, checked node by node
against graphs TF built (``tests/fixtures/saver``, ``scripts/make_saver_fixtures.py``), so a
``.meta`` gpugraph exports is the one TF would have written and TF runs its Saver.  For a graph
with variables ``a`` (ref) and ``b`` (resource), ``Saver()`` adds (shared/reference/tf_facts.md
§4.2)::

    save/filename/input  Const "model"           save/RestoreV2/{tensor_names,shape_and_slices}
    save/filename        PlaceholderWithDefault  save/RestoreV2   RestoreV2 on /device:CPU:0
    save/Const           PlaceholderWithDefault  save/Assign      Assign(a, RestoreV2:0)
    save/SaveV2/{tensor_names,shape_and_slices}   save/Identity    Identity(RestoreV2:1)
    save/SaveV2          SaveV2(Const, ..., a, b/Read/ReadVariableOp)
    save/control_dependency  Identity(save/Const, ^save/SaveV2)
    save/AssignVariableOp  AssignVariableOp(b, save/Identity)
    save/restore_all     NoOp(^save/Assign, ^save/AssignVariableOp)

The SaverDef names ``save/Const:0`` (filename), ``save/control_dependency:0`` (save) and
``save/restore_all`` (restore).  ``sharded=True`` saves one shard per device through
``ShardedFilename``/``MergeV2Checkpoints`` (§4.3).  Only the V2 format is written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from gpugraph import _proto as pb
from gpugraph import dtypes, errors
from gpugraph.framework.attrs import to_attr_value
from gpugraph.framework.builders import constant
from gpugraph.framework.device_spec import DeviceSpec, canonical_name
from gpugraph.framework.graph import get_default_graph
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.framework.tensor_shape import TensorShape
from gpugraph.io import bundle
from gpugraph.train.saveables import Saveable

SAVER_DEF_V2 = 2
_MANUAL_CONTROL = "_has_manual_control_dependencies"  # TF marks every explicit control input
_SCALAR = TensorShape([])


# --- small graph-building helpers (the default graph is the Saver's) ----------------------------
def _op(op_type: str, inputs: Sequence[Tensor], name: str, attrs: dict | None = None,
        shapes: Sequence[TensorShape] = (), control: Sequence[Operation] = ()) -> Operation:
    """Adds an op; ``control`` ops become its control inputs (sorted by name, as TF writes them)."""
    graph = get_default_graph()
    for c in control:
        c._node_def.attr[_MANUAL_CONTROL].b = True
    deps = graph.control_dependencies(sorted(control, key=lambda o: o.name)) if control else (
        contextlib.nullcontext())
    with deps:
        op = graph.create_op(op_type, list(inputs), name=name,
                             attrs={k: to_attr_value(v) for k, v in (attrs or {}).items()})
    for tensor, shape in zip(op.outputs, shapes, strict=False):
        tensor._shape = TensorShape(shape)
    return op


def _identity(x: Tensor, name: str = "Identity", control: Sequence[Operation] = ()) -> Tensor:
    return _op("Identity", [x], name, {"T": x.dtype.base_dtype}, [x.shape], control).outputs[0]


def _strings(values: Sequence[str], name: str) -> Tensor:
    return constant([v.encode() for v in values], dtype=dtypes.string, name=name)


@contextlib.contextmanager
def _scope(name: str) -> Iterator[str]:
    """TF's op-building name scope: yields ``"<scope>/"``; an op named that takes it verbatim."""
    with get_default_graph().name_scope(name) as scope:
        yield scope


def set_cpu0(device: str) -> str:
    """TF's ``saveable_object_util.set_cpu0``: the device with type and index forced to CPU:0."""
    spec = DeviceSpec.from_string(device).replace(device_type="CPU", device_index=0)
    return spec.to_string()


def read_variable_for_save(var: Any) -> Tensor:
    """A resource variable's value for SaveV2, built as TF's ``ResourceVariableSaveable`` does
    for a partitioned variable's part: a no-copy read on the variable's device, then a copy to
    the CPU."""
    graph = get_default_graph()
    with graph.device(var.device):
        with _scope("Read"):
            _op("DisableCopyOnRead", [var.handle], "DisableCopyOnRead")
            value = _op("ReadVariableOp", [var.handle], "ReadVariableOp",
                        {"dtype": var.dtype.base_dtype}, [var.shape]).outputs[0]
        local = _identity(value)
    with graph.device("/device:CPU:0"):
        return _identity(local)


def _restored_shape(spec: str) -> TensorShape:
    parsed = bundle.parse_shape_and_slice(spec)
    return TensorShape(None) if parsed is None else TensorShape(parsed[1].shape(parsed[0]))


def _restore_v2(prefix: Tensor, saveables: Sequence[Saveable]) -> list[Tensor]:
    with _scope("RestoreV2") as scope:
        names = _strings([s.name for s in saveables], "tensor_names")
        slices = _strings([s.slice_spec for s in saveables], "shape_and_slices")
        op = _op("RestoreV2", [prefix, names, slices], scope,
                 {"dtypes": [s.dtype for s in saveables]},
                 [_restored_shape(s.slice_spec) for s in saveables])
    return list(op.outputs)


def _reshape(tensor: Tensor, shape: TensorShape | Tensor) -> Tensor:
    with _scope("Reshape") as scope:
        static = TensorShape(None)
        if isinstance(shape, TensorShape):
            dims = shape.as_list()
            wide = any(d >= 2**31 for d in dims)  # as TF's TensorShape -> tensor conversion
            shape = constant(dims, dtype=dtypes.int64 if wide else dtypes.int32, name="shape")
            static = TensorShape(dims)
        return _op("Reshape", [tensor, shape], scope,
                   {"T": tensor.dtype.base_dtype, "Tshape": shape.dtype}, [static]).outputs[0]


def _group(ops: Sequence[Operation], name: str) -> Operation:
    """TF's ``control_flow_ops.group``: one NoOp, or one per device under a final NoOp."""
    with _scope(name) as scope:
        by_device: dict[str, list[Operation]] = {}
        for op in ops:
            by_device.setdefault(op.device, []).append(op)
        if len(by_device) == 1:
            ((device, deps),) = by_device.items()
            return _device_no_op(device, deps, scope)
        per_device = [_device_no_op(d, by_device[d], "NoOp") for d in sorted(by_device)]
        return _op("NoOp", [], scope, control=per_device)


def _device_no_op(device: str, deps: list[Operation], name: str) -> Operation:
    with get_default_graph().device(device):
        return _op("NoOp", [], name, control=deps)


# --- the builder ----------------------------------------------------------------------------
class BaseSaverBuilder:
    """Builds save/restore ops (TF's ``BaseSaverBuilder``: one RestoreV2 per saveable)."""

    def __init__(self, write_version: int = SAVER_DEF_V2):
        if write_version != SAVER_DEF_V2:
            raise errors.UnimplementedError(
                None, None, f"Saver write_version={write_version}: gpugraph writes only V2 "
                "checkpoints (SaverDef.V2, TF's default); V1 (SaveSlices) is not supported.")
        self._write_version = write_version

    def build(self, saveables: Sequence[Saveable], reshape: bool = False, sharded: bool = False,
              max_to_keep: int | None = 5, keep_checkpoint_every_n_hours: float = 10000.0,
              name: str | None = None, filename: str | None = None) -> Any:
        """Adds the ops to the saveables' graph and returns their SaverDef."""
        graph = saveables[0].target.graph if saveables else get_default_graph()
        with graph.as_default(), _scope(name or "save"):
            prefix = _filename_tensor(filename)
            if sharded:
                per_device = _group_by_device(saveables)
                save = self._add_sharded_save_ops(prefix, per_device)
                restore = self._add_sharded_restore_ops(prefix, per_device, reshape)
            else:
                save = self._add_save_ops(prefix, saveables)
                restore = self._add_restore_ops(prefix, saveables, reshape, "restore_all")
        return pb.SaverDef(
            filename_tensor_name=prefix.name, save_tensor_name=save.name,
            restore_op_name=restore.name, max_to_keep=max_to_keep or 0, sharded=sharded,
            keep_checkpoint_every_n_hours=keep_checkpoint_every_n_hours,
            version=self._write_version)

    # -- save --
    def _save_op(self, prefix: Tensor, saveables: Sequence[Saveable]) -> Operation:
        tensors = [s.save_tensor() for s in saveables]  # lazily built reads come first, as TF
        with _scope("SaveV2") as scope:
            names = _strings([s.name for s in saveables], "tensor_names")
            slices = _strings([s.slice_spec for s in saveables], "shape_and_slices")
            return _op("SaveV2", [prefix, names, slices, *tensors], scope,
                       {"dtypes": [t.dtype.base_dtype for t in tensors]})

    def _add_save_ops(self, prefix: Tensor, saveables: Sequence[Saveable]) -> Tensor:
        save = self._save_op(prefix, saveables)
        return _with_dependencies([save], prefix)

    def _add_sharded_save_ops(self, prefix: Tensor, per_device: list) -> Tensor:
        # TF's _AddShardedSaveOpsForV2: each device's variables go to their own bundle under
        # "<prefix>_temp/part-%05d-of-%05d" (".part" on s3), which MergeV2Checkpoints then
        # renames into "<prefix>.data-*" and indexes in "<prefix>.index", deleting the temp dir.
        graph = get_default_graph()
        with graph.device("CPU"):
            temp_prefix = _sharded_temp_prefix(prefix)
        num_shards = constant(len(per_device), dtype=dtypes.int32, name="num_shards")
        shard_saves, shard_prefixes = [], []
        for shard, (device, saveables) in enumerate(per_device):
            with graph.device(set_cpu0(device)):
                shard_prefix = _sharded_filename(temp_prefix, shard, num_shards)
                shard_prefixes.append(shard_prefix)
                shard_saves.append(self._add_save_ops(shard_prefix, saveables))
        with graph.device(set_cpu0(per_device[-1][0])):
            return _merge(shard_prefixes, prefix, [t.op for t in shard_saves])

    # -- restore --
    def bulk_restore(self, prefix: Tensor, saveables: Sequence[Saveable]) -> list[Tensor]:
        """One RestoreV2 per saveable, each on its device's CPU (TF's default builder)."""
        graph = get_default_graph()
        out = []
        for s in saveables:
            with graph.device(set_cpu0(s.device) if s.device else None):
                out.extend(_restore_v2(prefix, [s]))
        return out

    def _add_restore_ops(self, prefix: Tensor, saveables: Sequence[Saveable], reshape: bool,
                         name: str) -> Operation:
        restored = self.bulk_restore(prefix, saveables)
        assigns = []
        for saveable, tensor in zip(saveables, restored, strict=True):
            shape = _reshape_target(saveable) if reshape else None
            assigns.append(_restore_saveable(saveable, tensor, shape))
        return _group(assigns, name)

    def _add_sharded_restore_ops(self, prefix: Tensor, per_device: list,
                                 reshape: bool) -> Operation:
        graph = get_default_graph()
        shards = []
        for device, saveables in per_device:
            with graph.device(device):
                shards.append(self._add_restore_ops(prefix, saveables, reshape, "restore_shard"))
        return _group(shards, "restore_all")


class BulkSaverBuilder(BaseSaverBuilder):
    """TF's default builder: one RestoreV2 for all saveables, on ``/device:CPU:0``."""

    def bulk_restore(self, prefix: Tensor, saveables: Sequence[Saveable]) -> list[Tensor]:
        with get_default_graph().device("cpu:0"):
            return _restore_v2(prefix, saveables)


def _filename_tensor(filename: str | None) -> Tensor:
    with _scope("filename") as scope:
        default = constant(filename or "model", dtype=dtypes.string, name="input")
        named = _op("PlaceholderWithDefault", [default], scope,
                    {"dtype": dtypes.string, "shape": _SCALAR}, [_SCALAR]).outputs[0]
    with _scope("Const") as scope:  # TF keeps the name "Const" for backwards compatibility
        return _op("PlaceholderWithDefault", [named], scope,
                   {"dtype": dtypes.string, "shape": _SCALAR}, [_SCALAR]).outputs[0]


def _with_dependencies(deps: Sequence[Operation], output: Tensor) -> Tensor:
    """TF's ``control_flow_ops.with_dependencies``: ``output`` once ``deps`` have run."""
    with _scope("control_dependency") as scope, get_default_graph().colocate_with(output.op):
        return _identity(output, scope, deps)


def _group_by_device(saveables: Sequence[Saveable]) -> list[tuple[str, list[Saveable]]]:
    per_device: dict[str, list[Saveable]] = {}
    for s in saveables:
        per_device.setdefault(canonical_name(s.device), []).append(s)
    return sorted(per_device.items(), key=lambda item: item[0])


def _sharded_temp_prefix(prefix: Tensor) -> Tensor:
    with _scope("StaticRegexFullMatch") as scope:
        is_s3 = _op("StaticRegexFullMatch", [prefix], scope, {"pattern": "^s3://.*"},
                    [_SCALAR]).outputs[0]
    s3_suffix = constant(".part", dtype=dtypes.string)
    local_suffix = constant(os.path.normpath("_temp/part"), dtype=dtypes.string)
    suffix = _op("Select", [is_s3, s3_suffix, local_suffix], "Select", {"T": dtypes.string},
                 [_SCALAR]).outputs[0]
    return _op("StringJoin", [prefix, suffix], "StringJoin", {"N": 2, "separator": ""},
               [_SCALAR]).outputs[0]


def _sharded_filename(prefix: Tensor, shard: int, num_shards: Tensor) -> Tensor:
    with _scope("ShardedFilename") as scope:
        index = constant(shard, dtype=dtypes.int32, name="shard")
        return _op("ShardedFilename", [prefix, index, num_shards], scope, {},
                   [_SCALAR]).outputs[0]


def _merge(shard_prefixes: list[Tensor], prefix: Tensor, shard_saves: list[Operation]) -> Tensor:
    with _scope("MergeV2Checkpoints") as scope:
        with _scope("checkpoint_prefixes") as pack_name:
            packed = _op("Pack", shard_prefixes, pack_name,
                         {"N": len(shard_prefixes), "T": dtypes.string, "axis": 0},
                         [TensorShape([len(shard_prefixes)])], shard_saves).outputs[0]
        # No control inputs of its own: TF drops them, the Pack already depends on the saves.
        merge = _op("MergeV2Checkpoints", [packed, prefix], scope,
                    {"delete_old_dirs": True, "allow_missing_files": False})
    return _identity(prefix, "Identity", [merge, *shard_saves])


def _reshape_target(saveable: Saveable) -> TensorShape | Tensor:
    if saveable.shape.is_fully_defined():
        return saveable.shape
    tensor = saveable.save_tensor()
    return _op("Shape", [tensor], "Shape", {"T": tensor.dtype.base_dtype,
                                             "out_type": dtypes.int32},
               [TensorShape([saveable.shape.rank])]).outputs[0]


def _restore_saveable(s: Saveable, restored: Tensor, shape: Any) -> Operation:
    """Assigns a restored value to its variable (TF's ``*VariableSaveable.restore``)."""
    if shape is not None:
        restored = _reshape(restored, shape)
    graph = get_default_graph()
    if s.kind == "ref":
        validate = shape is None and s.shape.is_fully_defined()
        with graph.colocate_with(s.target.op):  # TF colocates ops with their ref inputs
            return _op("Assign", [s.target, restored], "Assign",
                       {"T": s.dtype, "use_locking": True, "validate_shape": validate},
                       [s.shape if validate else restored.shape])
    with graph.device(s.device):
        value = _identity(restored)
        return _op("AssignVariableOp", [s.target, value], "AssignVariableOp",
                   {"dtype": s.dtype, "validate_shape": False})

