"""Denormal flushing while a plan runs, as TensorFlow's CPU executor does.

TF runs every kernel with the x86 MXCSR flags FTZ (flush results that would be denormal to
zero) and DAZ (read denormal inputs as zero).  Without them, training steps whose gradients
shrink into the denormal range run 5-10x slower on x86 (measured: a 784-1024-1024-10 MLP step
went from ~180 ms to ~25 ms), and values differ from TF's in the denormal range.  The flags are
per thread; :func:`flush_denormals` sets them on the calling thread for the duration of a run
and restores the caller's floating-point environment afterwards.  Elsewhere (no glibc, not
x86-64) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
from collections.abc import Iterator

from gpugraph import config

_FTZ_DAZ = 0x8040  # MXCSR bit 15 (flush to zero) | bit 6 (denormals are zero)
_MXCSR_OFFSET = 28  # glibc x86-64 fenv_t: the x87 environment (28 bytes), then mxcsr
_FENV_SIZE = 32


def _load() -> tuple | None:
    if platform.machine() not in ("x86_64", "AMD64") or not config.settings.flush_denormals:
        return None
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        return libm.fegetenv, libm.fesetenv
    except (OSError, AttributeError):
        return None


_FUNCS = _load()


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Sets FTZ|DAZ on this thread inside the block (a no-op where unsupported)."""
    if _FUNCS is None:
        yield
        return
    get, set_ = _FUNCS
    saved = (ctypes.c_char * _FENV_SIZE)()
    if get(saved) != 0:
        yield
        return
    flushed = (ctypes.c_char * _FENV_SIZE).from_buffer_copy(saved)
    mxcsr = int.from_bytes(bytes(flushed[_MXCSR_OFFSET:_MXCSR_OFFSET + 4]), "little")
    flushed[_MXCSR_OFFSET:_MXCSR_OFFSET + 4] = (mxcsr | _FTZ_DAZ).to_bytes(4, "little")
    set_(flushed)
    try:
        yield
    finally:
        set_(saved)
