"""Elementwise trees on a CUDA device as one CuPy ``ElementwiseKernel`` (``Device.fuser``).

A launch costs ~15 us of host time, and each op of a chain is a launch.  The formulas are
CuPy's own for each op, with the ``__f*_rn`` intrinsics keeping ``a*b+c`` from contracting into
an FMA, so a fused chain rounds as the unfused kernels do.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _templates(rounded: str, math: str) -> dict[str, str]:
    """CuPy's formula for each op in CUDA C, for float (``__f*_rn``, ``tanhf``, ...) or double
    (``__d*_rn``, ``tanh``, ...); the ``_rn`` intrinsics round each step on its own (no FMA)."""
    add, sub, mul, div = (f"__{rounded}{name}_rn({{0}}, {{1}})"
                          for name in ("add", "sub", "mul", "div"))
    return {"Add": add, "AddV2": add, "Sub": sub, "Mul": mul, "RealDiv": div, "Neg": "(-{0})",
            "Square": f"__{rounded}mul_rn({{0}}, {{0}})", "Abs": f"fabs{math}({{0}})",
            **{op: f"{op.lower()}{math}({{0}})" for op in ("Tanh", "Exp", "Log", "Sqrt")}}


TEMPLATES = {np.dtype(np.float32): _templates("f", "f"),
             np.dtype(np.float64): _templates("d", "")}


_C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def program_source(lines: list[str], c_type: str) -> str:
    """The body of an elementwise kernel evaluating ``lines`` (line k defines ``t<k>``) and
    storing the last into ``out``: one statement per op, so any depth compiles."""
    body = [f"{c_type} t{k} = {line};" for k, line in enumerate(lines)]
    return "\n".join([*body, f"out = t{len(lines) - 1};"])


class Fuser:
    """CuPy elementwise kernels for one float dtype (no depth limit: one statement per op)."""

    max_depth = None

    def __init__(self, dtype: np.dtype, cupy: Any):
        self._dtype = np.dtype(dtype)
        self._cupy = cupy
        self.templates = TEMPLATES[self._dtype]

    def compile_program(self, lines: list[str], num_inputs: int) -> Any:
        """A kernel computing ``lines`` of ``v0..v{num_inputs-1}`` (broadcast together)
        elementwise: one launch for the whole tree."""
        name = self._dtype.name
        return self._cupy.ElementwiseKernel(
            ", ".join(f"{name} v{i}" for i in range(num_inputs)), f"{name} out",
            program_source(lines, _C_TYPES[self._dtype]), "gpugraph_fused")


def fuser(dtype: np.dtype, cupy: Any) -> Fuser | None:
    """The CUDA fuser for ``dtype`` (float32/float64), or None."""
    return Fuser(dtype, cupy) if np.dtype(dtype) in TEMPLATES else None
