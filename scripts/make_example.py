"""Generate the bundled real example: a digits MLP trained by TensorFlow, to be resumed.

gpugraph never imports TensorFlow; this script (run with the TF environment) is the only place
that writes ``tests/fixtures/example/``.  It deletes and rewrites
``tests/fixtures/example/digits/``:

* ``digits.npz``: scikit-learn's 8x8 digits (1797 samples, 64 features, 10 classes), pixels
  scaled to [0, 1] (float32), labels int64, split by a seeded permutation into
  ``train_images`` [1500, 64] / ``train_labels`` [1500] and ``test_images`` [297, 64] /
  ``test_labels`` [297].
* ``model-300.meta``, ``model-300.index``, ``model-300.data-00000-of-00001``, ``checkpoint``:
  a 64-32-10 ReLU MLP (``tf.compat.v1`` graph mode, resource variables, glorot init) trained
  with Adam(0.005) for 300 steps of batch 64 and saved once by ``tf.train.Saver`` (binary
  ``.meta``; the ``checkpoint`` state file holds relative paths).  Placeholders ``images:0``
  (float32 [None, 64]) and ``labels:0`` (int64 [None]); tensors ``logits:0``, ``loss:0`` (in
  the ``loss`` collection) and ``accuracy:0`` (in the ``eval`` collection); the Adam update is
  in ``train_op``.
* ``continue.npz``: TF's own continuation of the run for 100 more steps, computed in a fresh
  graph after ``import_meta_graph`` + ``restore`` exactly as a user would resume it:
  ``continue_order`` (int32 [100, 64], indices into the train set for each step), ``loss``
  [100] (TF's loss at each step, fetched together with the train op, i.e. before that step's
  update), ``test_accuracy_after`` and ``test_loss_after`` (scalars, on the test set after the
  100 steps).
* ``example.json``: the feeds, tensor names, batch size, TF's test loss/accuracy at step 300,
  the continuation summary and the TF version.

Run it from the repository root (scikit-learn is needed for the data only)::

    /work/tfenv/bin/pip install -r scripts/fixtures_requirements.txt scikit-learn
    /work/tfenv/bin/python scripts/make_example.py

The ``.npz`` and ``.json`` outputs are byte-reproducible: fixed graph and numpy seeds,
single-threaded sessions, oneDNN disabled, zip members with fixed timestamps.  The
checkpoint files (``.meta``, ``.index``, ``.data``, ``checkpoint``) come out byte-identical
from run to run as well.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import save_npz  # noqa: E402

tf1 = tf.compat.v1
# TF 1.x defaults, as a TF1 user had them (importing make_fixtures already calls
# disable_v2_behavior; repeated here so the choice is visible): graph mode, control flow v1,
# and ref variables unless asked otherwise.  The model's weights (and so their Adam slots) are
# created with use_resource=True; global_step and Adam's beta1_power/beta2_power are therefore
# ref (VariableV2) variables, so the example holds both kinds.
tf1.disable_v2_behavior()
tf1.disable_eager_execution()
tf1.disable_control_flow_v2()

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "example" / "digits"

N_TRAIN = 1500
BATCH = 64
TF_STEPS = 300
CONTINUE_STEPS = 100
LEARNING_RATE = 0.005
HIDDEN = 32
SPLIT_SEED = 0
TRAIN_SEED = 1
CONTINUE_SEED = 2
GRAPH_SEED = 1


def save_npz_compressed(path, arrays):
    """np.savez_compressed equivalent with fixed zip timestamps (byte-reproducible)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


@contextlib.contextmanager
def working_dir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def new_session(graph):
    config = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    return tf1.Session(graph=graph, config=config)


def load_data():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    perm = np.random.RandomState(SPLIT_SEED).permutation(len(images))
    train, test = perm[:N_TRAIN], perm[N_TRAIN:]
    return {"train_images": images[train], "train_labels": labels[train],
            "test_images": images[test], "test_labels": labels[test]}


def batch_order(seed, steps, n=N_TRAIN, batch=BATCH):
    """[steps, batch] int32 indices: seeded per-epoch permutations, concatenated and chunked."""
    rng = np.random.RandomState(seed)
    need = steps * batch
    stream = np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])
    return stream[:need].reshape(steps, batch).astype(np.int32)


def build_model():
    images = tf1.placeholder(tf.float32, [None, 64], name="images")
    labels = tf1.placeholder(tf.int64, [None], name="labels")
    glorot = tf1.glorot_uniform_initializer()
    with tf1.variable_scope("hidden"):
        w1 = tf1.get_variable("weights", [64, HIDDEN], initializer=glorot, use_resource=True)
        b1 = tf1.get_variable("biases", [HIDDEN], initializer=tf1.zeros_initializer(),
                              use_resource=True)
        hidden = tf.nn.relu(tf.matmul(images, w1) + b1)
    with tf1.variable_scope("output"):
        w2 = tf1.get_variable("weights", [HIDDEN, 10], initializer=glorot, use_resource=True)
        b2 = tf1.get_variable("biases", [10], initializer=tf1.zeros_initializer(),
                              use_resource=True)
        logits = tf.identity(tf.matmul(hidden, w2) + b2, name="logits")
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
        name="loss")
    tf1.add_to_collection("loss", loss)
    accuracy = tf.reduce_mean(
        tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.float32), name="accuracy")
    tf1.add_to_collection("eval", accuracy)
    global_step = tf1.train.get_or_create_global_step()
    train_op = tf1.train.AdamOptimizer(LEARNING_RATE).minimize(loss, global_step=global_step)
    return train_op


def evaluate(sess, data):
    loss, acc = sess.run(["loss:0", "accuracy:0"],
                         {"images:0": data["test_images"], "labels:0": data["test_labels"]})
    return float(loss), float(acc)


def train_and_save(data):
    order = batch_order(TRAIN_SEED, TF_STEPS)
    graph = tf1.Graph()
    with graph.as_default():
        tf1.set_random_seed(GRAPH_SEED)
        train_op = build_model()
        saver = tf1.train.Saver(max_to_keep=5)
        init = tf1.global_variables_initializer()
    with new_session(graph) as sess:
        sess.run(init)
        train_losses = []
        for idx in order:
            loss, _ = sess.run(["loss:0", train_op],
                               {"images:0": data["train_images"][idx],
                                "labels:0": data["train_labels"][idx]})
            train_losses.append(loss)
        assert sess.run("global_step:0") == TF_STEPS
        test_loss, test_acc = evaluate(sess, data)
        with working_dir(OUT):
            path = saver.save(sess, "model", global_step=TF_STEPS)
    return path, test_loss, test_acc, np.asarray(train_losses, np.float32)


def continue_from_checkpoint(data):
    """Resume the saved run in a fresh graph exactly as a user would, for CONTINUE_STEPS."""
    order = batch_order(CONTINUE_SEED, CONTINUE_STEPS)
    graph = tf1.Graph()
    with graph.as_default():
        prefix = tf1.train.latest_checkpoint(str(OUT))
        saver = tf1.train.import_meta_graph(prefix + ".meta")
        train_op = tf1.get_collection("train_op")[0]
    with new_session(graph) as sess:
        saver.restore(sess, prefix)
        assert sess.run("global_step:0") == TF_STEPS
        restored_loss, restored_acc = evaluate(sess, data)
        losses = []
        for idx in order:
            loss, _ = sess.run(["loss:0", train_op],
                               {"images:0": data["train_images"][idx],
                                "labels:0": data["train_labels"][idx]})
            losses.append(loss)
        assert sess.run("global_step:0") == TF_STEPS + CONTINUE_STEPS
        test_loss, test_acc = evaluate(sess, data)
    return {"continue_order": order, "loss": np.asarray(losses, np.float32),
            "test_accuracy_after": np.float32(test_acc),
            "test_loss_after": np.float32(test_loss)}, (restored_loss, restored_acc)


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    data = load_data()
    save_npz_compressed(OUT / "digits.npz", data)

    path, test_loss, test_acc, train_losses = train_and_save(data)
    cont, (restored_loss, restored_acc) = continue_from_checkpoint(data)
    assert restored_loss == test_loss and restored_acc == test_acc, "restore changed the model"
    save_npz(OUT / "continue.npz", cont)

    info = {
        "feeds": {"images:0": ["digits.npz", "train_images"],
                  "labels:0": ["digits.npz", "train_labels"]},
        "loss": "loss:0",
        "accuracy": "accuracy:0",
        "train_op_collection": "train_op",
        "batch_size": BATCH,
        "tf_steps": TF_STEPS,
        "tf_final_loss_on_test": test_loss,
        "tf_accuracy_on_test": test_acc,
        "continue": {"file": "continue.npz", "steps": CONTINUE_STEPS,
                     "order_key": "continue_order", "loss_key": "loss",
                     "tf_loss_on_test_after": float(cont["test_loss_after"]),
                     "tf_accuracy_on_test_after": float(cont["test_accuracy_after"])},
        "tf_version": tf.__version__,
        "description": (
            "scikit-learn's 8x8 digits (pixels/16, 1500 train / 297 test) classified by a "
            "64-32-10 ReLU MLP built with tf.compat.v1 (resource variables, glorot init), "
            "trained by TensorFlow with Adam(0.005), batch 64, for 300 steps and saved by "
            "tf.train.Saver as model-300. Feed images:0 = train_images[idx], labels:0 = "
            "train_labels[idx] for idx in continue.npz['continue_order'] and run the train_op "
            "collection to continue; continue.npz['loss'] is TF's loss at each of those 100 "
            "steps (fetched with the train op, before the update) and test_accuracy_after / "
            "test_loss_after are TF's test-set numbers after them."),
    }
    (OUT / "example.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    print("files:")
    for f in sorted(OUT.iterdir()):
        print(f"  {f.relative_to(ROOT)}  {f.stat().st_size} bytes")
    print(f"checkpoint: {path}; state file: {(OUT / 'checkpoint').read_text().strip()!r}")
    print(f"train batch loss: step 1 {train_losses[0]:.4f}, step 300 {train_losses[-1]:.4f}")
    print(f"step 300: test loss {test_loss:.6f}, test accuracy {test_acc:.4f}")
    print(f"continuation batch loss: step 301 {cont['loss'][0]:.6f}, "
          f"step 400 {cont['loss'][-1]:.6f}")
    print(f"step 400: test loss {float(cont['test_loss_after']):.6f}, "
          f"test accuracy {float(cont['test_accuracy_after']):.4f}")
    assert test_acc > 0.5, "accuracy should be clearly better than chance (0.1)"
    assert float(cont["test_loss_after"]) < test_loss, "continuation should lower the test loss"


if __name__ == "__main__":
    main()
