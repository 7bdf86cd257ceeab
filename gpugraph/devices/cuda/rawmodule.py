"""Hand-written CUDA kernels (``gpugraph/devices/cuda/kernels/*.cu``, package data), compiled
through CuPy once per device.

A kernel lands in ``kernels/`` only where a benchmark shows it beats the op's array-module body
on a real GPU (``scripts/bench.py`` on a CUDA machine); the body stays the reference and the
fallback.  :func:`elementwise` hands an op the compiled function for its arrays, or None
(not CuPy, another dtype, a non-contiguous array, ``GPUGRAPH_CUDA_KERNELS=0``, the source not
shipped), and the op then runs its body.
"""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any

import numpy as np

from gpugraph import config

# Found through the package (importlib.resources), so a wheel install finds them too.
KERNELS = resources.files("gpugraph.devices.cuda") / "kernels"
_SUFFIXES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_THREADS = 256
_MAX_BLOCKS = 1 << 16  # the grid-stride loops cover any size
_modules: dict[tuple[str, int], Any] = {}
_lock = threading.Lock()


def enabled(xp: Any) -> bool:
    """Whether ops on array module ``xp`` use the kernels here (CuPy only)."""
    return getattr(xp, "__name__", "") == "cupy" and config.CUDA_KERNELS


def _module(family: str, cupy: Any) -> Any:
    key = (family, cupy.cuda.Device().id)
    module = _modules.get(key)
    if module is None:
        with _lock:
            module = _modules.get(key)
            if module is None:
                code = (KERNELS / f"{family}.cu").read_text()
                # Two roundings for a*b+c, as on the CPU (and in the array-module bodies).
                module = _modules[key] = cupy.RawModule(code=code, options=("--fmad=false",))
    return module


class Elementwise:
    """``{name}_{float|double}`` of ``kernels/{family}.cu``: a grid-stride loop over the
    ``arrays`` (updated in place), reading ``scalars`` (0-d arrays) from device memory."""

    def __init__(self, family: str, name: str, cupy: Any):
        self.family, self.name, self._cupy = family, name, cupy

    def fits(self, arrays: tuple, scalars: tuple) -> bool:
        """All CuPy arrays of one float dtype; the arrays contiguous, of one size; the scalars
        single values."""
        ndarray = self._cupy.ndarray
        first = arrays[0]
        if not isinstance(first, ndarray) or first.dtype not in _SUFFIXES:
            return False
        return all(isinstance(a, ndarray) and a.dtype == first.dtype and a.size == first.size
                   and a.flags.c_contiguous for a in arrays) and \
            all(isinstance(s, ndarray) and s.dtype == first.dtype and s.size == 1
                for s in scalars)

    def __call__(self, arrays: tuple, scalars: tuple, *flags: int) -> None:
        n = arrays[0].size
        if n == 0:
            return
        module = _module(self.family, self._cupy)
        fn = module.get_function(f"{self.name}_{_SUFFIXES[arrays[0].dtype]}")
        blocks = min((n + _THREADS - 1) // _THREADS, _MAX_BLOCKS)
        fn((blocks,), (_THREADS,), (*arrays, *scalars, np.int64(n), *map(np.int32, flags)))


def elementwise(family: str, name: str, xp: Any) -> Elementwise | None:
    """The kernel ``name`` of ``kernels/{family}.cu`` for ops on ``xp``, or None."""
    if not enabled(xp) or not (KERNELS / f"{family}.cu").is_file():
        return None
    return Elementwise(family, name, xp)

