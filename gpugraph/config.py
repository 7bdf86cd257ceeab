"""Every ``GPUGRAPH_*`` environment switch, read once, in one place.

The switches are read when this module is imported, into :data:`settings`; every other module
reads ``config.settings.<field>`` and never the environment.  :func:`reload` re-reads the
environment into the same object (for tests, and for programs that change a switch after
import).  docs/config.md is the table of switches; :data:`SWITCHES` is its source.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any


def _flag(default: bool) -> Callable[[str | None], bool]:
    def parse(text: str | None) -> bool:
        return default if text is None or text == "" else text != "0"

    return parse


def _count(text: str | None) -> int | None:
    try:
        return None if not text else int(text)
    except ValueError:
        return None


def _yes(text: str | None) -> bool:
    return (text or "").lower() in ("1", "true", "yes")


def _tristate(text: str | None) -> bool | None:
    return None if not text else text != "0"


def _seconds(default: float) -> Callable[[str | None], float]:
    def parse(text: str | None) -> float:
        try:
            return float(text) if text else default
        except ValueError:
            return default

    return parse


def _bytes(default: int) -> Callable[[str | None], int]:
    def parse(text: str | None) -> int:
        try:
            return max(0, int(text)) if text else default
        except ValueError:
            return default

    return parse


@dataclasses.dataclass(frozen=True)
class Switch:
    """One environment variable: its field in :class:`Settings`, parser, default and meaning."""

    env: str
    field: str
    parse: Callable[[str | None], Any]
    default: str
    meaning: str


SWITCHES: tuple[Switch, ...] = (
    Switch("GPUGRAPH_VIRTUAL_GPUS", "virtual_gpus", _count, "unset",
           "N numpy-backed virtual GPUs stand in for CUDA devices (0: none, and no CUDA "
           "lookup either); unset: use the CUDA GPUs CuPy finds."),
    Switch("GPUGRAPH_CPU_LOOPS", "cpu_loops", _flag(True), "1",
           "0 turns off every compiled CPU kernel (numba loops and the direct convolution); "
           "the array-module bodies run instead."),
    Switch("GPUGRAPH_CPU_CONV", "cpu_conv", _flag(True), "1",
           "0 turns off the direct (LLVM) convolution kernel: im2col + BLAS instead."),
    Switch("GPUGRAPH_CPU_THREADS", "cpu_threads", _count, "unset",
           "Threads the CPU kernels split work over; unset: the CPUs this process may use."),
    Switch("GPUGRAPH_CPU_ISA", "cpu_isa", lambda t: (t or "").lower() or None, "unset",
           "The vector ISA the compiled CPU kernels are sized for: avx512, avx2 (with FMA) or "
           "generic (no direct convolution: im2col + BLAS); unset: the best this CPU runs. A "
           "variant the CPU lacks is not used."),
    Switch("GPUGRAPH_CPU_SPIN", "cpu_spin", _flag(True), "1",
           "0 makes idle CPU worker threads sleep at once instead of spinning briefly."),
    Switch("GPUGRAPH_FLUSH_DENORMALS", "flush_denormals", _flag(True), "1",
           "0 leaves the x86 FTZ/DAZ flags alone while a plan runs (TF sets them)."),
    Switch("GPUGRAPH_HOST_ALLOCATOR_CACHE", "host_allocator_cache", _flag(True), "1",
           "0 leaves glibc's malloc thresholds alone (a session otherwise keeps large freed "
           "host buffers for reuse, as TF's allocator does)."),
    Switch("GPUGRAPH_CUDA_KERNELS", "cuda_kernels", _flag(True), "1",
           "0 turns off the hand-written CUDA kernels (fused optimizer updates)."),
    Switch("GPUGRAPH_CUDA_GRAPHS", "cuda_graphs", _tristate, "unset",
           "Whole-step CUDA graphs: 0 runs every GPU kernel eagerly; 1 captures on virtual "
           "GPUs too (recording and replaying their steps, to catch capture bugs on a CPU); "
           "unset: on for CUDA devices only."),
    Switch("GPUGRAPH_ALLOW_TF32", "allow_tf32", _yes, "0",
           "1 lets float32 matrix products on CUDA GPUs use TensorFloat-32 tensor cores "
           "(about 1e-3 relative error; TF's default on Ampere and later); 0: full fp32."),
    Switch("GPUGRAPH_WIRE_SCAN", "wire_scan", _tristate, "unset",
           "How .meta files are read: 1 always through the fast wire scanner, 0 never "
           "(protobuf's parser); unset: by size."),
    Switch("GPUGRAPH_DATA_PARALLEL", "data_parallel", lambda t: (t or "").lower() or None,
           "unset", "mpi: sessions average gradients over the MPI ranks of the launcher that "
           "started the process (as SessionConfig(data_parallel='mpi')); unset: off."),
    Switch("GPUGRAPH_COLLECTIVE_TIMEOUT", "collective_timeout", _seconds(300.0), "300",
           "Seconds a data-parallel collective (gradient all-reduce, start-up checks) waits for "
           "the other ranks before raising DataParallelError."),
    Switch("GPUGRAPH_FUSION_BYTES", "fusion_bytes", _bytes(64 << 20), "67108864",
           "Gradients are all-reduced in buckets of up to this many bytes (Horovod's fusion "
           "threshold); a bucket starts as soon as it is full, while the step goes on."),
    Switch("GPUGRAPH_MAX_TENSOR_BYTES", "max_tensor_bytes", _count, "unset",
           "The most bytes one tensor read from a file (a Const, a checkpoint entry, a feed "
           "file) may claim; a larger claim is refused before anything is allocated. Unset: "
           "this machine's physical memory."),
    Switch("GPUGRAPH_DURABLE_CHECKPOINTS", "durable_checkpoints", _yes, "0",
           "1 (or true, yes) fsyncs every checkpoint save for Savers that do not set ``durable``."),
)


@dataclasses.dataclass
class Settings:
    """The parsed switches (see :data:`SWITCHES`)."""

    virtual_gpus: int | None = None
    cpu_loops: bool = True
    cpu_conv: bool = True
    cpu_threads: int | None = None
    cpu_isa: str | None = None
    cpu_spin: bool = True
    flush_denormals: bool = True
    host_allocator_cache: bool = True
    cuda_kernels: bool = True
    cuda_graphs: bool | None = None
    allow_tf32: bool = False
    wire_scan: bool | None = None
    durable_checkpoints: bool = False
    max_tensor_bytes: int | None = None
    data_parallel: str | None = None
    collective_timeout: float = 300.0
    fusion_bytes: int = 64 << 20
    raw: dict[str, str] = dataclasses.field(default_factory=dict)  # the variables as set


def read(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings ``environ`` (default: the process environment) asks for."""
    environ = os.environ if environ is None else environ
    values = {s.field: s.parse(environ.get(s.env)) for s in SWITCHES}
    raw = {s.env: environ[s.env] for s in SWITCHES if s.env in environ}
    return Settings(**values, raw=raw)


settings = read()


def max_tensor_bytes() -> int:
    """The memory cap on one tensor read from a file: ``GPUGRAPH_MAX_TENSOR_BYTES``, else the
    machine's physical memory (a claim past it cannot be honoured anyway)."""
    if settings.max_tensor_bytes:
        return settings.max_tensor_bytes
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 1 << 40


def reload() -> Settings:
    """Re-reads the environment into :data:`settings` (the same object) and returns it."""
    fresh = read()
    for field in dataclasses.fields(Settings):
        setattr(settings, field.name, getattr(fresh, field.name))
    return settings
