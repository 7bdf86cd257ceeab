"""Elementwise trees on the CPU as one numexpr program (the CPU's fuser, ``Device.fuser``).

A numpy ufunc call costs ~0.25 us however small its arrays, which is more than TF spends per
node on a long chain of tiny elementwise ops.  numexpr's virtual machine evaluates a whole
expression at ~0.1 us per op with no intermediate arrays, in the chain's own float type (so
results agree with the unfused kernels to within rounding of tanh/exp).  numexpr is optional:
without it CPU chains stay unfused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # optional: an installed numexpr enables fusion
    import numexpr
except ImportError:  # pragma: no cover - exercised where numexpr is absent
    numexpr = None

TEMPLATES = {
    "Add": "({0} + {1})", "AddV2": "({0} + {1})", "Sub": "({0} - {1})", "Mul": "({0} * {1})",
    "RealDiv": "({0} / {1})", "Neg": "(-{0})", "Tanh": "tanh({0})", "Exp": "exp({0})",
    "Log": "log({0})", "Sqrt": "sqrt({0})", "Square": "({0} * {0})", "Abs": "abs({0})",
}
_KINDS = {np.dtype(np.float32): float, np.dtype(np.float64): np.float64}


class Fuser:
    """numexpr programs for one float dtype."""

    templates = TEMPLATES

    def __init__(self, dtype: np.dtype):
        self._kind = _KINDS[np.dtype(dtype)]

    def compile(self, expression: str, num_inputs: int) -> Any | None:
        """The program for ``expression`` of ``v0..v{num_inputs-1}``, or None where numexpr
        cannot compile it (the tree then stays as separate steps)."""
        signature = [(f"v{i}", self._kind) for i in range(num_inputs)]
        try:
            program = numexpr.NumExpr(expression, signature=signature)
        except Exception:  # noqa: BLE001  (anything numexpr can't compile stays unfused)
            return None

        def fused(*args: Any) -> Any:
            return program(*args)

        return fused


def fuser(dtype: np.dtype) -> Fuser | None:
    """The CPU's fuser for ``dtype`` (float32/float64 with numexpr installed), or None."""
    if numexpr is None or np.dtype(dtype) not in _KINDS:
        return None
    return Fuser(dtype)
