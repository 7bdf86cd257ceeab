"""Generate real-TensorFlow *training-continuation* fixtures for gpugraph.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv, see
``scripts/fixtures_requirements.txt``) is the only place that does.  It
deletes and rewrites ``tests/fixtures/train/``::

    /work/tfenv/bin/python scripts/make_train_fixtures.py
    /work/tfenv/bin/python scripts/make_train_fixtures.py CASE ...   # just these cases

Fixture format
==============

``tests/fixtures/train/index.json`` lists the case names (one directory per
case).  Every case directory ``tests/fixtures/train/<case>/`` holds:

* ``<case>-3.meta``, ``<case>-3.index``, ``<case>-3.data-00000-of-00001`` and
  ``checkpoint``: what ``tf.compat.v1.train.Saver.save(sess, "<case>",
  global_step=3)`` wrote after 3 training steps from initialization.  The save
  was made from inside the case directory with a relative prefix, so the
  ``checkpoint`` state file holds relative paths (``model_checkpoint_path:
  "<case>-3"``) and the directory can be moved.  (``no_vars`` has only
  ``no_vars.meta``, written by ``tf.compat.v1.train.export_meta_graph``.)
  Cond-context protos inside the ``.meta`` are re-serialized with sorted map
  keys (see ``make_fixtures.canonicalize_contexts``) for reproducibility.

* ``<case>.json`` (all paths relative to the case directory)::

    {
     "case": "<case>",
     "meta": "<case>-3.meta",
     "checkpoint": "<case>-3",            # prefix for Saver.restore; null for no_vars
     "pretrain_steps": 3,                 # steps run before the save
     "steps": 20,                         # K, steps recorded in continue.npz
     "feeds": {"x": "x:0", "y": "y:0"},   # npz key feed/<k> -> tensor name to feed
     "const_feeds": {"rate:0": 0.0},      # same value every step (JSON scalars)
     "loss": "loss:0",                    # null for no_vars
     "fetch": null,                       # no_vars: "out:0" (forward-only)
     "train_op_collection": "train_op",   # null for no_vars
     "import_scope": null,                # or "imported" (mlp_sparse_adam_scoped)
     "variables": ["dense/kernel", ...],  # var.op.name of every global variable,
                                          # in tf.global_variables() order after import
     "variable_kinds": {"dense/kernel": "ref" | "resource", ...},
     "optimizer": {"name": "Adam", "args": {...}},
     "eval": null | {"fetch": "logits:0", "feeds": {"x": "x:0"},
                     "const_feeds": {"training:0": false}},
     "op_types": [...],                   # sorted op types of the imported graph
     "description": "..."
    }

  With ``import_scope`` set, every tensor/variable name in the JSON (feeds,
  const_feeds, loss, eval, variables) is the *scoped* name TF produced
  (``imported/x:0``, ``imported/dense/kernel``); the checkpoint keys stay
  unscoped (``dense/kernel``), as TF's scoped Saver maps them.

* ``continue.npz`` (``np.load`` it; keys contain ``/``):

  - ``feed/<k>`` for each key ``k`` of ``feeds``: the K per-step feeds stacked,
    shape ``[K, ...]`` (e.g. ``feed/x`` float32 ``[20, 8, 20]``, ``feed/y``
    int64 ``[20, 8]`` or float32 one-hot ``[20, 8, 3]``).
  - ``loss``: float32 ``[K]``, TF's loss at each step, fetched in the same
    ``sess.run([loss, train_op], feed)`` as the train op, i.e. the loss
    *before* that step's update.
  - ``start/<var op name>``: every global variable right after
    ``import_meta_graph`` + ``Saver.restore`` (= the checkpoint's values).
  - ``end/<var op name>``: every global variable after the K steps
    (weights, optimizer slots, ``beta1_power``/``beta2_power``,
    ``global_step`` (= 23), batch-norm moving mean/variance).
  - batch-norm cases only: ``eval/x`` (= ``feed/x[0]``) and ``eval/out``, the
    model output (``eval.fetch``) with ``training`` fed False, computed after
    the K steps (forward-only check of the inference branch of the cond).
  - ``no_vars`` only: ``out`` ``[K, ...]``, TF's ``out:0`` for each
    ``feed/x[k]``; there are no ``loss``/``start``/``end`` keys.

The reproduction recipe for a test: import ``meta`` (with ``import_scope``),
restore ``checkpoint`` through the Saver the import returned, check every
variable against ``start/*``, then for k in range(steps) run
``[loss, get_collection(train_op_collection)[0]]`` feeding
``{feeds[key]: npz["feed/"+key][k]} | const_feeds``, compare with
``loss[k]``, and at the end compare every variable with ``end/*``.

The output is deterministic: fixed graph and numpy seeds, single-threaded
sessions, oneDNN disabled, ``.npz`` files written with fixed zip timestamps.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.layers needs tf-keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import dataclasses  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Optional  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from tensorflow.python.ops import resource_variable_ops  # noqa: E402

from make_fixtures import (canonicalize_contexts, new_session,  # noqa: E402
                           save_npz, working_dir, write_json)

tf.disable_v2_behavior()
tf.get_logger().setLevel("ERROR")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "train"

PRETRAIN = 3   # steps before the checkpoint
STEPS = 20     # K: steps recorded in continue.npz
MLP_BATCH, MLP_IN, MLP_HIDDEN, MLP_CLASSES = 8, 20, 16, 3
CNN_BATCH, CNN_CLASSES = 4, 10
BN_BATCH, BN_CLASSES = 8, 3

OPTIMIZERS = {
    "gd": ("GradientDescent", lambda: tf.train.GradientDescentOptimizer(0.1),
           {"learning_rate": 0.1}),
    "momentum": ("Momentum", lambda: tf.train.MomentumOptimizer(0.1, 0.9),
                 {"learning_rate": 0.1, "momentum": 0.9}),
    "nesterov": ("Momentum",
                 lambda: tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True),
                 {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True}),
    "adam": ("Adam", lambda: tf.train.AdamOptimizer(0.01),
             {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999,
              "epsilon": 1e-8}),
    "rmsprop": ("RMSProp", lambda: tf.train.RMSPropOptimizer(0.01),
                {"learning_rate": 0.01, "decay": 0.9, "momentum": 0.0,
                 "epsilon": 1e-10}),
    "rmsprop_centered": ("RMSProp",
                         lambda: tf.train.RMSPropOptimizer(0.01, centered=True),
                         {"learning_rate": 0.01, "decay": 0.9, "momentum": 0.0,
                          "epsilon": 1e-10, "centered": True}),
    "adagrad": ("Adagrad", lambda: tf.train.AdagradOptimizer(0.1),
                {"learning_rate": 0.1, "initial_accumulator_value": 0.1}),
}


# ---------------------------------------------------------------------------
# Case description
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Built:
    """What a model builder returns (all in the current default graph)."""
    feeds: dict                      # npz key -> placeholder tensor
    loss: tf.Tensor
    train_op: tf.Operation
    const_feeds: dict = dataclasses.field(default_factory=dict)  # name -> value
    eval_fetch: Optional[tf.Tensor] = None
    eval_const_feeds: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Case:
    name: str
    build: Callable[[], Built]
    data: Callable[[int], dict]      # n steps -> {npz key: [n, ...] array}
    optimizer: tuple                 # (name, args)
    description: str
    import_scope: Optional[str] = None
    has_eval: bool = False
    producer: Optional[int] = None   # the GraphDef producer to build in (ops TF removed)


# ---------------------------------------------------------------------------
# Model pieces
# ---------------------------------------------------------------------------

def dense(scope, inputs, n_in, n_out, use_resource, name=None):
    """Hand-built dense layer: glorot_uniform kernel, zero bias."""
    with tf.variable_scope(scope):
        w = tf.get_variable("kernel", [n_in, n_out],
                            initializer=tf.glorot_uniform_initializer(),
                            use_resource=use_resource)
        b = tf.get_variable("bias", [n_out], initializer=tf.zeros_initializer(),
                            use_resource=use_resource)
    return tf.nn.bias_add(tf.matmul(inputs, w), b, name=name)


def head(logits, y, loss_kind, optimizer):
    """Mean xent loss in the 'loss' collection + global-step train op under
    control_dependencies(UPDATE_OPS)."""
    if loss_kind == "softmax_v2":
        xent = tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits)
    else:
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                              logits=logits)
    loss = tf.reduce_mean(xent, name="loss")
    tf.add_to_collection("loss", loss)
    global_step = tf.train.get_or_create_global_step()
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        train_op = optimizer.minimize(loss, global_step=global_step)
    return loss, train_op


def label_placeholder(loss_kind, n_classes):
    if loss_kind == "softmax_v2":
        return tf.placeholder(tf.float32, [None, n_classes], name="y")
    return tf.placeholder(tf.int64, [None], name="y")


def mlp_builder(loss_kind, opt_key, use_resource, dropout=False):
    def build():
        x = tf.placeholder(tf.float32, [None, MLP_IN], name="x")
        y = label_placeholder(loss_kind, MLP_CLASSES)
        const_feeds = {}
        with tf.variable_scope(tf.get_variable_scope(), use_resource=use_resource):
            hidden = tf.nn.relu(dense("dense", x, MLP_IN, MLP_HIDDEN, use_resource))
            if dropout:
                rate = tf.placeholder_with_default(0.0, [], name="rate")
                hidden = tf.nn.dropout(hidden, rate=rate)
                const_feeds[rate.name] = 0.0
            logits = dense("dense_1", hidden, MLP_HIDDEN, MLP_CLASSES,
                           use_resource, name="logits")
        loss, train_op = head(logits, y, loss_kind, OPTIMIZERS[opt_key][1]())
        return Built({"x": x, "y": y}, loss, train_op, const_feeds)
    return build


def cnn_builder(opt_factory, use_resource):
    def build():
        x = tf.placeholder(tf.float32, [None, 28, 28, 1], name="x")
        y = tf.placeholder(tf.int64, [None], name="y")
        h = x
        with tf.variable_scope(tf.get_variable_scope(), use_resource=use_resource):
            for i, (c_in, c_out) in enumerate(((1, 4), (4, 8)), start=1):
                with tf.variable_scope("conv%d" % i):
                    w = tf.get_variable("kernel", [5, 5, c_in, c_out],
                                        initializer=tf.glorot_uniform_initializer(),
                                        use_resource=use_resource)
                    b = tf.get_variable("bias", [c_out],
                                        initializer=tf.zeros_initializer(),
                                        use_resource=use_resource)
                    h = tf.nn.conv2d(h, w, strides=[1, 1, 1, 1], padding="SAME")
                    h = tf.nn.relu(tf.nn.bias_add(h, b))
                    h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
            flat = tf.reshape(h, [-1, 7 * 7 * 8])
            hidden = tf.nn.relu(dense("dense", flat, 7 * 7 * 8, 16, use_resource))
            logits = dense("dense_1", hidden, 16, CNN_CLASSES, use_resource,
                           name="logits")
        loss, train_op = head(logits, y, "sparse", opt_factory())
        return Built({"x": x, "y": y}, loss, train_op)
    return build


def bn_builder(opt_factory, use_resource):
    def build():
        x = tf.placeholder(tf.float32, [None, 4, 4, 3], name="x")
        y = tf.placeholder(tf.int64, [None], name="y")
        training = tf.placeholder(tf.bool, [], name="training")
        with tf.variable_scope(tf.get_variable_scope(), use_resource=use_resource):
            h = tf.layers.batch_normalization(x, fused=True, training=training)
            h = tf.reshape(tf.nn.relu(h), [-1, 4 * 4 * 3])
            logits = dense("dense", h, 4 * 4 * 3, BN_CLASSES, use_resource,
                           name="logits")
        loss, train_op = head(logits, y, "sparse", opt_factory())
        return Built({"x": x, "y": y}, loss, train_op,
                     const_feeds={training.name: True},
                     eval_fetch=logits,
                     eval_const_feeds={training.name: False})
    return build


# ---------------------------------------------------------------------------
# Data (deterministic numpy)
# ---------------------------------------------------------------------------

def labels(rng, n, batch, n_classes, loss_kind):
    y = rng.randint(0, n_classes, size=(n, batch)).astype(np.int64)
    if loss_kind == "softmax_v2":
        return np.eye(n_classes, dtype=np.float32)[y]
    return y


def mlp_data(loss_kind):
    def data(n):
        rng = np.random.RandomState(0)
        x = rng.standard_normal((n, MLP_BATCH, MLP_IN)).astype(np.float32)
        return {"x": x, "y": labels(rng, n, MLP_BATCH, MLP_CLASSES, loss_kind)}
    return data


def cnn_data(n):
    rng = np.random.RandomState(1)
    x = rng.uniform(0.0, 1.0, (n, CNN_BATCH, 28, 28, 1)).astype(np.float32)
    return {"x": x, "y": labels(rng, n, CNN_BATCH, CNN_CLASSES, "sparse")}


def legacy_bn_builder(opt_factory, use_resource):
    """A TF 0.x convnet's batch norm: BatchNormWithGlobalNormalization (removed at GraphDef
    version 9) on the batch's own moments, so its gradient reaches the mean and variance
    too."""
    def build():
        x = tf.placeholder(tf.float32, [None, 6, 6, 3], name="x")
        y = tf.placeholder(tf.int64, [None], name="y")
        with tf.variable_scope(tf.get_variable_scope(), use_resource=use_resource):
            kernel = tf.get_variable("conv/kernel", [3, 3, 3, 4])
            h = tf.nn.conv2d(x, kernel, [1, 1, 1, 1], "SAME")
            mean, variance = tf.nn.moments(h, [0, 1, 2])
            beta = tf.get_variable("bn/beta", [4], initializer=tf.zeros_initializer())
            gamma = tf.get_variable("bn/gamma", [4], initializer=tf.ones_initializer())
            h = tf.raw_ops.BatchNormWithGlobalNormalization(
                t=h, m=mean, v=variance, beta=beta, gamma=gamma, variance_epsilon=0.001,
                scale_after_normalization=True, name="bn")
            h = tf.reshape(tf.nn.relu(h), [-1, 6 * 6 * 4])
            logits = dense("dense", h, 6 * 6 * 4, BN_CLASSES, use_resource, name="logits")
        loss, train_op = head(logits, y, "sparse", opt_factory())
        return Built({"x": x, "y": y}, loss, train_op)
    return build


def legacy_bn_data(n):
    rng = np.random.RandomState(3)
    x = (rng.standard_normal((n, BN_BATCH, 6, 6, 3)) * 2.0 + 0.5).astype(np.float32)
    return {"x": x, "y": labels(rng, n, BN_BATCH, BN_CLASSES, "sparse")}


def bn_data(n):
    rng = np.random.RandomState(2)
    # Non-zero mean / non-unit scale so batch norm has something to do.
    x = (rng.standard_normal((n, BN_BATCH, 4, 4, 3)) * 2.0 + 0.5).astype(np.float32)
    return {"x": x, "y": labels(rng, n, BN_BATCH, BN_CLASSES, "sparse")}


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def all_cases():
    cases = []
    for loss_kind in ("softmax_v2", "sparse"):
        for opt_key, (opt_name, _, opt_args) in OPTIMIZERS.items():
            for kind in ("ref", "resource"):
                name = "mlp_%s_%s_%s" % (loss_kind, opt_key, kind)
                cases.append(Case(
                    name, mlp_builder(loss_kind, opt_key, kind == "resource"),
                    mlp_data(loss_kind), (opt_name, opt_args),
                    "MLP 20-16-3 (ReLU), %s cross-entropy (mean), %s, %s "
                    "variables" % (loss_kind, opt_key, kind)))
    cases.append(Case(
        "cnn_momentum_ref",
        cnn_builder(lambda: tf.train.MomentumOptimizer(0.01, 0.9), False),
        cnn_data, ("Momentum", {"learning_rate": 0.01, "momentum": 0.9}),
        "CNN 28x28x1: conv5x5x4 SAME+relu+maxpool2, conv5x5x8 SAME+relu+maxpool2, "
        "dense 16 relu, dense 10; sparse xent; Momentum; ref variables"))
    cases.append(Case(
        "cnn_adam_resource",
        cnn_builder(lambda: tf.train.AdamOptimizer(0.001), True),
        cnn_data, ("Adam", {"learning_rate": 0.001, "beta1": 0.9,
                            "beta2": 0.999, "epsilon": 1e-8}),
        "Same CNN as cnn_momentum_ref with Adam(0.001) and resource variables"))
    cases.append(Case(
        "dropout_gd_resource",
        mlp_builder("sparse", "gd", True, dropout=True), mlp_data("sparse"),
        ("GradientDescent", {"learning_rate": 0.1}),
        "MLP 20-16-3 with tf.nn.dropout(rate=placeholder_with_default(0.0, "
        "name='rate')) after the hidden ReLU; rate fed 0.0 every step; sparse "
        "xent; GradientDescent; resource variables"))
    cases.append(Case(
        "batchnorm_rmsprop_resource",
        bn_builder(lambda: tf.train.RMSPropOptimizer(0.01), True), bn_data,
        ("RMSProp", OPTIMIZERS["rmsprop"][2]),
        "x [8,4,4,3] NHWC -> tf.layers.batch_normalization(fused=True, "
        "training=<bool placeholder 'training'>) -> relu -> reshape -> dense 3; "
        "sparse xent; RMSProp; resource variables; train op under UPDATE_OPS",
        has_eval=True))
    cases.append(Case(
        "batchnorm_momentum_ref",
        bn_builder(lambda: tf.train.MomentumOptimizer(0.1, 0.9), False), bn_data,
        ("Momentum", {"learning_rate": 0.1, "momentum": 0.9}),
        "Same batch-norm model as batchnorm_rmsprop_resource with Momentum and "
        "ref variables", has_eval=True))
    cases.append(Case(
        "legacy_batchnorm_momentum_ref",
        legacy_bn_builder(lambda: tf.train.MomentumOptimizer(0.1, 0.9), False),
        legacy_bn_data, ("Momentum", {"learning_rate": 0.1, "momentum": 0.9}),
        "GraphDef producer 8: x [8,6,6,3] -> conv3x3x4 SAME -> "
        "BatchNormWithGlobalNormalization on tf.nn.moments of the batch (beta, gamma "
        "variables, scale_after_normalization) -> relu -> reshape -> dense 3; sparse xent; "
        "Momentum; ref variables", producer=8))
    cases.append(Case(
        "mlp_sparse_adam_scoped",
        mlp_builder("sparse", "adam", False), mlp_data("sparse"),
        ("Adam", OPTIMIZERS["adam"][2]),
        "Built and saved like mlp_sparse_adam_ref; the continuation imports "
        "with import_meta_graph(meta, import_scope='imported') and restores "
        "through the returned Saver",
        import_scope="imported"))
    return cases


# ---------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------

def variable_kind(var):
    return ("resource" if resource_variable_ops.is_resource_variable(var)
            else "ref")


def scoped(name, scope):
    return name if scope is None else "%s/%s" % (scope, name)


def pretrain_and_save(case, case_dir, data):
    """Build, train PRETRAIN steps from init, save `<case>-3` (relative)."""
    graph = tf.Graph()
    with graph.as_default():
        if case.producer is not None:  # (a graph of that version: its producer is the min)
            old = tf.GraphDef()
            old.versions.producer = case.producer
            tf.import_graph_def(old, name="")
        tf.set_random_seed(1)
        built = case.build()
        saver = tf.train.Saver(save_relative_paths=True)
        init = tf.global_variables_initializer()
        with new_session(graph) as sess:
            sess.run(init)
            for step in range(PRETRAIN):
                feed = {t: data[k][step] for k, t in built.feeds.items()}
                feed.update(built.const_feeds)
                sess.run(built.train_op, feed)
            with working_dir(case_dir):
                prefix = saver.save(sess, case.name, global_step=PRETRAIN)
    assert prefix == "%s-%d" % (case.name, PRETRAIN), prefix
    canonicalize_contexts(case_dir / (prefix + ".meta"))
    return built, prefix


def continue_training(case, case_dir, built, prefix, data):
    """Fresh graph: import meta, restore, record K steps."""
    scope = case.import_scope
    feed_names = {k: scoped(t.name, scope) for k, t in built.feeds.items()}
    const_feeds = {scoped(n, scope): v for n, v in built.const_feeds.items()}
    loss_name = scoped(built.loss.name, scope)
    graph = tf.Graph()
    arrays = {}
    with graph.as_default():
        kwargs = {} if scope is None else {"import_scope": scope}
        saver = tf.train.import_meta_graph(str(case_dir / (prefix + ".meta")),
                                           **kwargs)
        train_op = tf.get_collection("train_op")[0]
        loss = graph.get_tensor_by_name(loss_name)
        assert loss in tf.get_collection("loss"), tf.get_collection("loss")
        variables = tf.global_variables()
        with new_session(graph) as sess:
            with working_dir(case_dir):
                saver.restore(sess, prefix)
            start = sess.run({v.op.name: v for v in variables})
            losses = []
            for k in range(STEPS):
                feed = {feed_names[key]: data[key][PRETRAIN + k]
                        for key in feed_names}
                feed.update(const_feeds)
                loss_val, _ = sess.run([loss, train_op], feed)
                losses.append(loss_val)
            end = sess.run({v.op.name: v for v in variables})
            eval_record = None
            if case.has_eval:
                fetch = scoped(built.eval_fetch.name, scope)
                eval_feeds = {feed_names["x"]: data["x"][PRETRAIN]}
                eval_const = {scoped(n, scope): v
                              for n, v in built.eval_const_feeds.items()}
                out = sess.run(fetch, dict(eval_feeds, **eval_const))
                arrays["eval/x"] = data["x"][PRETRAIN]
                arrays["eval/out"] = out
                eval_record = {"fetch": fetch, "feeds": {"x": feed_names["x"]},
                               "const_feeds": eval_const}
        op_types = sorted({op.type for op in graph.get_operations()})
    for key in feed_names:
        arrays["feed/" + key] = data[key][PRETRAIN:]
    arrays["loss"] = np.array(losses, np.float32)
    for name, value in start.items():
        arrays["start/" + name] = value
    for name, value in end.items():
        arrays["end/" + name] = value
    save_npz(case_dir / "continue.npz", arrays)
    record = continuation_record(
        case.name, prefix, feed_names, const_feeds, loss_name, scope, variables,
        {"name": case.optimizer[0], "args": case.optimizer[1]}, eval_record, op_types,
        case.description)
    write_json(case_dir / (case.name + ".json"), record)
    return record, losses


def continuation_record(name, prefix, feed_names, const_feeds, loss_name, scope,
                        variables, optimizer, eval_record, op_types, description,
                        extra=None):
    """A case's JSON record (the format in the module docstring); ``extra`` keys (the
    device fixtures' placement facts) go before the description."""
    record = {
        "case": name,
        "meta": prefix + ".meta",
        "checkpoint": prefix,
        "pretrain_steps": PRETRAIN,
        "steps": STEPS,
        "feeds": feed_names,
        "const_feeds": const_feeds,
        "loss": loss_name,
        "fetch": None,
        "train_op_collection": "train_op",
        "import_scope": scope,
        "variables": [v.op.name for v in variables],
        "variable_kinds": {v.op.name: variable_kind(v) for v in variables},
        "optimizer": optimizer,
        "eval": eval_record,
        "op_types": op_types,
    }
    record.update(extra or {})
    record["description"] = description
    return record


def run_case(case):
    case_dir = OUT / case.name
    case_dir.mkdir(parents=True)
    data = case.data(PRETRAIN + STEPS)
    built, prefix = pretrain_and_save(case, case_dir, data)
    return continue_training(case, case_dir, built, prefix, data)


# ---------------------------------------------------------------------------
# Variable-free graph
# ---------------------------------------------------------------------------

def run_no_vars():
    name = "no_vars"
    case_dir = OUT / name
    case_dir.mkdir(parents=True)
    rng = np.random.RandomState(3)
    w1 = rng.standard_normal((MLP_IN, 5)).astype(np.float32) * 0.5
    w2 = rng.standard_normal((5, 4)).astype(np.float32)
    c = np.arange(1, 5, dtype=np.float32)
    xs = rng.standard_normal((STEPS, MLP_BATCH, MLP_IN)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, MLP_IN], name="x")
        h = tf.tanh(tf.matmul(x, tf.constant(w1, name="w1")), name="hidden")
        p = tf.nn.softmax(tf.matmul(h, tf.constant(w2, name="w2")), name="probs")
        tf.reduce_sum(p * tf.constant(c, name="c"), axis=1, name="out")
        tf.train.export_meta_graph(filename=str(case_dir / (name + ".meta")))
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.train.import_meta_graph(str(case_dir / (name + ".meta")))
        assert saver is None
        out_t = graph.get_tensor_by_name("out:0")
        with new_session(graph) as sess:
            outs = np.stack([sess.run(out_t, {"x:0": xk}) for xk in xs])
        op_types = sorted({op.type for op in graph.get_operations()})
    save_npz(case_dir / "continue.npz", {"feed/x": xs, "out": outs})
    record = {
        "case": name,
        "meta": name + ".meta",
        "checkpoint": None,
        "pretrain_steps": 0,
        "steps": STEPS,
        "feeds": {"x": "x:0"},
        "const_feeds": {},
        "loss": None,
        "fetch": "out:0",
        "train_op_collection": None,
        "import_scope": None,
        "variables": [],
        "variable_kinds": {},
        "optimizer": None,
        "eval": None,
        "op_types": op_types,
        "description": "No variables: out = reduce_sum(softmax(tanh(x @ w1) @ w2)"
                       " * c, axis=1) with Const w1 [20,5], w2 [5,4], c [4]; "
                       "no checkpoint; npz 'out' is TF's out:0 for each feed/x[k]",
    }
    write_json(case_dir / (name + ".json"), record)
    return record, list(outs[:, 0])


# ---------------------------------------------------------------------------

def check_npz(case_dir, record):
    """np.load round-trips the '/' keys; start/end cover every variable."""
    with np.load(case_dir / "continue.npz") as npz:
        keys = set(npz.files)
        for var in record["variables"]:
            assert "start/" + var in keys and "end/" + var in keys, var
        for key in record["feeds"]:
            assert npz["feed/" + key].shape[0] == STEPS
        if record["loss"] is not None:
            assert npz["loss"].shape == (STEPS,)
            assert np.all(np.isfinite(npz["loss"]))


def human(n):
    return "%.1fK" % (n / 1024.0)


def main():
    only = sys.argv[1:]  # case names: regenerate just these (and keep the others)
    if only:
        index = json.loads((OUT / "index.json").read_text())
        for case in all_cases():
            if case.name in only:
                shutil.rmtree(OUT / case.name, ignore_errors=True)
                _, losses = run_case(case)
                print(case.name, losses)
                if case.name not in index["cases"]:
                    index["cases"].insert(index["cases"].index("no_vars"), case.name)
        write_json(OUT / "index.json", index)
        return
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rows = []
    names = []
    for case in all_cases():
        record, losses = run_case(case)
        rows.append((record, losses))
        names.append(case.name)
    record, outs = run_no_vars()
    rows.append((record, outs))
    names.append("no_vars")
    write_json(OUT / "index.json", {"cases": names})

    union = set()
    print("%-42s %4s %8s %8s %8s %10s %10s" % (
        "case", "ops", "meta", "data", "npz", "loss[0]", "loss[-1]"))
    for record, values in rows:
        case_dir = OUT / record["case"]
        check_npz(case_dir, record)
        union.update(record["op_types"])
        data_file = case_dir / ("%s.data-00000-of-00001" % record["checkpoint"]) \
            if record["checkpoint"] else None
        print("%-42s %4d %8s %8s %8s %10.6f %10.6f" % (
            record["case"], len(record["op_types"]),
            human((case_dir / record["meta"]).stat().st_size),
            human(data_file.stat().st_size) if data_file else "-",
            human((case_dir / "continue.npz").stat().st_size),
            values[0], values[-1]))
    print("op types union (%d): %s" % (len(union), " ".join(sorted(union))))


if __name__ == "__main__":
    main()
