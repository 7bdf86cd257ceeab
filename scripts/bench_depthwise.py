"""Benchmark: DepthwiseConv2dNative and its two backprops, gpugraph vs TensorFlow CPU.

One MobileNet-sized layer (N=32, 112x112x32, 3x3, stride 1, SAME).  Each side times its
kernels on the same random arrays; TF runs in its own interpreter::

    .venv/bin/python scripts/bench_depthwise.py --tf-python /path/to/tf-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

SHAPE, FILTER = (32, 112, 112, 32), (3, 3, 32, 1)
OPS = ("DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropInput",
       "DepthwiseConv2dNativeBackpropFilter")


def arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal(SHAPE).astype(np.float32),
            rng.standard_normal(FILTER).astype(np.float32),
            rng.standard_normal(SHAPE).astype(np.float32))


def median_time(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_gpugraph(runs: int) -> dict[str, float]:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "runtime"))
    from helpers import out

    import gpugraph as gg

    x, w, dy = arrays()
    f32 = gg.dtypes.float32
    attrs = {"T": f32, "strides": [1, 1, 1, 1], "padding": b"SAME"}
    with gg.Graph().as_default():
        px, pw, pdy = (gg.placeholder(f32, a.shape) for a in (x, w, dy))
        fetches = [out(OPS[0], px, pw, **attrs),
                   out(OPS[1], gg.constant(np.array(SHAPE, np.int32)), pw, pdy, **attrs),
                   out(OPS[2], px, gg.constant(np.array(FILTER, np.int32)), pdy, **attrs)]
        feeds = {px: x, pw: w, pdy: dy}
        with gg.Session() as sess:
            return {op: median_time(lambda t=t: sess.run(t, feeds), runs)
                    for op, t in zip(OPS, fetches, strict=True)}


def time_tf(runs: int) -> dict[str, float]:  # pragma: no cover - needs TensorFlow
    import tensorflow as tf

    x, w, dy = (tf.constant(a) for a in arrays())
    attrs = {"strides": [1, 1, 1, 1], "padding": "SAME"}
    calls = [
        lambda: tf.raw_ops.DepthwiseConv2dNative(input=x, filter=w, **attrs).numpy(),
        lambda: tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=list(SHAPE), filter=w, out_backprop=dy, **attrs).numpy(),
        lambda: tf.raw_ops.DepthwiseConv2dNativeBackpropFilter(
            input=x, filter_sizes=list(FILTER), out_backprop=dy, **attrs).numpy(),
    ]
    return {op: median_time(call, runs) for op, call in zip(OPS, calls, strict=True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tf-python", help="a Python with TensorFlow, for side-by-side ratios")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tf-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tf_worker:
        print(json.dumps(time_tf(args.runs)))
        return 0
    ours = time_gpugraph(args.runs)
    theirs = None
    if args.tf_python:
        done = subprocess.run([args.tf_python, __file__, "--tf-worker", "--runs", str(args.runs)],
                              capture_output=True, text=True, check=True,
                              env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{'op':<38} {'gpugraph':>10} {'TF':>10} {'TF/gpugraph':>12}")
    for op in OPS:
        tf_time = theirs[op] if theirs else None
        ratio = f"{tf_time / ours[op]:.2f}x" if tf_time else "-"
        tf_text = f"{tf_time * 1e3:.1f} ms" if tf_time else "-"
        print(f"{op:<38} {ours[op] * 1e3:>7.1f} ms {tf_text:>10} {ratio:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
