"""numpy-backed stand-ins for GPUs that fail like real ones when memory is used in the wrong place.

A :class:`DeviceArray` is an ``ndarray`` bound to one virtual GPU.  Like CuPy, every numpy
operation on device arrays checks that all of them live on the device the running op was
placed on, and that no host (plain numpy) array sneaks in without a transfer; the result is
bound to that device.  :class:`VirtualXp` is the array module kernels see on a virtual GPU:
numpy's namespace, with every function's results bound to the device.  So CI on a CPU-only
machine catches the bugs a multi-GPU run would hit: a missing copy step, a tensor consumed on
the wrong device, a host value fed to a device kernel.
"""

from __future__ import annotations

import threading
import types
import weakref
from collections import Counter
from typing import Any

import numpy as np

from gpugraph.devices.base import CUPY_AT_DTYPES

_state = threading.local()


class DeviceMismatchError(ValueError):
    """An array was used on a device it does not live on (what CuPy raises on real GPUs)."""


def current_device() -> int | None:
    """The virtual GPU whose op is running on this thread, or None."""
    return getattr(_state, "device", None)


class RunningOn:
    """Context manager: ops in the block run on virtual GPU ``index`` (CuPy's Device(i)).

    Reusable and re-entrant, like CuPy's device context: the plan enters one per kernel call.
    """

    def __init__(self, index: int):
        self.index = index
        self._previous: list[int | None] = []

    def __enter__(self) -> None:
        self._previous.append(current_device())
        _state.device = self.index

    def __exit__(self, *exc: Any) -> None:
        _state.device = self._previous.pop()


running_on = RunningOn


class DeviceArray(np.ndarray):
    """An ndarray living on virtual GPU ``device``."""

    device: int | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self.device = getattr(obj, "device", None)
        recording = getattr(_state, "recording", None)
        if recording is not None and self.base is None:
            recording.made_outside(self)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, out: Any = None,
                        **kwargs: Any) -> Any:
        what = f"{ufunc.__name__}.{method}"
        device = _check(what, (*inputs, *(out or ())))
        if out is not None:
            kwargs["out"] = tuple(out)
        result = _run(what, getattr(ufunc, method), inputs, kwargs, device, out or ())
        if out is not None:
            return out[0] if len(out) == 1 else out
        return result

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        device = _check(func.__name__, _leaves((args, kwargs)))
        return _run(func.__name__, func, args, kwargs, device, _mutated(func.__name__, args, kwargs))

    def __getitem__(self, key: Any) -> Any:
        recording = getattr(_state, "recording", None)
        if recording is not None:
            return recording.getitem(self, key)
        # Integer indexing yields a numpy scalar, which would leave the device; CuPy returns a
        # 0-d device array instead, and so do virtual GPUs.
        value = super().__getitem__(key)
        return bind(value, self.device) if isinstance(value, np.generic) else value

    def __setitem__(self, key: Any, value: Any) -> None:
        recording = getattr(_state, "recording", None)
        if recording is None:
            super().__setitem__(key, value)
        else:
            recording.setitem(self, key, value)

    # A value read back to the host is a synchronization, which a capturing stream refuses.
    def __bool__(self) -> bool:
        _refuse_sync("bool() of a device array")
        return super().__bool__()

    def __int__(self) -> int:
        _refuse_sync("int() of a device array")
        return super().__int__()

    def __float__(self) -> float:
        _refuse_sync("float() of a device array")
        return super().__float__()

    def __index__(self) -> int:
        _refuse_sync("a device array used as an index")
        return super().__index__()

    def item(self, *args: Any) -> Any:
        _refuse_sync("item() of a device array")
        return super().item(*args)

    def tolist(self) -> Any:
        _refuse_sync("tolist() of a device array")
        return super().tolist()

    def __repr__(self) -> str:
        return f"{np.asarray(self).__repr__()[:-1]}, device=GPU:{self.device})"

    def __reduce__(self):  # pickles as plain numpy (leaving the device)
        return np.asarray(self).__reduce__()


def bind(value: Any, device: int | None) -> Any:
    """Binds arrays (and numpy scalars, as 0-d arrays) in ``value`` to ``device``."""
    if device is None:
        return value
    if isinstance(value, DeviceArray):
        if value.device is None:
            value.device = device
        return value
    if isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, np.void):
        array = np.asarray(value).view(DeviceArray)
        array.device = device
        return array
    if isinstance(value, tuple):
        return tuple(bind(v, device) for v in value)
    if isinstance(value, list):
        return [bind(v, device) for v in value]
    return value


def _host_view(value: Any) -> Any:
    return value.view(np.ndarray) if isinstance(value, DeviceArray) else value


def _unwrap(value: Any) -> Any:
    if isinstance(value, DeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _leaves(value: Any):
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


def _check(what: str, values: Any) -> int | None:
    """The device all arrays in ``values`` live on; raises if they don't agree."""
    running = current_device()
    found: set[int | None] = set()
    for v in values:
        if isinstance(v, DeviceArray):
            found.add(v.device)
        elif isinstance(v, np.ndarray) and v.ndim > 0 and running is not None:
            raise DeviceMismatchError(
                f"{what}: a host (numpy) array of shape {v.shape} was passed to an op running on "
                f"virtual GPU:{running} without a transfer to the device.")
    if running is not None and found - {running}:
        elsewhere = sorted(d for d in found - {running} if d is not None)
        others = ", ".join(f"GPU:{d}" for d in elsewhere)
        raise DeviceMismatchError(
            f"{what}: an array on virtual {others} was used by an op running on virtual "
            f"GPU:{running}; the device where the array resides is different from the current "
            "device and no copy step moved it.")
    if len(found) > 1:
        raise DeviceMismatchError(
            f"{what}: arrays on different virtual GPUs "
            f"({', '.join(f'GPU:{d}' for d in sorted(found))}) were mixed in one operation.")
    return running if running is not None else (found.pop() if found else None)


class VirtualXp:
    """numpy's namespace for one virtual GPU: results of every function live on the device."""

    def __init__(self, device: int, module: Any = np):
        self._device = device
        self._module = module

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            return VirtualXp(self._device, attr)
        if callable(attr) and not isinstance(attr, type):
            return self._wrap(attr)
        return attr

    def _wrap(self, fn: Any) -> Any:
        device, module, name = self._device, self._module.__name__, getattr(fn, "__name__", "op")

        def on_device(*args: Any, **kwargs: Any) -> Any:
            with running_on(device):
                _check(name, _leaves((args, kwargs)))
                _check_cupy_api(module, name, args, kwargs)
                return _run(name, fn, args, kwargs, device, _mutated(name, args, kwargs))

        on_device.__name__ = name
        if isinstance(fn, np.ufunc):  # ufunc.at: an unbuffered in-place update of the device array
            def at(target: Any, *args: Any) -> None:
                with running_on(device):
                    _check(f"{fn.__name__}.at", _leaves((target, args)))
                    _check_device_at(fn.__name__, target.dtype)
                    _run(f"{fn.__name__}.at", fn.at, (target, *args), {}, device, (target,))

            on_device.at = at
        return on_device

    def __repr__(self) -> str:
        return f"<numpy on virtual GPU:{self._device}>"


def _check_cupy_api(module: str, name: str, args: tuple, kwargs: dict) -> None:
    """Refuses the calls numpy takes and CuPy does not, each of which a kernel once made (found
    by running the suite on a real GPU), so that CI catches the next one."""
    if name in ("max", "min", "amax", "amin") and "initial" in kwargs:
        raise TypeError(f"{name}() got an unexpected keyword argument 'initial' (CuPy's "
                        f"{name} has none)")
    if name == "pad" and isinstance(kwargs.get("constant_values"), DeviceArray):
        raise TypeError("pad: constant_values is an array on the device; CuPy's pad reads it "
                        "with np.asarray, which a CuPy array refuses")
    if module.endswith("linalg") and name == "solve" and len(args) == 2 and \
            np.ndim(args[1]) >= 2 and np.shape(args[0])[:-2] != np.shape(args[1])[:-2]:
        raise ValueError(f"solve: batch shapes {np.shape(args[0])[:-2]} and "
                         f"{np.shape(args[1])[:-2]} differ (CuPy's solve does not broadcast)")


def _check_device_at(name: str, dtype: np.dtype) -> None:
    # CuPy's ufunc.at supports only some ufuncs and dtypes (gpugraph.devices.base).
    if dtype.name not in CUPY_AT_DTYPES.get(name, ()):
        raise NotImplementedError(f"{name}.at on a GPU supports only "
                                  f"{sorted(CUPY_AT_DTYPES.get(name, ()))}, not {dtype}")


def to_device(value: Any, device: int) -> Any:
    """A host value copied onto virtual GPU ``device``."""
    _refuse_sync("a host-to-device copy")
    if isinstance(value, DeviceArray):
        value = value.view(np.ndarray)
    return bind(np.array(value, copy=True), device)


def to_host(value: Any) -> Any:
    """A device value copied to the host (plain numpy)."""
    _refuse_sync("a device-to-host copy")
    if isinstance(value, DeviceArray):
        return np.array(value.view(np.ndarray), copy=True)
    return value


def memory_checked(fn: Any, node: str, device: int, host_inputs: frozenset[int],
                   host_outputs: frozenset[int]) -> Any:
    """``fn``, the kernel of ``node`` on virtual GPU ``device``, checking the memory contract.

    The plan hands a kernel its host-memory inputs (shapes, axes, begin/size) as numpy values
    and copies its outputs wherever they are read, trusting each output to live where the op's
    registration says: host-memory outputs on the host, every other one on the device.  On a
    real GPU a kernel that breaks that fails later, in another node (CuPy refuses a numpy
    scalar in ``cupy.stack``, numpy refuses a CuPy array in ``np.asarray``); here it fails at
    once, naming the node and the output.
    """

    def kernel(*args: Any) -> Any:
        for i in host_inputs:
            if i < len(args) and isinstance(args[i], DeviceArray):
                raise DeviceMismatchError(
                    f"node {node!r}: host-memory input {i} is an array on virtual GPU:"
                    f"{args[i].device}; the plan should have copied it to the host.")
        result = fn(*args)
        values = result if isinstance(result, (tuple, list)) else (result,)
        for i, value in enumerate(values):
            _check_output(node, device, i, value, i in host_outputs)
        return result

    return kernel


def _check_output(node: str, device: int, index: int, value: Any, on_host: bool) -> None:
    if on_host:
        if isinstance(value, DeviceArray):
            raise DeviceMismatchError(
                f"node {node!r}: output {index} is host memory, but its kernel returned an "
                f"array on virtual GPU:{value.device}; build it with numpy, not the device's "
                "array module.")
        return
    if isinstance(value, DeviceArray):
        if value.device not in (None, device):
            raise DeviceMismatchError(
                f"node {node!r} runs on virtual GPU:{device} but its output {index} lives on "
                f"virtual GPU:{value.device}.")
        return
    if isinstance(value, (np.ndarray, np.generic, bool, int, float, complex)):
        raise DeviceMismatchError(
            f"node {node!r} runs on virtual GPU:{device}, but its kernel returned output "
            f"{index} as a host value ({type(value).__name__}); a GPU kernel must return a "
            "device array (build it with the device's array module), or the op must declare "
            "the output host memory.")


# --- stream capture -------------------------------------------------------------------------
class StreamCaptureError(RuntimeError):
    """What CuPy raises for an operation a capturing stream cannot record (a synchronization,
    a host copy, a result whose shape depends on the data)."""


# numpy functions that write into their first argument.
_MUTATING = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"})
# Functions whose result's shape depends on the values: CuPy syncs for them, which capture
# refuses.
_DATA_SHAPED = frozenset({"nonzero", "argwhere", "flatnonzero", "unique", "extract",
                          "unique_values", "unique_counts", "unique_inverse", "unique_all",
                          "setdiff1d", "intersect1d", "union1d", "setxor1d", "trim_zeros"})


def _mutated(name: str, args: tuple, kwargs: dict) -> tuple:
    out = kwargs.get("out")
    targets = tuple(out) if isinstance(out, tuple) else (() if out is None else (out,))
    if name in _MUTATING and args:
        targets += (args[0],)
    return targets


def _refuse_sync(what: str) -> None:
    if getattr(_state, "recording", None) is not None:
        raise StreamCaptureError(f"{what} is a synchronous operation; it is not allowed while "
                                 "the current stream is capturing (CuPy raises here too)")


def _run(what: str, fn: Any, args: Any, kwargs: dict, device: int | None,
         mutated: tuple = ()) -> Any:
    """``fn`` on the host views of its arguments, the result bound to ``device``; recorded when
    a capture is in progress on this thread."""
    recording = getattr(_state, "recording", None)
    if recording is None:
        return bind(fn(*_unwrap(args), **_unwrap(kwargs)), device)
    return recording.run(what, fn, args, kwargs, device, mutated)


def _owner(array: np.ndarray) -> np.ndarray:
    """The array that owns ``array``'s memory."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _arrays(value: Any) -> list:
    # Numpy scalars count as 0-d arrays, as bind() turns them into (slogdet's namedtuple).
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        return [np.asarray(value)]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays(v)]
    return []


class Recording:
    """The kernels of one captured step on a virtual GPU, replayable against the same buffers.

    While recording, every device operation runs (so later host code sees real shapes) and is
    logged with the very arrays it read and wrote.  When the capture ends, memory that existed
    before it and was written during it (variables) is restored, so, as on a real GPU, the
    capture itself has done nothing; :meth:`replay` then re-runs the logged operations, writing
    each result into the array the capture handed out.  An operation CuPy cannot capture raises
    :class:`StreamCaptureError`; an array made by an operation that was not logged (and would
    keep its capture-time value on every replay) makes :meth:`check` refuse the capture.
    """

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.made: set[int] = set()  # owners of memory the recorded operations allocated
        self.journal: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # owner -> saved copy
        self.strays: dict[int, Any] = {}  # arrays made outside any recorded operation
        self.depth = 0
        self.refs: Counter[int] = Counter()  # id -> references the log keeps to that array
        # Every array the log keeps alive (logged ones and their chains of bases), by id: each
        # holds one reference to its base (base_refs counts those, by the base's id).
        self.kept: dict[int, np.ndarray] = {}
        self.base_refs: Counter[int] = Counter()

    def made_outside(self, array: DeviceArray) -> None:
        if not self.depth:
            self.strays[id(array)] = array

    def run(self, what: str, fn: Any, args: Any, kwargs: dict, device: int | None,
            mutated: tuple) -> Any:
        if what in _DATA_SHAPED or (what == "where" and len(args) == 1):
            raise StreamCaptureError(f"{what}: the result's shape depends on the values, so the "
                                     "operation synchronizes; not allowed while the current "
                                     "stream is capturing")
        self._check_inputs(what, _leaves((args, kwargs)))
        for target in mutated:
            self._save(target)
        self.depth += 1
        try:
            host_args, host_kwargs = _unwrap(args), _unwrap(kwargs)
            result = bind(fn(*host_args, **host_kwargs), device)
        finally:
            self.depth -= 1
        # A result sharing memory with an input is a view (or the input itself): it follows
        # that input on replay and needs no copy.
        inputs = _arrays((host_args, list(host_kwargs.values())))
        fresh = tuple((k, r) for k, r in enumerate(_arrays(result))
                      if not any(np.may_share_memory(_host_view(r), i) for i in inputs))
        copies = () if mutated else fresh
        call = (fn, args, kwargs, result, copies)
        self.calls.append(call)
        self._track(call)
        for _, array in fresh:  # (a view's owner is an input: not memory the capture made)
            self.made.add(id(_owner(array)))
        return result

    def getitem(self, array: DeviceArray, key: Any) -> Any:
        if isinstance(key, np.ndarray) and key.dtype == np.bool_:
            raise StreamCaptureError("boolean-mask indexing: the result's shape depends on the "
                                     "mask, so it synchronizes; not allowed while the current "
                                     "stream is capturing")
        return self.run("getitem", _getitem, (array, key), {}, array.device, ())

    def setitem(self, array: DeviceArray, key: Any, value: Any) -> None:
        if isinstance(key, np.ndarray) and key.dtype == np.bool_:
            raise StreamCaptureError("boolean-mask assignment synchronizes; not allowed while "
                                     "the current stream is capturing")
        self.run("setitem", _setitem, (array, key, value), {}, array.device, (array,))

    def _check_inputs(self, what: str, values: Any) -> None:
        if not self.strays:
            return
        for v in values:
            if isinstance(v, DeviceArray) and any(id(a) in self.strays for a in _chain(v)):
                raise StreamCaptureError(
                    f"{what}: an input array was made by an operation the capture did not record "
                    "(an ndarray method the virtual GPU does not log); a replay would read its "
                    "capture-time value")

    def _save(self, target: Any) -> None:
        if not isinstance(target, np.ndarray):
            return
        owner = _owner(target)
        if id(owner) not in self.made and id(owner) not in self.journal:
            self.journal[id(owner)] = (owner, np.array(owner.view(np.ndarray), copy=True))

    def restore(self) -> None:
        """Puts back every pre-existing array the recording wrote to."""
        for owner, saved in self.journal.values():
            np.copyto(owner.view(np.ndarray), saved)
        self.journal.clear()
        self.strays.clear()

    def replay(self) -> None:
        """Re-runs the recorded operations against the same arrays."""
        for fn, args, kwargs, _, copies in self.calls:
            fresh = fn(*_unwrap(args), **_unwrap(kwargs))
            if copies:
                results = _arrays(fresh)
                for k, old in copies:
                    new = results[k]
                    if old.shape != np.shape(new):
                        raise StreamCaptureError(
                            f"replay: an operation's result changed shape from {old.shape} to "
                            f"{np.shape(new)}; its shape depends on the values")
                    np.copyto(old.view(np.ndarray), new, casting="unsafe")

    def _track(self, call: tuple) -> None:
        _, args, kwargs, result, copies = call
        for v in (*_leaves((args, kwargs, result)), *(r for _, r in copies)):
            if not isinstance(v, np.ndarray):
                continue
            if isinstance(v, DeviceArray):
                self.refs[id(v)] += 1  # (the tuple the log holds it in)
            while isinstance(v, np.ndarray) and id(v) not in self.kept:
                self.kept[id(v)] = v
                if v.base is not None:
                    self.base_refs[id(v.base)] += 1
                v = v.base

    def references_to(self, value: Any) -> int:
        """References the log keeps to ``value``: in its tuples, as the base of views, and in
        :attr:`kept`."""
        key = id(value)
        return self.refs.get(key, 0) + self.base_refs.get(key, 0) + (key in self.kept)

    def references(self) -> list:
        """Every reference the log keeps to a device array, one entry per reference (for the
        variables' sharing rule: these do not make a variable's value "held by someone
        else")."""
        listed = [a for call in self.calls for a in _logged(call) if isinstance(a, DeviceArray)]
        return [*listed, *(v.base for v in self.kept.values() if isinstance(v.base, DeviceArray)),
                *(v for v in self.kept.values() if isinstance(v, DeviceArray))]


def _logged(call: tuple) -> list:
    _, args, kwargs, result, copies = call
    return [*_leaves((args, kwargs, result)), *(r for _, r in copies)]


def _chain(array: np.ndarray):
    while isinstance(array, np.ndarray):
        yield array
        array = array.base


def _getitem(array: np.ndarray, key: Any) -> Any:
    return array[key]


def _setitem(array: np.ndarray, key: Any, value: Any) -> None:
    array[key] = value


def start_recording() -> Recording:
    """Starts recording this thread's virtual-GPU operations."""
    if getattr(_state, "recording", None) is not None:
        raise StreamCaptureError("a capture is already in progress on this thread")
    recording = _state.recording = Recording()
    _RECORDINGS.add(recording)
    return recording


def stop_recording() -> None:
    _state.recording = None


def _recorded_method(name: str, mutates: bool = False) -> Any:
    base = getattr(np.ndarray, name)

    def method(self: DeviceArray, *args: Any, **kwargs: Any) -> Any:
        recording = getattr(_state, "recording", None)
        if recording is None:
            return base(self, *args, **kwargs)
        return recording.run(name, base, (self, *args), kwargs, self.device,
                             (self,) if mutates else ())

    method.__name__ = name
    return method


# ndarray methods that compute (not views): logged while capturing, like the module functions.
for _name in ("astype", "copy", "reshape", "ravel", "flatten", "sum", "prod", "max", "min",
              "mean", "std", "var", "any", "all", "argmax", "argmin", "cumsum", "cumprod",
              "dot", "clip", "round", "take", "repeat", "conj", "trace", "ptp"):
    if hasattr(np.ndarray, _name):
        setattr(DeviceArray, _name, _recorded_method(_name))
for _name in ("fill", "sort"):
    setattr(DeviceArray, _name, _recorded_method(_name, mutates=True))
setattr(DeviceArray, "nonzero", _recorded_method("nonzero"))  # refused by run()
del _name


def recording_active() -> bool:
    """Whether this thread is capturing a virtual-GPU step."""
    return getattr(_state, "recording", None) is not None


# Recordings alive (in progress, or kept by their graphs): their views keep memory referenced.
_RECORDINGS: weakref.WeakSet[Recording] = weakref.WeakSet()


def view_references(owner: np.ndarray) -> int:
    """References that live recordings keep to ``owner`` as the base of arrays they log."""
    key = id(owner)
    return sum(r.base_refs.get(key, 0) + (key in r.kept) for r in list(_RECORDINGS))


def references_to(value: Any) -> int:
    """References the capture in progress on this thread keeps to ``value``."""
    recording = getattr(_state, "recording", None)
    return 0 if recording is None else recording.references_to(value)
