"""Generate golden fixtures of the batch normalization ops TF removed at GraphDef version 9,
with real TensorFlow: BatchNormWithGlobalNormalization and its gradient
(``tf.nn.batch_norm_with_global_normalization`` of TF 0.x graphs: the 2015 Inception v3, old
CIFAR and MNIST tutorials' convnets).

TF still runs them in a graph whose GraphDef producer is older than 9, so the cases are built
into a graph that starts from an empty GraphDef of producer 8 (as such a .meta imports).
Writes ``tests/fixtures/ops/legacy_bn.{pb,npz,json}`` in the per-op fixture format of
make_op_fixtures.py; tests/runtime/test_ops_against_tf.py runs the family like the others::

    /work/tfenv/bin/python scripts/make_legacy_bn_fixtures.py

(make_op_fixtures.py run without arguments deletes tests/fixtures/ops/: run this again after.)
"""

from __future__ import annotations

import numpy as np

import make_op_fixtures as mof

F32, F64 = np.float32, np.float64
PRODUCER = 8  # the last GraphDef version with these ops


def build_legacy_bn(F):
    def vectors(depth, dtype=F32):
        return dict(m=F.u([depth], dtype, -1, 1), v=F.u([depth], dtype, 0.2, 3),
                    beta=F.u([depth], dtype, -1, 1), gamma=F.u([depth], dtype, -2, 2))

    for scale in (True, False):
        for shape, dtype in (([2, 3, 4, 5], F32), ([1, 2, 2, 3], F64), ([3, 1, 1, 8], F32)):
            vec = vectors(shape[-1], dtype)
            F.add("BatchNormWithGlobalNormalization", t=F.u(shape, dtype, -3, 3), **vec,
                  variance_epsilon=0.001, scale_after_normalization=scale)
            del vec["beta"]
            F.add("BatchNormWithGlobalNormalizationGrad", t=F.u(shape, dtype, -3, 3), **vec,
                  backprop=F.u(shape, dtype, -1, 1), variance_epsilon=0.001,
                  scale_after_normalization=scale)
    F.add("BatchNormWithGlobalNormalization", "zero variance, epsilon 0 (inf, nan)",
          t=np.array([[[[1.0, 0.0]]]], F32), m=np.zeros(2, F32), v=np.array([0.0, 1.0], F32),
          beta=np.zeros(2, F32), gamma=np.ones(2, F32), variance_epsilon=0.0,
          scale_after_normalization=True)
    F.add("BatchNormWithGlobalNormalization", "input not 4-D",
          t=F.u([3, 5]), **vectors(5), variance_epsilon=0.001,
          scale_after_normalization=True, _error=True)
    F.add("BatchNormWithGlobalNormalizationGrad", "mean not 1-D",
          t=F.u([1, 2, 2, 3]), m=F.u([1, 3]), v=F.u([3], F32, 0.2, 1), gamma=F.u([3]),
          backprop=F.u([1, 2, 2, 3]), variance_epsilon=0.001, scale_after_normalization=True,
          _error=True)


def main():
    old = mof.tf.compat.v1.GraphDef()
    old.versions.producer = PRODUCER
    graph = mof.tf.Graph()
    with graph.as_default():
        mof.tf.import_graph_def(old, name="")
    mof.generate_family("legacy_bn", build_legacy_bn, 909, graph)


if __name__ == "__main__":
    main()
