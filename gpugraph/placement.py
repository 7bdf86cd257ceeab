"""Placement: which device each node runs on, why, and every request that can't be honoured.

TF's rule for restarting from a ``.meta`` is that device assignments must not have changed.
:func:`place_graph` honours each node's ``device`` field on the devices this session has, and
instead of failing on the first node it cannot place, it collects every one of them into a
:class:`PlacementReport`, rendered into one :class:`~gpugraph.errors.DevicePlacementError`.

Rules, following TF's placer:

* ``device_map`` rewrites requests first (``{"/job:ps/task:0": "/cpu:0", "/gpu:1": "/gpu:0"}``):
  a request matching a key (every field the key sets is equal) loses those fields and takes the
  value's.
* Only this machine's job is local: ``/job:localhost/replica:0/task:0`` (or unset parts).
* Colocation groups, from ``_class: loc:@x`` and from ref/resource edges (a variable's readers
  and updaters live with it), are placed as one, on the merge of their members' requests.
* Host-only ops (string tensors, checkpoint I/O) run on the CPU, as TF places them.
* A node with no request goes to GPU:0 when GPUs exist (TF's default), else to the CPU.
* ``allow_soft_placement`` moves an unsatisfiable group to an available device and records it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from gpugraph import dtypes, errors
from gpugraph.devices import Device, DeviceSet
from gpugraph.framework.device_spec import DeviceSpec, map_device  # noqa: F401  (re-exported)
from gpugraph.framework.ops import Operation
from gpugraph.ops import registry

_STRING = dtypes.string.as_datatype_enum
_RESOURCE = dtypes.resource.as_datatype_enum
_LOCAL = "/job:localhost/replica:0/task:0"
# Between-graph replication (tf.train.replica_device_setter: variables on /job:ps, compute on
# /job:worker) run as synchronous data parallelism: each rank runs the whole graph on its own
# devices, every variable replicated, gradients averaged (TF's asynchronous parameter-server
# updates are not reproduced).  Session(data_parallel=...) adds this device_map.
REPLICA_JOBS = {f"/job:{job}": _LOCAL for job in ("ps", "worker", "chief", "master")}


def replica_jobs(ops: Iterable[Operation]) -> dict[str, int]:
    """How many nodes request each job other than this machine's (``ps``, ``worker``...)."""
    jobs: dict[str, int] = defaultdict(int)
    for op in ops:
        if "/job:" in op.device:
            job = DeviceSpec.from_string(op.device).job
            if job not in (None, "localhost"):
                jobs[job] += 1
    return dict(sorted(jobs.items()))


@dataclasses.dataclass(frozen=True)
class Assignment:
    """Where one node runs and why."""

    node: str
    op_type: str
    requested: str
    device: str
    reason: str  # "requested", "default", "host-only", "colocated", "soft placement: ..."


@dataclasses.dataclass(frozen=True)
class Violation:
    """A node whose device request cannot be honoured."""

    node: str
    op_type: str
    requested: str
    reason: str


@dataclasses.dataclass
class PlacementReport:
    """The placement of a graph: assignments, violations and the devices they were made on."""

    assignments: dict[str, Assignment]
    violations: list[Violation]
    devices: list[str]
    notes: list[str]
    soft: bool

    def by_device(self) -> dict[str, int]:
        """Node counts per assigned device."""
        counts: dict[str, int] = defaultdict(int)
        for a in self.assignments.values():
            counts[a.device] += 1
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (what ``gpugraph devices --json`` prints)."""
        requested: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for a in self.assignments.values():
            requested[a.requested or "(none)"][a.device] += 1
        return {
            "devices": self.devices,
            "notes": self.notes,
            "allow_soft_placement": self.soft,
            "requested_to_assigned": {k: dict(v) for k, v in sorted(requested.items())},
            "assigned_counts": self.by_device(),
            "soft_placed": [dataclasses.asdict(a) for a in self.assignments.values()
                            if a.reason.startswith("soft")],
            "violations": [dataclasses.asdict(v) for v in self.violations],
        }

    def error(self) -> errors.DevicePlacementError:
        """One error listing every violation, grouped by requested device, with the remedies."""
        groups: dict[str, list[Violation]] = defaultdict(list)
        for v in self.violations:
            groups[v.requested].append(v)
        lines = [f"{len(self.violations)} node(s) request devices this session cannot provide "
                 "(TF: restarting from a meta graph only works if the device assignments have "
                 "not changed):"]
        for requested, items in sorted(groups.items()):
            names = ", ".join(repr(v.node) for v in items[:8])
            more = f" and {len(items) - 8} more" if len(items) > 8 else ""
            lines.append(f"  {requested or '(no device)'}: {len(items)} node(s): {names}{more}"
                         f" -- {items[0].reason}")
        lines.append("Available devices: " + ", ".join(self.devices))
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.append(
            "Fixes: import with clear_devices=True to drop the recorded devices; map them with "
            "device_map={'<requested>': '<available>'} (e.g. {'/gpu:1': '/gpu:0'}); or set "
            "allow_soft_placement=True to let gpugraph pick available devices; for testing "
            "without GPUs, GPUGRAPH_VIRTUAL_GPUS=N provides N numpy-backed GPUs.")
        return errors.DevicePlacementError(None, None, "\n".join(lines),
                                           {"report": self.to_json()})


# --- device requests ---------------------------------------------------------------------------
def _is_local(spec: DeviceSpec) -> bool:
    return spec.job in (None, "localhost") and spec.replica in (None, 0) and spec.task in (None, 0)


def is_host_only(op: Operation) -> bool:
    """Ops that must run on the CPU: string tensors and ops whose kernel is declared host-only."""
    spec = registry.lookup(op.type)
    if spec is not None and spec.host_only:
        return True
    outs = [t.dtype.base_dtype.as_datatype_enum for t in op.outputs]
    ins = [t.dtype.base_dtype.as_datatype_enum for t in op._inputs]
    return _STRING in outs or _STRING in ins


# --- colocation groups ---------------------------------------------------------------------------
class _Groups:
    """Union-find over op names."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        root = self.parent.setdefault(name, name)
        while root != self.parent[root]:
            root = self.parent[root]
        while name != root:
            self.parent[name], name = root, self.parent[name]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _colocation_groups(ops: list[Operation]) -> dict[str, list[Operation]]:
    groups = _Groups()
    names = {op.name for op in ops}
    for op in ops:
        groups.find(op.name)
        for target in op._colocation_targets():
            if target in names:
                groups.union(op.name, target)
        # As TF's placer: an op taking a ref input *as a ref* (Assign, Apply*) or a resource
        # handle lives with the variable; ops reading a ref's value (SaveV2) need not.
        wants_ref = op._ref_input_flags()
        for pos, t in enumerate(op._inputs):
            by_ref = t.dtype.is_ref_dtype and pos < len(wants_ref) and wants_ref[pos]
            if by_ref or t.dtype.base_dtype.as_datatype_enum == _RESOURCE:
                groups.union(op.name, t.op.name)
    members: dict[str, list[Operation]] = defaultdict(list)
    for op in ops:
        members[groups.find(op.name)].append(op)
    return members


# --- placing ------------------------------------------------------------------------------
def place_graph(ops: Iterable[Operation], devices: DeviceSet, *, allow_soft_placement: bool = False,
                device_map: Mapping[str, str] | None = None) -> PlacementReport:
    """Places every op; violations are collected, not raised (see :meth:`PlacementReport.error`)."""
    ops = list(ops)
    assignments: dict[str, Assignment] = {}
    violations: list[Violation] = []
    for members in _colocation_groups(ops).values():
        requests = {op.name: map_device(op.device, device_map) for op in members}
        _place_group(members, requests, devices, allow_soft_placement, assignments, violations)
    return PlacementReport(assignments, violations, devices.names(), list(devices.notes),
                           allow_soft_placement)


def _place_group(members: list[Operation], requests: dict[str, str], devices: DeviceSet,
                 soft: bool, assignments: dict[str, Assignment],
                 violations: list[Violation]) -> None:
    merged, conflict = _merge_requests(members, requests)
    host_only = any(is_host_only(op) for op in members)
    device, reason = _resolve(merged, devices, host_only, conflict)
    if device is None:
        if not soft:
            group = merged.to_string()
            for op in members:
                own = requests[op.name]
                why = reason if own else f"colocated with nodes requesting {group}: {reason}"
                violations.append(Violation(op.name, op.type, own or group, why))
            return
        device = devices.cpu if host_only or not devices.gpus else devices.gpus[0]
        reason = f"soft placement: {reason}"
    for op in members:
        why = reason if requests[op.name] or reason != "requested" else "default"
        assignments[op.name] = Assignment(op.name, op.type, requests[op.name], device.name, why)


def _merge_requests(members: list[Operation], requests: dict[str, str]) -> tuple[DeviceSpec, str]:
    merged = DeviceSpec()
    for op in members:
        spec = DeviceSpec.from_string(requests[op.name])
        for field, (mine, theirs) in zip(("job", "replica", "task", "type", "index"),
                                         zip(merged._fields(), spec._fields())):
            if mine is not None and theirs is not None and mine != theirs:
                return merged, (f"colocated nodes request conflicting devices ({field} "
                                f"{mine!r} vs {theirs!r}, e.g. node {op.name!r})")
        merged = merged.make_merged_spec(spec)
    return merged, ""


def _resolve(spec: DeviceSpec, devices: DeviceSet, host_only: bool,
             conflict: str) -> tuple[Device | None, str]:
    """The device for a merged request, or (None, why not)."""
    if conflict:
        return None, conflict
    if not _is_local(spec):
        return None, (f"job/replica/task {spec.replace(device_type=None, device_index=None)} is "
                      "not this machine (/job:localhost/replica:0/task:0)")
    if spec.device_type is None:
        if host_only or not devices.gpus:
            return devices.cpu, "requested"
        return devices.gpus[0], "requested"
    if spec.device_type == "GPU" and host_only:
        return None, "op has no GPU kernel (string/checkpoint op: it runs on the CPU only)"
    if spec.device_type not in ("CPU", "GPU"):
        return None, f"device type {spec.device_type} is not supported"
    found = [d for d in devices if d.device_type == spec.device_type]
    if spec.device_index is None:
        return (found[0], "requested") if found else (None, f"no {spec.device_type} available")
    match = [d for d in found if d.index == spec.device_index]
    if match:
        return match[0], "requested"
    return None, (f"{spec.device_type}:{spec.device_index} does not exist (this session has "
                  f"{len(found)} {spec.device_type}{'s' if len(found) != 1 else ''})")


def placement_map(report: PlacementReport, ops: Iterable[Operation],
                  devices: DeviceSet) -> dict[Operation, Device]:
    """Operation -> Device for a report without violations."""
    by_name = {d.name: d for d in devices}
    return {op: by_name[report.assignments[op.name].device] for op in ops}
