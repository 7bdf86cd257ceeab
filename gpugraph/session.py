"""``gpugraph.Session``: runs an imported graph (``tf.compat.v1.Session`` semantics).

A session owns the state that outlives one ``run``: variable storage and random streams
(:class:`~gpugraph.state.SessionState`), and the cache of compiled plans keyed by
(fetches, feeds, targets).  The cache is dropped whenever the graph grows.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from gpugraph import config, dtypes, errors
from gpugraph import ops as _ops  # noqa: F401  (registers every kernel)
from gpugraph import state as resources
from gpugraph.devices import Device, discover
from gpugraph.distributed.mpi import digest as mpi_digest
from gpugraph.framework.graph import Graph, get_default_graph
from gpugraph.framework.ops import Operation, Tensor
from gpugraph.placement import REPLICA_JOBS, PlacementReport, place_graph, placement_map
from gpugraph.plan import Plan, as_host, build_plan

_default_session: list[Session] = []
_log = logging.getLogger("gpugraph.session")


@dataclasses.dataclass
class SessionConfig:
    """Session options: TF's ``ConfigProto`` fields gpugraph honours, plus its own.

    Attributes:
        allow_soft_placement: place nodes whose requested device is unavailable elsewhere
            (recorded in the placement report) instead of raising DevicePlacementError.
        log_device_placement: log every node's device (logger ``gpugraph.session``).
        device_map: rewrite device requests, e.g. ``{"/job:ps/task:0": "/cpu:0"}``.
        virtual_gpus: stand in this many numpy-backed GPUs (default: ``GPUGRAPH_VIRTUAL_GPUS``,
            else real CUDA GPUs through CuPy when present).
        allow_device_change: restore checkpoints whose variables were saved from other devices.
        max_loop_iterations: a while loop running longer raises ResourceExhaustedError naming
            its frame (instead of hanging).
        data_parallel: ``"mpi"`` averages every gradient over the MPI ranks of the launcher
            that started this process (:mod:`gpugraph.distributed`); default
            ``GPUGRAPH_DATA_PARALLEL``, else off.  Rank k uses GPU ``local_rank`` as the
            graph's GPU:0 (when the machine has a GPU per rank), the jobs of between-graph
            replication (``/job:ps``, ``/job:worker``) fold onto each rank's devices, only rank
            0 writes checkpoints, and the ranks must hold the same graph and variables when
            they first train.
        visible_device_list: the GPUs this session uses, numbered from 0 in this order
            (TF's ``GPUOptions.visible_device_list``, e.g. ``"1"``).
    """

    allow_soft_placement: bool = False
    log_device_placement: bool = False
    device_map: dict[str, str] | None = None
    virtual_gpus: int | None = None
    allow_device_change: bool = False
    max_loop_iterations: int = 10_000_000
    data_parallel: str | None = None
    visible_device_list: str | None = None

    @classmethod
    def from_any(cls, config: Any) -> SessionConfig:
        """A SessionConfig from None, a dict, a SessionConfig or a ConfigProto-like object."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            return cls(**config)
        fields = [f.name for f in dataclasses.fields(cls)]
        return cls(**{f: getattr(config, f) for f in fields if hasattr(config, f)})


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
        self._config = SessionConfig.from_any(config)
        self._state = resources.SessionState()
        world = self._world()
        self._devices = _visible(discover(self._config.virtual_gpus),
                                 self._config.visible_device_list, world)
        self._reducer = None
        if world is not None:
            from gpugraph.distributed.reducer import GradientReducer  # noqa: PLC0415

            self._reducer = GradientReducer(world)
            for device in self._devices:
                device.share_cores(world.local_size)
        self._ranks_checked = False
        # CUDA devices work only in the process that set them up (not in a forked child).
        self._pid, self._forks = os.getpid(), _FORKS[0]
        self._placed: tuple[int, Any] | None = None  # (graph version, {op: device})
        self._plans: dict[tuple, Plan] = {}
        self._fetch_specs: dict[Any, _FetchSpec] = {}
        self._feed_specs: dict[Any, _FeedSpec] = {}
        self._plans_version = self._graph.version
        self._closed = False
        self._graph_ctx: Any = None
        for device in self._devices:  # e.g. the CPU's allocator tuning
            device.open_session()

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

    def placement_report(self) -> PlacementReport:
        """Where every node of the graph runs (or why it can't), as :mod:`gpugraph.placement`."""
        device_map = self._config.device_map
        if self._reducer is not None:  # (each rank runs a between-graph replica's jobs)
            device_map = {**(device_map or {}), **{k: v for k, v in REPLICA_JOBS.items()
                                                    if k not in (device_map or {})}}
        return place_graph(self._graph.get_operations(), self._devices,
                           allow_soft_placement=self._config.allow_soft_placement,
                           device_map=device_map)

    def _placement(self) -> dict[Operation, Device]:
        """Every op's device, computed for the whole graph before anything runs."""
        version = self._graph.version
        if self._placed is None or self._placed[0] != version:
            report = self.placement_report()
            if report.violations:
                raise report.error()
            if self._config.log_device_placement:
                for a in report.assignments.values():
                    _log.info("%s: (%s): %s", a.node, a.op_type, a.device)
            self._placed = (version, placement_map(report, self._graph.get_operations(),
                                                   self._devices))
        return self._placed[1]

    def close(self) -> None:
        """Frees the session's variables; a closed session can't run."""
        self._closed = True
        for resource in list(self._state.resources.values()):
            cancel = getattr(resource, "cancel", None)
            if cancel is not None:  # (queues: wake the threads blocked on them)
                cancel()
        self._drop_plans()
        self._state = resources.SessionState()

    def _drop_plans(self) -> None:
        for plan in self._plans.values():
            plan.close()  # releases captured graphs and the buffers they keep
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
        if _FORKS[0] != self._forks:
            check_same_process(self._devices, self._pid)
        if self._graph.version != self._plans_version:
            self._drop_plans()
            self._fetch_specs.clear()
            self._feed_specs.clear()
            self._plans_version = self._graph.version
        spec = self._fetch_spec(fetches)
        feeds, feed_values = self._convert_feeds(feed_dict or {})
        key = (spec.key, tuple(feeds))
        plan = self._plans.get(key)
        if plan is None:
            plan = build_plan(spec.tensors, spec.targets, feeds, self._state,
                              self._placement(), self._devices.cpu,
                              self._config.max_loop_iterations, reducer=self._reducer)
            self._plans[key] = plan
        if plan.data_parallel and not self._ranks_checked:
            self._check_ranks_agree()
        return spec.rebuild(plan.run(feed_values))

    # --- data parallelism (gpugraph.distributed) --------------------------------------------------
    def _world(self) -> Any:
        """The MPI ranks when this session averages gradients over them, else None."""
        mode = self._config.data_parallel or config.settings.data_parallel
        if not mode:
            return None
        if mode != "mpi":
            raise errors.InvalidArgumentError(None, None, f"data_parallel={mode!r}: gpugraph "
                                              "knows 'mpi' (or None for one process)")
        from gpugraph.distributed import mpi  # noqa: PLC0415  (needs mpi4py)

        return mpi.world()

    @property
    def writes_checkpoints(self) -> bool:
        """Whether Savers write here: not on data-parallel ranks other than 0."""
        return self._reducer is None or self._reducer.world.rank == 0

    def _check_ranks_agree(self) -> None:
        """Before the first averaged step: every rank holds the same graph and the same values
        of its initialized variables, else DataParallelError naming what differs."""
        world = self._reducer.world
        graph = mpi_digest(self._graph.as_graph_def().SerializeToString(deterministic=True))
        values = {slot.name: mpi_digest(np.ascontiguousarray(_host(slot)).tobytes())
                  for slot in self._state.variables.values() if slot.initialized}
        seen = world.allgather_object((graph, values), "the start-up check of the ranks")
        self._ranks_checked = True
        problems = [f"rank {k} runs a different graph than rank 0 (fingerprint {g} vs "
                    f"{seen[0][0]})" for k, (g, _) in enumerate(seen) if g != seen[0][0]]
        for k, (_, theirs) in enumerate(seen):
            differ = sorted(n for n in set(theirs) | set(values)
                            if theirs.get(n) != seen[0][1].get(n))
            if differ:
                problems.append(f"rank {k} holds other values than rank 0 for {len(differ)} "
                                f"variable(s): {', '.join(differ[:5])}"
                                + (" ..." if len(differ) > 5 else ""))
        if problems:
            raise errors.DataParallelError(
                None, None, "Data parallelism: the ranks do not start from the same state: "
                + "; ".join(problems) + ". Every rank must import the same graph and restore "
                "the same checkpoint (after a random initialization, call "
                "gg.distributed.broadcast_variables(sess)).", {"problems": problems})

    def _broadcast_variables(self, world: Any, root: int) -> int:
        slots = sorted((s for s in self._state.variables.values() if s.initialized),
                       key=lambda s: s.name)
        names = world.allgather_object([s.name for s in slots], "the variable broadcast")
        if any(n != names[root] for n in names):
            raise errors.DataParallelError(
                None, None, "broadcast_variables: the ranks hold different sets of initialized "
                "variables", {"variables": names})
        with resources.rebinding():
            for slot in slots:
                value = world.broadcast(_host(slot), root, f"the broadcast of {slot.name}")
                slot.assign(slot.device.to_device(value) if slot.device is not None else value)
        self._ranks_checked = True
        return len(slots)

    def _fetch_spec(self, fetches: Any) -> _FetchSpec:
        key = _hashable(fetches)
        spec = self._fetch_specs.get(key) if key is not None else None
        if spec is None:
            spec = _FetchSpec(self._graph, fetches)
            if key is not None:
                self._fetch_specs[key] = spec
        return spec

    def _convert_feeds(self, feed_dict: Mapping) -> tuple[list[Tensor], list[Any]]:
        feeds: list[Tensor] = []
        values: list[Any] = []
        cache = self._feed_specs
        for key, value in feed_dict.items():
            try:
                spec = cache[key]
            except (KeyError, TypeError):
                spec = _FeedSpec(_feed_tensor(self._graph, key))
                with contextlib.suppress(TypeError):
                    cache[key] = spec
            feeds.append(spec.tensor)
            values.append(spec.convert(value))
        return feeds, values

    # --- variables and the restart rule ---------------------------------------------------
    def variable_devices(self) -> dict[str, str]:
        """Variable op name -> the device this session places it on (global variables)."""
        placement = self._placement()
        out = {}
        for var in self._graph.get_collection("variables"):
            device = placement.get(var.op)
            if device is not None:
                out[var.op.name] = device.name
        return out

    def cuda_graph_report(self) -> dict[str, Any]:
        """How this session's GPU work ran: ``replays`` (launches of captured graphs, the first
        launch after each capture included), ``eager_runs`` (capturable segments run op by op:
        warm-ups and fallbacks), ``captures``, and ``refused``: one {"node", "op", "reason"}
        per operation a capture refused (that node then runs outside the graphs)."""
        return self._state.graph_stats.report()

    def device_change_allowed(self) -> bool:
        """Whether this session may restore a checkpoint saved with variables on other devices
        (``allow_device_change`` or a ``device_map`` in its config)."""
        return bool(self._config.allow_device_change or self._config.device_map)

    def restoring(self, save_path: str) -> Any:
        """A context manager around a restore into this session's variables: if the restore
        fails, every variable keeps its previous value (:func:`restore_all_or_nothing`)."""
        return restore_all_or_nothing(self, save_path)


@contextlib.contextmanager
def restore_all_or_nothing(sess: Session, save_path: str) -> Iterator[None]:
    """Runs a restore so that, if it fails, every variable keeps its previous value.

    Restoring replaces variable buffers (it never writes into them), so keeping the old
    buffers is enough to undo it.  After the restore, every variable whose static shape
    disagrees with its new value is refused too, resource variables included (TF lets
    ``AssignVariableOp(validate_shape=False)`` silently reshape them).
    """
    slots = sess._state.variables
    before = {key: slot.value for key, slot in slots.items()}

    def undo() -> None:
        for key, slot in slots.items():
            slot.value = before.get(key)

    try:
        with resources.rebinding():
            yield
        _check_restored_shapes(slots, before)
    except errors.NotFoundError as e:
        undo()
        raise type(e)(e.node_def, e.op, _RESTORE_MISSING + e.message, e.details) from e
    except errors.OpError as e:
        undo()
        if isinstance(e, errors.InvalidArgumentError):
            raise type(e)(e.node_def, e.op, _RESTORE_MISMATCH + e.message, e.details) from e
        raise
    except BaseException:
        undo()
        raise


_RESTORE_MISSING = (
    "Restoring from checkpoint failed. This is most likely due to a Variable name or other graph "
    "key that is missing from the checkpoint. Please ensure that you have not altered the graph "
    "expected based on the checkpoint. Original error:\n\n")
_RESTORE_MISMATCH = (
    "Restoring from checkpoint failed. This is most likely due to a mismatch between the current "
    "graph and the graph from the checkpoint. Please ensure that you have not altered the graph "
    "expected based on the checkpoint. Original error:\n\n")


def _check_restored_shapes(slots: dict, before: dict) -> None:
    for key, slot in slots.items():
        value = slot.value
        if value is None or value is before.get(key) or slot.shape is None:
            continue
        static = slot.shape
        if len(static) != value.ndim or any(s is not None and s != d
                                            for s, d in zip(static, value.shape)):
            want = "[" + ",".join("?" if d is None else str(d) for d in static) + "]"
            got = "[" + ",".join(str(d) for d in value.shape) + "]"
            raise errors.InvalidArgumentError(
                None, None, f"Variable {slot.name!r} has shape {want} but the checkpoint holds "
                f"shape {got} (gpugraph refuses to reshape a variable on restore)",
                {"variable": slot.name, "shape": list(static),
                 "checkpoint_shape": list(value.shape)})


def _visible(devices: Any, listed: str | None, world: Any) -> Any:
    """The GPUs a session shows, numbered from 0: ``visible_device_list`` (TF's "1,0"), else
    on a data-parallel rank with a GPU of its own, GPU ``local_rank`` alone (its GPU:0)."""
    if listed:
        try:
            return devices.visible([int(k) for k in str(listed).split(",") if k.strip()])
        except ValueError:
            raise errors.InvalidArgumentError(
                None, None, f"visible_device_list={listed!r}: expected GPU numbers such as "
                "'0' or '1,0'") from None
    if world is not None and world.local_size > 1 and len(devices.gpus) >= world.local_size:
        return devices.visible([world.local_rank])
    return devices


def _host(slot: Any) -> np.ndarray:
    value = slot.value if slot.device is None else slot.device.to_host(slot.value)
    return np.asarray(value)


def get_default_session() -> Session | None:
    """The innermost session entered with ``with`` or ``as_default()``, or None."""
    return _default_session[-1] if _default_session else None


# --- fetches --------------------------------------------------------------------------------
class _FetchSpec:
    """A fetch structure resolved once: its unique tensors and targets, and how to rebuild it."""

    def __init__(self, graph: Graph, fetches: Any):
        flat, self._rebuild = _flatten_fetches(fetches)
        self._elements = [graph.as_graph_element(f) for f in flat]
        self.tensors = _unique([e for e in self._elements if isinstance(e, Tensor)])
        self.targets = _unique([e for e in self._elements if isinstance(e, Operation)])
        self.key = (tuple(self.tensors), tuple(self.targets))
        index = {t: i for i, t in enumerate(self.tensors)}
        self._picks = [index.get(e, -1) if isinstance(e, Tensor) else -1 for e in self._elements]

    def rebuild(self, values: list[Any]) -> Any:
        """The fetched values (one per unique tensor) in the structure that was asked for."""
        return self._rebuild([None if i < 0 else as_host(values[i]) for i in self._picks])


def _hashable(fetches: Any) -> Any:
    """A cache key for simple fetch structures (elements, lists/tuples of them), else None."""
    if isinstance(fetches, (Tensor, Operation, str)):
        return fetches
    if type(fetches) in (list, tuple) and all(isinstance(f, (Tensor, Operation, str))
                                              for f in fetches):
        return (type(fetches), tuple(fetches))
    return None


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
def _feed_tensor(graph: Graph, key: Any) -> Tensor:
    try:
        return graph.as_graph_element(key, allow_tensor=True, allow_operation=False)
    except (KeyError, ValueError, TypeError) as e:
        raise TypeError(f"Cannot interpret feed_dict key as Tensor: {e}") from e


class _FeedSpec:
    """How values fed to one tensor are checked and converted."""

    def __init__(self, tensor: Tensor):
        if tensor.dtype.is_ref_dtype:
            raise FeedError(None, tensor.op, f"Cannot feed {tensor.name!r}: it is a reference to "
                            "a variable; feed the variable's value tensor (e.g. '/read') instead.")
        self.tensor = tensor
        dtype = tensor.dtype
        self._dtype = None if dtype == dtypes.string else np.dtype(dtype.as_numpy_dtype)
        self._dims = tensor.shape.dims

    def convert(self, value: Any) -> Any:
        """``value`` as an array of the tensor's dtype, checked against its static shape."""
        if type(value) is np.ndarray and value.dtype == self._dtype and self._fits(value.shape):
            return value  # the common case, checked without any conversion
        if isinstance(value, (Tensor, Operation)):
            raise TypeError(f"The value of a feed cannot be a gg.Tensor object "
                            f"({self.tensor.name!r}). Acceptable feed values include Python "
                            "scalars, strings, lists, numpy ndarrays.")
        array = _as_feed_array(self.tensor, value)
        if not self._fits(array.shape):
            shape = self.tensor.shape
            raise FeedError(
                None, self.tensor.op,
                f"Cannot feed value of shape {tuple(array.shape)} for Tensor "
                f"{self.tensor.name!r}, which has shape {_shape_text(shape)}",
                {"tensor": self.tensor.name, "fed_shape": list(array.shape),
                 "shape": shape.as_list() if shape.rank is not None else None})
        return array

    def _fits(self, shape: tuple) -> bool:
        dims = self._dims
        if dims is None:
            return True
        return len(shape) == len(dims) and all(d is None or d == s for d, s in zip(dims, shape))


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
    if source.kind not in order or target.kind not in order or target.kind == "u":
        return False
    return order.index(source.kind) <= order.index(target.kind)


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


_FORKS = [0]  # forks this process descends from since gpugraph was imported
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


def check_same_process(devices: Any, pid: int) -> None:
    """Raises UnavailableError when CUDA ``devices`` set up in process ``pid`` are used in a
    child it forked: CUDA does not survive fork(), and CuPy's own error there ("initialization
    error") says nothing of why."""
    here = os.getpid()
    if here == pid:
        return
    cuda = [d.name for d in devices if d.kind == "cuda"]
    if cuda:
        raise errors.UnavailableError(
            None, None, f"This Session's CUDA devices ({', '.join(cuda)}) were set up in "
            f"process {pid}, and this is a child it forked (process {here}): CUDA does not "
            "survive fork(). Start worker processes with multiprocessing's 'spawn' method and "
            "create their Sessions there.", {"devices": cuda, "parent": pid, "child": here})
