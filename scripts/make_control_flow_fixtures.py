"""Generate real-TensorFlow training-continuation fixtures for graphs with
control flow (while loops, TensorArrays, conds) for gpugraph.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv, see
``scripts/fixtures_requirements.txt``) deletes and rewrites
``tests/fixtures/control_flow/``::

    /work/tfenv/bin/python scripts/make_control_flow_fixtures.py

Format
======

Exactly the training-continuation format of ``make_train_fixtures.py`` (read
its docstring: ``index.json``; per case ``<case>-3.meta/.index/.data-*``,
``checkpoint`` with relative paths, ``<case>.json``, ``continue.npz`` with
``feed/<k>`` ``[K, ...]``, ``loss`` ``[K]``, ``start/<var>``, ``end/<var>``),
built with that script's own ``pretrain_and_save``/``continue_training``,
with these differences:

* K (``steps``) is 10, not 20 (3 pretrain steps as there).
* Every ``<case>.json`` has two more keys, placed before ``op_types``:

  - ``"control_flow": "v1" | "v2"``: whether the graph was built with
    ``tf.compat.v1.disable_control_flow_v2()`` (Enter/Exit/Switch/Merge/
    NextIteration/LoopCond frames, TensorArrayV3, Stack* in the gradient,
    ``while_context``/``cond_context`` collections in the meta graph) or
    ``enable_control_flow_v2()`` (``While``/``StatelessWhile`` ops whose
    cond/body are functions of the graph's ``FunctionDefLibrary``,
    TensorList* ops instead of TensorArrays/stacks).
  - ``"function_op_types"``: sorted op types used inside the bodies of the
    meta graph's library functions (``[]`` for v1).  ``op_types`` stays what
    make_train_fixtures records: the op types of the imported (top-level)
    graph.

* ``lr_schedule_cond_v1``: the learning rate is a tensor, so its
  ``optimizer.args`` is ``{"learning_rate": "cond(global_step < 5, 0.1,
  0.01)", "boundary": 5, "values": [0.1, 0.01]}`` (the schedule, not a
  number).  The continuation runs global steps 3..12, so the first two
  recorded steps use 0.1 and the remaining eight 0.01.

* All ``.meta`` files are re-serialized with ``SerializeToString(
  deterministic=True)`` (after make_fixtures' ``canonicalize_contexts``),
  because the function library's map fields would otherwise be written in a
  run-dependent order.  Semantically the file is what the Saver wrote.

Cases (batch 4, sequence length 5, input dim 3, hidden 8, 2 classes; x
float32 ``[4, 5, 3]`` (``[4, 3]`` for the MLP), y int64 ``[4]``, sparse
softmax cross-entropy (mean) named ``loss``, ``global_step``):

* ``rnn_basic_gd_v1`` / ``rnn_basic_gd_v2``: ``tf.nn.dynamic_rnn`` with
  ``BasicRNNCell(8)``, last time step's output -> dense 2; GD(0.1).
* ``rnn_lstm_adam_v1`` / ``rnn_lstm_adam_v2``: same with ``LSTMCell(8)``;
  Adam(0.01).
  With control flow v2 the cells' variables are *resource* variables (they
  are created inside the while body function, and while_v2 lifts them out
  as resource variables) while the dense layer's stay ref variables; see
  ``variable_kinds``.
* ``nested_while_v1``: ``h = 0``; outer ``while_loop`` over t < 5:
  ``h = tanh(x[:, t] @ w_in + h @ w_rec + b)``, then an inner
  ``while_loop`` j < 2: ``h = tanh(h @ w_inner)``; last h -> dense 2; GD(0.1).
* ``cond_in_loop_v1``: ``while_loop`` over t < 5:
  ``z = x[:, t] @ w_in + h @ w_rec + b``;
  ``h = tf.cond(t % 2 == 0, relu(z), tanh(z))``; -> dense 2; GD(0.1).
* ``lr_schedule_cond_v1``: MLP 3-8-2 (ReLU), GradientDescentOptimizer with
  learning rate ``tf.cond(global_step < 5, lambda: 0.1, lambda: 0.01)``.

The output is deterministic (same measures as make_train_fixtures); running
the script twice gives byte-identical files.
"""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_train_fixtures as mtf  # noqa: E402  (sets env, disables v2)

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from make_fixtures import write_json  # noqa: E402

tf.get_logger().setLevel("ERROR")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "control_flow"

STEPS = 10     # K
# make_train_fixtures.continue_training / check_npz read the module global.
mtf.STEPS = STEPS
PRETRAIN = mtf.PRETRAIN

BATCH, TIME, N_IN, HIDDEN, N_CLASSES = 4, 5, 3, 8, 2
INNER_STEPS = 2
LR_BOUNDARY, LR_VALUES = 5, (0.1, 0.01)

V1_LOOP_OPS = ("Enter", "Exit", "NextIteration", "LoopCond", "Merge",
               "Switch")


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------

def glorot(name, shape):
    return tf.get_variable(name, shape,
                           initializer=tf.glorot_uniform_initializer())


def sequence_placeholders():
    x = tf.placeholder(tf.float32, [None, TIME, N_IN], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    return x, y


def finish(x, y, features, optimizer):
    logits = mtf.dense("dense", features, HIDDEN, N_CLASSES, False,
                       name="logits")
    loss, train_op = mtf.head(logits, y, "sparse", optimizer)
    return mtf.Built({"x": x, "y": y}, loss, train_op)


def rnn_builder(cell_kind, optimizer_factory):
    def build():
        x, y = sequence_placeholders()
        if cell_kind == "basic":
            cell = tf.nn.rnn_cell.BasicRNNCell(HIDDEN)
        else:
            cell = tf.nn.rnn_cell.LSTMCell(HIDDEN)
        outputs, _ = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        return finish(x, y, outputs[:, -1, :], optimizer_factory())
    return build


def nested_while_builder():
    x, y = sequence_placeholders()
    with tf.variable_scope("loop"):
        w_in = glorot("w_in", [N_IN, HIDDEN])
        w_rec = glorot("w_rec", [HIDDEN, HIDDEN])
        w_inner = glorot("w_inner", [HIDDEN, HIDDEN])
        b = tf.get_variable("b", [HIDDEN], initializer=tf.zeros_initializer())

    def inner_body(j, h):
        return j + 1, tf.tanh(tf.matmul(h, w_inner))

    def outer_body(t, h):
        h = tf.tanh(tf.matmul(x[:, t], w_in) + tf.matmul(h, w_rec) + b)
        _, h = tf.while_loop(lambda j, _h: j < INNER_STEPS, inner_body,
                             [tf.constant(0), h], name="inner")
        return t + 1, h

    h0 = tf.zeros([tf.shape(x)[0], HIDDEN])
    _, h = tf.while_loop(lambda t, _h: t < TIME, outer_body,
                         [tf.constant(0), h0], name="outer")
    return finish(x, y, h, tf.train.GradientDescentOptimizer(0.1))


def cond_in_loop_builder():
    x, y = sequence_placeholders()
    with tf.variable_scope("loop"):
        w_in = glorot("w_in", [N_IN, HIDDEN])
        w_rec = glorot("w_rec", [HIDDEN, HIDDEN])
        b = tf.get_variable("b", [HIDDEN], initializer=tf.zeros_initializer())

    def body(t, h):
        z = tf.matmul(x[:, t], w_in) + tf.matmul(h, w_rec) + b
        h = tf.cond(tf.equal(t % 2, 0), lambda: tf.nn.relu(z),
                    lambda: tf.tanh(z), name="parity")
        return t + 1, h

    h0 = tf.zeros([tf.shape(x)[0], HIDDEN])
    _, h = tf.while_loop(lambda t, _h: t < TIME, body, [tf.constant(0), h0],
                         name="loop")
    return finish(x, y, h, tf.train.GradientDescentOptimizer(0.1))


def lr_schedule_builder():
    x = tf.placeholder(tf.float32, [None, N_IN], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    hidden = tf.nn.relu(mtf.dense("dense", x, N_IN, HIDDEN, False))
    logits = mtf.dense("dense_1", hidden, HIDDEN, N_CLASSES, False,
                       name="logits")
    global_step = tf.train.get_or_create_global_step()
    lr = tf.cond(global_step < LR_BOUNDARY,
                 lambda: tf.constant(LR_VALUES[0]),
                 lambda: tf.constant(LR_VALUES[1]), name="learning_rate")
    loss, train_op = mtf.head(logits, y, "sparse",
                              tf.train.GradientDescentOptimizer(lr))
    return mtf.Built({"x": x, "y": y}, loss, train_op)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def sequence_data(seed):
    def data(n):
        rng = np.random.RandomState(seed)
        x = rng.standard_normal((n, BATCH, TIME, N_IN)).astype(np.float32)
        y = rng.randint(0, N_CLASSES, size=(n, BATCH)).astype(np.int64)
        return {"x": x, "y": y}
    return data


def mlp_data(n):
    rng = np.random.RandomState(16)
    x = rng.standard_normal((n, BATCH, N_IN)).astype(np.float32)
    y = rng.randint(0, N_CLASSES, size=(n, BATCH)).astype(np.int64)
    return {"x": x, "y": y}


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

GD = ("GradientDescent", {"learning_rate": 0.1})
ADAM = ("Adam", {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999,
                 "epsilon": 1e-8})


def adam():
    return tf.train.AdamOptimizer(0.01)


def gd():
    return tf.train.GradientDescentOptimizer(0.1)


def all_cases():
    """(case, control flow version, required op types)."""
    rnn_desc = ("x [4,5,3] -> tf.nn.dynamic_rnn(%s(8), dtype=float32) -> "
                "outputs[:, -1, :] -> dense 2 (logits); sparse xent (mean); "
                "%s; control flow %s")
    cases = []
    for version in ("v1", "v2"):
        cases.append((mtf.Case(
            "rnn_basic_gd_" + version, rnn_builder("basic", gd),
            sequence_data(11), GD,
            rnn_desc % ("BasicRNNCell", "GradientDescent(0.1)", version)),
            version))
        cases.append((mtf.Case(
            "rnn_lstm_adam_" + version, rnn_builder("lstm", adam),
            sequence_data(12), ADAM,
            rnn_desc % ("LSTMCell", "Adam(0.01)", version)), version))
    cases.append((mtf.Case(
        "nested_while_v1", nested_while_builder, sequence_data(13), GD,
        "x [4,5,3]; h=0; tf.while_loop 'outer' t<5: h = tanh(x[:,t] @ "
        "loop/w_in + h @ loop/w_rec + loop/b), then tf.while_loop 'inner' "
        "j<2: h = tanh(h @ loop/w_inner); last h -> dense 2; sparse xent; "
        "GradientDescent(0.1); control flow v1"), "v1"))
    cases.append((mtf.Case(
        "cond_in_loop_v1", cond_in_loop_builder, sequence_data(14), GD,
        "x [4,5,3]; h=0; tf.while_loop 'loop' t<5: z = x[:,t] @ loop/w_in + "
        "h @ loop/w_rec + loop/b; h = tf.cond(t % 2 == 0, relu(z), tanh(z)) "
        "(name 'parity'); last h -> dense 2; sparse xent; "
        "GradientDescent(0.1); control flow v1"), "v1"))
    cases.append((mtf.Case(
        "lr_schedule_cond_v1", lr_schedule_builder, mlp_data,
        ("GradientDescent", {
            "learning_rate": "cond(global_step < %d, %g, %g)" % (
                (LR_BOUNDARY,) + LR_VALUES),
            "boundary": LR_BOUNDARY, "values": list(LR_VALUES)}),
        "MLP 3-8-2 (ReLU) on x [4,3]; sparse xent; GradientDescentOptimizer("
        "tf.cond(global_step < 5, lambda: 0.1, lambda: 0.01)) (cond name "
        "'learning_rate'): continuation steps 3,4 use 0.1, steps 5..12 use "
        "0.01; control flow v1"), "v1"))
    return cases


def set_control_flow(version):
    if version == "v1":
        tf.disable_control_flow_v2()
    else:
        tf.enable_control_flow_v2()


def function_op_types(meta_path):
    meta = tf.MetaGraphDef()
    meta.ParseFromString(meta_path.read_bytes())
    lib = meta.graph_def.library
    types = {node.op for f in lib.function for node in f.node_def}
    return sorted(types), len(lib.function)


def deterministic_meta(path):
    meta = tf.MetaGraphDef()
    meta.ParseFromString(path.read_bytes())
    path.write_bytes(meta.SerializeToString(deterministic=True))


def run_case(case, version):
    case_dir = OUT / case.name
    case_dir.mkdir(parents=True)
    data = case.data(PRETRAIN + STEPS)
    set_control_flow(version)
    built, prefix = mtf.pretrain_and_save(case, case_dir, data)
    deterministic_meta(case_dir / (prefix + ".meta"))
    record, losses = mtf.continue_training(case, case_dir, built, prefix,
                                           data)
    fn_types, n_functions = function_op_types(case_dir / (prefix + ".meta"))
    out = {}
    for key, value in record.items():
        if key == "op_types":
            out["control_flow"] = version
            out["function_op_types"] = fn_types
        out[key] = value
    write_json(case_dir / (case.name + ".json"), out)
    return out, losses, n_functions


def check_case(record, n_functions):
    """Assert the graph really uses the intended control-flow flavour."""
    ops = set(record["op_types"])
    fn_ops = set(record["function_op_types"])
    name = record["case"]
    if record["control_flow"] == "v1":
        assert n_functions == 0, name
        assert not ops & {"While", "StatelessWhile"}, name
        if name != "lr_schedule_cond_v1":
            missing = set(V1_LOOP_OPS + ("StackV2", "StackPushV2",
                                         "StackPopV2")) - ops
            assert not missing, (name, missing)
        else:
            assert {"Switch", "Merge"} <= ops, name
            assert "Enter" not in ops, name
        if name.startswith("rnn_"):
            assert {"TensorArrayV3", "TensorArrayScatterV3",
                    "TensorArrayReadV3", "TensorArrayWriteV3",
                    "TensorArrayGatherV3", "TensorArrayGradV3"} <= ops, name
    else:
        assert n_functions > 0, name
        assert ops & {"While", "StatelessWhile"}, name
        assert not ops & set(V1_LOOP_OPS + ("TensorArrayV3", "StackV2")), name
        assert fn_ops, name


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rows = []
    for case, version in all_cases():
        record, losses, n_functions = run_case(case, version)
        mtf.check_npz(OUT / case.name, record)
        check_case(record, n_functions)
        rows.append((record, losses, n_functions))
    tf.disable_control_flow_v2()
    write_json(OUT / "index.json", {"cases": [r["case"] for r, _, _ in rows]})

    print("%-22s %3s %4s %5s %6s %6s %7s %5s %6s %10s %10s" % (
        "case", "cf", "ops", "Enter", "TAv3", "Stack", "While", "funcs",
        "fnops", "loss[0]", "loss[-1]"))
    for record, losses, n_functions in rows:
        ops = set(record["op_types"])
        while_types = sorted(ops & {"While", "StatelessWhile"})
        print("%-22s %3s %4d %5s %6s %6s %7s %5d %6d %10.6f %10.6f" % (
            record["case"], record["control_flow"], len(ops),
            "Enter" in ops, "TensorArrayV3" in ops, "StackV2" in ops,
            ",".join(while_types) or "-", n_functions,
            len(record["function_op_types"]), losses[0], losses[-1]))
    for record, _, _ in rows:
        print("%s op_types: %s" % (record["case"], " ".join(record["op_types"])))
        if record["function_op_types"]:
            print("%s function_op_types: %s" % (
                record["case"], " ".join(record["function_op_types"])))


if __name__ == "__main__":
    main()
