"""Random ops: RandomUniform, RandomStandardNormal, TruncatedNormal, RandomUniformInt,
RandomShuffle, Multinomial.

TF's ``seed``/``seed2`` semantics hold: both zero means a fresh nondeterministic stream; any
other pair gives a stream that is the same in every new session and advances from run to run.
The numbers are numpy's (PCG64), not TF's Philox stream: a resumed run draws *different*
dropout masks and initial values than TF would, with the same distributions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
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


@op("RandomShuffle")
def _random_shuffle(ctx: BuildContext):
    # A permutation of the first dimension (drawn on the host, applied on the device).
    rng, device = _stream(ctx), ctx.device

    def kernel(value: Any) -> Any:
        if value.ndim == 0 or value.shape[0] < 2:
            return value
        return value[device.to_device(rng.permutation(value.shape[0]))]

    return kernel


@op("Multinomial", host_inputs=(1,))
def _multinomial(ctx: BuildContext):
    # One categorical draw per (row, sample) from softmax(logits[row]), by inverse CDF.
    rng, device, node = _stream(ctx), ctx.device, ctx.op
    out = np.dtype(ctx.attr_or("output_dtype", np.dtype(np.int64)))

    def kernel(logits: Any, num_samples: Any) -> Any:
        count = int(num_samples)
        host = np.asarray(device.to_host(logits), dtype=np.float64)
        if host.ndim != 2 or count < 0:
            raise errors.InvalidArgumentError(
                None, node, f"logits should be a matrix and num_samples >= 0, got logits shape "
                f"{list(host.shape)}, num_samples {count}")
        if host.shape[1] == 0:
            raise errors.InvalidArgumentError(
                None, node, "num_classes should be positive, got 0")
        shifted = np.exp(host - host.max(axis=1, keepdims=True)) if host.size else host
        cdf = np.cumsum(shifted, axis=1)
        draws = rng.random((host.shape[0], count)) * cdf[:, -1:] if host.size else \
            np.zeros((host.shape[0], count))
        samples = np.stack([np.searchsorted(row_cdf, row, side="right")
                            for row_cdf, row in zip(cdf, draws)]) if host.shape[0] else draws
        return device.to_device(np.minimum(samples, host.shape[1] - 1).astype(out))

    return kernel
