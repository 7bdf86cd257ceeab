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


def scatter_at(xp: Any, device: Any, ufunc: str, target: Any, index: Any, values: Any) -> None:
    """``ufunc.at(target, index, values)`` in place, on any device.

    A device whose ``at_dtypes`` is None (numpy) does everything.  Elsewhere (CuPy),
    subtraction is addition of the negated values (the same IEEE results, and the same
    wraparound for integers), the ufunc and dtype pairs the device lists run natively, and the
    rest round-trips through the host, in index order.
    """
    supported = device.at_dtypes
    if supported is None:
        getattr(xp, ufunc).at(target, index, values)
        return
    if ufunc == "subtract":
        ufunc, values = "add", -values
    if target.dtype.name in supported.get(ufunc, ()):
        getattr(xp, ufunc).at(target, index, values)
        return
    host = np.array(device.to_host(target))
    host_index = tuple(_host_part(device, i) for i in index) if isinstance(index, tuple) else \
        _host_part(device, index)
    getattr(np, ufunc).at(host, host_index, np.asarray(device.to_host(values)))
    target[...] = device.to_device(host)


def _host_part(device: Any, index: Any) -> Any:
    return index if isinstance(index, slice) else np.asarray(device.to_host(index))
