"""Which vector ISA the compiled CPU kernels are sized for (as OpenBLAS and oneDNN dispatch).

The direct convolution's micro-kernel keeps an R x V block of accumulators in vector registers
for a whole reduction, and needs V more for the loaded row of ``b`` and one for a broadcast
value of ``x``.  How large a block fits depends on the ISA:

* ``avx512``: 32 registers of 16 float32 lanes: blocks of up to 4 vectors (64 columns), 7 x 4
  = 28 accumulators;
* ``avx2`` (with FMA): 16 registers of 8 lanes: blocks of up to 2 vectors (16 columns), 6 x 2
  = 12 accumulators (+2 +1 = 15 registers), the shape of the classic AVX2 SGEMM kernel; a
  block sized for AVX-512 spills there, every step (the 0.86x of W3 on a Zen 3 host);
* ``generic``: anything else (no AVX2/FMA, not x86-64): no direct kernel, convolutions run as
  im2col + BLAS, which BLAS itself tunes for the CPU.

The host's best variant is chosen from LLVM's view of the CPU's features;
``GPUGRAPH_CPU_ISA`` forces a lesser one (``avx2`` on an AVX-512 host compiles the kernels for
AVX2 alone: how the tests check every variant's bits on one machine).  Every variant issues
the same fused multiply-adds in the same order per output element, so all give the same bits.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from gpugraph import config
from gpugraph._optional import optional_module


@dataclasses.dataclass(frozen=True)
class Variant:
    """A kernel shape for one ISA."""

    name: str
    float_lanes: int  # float32 lanes per vector register
    max_vectors: int  # vectors per row of a block (its columns: max_vectors * lanes)
    rows: tuple[int, ...]  # rows per block, indexed by vectors per row (1..max_vectors)
    drop: tuple[str, ...]  # host features (prefixes) turned off to compile for this ISA
    needs: tuple[str, ...]  # LLVM features the host must have

    def lanes(self, dtype: np.dtype) -> int:
        return self.float_lanes * 4 // np.dtype(dtype).itemsize


AVX512 = Variant("avx512", 16, 4, (0, 14, 10, 9, 7), (), ("avx512f",))
AVX2 = Variant("avx2", 8, 2, (0, 12, 6), ("avx512",), ("avx2", "fma"))
VARIANTS = (AVX512, AVX2)  # best first
NAMES = tuple(v.name for v in VARIANTS) + ("generic",)


@functools.lru_cache(maxsize=1)
def _host_features() -> tuple[tuple[str, bool], ...]:
    llvm = optional_module("llvmlite.binding")
    if llvm is None:
        return ()
    try:
        return tuple(sorted(dict(llvm.get_host_cpu_features()).items()))
    except Exception:  # noqa: BLE001 - an LLVM that cannot tell: no direct kernels
        return ()


def host_features() -> dict[str, bool]:
    """LLVM's features of this CPU ({} where llvmlite is missing); read once."""
    return dict(_host_features())


@functools.lru_cache(maxsize=1)
def _supported() -> tuple[Variant, ...]:
    features = host_features()
    return tuple(v for v in VARIANTS if all(features.get(f) for f in v.needs))


def supported() -> list[Variant]:
    """The variants this CPU runs, best first."""
    return list(_supported())


def current() -> Variant | None:
    """The variant kernels are compiled for now: ``GPUGRAPH_CPU_ISA`` if this CPU runs it,
    else the best it runs; None for ``generic`` (no direct kernels).  (Called per kernel
    launch: cached per setting.)"""
    return _current(config.settings.cpu_isa)


@functools.lru_cache(maxsize=8)
def _current(wanted: str | None) -> Variant | None:
    if wanted == "generic":
        return None
    here = _supported()
    for variant in here:
        if wanted in (None, variant.name):
            return variant
    return here[0] if here else None


def features_for(variant: Variant) -> str:
    """LLVM's feature string to compile for ``variant`` on this host (its wider extensions
    turned off)."""
    features = host_features()
    for name in features:
        if variant.drop and name.startswith(variant.drop):
            features[name] = False
    return ",".join(("+" if on else "-") + name for name, on in sorted(features.items()))
