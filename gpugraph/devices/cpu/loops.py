"""Single-pass CPU loops, compiled with numba, for memory-bound ops every training step repeats.

Kernel bodies are written once against the array module.  For most ops that is as fast as the
hardware allows, but an optimizer update written with array operations makes about ten passes
over every parameter (Adam: two temporaries per moment, a square root, a division), and on the
CPU those passes, not arithmetic, are its cost: 4.4 ms of a 24 ms MLP step.  TF's Eigen kernels
evaluate the whole formula in one pass.  These loops do the same: one pass, TF's formula and
order of operations, nothing reassociated (no ``fastmath``, so no FMA contraction either), so
they give the same bits as the array-module bodies; ``tests/runtime/test_cpu_loops.py`` checks
that, and ``GPUGRAPH_CPU_LOOPS=0`` turns them off.  The same holds for the other loops here:
Relu, ReluGrad, BiasAdd (channels last: numpy's broadcast add runs a C-element inner loop),
BiasAddGrad, MaxPool and tiled MaxPoolGrad (one pass instead of one per window tap),
Conv2DBackpropInput's col2im, the depthwise convolution and its two backprops (their images
split over threads by :func:`over_images`: each output element is still summed by one thread,
in the array body's order), and Erf/Erfc (numpy has no erf).  Inside a plan that owns the
cores (:mod:`cpu_threads`), the elementwise loops and the pooling loops split over threads too.

A loop runs only on the real CPU device (``xp is numpy``: virtual GPUs keep their device
checks), for C-contiguous float32/float64 arrays (of one shape where the op's inputs share
one); anything else runs the array-module body.  numba is a dependency, but where it cannot be
imported (no wheel for the platform, or a numpy newer than the installed numba supports)
everything still runs, on the array-module bodies.  Loops compile on first use (~0.5 s each)
and are cached on disk by numba.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gpugraph import config
from gpugraph._optional import optional_module
from gpugraph.devices.cpu import contention
from gpugraph.devices.cpu import crew as cpu_crew
from gpugraph.devices.cpu.fpenv import flush_denormals

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_compiled: dict[str, Callable[..., None]] = {}
_SPLIT_MIN = 1 << 15  # elements below which over_images runs a loop in the calling thread
_pool: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None  # (pid, pool)
_pool_lock = threading.Lock()


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


def _relu(out, x, zero):
    # numpy's maximum(x, 0), the array body: NaN stays NaN (its sign too), -0 becomes +0.
    for i in range(out.size):
        v = x[i]
        out[i] = v if v != v or v > zero else zero


def _relu_grad(out, g, features, zero):
    # gradients * (features > 0): a NaN or infinite gradient stays NaN where features <= 0.
    one = zero + 1
    for i in range(out.size):
        out[i] = g[i] * (one if features[i] > zero else zero)


def _bias_add(out, value, bias):
    # BiasAdd of channels-last rows [rows, C]: numpy's broadcast add, as one vectorized pass
    # (numpy's inner loop is only C elements long: 3x slower on W3's first convolution).
    for r in range(value.shape[0]):
        for k in range(value.shape[1]):
            out[r, k] = value[r, k] + bias[k]


def _bias_add_relu(out, value, bias, zero):
    # BiasAdd then Relu in one pass: each sum rounded as _bias_add's, then _relu's rule.
    for r in range(value.shape[0]):
        for k in range(value.shape[1]):
            v = value[r, k] + bias[k]
            out[r, k] = v if v != v or v > zero else zero


def _column_sums(out, rows):
    # BiasAddGrad of channels-last gradients: out[k] sums rows[:, k] top to bottom, the order of
    # numpy's reduction over the leading axes when there are two or more channels (with one,
    # numpy sums pairwise, so the caller keeps that case).  One pass instead of numpy's
    # strided one, 4x faster.
    zero = out.dtype.type(0)
    for k in range(out.size):
        out[k] = zero
    for r in range(rows.shape[0]):
        for k in range(rows.shape[1]):
            out[k] += rows[r, k]


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


def _depthwise(out, x, wt, sh, sw, dh, dw, pad_top, pad_left):
    # DepthwiseConv2dNative, multiplier M: out[n, y, x, c, m] sums the taps (i, j) in order, as
    # the array body adds them to zeros, one tap at a time over the zero-padded input.  Here a
    # tap in the padding multiplies a row of zeros (0 * w: NaN for a NaN weight, as there), so
    # no padded copy is made.  Each output pixel sums in `acc` [m, c] and is written once; the
    # filter comes as wt[i, j, m, c], so inner loops run along contiguous c.
    n, oh, ow, c, m = out.shape
    h, wd = x.shape[1], x.shape[2]
    kh, kw = wt.shape[0], wt.shape[1]
    for b in range(n):
        acc = np.empty((m, c), dtype=out.dtype)
        zeros = np.zeros(c, dtype=x.dtype)
        for y in range(oh):
            for xo in range(ow):
                acc[:] = 0
                for i in range(kh):
                    yy = y * sh + i * dh - pad_top
                    for j in range(kw):
                        xx = xo * sw + j * dw - pad_left
                        inside = 0 <= yy < h and 0 <= xx < wd
                        for q in range(m):  # direct indexing: no array views in the hot loop
                            if inside:
                                for k in range(c):
                                    acc[q, k] += x[b, yy, xx, k] * wt[i, j, q, k]
                            else:
                                for k in range(c):
                                    acc[q, k] += zeros[k] * wt[i, j, q, k]
                for q in range(m):
                    for k in range(c):
                        out[b, y, xo, k, q] = acc[q, k]


def _depthwise_backprop_input(dx, dy, wt, rows, cols):
    # DepthwiseConv2dNativeBackpropInput as a gather: each input position sums, from zero and
    # in tap order (i, j), what the taps that read it received, as the array body's tap-by-tap
    # scatter adds them; with M > 1 a tap's contribution is first summed over m, in order.
    # dy comes as [n, oh, ow, m, c] and the filter as wt[i, j, m, c] (c contiguous); rows[p, i]
    # (cols[p, j]) is the output row (column) that reads input row p through tap i, or -1.
    # 
    n, h, wd, c = dx.shape
    m = dy.shape[3]
    kh, kw = wt.shape[0], wt.shape[1]
    for b in range(n):
        acc = np.empty(c, dtype=dx.dtype)
        part = np.empty(c, dtype=dx.dtype)
        for py in range(h):
            for px in range(wd):
                acc[:] = 0
                for i in range(kh):
                    sy = rows[py, i]
                    if sy < 0:
                        continue
                    for j in range(kw):
                        sx = cols[px, j]
                        if sx < 0:
                            continue
                        if m == 1:
                            for k in range(c):
                                acc[k] += dy[b, sy, sx, 0, k] * wt[i, j, 0, k]
                            continue
                        for k in range(c):
                            part[k] = dy[b, sy, sx, 0, k] * wt[i, j, 0, k]
                        for q in range(1, m):
                            for k in range(c):
                                part[k] += dy[b, sy, sx, q, k] * wt[i, j, q, k]
                        for k in range(c):
                            acc[k] += part[k]
                for k in range(c):
                    dx[b, py, px, k] = acc[k]


def _depthwise_backprop_filter(parts, x, dy, sh, sw, dh, dw, pad_top, pad_left):
    # DepthwiseConv2dNativeBackpropFilter, per image: parts[b, i, j, m, c] sums tap (i, j)'s
    # products over the output positions in row-major order, starting from the first one, as
    # numpy's sum over axes (1, 2) of a contiguous product does (the array body; the images are
    # then summed in order by the caller, as numpy sums axis 0).  A tap in the padding
    # multiplies zeros, as the array body's padded input does.  dy comes as [n, oh, ow, m, c].
    n, oh, ow, m, c = dy.shape
    h, wd = x.shape[1], x.shape[2]
    kh, kw = parts.shape[1], parts.shape[2]
    for b in range(n):
        zeros = np.zeros(c, dtype=x.dtype)
        for y in range(oh):
            for xo in range(ow):
                first = y == 0 and xo == 0
                for i in range(kh):
                    yy = y * sh + i * dh - pad_top
                    for j in range(kw):
                        xx = xo * sw + j * dw - pad_left
                        inside = 0 <= yy < h and 0 <= xx < wd
                        for q in range(m):
                            if first:
                                for k in range(c):
                                    v = x[b, yy, xx, k] if inside else zeros[k]
                                    parts[b, i, j, q, k] = v * dy[b, y, xo, q, k]
                            elif inside:
                                for k in range(c):
                                    parts[b, i, j, q, k] += x[b, yy, xx, k] * dy[b, y, xo, q, k]
                            else:
                                for k in range(c):
                                    parts[b, i, j, q, k] += zeros[k] * dy[b, y, xo, q, k]


def _max_pool(out, xpad, kh, kw, sh, sw, dh, dw):
    # MaxPool of padded channels-last xpad: max_over_taps' elementwise maximum, tap by tap in
    # row-major order, with numpy's rule (the running maximum if it is NaN or larger, else the
    # tap), but in one pass over the output instead of one per tap.
    n, oh, ow, c = out.shape
    for b in range(n):
        for p in range(oh):
            for q in range(ow):
                for k in range(c):
                    out[b, p, q, k] = xpad[b, p * sh, q * sw, k]
                for i in range(kh):
                    for j in range(kw):
                        if i + j == 0:
                            continue
                        for k in range(c):
                            m = out[b, p, q, k]
                            v = xpad[b, p * sh + i * dh, q * sw + j * dw, k]
                            out[b, p, q, k] = m if m != m or m > v else v


def _pad_images(out, x, top, left, value):
    # np.pad of channels-last images in their two spatial axes: x lands at (top, left) of
    # out, every other element is value.  One pass that a plan owning the cores splits over
    # images (np.pad is one thread, and ran ~3x slower inside W3's step than alone).
    n, h, w, c = x.shape
    ph, pw = out.shape[1], out.shape[2]
    for b in range(n):
        for i in range(ph):
            if i < top or i >= top + h:
                for j in range(pw):
                    for k in range(c):
                        out[b, i, j, k] = value
                continue
            for j in range(left):
                for k in range(c):
                    out[b, i, j, k] = value
            for j in range(w):
                for k in range(c):
                    out[b, i, left + j, k] = x[b, i - top, j, k]
            for j in range(left + w, pw):
                for k in range(c):
                    out[b, i, j, k] = value


def _max_pool_grad_tiles(x, y, dy, out, kh, kw, relu_grad, zero):
    # MaxPoolGrad where the windows tile the input: each window's first tap (row-major) equal
    # to the pooled value gets the gradient, every other input position gets zero.  No
    # short-circuit in the test, so the channel loop vectorizes.  ``relu_grad``: then times
    # (x > 0), as ReluGrad with features x does (g * 0 where x <= 0: -0 for a negative g, NaN
    # for a NaN or infinite one).
    n, oh, ow, c = y.shape
    taken = np.empty(c, dtype=np.bool_)
    for b in range(n):
        for p in range(oh):
            for q in range(ow):
                taken[:] = False
                for i in range(kh):
                    for j in range(kw):
                        for k in range(c):
                            v = x[b, p * kh + i, q * kw + j, k]
                            hit = (v == y[b, p, q, k]) & ~taken[k]
                            g = dy[b, p, q, k] if hit else zero
                            if relu_grad and not v > zero:
                                g = g * zero
                            out[b, p * kh + i, q * kw + j, k] = g
                            taken[k] = taken[k] | hit


_SOURCES: dict[str, Callable[..., None]] = {
    "adam": _adam, "momentum": _momentum, "rms_prop": _rms_prop,
    "centered_rms_prop": _centered_rms_prop, "adagrad": _adagrad, "relu": _relu,
    "relu_grad": _relu_grad, "bias_add": _bias_add, "bias_add_relu": _bias_add_relu,
    "col2im": _col2im, "column_sums": _column_sums, "erf": _erf, "depthwise": _depthwise,
    "depthwise_backprop_input": _depthwise_backprop_input,
    "depthwise_backprop_filter": _depthwise_backprop_filter,
    "max_pool": _max_pool, "max_pool_grad_tiles": _max_pool_grad_tiles,
    "pad_images": _pad_images}


# --- selection ---------------------------------------------------------------------------------
def get(name: str, xp: Any) -> Callable[..., None] | None:
    """The compiled loop ``name`` for kernels on array module ``xp``, or None where loops do not
    apply (not the real CPU, ``GPUGRAPH_CPU_LOOPS=0``, numba unavailable)."""
    if xp is not np or not config.settings.cpu_loops:
        return None
    fn = _compiled.get(name)
    if fn is None:
        numba = optional_module("numba")
        if numba is None:
            return None
        fn = _compiled[name] = numba.njit(_SOURCES[name], cache=True, nogil=True,
                                          error_model="numpy")
    return fn


def threads() -> int:
    """Threads a loop may split its images over: ``GPUGRAPH_CPU_THREADS``, else the CPUs this
    process may run on (its affinity mask, capped by a cgroup CPU quota: a container given 1.5
    CPUs of a 64-core host gets 2 threads, not 64) less those other processes keep busy
    (:mod:`contention`)."""
    configured = config.settings.cpu_threads
    if configured:
        return max(1, configured)
    # (fewer threads beat a dynamic split here: W3 beside one busy process on 2 cores ran
    # 58 ms a step on 1 thread, 62-65 ms on 2 sharing out units of work)
    return contention.free_cores(cores())


def cores() -> int:
    """The CPUs this process may run on (affinity, cgroup quota), read once."""
    if not _cores:
        try:
            count = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            count = os.cpu_count() or 1
        quota = cgroup_cpus()
        _cores.append(max(1, min(count, math.ceil(quota)) if quota else count))
    return _cores[0]


_cores: list[int] = []  # the CPUs this process may use, once read


def cgroup_cpus(root: str = "/sys/fs/cgroup") -> float | None:
    """The CPUs a cgroup quota allows this process (``cpu.max``, or v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), None without a quota."""
    for quota_file, period_file in ((f"{root}/cpu.max", None),
                                    (f"{root}/cpu/cpu.cfs_quota_us",
                                     f"{root}/cpu/cpu.cfs_period_us")):
        try:
            with open(quota_file) as f:
                fields = f.read().split()
            if period_file:
                with open(period_file) as f:
                    fields.append(f.read().strip())
        except OSError:
            continue
        if len(fields) >= 2 and fields[0] not in ("max", "-1"):
            try:
                return int(fields[0]) / int(fields[1])
            except (ValueError, ZeroDivisionError):
                return None
        return None
    return None


def over_images(loop: Callable[..., None], args: Sequence[Any], batched: Sequence[int]) -> None:
    """``loop(*args)`` with the arrays at positions ``batched`` split along axis 0 (images)
    into one chunk per thread.

    For loops whose images are independent (each output element is written by one chunk, in
    the same order as unsplit), so the bits don't depend on the split.  Compiled loops release
    the GIL, so the chunks run in parallel.  Plain Python threads rather than numba's parallel
    mode: its OpenMP workers spin between launches, which halved the speed of the BLAS calls
    around them (W3), and numba's own workqueue is neither thread- nor fork-safe.
    """
    n = args[batched[0]].shape[0]
    count = min(threads(), n)
    if count <= 1 or max(args[i].size for i in batched) < _SPLIT_MIN:
        loop(*args)
        return
    bounds = [n * t // count for t in range(count + 1)]

    def chunk(t: int) -> None:
        part = list(args)
        for i in batched:
            part[i] = args[i][bounds[t]:bounds[t + 1]]
        loop(*part)

    in_parallel([lambda t=t: chunk(t) for t in range(count)])


def in_parallel(calls: Sequence[Callable[[], Any]]) -> None:
    """Runs ``calls``: the first on this thread, the others on gpugraph's CPU worker threads
    (with denormals flushed, as on the plan's thread); returns when all are done, re-raising
    the first exception.  For calls that release the GIL (compiled loops, BLAS)."""
    crew = cpu_crew.get()
    if crew is not None:
        crew.in_parallel(calls)
        return
    futures = [_executor().submit(_flushed, call) for call in calls[1:]]
    try:
        calls[0]()
    finally:
        concurrent.futures.wait(futures)
    for future in futures:
        future.result()  # re-raises a call's exception


def _flushed(call: Callable[[], Any]) -> None:
    with flush_denormals():  # worker threads don't inherit the plan thread's MXCSR flags
        call()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    # One pool per process: a forked child has none of its parent's threads, so it makes its own.
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            workers = max(1, threads() - 1)
            _pool = (os.getpid(), concurrent.futures.ThreadPoolExecutor(
                workers, thread_name_prefix="gpugraph-cpu"))
        return _pool[1]


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

