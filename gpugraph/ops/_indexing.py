"""Index checks and host copies shared by the index-driven op families."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors


def host_copy(device: Any, value: Any) -> np.ndarray:
    """A device value copied to host memory (indices to check, values to sort)."""
    return np.asarray(device.to_host(value))


def index_text(index: tuple) -> str:
    """``[1,0]``: a position as TF's messages write it."""
    return "[" + ",".join(str(int(i)) for i in index) + "]"


def check_indices(node: Any, indices: np.ndarray, limit: int, name: str = "indices") -> None:
    """Every index in [0, limit), else TF's ``indices[i] = v is not in [0, limit)``."""
    bad = np.argwhere((indices < 0) | (indices >= limit))
    if len(bad):
        where = tuple(bad[0])
        raise errors.InvalidArgumentError(
            None, node, f"{name}{index_text(where)} = {int(indices[where])} is not in [0, {limit})")


# What CuPy's ufunc.at can do (cupy/_core/_routines_indexing.pyx _scatter_op_single): only
# these ufuncs, for these dtypes; anything else raises NotImplementedError there.  Virtual GPUs
# enforce the same table, so CI catches a kernel that would fail on a real GPU.
DEVICE_AT_DTYPES: dict[str, frozenset[str]] = {
    "add": frozenset({"int32", "float16", "float32", "float64", "uint32", "uint64"}),
    # (CuPy 14's float64 maximum.at/minimum.at round through float32 on an H100: host instead)
    "maximum": frozenset({"int32", "float32", "uint32", "uint64"}),
    "minimum": frozenset({"int32", "float32", "uint32", "uint64"}),
}


def scatter_at(xp: Any, device: Any, ufunc: str, target: Any, index: Any, values: Any) -> None:
    """``ufunc.at(target, index, values)`` in place, on any device.

    numpy's ``ufunc.at`` does everything.  On a GPU, subtraction is addition of the negated
    values (the same IEEE results, and the same wraparound for integers), supported ufunc and
    dtype pairs run natively, and the rest round-trips through the host, in index order.
    """
    if xp is np:
        getattr(np, ufunc).at(target, index, values)
        return
    if ufunc == "subtract":
        ufunc, values = "add", -values
    if target.dtype.name in DEVICE_AT_DTYPES.get(ufunc, ()):
        getattr(xp, ufunc).at(target, index, values)
        return
    host = np.array(device.to_host(target))
    host_index = tuple(_host_part(device, i) for i in index) if isinstance(index, tuple) else \
        _host_part(device, index)
    getattr(np, ufunc).at(host, host_index, np.asarray(device.to_host(values)))
    target[...] = device.to_device(host)


def _host_part(device: Any, index: Any) -> Any:
    return index if isinstance(index, slice) else np.asarray(device.to_host(index))
