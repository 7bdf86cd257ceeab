"""Generate golden fixtures of the set ops (``tf.sets``: DenseToDenseSetOperation,
DenseToSparseSetOperation, SparseToSparseSetOperation, SetSize) and EditDistance (the label
error rate of CTC graphs) with real TensorFlow, on numeric values.

Writes ``tests/fixtures/ops/sets.{pb,npz,json}`` in the per-op fixture format of
make_op_fixtures.py; tests/runtime/test_ops_against_tf.py runs the family like the others::

    /work/tfenv/bin/python scripts/make_set_fixtures.py

(make_op_fixtures.py run without arguments deletes tests/fixtures/ops/: run this again after.)
"""

from __future__ import annotations

import numpy as np

import make_op_fixtures as mof

I32, I64, F32 = np.int32, np.int64, np.float32
OPS = ("a-b", "b-a", "intersection", "union")


def sparse(dense, missing=0):
    """(indices, values, shape) of the entries of ``dense`` that are not ``missing``, in
    row-major order."""
    indices = np.argwhere(dense != missing).astype(I64)
    return indices, dense[dense != missing], np.array(dense.shape, I64)


def build_sets(F):
    a = np.array([[1, 2, 3, 2], [4, 5, 6, 7], [9, 9, 9, 9]], I64)
    b = np.array([[2, 7, 1], [8, 4, 4], [1, 2, 3]], I64)
    for how in OPS:
        F.add("DenseToDenseSetOperation", set1=a, set2=b, set_operation=how)
    F.add("DenseToDenseSetOperation", "int32, rank 3, negatives",
          set1=F.ri([2, 2, 5], -4, 4), set2=F.ri([2, 2, 3], -4, 4), set_operation="union")
    F.add("DenseToDenseSetOperation", "every result empty",
          set1=np.array([[1, 2], [3, 3]], I32), set2=np.array([[1, 2, 2], [3, 1, 1]], I32),
          set_operation="a-b")
    F.add("DenseToDenseSetOperation", "rank 1", set1=np.array([1, 2], I64),
          set2=np.array([2], I64), set_operation="union", _error=True)
    F.add("DenseToDenseSetOperation", "group shapes differ", set1=a, set2=b[:2],
          set_operation="union", _error=True)
    F.add("DenseToDenseSetOperation", "unknown operation", set1=a, set2=b,
          set_operation="xor", _error=True)
    sb = np.array([[2, 0, 1], [0, 4, 4], [0, 0, 0]], I64)
    for how in OPS:
        F.add("DenseToSparseSetOperation", set1=a, **_sparse_args("set2", sb),
              set_operation=how)
    sa = np.array([[[1, 0, 5], [0, 0, 0]], [[3, 3, 0], [7, 0, 2]]], I32)
    sb3 = np.array([[[5, 0, 0], [1, 0, 0]], [[0, 3, 4], [2, 2, 0]]], I32)
    for how in OPS:
        F.add("SparseToSparseSetOperation", **_sparse_args("set1", sa),
              **_sparse_args("set2", sb3), set_operation=how)
    F.add("SetSize", "dense-like sparse", **_sparse_args("set", sb))
    F.add("SetSize", "rank 3, duplicates", **_sparse_args("set", sa))
    for normalize in (True, False):
        hyp = np.array([[[1, 2, 3, 0], [4, 0, 0, 0]], [[1, 1, 0, 0], [0, 0, 0, 0]]], I64)
        truth = np.array([[[1, 3, 0, 0], [4, 5, 6, 0]], [[0, 0, 0, 0], [7, 0, 0, 0]]], I64)
        F.add("EditDistance", **_edit_args(hyp, truth), normalize=normalize)
    F.add("EditDistance", "truth longer in its last dimension (rank 2), floats",
          **_edit_args(np.array([[1.5, 2.5, 0, 0, 0]], F32),
                       np.array([[2.5, 1.5, 3.5, 0, 0]], F32), trim=True), normalize=True)


def _sparse_args(name, dense):
    indices, values, shape = sparse(dense)
    return {f"{name}_indices": indices, f"{name}_values": values, f"{name}_shape": shape}


def _edit_args(hyp, truth, trim=False):
    hi, hv, hs = sparse(hyp)
    ti, tv, ts = sparse(truth)
    if trim:  # the hypothesis' dense shape only as long as its entries
        hs = hs.copy()
        hs[-1] = hi[:, -1].max() + 1
    return dict(hypothesis_indices=hi, hypothesis_values=hv, hypothesis_shape=hs,
                truth_indices=ti, truth_values=tv, truth_shape=ts)


def main():
    mof.generate_family("sets", build_sets, 1717)


if __name__ == "__main__":
    main()
