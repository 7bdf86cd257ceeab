"""Generate real-TensorFlow training-continuation fixtures for graphs whose
nodes carry *device annotations* (multi-tower, single-GPU, ps/worker,
explicit colocation).

gpugraph never imports TensorFlow; this script (run in the TF virtualenv, see
``scripts/fixtures_requirements.txt``) is the only place that does.  It
deletes and rewrites ``tests/fixtures/devices/``::

    /work/tfenv/bin/python scripts/make_device_fixtures.py

Format
======

Exactly the format of ``scripts/make_train_fixtures.py`` (read its
docstring): ``index.json`` lists the cases; every case directory holds
``<case>-3.meta``, ``<case>-3.index``, ``<case>-3.data-00000-of-00001``,
``checkpoint`` (relative paths), ``<case>.json`` and ``continue.npz``
(``feed/x`` ``[20, 8, 20]`` float32, ``feed/y`` ``[20, 8]`` int64, ``loss``
``[20]``, ``start/<var>``, ``end/<var>``).  The reproduction recipe is the
same: import ``meta``, restore ``checkpoint`` through the returned Saver,
check ``start/*``, run ``[loss, get_collection("train_op")[0]]`` K times
comparing ``loss[k]``, then compare ``end/*``.

Extra keys in ``<case>.json``:

* ``"devices"``: the sorted distinct ``NodeDef.device`` strings of the stored
  ``.meta`` (``""`` included when some nodes have no device).  These are the
  *requested* devices as TF's Python layer canonicalized them
  (``/gpu:1`` -> ``/device:GPU:1``); they are what the graph was built with.
* ``"device_counts"``: ``{device: number of nodes}`` in the stored ``.meta``.
* ``"class_attrs"``: number of nodes with a ``_class`` attr in the ``.meta``.
* ``"import_device_changes"``: ``{node: [stored device, device after TF's
  plain import_meta_graph]}`` for the nodes whose device TF's importer
  changed: a node whose ``_class`` names another node takes that node's
  device (e.g. ``dense/kernel/Initializer/random_uniform``: ``""`` ->
  ``/device:CPU:0``).
* ``"soft_placement"``: true -- TF ran every case with
  ``ConfigProto(allow_soft_placement=True)`` on a CPU-only host, so every
  node actually ran on ``/job:localhost/replica:0/task:0/device:CPU:0``.
* ``"ps_worker"``: true only for ``ps_worker``.  TF cannot run ``/job:ps`` /
  ``/job:worker`` devices in a local session (soft placement never fixes a
  job), so for that case the stored ``.meta`` is the export of the graph
  *with* its device strings, while the pretraining, the checkpoint and the
  continuation were made by TF after ``import_meta_graph(meta,
  clear_devices=True)`` of that same graph (same node names, same checkpoint
  keys).  ``"clear_devices": true`` says how TF imported it, and
  ``"device_map"`` is the mapping a test should give gpugraph
  (``{"/job:ps/task:0": "/cpu:0", "/job:worker/task:0": "/cpu:0"}``).
  For the other cases ``clear_devices`` is false and ``device_map`` null.
  (Checked by hand once: the stored ps_worker ``.meta``, imported *with* its
  devices and run on an in-process two-job cluster -- ``tf.distribute.Server``
  for ``ps`` and ``worker`` on localhost -- reproduced ``loss`` and ``end/*``
  bit-exactly.  Not done here: it needs free local ports.)

TF facts these graphs exercise (TF 2.21, see also tf_facts.md section 6):

* Variable initializers (``<var>/Initializer/...``) are built under
  ``ops.device(None)``: stored device ``""`` but ``_class loc:@<var>``, so
  TF's importer and placer put them with the variable.
* Resource-variable reads at use sites (``tower_0/MatMul/ReadVariableOp``,
  ``Adam/update_*/ResourceApplyAdam/ReadVariableOp``) are built under
  ``colocate_with(None, ignore_existing=True)``, which resets the device
  stack: stored device ``""`` and no ``_class`` even inside ``tf.device``.
* ``tf.group`` (``init``, ``<opt>/update``, ``save/restore_all``) groups its
  inputs by device: one input device gives one NoOp on that device, several
  give per-device ``<name>/NoOp``, ``<name>/NoOp_1``, ... plus a device-less
  ``<name>`` (colocated case).
* Slots and Adam's ``beta1_power``/``beta2_power`` are colocated with their
  variable (the beta powers with the first variable by name,
  ``dense/bias``).
* A local DirectSession places the *whole* graph on the first run: one
  unplaceable node (``/job:ps``) fails every ``sess.run``, even a restore.

Determinism: fixed graph and numpy seeds, single-threaded sessions, oneDNN
disabled, ``.npz`` files written with fixed zip timestamps.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import collections  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from make_fixtures import (canonicalize_contexts, save_npz,  # noqa: E402
                           working_dir, write_json)
from make_train_fixtures import (MLP_CLASSES, MLP_HIDDEN, MLP_IN,  # noqa: E402
                                 PRETRAIN, STEPS, check_npz, continuation_record,
                                 human, mlp_data)

tf.disable_v2_behavior()
tf.get_logger().setLevel("ERROR")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "devices"

PS_DEVICE_MAP = {"/job:ps/task:0": "/cpu:0", "/job:worker/task:0": "/cpu:0"}
FULL_CPU = "/job:localhost/replica:0/task:0/device:CPU:0"

MOMENTUM = ("Momentum", lambda: tf.train.MomentumOptimizer(0.1, 0.9),
            {"learning_rate": 0.1, "momentum": 0.9})
ADAM = ("Adam", lambda: tf.train.AdamOptimizer(0.01),
        {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8})
# ps_worker: Adam with another rate, so its numbers differ from
# towers_2gpu_resource's (same init, data and maths otherwise).
ADAM_PS = ("Adam", lambda: tf.train.AdamOptimizer(0.02),
           {"learning_rate": 0.02, "beta1": 0.9, "beta2": 0.999,
            "epsilon": 1e-8})
GD = ("GradientDescent", lambda: tf.train.GradientDescentOptimizer(0.1),
      {"learning_rate": 0.1})


def new_session(graph):
    config = tf.ConfigProto(intra_op_parallelism_threads=1,
                            inter_op_parallelism_threads=1,
                            allow_soft_placement=True)
    return tf.Session(graph=graph, config=config)


# ---------------------------------------------------------------------------
# Case description
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Built:
    feeds: dict                      # npz key -> placeholder tensor
    loss: tf.Tensor
    train_op: tf.Operation


@dataclasses.dataclass
class Case:
    name: str
    build: Callable[[], Built]
    optimizer: tuple                 # (name, factory, args)
    description: str
    ps_worker: bool = False


# ---------------------------------------------------------------------------
# Model pieces (MLP 20-16-3, ReLU, sparse softmax xent)
# ---------------------------------------------------------------------------

def make_params(use_resource):
    """dense/{kernel,bias} [20,16]/[16], dense_1/{kernel,bias} [16,3]/[3]:
    glorot_uniform kernels, zero biases, created in the current device scope."""
    params = []
    for scope, n_in, n_out in (("dense", MLP_IN, MLP_HIDDEN),
                               ("dense_1", MLP_HIDDEN, MLP_CLASSES)):
        params.append(layer_params(scope, n_in, n_out, use_resource))
    return params


def layer_params(scope, n_in, n_out, use_resource):
    with tf.variable_scope(scope):
        w = tf.get_variable("kernel", [n_in, n_out],
                            initializer=tf.glorot_uniform_initializer(),
                            use_resource=use_resource)
        b = tf.get_variable("bias", [n_out], initializer=tf.zeros_initializer(),
                            use_resource=use_resource)
    return w, b


def forward(x, params):
    (w0, b0), (w1, b1) = params
    hidden = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w0), b0))
    return tf.nn.bias_add(tf.matmul(hidden, w1), b1, name="logits")


def mean_xent(logits, y, name):
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                          logits=logits)
    return tf.reduce_mean(xent, name=name)


def placeholders():
    x = tf.placeholder(tf.float32, [None, MLP_IN], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    return x, y


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------

def towers_builder(use_resource, opt_factory):
    """Classic data-parallel multi-GPU training (the CIFAR-10 multi-GPU
    pattern): variables, input split, gradient averaging and the update on
    /cpu:0; one tower per GPU computing loss + compute_gradients on half the
    batch."""
    def build():
        x, y = placeholders()
        with tf.device("/cpu:0"):
            params = make_params(use_resource)
            var_list = [v for pair in params for v in pair]
            global_step = tf.train.get_or_create_global_step()
            xs = tf.split(x, 2, name="split_x")
            ys = tf.split(y, 2, name="split_y")
            opt = opt_factory()
        tower_losses, tower_grads = [], []
        for i in range(2):
            with tf.device("/gpu:%d" % i), tf.name_scope("tower_%d" % i):
                logits = forward(xs[i], params)
                tower_loss = mean_xent(logits, ys[i], "loss")
                grads = opt.compute_gradients(tower_loss, var_list=var_list)
                tower_losses.append(tower_loss)
                tower_grads.append(grads)
        with tf.device("/cpu:0"):
            with tf.name_scope("average_gradients"):
                averaged = []
                for (g0, v), (g1, _) in zip(*tower_grads):
                    averaged.append((tf.add_n([g0, g1]) / 2.0, v))
            loss = tf.multiply(tf.add_n(tower_losses), 0.5, name="loss")
            train_op = opt.apply_gradients(averaged, global_step=global_step)
        tf.add_to_collection("loss", loss)
        return Built({"x": x, "y": y}, loss, train_op)
    return build


def single_gpu_builder():
    """Everything under /device:GPU:0 except the loss's reduce_mean, which
    is pinned to the full name /job:localhost/replica:0/task:0/device:CPU:0."""
    def build():
        with tf.device("/device:GPU:0"):
            x, y = placeholders()
            logits = forward(x, make_params(use_resource=True))
            xent = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=y, logits=logits)
            with tf.device(FULL_CPU):
                loss = tf.reduce_mean(xent, name="loss")
            global_step = tf.train.get_or_create_global_step()
            train_op = GD[1]().minimize(loss, global_step=global_step)
        tf.add_to_collection("loss", loss)
        return Built({"x": x, "y": y}, loss, train_op)
    return build


def ps_worker_builder():
    """Between-graph replication layout from replica_device_setter: variable
    ops on /job:ps/task:0, everything else on /job:worker/task:0."""
    def build():
        setter = tf.train.replica_device_setter(
            ps_tasks=1, worker_device="/job:worker/task:0")
        with tf.device(setter):
            x, y = placeholders()
            logits = forward(x, make_params(use_resource=False))
            loss = mean_xent(logits, y, "loss")
            global_step = tf.train.get_or_create_global_step()
            train_op = ADAM_PS[1]().minimize(loss, global_step=global_step)
        tf.add_to_collection("loss", loss)
        return Built({"x": x, "y": y}, loss, train_op)
    return build


def colocated_builder():
    """dense on /gpu:0, dense_1's variables on /gpu:1, output layer computed
    on /cpu:0; explicit colocate_with() ops; gradients colocated with their
    forward ops."""
    def build():
        x, y = placeholders()
        with tf.device("/gpu:0"):
            w0, b0 = layer_params("dense", MLP_IN, MLP_HIDDEN, False)
            hidden = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w0), b0))
        with tf.device("/gpu:1"):
            w1, b1 = layer_params("dense_1", MLP_HIDDEN, MLP_CLASSES, False)
            # colocated with a device-less placeholder: the device scope is
            # dropped, the op gets _class loc:@x and no device.
            with tf.colocate_with(x):
                x_sq = tf.reduce_sum(tf.square(x), name="x_sq")
        with tf.device("/cpu:0"):
            logits = tf.nn.bias_add(tf.matmul(hidden, w1), b1, name="logits")
            xent = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=y, logits=logits), name="xent")
            # On /cpu:0 but colocated with dense/kernel (on /gpu:0): TF
            # gives it /device:GPU:0 and _class loc:@dense/kernel.
            with tf.colocate_with(w0):
                reg = tf.multiply(tf.nn.l2_loss(w0), 1e-3, name="l2_reg")
            # Colocated with dense_1/bias (on /gpu:1).
            with tf.colocate_with(b1):
                bias_pen = tf.multiply(tf.reduce_sum(tf.square(b1)), 1e-3,
                                       name="bias_penalty")
            # Tiny input-dependent term so x_sq is on the loss path.
            loss = tf.add_n([xent, reg, bias_pen, x_sq * 0.0], name="loss")
        global_step = tf.train.get_or_create_global_step()
        train_op = GD[1]().minimize(loss, global_step=global_step,
                                    colocate_gradients_with_ops=True)
        tf.add_to_collection("loss", loss)
        return Built({"x": x, "y": y}, loss, train_op)
    return build


def all_cases():
    return [
        Case("towers_2gpu", towers_builder(False, MOMENTUM[1]), MOMENTUM,
             "Data-parallel MLP 20-16-3 (ReLU), sparse xent: ref variables, "
             "global_step, tf.split of x/y into 4+4 and Momentum(0.1, 0.9) on "
             "/cpu:0; towers tower_0 on /gpu:0 and tower_1 on /gpu:1 each "
             "compute their loss and opt.compute_gradients; gradients "
             "averaged with add_n/2 on /cpu:0 (name scope average_gradients); "
             "loss = 0.5 * add_n(tower losses); apply_gradients on /cpu:0 "
             "(Momentum slots colocated with their variables). TF ran it on "
             "CPU only with allow_soft_placement=True."),
        Case("towers_2gpu_resource", towers_builder(True, ADAM[1]), ADAM,
             "Same as towers_2gpu with resource variables (global_step stays "
             "a ref VariableV2) and Adam(0.01). The VarHandleOps, slots and "
             "beta1/2_power are on /cpu:0, but each tower's reads "
             "(tower_i/MatMul/ReadVariableOp, ...) have NO device: TF creates "
             "resource reads under colocate_with(None, ignore_existing=True), "
             "which drops the tower's device scope; the placer puts them with "
             "their VarHandleOp through the resource edge. TF ran it with "
             "allow_soft_placement=True."),
        Case("single_gpu", single_gpu_builder(), GD,
             "MLP 20-16-3, sparse xent, GradientDescent(0.1), resource "
             "variables; placeholders, model, optimizer and global_step built "
             "under tf.device('/device:GPU:0'); the loss reduce_mean 'loss' "
             "under tf.device('%s'). Saver built outside any device scope "
             "(its RestoreV2 gets /device:CPU:0). TF ran it with "
             "allow_soft_placement=True." % FULL_CPU),
        Case("ps_worker", ps_worker_builder(), ADAM_PS,
             "MLP 20-16-3, sparse xent, Adam(0.02), ref variables, built "
             "under tf.device(replica_device_setter(ps_tasks=1, "
             "worker_device='/job:worker/task:0')): VariableV2 ops (incl. "
             "global_step, Adam slots, beta1/2_power) on /job:ps/task:0, "
             "everything else on /job:worker/task:0. The stored .meta keeps "
             "those devices, but TF cannot run /job:ps or /job:worker in a "
             "local session (not even with soft placement), so the 3 "
             "pretraining steps, the checkpoint and the continuation were "
             "made by TF from import_meta_graph(meta, clear_devices=True) of "
             "this same graph. Run it with device_map %s."
             % json.dumps(PS_DEVICE_MAP),
             ps_worker=True),
        Case("colocated", colocated_builder(), GD,
             "MLP 20-16-3 with dense on /gpu:0 and dense_1's variables on "
             "/gpu:1, output layer + loss on /cpu:0; loss = add_n([mean sparse "
             "xent, l2_reg, bias_penalty, x_sq*0]) where l2_reg = "
             "1e-3*l2_loss(dense/kernel) is built on /cpu:0 inside "
             "colocate_with(dense/kernel) (-> /device:GPU:0), bias_penalty = "
             "1e-3*sum(dense_1/bias^2) inside colocate_with(dense_1/bias) "
             "(-> /device:GPU:1), x_sq = sum(x^2) inside colocate_with(x) "
             "under /gpu:1 (-> no device, _class loc:@x); "
             "GradientDescent(0.1).minimize(colocate_gradients_with_ops="
             "True); ref variables; global_step without device. TF ran it "
             "with allow_soft_placement=True."),
    ]


# ---------------------------------------------------------------------------
# Inspecting the stored .meta
# ---------------------------------------------------------------------------

def meta_devices(path):
    meta = tf.MetaGraphDef()
    meta.ParseFromString(path.read_bytes())
    counts = collections.Counter(n.device for n in meta.graph_def.node)
    n_class = sum(1 for n in meta.graph_def.node if "_class" in n.attr)
    return dict(sorted(counts.items())), n_class


def import_device_changes(path):
    """{node: [stored device, device after a plain tf import_meta_graph]} for
    the nodes whose device TF's importer changed (colocated nodes take their
    colocation target's device, see tf_facts.md 6.3)."""
    meta = tf.MetaGraphDef()
    meta.ParseFromString(path.read_bytes())
    stored = {n.name: n.device for n in meta.graph_def.node}
    graph = tf.Graph()
    with graph.as_default():
        tf.train.import_meta_graph(meta)
    return {op.name: [stored[op.name], op.device]
            for op in graph.get_operations() if op.device != stored[op.name]}


def assert_cpu_only_placement(sess, fetches, feed):
    """Every node TF actually ran went to the local CPU:0."""
    options = tf.RunOptions(output_partition_graphs=True)
    metadata = tf.RunMetadata()
    sess.run(fetches, feed, options=options, run_metadata=metadata)
    assigned = {n.device for g in metadata.partition_graphs for n in g.node}
    assert assigned == {FULL_CPU}, assigned


# ---------------------------------------------------------------------------
# Running a case
# ---------------------------------------------------------------------------

def pretrain_and_save(case, case_dir, data):
    """Build, train PRETRAIN steps from init, save `<case>-3` (relative).

    ps_worker: the graph is exported with its devices as `<case>-3.meta`,
    then TF trains/saves a clear_devices import of it (write_meta_graph=False
    so the stored .meta keeps the devices)."""
    prefix = "%s-%d" % (case.name, PRETRAIN)
    meta_path = case_dir / (prefix + ".meta")
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        built = case.build()
        saver = tf.train.Saver(save_relative_paths=True)
        init = tf.global_variables_initializer()
        if not case.ps_worker:
            with new_session(graph) as sess:
                sess.run(init)
                for step in range(PRETRAIN):
                    feed = {t: data[k][step] for k, t in built.feeds.items()}
                    if step == 0:
                        assert_cpu_only_placement(sess, built.train_op, feed)
                    else:
                        sess.run(built.train_op, feed)
                saved_values = sess.run({v.op.name: v
                                         for v in tf.global_variables()})
                with working_dir(case_dir):
                    saved = saver.save(sess, case.name, global_step=PRETRAIN)
            assert saved == prefix, saved
        else:
            saver.export_meta_graph(str(meta_path))
            try:
                with new_session(graph) as sess:
                    sess.run(init)
                raise AssertionError("ps/worker graph ran locally?")
            except tf.errors.InvalidArgumentError as exc:
                line = [ln for ln in str(exc).splitlines()
                        if "Cannot assign" in ln][0]
                print("  ps_worker graph not runnable locally (expected): %s"
                      % line.strip()[:300])
    if case.ps_worker:
        feed_names = {k: t.name for k, t in built.feeds.items()}
        graph = tf.Graph()
        with graph.as_default():
            saver = tf.train.import_meta_graph(str(meta_path),
                                               clear_devices=True)
            init = graph.get_operation_by_name(init.name)
            train_op = tf.get_collection("train_op")[0]
            assert all(op.device == "" for op in graph.get_operations())
            with new_session(graph) as sess:
                sess.run(init)
                for step in range(PRETRAIN):
                    sess.run(train_op, {feed_names[k]: data[k][step]
                                        for k in feed_names})
                saved_values = sess.run({v.op.name: v
                                         for v in tf.global_variables()})
                with working_dir(case_dir):
                    saved = saver.save(sess, case.name, global_step=PRETRAIN,
                                       write_meta_graph=False)
        assert saved == prefix, saved
    canonicalize_contexts(meta_path)
    return built, prefix, saved_values


def continue_training(case, case_dir, built, prefix, saved_values, data):
    """Fresh graph: import meta (clear_devices for ps_worker), restore,
    record K steps."""
    feed_names = {k: t.name for k, t in built.feeds.items()}
    loss_name = built.loss.name
    meta_path = case_dir / (prefix + ".meta")
    graph = tf.Graph()
    arrays = {}
    with graph.as_default():
        saver = tf.train.import_meta_graph(str(meta_path),
                                           clear_devices=case.ps_worker)
        train_op = tf.get_collection("train_op")[0]
        loss = graph.get_tensor_by_name(loss_name)
        assert loss in tf.get_collection("loss"), tf.get_collection("loss")
        variables = tf.global_variables()
        with new_session(graph) as sess:
            with working_dir(case_dir):
                saver.restore(sess, prefix)
            start = sess.run({v.op.name: v for v in variables})
            assert sorted(start) == sorted(saved_values)
            for name, value in start.items():  # the restore really worked
                assert np.array_equal(value, saved_values[name]), name
            losses = []
            for k in range(STEPS):
                feed = {feed_names[key]: data[key][PRETRAIN + k]
                        for key in feed_names}
                loss_val, _ = sess.run([loss, train_op], feed)
                losses.append(loss_val)
            end = sess.run({v.op.name: v for v in variables})
        op_types = sorted({op.type for op in graph.get_operations()})
    assert int(end["global_step"]) == PRETRAIN + STEPS, end["global_step"]
    for key in feed_names:
        arrays["feed/" + key] = data[key][PRETRAIN:]
    arrays["loss"] = np.array(losses, np.float32)
    for name, value in start.items():
        arrays["start/" + name] = value
    for name, value in end.items():
        arrays["end/" + name] = value
    save_npz(case_dir / "continue.npz", arrays)
    device_counts, n_class = meta_devices(meta_path)
    record = continuation_record(
        case.name, prefix, feed_names, {}, loss_name, None, variables,
        {"name": case.optimizer[0], "args": case.optimizer[2]}, None, op_types,
        case.description, extra={
            "devices": sorted(device_counts),
            "device_counts": device_counts,
            "class_attrs": n_class,
            "import_device_changes": import_device_changes(meta_path),
            "soft_placement": True,
            "ps_worker": case.ps_worker,
            "clear_devices": case.ps_worker,
            "device_map": dict(PS_DEVICE_MAP) if case.ps_worker else None,
        })
    write_json(case_dir / (case.name + ".json"), record)
    return record, losses


def run_case(case):
    case_dir = OUT / case.name
    case_dir.mkdir(parents=True)
    data = mlp_data("sparse")(PRETRAIN + STEPS)
    built, prefix, saved_values = pretrain_and_save(case, case_dir, data)
    return continue_training(case, case_dir, built, prefix, saved_values,
                             data)


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rows = []
    for case in all_cases():
        print("case %s" % case.name)
        rows.append(run_case(case))
    write_json(OUT / "index.json", {"cases": [r["case"] for r, _ in rows]})

    for record, losses in rows:
        case_dir = OUT / record["case"]
        check_npz(case_dir, record)
        meta_size = (case_dir / record["meta"]).stat().st_size
        print("\n%s: meta %s, %d nodes with _class, loss[0]=%.6f loss[-1]=%.6f"
              % (record["case"], human(meta_size), record["class_attrs"],
                 losses[0], losses[-1]))
        for device, count in record["device_counts"].items():
            print("  %5d  %r" % (count, device))


if __name__ == "__main__":
    main()
