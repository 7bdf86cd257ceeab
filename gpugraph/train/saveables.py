"""What a new Saver saves: ``var_list`` -> sorted saveables (TF's ``saveable_object_util``).

A *saveable* is one checkpoint entry and how to restore it: its key (``name``), slice spec
(``""`` or ``"6 3 0,3:0,3"`` for one part of a partitioned variable), the tensor SaveV2 reads,
and the variable restore assigns to.  The rules are TF's, including which tensor is saved:

* a ref variable in a list or dict is saved from its ``VariableV2`` output (``v``); a part of a
  partitioned ref variable from its snapshot (``v/part_0/read``);
* a resource variable from its read tensor (``v/Read/ReadVariableOp``); a part of a partitioned
  resource variable from new ops built when the save op is (``save/Read/ReadVariableOp`` and
  two Identities, the second on ``/device:CPU:0``).

Keys are sorted before any op is built.  Errors are TF's: a duplicate name or the same variable
under two names is a ``ValueError``, a non-variable a ``TypeError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from gpugraph import dtypes
from gpugraph.framework.graph import Graph
from gpugraph.framework.graph_keys import GraphKeys
from gpugraph.framework.ops import Tensor
from gpugraph.framework.tensor_shape import TensorShape
from gpugraph.framework.variables import Variable

REF_VARIABLE_OPS = frozenset({"Variable", "VariableV2", "AutoReloadVariable"})


@dataclasses.dataclass
class Saveable:
    """One checkpoint entry of a Saver and the variable it restores.

    Attributes:
        name: the checkpoint key.
        slice_spec: ``""`` (the whole tensor) or a ``shape_and_slices`` string.
        tensor: what SaveV2 saves, or a function that builds it (called once, when the save op
            is built, inside the Saver's name scope).
        dtype: the (non-ref) dtype of the saved value.
        device: the device the value lives on (sharded savers group by it).
        target: the variable's ref tensor (ref) or resource handle (resource).
        shape: the variable's static shape.
        kind: ``"ref"`` or ``"resource"``.
        key: identifies the saved object (the same one under two names is an error).
    """

    name: str
    slice_spec: str
    tensor: Tensor | Callable[[], Tensor]
    dtype: dtypes.DType
    device: str
    target: Tensor
    shape: TensorShape
    kind: str
    key: Any

    def save_tensor(self) -> Tensor:
        """The tensor to save (built now if it is built lazily, as TF's SaveSpec does)."""
        return self.tensor() if callable(self.tensor) else self.tensor


def all_saveable_objects(graph: Graph) -> list:
    """The global variables and the SAVEABLE_OBJECTS collection (TF's default ``var_list``)."""
    return (graph.get_collection(GraphKeys.GLOBAL_VARIABLES)
            + graph.get_collection(GraphKeys.SAVEABLE_OBJECTS))


def saveables_from_var_list(var_list: Any) -> list[Saveable]:
    """TF's ``validate_and_slice_inputs(op_list_to_dict(var_list))``: saveables sorted by name.

    Raises:
        TypeError: ``var_list`` is not a list/tuple/set/dict, a key is not a string, or an item
            is not a variable (or a variable's tensor).
        ValueError: two variables share a name, or one variable has two names.
    """
    names_to_saveables = var_list if isinstance(var_list, Mapping) else op_list_to_dict(var_list)
    saveables: list[Saveable] = []
    seen: set[int] = set()
    for name, op in sorted(names_to_saveables.items(), key=lambda item: _check_name(item[0])):
        for saveable in _saveables_for_op(op, name):
            if id(saveable.key) in seen:
                raise ValueError(f"The same saveable will be restored with two names: {name}")
            seen.add(id(saveable.key))
            saveables.append(saveable)
    return saveables


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError("names_to_saveables must be a dict mapping string names to trackable "
                        f"operations. Name is not a string: {name}")
    return name


def op_list_to_dict(op_list: Any) -> dict[str, Any]:
    """TF's ``op_list_to_dict``: ``{checkpoint name: variable tensor | [partitions]}``."""
    if not isinstance(op_list, (list, tuple, set)):
        raise TypeError(f"Variables to save should be passed in a dict or a list. Got {op_list}")
    out: dict[str, Any] = {}
    for var in sorted(_flatten(op_list), key=lambda v: str(getattr(v, "name", ""))):
        info = var.save_slice_info if isinstance(var, Variable) else None
        if info is not None:
            parts = out.setdefault(info.full_name, [])
            if not isinstance(parts, list):
                raise ValueError(f"Mixing slices and non-slices with the same name: "
                                 f"{info.full_name}")
            parts.append(var)
            continue
        tensor = _variable_tensor(var)
        name = tensor.op.inputs[0].op.name if tensor.op.type == "ReadVariableOp" else tensor.op.name
        if name in out:
            raise ValueError(f"At least two variables have the same name: {name}")
        out[name] = tensor
    return out


def _flatten(items: Any) -> list:
    out = []
    for item in items:
        out.extend(_flatten(item) if isinstance(item, (list, tuple)) else [item])
    return out


def _variable_tensor(var: Any) -> Tensor:
    """The tensor TF converts a variable to for saving (ref output or resource read)."""
    if isinstance(var, Variable):
        return var.value() if var.is_resource else var._variable
    if isinstance(var, Tensor) and (var.op.type in REF_VARIABLE_OPS
                                    or var.op.type == "ReadVariableOp"):
        return var
    raise TypeError(f"Variable to save is not a Variable: {var!r}")


def _saveables_for_op(op: Any, name: str) -> list[Saveable]:
    if isinstance(op, (list, tuple)):
        return _slice_saveables(op, name)
    tensor = _variable_tensor(op)
    if tensor.op.type in REF_VARIABLE_OPS:
        return [_ref_saveable(tensor, name)]
    return [_resource_read_saveable(tensor, name)]


def _slice_saveables(parts: list | tuple, name: str) -> list[Saveable]:
    full_name = None
    out = []
    for var in parts:
        if not isinstance(var, Variable):
            raise ValueError(f"Slices must all be Variables: {var!r}")
        info = var.save_slice_info
        if info is None:
            raise ValueError(f"Slices must all be slices: {var!r}")
        if full_name is not None and full_name != info.full_name:
            raise ValueError(f"Slices must all be from the same tensor: {full_name} != "
                             f"{info.full_name}")
        full_name = info.full_name
        out.append(_resource_part_saveable(var, name, info.spec) if var.is_resource
                   else _ref_part_saveable(var, name, info.spec))
    return out


def _ref_saveable(tensor: Tensor, name: str) -> Saveable:
    return Saveable(name, "", tensor, tensor.dtype.base_dtype, tensor.device, tensor,
                    tensor.shape, "ref", tensor)


def _ref_part_saveable(var: Variable, name: str, spec: str) -> Saveable:
    # TF's SaveSpec holds the Variable object; SaveV2 converts it with var.value() (snapshot).
    return Saveable(name, spec, var.value(), var.dtype.base_dtype, var.device, var._variable,
                    var.shape, "ref", var)


def _resource_read_saveable(read: Tensor, name: str) -> Saveable:
    handle = read.op.inputs[0]
    return Saveable(name, "", read, read.dtype.base_dtype, read.device, handle, read.shape,
                    "resource", read)


def _resource_part_saveable(var: Variable, name: str, spec: str) -> Saveable:
    def build() -> Tensor:
        from gpugraph.train.saver_builder import read_variable_for_save

        return read_variable_for_save(var)

    return Saveable(name, spec, build, var.dtype.base_dtype, var.device, var.handle, var.shape,
                    "resource", var)

