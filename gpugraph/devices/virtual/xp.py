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

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, out: Any = None,
                        **kwargs: Any) -> Any:
        device = _check(f"{ufunc.__name__}.{method}", (*inputs, *(out or ())))
        if out is not None:
            kwargs["out"] = tuple(_host_view(o) for o in out)
        result = getattr(ufunc, method)(*(_host_view(i) for i in inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return bind(result, device)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        device = _check(func.__name__, _leaves((args, kwargs)))
        return bind(func(*_unwrap(args), **_unwrap(kwargs)), device)

    def __getitem__(self, key: Any) -> Any:
        # Integer indexing yields a numpy scalar, which would leave the device; CuPy returns a
        # 0-d device array instead, and so do virtual GPUs.
        value = super().__getitem__(key)
        return bind(value, self.device) if isinstance(value, np.generic) else value

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
                return bind(fn(*_unwrap(args), **_unwrap(kwargs)), device)

        on_device.__name__ = name
        if isinstance(fn, np.ufunc):  # ufunc.at: an unbuffered in-place update of the device array
            def at(target: Any, *args: Any) -> None:
                with running_on(device):
                    _check(f"{fn.__name__}.at", _leaves((target, args)))
                    _check_device_at(fn.__name__, target.dtype)
                    fn.at(*_unwrap((target, *args)))

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
    if isinstance(value, DeviceArray):
        value = value.view(np.ndarray)
    return bind(np.array(value, copy=True), device)


def to_host(value: Any) -> Any:
    """A device value copied to the host (plain numpy)."""
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
