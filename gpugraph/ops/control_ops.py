"""v1 control flow: Switch/RefSwitch and Merge (tf.cond's building blocks).

Dead tensors are the plan's business (:mod:`gpugraph.plan`): Switch emits ``DEAD`` on the
untaken port and Merge, registered as accepting dead inputs, forwards the live one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph.ops.registry import DEAD, BuildContext, op


@op("Switch", "RefSwitch", host_inputs=(1,))
def _switch(ctx: BuildContext):
    def kernel(data: Any, pred: Any) -> tuple:
        return (data, DEAD) if not bool(np.asarray(pred)) else (DEAD, data)

    return kernel


@op("Merge", "RefMerge", host_outputs=(1,))
def _merge(ctx: BuildContext):
    def kernel(*inputs: Any) -> tuple:
        for index, value in enumerate(inputs):
            if value is not DEAD:
                return value, np.int32(index)
        return DEAD, DEAD

    return kernel
