"""LLVM IR compiled for this CPU by llvmlite (numba's own backend): the direct convolution
kernel (:mod:`cpu_conv`) and the worker threads' hand-off loops (:mod:`cpu_crew`).

The IR is written for x86-64 (AVX-512 or AVX2 vectors, the ``pause`` instruction), so
elsewhere, without llvmlite, or with an llvmlite too old to parse it (opaque pointers), nothing
compiles and the callers fall back: convolutions to im2col + BLAS, the workers to a thread
pool.
"""

from __future__ import annotations

import ctypes
import platform
import threading
from collections.abc import Callable, Sequence
from typing import Any

from gpugraph._optional import optional_module

_lock = threading.RLock()
_state: list[Any] = []  # [target machine or None, [execution engines]] once initialised
_machines: dict[str, Any] = {}  # target machines for other feature sets (cpu_isa variants)
_PROBE = "define i64 @probe(ptr %p) {\n  %v = load atomic i64, ptr %p acquire, align 8\n" \
         "  ret i64 %v\n}\n"


def machine() -> Any | None:
    """llvmlite's target machine for this host, or None where IR cannot be compiled here (not
    x86-64, no llvmlite, an LLVM that predates opaque pointers)."""
    with _lock:
        if not _state:
            _state.extend([None, []])
            llvm = optional_module("llvmlite.binding")
            if llvm is not None and platform.machine() in ("x86_64", "AMD64"):
                try:
                    llvm.initialize_native_target()
                    llvm.initialize_native_asmprinter()
                    _state[0] = llvm.Target.from_default_triple().create_target_machine(
                        cpu=llvm.get_host_cpu_name(),
                        features=llvm.get_host_cpu_features().flatten(), opt=3)
                    compile_ir(_PROBE, "probe", ctypes.c_int64, [ctypes.c_void_p])
                except Exception:  # noqa: BLE001 - any failure means: nothing compiles here
                    _state[0] = None
        return _state[0]


def machine_with(features: str | None) -> Any | None:
    """A target machine for this CPU with LLVM ``features`` (e.g. its AVX-512 turned off, to
    compile a lesser ISA's kernels); the host's own for None."""
    host = machine()
    if host is None or features is None:
        return host
    with _lock:
        found = _machines.get(features)
        if found is None:
            llvm = optional_module("llvmlite.binding")
            found = _machines[features] = llvm.Target.from_default_triple(
            ).create_target_machine(cpu=llvm.get_host_cpu_name(), features=features, opt=3)
        return found


def compile_ir(source: str, name: str, restype: Any, argtypes: Sequence[Any],
               features: str | None = None) -> Callable[..., Any]:
    """Function ``name`` of the IR module ``source``, optimised (-O3) for this CPU (with LLVM
    ``features`` instead of the host's, if given), as a ctypes function (which releases the
    GIL while it runs).  Call :func:`machine` first."""
    llvm = optional_module("llvmlite.binding")
    with _lock:
        _, engines = _state
        target = machine_with(features)
        module = llvm.parse_assembly(source)
        module.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=3)
        builder = llvm.create_pass_builder(target, tuning)
        builder.getModulePassManager().run(module, builder)
        engine = llvm.create_mcjit_compiler(module, target)
        engine.finalize_object()
        engines.append(engine)  # the compiled code lives as long as its engine
        address = engine.get_function_address(name)
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)
