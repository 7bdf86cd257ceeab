"""Keeps large host buffers in the process instead of returning them to the OS after each use.

glibc's malloc serves arrays above ``M_MMAP_THRESHOLD`` (128 KiB to 32 MiB, adaptive) with
fresh ``mmap`` calls and unmaps them on free, so a training step that allocates the same big
temporaries every run (im2col patches, activations, gradients) page-faults all of them again
every run: on a VM that cost a CNN step 40% of its time.  Raising the mmap and trim thresholds
makes freed blocks reusable, like TensorFlow's own caching allocator.  The price is the same as
TF's: the process keeps its peak heap.  ``GPUGRAPH_HOST_ALLOCATOR_CACHE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

from gpugraph import config

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # glibc's maximum for the mmap threshold is HEAP_MAX_SIZE/2 on 64-bit

_done = False


def keep_freed_buffers() -> bool:
    """Applies the tuning once per process (glibc only); returns whether it is in effect."""
    global _done
    if _done:
        return True
    if not config.settings.host_allocator_cache or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: leave the allocator alone
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
    return _done
