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


def scatter_rows(xp: Any, device: Any, ufunc: str | None, target: Any, rows: Any,
                 values: Any) -> Any:
    """``target`` with ``values`` applied at ``rows`` along axis 0 (``ufunc.at``, or assignment
    when ``ufunc`` is None), rows outside ``[0, len(target))`` dropped: TF's GPU scatter and
    segment kernels skip them without telling the host.  No host synchronization: the dropped
    rows land in one spare row that is cut off again.  Returns the result (a new array)."""
    count = target.shape[0]
    spare = xp.concatenate([target, xp.zeros((1, *target.shape[1:]), dtype=target.dtype)])
    inside = (rows >= 0) & (rows < count)
    rows = xp.where(inside, rows, count)
    if ufunc is None:  # assignment: the last of duplicate rows wins, as numpy's setitem
        spare[rows] = values
    else:
        scatter_at(xp, device, ufunc, spare, rows, values)
    return spare[:count]


def linear_rows(xp: Any, indices: Any, shape: tuple) -> Any:
    """``indices[..., depth]`` into ``shape`` as row numbers of ``shape`` flattened to
    ``(prod(shape[:depth]), *shape[depth:])``; an index outside ``shape`` gives -1."""
    depth = indices.shape[-1]
    rows = xp.zeros(indices.shape[:-1], dtype=np.int64)
    inside = xp.ones(indices.shape[:-1], dtype=bool)
    for k in range(depth):
        column = indices[..., k].astype(np.int64)
        inside &= (column >= 0) & (column < shape[k])
        rows = rows * shape[k] + column
    return xp.where(inside, rows, -1)


class Tables:
    """Host-built tables a kernel derives from shapes (index maps, interpolation weights),
    uploaded to its device once per key: a captured step then reads them instead of copying
    from the host (a copy CUDA graphs cannot hold)."""

    LIMIT = 16  # keys kept per kernel (the oldest go first)

    def __init__(self, device: Any) -> None:
        self.device = device
        self.cache: dict[Any, Any] = {}

    def get(self, key: Any, make: Any) -> Any:
        """The device copy of ``make()`` (a numpy array or a tuple of them) for ``key``."""
        found = self.cache.get(key)
        if found is None:
            made = make()
            found = tuple(map(self.device.to_device, made)) if isinstance(made, tuple) else \
                self.device.to_device(made)
            if len(self.cache) >= self.LIMIT:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = found
        return found


def take_rows(xp: Any, table: Any, rows: Any) -> Any:
    """``table[rows]`` with a zero row for each row outside ``[0, len(table))``: TF's GPU
    gathers, which do not tell the host about a bad index."""
    shape = (*rows.shape, *table.shape[1:])
    if table.shape[0] == 0:
        return xp.zeros(shape, dtype=table.dtype)
    inside = (rows >= 0) & (rows < table.shape[0])
    got = table[xp.where(inside, rows, 0)]
    mask = inside.reshape(*rows.shape, *([1] * (table.ndim - 1)))
    return xp.where(mask, got, xp.zeros((), dtype=table.dtype))
