"""Generate real-TensorFlow training-continuation fixtures for *embedding* models.

Companion of ``scripts/make_train_fixtures.py``: same machinery (imported, not
copied), same per-case fixture format (read that module's docstring), written
to a different directory.  Run in the TF virtualenv; it deletes and rewrites
``tests/fixtures/train_sparse/``::

    /work/tfenv/bin/python scripts/make_embedding_fixtures.py
    /work/tfenv/bin/python scripts/make_embedding_fixtures.py --out /tmp/x

``index.json`` lists the cases ``embedding_<opt>_<ref|resource>``, then
``embedding_sparse_<combiner>_<opt>_<ref|resource>``; every case
directory holds ``<case>-3.meta/.index/.data-00000-of-00001``, ``checkpoint``,
``<case>.json`` and ``continue.npz`` exactly as described in
``make_train_fixtures`` (feeds are ``ids`` and ``y``, so the npz has
``feed/ids`` int64 ``[20, 8, 4]`` and ``feed/y`` int64 ``[20, 8]``; for the
``embedding_sparse_*`` cases see below).

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

``embedding_sparse_<combiner>_<opt>_<kind>`` (combiner mean/Adagrad/ref,
sqrtn/Adam/resource, sum/Momentum/resource) replace the lookup with::

    sp_ids = sparse_placeholder(int64, name="sp_ids")   # dense_shape [8, 5]
    h      = embedding_lookup_sparse(table, sp_ids, None, combiner=combiner)

fed through the three placeholders ``sp_ids/indices:0`` (int64 ``[nnz, 2]``),
``sp_ids/values:0`` (int64 ``[nnz]``) and ``sp_ids/shape:0`` (int64 ``[2]``),
feed keys ``sp_ids_indices``, ``sp_ids_values``, ``sp_ids_shape`` (npz
``feed/sp_ids_indices`` int64 ``[20, 18, 2]``, ``feed/sp_ids_values`` int64
``[20, 18]``, ``feed/sp_ids_shape`` int64 ``[20, 2]``).  Every batch has
nnz = 18 ids (0..19, repeats possible) with row-major sorted indices; the
ids per example are a permutation of (3, 1, 4, 0, 2, 5, 1, 2), so one
example (never the last: the segment ops would then output 7 rows) has no
ids and its embedding row is 0.  ``sp_ids/shape`` is fed but nothing reads
it.  TF 2.21's embedding_lookup_sparse takes two paths here:

* ref table (``mean``): the fast path, ``SparseSegmentMean`` straight on
  ``embedding/table/read`` with ``indices = sp_ids/values`` and
  ``sparse_gradient=True``; the table gradient is an ``IndexedSlices`` from
  ``SparseSegmentMeanGradV2`` (outputs: rows, sorted unique indices).
* resource table (``sqrtn``, ``sum``; a resource variable is a
  CompositeTensor, which the fast path excludes): ``Unique(sp_ids/values)``
  -> ``ResourceGather`` -> ``SparseSegmentSqrtN``/``SparseSegmentSum`` over
  the ``Unique`` idx; the gradient goes through ``SparseSegment*Grad`` (dense
  [n_unique, 8]) into the gather's ``IndexedSlices``.

Either way the optimizer dedups with ``Unique``/``UnsortedSegmentSum`` and
applies ``SparseApplyAdagrad`` / ``ResourceScatterAdd`` (Adam) /
``ResourceSparseApplyMomentum``.
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_train_fixtures as mtf  # noqa: E402  (sets TF env vars, imports TF)
import numpy as np  # noqa: E402
from make_fixtures import write_json  # noqa: E402

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


def embedding_table(use_resource):
    """The [VOCAB, DIM] table every case looks rows up in (embedding/table)."""
    with tf.variable_scope("embedding"):
        return tf.get_variable(
            "table", [VOCAB, DIM],
            initializer=tf.random_uniform_initializer(-0.5, 0.5),
            use_resource=use_resource)


def embedding_builder(opt_key, use_resource):
    def build():
        ids = tf.placeholder(tf.int64, [None, IDS_PER_ROW], name="ids")
        y = tf.placeholder(tf.int64, [None], name="y")
        with tf.variable_scope(tf.get_variable_scope(), use_resource=use_resource):
            table = embedding_table(use_resource)
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


# embedding_lookup_sparse cases: (combiner, optimizer key, variable kind).
SPARSE_CASES = (("mean", "adagrad", "ref"), ("sqrtn", "adam", "resource"),
                ("sum", "momentum", "resource"))
# ids per example (a permutation of these per batch; the last example never
# empty): NNZ ids per batch, one example with no ids, max MAX_IDS per example
SPARSE_COUNTS = (3, 1, 4, 0, 2, 5, 1, 2)
SPARSE_NNZ, SPARSE_MAX_IDS = sum(SPARSE_COUNTS), max(SPARSE_COUNTS)


def sparse_embedding_builder(combiner, opt_key, use_resource):
    def build():
        sp_ids = tf.sparse_placeholder(tf.int64, name="sp_ids")
        y = tf.placeholder(tf.int64, [None], name="y")
        with tf.variable_scope(tf.get_variable_scope(), use_resource=use_resource):
            table = embedding_table(use_resource)
            h = tf.nn.embedding_lookup_sparse(table, sp_ids, None,
                                              combiner=combiner)
            logits = mtf.dense("dense", h, DIM, CLASSES, use_resource,
                               name="logits")
        loss, train_op = mtf.head(logits, y, "sparse", OPTIMIZERS[opt_key][1]())
        return mtf.Built({"sp_ids_indices": sp_ids.indices,
                          "sp_ids_values": sp_ids.values,
                          "sp_ids_shape": sp_ids.dense_shape, "y": y},
                         loss, train_op)
    return build


def sparse_embedding_data(n):
    """Per step a SparseTensor [BATCH, SPARSE_MAX_IDS] of SPARSE_NNZ ids
    (row-major sorted indices, example i holding a permutation of
    SPARSE_COUNTS ids, so one example per batch has none) and labels."""
    rng = np.random.RandomState(5)
    indices = np.zeros((n, SPARSE_NNZ, 2), np.int64)
    values = rng.randint(0, ID_RANGE, size=(n, SPARSE_NNZ)).astype(np.int64)
    for step in range(n):
        counts = rng.permutation(SPARSE_COUNTS)
        while counts[-1] == 0:   # an empty last example would drop a row
            counts = rng.permutation(SPARSE_COUNTS)
        indices[step] = [(i, j) for i, c in enumerate(counts)
                         for j in range(c)]
    shape = np.tile(np.array([BATCH, SPARSE_MAX_IDS], np.int64), (n, 1))
    return {"sp_ids_indices": indices, "sp_ids_values": values,
            "sp_ids_shape": shape,
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
    for combiner, opt_key, kind in SPARSE_CASES:
        opt_name, _, opt_args = OPTIMIZERS[opt_key]
        cases.append(mtf.Case(
            "embedding_sparse_%s_%s_%s" % (combiner, opt_key, kind),
            sparse_embedding_builder(combiner, opt_key, kind == "resource"),
            sparse_embedding_data, (opt_name, opt_args),
            "sp_ids = sparse_placeholder(int64, name='sp_ids'): [8,%d] with "
            "%d ids per batch (values 0..%d; ids per example a permutation "
            "of %s, so one example has no ids and gives a zero row) -> "
            "embedding_lookup_sparse(embedding/table [%d,%d], random_uniform"
            "(-0.5,0.5), combiner=%r) -> dense 8->3; sparse xent (mean); "
            "%s; %s variables; table rows %d..%d never looked up"
            % (SPARSE_MAX_IDS, SPARSE_NNZ, ID_RANGE - 1,
               list(SPARSE_COUNTS), VOCAB, DIM, combiner, opt_key, kind,
               ID_RANGE, VOCAB - 1)))
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
