"""Writes bench_data/bench_50k.meta: a realistic ~50,000-node TF 1.x training graph.

Usage (in a virtualenv with tensorflow-cpu, see scripts/fixtures_requirements.txt):
    python scripts/make_bench_meta.py [--nodes 50000] [--out bench_data/bench_50k.meta]

The graph is a deep residual CNN built with real TensorFlow (``tf.compat.v1``, graph mode):
conv + batch-norm + ReLU blocks (ref variables in even blocks, resource variables in odd ones),
a reshape/dense/reshape bottleneck with dropout every few blocks, a ``tf.cond`` and a
``tf.while_loop`` in the stem, L2 regularisation, softmax cross entropy, gradient clipping, an
exponentially decayed learning rate and Adam with ``global_step``, so the op mix (VariableV2 /
VarHandleOp, Apply*/ResourceApply*, gradients, Shape/Reshape, Switch/Merge/Enter/Exit, ...) looks
like a real training graph.  The number of blocks is chosen from two small probe builds so that
``len(graph.get_operations())`` lands close to ``--nodes``.  ``bench_data/`` is git-ignored.

Feeds ``scripts/bench_import.py``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
import warnings

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.layers needs tf-keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import tensorflow.compat.v1 as tf  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench_data" / "bench_50k.meta"
CHANNELS = 8
SIDE = 8
N_CLASSES = 10
BOTTLENECK_EVERY = 4


def conv_block(inputs, index: int, training):
    """One residual conv + batch-norm + ReLU block; odd blocks use resource variables."""
    use_resource = index % 2 == 1
    with tf.variable_scope(f"block_{index}", use_resource=use_resource):
        w = tf.get_variable("conv/kernel", [3, 3, CHANNELS, CHANNELS],
                            regularizer=tf.nn.l2_loss)
        b = tf.get_variable("conv/bias", [CHANNELS], initializer=tf.zeros_initializer())
        conv = tf.nn.bias_add(tf.nn.conv2d(inputs, w, strides=[1, 1, 1, 1], padding="SAME"), b)
        normed = tf.layers.batch_normalization(conv, training=training, name="bn")
        out = tf.nn.relu(normed + inputs)
        if index % BOTTLENECK_EVERY == BOTTLENECK_EVERY - 1:
            out = bottleneck(out, training)
        return out


def bottleneck(inputs, training):
    """Flattens, applies a dense layer with dropout, and reshapes back (Shape/Reshape ops)."""
    flat = tf.reshape(inputs, [tf.shape(inputs)[0], SIDE * SIDE * CHANNELS])
    w = tf.get_variable("dense/kernel", [SIDE * SIDE * CHANNELS, SIDE * SIDE * CHANNELS],
                        regularizer=tf.nn.l2_loss)
    b = tf.get_variable("dense/bias", [SIDE * SIDE * CHANNELS],
                        initializer=tf.zeros_initializer())
    hidden = tf.nn.tanh(tf.nn.bias_add(tf.matmul(flat, w), b))
    hidden = tf.layers.dropout(hidden, rate=0.1, training=training)
    return tf.reshape(hidden, tf.shape(inputs))


def stem(x, training):
    """Input scaling under a ``tf.cond`` and a few ``tf.while_loop`` smoothing steps."""
    with tf.variable_scope("stem"):
        scale = tf.get_variable("scale", [], initializer=tf.ones_initializer())
        scaled = tf.cond(training, lambda: x * scale, lambda: x * (scale * 0.5), name="cond")
        _, looped = tf.while_loop(lambda i, h: i < 3,
                                  lambda i, h: (i + 1, tf.nn.tanh(h) * scale + h),
                                  [tf.constant(0), scaled], name="while")
        return looped


def head(features, y):
    """Global average pool, dense logits, cross entropy plus the L2 regularisation loss."""
    pooled = tf.reduce_mean(features, axis=[1, 2])
    with tf.variable_scope("logits"):
        w = tf.get_variable("kernel", [CHANNELS, N_CLASSES])
        b = tf.get_variable("bias", [N_CLASSES], initializer=tf.zeros_initializer())
        logits = tf.nn.bias_add(tf.matmul(pooled, w), b)
    xent = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    reg = tf.add_n(tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES))
    loss = tf.add(xent, 1e-4 * reg, name="loss")
    tf.summary.scalar("loss", loss)
    tf.add_to_collection("loss", loss)
    return logits, loss


def train_op(loss):
    """Adam with global_step, exponential LR decay and clip_by_global_norm, after UPDATE_OPS."""
    global_step = tf.train.get_or_create_global_step()
    lr = tf.train.exponential_decay(1e-3, global_step, 1000, 0.96, staircase=True)
    tf.summary.scalar("learning_rate", lr)
    optimizer = tf.train.AdamOptimizer(lr)
    grads, tvars = zip(*optimizer.compute_gradients(loss))
    clipped, norm = tf.clip_by_global_norm(grads, 5.0)
    tf.summary.scalar("grad_norm", norm)
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        op = optimizer.apply_gradients(zip(clipped, tvars), global_step=global_step)
    tf.add_to_collection(tf.GraphKeys.TRAIN_OP, op)
    tf.summary.merge_all()
    return op


def build(graph: tf.Graph, blocks: int) -> tf.train.Saver:
    """Builds the training graph with ``blocks`` residual blocks and its Saver into ``graph``."""
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, SIDE, SIDE, CHANNELS], name="x")
        y = tf.placeholder(tf.int64, [None], name="y")
        training = tf.placeholder_with_default(True, [], name="training")
        h = stem(x, training)
        for i in range(blocks):
            h = conv_block(h, i, training)
        _, loss = head(h, y)
        train_op(loss)
        return tf.train.Saver()


def count_ops(blocks: int) -> int:
    """Number of operations of the graph built with ``blocks`` blocks."""
    graph = tf.Graph()
    build(graph, blocks)
    return len(graph.get_operations())


def blocks_for(nodes: int) -> int:
    """Block count whose graph has about ``nodes`` ops (linear fit over two probe builds)."""
    small, large = BOTTLENECK_EVERY * 2, BOTTLENECK_EVERY * 6
    n_small, n_large = count_ops(small), count_ops(large)
    per_block = (n_large - n_small) / (large - small)
    return max(1, round(small + (nodes - n_small) / per_block))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=50_000, help="target op count")
    parser.add_argument("--blocks", type=int, default=None,
                        help="residual blocks (default: chosen to reach --nodes)")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT, help="output .meta")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Builds, exports and reports the benchmark graph."""
    args = parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    tf.disable_v2_behavior()
    warnings.filterwarnings("ignore", message=".*is deprecated")
    start = time.perf_counter()
    blocks = args.blocks or blocks_for(args.nodes)
    graph = tf.Graph()
    saver = build(graph, blocks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with graph.as_default():
        saver.export_meta_graph(str(args.out))
    n_ops = len(graph.get_operations())
    print(f"wrote {args.out}: {n_ops} nodes ({blocks} blocks), "
          f"{args.out.stat().st_size / 1e6:.2f} MB, TF {tf.__version__}, "
          f"{time.perf_counter() - start:.1f} s")
    if args.blocks is None and abs(n_ops - args.nodes) > args.nodes * 0.04:
        print(f"warning: {n_ops} nodes is more than 4% off the target {args.nodes}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
