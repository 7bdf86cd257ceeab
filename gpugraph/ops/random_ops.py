"""Random ops: RandomUniform, RandomStandardNormal, TruncatedNormal, RandomUniformInt.

TF's ``seed``/``seed2`` semantics hold: both zero means a fresh nondeterministic stream; any
other pair gives a stream that is the same in every new session and advances from run to run.
The numbers are numpy's (PCG64), not TF's Philox stream: a resumed run draws *different*
dropout masks and initial values than TF would, with the same distributions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph.ops.registry import BuildContext, op


def _stream(ctx: BuildContext) -> np.random.Generator:
    return ctx.state.rng(ctx.name, ctx.attr_or("seed", 0), ctx.attr_or("seed2", 0))


def _dims(shape: Any) -> list[int]:
    return [int(d) for d in np.asarray(shape).reshape(-1)]


@op("RandomUniform", host_inputs=(0,))
def _random_uniform(ctx: BuildContext):
    rng, dtype, device = _stream(ctx), ctx.attr("dtype"), ctx.device
    return lambda shape: device.to_device(rng.random(_dims(shape), dtype=np.float64).astype(dtype))


@op("RandomStandardNormal", host_inputs=(0,))
def _random_normal(ctx: BuildContext):
    rng, dtype, device = _stream(ctx), ctx.attr("dtype"), ctx.device
    return lambda shape: device.to_device(rng.standard_normal(_dims(shape)).astype(dtype))


@op("TruncatedNormal", host_inputs=(0,))
def _truncated_normal(ctx: BuildContext):
    rng, dtype, device = _stream(ctx), ctx.attr("dtype"), ctx.device

    def kernel(shape: Any) -> Any:
        values = rng.standard_normal(_dims(shape))
        outside = np.abs(values) > 2  # TF redraws values more than 2 stddevs out
        while outside.any():
            values[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2
        return device.to_device(values.astype(dtype))

    return kernel


@op("RandomUniformInt", host_inputs=(0,))
def _random_uniform_int(ctx: BuildContext):
    rng, device = _stream(ctx), ctx.device
    out = ctx.out_dtype()
    return lambda shape, lo, hi: device.to_device(
        rng.integers(int(lo), int(hi), size=_dims(shape)).astype(out))
