"""The :class:`Graph`: an append-only set of Operations plus TF's naming, scopes and collections.

Mirrors ``tf.compat.v1.Graph``: unique op names (``x``, ``x_1``, ... case-insensitively),
``name_scope``, ``device`` scopes with TF's per-field merge, ``colocate_with``,
``control_dependencies``, collections, ``as_graph_def``, and the default-graph stack.  Ops are
never removed or reordered once added, so anything computed from a prefix of the op list (an
execution plan, say) stays valid until :attr:`Graph.version` changes.
"""

from __future__ import annotations

import contextlib
import operator
import re
import threading
from collections.abc import Iterator
from typing import Any

from gpugraph import _proto as pb
from gpugraph.framework import names
from gpugraph.framework.device_spec import DeviceSpec, merge_device
from gpugraph.framework.op_def import OpDefLibrary
from gpugraph.framework.ops import Operation, Tensor

GRAPH_DEF_VERSION = 2474  # TF 2.21's producer version; what TF writes in GraphDef.versions.

_op_name = operator.attrgetter("_name")
_NO_DEVICE = object()  # marks `with g.device(None)`: outer device scopes stop applying


class Graph:
    """A TensorFlow-compatible dataflow graph (``tf.compat.v1.Graph``)."""

    def __init__(self) -> None:
        self._ops: list[Operation] = []
        self._by_name: dict[str, Operation] = {}
        self._used_names: dict[str, int] = {}
        # Ops imported but not yet in _used_names: an import registers its ops' names here,
        # one list per import, and the first look at the names registers them.  Most imported
        # graphs never name a new op, and lowering 50k names is ~4% of such an import.
        self._unmarked_imports: list[list[Operation]] = []
        self._name_stack = ""
        self._device_stack: list[Any] = []
        self._colocation_stack: list[Operation] = []
        self._control_stack: list[list[Operation] | None] = []
        self._collections: dict[Any, list] = {}
        self._op_defs = OpDefLibrary()
        self._library = pb.FunctionDefLibrary()
        self._versions = pb.VersionDef(producer=GRAPH_DEF_VERSION)
        self._version = 0
        self._finalized = False
        self._lock = threading.RLock()

    # --- default graph ----------------------------------------------------------------------
    @contextlib.contextmanager
    def as_default(self) -> Iterator[Graph]:
        """Makes this the default graph inside the ``with`` block."""
        stack = _default_stack()
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    # --- versioning -------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Grows whenever an op or control edge is added; plans cached against it stay valid."""
        return self._version

    def _bump_version(self) -> None:
        self._version += 1

    @property
    def graph_def_versions(self) -> Any:
        return self._versions

    def finalize(self) -> None:
        """Makes the graph read-only (adding ops raises RuntimeError), as TF's ``finalize``."""
        self._finalized = True

    @property
    def finalized(self) -> bool:
        return self._finalized

    def _check_not_finalized(self) -> None:
        if self._finalized:
            raise RuntimeError("Graph is finalized and cannot be modified.")

    # --- adding ops -------------------------------------------------------------------------
    def _add_op(self, op: Operation) -> None:
        self._check_not_finalized()
        if op._name in self._by_name:
            raise ValueError(f"Cannot add op with name {op._name} as that name is already used")
        op._id = len(self._ops) + 1
        self._ops.append(op)
        self._by_name[op._name] = op
        self._version += 1

    def create_op(
        self,
        op_type: str,
        inputs: list[Tensor] | tuple[Tensor, ...] = (),
        name: str | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> Operation:
        """Adds a new op with TF's naming, device, colocation and control-dependency rules.

        Args:
            op_type: the op type, e.g. ``"Placeholder"``.
            inputs: data inputs, Tensors of this graph.
            name: the requested name (uniquified; a trailing "/" uses it verbatim).
            attrs: AttrValue protos by attr name.
        """
        for t in inputs:
            if not isinstance(t, Tensor) or t.graph is not self:
                raise ValueError(f"Tensor {t!r} must be from the same graph as the new op.")
        name = name or op_type
        name = name[:-1] if name.endswith("/") else self.unique_name(name)
        node_def = pb.NodeDef(name=name, op=op_type)
        for key, value in (attrs or {}).items():
            node_def.attr[key].CopyFrom(value)
        control = self._current_control_inputs({t.op for t in inputs})
        colocation = self._current_colocation()
        op = Operation(self, node_def, name, op_type, tuple(inputs), control, "", colocation)
        self._apply_device_scopes(op)
        if colocation:
            self._apply_colocation_device(op)
        self._add_op(op)
        return op

    # --- lookup -----------------------------------------------------------------------------
    def get_operations(self) -> list[Operation]:
        """All operations, in the order they were added."""
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        if not isinstance(name, str):
            raise TypeError(f"Operation names are strings (or similar), not {type(name).__name__}.")
        return self.as_graph_element(name, allow_tensor=False, allow_operation=True)

    def get_tensor_by_name(self, name: str) -> Tensor:
        if not isinstance(name, str):
            raise TypeError(f"Tensor names are strings (or similar), not {type(name).__name__}.")
        return self.as_graph_element(name, allow_tensor=True, allow_operation=False)

    def as_graph_element(self, obj: Any, allow_tensor: bool = True, allow_operation: bool = True):
        """Resolves a name, Tensor or Operation to this graph's element, with TF's errors."""
        if isinstance(obj, (Tensor, Operation)):
            return self._check_own_element(obj, allow_tensor, allow_operation)
        if hasattr(obj, "_as_graph_element"):
            return self.as_graph_element(obj._as_graph_element(), allow_tensor, allow_operation)
        if isinstance(obj, bytes):
            obj = obj.decode("utf-8")
        if not isinstance(obj, str):
            raise TypeError(f"Can not convert a {type(obj).__name__} into a {_kinds(allow_tensor, allow_operation)}.")
        if ":" in obj and allow_tensor:
            return self._tensor_by_name(obj, allow_operation)
        if ":" in obj:
            raise ValueError(
                f"Name {obj!r} appears to refer to a Tensor, not a {_kinds(False, allow_operation)}."
            )
        if not allow_operation:
            raise ValueError(
                f"The name {obj!r} refers to an Operation, not a Tensor. Tensor names must be of "
                'the form "<op_name>:<output_index>".'
            )
        try:
            return self._by_name[obj]
        except KeyError:
            raise KeyError(f"The name {obj!r} refers to an Operation not in the graph.") from None

    def _tensor_by_name(self, name: str, allow_operation: bool) -> Tensor:
        try:
            op_name, index = names.split_tensor_name(name)
        except ValueError as e:
            raise ValueError(str(e)) from None
        op = self._by_name.get(op_name)
        if op is None:
            raise KeyError(
                f"The name {name!r} refers to a Tensor which does not exist. The operation, "
                f"{op_name!r}, does not exist in the graph."
            )
        tensor = op._output(index)
        if tensor is None:
            raise KeyError(
                f"The name {name!r} refers to a Tensor which does not exist. The operation, "
                f"{op_name!r}, exists but only has {len(op.outputs)} outputs."
            )
        return tensor

    def _check_own_element(self, obj: Any, allow_tensor: bool, allow_operation: bool):
        is_tensor = isinstance(obj, Tensor)
        if (is_tensor and not allow_tensor) or (not is_tensor and not allow_operation):
            kind = "Tensor" if is_tensor else "Operation"
            raise TypeError(f"Can not convert a {kind} into a {_kinds(allow_tensor, allow_operation)}.")
        if obj.graph is not self:
            raise ValueError(f"{kind_of(obj)} {obj!r} is not an element of this graph.")
        return obj

    # --- naming -----------------------------------------------------------------------------
    @property
    def _names_in_use(self) -> dict[str, int]:
        """Lowered name -> times used (TF's ``_names_in_use``), imported names included."""
        if self._unmarked_imports:
            self._mark_imported_names()
        return self._used_names

    def _mark_imported_names(self) -> None:
        # TF marks an imported op's name only, not its scopes, and never lowers a count
        # unique_name already set: setdefault, import by import, in the order they happened.
        used = self._used_names
        for ops in self._unmarked_imports:
            lowered = map(str.lower, map(_op_name, ops))
            if used:
                for key in lowered:
                    used.setdefault(key, 1)
            else:  # into an empty registry: one C-level update
                used.update(dict.fromkeys(lowered, 1))
        self._unmarked_imports.clear()

    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """TF's ``Graph.unique_name``: scope-prefixed, case-insensitively uniquified."""
        if self._name_stack:
            name = f"{self._name_stack}/{name}"
        key = name.lower()
        i = self._names_in_use.get(key, 0)
        if mark_as_used:
            self._names_in_use[key] = i + 1
        if i > 0:
            base = key
            while key in self._names_in_use:
                key = f"{base}_{i}"
                i += 1
            if mark_as_used:
                self._names_in_use[key] = 1
            name = f"{name}_{i - 1}"
        return name

    def _mark_name_used(self, name: str) -> None:
        """Records an imported op's name as TF does (the name only, not its parent scopes)."""
        self._names_in_use.setdefault(name.lower(), 1)

    def get_name_scope(self) -> str:
        return self._name_stack

    @contextlib.contextmanager
    def name_scope(self, name: str | None) -> Iterator[str]:
        """TF's ``Graph.name_scope``: a trailing "/" reuses a scope verbatim, else uniquifies."""
        if name:
            pattern = names.VALID_SCOPE_NAME if self._name_stack else names.VALID_OP_NAME
            if not pattern.match(name):
                raise ValueError(f"'{name}' is not a valid scope name")
        old = self._name_stack
        if not name:
            new, returned = "", ""
        elif name.endswith("/"):
            new, returned = name[:-1], name
        else:
            new = self.unique_name(name)
            returned = new + "/"
        self._name_stack = new
        try:
            yield returned
        finally:
            self._name_stack = old

    # --- device scopes ----------------------------------------------------------------------
    @contextlib.contextmanager
    def device(self, device_name_or_function: Any) -> Iterator[None]:
        """A device scope: a string or DeviceSpec merged per field, a function, or None."""
        entry = device_name_or_function
        if entry is None:
            entry = _NO_DEVICE
        elif isinstance(entry, DeviceSpec):
            entry = entry.to_string()
        elif isinstance(entry, str):
            DeviceSpec.from_string(entry)  # validate now, as TF does
        elif not callable(entry):
            raise TypeError(f"device() takes a string, DeviceSpec, function or None, not {entry!r}")
        self._device_stack.append(entry)
        try:
            yield
        finally:
            self._device_stack.pop()

    def _apply_device_scopes(self, op: Operation) -> None:
        """TF's ``_apply_device_functions``: innermost scope first; each merges under the op."""
        for entry in reversed(self._device_stack):
            if entry is _NO_DEVICE:
                break
            if callable(entry):
                result = entry(op)
                op._set_device(result if result is not None else "")
            elif entry:
                op._device = merge_device(entry, op._device)

    # --- colocation -------------------------------------------------------------------------
    @contextlib.contextmanager
    def colocate_with(self, op: Any, ignore_existing: bool = False) -> Iterator[None]:
        """Ops created inside are colocated with ``op``; outer device scopes stop applying."""
        if op is None and not ignore_existing:
            raise ValueError("Trying to reset colocation (op is None) but ignore_existing is not True")
        if isinstance(op, Tensor):
            op = op.op
        if op is not None and not isinstance(op, Operation):
            op = getattr(op, "op", op)
        old_colocation, old_devices = self._colocation_stack, self._device_stack
        self._colocation_stack = ([] if ignore_existing else list(old_colocation))
        if op is not None:
            self._colocation_stack.append(op)
        self._device_stack = []
        try:
            yield
        finally:
            self._colocation_stack, self._device_stack = old_colocation, old_devices

    def _current_colocation(self) -> list[bytes] | None:
        if not self._colocation_stack:
            return None
        groups = {g for op in self._colocation_stack for g in op.colocation_groups()}
        return sorted(groups)

    def _apply_colocation_device(self, op: Operation) -> None:
        for target in self._colocation_stack:
            if target.device:
                op._device = target.device
                return

    # --- control dependencies ---------------------------------------------------------------
    @contextlib.contextmanager
    def control_dependencies(self, control_inputs: list | None) -> Iterator[None]:
        """Ops created inside run after ``control_inputs``; None clears outer dependencies."""
        if control_inputs is None:
            entry = None
        else:
            entry = [self._control_op(c) for c in control_inputs]
        self._control_stack.append(entry)
        try:
            yield
        finally:
            self._control_stack.pop()

    def _control_op(self, c: Any) -> Operation:
        element = self.as_graph_element(c)
        return element.op if isinstance(element, Tensor) else element

    def _current_control_inputs(self, input_ops: set[Operation]) -> list[Operation]:
        result: list[Operation] = []
        for entry in reversed(self._control_stack):
            if entry is None:
                break
            result[:0] = [c for c in entry if c not in input_ops and c not in result]
        return result

    # --- collections ------------------------------------------------------------------------
    def add_to_collection(self, name: Any, value: Any) -> None:
        self._check_not_finalized()
        self._collections.setdefault(name, []).append(value)

    def add_to_collections(self, names_: Any, value: Any) -> None:
        names_ = (names_,) if isinstance(names_, str) else set(names_)
        for name in names_:
            self.add_to_collection(name, value)

    def get_collection_ref(self, name: Any) -> list:
        """The collection's own list (mutations are visible to the graph)."""
        return self._collections.setdefault(name, [])

    def get_collection(self, name: Any, scope: str | None = None) -> list:
        """A copy of the collection, optionally filtered by ``re.match(scope, item.name)``."""
        items = self._collections.get(name, [])
        if scope is None:
            return list(items)
        regex = re.compile(scope)
        return [item for item in items if _name_matches(regex, item)]

    def get_all_collection_keys(self) -> list[str]:
        return [key for key in self._collections if isinstance(key, str)]

    def clear_collection(self, name: Any) -> None:
        self._check_not_finalized()
        self._collections.pop(name, None)

    # --- serialization ----------------------------------------------------------------------
    def as_graph_def(self, from_version: int | None = None, add_shapes: bool = False) -> Any:
        """A GraphDef of every op (or those added after ``from_version`` ops), in creation order."""
        graph_def = pb.GraphDef()
        graph_def.versions.CopyFrom(self._versions)
        if self._library.function or self._library.gradient:
            graph_def.library.CopyFrom(self._library)
        ops = self._ops if from_version is None else self._ops[from_version:]
        nodes = graph_def.node
        for op in ops:
            self._fill_node_def(nodes.add(), op, add_shapes)
        return graph_def

    def _node_def_for(self, op: Operation, add_shapes: bool) -> Any:
        node = pb.NodeDef()
        self._fill_node_def(node, op, add_shapes)
        return node

    def _fill_node_def(self, node: Any, op: Operation, add_shapes: bool) -> None:
        node.CopyFrom(op._node_def)
        node.name = op._name
        del node.input[:]
        node.input.extend([t._as_node_def_input() for t in op._inputs])
        node.input.extend([f"^{c._name}" for c in op._control_inputs])
        node.device = op._device
        attr = node.attr
        if op._info is not None:
            for key, default in op._info.defaults.items():
                if key not in attr:
                    attr[key].CopyFrom(default)
        if op._colocation is not None:
            attr["_class"].list.s[:] = op._colocation
        if add_shapes and op.outputs:
            shapes = attr["_output_shapes"].list.shape
            del shapes[:]
            shapes.extend([t.shape.as_proto() for t in op.outputs])

    @property
    def building_function(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<gg.Graph with {len(self._ops)} ops>"


def _kinds(allow_tensor: bool, allow_operation: bool) -> str:
    if allow_tensor and allow_operation:
        return "Tensor or Operation"
    return "Tensor" if allow_tensor else "Operation"


def kind_of(obj: Any) -> str:
    return "Tensor" if isinstance(obj, Tensor) else "Operation"


def _name_matches(regex: re.Pattern, item: Any) -> bool:
    try:
        return regex.match(item.name) is not None
    except AttributeError:
        return False  # TF ignores collection items without a name when filtering by scope


# --- the default graph stack ----------------------------------------------------------------
class _DefaultGraphState(threading.local):
    def __init__(self) -> None:
        self.stack: list[Graph] = []


_state = _DefaultGraphState()
_global_default: list[Graph] = []


def _default_stack() -> list[Graph]:
    return _state.stack


def get_default_graph() -> Graph:
    """The innermost ``Graph.as_default()`` graph, else the process-wide global default."""
    if _state.stack:
        return _state.stack[-1]
    if not _global_default:
        _global_default.append(Graph())
    return _global_default[0]


def reset_default_graph() -> None:
    """Replaces the global default graph with a new empty one (TF's rules: not inside a scope)."""
    if _state.stack:
        raise AssertionError(
            "Do not use tf.reset_default_graph() to clear nested graphs. If you need a cleared "
            "graph, exit the nesting and create a new graph."
        )
    _global_default[:] = [Graph()]


def add_to_collection(name: Any, value: Any) -> None:
    get_default_graph().add_to_collection(name, value)


def add_to_collections(names_: Any, value: Any) -> None:
    get_default_graph().add_to_collections(names_, value)


def get_collection(key: Any, scope: str | None = None) -> list:
    return get_default_graph().get_collection(key, scope)


def get_collection_ref(key: Any) -> list:
    return get_default_graph().get_collection_ref(key)


def name_scope(name: str | None):
    return get_default_graph().name_scope(name)


def device(device_name_or_function: Any):
    return get_default_graph().device(device_name_or_function)


def colocate_with(op: Any, ignore_existing: bool = False):
    return get_default_graph().colocate_with(op, ignore_existing)


def control_dependencies(control_inputs: list | None):
    return get_default_graph().control_dependencies(control_inputs)

