"""Fourier transforms over the innermost 1, 2 or 3 dimensions (FFT*, IFFT*, RFFT*, IRFFT*)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, op


def _complex_fft(ctx: BuildContext, rank: int, inverse: bool):
    xp = ctx.xp
    axes = tuple(range(-rank, 0))

    def kernel(x: Any) -> Any:
        fn = xp.fft.ifftn if inverse else xp.fft.fftn
        return fn(x, axes=axes).astype(x.dtype, copy=False)

    return kernel


def _real_fft(ctx: BuildContext, rank: int, inverse: bool):
    xp, node = ctx.xp, ctx.op
    axes = tuple(range(-rank, 0))
    out = ctx.attr_or("Treal" if inverse else "Tcomplex",
                      np.dtype(np.float32 if inverse else np.complex64))

    def kernel(x: Any, fft_length: Any) -> Any:
        lengths = [int(v) for v in np.asarray(fft_length).reshape(-1)]
        for i, n in enumerate(lengths):  # TF's raw ops crop but never pad their input
            dim = x.ndim - rank + i
            need = n // 2 + 1 if inverse and i == rank - 1 else n
            if x.shape[dim] < need:
                raise errors.InvalidArgumentError(
                    None, node, f"Input dimension {dim} must have length of at least {need} but "
                    f"got: {x.shape[dim]}")
        if inverse:
            return xp.fft.irfftn(x, s=lengths, axes=axes).astype(out, copy=False)
        # TF crops or zero-pads each transformed dimension to fft_length first
        return xp.fft.rfftn(x, s=lengths, axes=axes).astype(out, copy=False)

    return kernel


for _rank, _suffix in ((1, ""), (2, "2D"), (3, "3D")):
    op(f"FFT{_suffix}")(lambda ctx, r=_rank: _complex_fft(ctx, r, False))
    op(f"IFFT{_suffix}")(lambda ctx, r=_rank: _complex_fft(ctx, r, True))
    op(f"RFFT{_suffix}", host_inputs=(1,))(lambda ctx, r=_rank: _real_fft(ctx, r, False))
    op(f"IRFFT{_suffix}", host_inputs=(1,))(lambda ctx, r=_rank: _real_fft(ctx, r, True))
