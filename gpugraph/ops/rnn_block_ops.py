"""TF's fused RNN block ops: the kernels behind ``tf.contrib.rnn``'s LSTMBlockCell,
LSTMBlockFusedCell and GRUBlockCell, and their gradients (TF 2.21 core still registers them;
tensorflow/core/kernels/rnn/lstm_ops.cc and gru_ops.cc).

One LSTM step (LSTMBlockCell; BlockLSTM and BlockLSTMV2 run it over the time axis)::

    gates = [x, h_prev] @ w + b                   4 blocks of cell_size columns
    i  = sigmoid(gates_i + cs_prev * wci)         peephole terms only with use_peephole
    ci = tanh(gates_c)
    f  = sigmoid(gates_f + forget_bias + cs_prev * wcf)
    cs = clip(i * ci + f * cs_prev, cell_clip)
    co = tanh(cs)
    o  = sigmoid(gates_o + cs * wco)              the peephole reads the new (clipped) cs
    h  = o * co

One GRU step (GRUBlockCell)::

    r, u = split(sigmoid([x, h_prev] @ w_ru + b_ru))
    c  = tanh([x, h_prev * r] @ w_c + b_c)
    h  = u * (h_prev - c) + c

What TF 2.21's CPU kernels do, checked against them (scripts/make_rnn_block_fixtures.py records
the cases; the rest was probed with tf.raw_ops in the TF environment):

* Gate layout: LSTMBlockCell, its gradient's ``dicfo``, BlockLSTM and BlockLSTMGrad order the
  blocks i, c, f, o; BlockLSTMV2 and BlockLSTMGradV2 order them i, f, c, o and have no
  forget_bias (it is 0).
* cell_clip clips cs to [-cell_clip, cell_clip] only when it is > 0: BlockLSTMV2's default 0
  and contrib's "no clip" -1 leave cs alone; LSTMBlockCell's and BlockLSTM's default is 3.  The
  gradients ignore the clip (they do not zero where cs was clipped).
* BlockLSTM(V2) runs seq_len_max steps; cs and h are zero past them, while TF leaves i, f, o, ci
  and co there uninitialized (garbage): these kernels write zeros.  BlockLSTMGrad(V2) starts at
  step seq_len_max - 1, so cs_grad and h_grad of later steps are ignored, and x_grad is zero past
  it; each step adds cs_grad[t] and h_grad[t] to the gradients carried from step t + 1.  A
  seq_len_max below 0 or above the time length aborts TF's process (CHECK failure); here it is
  an InvalidArgumentError.
* Peepholes (wci, wcf, wco) are read only with use_peephole.  LSTMBlockCell(Grad) and
  BlockLSTMGrad do not check their length and read the first cell_size entries; their gradients
  have the input's shape, zero past cell_size (LSTMBlockCellGrad zero-fills; BlockLSTMGrad leaves
  those entries uninitialized: zeros here) and all zero without use_peephole.  BlockLSTMGrad
  checks b only by ``b.dim_size(0) / 4 == cell_size`` (integer division); b_grad has b's shape.
* GRUBlockCellGrad's kernel computes ``d_u_bar = d_h * (h_prev - c) * u * (1 - u)`` and
  ``d_h_prev = (d_r_bar_u_bar @ w_ru^T)[:, input:] + d_hr * r + d_h * u``, not the ``h - c``
  and ``+ u`` its op doc writes.  The GRU ops are float32 only, the LSTM ops float16/float32.
* Error messages and the order of the checks are TF's, quirks included: LSTMBlockCellGrad reports
  a bad f.dim_size(1) as ``i.dim_size(1) ...``, GRU ops name w_ru ``w_ru_`` and c ``w_c`` in
  their rank messages.  Where TF does not check and then aborts or reads out of bounds (ranks of
  LSTMBlockCell(Grad)'s inputs, BlockLSTMGrad's state and sequence shapes, short peepholes),
  these kernels raise an InvalidArgumentError of their own after TF's checks.

Precision: the elementwise arithmetic runs in the input dtype (float16 rounds after every
operation, as Eigen's half does), sigmoid and tanh of float16 in float32 rounded once (as
Eigen's).  Matmuls and sums over the batch accumulate in float32 for float16, as TF's GPU
kernels do; TF's CPU kernels round every multiply-add of a float16 matmul to half, so float16
results agree with TF's CPU to a few ulps (within the float16 test tolerance), float32 results
to float32 rounding (the gradients bit for bit in the fixtures).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpugraph import errors
from gpugraph.ops.registry import BuildContext, op

# Where each gate's block of cell_size columns sits, as (i, c, f, o) block indices.
ICFO = (0, 1, 2, 3)  # LSTMBlockCell, BlockLSTM and their gradients
IFCO = (0, 2, 1, 3)  # BlockLSTMV2, BlockLSTMGradV2

_SEQ_NAMES = ("i", "cs", "f", "o", "ci", "co", "h")  # BlockLSTMGrad's per-step inputs


# --- checks ----------------------------------------------------------------------------------
def _fail(node: Any, message: str) -> errors.InvalidArgumentError:
    return errors.InvalidArgumentError(None, node, message)


def _dim(node: Any, name: str, value: Any, axis: int) -> int:
    """``value.shape[axis]``; where TF would read a dimension the tensor lacks (and abort),
    an error instead."""
    if value.ndim <= axis:
        raise _fail(node, f"{name} must have at least {axis + 1} dimensions, got {value.ndim}")
    return int(value.shape[axis])


def _expect(node: Any, what: str, got: int, want: int) -> None:
    """TF's ``<what>: <got> vs. <want>`` check."""
    if got != want:
        raise _fail(node, f"{what}: {got} vs. {want}")


def _expect_rank(node: Any, name: str, value: Any, rank: int) -> None:
    """A rank TF does not check (it would abort): gpugraph's own message."""
    if value.ndim != rank:
        raise _fail(node, f"{name} must be rank {rank} but is rank {value.ndim}")


def _check_peepholes(node: Any, peepholes: tuple, cell: int, use_peephole: bool) -> None:
    """With use_peephole TF reads cell_size entries of each peephole vector, unchecked."""
    for name, value in zip(("wci", "wcf", "wco"), peepholes, strict=True):
        _expect_rank(node, name, value, 1)
        if use_peephole and value.shape[0] < cell:
            raise _fail(node, f"{name}.dim_size(0) < cell_size: {value.shape[0]} vs. {cell}")


# --- shared math -------------------------------------------------------------------------------
class _Math:
    """The dtype-aware pieces of the kernels: for float16 inputs, matmuls and batch sums
    accumulate in float32 and sigmoid/tanh run in float32; everything else runs in the input
    dtype."""

    def __init__(self, xp: Any):
        self.xp = xp

    def matmul(self, a: Any, b: Any) -> Any:
        if a.dtype.itemsize >= 4:
            return a @ b
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(a.dtype)

    def colsum(self, a: Any) -> Any:
        acc = np.float32 if a.dtype.itemsize < 4 else a.dtype
        return self.xp.sum(a, axis=0, dtype=acc).astype(a.dtype, copy=False)

    def sigmoid(self, x: Any) -> Any:
        # exp(-|x|) never overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below.  float16 is
        # computed in float32 and rounded once, as Eigen's half functions are.
        xp, wide = self.xp, self._wide(x)
        e = xp.exp(-xp.abs(wide))
        one = e.dtype.type(1)
        return (xp.where(wide >= 0, one, e) / (one + e)).astype(x.dtype, copy=False)

    def tanh(self, x: Any) -> Any:
        return self.xp.tanh(self._wide(x)).astype(x.dtype, copy=False)

    @staticmethod
    def _wide(x: Any) -> Any:
        return x.astype(np.float32) if x.dtype.itemsize < 4 else x

    def concat(self, a: Any, b: Any) -> Any:
        return self.xp.concatenate([a, b], axis=1)


def _blocks(gates: Any, cell: int, layout: tuple) -> list:
    """The (i, c, f, o) column blocks of ``gates`` in ``layout``."""
    return [gates[:, k * cell:(k + 1) * cell] for k in layout]


def _join(m: _Math, parts: list, layout: tuple) -> Any:
    """(i, c, f, o) blocks back into one gates-shaped matrix in ``layout``."""
    ordered = [None] * 4
    for part, k in zip(parts, layout, strict=True):
        ordered[k] = part
    return m.xp.concatenate(ordered, axis=1)


# --- LSTM step -----------------------------------------------------------------------------------
class _LSTMConfig:
    """A node's LSTM attrs: forget_bias (0 for V2), cell_clip, use_peephole, gate layout."""

    def __init__(self, ctx: BuildContext, layout: tuple, grad: bool):
        self.layout = layout
        self.use_peephole = bool(ctx.attr_or("use_peephole", False))
        self.forget_bias = 0.0 if grad else float(ctx.attr_or("forget_bias", 0.0))
        self.cell_clip = 0.0 if grad else float(ctx.attr_or("cell_clip", 0.0))


def _lstm_step(m: _Math, cfg: _LSTMConfig, x: Any, cs_prev: Any, h_prev: Any, w: Any,
               peepholes: tuple, b: Any) -> tuple:
    """One LSTMBlockCell step: (i, cs, f, o, ci, co, h)."""
    cell, dt = cs_prev.shape[1], x.dtype.type
    gates = m.matmul(m.concat(x, h_prev), w) + b
    g_i, g_c, g_f, g_o = _blocks(gates, cell, cfg.layout)
    g_f = g_f + dt(cfg.forget_bias)  # TF adds the bias before the peephole term
    if cfg.use_peephole:
        wci, wcf, wco = (p[:cell] for p in peepholes)
        g_i, g_f = g_i + cs_prev * wci, g_f + cs_prev * wcf
    i, f, ci = m.sigmoid(g_i), m.sigmoid(g_f), m.tanh(g_c)
    cs = i * ci + f * cs_prev
    if cfg.cell_clip > 0:
        cs = m.xp.clip(cs, dt(-cfg.cell_clip), dt(cfg.cell_clip))
    if cfg.use_peephole:
        g_o = g_o + cs * wco
    o, co = m.sigmoid(g_o), m.tanh(cs)
    return i, cs, f, o, ci, co, o * co


def _lstm_step_grad(m: _Math, cfg: _LSTMConfig, cs_prev: Any, gates: tuple, cs_grad: Any,
                    h_grad: Any, peepholes: tuple) -> tuple:
    """TF's LSTMBlockCellBprop: (dgates in the layout, cs_prev_grad, (di, df, do)).

    ``gates``: the step's (i, cs, f, o, ci, co); the clip is not undone (TF does not)."""
    i, cs, f, o, ci, co = gates
    one, cell = i.dtype.type(1), i.shape[1]
    d_o = o * (one - o) * h_grad * co
    dcs = (one - co * co) * h_grad * o + cs_grad
    if cfg.use_peephole:
        wci, wcf, wco = (p[:cell] for p in peepholes)
        dcs = dcs + d_o * wco
    dci = (one - ci * ci) * dcs * i
    df = f * (one - f) * dcs * cs_prev
    di = i * (one - i) * dcs * ci
    cs_prev_grad = dcs * f
    if cfg.use_peephole:
        cs_prev_grad = cs_prev_grad + di * wci + df * wcf
    return _join(m, [di, dci, df, d_o], cfg.layout), cs_prev_grad, (di, df, d_o)


def _add_peephole_grads(m: _Math, grads: list, cs_prev: Any, cs: Any, partials: tuple) -> None:
    """Adds one step's sums (di * cs_prev, df * cs_prev, do * cs) to the first cell_size
    entries of the peephole gradients (which keep their inputs' shapes)."""
    di, df, d_o = partials
    cell = cs.shape[1]
    for grad, term in zip(grads, (di * cs_prev, df * cs_prev, d_o * cs), strict=True):
        grad[:cell] += m.colsum(term)


# --- LSTMBlockCell ---------------------------------------------------------------------------
def _check_lstm_cell(node: Any, x: Any, cs_prev: Any, h_prev: Any, w: Any, b: Any) -> tuple:
    """LSTMBlockCell(Grad)'s checks on the step inputs, in TF's order: (batch, input, cell)."""
    batch, inputs = _dim(node, "x", x, 0), _dim(node, "x", x, 1)
    cell = _dim(node, "cs_prev", cs_prev, 1)
    _expect(node, "cs_prev.dims(0) != batch_size", _dim(node, "cs_prev", cs_prev, 0), batch)
    _expect(node, "h_prev.dims(0) != batch_size", _dim(node, "h_prev", h_prev, 0), batch)
    _expect(node, "h_prev.dims(1) != cell_size", _dim(node, "h_prev", h_prev, 1), cell)
    _expect(node, "w.dim_size(0) != input_size + cell_size", _dim(node, "w", w, 0),
            inputs + cell)
    _expect(node, "w.dim_size(1) != cell_size * 4", _dim(node, "w", w, 1), cell * 4)
    _expect(node, "b.dim_size(0) != cell_size * 4", _dim(node, "b", b, 0), cell * 4)
    return batch, inputs, cell


def _check_ranks(node: Any, named: dict) -> None:
    """Ranks TF's cell kernels take for granted: matrices but the vector b."""
    for name, value in named.items():
        _expect_rank(node, name, value, 1 if name == "b" else 2)


@op("LSTMBlockCell")
def _lstm_block_cell(ctx: BuildContext):
    m, node, cfg = _Math(ctx.xp), ctx.op, _LSTMConfig(ctx, ICFO, grad=False)

    def kernel(x, cs_prev, h_prev, w, wci, wcf, wco, b):
        _, _, cell = _check_lstm_cell(node, x, cs_prev, h_prev, w, b)
        for name, value in (("wci", wci), ("wcf", wcf), ("wco", wco)):
            if value.ndim != 1:
                raise _fail(node, f"{name}_tensor must be rank 1 but is rank {value.ndim}.")
        _check_ranks(node, {"x": x, "cs_prev": cs_prev, "h_prev": h_prev, "w": w, "b": b})
        _check_peepholes(node, (wci, wcf, wco), cell, cfg.use_peephole)
        return _lstm_step(m, cfg, x, cs_prev, h_prev, w, (wci, wcf, wco), b)

    return kernel


def _check_lstm_cell_grad(node: Any, batch: int, cell: int, gates: tuple, cs_grad: Any,
                          h_grad: Any) -> None:
    """LSTMBlockCellGrad's checks on i, cs, f, o, ci, co and the incoming gradients."""
    for name, value in zip(("i", "cs", "f", "o", "ci", "co"), gates, strict=True):
        _expect(node, f"{name}.dim_size(0) != batch_size", _dim(node, name, value, 0), batch)
        label = "i" if name == "f" else name  # TF's message for f's check names i
        _expect(node, f"{label}.dim_size(1) != cell_size", _dim(node, name, value, 1), cell)
    for name, value in (("cs_grad", cs_grad), ("h_grad", h_grad)):
        _expect(node, f"{name}_tensor.dims(0) != batch_size", _dim(node, name, value, 0), batch)
        _expect(node, f"{name}_tensor.dims(1) != cell_size", _dim(node, name, value, 1), cell)


@op("LSTMBlockCellGrad")
def _lstm_block_cell_grad(ctx: BuildContext):
    m, node, cfg = _Math(ctx.xp), ctx.op, _LSTMConfig(ctx, ICFO, grad=True)

    def kernel(x, cs_prev, h_prev, w, wci, wcf, wco, b, i, cs, f, o, ci, co, cs_grad, h_grad):
        gates = (i, cs, f, o, ci, co)
        batch, _, cell = _check_lstm_cell(node, x, cs_prev, h_prev, w, b)
        _check_lstm_cell_grad(node, batch, cell, gates, cs_grad, h_grad)
        _check_ranks(node, {"x": x, "cs_prev": cs_prev, "h_prev": h_prev, "w": w, "b": b,
                            **dict(zip(("i", "cs", "f", "o", "ci", "co"), gates, strict=True)),
                            "cs_grad": cs_grad, "h_grad": h_grad})
        peepholes = (wci, wcf, wco)
        _check_peepholes(node, peepholes, cell, cfg.use_peephole)
        dicfo, cs_prev_grad, partials = _lstm_step_grad(m, cfg, cs_prev, gates, cs_grad, h_grad,
                                                        peepholes)
        grads = [m.xp.zeros_like(p) for p in peepholes]
        if cfg.use_peephole:
            _add_peephole_grads(m, grads, cs_prev, cs, partials)
        return (cs_prev_grad, dicfo, *grads)

    return kernel


# --- BlockLSTM / BlockLSTMV2 -------------------------------------------------------------------
def _seq_len_max(node: Any, value: Any, timelen: int | None = None) -> int:
    """The host scalar seq_len_max (TF's rank check; the range check is gpugraph's)."""
    value = np.asarray(value)
    if value.ndim != 0:
        raise _fail(node, f"`seq_len_max_tensor` must be rank 0 but is rank {value.ndim}")
    steps = int(value)
    if timelen is not None and not 0 <= steps <= timelen:
        raise _fail(node, f"seq_len_max must be in [0, {timelen}] (the time length of x), "
                          f"got {steps}")
    return steps


def _check_block_lstm(node: Any, x: Any, cs_prev: Any, h_prev: Any, w: Any, peepholes: tuple,
                      b: Any) -> tuple:
    """BlockLSTM(V2)'s checks, in TF's order: (timelen, input, cell)."""
    if x.ndim != 3:
        raise _fail(node, "x must be 3D")
    timelen, batch, inputs = (int(d) for d in x.shape)
    if cs_prev.ndim != 2:
        raise _fail(node, "cs_prev must be 2D")
    _expect(node, "cs_prev.dims(0) != batch_size", cs_prev.shape[0], batch)
    cell = int(cs_prev.shape[1])
    if h_prev.ndim != 2:
        raise _fail(node, "h_prev must be 2D")
    _expect(node, "h_prev.dims(0) != batch_size", h_prev.shape[0], batch)
    _expect(node, "h_prev.dims(1) != cell_size", h_prev.shape[1], cell)
    if w.ndim != 2:
        raise _fail(node, "w must be 2D")
    _expect(node, "w.dim_size(0) != input_size + cell_size", w.shape[0], inputs + cell)
    _expect(node, "w.dim_size(1) != cell_size * 4", w.shape[1], cell * 4)
    for name, value in zip(("wci", "wcf", "wco"), peepholes, strict=True):
        if value.ndim != 1:
            raise _fail(node, f"{name} must be 1D")
        _expect(node, f"{name}.dim_size(0) != cell_size", value.shape[0], cell)
    if b.ndim != 1:
        raise _fail(node, "b must be 1D")
    _expect(node, "b.dim_size(0) != cell_size * 4", b.shape[0], cell * 4)
    return timelen, inputs, cell


def _block_lstm(ctx: BuildContext, layout: tuple):
    m, node, cfg = _Math(ctx.xp), ctx.op, _LSTMConfig(ctx, layout, grad=False)
    xp = ctx.xp

    def kernel(seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b):
        _seq_len_max(node, seq_len_max)  # TF checks its rank first
        peepholes = (wci, wcf, wco)
        timelen, _, cell = _check_block_lstm(node, x, cs_prev, h_prev, w, peepholes, b)
        steps = _seq_len_max(node, seq_len_max, timelen)
        # zeros past seq_len_max: TF's for cs and h, TF leaves the gates uninitialized
        outs = [xp.zeros((timelen, x.shape[1], cell), x.dtype) for _ in range(7)]
        cs_t, h_t = cs_prev, h_prev
        for t in range(steps):
            step = _lstm_step(m, cfg, x[t], cs_t, h_t, w, peepholes, b)
            for out, value in zip(outs, step, strict=True):
                out[t] = value
            cs_t, h_t = step[1], step[6]
        return tuple(outs)

    return kernel


@op("BlockLSTM", host_inputs=(0,))
def _block_lstm_v1(ctx: BuildContext):
    return _block_lstm(ctx, ICFO)


@op("BlockLSTMV2", host_inputs=(0,))
def _block_lstm_v2(ctx: BuildContext):
    return _block_lstm(ctx, IFCO)


# --- BlockLSTMGrad / BlockLSTMGradV2 ----------------------------------------------------------
def _check_block_lstm_grad(node: Any, x: Any, cs_prev: Any, h_prev: Any, w: Any,
                           peepholes: tuple, b: Any, seq: tuple) -> tuple:
    """BlockLSTMGrad(V2)'s checks, in TF's order: (timelen, batch, input, cell)."""
    for name, value, rank in (("x", x, 3), ("cs_prev", cs_prev, 2), ("h_prev", h_prev, 2),
                              ("w", w, 2)):
        if value.ndim != rank:
            raise _fail(node, f"{name} must be rank {rank} but is rank {value.ndim}")
    timelen, batch, inputs = (int(d) for d in x.shape)
    cell = int(w.shape[1]) // 4
    _expect(node, "w matrix rows don't match", inputs + cell, w.shape[0])
    for name, value in (*zip(("wci", "wcf", "wco"), peepholes, strict=True), ("b", b)):
        if value.ndim != 1:
            raise _fail(node, f"{name} must be rank 1 but is rank {value.ndim}")
    if b.shape[0] // 4 != cell:
        raise _fail(node, f"w and b cell_size don't match: {cell} vs. {b.shape[0]}")
    for name, value in zip(_SEQ_NAMES, seq, strict=True):
        if value.ndim != 3:
            raise _fail(node, f"{name} must be rank 3. Received: {value.ndim}")
    return timelen, batch, inputs, cell


def _check_grad_shapes(node: Any, batch: int, cell: int, steps: int, cs_prev: Any, h_prev: Any,
                       seq: tuple, incoming: tuple) -> None:
    """Shapes TF's BlockLSTMGrad reads unchecked (it aborts or reads out of bounds)."""
    for name, value in (("cs_prev", cs_prev), ("h_prev", h_prev)):
        if tuple(value.shape) != (batch, cell):
            raise _fail(node, f"{name} must have shape [{batch},{cell}], "
                              f"got {list(value.shape)}")
    named = (*zip(_SEQ_NAMES, seq, strict=True), ("cs_grad", incoming[0]), ("h_grad", incoming[1]))
    for name, value in named:
        if value.ndim != 3 or tuple(value.shape[1:]) != (batch, cell) or value.shape[0] < steps:
            raise _fail(node, f"{name} must have shape [>= {steps},{batch},{cell}], "
                              f"got {list(value.shape)}")


class _GradAccumulators:
    """BlockLSTMGrad's outputs that sum over the steps, zero to begin with (as TF's)."""

    def __init__(self, xp: Any, x: Any, cs_prev: Any, h_prev: Any, w: Any, peepholes: tuple,
                 b: Any):
        self.x_grad = xp.zeros_like(x)  # stays zero past seq_len_max
        self.cs_prev_grad, self.h_prev_grad = xp.zeros_like(cs_prev), xp.zeros_like(h_prev)
        self.w_grad, self.b_grad = xp.zeros_like(w), xp.zeros_like(b)
        self.peephole_grads = [xp.zeros_like(p) for p in peepholes]

    def outputs(self) -> tuple:
        return (self.x_grad, self.cs_prev_grad, self.h_prev_grad, self.w_grad,
                *self.peephole_grads, self.b_grad)


def _block_lstm_grad(ctx: BuildContext, layout: tuple):
    m, node, cfg = _Math(ctx.xp), ctx.op, _LSTMConfig(ctx, layout, grad=True)
    xp = ctx.xp

    def kernel(seq_len_max, x, cs_prev, h_prev, w, wci, wcf, wco, b, i, cs, f, o, ci, co, h,
               cs_grad, h_grad):
        peepholes, seq = (wci, wcf, wco), (i, cs, f, o, ci, co, h)
        _seq_len_max(node, seq_len_max)
        timelen, batch, inputs, cell = _check_block_lstm_grad(node, x, cs_prev, h_prev, w,
                                                              peepholes, b, seq)
        steps = _seq_len_max(node, seq_len_max, timelen)
        _check_grad_shapes(node, batch, cell, steps, cs_prev, h_prev, seq, (cs_grad, h_grad))
        _check_peepholes(node, peepholes, cell, cfg.use_peephole)
        acc = _GradAccumulators(xp, x, cs_prev, h_prev, w, peepholes, b)
        for t in range(steps - 1, -1, -1):
            _block_lstm_grad_step(m, cfg, acc, t, inputs, (x, cs_prev, h_prev, w), peepholes,
                                  seq, (cs_grad, h_grad))
        return acc.outputs()

    return kernel


def _block_lstm_grad_step(m: _Math, cfg: _LSTMConfig, acc: _GradAccumulators, t: int,
                          inputs: int, first: tuple, peepholes: tuple, seq: tuple,
                          incoming: tuple) -> None:
    """Step t of TF's BlockLSTMGradOp, updating ``acc`` in place."""
    x, cs_prev, h_prev, w = first
    i, cs, f, o, ci, co, h = seq
    cs_p, h_p = (cs_prev, h_prev) if t == 0 else (cs[t - 1], h[t - 1])
    # the step's incoming gradients plus those carried back from step t + 1
    cs_grad_t = acc.cs_prev_grad + incoming[0][t]
    h_grad_t = acc.h_prev_grad + incoming[1][t]
    gates = (i[t], cs[t], f[t], o[t], ci[t], co[t])
    dgates, acc.cs_prev_grad, partials = _lstm_step_grad(m, cfg, cs_p, gates, cs_grad_t,
                                                         h_grad_t, peepholes)
    xh_grad = m.matmul(dgates, w.T)
    acc.x_grad[t] = xh_grad[:, :inputs]
    acc.h_prev_grad = xh_grad[:, inputs:]
    acc.w_grad += m.matmul(m.concat(x[t], h_p).T, dgates)
    acc.b_grad[:dgates.shape[1]] += m.colsum(dgates)  # b may be longer (TF checks b.dim / 4)
    if cfg.use_peephole:
        _add_peephole_grads(m, acc.peephole_grads, cs_p, cs[t], partials)


@op("BlockLSTMGrad", host_inputs=(0,))
def _block_lstm_grad_v1(ctx: BuildContext):
    return _block_lstm_grad(ctx, ICFO)


@op("BlockLSTMGradV2", host_inputs=(0,))
def _block_lstm_grad_v2(ctx: BuildContext):
    return _block_lstm_grad(ctx, IFCO)


# --- GRUBlockCell ------------------------------------------------------------------------------
def _check_gru(node: Any, x: Any, h_prev: Any, w_ru: Any, w_c: Any, b_ru: Any,
               b_c: Any) -> tuple:
    """GRUBlockCell(Grad)'s checks, in TF's order (each tensor's rank, then its dims):
    (batch, input, cell)."""
    if x.ndim != 2:
        raise _fail(node, f"Rank of x must be 2, got {x.ndim}")
    batch, inputs = (int(d) for d in x.shape)
    if h_prev.ndim != 2:
        raise _fail(node, f"Rank of h_prev must be 2, got {h_prev.ndim}")
    _expect(node, "h_prev.dims(0) != batch_size", h_prev.shape[0], batch)
    cell = int(h_prev.shape[1])
    for name, label, value, cols in (("w_ru", "w_ru_", w_ru, 2), ("w_c", "w_c", w_c, 1)):
        if value.ndim != 2:
            raise _fail(node, f"Rank of {label} must be 2, got {value.ndim}")
        _expect(node, f"{name}.dim_size(0) != input_size + cell_size", value.shape[0],
                inputs + cell)
        scale = " * 2" if cols == 2 else ""
        _expect(node, f"{name}.dim_size(1) != cell_size{scale}", value.shape[1], cell * cols)
    for name, value, size in (("b_ru", b_ru, 2), ("b_c", b_c, 1)):
        if value.ndim != 1:
            raise _fail(node, f"Rank of {name} must be 1, got {value.ndim}")
        scale = " * 2" if size == 2 else ""
        _expect(node, f"{name}.dim_size(0) != cell_size{scale}", value.shape[0], cell * size)
    return batch, inputs, cell


@op("GRUBlockCell")
def _gru_block_cell(ctx: BuildContext):
    m, node = _Math(ctx.xp), ctx.op

    def kernel(x, h_prev, w_ru, w_c, b_ru, b_c):
        _, _, cell = _check_gru(node, x, h_prev, w_ru, w_c, b_ru, b_c)
        r_u = m.sigmoid(m.matmul(m.concat(x, h_prev), w_ru) + b_ru)
        r, u = r_u[:, :cell], r_u[:, cell:]
        c = m.tanh(m.matmul(m.concat(x, h_prev * r), w_c) + b_c)
        return r, u, c, u * (h_prev - c) + c

    return kernel


def _check_gru_grad(node: Any, batch: int, cell: int, named: tuple) -> None:
    """GRUBlockCellGrad's checks on r, u, c, d_h (TF's rank message for c names w_c)."""
    for name, value in named:
        if value.ndim != 2:
            label = "w_c" if name == "c" else name
            raise _fail(node, f"Rank of {label} must be 2, got {value.ndim}")
        _expect(node, f"{name}.dims(0) != batch_size", value.shape[0], batch)
        _expect(node, f"{name}.dims(1) != cell_size", value.shape[1], cell)


@op("GRUBlockCellGrad")
def _gru_block_cell_grad(ctx: BuildContext):
    m, node = _Math(ctx.xp), ctx.op

    def kernel(x, h_prev, w_ru, w_c, b_ru, b_c, r, u, c, d_h):
        batch, inputs, _ = _check_gru(node, x, h_prev, w_ru, w_c, b_ru, b_c)
        _check_gru_grad(node, batch, h_prev.shape[1], (("r", r), ("u", u), ("c", c),
                                                       ("d_h", d_h)))
        one = x.dtype.type(1)
        d_c_bar = d_h * (one - u) * (one - c * c)
        d_u_bar = d_h * (h_prev - c) * u * (one - u)  # h_prev, not the doc's h
        x_and_hr = m.matmul(d_c_bar, w_c.T)  # [d_x part 2, d(h_prev * r)]
        d_hr = x_and_hr[:, inputs:]
        d_r_bar = d_hr * h_prev * r * (one - r)
        d_r_bar_u_bar = m.concat(d_r_bar, d_u_bar)
        x_and_h = m.matmul(d_r_bar_u_bar, w_ru.T)  # [d_x part 1, d_h_prev part 1]
        d_x = x_and_h[:, :inputs] + x_and_hr[:, :inputs]
        d_h_prev = x_and_h[:, inputs:] + d_hr * r + d_h * u
        return d_x, d_h_prev, d_c_bar, d_r_bar_u_bar

    return kernel
