"""The plan stage: (fetches, feeds, targets) compiled into a flat list of steps on devices.

:func:`build_plan` (``build.py``) orders the needed nodes, builds each kernel for its device,
and runs the passes (``passes.py``, ``remap.py``, ``fusion.py``); :class:`Plan` (``steps.py``)
runs the generated code (``codegen.py``); v1 while loops are scheduled by ``frames.py`` and v2
function bodies compile to sub-plans in ``functions.py``.
"""

from gpugraph.plan.build import build_plan
from gpugraph.plan.steps import Plan, Step, as_host

__all__ = ["Plan", "Step", "as_host", "build_plan"]
