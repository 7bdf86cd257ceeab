"""``gpugraph.Session``: runs an imported graph (``tf.compat.v1.Session`` semantics).

A session owns the state that outlives one ``run``: variable storage and random streams
(:class:`~gpugraph.ops.resources.SessionState`), and the cache of compiled plans keyed by
(fetches, feeds, targets).  The cache is dropped whenever the graph grows.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from gpugraph import dtypes, errors
from gpugraph.devices import local_devices
from gpugraph.framework.graph import Graph, get_default_graph
from gpugraph.framework.ops import Operation, Tensor
from gpugraph import ops as _ops  # noqa: F401  (registers every kernel)
from gpugraph.ops import resources
from gpugraph.plan import Plan, as_host, build_plan

_default_session: list[Session] = []


class FeedError(errors.InvalidArgumentError, ValueError):
    """A feed does not fit its tensor (TF raises ``ValueError`` for shapes; both work here)."""


class Session:
    """Runs operations and evaluates tensors of a graph (``tf.compat.v1.Session``).

    Args:
        target: accepted for TF compatibility; only ``""`` (in-process) is supported.
        graph: the graph to run; the default graph when None.
        config: accepted for TF compatibility (a ConfigProto or None) and ignored.
    """

    def __init__(self, target: str = "", graph: Graph | None = None, config: Any = None):
        if target not in ("", b""):
            raise errors.UnimplementedError(None, None, f"Session target {target!r}: gpugraph runs "
                                            "in-process only (target '').")
        self._graph = graph if graph is not None else get_default_graph()
        self._config = config
        self._state = resources.SessionState()
        self._devices = local_devices()
        self._plans: dict[tuple, Plan] = {}
        self._plans_version = self._graph.version
        self._closed = False
        self._graph_ctx: Any = None

    # --- lifecycle --------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def sess_str(self) -> str:
        return ""

    def list_devices(self) -> list[Any]:
        """The devices this session runs on."""
        return list(self._devices)

    def close(self) -> None:
        """Frees the session's variables; a closed session can't run."""
        self._closed = True
        self._state = resources.SessionState()
        self._plans.clear()

    def __enter__(self) -> Session:
        self._graph_ctx = self._graph.as_default()
        self._graph_ctx.__enter__()
        _default_session.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _default_session.remove(self)
        self._graph_ctx.__exit__(*exc)
        self.close()

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Session]:
        """Makes this the default session (and its graph the default graph), not closing it."""
        _default_session.append(self)
        try:
            with self._graph.as_default():
                yield self
        finally:
            _default_session.remove(self)

    # --- run --------------------------------------------------------------------------------
    def run(self, fetches: Any, feed_dict: Mapping | None = None, options: Any = None,
            run_metadata: Any = None) -> Any:
        """Runs the ops and evaluates the tensors in ``fetches``.

        Args:
            fetches: a Tensor, Operation, Variable or name, or a list/tuple/namedtuple/dict
                nesting of them.  Operations fetch ``None``.
            feed_dict: maps Tensors (or their names) to values that replace them in this run.
            options, run_metadata: accepted for TF compatibility and ignored.

        Returns:
            The fetched values in the structure of ``fetches`` (numpy arrays of TF's dtypes).

        Raises:
            InvalidArgumentError: an unfed placeholder, a feed of the wrong shape or dtype.
            FailedPreconditionError: an uninitialized variable was read.
            UnimplementedError: ops without kernels (all listed), while loops.
        """
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        flat, rebuild = _flatten_fetches(fetches)
        elements = [self._graph.as_graph_element(f) for f in flat]
        feeds, feed_values = self._convert_feeds(feed_dict or {})
        tensors = _unique([e for e in elements if isinstance(e, Tensor)])
        targets = _unique([e for e in elements if isinstance(e, Operation)])
        plan = self._plan(tensors, targets, feeds)
        values = dict(zip(tensors, (as_host(v) for v in plan.run(feed_values))))
        return rebuild([values.get(e) if isinstance(e, Tensor) else None for e in elements])

    def _plan(self, tensors: list[Tensor], targets: list[Operation], feeds: list[Tensor]) -> Plan:
        if self._graph.version != self._plans_version:
            self._plans.clear()
            self._plans_version = self._graph.version
        key = (tuple(tensors), tuple(targets), tuple(feeds))
        plan = self._plans.get(key)
        if plan is None:
            plan = build_plan(tensors, targets, feeds, self._state, self._devices)
            self._plans[key] = plan
        return plan

    def _convert_feeds(self, feed_dict: Mapping) -> tuple[list[Tensor], list[Any]]:
        feeds: list[Tensor] = []
        values: list[Any] = []
        for key, value in feed_dict.items():
            for tensor, sub_value in _expand_feed(self._graph, key, value):
                feeds.append(tensor)
                values.append(_feed_value(tensor, sub_value))
        order = sorted(range(len(feeds)), key=lambda i: feeds[i].name)
        return [feeds[i] for i in order], [values[i] for i in order]

    # --- variables --------------------------------------------------------------------------
    @property
    def _variable_slots(self) -> dict[tuple, resources.VarSlot]:
        return self._state.variables


def get_default_session() -> Session | None:
    """The innermost session entered with ``with`` or ``as_default()``, or None."""
    return _default_session[-1] if _default_session else None


# --- fetches --------------------------------------------------------------------------------
def _flatten_fetches(fetches: Any) -> tuple[list[Any], Any]:
    """Flattens a nesting of fetches; returns (leaves, rebuild(list of values) -> nesting)."""
    if fetches is None:
        raise TypeError("Fetch argument None has invalid type <class 'NoneType'>")
    if isinstance(fetches, (list, tuple)) and not isinstance(fetches, Tensor):
        parts = [_flatten_fetches(f) for f in fetches]
        sizes = [len(p[0]) for p in parts]

        def rebuild(values: list[Any]) -> Any:
            out, start = [], 0
            for (_, sub), size in zip(parts, sizes):
                out.append(sub(values[start:start + size]))
                start += size
            if _is_namedtuple(fetches):
                return type(fetches)(*out)
            return tuple(out) if isinstance(fetches, tuple) else out

        return [leaf for p in parts for leaf in p[0]], rebuild
    if isinstance(fetches, Mapping):
        keys = list(fetches.keys())
        inner, sub_rebuild = _flatten_fetches([fetches[k] for k in keys])

        def rebuild_map(values: list[Any]) -> Any:
            items = zip(keys, sub_rebuild(values))
            if isinstance(fetches, collections.defaultdict):
                result = collections.defaultdict(fetches.default_factory)
                result.update(items)
                return result
            return type(fetches)(items) if type(fetches) is not dict else dict(items)

        return inner, rebuild_map
    return [fetches], lambda values: values[0]


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _unique(items: list[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


# --- feeds ----------------------------------------------------------------------------------
def _expand_feed(graph: Graph, key: Any, value: Any) -> list[tuple[Tensor, Any]]:
    try:
        element = graph.as_graph_element(key, allow_tensor=True, allow_operation=False)
    except (KeyError, ValueError, TypeError) as e:
        raise TypeError(f"Cannot interpret feed_dict key as Tensor: {e}") from e
    return [(element, value)]


def _feed_value(tensor: Tensor, value: Any) -> Any:
    """``value`` as an array of ``tensor``'s dtype, checked against its static shape."""
    dtype = tensor.dtype
    if dtype.is_ref_dtype:
        raise FeedError(None, tensor.op, f"Cannot feed {tensor.name!r}: it is a reference to a "
                        "variable; feed the variable's value tensor (e.g. its '/read') instead.")
    if isinstance(value, (Tensor, Operation)):
        raise TypeError(f"The value of a feed cannot be a gg.Tensor object ({tensor.name!r}). "
                        "Acceptable feed values include Python scalars, strings, lists, numpy "
                        "ndarrays.")
    array = _as_feed_array(tensor, value)
    shape = tensor.shape
    if not shape.is_compatible_with(array.shape):
        raise FeedError(
            None, tensor.op,
            f"Cannot feed value of shape {tuple(array.shape)} for Tensor {tensor.name!r}, which "
            f"has shape {_shape_text(shape)}",
            {"tensor": tensor.name, "fed_shape": list(array.shape), "shape": shape.as_list()
             if shape.rank is not None else None})
    return array


def _as_feed_array(tensor: Tensor, value: Any) -> np.ndarray:
    dtype = tensor.dtype
    if dtype == dtypes.string:
        return _string_array(tensor, value)
    target = np.dtype(dtype.as_numpy_dtype)
    source = np.asarray(value)
    if source.dtype.kind in "OUS" or not _castable(source.dtype, target):
        raise FeedError(
            None, tensor.op,
            f"Cannot feed a value of dtype {source.dtype} to Tensor {tensor.name!r} of dtype "
            f"{dtype.name}: the conversion would lose information. Cast the value first.",
            {"tensor": tensor.name, "fed_dtype": str(source.dtype), "dtype": dtype.name})
    if source.dtype == target:
        return source
    return source.astype(target)


def _castable(source: np.dtype, target: np.dtype) -> bool:
    # TF converts feeds with np.asarray(value, dtype): float64 -> float32 and int -> float are
    # fine; float -> int (truncation) and numbers -> bool are refused here.
    if source == target or source.kind == "b":
        return True
    if target.kind == "b":
        return False
    if np.can_cast(source, target, casting="same_kind"):
        return True
    order = "biufc"
    return source.kind in order and target.kind in order and order.index(source.kind) <= order.index(
        target.kind) and target.kind != "u"


def _string_array(tensor: Tensor, value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=object)
    flat = array.reshape(-1)
    for i, item in enumerate(flat):
        if isinstance(item, str):
            flat[i] = item.encode("utf-8")
        elif not isinstance(item, bytes):
            raise FeedError(None, tensor.op, f"Cannot feed a {type(item).__name__} to string "
                            f"Tensor {tensor.name!r}.")
    return array


def _shape_text(shape: Any) -> str:
    if shape.rank is None:
        return "<unknown>"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape.dims) + (
        ",)" if shape.rank == 1 else ")")
