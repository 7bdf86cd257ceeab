"""Generate the per-op fixture family ``rnn_block`` (TF's fused RNN block ops)
with real TensorFlow.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv)
rewrites only ``tests/fixtures/ops/rnn_block.pb``, ``rnn_block.npz`` and
``rnn_block.json``::

    /work/tfenv/bin/python scripts/make_rnn_block_fixtures.py

The format is exactly make_op_fixtures.py's (read its docstring): case ``i``
under ``c<i>/``, every input a placeholder ``c<i>/in<j>``, the op
``c<i>/op`` built with ``tf.raw_ops``, one JSON record per case.  This script
adds the family to make_op_fixtures' table at run time and runs its
``generate`` (the session, the records, the npz writer are that script's).

Ops covered: LSTMBlockCell, LSTMBlockCellGrad, BlockLSTM, BlockLSTMV2,
BlockLSTMGrad, BlockLSTMGradV2 (float32 and float16: TF has no float64
kernels), GRUBlockCell and GRUBlockCellGrad (float32 only).  The gradient
ops' inputs i, cs, f, ... are TF's forward values for the same weights (run
eagerly), the incoming gradients random.

Notes on TF 2.21 CPU behaviour the cases rely on or avoid
---------------------------------------------------------
* Gate layout i, c, f, o (LSTMBlockCell, BlockLSTM, the grads' dicfo) vs.
  i, f, c, o (BlockLSTMV2/GradV2, which have no forget_bias attr: 0).
  cell_clip clips cs to [-clip, clip] only when > 0 (cases with 3, 1, 0.5
  clip, with 0 and -1 do not, each with a cs_prev big enough to tell).
* BlockLSTM(V2) with seq_len_max < time length: cs and h are zero past it,
  i, f, o, ci, co are left UNINITIALIZED (garbage), so those outputs are in
  ``skip_outputs`` and not stored.  BlockLSTMGrad(V2)'s x_grad is zero past
  seq_len_max (every output stored).
* seq_len_max < 0 or > time length aborts the TF process (CHECK failure), as
  do most wrong ranks of LSTMBlockCell(Grad)'s inputs and BlockLSTMGrad's
  unchecked shapes: no such cases.  The error cases are checks TF makes.
* LSTMBlockCellGrad reports a bad ``f.dim_size(1)`` with the message
  ``i.dim_size(1) != cell_size`` (recorded as is).
* float16: TF's CPU matmuls round every multiply-add in half (gpugraph
  accumulates in float32, as TF's GPU kernels); the results still agree
  within the default float16 tolerance (about half of it at worst).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_op_fixtures as mof  # noqa: E402  (sets env, enables v2 behavior)

import numpy as np  # noqa: E402

NAME = "rnn_block"
SEED = 1313
F16, F32, I64 = np.float16, np.float32, np.int64

GATE_GARBAGE = [0, 2, 3, 4, 5]  # i, f, o, ci, co past seq_len_max
# What the descs claim about TF's outputs, checked after generating:
# (case, output index, "clipped" | "unclipped" | "zero_from", value)
CLAIMS = []


def claim(F, output, kind, value):
    """Records a claim about the output of the case added next."""
    CLAIMS.append(("c%d" % len(F.cases), output, kind, value))


def check_claims():
    """max |cs| == cell_clip where clipping is claimed, > value where it is
    not; outputs zero from step value on where claimed."""
    with np.load(mof.OUT / (NAME + ".npz")) as data:
        for case, output, kind, value in CLAIMS:
            out = data["%s/out%d" % (case, output)]
            if kind == "clipped":
                assert np.abs(out).max() == value, (case, np.abs(out).max())
            elif kind == "unclipped":
                assert np.abs(out).max() > value, (case, np.abs(out).max())
            else:
                assert not out[value:].any() and out[:value].all(), case


def lstm_weights(F, inputs, cell, dt=F32, scale=0.5):
    """w, wci, wcf, wco, b of one LSTM (uniform in [-scale, scale))."""
    return dict(w=F.u([inputs + cell, 4 * cell], dt, -scale, scale),
                wci=F.u([cell], dt), wcf=F.u([cell], dt), wco=F.u([cell], dt),
                b=F.u([4 * cell], dt, -scale, scale))


def lstm_state(F, batch, cell, dt=F32, cs_scale=1.0):
    return dict(cs_prev=F.u([batch, cell], dt, -cs_scale, cs_scale),
                h_prev=F.u([batch, cell], dt))


def cell_args(F, batch, inputs, cell, dt=F32, cs_scale=1.0):
    return dict(x=F.u([batch, inputs], dt), **lstm_state(F, batch, cell, dt, cs_scale),
                **lstm_weights(F, inputs, cell, dt))


def seq_args(F, steps, time, batch, inputs, cell, dt=F32, cs_scale=1.0):
    return dict(seq_len_max=np.array(steps, I64), x=F.u([time, batch, inputs], dt),
                **lstm_state(F, batch, cell, dt, cs_scale),
                **lstm_weights(F, inputs, cell, dt))


def build_lstm_block_cell(F):
    claim(F, 1, "clipped", 3.0)
    F.add("LSTMBlockCell", "defaults: forget_bias 1, cell_clip 3, no peephole",
          **cell_args(F, 3, 4, 5, cs_scale=4.0))
    claim(F, 1, "unclipped", 1.0)
    F.add("LSTMBlockCell", "peephole, cell_clip -1 (no clip)",
          **cell_args(F, 3, 4, 5, cs_scale=4.0), forget_bias=0.5, cell_clip=-1.0,
          use_peephole=True)
    claim(F, 1, "clipped", 0.5)
    F.add("LSTMBlockCell", "peephole, cell_clip 0.5 clips cs (o's peephole reads it)",
          **cell_args(F, 2, 3, 4, cs_scale=2.0), forget_bias=0.0, cell_clip=0.5,
          use_peephole=True)
    claim(F, 1, "unclipped", 3.0)
    F.add("LSTMBlockCell", "batch 1, odd sizes, cell_clip 0 (no clip)",
          **cell_args(F, 1, 5, 3, cs_scale=4.0), forget_bias=2.0, cell_clip=0.0)
    F.add("LSTMBlockCell", "float16, peephole",
          **cell_args(F, 3, 4, 5, F16, cs_scale=4.0), use_peephole=True)


def cell_grad_args(F, args, dt=F32, **attrs):
    """LSTMBlockCellGrad's inputs: TF's forward values plus random cs_grad/h_grad."""
    fwd = mof.ev("LSTMBlockCell", **args, **attrs)
    i, cs, f, o, ci, co, _ = fwd
    batch, cell = cs.shape
    return dict(**args, i=i, cs=cs, f=f, o=o, ci=ci, co=co,
                cs_grad=F.u([batch, cell], dt), h_grad=F.u([batch, cell], dt))


def build_lstm_block_cell_grad(F):
    F.add("LSTMBlockCellGrad", "no peephole: peephole grads are zeros",
          **cell_grad_args(F, cell_args(F, 3, 4, 5)), use_peephole=False)
    F.add("LSTMBlockCellGrad", "peephole",
          **cell_grad_args(F, cell_args(F, 3, 4, 5), use_peephole=True), use_peephole=True)
    F.add("LSTMBlockCellGrad", "peephole, forward clipped at 0.5 (grad ignores the clip)",
          **cell_grad_args(F, cell_args(F, 2, 3, 4, cs_scale=2.0), use_peephole=True,
                           cell_clip=0.5), use_peephole=True)
    args16 = cell_args(F, 3, 4, 5, F16)
    F.add("LSTMBlockCellGrad", "float16, peephole",
          **cell_grad_args(F, args16, F16, use_peephole=True), use_peephole=True)


def build_block_lstm(F):
    for op in ("BlockLSTM", "BlockLSTMV2"):
        default = "forget_bias 1, cell_clip 3" if op == "BlockLSTM" else "cell_clip 0"
        if op == "BlockLSTMV2":
            claim(F, 1, "unclipped", 1.0)
        F.add(op, "defaults (%s), no peephole" % default,
              **seq_args(F, 5, 5, 3, 4, 5, cs_scale=4.0))
        extra = dict(forget_bias=0.3) if op == "BlockLSTM" else {}
        claim(F, 1, "clipped", 1.0)
        F.add(op, "peephole, cell_clip 1 clips cs",
              **seq_args(F, 4, 4, 2, 3, 4, cs_scale=3.0), cell_clip=1.0, use_peephole=True,
              **extra)
        claim(F, 1, "zero_from", 3)
        claim(F, 6, "zero_from", 3)
        F.add(op, "seq_len_max 3 < time 5: cs, h zero past it; TF leaves i, f, o, ci, co "
              "uninitialized there (not compared)",
              **seq_args(F, 3, 5, 2, 3, 4), use_peephole=True, cell_clip=-1.0,
              _skip=GATE_GARBAGE, _omit=GATE_GARBAGE)
        F.add(op, "float16, peephole",
              **seq_args(F, 4, 4, 2, 3, 4, F16, cs_scale=3.0), use_peephole=True,
              cell_clip=2.0)
    F.add("BlockLSTM", "seq_len_max 0: cs, h all zero (gates uninitialized, not compared)",
          **seq_args(F, 0, 3, 2, 3, 4), _skip=GATE_GARBAGE, _omit=GATE_GARBAGE)


def block_grad_args(F, op, args, dt=F32, **attrs):
    """BlockLSTMGrad(V2)'s inputs: TF's forward sequences (zeros replace the
    uninitialized gates past seq_len_max) plus random cs_grad/h_grad."""
    fwd = mof.ev("BlockLSTMV2" if op.endswith("V2") else "BlockLSTM", **args, **attrs)
    steps = int(args["seq_len_max"])
    names = ("i", "cs", "f", "o", "ci", "co", "h")
    seqs = {}
    for name, value in zip(names, fwd):
        value = np.array(value)
        value[steps:] = 0
        seqs[name] = value
    shape = fwd[0].shape
    return dict(**args, **seqs, cs_grad=F.u(shape, dt), h_grad=F.u(shape, dt))


def build_block_lstm_grad(F):
    for op in ("BlockLSTMGrad", "BlockLSTMGradV2"):
        fwd_attrs = dict(cell_clip=2.0, use_peephole=True)
        if op == "BlockLSTMGrad":
            fwd_attrs["forget_bias"] = 0.7
        F.add(op, "peephole",
              **block_grad_args(F, op, seq_args(F, 4, 4, 3, 4, 5, cs_scale=3.0),
                                **fwd_attrs),
              use_peephole=True)
        claim(F, 0, "zero_from", 3)
        F.add(op, "no peephole, seq_len_max 3 < time 5: x_grad zero past it, later "
              "cs_grad/h_grad ignored",
              **block_grad_args(F, op, seq_args(F, 3, 5, 2, 3, 4)),
              use_peephole=False)
        F.add(op, "float16, peephole",
              **block_grad_args(F, op, seq_args(F, 3, 3, 2, 3, 4, F16), F16,
                                use_peephole=True),
              use_peephole=True)


def gru_args(F, batch, inputs, cell):
    return dict(x=F.u([batch, inputs]), h_prev=F.u([batch, cell]),
                w_ru=F.u([inputs + cell, 2 * cell]), w_c=F.u([inputs + cell, cell]),
                b_ru=F.u([2 * cell], F32, 0.5, 1.5), b_c=F.u([cell]))


def build_gru(F):
    F.add("GRUBlockCell", **gru_args(F, 3, 4, 5))
    F.add("GRUBlockCell", "batch 1, input 1", **gru_args(F, 1, 1, 3))
    for batch, inputs, cell in ((3, 4, 5), (2, 2, 3)):
        args = gru_args(F, batch, inputs, cell)
        r, u, c, _ = mof.ev("GRUBlockCell", **args)
        F.add("GRUBlockCellGrad", "d_u_bar uses h_prev - c; d_h_prev adds d_h * u",
              **args, r=r, u=u, c=c, d_h=F.u([batch, cell]))


def build_errors(F):
    """Run-time shape errors TF checks (placeholders of unknown rank)."""
    args = cell_args(F, 2, 3, 4)
    args["h_prev"] = F.u([2, 5])
    F.add("LSTMBlockCell", "h_prev's cell size differs from cs_prev's", **args, _error=True)
    grad = cell_grad_args(F, cell_args(F, 2, 3, 4))
    grad["f"] = F.u([2, 5])
    F.add("LSTMBlockCellGrad", "f.dim_size(1) wrong: TF's message names i", **grad,
          use_peephole=False, _error=True)
    args = seq_args(F, 2, 2, 2, 3, 4)
    args["w"] = F.u([8, 16])
    F.add("BlockLSTM", "w has one row too many", **args, _error=True)
    grad = block_grad_args(F, "BlockLSTMGradV2", seq_args(F, 2, 2, 2, 3, 4))
    grad["b"] = F.u([20])
    F.add("BlockLSTMGradV2", "b's size / 4 is not w's cell size", **grad,
          use_peephole=False, _error=True)
    args = gru_args(F, 2, 3, 4)
    args["b_ru"] = F.u([9])
    F.add("GRUBlockCell", "b_ru is not 2 * cell_size", **args, _error=True)


def build_rnn_block(F):
    build_lstm_block_cell(F)
    build_lstm_block_cell_grad(F)
    build_block_lstm(F)
    build_block_lstm_grad(F)
    build_gru(F)
    build_errors(F)


def main():
    mof.generate_family(NAME, build_rnn_block, SEED)
    check_claims()


if __name__ == "__main__":
    main()
