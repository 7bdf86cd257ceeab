"""Generate real-TensorFlow training-continuation fixtures for *embedding* models.

Companion of ``scripts/make_train_fixtures.py``: same machinery (imported, not
copied), same per-case fixture format (read that module's docstring), written
to a different directory.  Run in the TF virtualenv; it deletes and rewrites
``tests/fixtures/train_sparse/``::

    /work/tfenv/bin/python scripts/make_embedding_fixtures.py
    /work/tfenv/bin/python scripts/make_embedding_fixtures.py --out /tmp/x

``index.json`` lists the cases ``embedding_<opt>_<ref|resource>``; every case
directory holds ``<case>-3.meta/.index/.data-00000-of-00001``, ``checkpoint``,
``<case>.json`` and ``continue.npz`` exactly as described in
``make_train_fixtures`` (feeds are ``ids`` and ``y``, so the npz has
``feed/ids`` int64 ``[20, 8, 4]`` and ``feed/y`` int64 ``[20, 8]``).

Model (TF1 graph mode, ``variable_scope(..., use_resource=...)``)::

    ids    = placeholder(int64, [None, 4], name="ids")
    y      = placeholder(int64, [None],    name="y")
    table  = get_variable("embedding/table", [50, 8], random_uniform(-0.5, 0.5))
    h      = reduce_mean(embedding_lookup(table, ids), axis=1)      # [None, 8]
    logits = dense 8 -> 3 ("dense/kernel", "dense/bias"), name "logits"
    loss   = reduce_mean(sparse_softmax_cross_entropy(y, logits), name="loss")
    train_op = optimizer.minimize(loss, global_step)                # 'train_op'

The table gradient is an ``IndexedSlices``, so the optimizers take their sparse
paths (``Unique``/``UnsortedSegmentSum`` de-duplication, ``Scatter*``,
``SparseApply*`` / ``ResourceSparseApply*``) for the table and the dense
``Apply*`` kernels for the dense layer.  Per step the batch is 8 rows of 4 ids
drawn from ``0..ID_RANGE-1`` (= 0..19): ids repeat inside every batch and
table rows ``20..49`` are never looked up (their gradient is never touched).
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_train_fixtures as mtf  # noqa: E402  (sets TF env vars, imports TF)
from make_fixtures import write_json  # noqa: E402

import numpy as np  # noqa: E402

tf = mtf.tf

OUT = mtf.ROOT / "tests" / "fixtures" / "train_sparse"

VOCAB, DIM, IDS_PER_ROW, ID_RANGE = 50, 8, 4, 20
BATCH, CLASSES = 8, 3

# key -> (optimizer name, factory, args), in case order.  The first seven are
# the same optimizers (and hyper-parameters) as the dense train fixtures.
OPTIMIZERS = {key: mtf.OPTIMIZERS[key]
              for key in ("gd", "momentum", "nesterov", "adam", "adagrad",
                          "rmsprop", "rmsprop_centered")}
OPTIMIZERS["ftrl"] = (
    "Ftrl", lambda: tf.train.FtrlOptimizer(0.1),
    {"learning_rate": 0.1, "learning_rate_power": -0.5,
     "initial_accumulator_value": 0.1, "l1_regularization_strength": 0.0,
     "l2_regularization_strength": 0.0,
     "l2_shrinkage_regularization_strength": 0.0, "beta": 0.0})
OPTIMIZERS["ftrl_shrinkage"] = (
    "Ftrl",
    lambda: tf.train.FtrlOptimizer(
        0.1, l1_regularization_strength=0.001, l2_regularization_strength=0.001,
        l2_shrinkage_regularization_strength=0.01),
    {"learning_rate": 0.1, "learning_rate_power": -0.5,
     "initial_accumulator_value": 0.1, "l1_regularization_strength": 0.001,
     "l2_regularization_strength": 0.001,
     "l2_shrinkage_regularization_strength": 0.01, "beta": 0.0})
OPTIMIZERS["adadelta"] = (
    "Adadelta", lambda: tf.train.AdadeltaOptimizer(1.0),
    {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-8})
OPTIMIZERS["proximal_adagrad"] = (
    "ProximalAdagrad",
    lambda: tf.train.ProximalAdagradOptimizer(
        0.1, l1_regularization_strength=0.001, l2_regularization_strength=0.001),
    {"learning_rate": 0.1, "initial_accumulator_value": 0.1,
     "l1_regularization_strength": 0.001, "l2_regularization_strength": 0.001})

# Op types worth reporting (kernels the sparse paths need).
INTERESTING = ("Scatter", "Sparse", "Unique", "Segment", "Apply", "Gather")


def embedding_builder(opt_key, use_resource):
    def build():
        ids = tf.placeholder(tf.int64, [None, IDS_PER_ROW], name="ids")
        y = tf.placeholder(tf.int64, [None], name="y")
        with tf.variable_scope(tf.get_variable_scope(), use_resource=use_resource):
            with tf.variable_scope("embedding"):
                table = tf.get_variable(
                    "table", [VOCAB, DIM],
                    initializer=tf.random_uniform_initializer(-0.5, 0.5),
                    use_resource=use_resource)
            h = tf.reduce_mean(tf.nn.embedding_lookup(table, ids), axis=1)
            logits = mtf.dense("dense", h, DIM, CLASSES, use_resource,
                               name="logits")
        loss, train_op = mtf.head(logits, y, "sparse", OPTIMIZERS[opt_key][1]())
        return mtf.Built({"ids": ids, "y": y}, loss, train_op)
    return build


def embedding_data(n):
    rng = np.random.RandomState(4)
    ids = rng.randint(0, ID_RANGE, size=(n, BATCH, IDS_PER_ROW)).astype(np.int64)
    # Every batch has repeated ids (32 draws from 20 values), rows >= ID_RANGE
    # are never used.
    for batch in ids:
        assert len(np.unique(batch)) < batch.size
    return {"ids": ids,
            "y": mtf.labels(rng, n, BATCH, CLASSES, "sparse")}


def all_cases():
    cases = []
    for opt_key, (opt_name, _, opt_args) in OPTIMIZERS.items():
        for kind in ("ref", "resource"):
            cases.append(mtf.Case(
                "embedding_%s_%s" % (opt_key, kind),
                embedding_builder(opt_key, kind == "resource"),
                embedding_data, (opt_name, opt_args),
                "ids int64 [8,4] (values 0..%d, repeats within each batch) -> "
                "embedding_lookup(embedding/table [%d,%d], random_uniform"
                "(-0.5,0.5)) -> reduce_mean(axis=1) -> dense 8->3; sparse xent "
                "(mean); %s; %s variables; table rows %d..%d never looked up"
                % (ID_RANGE - 1, VOCAB, DIM, opt_key, kind, ID_RANGE,
                   VOCAB - 1)))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT,
                        help="output directory (default: %(default)s)")
    args = parser.parse_args()
    out = args.out.resolve()
    mtf.OUT = out   # mtf.run_case writes under mtf.OUT
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    rows = []
    for case in all_cases():
        record, losses = mtf.run_case(case)
        rows.append((record, losses))
    write_json(out / "index.json", {"cases": [r["case"] for r, _ in rows]})

    union = set()
    print("%-40s %4s %8s %8s %8s %10s %10s %7s" % (
        "case", "ops", "meta", "data", "npz", "loss[0]", "loss[-1]", "rows"))
    for record, losses in rows:
        case_dir = out / record["case"]
        mtf.check_npz(case_dir, record)
        union.update(record["op_types"])
        with np.load(case_dir / "continue.npz") as npz:
            start, end = npz["start/embedding/table"], npz["end/embedding/table"]
            changed = np.any(start != end, axis=1)
            assert not changed[ID_RANGE:].any(), record["case"]
        data_file = case_dir / ("%s.data-00000-of-00001" % record["checkpoint"])
        print("%-40s %4d %8s %8s %8s %10.6f %10.6f %4d/%d" % (
            record["case"], len(record["op_types"]),
            mtf.human((case_dir / record["meta"]).stat().st_size),
            mtf.human(data_file.stat().st_size),
            mtf.human((case_dir / "continue.npz").stat().st_size),
            losses[0], losses[-1], changed.sum(), VOCAB))
    print()
    for record, _ in rows:
        ops = [t for t in record["op_types"] if any(s in t for s in INTERESTING)]
        print("%-40s %s" % (record["case"], " ".join(ops)))
    print()
    print("op types union (%d): %s" % (len(union), " ".join(sorted(union))))
    sparse = sorted(t for t in union if any(s in t for s in INTERESTING))
    print("sparse/apply op types union (%d): %s" % (len(sparse), " ".join(sparse)))


if __name__ == "__main__":
    main()
