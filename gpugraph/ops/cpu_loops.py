"""Single-pass CPU loops, compiled with numba, for memory-bound ops every training step repeats.

Kernel bodies are written once against the array module.  For most ops that is as fast as the
hardware allows, but an optimizer update written with array operations makes about ten passes
over every parameter (Adam: two temporaries per moment, a square root, a division), and on the
CPU those passes, not arithmetic, are its cost: 4.4 ms of a 24 ms MLP step.  TF's Eigen kernels
evaluate the whole formula in one pass.  These loops do the same: one pass, TF's formula and
order of operations, nothing reassociated (no ``fastmath``, so no FMA contraction either), so
they give the same bits as the array-module bodies; ``tests/runtime/test_cpu_loops.py`` checks
that, and ``GPUGRAPH_CPU_LOOPS=0`` turns them off.  The same holds for the other loops here:
ReluGrad, Conv2DBackpropInput's col2im, tiled MaxPoolGrad, the depthwise convolution, and
Erf/Erfc (numpy has no erf).

A loop runs only on the real CPU device (``xp is numpy``: virtual GPUs keep their device
checks), for C-contiguous float32/float64 arrays (of one shape where the op's inputs share
one); anything else runs the array-module body.  numba is a dependency, but where it cannot be
imported (no wheel for the platform, or a numpy newer than the installed numba supports)
everything still runs, on the array-module bodies.  Loops compile on first use (~0.5 s each)
and are cached on disk by numba.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_numba: Any = None  # the module once imported; False when it cannot be
_compiled: dict[str, Callable[..., None]] = {}


# --- the loops (plain Python; compiled by numba on first use) ---------------------------------
def _adam(var, m, v, g, alpha, one_minus_beta1, one_minus_beta2, epsilon, beta1, nesterov):
    # training_ops.cc ApplyAdamNonCuda: m += (g - m) * (1 - beta1); v += (g*g - v) * (1 - beta2);
    # var -= (m * alpha) / (sqrt(v) + epsilon), nesterov: (g * (1 - beta1) + beta1 * m) for m.
    for i in range(var.size):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * one_minus_beta1
        vi = v[i] + (gi * gi - v[i]) * one_minus_beta2
        m[i] = mi
        v[i] = vi
        step = gi * one_minus_beta1 + beta1 * mi if nesterov else mi
        var[i] -= (step * alpha) / (math.sqrt(vi) + epsilon)


def _momentum(var, accum, g, lr, momentum, nesterov):
    # accum = accum * momentum + g; var -= accum * lr, nesterov: g * lr + accum * momentum * lr.
    for i in range(var.size):
        a = accum[i] * momentum + g[i]
        accum[i] = a
        var[i] -= g[i] * lr + a * momentum * lr if nesterov else a * lr


def _rms_prop(var, ms, mom, g, lr, one_minus_rho, momentum, epsilon):
    # ms += (g*g - ms) * (1 - rho); mom = mom * momentum + (g * lr) / sqrt(ms + epsilon); var -= mom
    for i in range(var.size):
        gi = g[i]
        s = ms[i] + (gi * gi - ms[i]) * one_minus_rho
        ms[i] = s
        m = mom[i] * momentum + (gi * lr) / math.sqrt(s + epsilon)
        mom[i] = m
        var[i] -= m


def _centered_rms_prop(var, mg, ms, mom, g, lr, one_minus_rho, momentum, epsilon):
    # As RMSProp, with mg += (g - mg) * (1 - rho) and ms - mg*mg under the square root.
    for i in range(var.size):
        gi = g[i]
        s = ms[i] + (gi * gi - ms[i]) * one_minus_rho
        a = mg[i] + (gi - mg[i]) * one_minus_rho
        ms[i] = s
        mg[i] = a
        m = mom[i] * momentum + (gi * lr) / math.sqrt((s - a * a) + epsilon)
        mom[i] = m
        var[i] -= m


def _adagrad(var, accum, g, lr, one, update_slots):
    # accum += g*g (when update_slots); var -= g * lr * (1 / sqrt(accum)).
    for i in range(var.size):
        gi = g[i]
        a = accum[i] + gi * gi if update_slots else accum[i]
        accum[i] = a
        var[i] -= gi * lr * (one / math.sqrt(a))


def _erf(out, x, complement):
    # numba compiles math.erf/erfc (numpy has neither); in double, then rounded once, like the
    # array body's math.erf on Python floats.
    for i in range(out.size):
        v = np.float64(x[i])
        out[i] = math.erfc(v) if complement else math.erf(v)


def _relu_grad(out, g, features, zero):
    # gradients * (features > 0): a NaN or infinite gradient stays NaN where features <= 0.
    one = zero + 1
    for i in range(out.size):
        out[i] = g[i] * (one if features[i] > zero else zero)


def _col2im(cols, dxpad, kh, kw, sh, sw, dh, dw):
    # Conv2DBackpropInput's scatter of patch gradients cols[n, oh, ow, (i, j, c)] into the padded
    # input gradient, tap by tap as the array body adds them (so every element sums in the same
    # order), one image at a time (its patches stay in cache).
    n, oh, ow, _ = cols.shape
    c = dxpad.shape[3]
    for b in range(n):
        for i in range(kh):
            for j in range(kw):
                base = (i * kw + j) * c
                for y in range(oh):
                    for x in range(ow):
                        for k in range(c):
                            dxpad[b, y * sh + i * dh, x * sw + j * dw, k] += cols[b, y, x, base + k]


def _depthwise(out, xpad, w, sh, sw, dh, dw):
    # DepthwiseConv2dNative, multiplier M: out[n, y, x, c, m] sums the taps (i, j) in order, as
    # the array body adds them (from zero, one tap at a time); c innermost, contiguous.
    n, oh, ow, c, m = out.shape
    kh, kw = w.shape[0], w.shape[1]
    for b in range(n):
        for y in range(oh):
            for x in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        row = xpad[b, y * sh + i * dh, x * sw + j * dw]
                        tap = w[i, j]
                        for q in range(m):
                            for k in range(c):
                                out[b, y, x, k, q] += row[k] * tap[k, q]


def _max_pool_grad_tiles(x, y, dy, out, kh, kw, taken):
    # MaxPoolGrad where the windows tile the input: each window's first tap (row-major) equal
    # to the pooled value gets the gradient, every other input position gets zero.
    n, oh, ow, c = y.shape
    for b in range(n):
        for p in range(oh):
            for q in range(ow):
                taken[:] = False
                for i in range(kh):
                    for j in range(kw):
                        for k in range(c):
                            hit = not taken[k] and x[b, p * kh + i, q * kw + j, k] == y[b, p, q, k]
                            out[b, p * kh + i, q * kw + j, k] = dy[b, p, q, k] if hit else 0
                            taken[k] = taken[k] or hit


_SOURCES: dict[str, Callable[..., None]] = {
    "adam": _adam, "momentum": _momentum, "rms_prop": _rms_prop,
    "centered_rms_prop": _centered_rms_prop, "adagrad": _adagrad, "relu_grad": _relu_grad,
    "col2im": _col2im, "erf": _erf, "depthwise": _depthwise,
    "max_pool_grad_tiles": _max_pool_grad_tiles}


# --- selection ---------------------------------------------------------------------------------
def get(name: str, xp: Any) -> Callable[..., None] | None:
    """The compiled loop ``name`` for kernels on array module ``xp``, or None where loops do not
    apply (not the real CPU, ``GPUGRAPH_CPU_LOOPS=0``, numba unavailable)."""
    if xp is not np or os.environ.get("GPUGRAPH_CPU_LOOPS", "1") == "0":
        return None
    fn = _compiled.get(name)
    if fn is None:
        numba = _import_numba()
        if numba is None:
            return None
        fn = _compiled[name] = numba.njit(_SOURCES[name], cache=True, nogil=True,
                                          error_model="numpy")
    return fn


def fits(*arrays: Any, same_shape: bool = True) -> bool:
    """Whether a loop can take ``arrays``: numpy, C-contiguous, one float dtype (and, unless
    ``same_shape`` is False, one shape)."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.dtype not in _FLOATS:
        return False
    return all(type(a) is np.ndarray and a.dtype == first.dtype and a.flags.c_contiguous
               and (a.shape == first.shape or not same_shape) for a in arrays)


def flat(array: np.ndarray) -> np.ndarray:
    """A 1-D view of a C-contiguous array (writes go to ``array``)."""
    return array.reshape(-1)


def _import_numba() -> Any:
    global _numba
    if _numba is None:
        try:
            import numba
        except Exception:  # noqa: BLE001 - ImportError, or numba refusing this numpy version
            numba = False
        _numba = numba
    return _numba or None
