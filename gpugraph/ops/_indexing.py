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
