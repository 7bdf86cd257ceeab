"""Device specifications: parsing, canonical strings and merging, as TF 1.x graphs use them.

Two grammars exist in TensorFlow and both matter here:

* The **Python** grammar (``tf.DeviceSpec.from_string``, python/framework/device_spec.py) is what
  ``tf.device(...)`` accepts and what canonicalises ``NodeDef.device``. It is lenient: pieces in
  any order, lowercase legacy types, ``job:`` kept verbatim. :class:`DeviceSpec` follows it.
* The **C++** grammar (``DeviceNameUtils::ParseFullName``, xla/tsl/util/device_name_utils.cc) is
  what the placer applies to those strings. It is strict: job names must be identifiers, numbers
  must be digits, ``*`` means unset. :func:`parse_full_name` follows it.

Everything here is pure string work; nothing touches hardware.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping

from gpugraph.errors import DeviceSpecError

__all__ = ["DeviceSpec", "canonical_name", "merge_device", "parse_full_name"]

# TF also accepts the types of registered pluggable devices here; gpugraph has none.
_BARE_DEVICE_TYPES = frozenset({"CPU", "GPU", "TPU", "CUSTOM", "EPU"})
_CACHE_SIZE = 8192


def _int_or_none(value: int | str | None) -> int | None:
    return None if value is None else int(value)


def _normalise_type(device_type: str | None) -> str | None:
    # Matches TF: only the exact legacy spellings are uppercased ("Cpu", "tpu" stay as they are).
    if device_type in ("cpu", "gpu"):
        return device_type.upper()
    return None if device_type is None else str(device_type)


def _components_to_string(job: str | None, replica: int | None, task: int | None,
                          device_type: str | None, device_index: int | None) -> str:
    parts = []
    if job is not None:
        parts.append(f"/job:{job}")
    if replica is not None:
        parts.append(f"/replica:{replica}")
    if task is not None:
        parts.append(f"/task:{task}")
    if device_type is not None:
        parts.append(f"/device:{device_type}:{'*' if device_index is None else device_index}")
    return "".join(parts)


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceSpec:
    """An immutable, possibly partial device specification (TF's ``DeviceSpecV2``).

    ``None`` in a field means unset ("any"). The constructor normalises like TF's: ``replica``,
    ``task`` and ``device_index`` go through ``int()``, ``job`` through ``str()``, and the exact
    legacy types ``"cpu"``/``"gpu"`` are uppercased. Equality compares the five fields.

    Example:
        >>> DeviceSpec.from_string("/job:worker/gpu:3").to_string()
        '/job:worker/device:GPU:3'
    """

    job: str | None = None
    replica: int | None = None
    task: int | None = None
    device_type: str | None = None
    device_index: int | None = None
    # The canonical string is computed once: imports ask for it for every node.
    _string: str = dataclasses.field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            replica, task, index = map(_int_or_none, (self.replica, self.task, self.device_index))
        except ValueError as e:
            # Matches TF: the message is int()'s own ("invalid literal for int() with base 10").
            raise DeviceSpecError(None, None, str(e), {"field_error": str(e)}) from e
        job = None if self.job is None else str(self.job)
        dtype = _normalise_type(self.device_type)
        normalised = {"job": job, "replica": replica, "task": task, "device_type": dtype,
                      "device_index": index}
        for name, value in normalised.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_string", _components_to_string(job, replica, task, dtype, index))

    @classmethod
    def from_string(cls, spec: str | DeviceSpec | None) -> DeviceSpec:
        """Parses ``spec`` with TF's Python grammar; ``None`` and ``""`` give the empty spec.

        Raises:
            DeviceSpecError: (a ``ValueError``) with TF's message when ``spec`` does not parse.
            TypeError: when ``spec`` is not a str, a DeviceSpec or None.
        """
        if isinstance(spec, DeviceSpec):
            return spec
        if spec is None:
            return _EMPTY
        if not isinstance(spec, str):
            raise TypeError(f"device spec must be a str, DeviceSpec or None, got {spec!r}")
        return _parse(spec)

    def to_string(self) -> str:
        """The canonical ``/job:J/replica:R/task:T/device:TYPE:IDX`` form, set fields only.

        A set type with an unset index prints ``*``; this is what TF writes to ``NodeDef.device``.
        """
        return self._string

    def __str__(self) -> str:
        return self._string

    def make_merged_spec(self, dev: DeviceSpec) -> DeviceSpec:
        """Returns ``self`` overlaid with ``dev``: each field set in ``dev`` wins.

        Matches TF: every field merges independently, so a type from ``dev`` keeps ``self``'s
        index (``/device:GPU:2`` merged with ``CPU`` is ``/device:CPU:2``).
        """
        return DeviceSpec(*(b if b is not None else a
                            for a, b in zip(self._fields(), dev._fields(), strict=True)))

    def replace(self, **fields: object) -> DeviceSpec:
        """Returns a copy with the given fields replaced (``None`` unsets a field)."""
        return dataclasses.replace(self, **fields)

    @property
    def is_empty(self) -> bool:
        """True when no field is set (merging this spec changes nothing)."""
        return all(v is None for v in self._fields())

    def _fields(self) -> tuple:
        return (self.job, self.replica, self.task, self.device_type, self.device_index)


_EMPTY = DeviceSpec()


def canonical_name(spec: str | DeviceSpec | None) -> str:
    """TF's ``device.canonical_name``: ``None``/``""`` give ``""``, else the canonical string."""
    if not spec:
        return ""
    return DeviceSpec.from_string(spec).to_string()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def merge_device(outer: str | None, inner: str | None) -> str:
    """Canonical string of ``outer`` overlaid with ``inner``; ``inner``'s set fields win.

    This is one step of a ``tf.device`` stack (applied innermost first, so each field comes from
    the innermost scope that sets it) and of ``import_meta_graph`` under an outer ``tf.device``
    (the stored device is ``inner``).
    """
    merged = DeviceSpec.from_string(outer).make_merged_spec(DeviceSpec.from_string(inner))
    return merged.to_string()


# ---------------------------------------------------------------------------------------------
# Python grammar (tf.DeviceSpec.from_string)
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse(spec: str) -> DeviceSpec:
    # Matches TF: replica/task stay strings until the constructor runs int() on them, so an
    # unknown attribute later in the string is reported before a bad replica; a bad device index
    # is converted, and reported, on the spot.
    job = replica = task = dtype = index = None
    for piece in spec.split("/"):
        y = piece.split(":")
        if len(y) == 2 and y[0] in ("job", "replica", "task"):
            if y[0] == "job":
                job = y[1]
            elif y[0] == "replica":
                replica = y[1]
            else:
                task = y[1]
        elif len(y) in (1, 2) and y[0].upper() in _BARE_DEVICE_TYPES:
            _check_single_type(dtype, spec)
            dtype, index = y[0].upper(), _parse_index(y[1] if len(y) == 2 else "*", spec)
        elif len(y) == 3 and y[0] == "device":
            _check_single_type(dtype, spec)
            dtype, index = y[1], _parse_index(y[2], spec)
        elif y[0] != "":
            # Matches TF: pieces whose key is empty (":", ":0") are silently ignored.
            message = f"Unknown attribute '{y[0]}' is encountered while parsing the device spec"
            raise DeviceSpecError(None, None, f"{message}: '{spec}'.", {"spec": spec})
    return DeviceSpec(job, replica, task, dtype, index)


def _check_single_type(current: str | None, spec: str) -> None:
    if current is not None:
        raise DeviceSpecError(
            None, None,
            f"Multiple device types are not allowed while parsing the device spec: {spec}.",
            {"spec": spec},
        )


def _parse_index(text: str, spec: str) -> int | None:
    if text == "*":
        return None
    try:
        return int(text)
    except ValueError as e:
        raise DeviceSpecError(None, None, str(e), {"spec": spec}) from e


# ---------------------------------------------------------------------------------------------
# C++ grammar (DeviceNameUtils::ParseFullName), used by placement
# ---------------------------------------------------------------------------------------------

_NAME = r"[A-Za-z][A-Za-z0-9_]*"
# One alternative per prefix ParseFullName consumes. The C++ loop tries them in a fixed order but
# repeats until the input is used up, so any order (and repeats, the last one winning) is fine.
_FULL_NAME_PIECE = re.compile(
    rf"/job:(?:\*|(?P<job>{_NAME}))"
    r"|/replica:(?:\*|(?P<replica>[0-9]+))"
    r"|/task:(?:\*|(?P<task>[0-9]+))"
    rf"|/device:(?:\*|(?P<type>{_NAME}))(?::(?:\*|(?P<id>[0-9]+)))?"
    r"|/(?P<legacy>cpu|CPU|gpu|GPU):(?:\*|(?P<legacy_id>[0-9]+))"
)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_full_name(name: str) -> DeviceSpec | None:
    """Parses ``name`` with the placer's strict grammar; returns None when it is malformed.

    Accepts ``/job:NAME|*``, ``/replica:N|*``, ``/task:N|*``, ``/device:TYPE|*[:N|*]`` and the
    legacy ``/cpu:``, ``/CPU:``, ``/gpu:``, ``/GPU:`` (mapped to ``CPU``/``GPU``), in any order.
    ``*`` and a missing device id mean unset. Types stay case-sensitive (``/device:Cpu:0`` parses
    to type ``Cpu``, which no device has). ``""`` and ``"/"`` give the empty spec.
    """
    fields: dict[str, object] = {}
    pos = 0 if name != "/" else 1
    while pos < len(name):
        match = _FULL_NAME_PIECE.match(name, pos)
        if match is None:
            return None
        _apply_full_name_piece(match, fields)
        pos = match.end()
    return DeviceSpec(**fields)


def _apply_full_name_piece(match: re.Match[str], fields: dict[str, object]) -> None:
    # Numbers are not range-checked; C++ rejects more than 64 bits and truncates to int.
    key = match.group(0)[1:].split(":", 1)[0]
    if key in ("cpu", "CPU", "gpu", "GPU"):
        fields["device_type"] = key.upper()
        fields["device_index"] = _int_or_none(match["legacy_id"])
    elif key == "device":
        fields["device_type"] = match["type"]
        fields["device_index"] = _int_or_none(match["id"])
    else:
        value = match[key]
        fields[key] = value if key == "job" or value is None else int(value)


def map_device(requested: str, device_map: Mapping[str, str] | None) -> str:
    """Applies the first matching ``device_map`` entry to a device string."""
    if not device_map or not requested:
        return requested
    spec = DeviceSpec.from_string(requested)
    for key, value in device_map.items():
        pattern = DeviceSpec.from_string(key)
        if all(p is None or p == s for p, s in zip(pattern._fields(), spec._fields())):
            cleared = DeviceSpec(*(None if p is not None else s
                                   for p, s in zip(pattern._fields(), spec._fields())))
            return cleared.make_merged_spec(DeviceSpec.from_string(value)).to_string()
    return requested
