"""Generate the real-TensorFlow fixtures used by gpugraph's meta-graph tests.

gpugraph itself never imports TensorFlow; this script is the only place that
does.  It deletes and rewrites ``tests/fixtures/meta/``:

* ``<case>.meta`` (or ``<case>/<case>-3.meta`` plus ``.index``,
  ``.data-00000-of-00001``, ``checkpoint`` and ``continue.npz`` for the cases
  that are trained and checkpointed): small TF 1.x graphs built with
  ``tf.compat.v1``.
* ``<case>.json``: what TF's own ``tf.train.import_meta_graph`` made of that
  file under several import variants (ops with devices, inputs, colocation
  and output signatures; collections; variables; the returned Saver).
* ``<case>.tf_reexport.meta``: TF's re-export of the graph after the
  ``plain`` import, for comparing gpugraph's exporter with TF's.
* ``errors/*.meta`` and ``errors/errors.json``: deliberately broken files and
  the exception TF's import raised for each.

``continue.npz`` holds the feeds ``x`` and ``y`` (shape ``[K, ...]``) for
K further training steps after the checkpoint, ``loss`` (the loss TF computed
at each of those steps, fetched together with the train op) and every global
variable's value after those steps, keyed by its op name with ``/`` replaced
by ``__``.

Run it from the repository root with the TF environment pinned in
``scripts/fixtures_requirements.txt``::

    python3 -m venv /work/tfenv
    /work/tfenv/bin/pip install -r scripts/fixtures_requirements.txt
    /work/tfenv/bin/python scripts/make_fixtures.py

The output is deterministic: fixed graph and numpy seeds, single-threaded
sessions, oneDNN disabled, ``.npz`` files written with fixed timestamps, and
cond/while context protos re-serialized with sorted map keys (see
``canonicalize_contexts``).  In the JSON, ``control_inputs`` are sorted by
name: TF returns them in an arbitrary, run-dependent order after import.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.layers needs tf-keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from tensorflow.core.protobuf import control_flow_pb2  # noqa: E402
from tensorflow.python.framework import errors_impl  # noqa: E402
from tensorflow.python.ops import control_flow_ops  # noqa: E402
from tensorflow.python.ops import resource_variable_ops  # noqa: E402
from tensorflow.python.ops import variables as tf_variables  # noqa: E402

tf.disable_v2_behavior()
tf.get_logger().setLevel("ERROR")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "meta"
ERRORS = OUT / "errors"

TRAIN_STEPS = 3  # steps run before the checkpoint
CONTINUE_STEPS = 5  # steps recorded in continue.npz
BATCH = 8
N_CLASSES = 3


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Model:
    x: tf.Tensor
    y: tf.Tensor
    logits: tf.Tensor
    loss: tf.Tensor
    train_op: tf.Operation
    saver: Optional[tf.train.Saver] = None


def new_session(graph):
    config = tf.ConfigProto(intra_op_parallelism_threads=1,
                            inter_op_parallelism_threads=1)
    return tf.Session(graph=graph, config=config)


def shape_list(shape):
    """TensorShape -> list with None for unknown dims, or None if rank unknown."""
    shape = tf.TensorShape(shape)
    return None if shape.rank is None else shape.as_list()


def write_json(path, obj):
    path.write_text(json_text(obj) + "\n")


def json_text(obj, indent=""):
    """Indented JSON, but values without nested dicts (and short dicts) go
    on one line.

    That keeps one op / variable / collection item per line: small files
    with readable diffs.
    """
    compact = json.dumps(obj, separators=(",", ":"))
    if (not isinstance(obj, (dict, list)) or not has_nested_dict(obj)
            or (isinstance(obj, dict) and len(compact) <= 400)):
        return compact
    inner = indent + " "
    if isinstance(obj, dict):
        items = ["%s%s:%s" % (inner, json.dumps(k), json_text(v, inner))
                 for k, v in obj.items()]
        return "{\n%s\n%s}" % (",\n".join(items), indent)
    items = [inner + json_text(v, inner) for v in obj]
    return "[\n%s\n%s]" % (",\n".join(items), indent)


def has_nested_dict(obj):
    values = obj.values() if isinstance(obj, dict) else obj
    return any(isinstance(v, dict) or (isinstance(v, (dict, list))
                                       and has_nested_dict(v))
               for v in values)


def save_npz(path, arrays):
    """np.savez equivalent with fixed zip timestamps (byte-reproducible)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue())


def canonicalize_contexts(path):
    """Re-serialize cond/while context protos with sorted map entries.

    TF stores each CondContextDef/WhileContextDef as bytes made with a plain
    SerializeToString(), whose `external_values` map order varies from run to
    run.  Sorting the map keys changes nothing semantically and makes the
    file reproducible.  Other files are left untouched.
    """
    meta = tf.MetaGraphDef()
    meta.ParseFromString(path.read_bytes())
    changed = False
    for key, proto_type in (("cond_context", control_flow_pb2.CondContextDef),
                            ("while_context", control_flow_pb2.WhileContextDef)):
        values = meta.collection_def[key].bytes_list.value if (
            key in meta.collection_def) else []
        for i, raw in enumerate(values):
            proto = proto_type()
            proto.ParseFromString(raw)
            values[i] = proto.SerializeToString(deterministic=True)
            changed = changed or values[i] != raw
    if changed:
        path.write_bytes(meta.SerializeToString(deterministic=True))


def error_record(exc):
    message = str(exc).replace(socket.gethostname(), "<host>")
    return {"exception": type(exc).__name__, "message": message}


@contextlib.contextmanager
def working_dir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# ---------------------------------------------------------------------------
# Model pieces
# ---------------------------------------------------------------------------

def dense(scope, inputs, n_in, n_out, use_resource):
    with tf.variable_scope(scope):
        w = tf.get_variable("w", [n_in, n_out], use_resource=use_resource)
        b = tf.get_variable("b", [n_out], initializer=tf.zeros_initializer(),
                            use_resource=use_resource)
        return tf.nn.bias_add(tf.matmul(inputs, w), b)


def xent_loss(logits, y, name="loss"):
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                          logits=logits)
    return tf.reduce_mean(xent, name=name)


def training_head(logits, y, optimizer):
    """Loss with summary and 'loss' collection, plus the global-step train op."""
    loss = xent_loss(logits, y)
    tf.summary.scalar("loss", loss)
    tf.add_to_collection("loss", loss)
    global_step = tf.train.get_or_create_global_step()
    return loss, optimizer.minimize(loss, global_step=global_step)


def mlp_model(use_resource, optimizer):
    x = tf.placeholder(tf.float32, [None, 4], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    hidden = tf.nn.relu(dense("layer1", x, 4, 8, use_resource))
    logits = dense("layer2", hidden, 8, N_CLASSES, use_resource)
    loss, train_op = training_head(logits, y, optimizer)
    return Model(x, y, logits, loss, train_op)


def cnn_model(optimizer):
    x = tf.placeholder(tf.float32, [None, 8, 8, 1], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    with tf.variable_scope("conv"):
        w = tf.get_variable("w", [3, 3, 1, 2], use_resource=False)
        b = tf.get_variable("b", [2], initializer=tf.zeros_initializer(),
                            use_resource=False)
        conv = tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="SAME")
        hidden = tf.nn.relu(tf.nn.bias_add(conv, b))
        pooled = tf.nn.max_pool(hidden, ksize=[1, 2, 2, 1],
                                strides=[1, 2, 2, 1], padding="VALID")
    flat = tf.reshape(pooled, [-1, 4 * 4 * 2])
    logits = dense("dense", flat, 32, N_CLASSES, use_resource=False)
    loss, train_op = training_head(logits, y, optimizer)
    return Model(x, y, logits, loss, train_op)


def batches(steps, image):
    rng = np.random.RandomState(0)
    shape = (steps, BATCH, 8, 8, 1) if image else (steps, BATCH, 4)
    xs = rng.standard_normal(shape).astype(np.float32)
    ys = rng.randint(0, N_CLASSES, size=(steps, BATCH)).astype(np.int64)
    return xs, ys


# ---------------------------------------------------------------------------
# Checkpointed cases
# ---------------------------------------------------------------------------

def build_mlp_ref_sgd():
    model = mlp_model(False, tf.train.GradientDescentOptimizer(0.1))
    model.saver = tf.train.Saver(save_relative_paths=True)
    return model


def build_mlp_resource_adam():
    model = mlp_model(True, tf.train.AdamOptimizer(0.01))
    model.saver = tf.train.Saver(save_relative_paths=True)
    add_misc_collections(model)
    return model


def add_misc_collections(model):
    """One collection of every CollectionDef kind."""
    for value in (7, 8):
        tf.add_to_collection("my_ints", value)
    tf.add_to_collection("my_floats", 0.5)
    tf.add_to_collection("my_strings", "hello")
    tf.add_to_collection("my_strings", "layer1/w")
    tf.add_to_collection("my_tensors", model.logits)
    tf.add_to_collection("my_ops", model.train_op)
    packed = any_pb2.Any()
    packed.Pack(model.saver.saver_def)
    tf.add_to_collection("my_any", packed)


def build_cnn_momentum():
    optimizer = tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True)
    model = cnn_model(optimizer)
    model.saver = tf.train.Saver(save_relative_paths=True)
    return model


def export_mlp_variants(model):
    """Text and stripped exports of the mlp_ref_sgd graph."""
    model.saver.export_meta_graph(str(OUT / "mlp_ref_sgd_text.meta"),
                                  as_text=True)
    model.saver.export_meta_graph(str(OUT / "stripped.meta"),
                                  strip_default_attrs=True)


def checkpoint_case(case, build, image=False, after_save=None):
    """Train TRAIN_STEPS, save `<case>/<case>-N.*`, record continue.npz."""
    graph = tf.Graph()
    ckpt_dir = OUT / case
    ckpt_dir.mkdir(parents=True)
    xs, ys = batches(TRAIN_STEPS + CONTINUE_STEPS, image)
    with graph.as_default():
        tf.set_random_seed(1)
        model = build()
        init = tf.global_variables_initializer()
        with new_session(graph) as sess:
            sess.run(init)
            for step in range(TRAIN_STEPS):
                sess.run(model.train_op, {model.x: xs[step], model.y: ys[step]})
            model.saver.save(sess, str(ckpt_dir / case), global_step=TRAIN_STEPS)
            if after_save:
                after_save(model)
            record_continue(sess, graph, model, ckpt_dir / "continue.npz",
                            xs[TRAIN_STEPS:], ys[TRAIN_STEPS:])
    return "%s/%s-%d.meta" % (case, case, TRAIN_STEPS)


def record_continue(sess, graph, model, path, xs, ys):
    losses = []
    for x, y in zip(xs, ys):
        loss, _ = sess.run([model.loss, model.train_op], {model.x: x, model.y: y})
        losses.append(loss)
    variables = graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
    values = sess.run({v.op.name.replace("/", "__"): v for v in variables})
    save_npz(path, dict(values, x=xs, y=ys, loss=np.array(losses, np.float32)))


# ---------------------------------------------------------------------------
# Export-only cases
# ---------------------------------------------------------------------------

def export_case(case, build):
    """Build in a fresh graph; `build(path)` exports to `<case>.meta`."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1)
        build(str(OUT / (case + ".meta")))
    return case + ".meta"


def build_devices(path):
    with tf.device("/cpu:0"):
        x = tf.placeholder(tf.float32, [None, 4], name="x")
        y = tf.placeholder(tf.int64, [None], name="y")
        w = tf.get_variable("w", [4, N_CLASSES], use_resource=False)
        b = tf.get_variable("b", [N_CLASSES], use_resource=False,
                            initializer=tf.zeros_initializer())
        global_step = tf.train.get_or_create_global_step()
        optimizer = tf.train.GradientDescentOptimizer(0.1)
        x_parts = tf.split(x, 2, name="split_x")
        y_parts = tf.split(y, 2, name="split_y")
    tower_grads, tower_losses = [], []
    for i in range(2):
        with tf.device("/gpu:%d" % i), tf.name_scope("tower_%d" % i):
            logits = tf.nn.bias_add(tf.matmul(x_parts[i], w), b)
            loss = xent_loss(logits, y_parts[i])
            tower_losses.append(loss)
            tower_grads.append(optimizer.compute_gradients(loss, [w, b]))
    with tf.device("/cpu:0"):
        averaged = [(tf.reduce_mean(tf.stack([g for g, _ in pairs]), 0), pairs[0][1])
                    for pairs in zip(*tower_grads)]
        optimizer.apply_gradients(averaged, global_step=global_step)
        tf.reduce_mean(tf.stack(tower_losses), name="loss")
    add_odd_devices(w, tower_losses[1])
    tf.train.Saver(sharded=True).export_meta_graph(path)


def add_odd_devices(w, gpu_loss):
    """Job/task devices, a partial spec and explicit colocation."""
    with tf.device("/job:ps/task:0"):
        ps_var = tf.get_variable("ps_var", [N_CLASSES], use_resource=False,
                                 initializer=tf.zeros_initializer())
    with tf.device("/job:worker/replica:0/task:1/device:GPU:0"):
        worker_sum = tf.reduce_sum(ps_var, name="worker_sum")
    with tf.device("/device:CPU:*"):
        any_cpu = tf.identity(worker_sum, name="any_cpu")
    with tf.colocate_with(w.op):
        tf.identity(any_cpu, name="colocated_with_w")
    with tf.device("/cpu:0"), tf.colocate_with(gpu_loss.op):
        tf.multiply(gpu_loss, 2.0, name="colocated_with_tower_1_loss")


def build_no_vars(path):
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    c = tf.constant([1.0, 2.0, 3.0], name="c")
    y = tf.add(tf.multiply(x, 2.0, name="scaled"), c, name="y")
    tf.reduce_sum(y, axis=1, name="out")
    tf.train.export_meta_graph(filename=path)


def build_control_flow(path):
    x = tf.placeholder(tf.float32, [None, 4], name="x")
    training = tf.placeholder_with_default(False, [], name="training")
    branched = tf.cond(training, lambda: x * 2.0, lambda: x - 1.0, name="mycond")
    _, looped = tf.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, s * 2.0),
                              [tf.constant(0), tf.reduce_sum(x)], name="mywhile")
    normed = tf.layers.batch_normalization(branched, training=training, name="bn")
    dequeued = add_queue()
    pv = tf.get_variable("pv", [6, 3], use_resource=False,
                         partitioner=tf.fixed_size_partitioner(2))
    local = tf.get_variable("local_counter", [], tf.int64, use_resource=False,
                            initializer=tf.zeros_initializer(), trainable=False,
                            collections=[tf.GraphKeys.LOCAL_VARIABLES])
    model_w = tf.get_variable("model_w", [4], use_resource=False,
                              collections=[tf.GraphKeys.GLOBAL_VARIABLES,
                                           tf.GraphKeys.MODEL_VARIABLES])
    total = (tf.reduce_sum(normed * model_w) + looped + tf.reduce_sum(dequeued)
             + tf.reduce_sum(pv.as_tensor()) + tf.cast(local, tf.float32))
    tf.identity(total, name="out")
    saver = tf.train.Saver(tf.global_variables())
    saver.export_meta_graph(path)
    canonicalize_contexts(Path(path))


def add_queue():
    queue = tf.FIFOQueue(4, [tf.float32], shapes=[[4]], name="q")
    enqueue = queue.enqueue([tf.ones([4])], name="q_enqueue")
    tf.train.add_queue_runner(tf.train.QueueRunner(queue, [enqueue]))
    return queue.dequeue(name="q_dequeue")


# ---------------------------------------------------------------------------
# What TF's import_meta_graph makes of a file
# ---------------------------------------------------------------------------

MAPPED_X = "mapped_x"
# (label, import_meta_graph kwargs, setup).  setup None: a placeholder
# mapped_x with x's dtype; the variant is skipped when the file has no x.
VARIANTS = [
    ("plain", {}, {}),
    ("scoped", {"import_scope": "imp"}, {}),
    ("clear_devices", {"clear_devices": True}, {}),
    ("input_map", {"input_map": {"x:0": MAPPED_X + ":0"}}, None),
    ("twice", {}, {"repeat": 2}),
    ("twice_scoped", {"import_scope": "imp"}, {"repeat": 2}),
    ("outer_scopes", {"import_scope": "imp"},
     {"name_scope": "outer", "device": "/job:worker/device:CPU:0"}),
]


def full_setup(setup):
    base = {"placeholders": [], "name_scope": None, "device": None, "repeat": 1}
    base.update(setup)
    return base


def x_dtype(meta_path):
    """dtype name of tensor x:0 in the file, or None if there is no op x."""
    graph = tf.Graph()
    with graph.as_default():
        tf.train.import_meta_graph(str(meta_path))
    try:
        return graph.get_tensor_by_name("x:0").dtype.name
    except KeyError:
        return None


def tf_kwargs(graph, kwargs):
    """JSON kwargs -> real kwargs (input_map values become Tensors)."""
    real = dict(kwargs)
    if "input_map" in kwargs:
        real["input_map"] = {key: graph.get_tensor_by_name(value)
                             for key, value in kwargs["input_map"].items()}
    return real


def run_import(meta_path, kwargs, setup):
    graph = tf.Graph()
    saver = None
    with graph.as_default():
        for ph in setup["placeholders"]:
            tf.placeholder(tf.as_dtype(ph["dtype"]), ph["shape"], name=ph["name"])
        with contextlib.ExitStack() as stack:
            if setup["name_scope"]:
                stack.enter_context(tf.name_scope(setup["name_scope"]))
            if setup["device"]:
                stack.enter_context(tf.device(setup["device"]))
            for _ in range(setup["repeat"]):
                saver = tf.train.import_meta_graph(str(meta_path),
                                                   **tf_kwargs(graph, kwargs))
    return graph, saver


def describe_saver(saver):
    if saver is None:
        return None
    sd = saver.saver_def
    return {"filename_tensor_name": sd.filename_tensor_name,
            "save_tensor_name": sd.save_tensor_name,
            "restore_op_name": sd.restore_op_name,
            "max_to_keep": sd.max_to_keep,
            "sharded": sd.sharded,
            "keep_checkpoint_every_n_hours": sd.keep_checkpoint_every_n_hours,
            "version": int(sd.version)}


def describe_op(op):
    return {"name": op.name,
            "type": op.type,
            "device": op.device,
            "inputs": [t.name for t in op.inputs],
            "control_inputs": sorted(c.name for c in op.control_inputs),
            "colocation": [g.decode() for g in op.colocation_groups()],
            "outputs": [[t.dtype.name, shape_list(t.shape)] for t in op.outputs]}


def snapshot_name(var):
    element = getattr(var, "_snapshot", None)
    if element is None:
        element = getattr(var, "_graph_element", None)
    return None if element is None else element.name


def describe_variable(var):
    initial = getattr(var, "_initial_value", None)
    record = {"name": var.name,
              "op": var.op.name,
              "initializer": var.initializer.name,
              "snapshot": snapshot_name(var),
              "trainable": bool(var.trainable),
              "resource": isinstance(var, resource_variable_ops.BaseResourceVariable),
              "shape": shape_list(var.shape),
              "dtype": var.dtype.base_dtype.name,
              "initial_value": None if initial is None else initial.name}
    info = getattr(var, "_save_slice_info", None)
    if info is not None:
        record["save_slice_info"] = {"full_name": info.full_name,
                                     "full_shape": list(info.full_shape),
                                     "var_offset": list(info.var_offset),
                                     "var_shape": list(info.var_shape)}
    return record


def describe_item(item):
    """One collection element as JSON."""
    if isinstance(item, tf_variables.Variable):
        record = {"variable": item.name}
        info = getattr(item, "_save_slice_info", None)
        if info is not None:
            record["save_slice_info"] = describe_variable(item)["save_slice_info"]
        return record
    if isinstance(item, tf.Operation):
        return {"op": item.name}
    if isinstance(item, tf.Tensor):
        return {"tensor": item.name}
    if isinstance(item, tf.train.Saver):
        return {"saver": item.saver_def.restore_op_name}
    if isinstance(item, tf.train.QueueRunner):
        return describe_queue_runner(item)
    if isinstance(item, control_flow_ops.CondContext):
        return {"cond_context": item.name, "pred": item.pred.name,
                "pivot": item.pivot.name, "branch": item.branch}
    if isinstance(item, control_flow_ops.WhileContext):
        return {"while_context": item.name, "pivot": item.pivot.name,
                "loop_exits": [t.name for t in item.loop_exits],
                "loop_enters": [t.name for t in item.loop_enters]}
    if isinstance(item, any_pb2.Any):
        return {"any": item.type_url}
    if isinstance(item, bytes):
        return {"str": item.decode(), "bytes": True}
    if isinstance(item, str):
        return {"str": item}
    if isinstance(item, int) and not isinstance(item, bool):
        return {"int": item}
    if isinstance(item, float):
        return {"float": item}
    return {"other": type(item).__name__, "repr": str(item)}


def describe_queue_runner(qr):
    return {"queue_runner": qr.queue.name,
            "enqueue_ops": [op.name for op in qr.enqueue_ops],
            "close_op": qr.close_op.name,
            "cancel_op": qr.cancel_op.name,
            "exception_types": [errors_impl.error_code_from_exception_type(e)
                                for e in qr.queue_closed_exception_types]}


def describe_graph(graph, saver):
    keys = sorted(graph.get_all_collection_keys())
    return {"saver": describe_saver(saver),
            "ops": [describe_op(op) for op in graph.get_operations()],
            "collection_keys": keys,
            "collections": {k: [describe_item(i) for i in graph.get_collection(k)]
                            for k in keys},
            "global_variables": [describe_variable(v) for v in
                                 graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)],
            "trainable_variables": [v.name for v in graph.get_collection(
                tf.GraphKeys.TRAINABLE_VARIABLES)]}


def reexport(graph, saver, path):
    with graph.as_default():
        if saver is not None:
            saver.export_meta_graph(str(path))
        else:
            tf.train.export_meta_graph(filename=str(path))
    canonicalize_contexts(path)


def record_imports(case, meta_file):
    """Write <case>.json (and <case>.tf_reexport.meta from the plain import)."""
    meta_path = OUT / meta_file
    dtype = x_dtype(meta_path)
    imports = []
    for label, kwargs, setup in VARIANTS:
        if setup is None:
            if dtype is None:
                continue
            setup = {"placeholders": [{"name": MAPPED_X, "dtype": dtype,
                                       "shape": None}]}
        setup = full_setup(setup)
        entry = {"label": label, "kwargs": kwargs, "setup": setup}
        try:
            graph, saver = run_import(meta_path, kwargs, setup)
        except Exception as exc:  # recorded, not fatal
            entry["error"] = error_record(exc)
        else:
            entry["result"] = describe_graph(graph, saver)
            if label == "plain":
                reexport(graph, saver, OUT / (case + ".tf_reexport.meta"))
        imports.append(entry)
    write_json(OUT / (case + ".json"),
               {"tf_version": tf.__version__, "meta_file": meta_file,
                "case": case, "imports": imports})


# ---------------------------------------------------------------------------
# Broken files
# ---------------------------------------------------------------------------

def base_meta_graph():
    """A tiny valid MetaGraphDef: placeholder a -> Identity b."""
    graph = tf.Graph()
    with graph.as_default():
        a = tf.placeholder(tf.float32, [None], name="a")
        tf.identity(a, name="b")
        return tf.train.export_meta_graph(graph=graph)


def unbound_meta_graph():
    """export_scope='net' turns the outside input x into $unbound_inputs_x."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None], name="x")
        with tf.name_scope("net"):
            tf.multiply(x, 2.0, name="y")
        return tf.train.export_meta_graph(graph=graph, export_scope="net")


def find_node(mg, name):
    return next(n for n in mg.graph_def.node if n.name == name)


def set_inputs(mg, name, inputs):
    node = find_node(mg, name)
    del node.input[:]
    node.input.extend(inputs)


def add_cycle(mg):
    for name, source in (("c", "d"), ("d", "c")):
        node = mg.graph_def.node.add()
        node.CopyFrom(find_node(mg, "b"))
        node.name = name
        set_inputs(mg, name, [source])


def edit_duplicate(mg):
    mg.graph_def.node.add().CopyFrom(find_node(mg, "a"))


def edit_bad_consumer(mg):
    versions = mg.graph_def.versions
    versions.bad_consumers.append(versions.producer)


EDITS = {
    "unknown_input": lambda mg: set_inputs(mg, "b", ["nope"]),
    "duplicate_node": edit_duplicate,
    "bad_output_index": lambda mg: set_inputs(mg, "b", ["a:3"]),
    "cycle": add_cycle,
    "bad_colocation": lambda mg: find_node(mg, "b").attr["_class"].list.s.append(
        b"loc:@nonexistent"),
    "control_before_data": lambda mg: set_inputs(mg, "b", ["^a", "a"]),
    "min_consumer": lambda mg: setattr(mg.graph_def.versions, "min_consumer", 99999),
    "producer_negative": lambda mg: setattr(mg.graph_def.versions, "producer", -1),
    "bad_consumer": edit_bad_consumer,
    "unregistered_op": lambda mg: setattr(find_node(mg, "b"), "op", "FooBarOp"),
    "missing_collection_node": lambda mg: mg.collection_def[
        "my_nodes"].node_list.value.append("missing:0"),
    "dtype_mismatch": lambda mg: setattr(find_node(mg, "b").attr["T"], "type",
                                         tf.int32.as_datatype_enum),
}


def error_files():
    """{file name: bytes} for every broken file (plus valid.meta)."""
    base = base_meta_graph()
    valid = base.SerializeToString(deterministic=True)
    files = {"valid.meta": valid,
             "unbound_inputs.meta":
                 unbound_meta_graph().SerializeToString(deterministic=True),
             "truncated.meta": valid[:len(valid) // 2],
             "empty.meta": b"",
             "random_bytes.meta": np.random.RandomState(1234).bytes(200),
             "bad_text.meta": b'meta_info_def {\n  bogus_field: 1\n}\n',
             "truncated_text.meta": b'graph_def {\n  node {\n    name: "a"\n'}
    for name, edit in EDITS.items():
        mg = tf.MetaGraphDef()
        mg.CopyFrom(base)
        edit(mg)
        files[name + ".meta"] = mg.SerializeToString(deterministic=True)
    return files


ERROR_IMPORTS = [(name + ".meta", {}, {}) for name in EDITS] + [
    ("unbound_inputs.meta", {}, {}),
    ("valid.meta", {"input_map": {"nonexistent:0": MAPPED_X + ":0"}},
     {"placeholders": [{"name": MAPPED_X, "dtype": "float32", "shape": None}]}),
    ("truncated.meta", {}, {}),
    ("empty.meta", {}, {}),
    ("random_bytes.meta", {}, {}),
    ("bad_text.meta", {}, {}),
    ("truncated_text.meta", {}, {}),
    ("missing.meta", {}, {}),  # deliberately not written
]


def make_errors():
    ERRORS.mkdir(parents=True)
    for name, data in error_files().items():
        (ERRORS / name).write_bytes(data)
    records = []
    with working_dir(ERRORS):  # keeps paths in messages relative
        for file_name, kwargs, setup in ERROR_IMPORTS:
            setup = full_setup(setup)
            record = {"file": file_name, "kwargs": kwargs, "setup": setup}
            try:
                _, saver = run_import(file_name, kwargs, setup)
            except Exception as exc:  # the point of these files
                record.update(error_record(exc))
            else:
                record.update({"exception": None, "message": None,
                               "returned": describe_saver(saver)})
            records.append(record)
    write_json(ERRORS / "errors.json", records)


# ---------------------------------------------------------------------------

def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    cases = {
        "mlp_ref_sgd": checkpoint_case("mlp_ref_sgd", build_mlp_ref_sgd,
                                       after_save=export_mlp_variants),
        "mlp_ref_sgd_text": "mlp_ref_sgd_text.meta",
        "stripped": "stripped.meta",
        "mlp_resource_adam": checkpoint_case("mlp_resource_adam",
                                             build_mlp_resource_adam),
        "cnn_momentum": checkpoint_case("cnn_momentum", build_cnn_momentum,
                                        image=True),
        "devices": export_case("devices", build_devices),
        "no_vars": export_case("no_vars", build_no_vars),
        "control_flow": export_case("control_flow", build_control_flow),
    }
    for case, meta_file in cases.items():
        record_imports(case, meta_file)
    make_errors()


def check_gpugraph():
    """Runs scripts/check_with_tf.py's checks on the fresh fixtures; returns its exit status."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import check_with_tf
    return check_with_tf.main([])


if __name__ == "__main__":
    import argparse
    import sys
    parser = argparse.ArgumentParser(description="Regenerate tests/fixtures/meta/.")
    parser.add_argument("--check-gpugraph", action="store_true",
                        help="afterwards, run scripts/check_with_tf.py against the fixtures")
    args = parser.parse_args()
    main()
    if args.check_gpugraph:
        sys.exit(check_gpugraph())
