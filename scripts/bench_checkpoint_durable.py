"""What durable checkpoint saves cost: ``Saver.save`` with and without ``durable=True``.

Builds a graph of float32 ref variables (no TensorFlow needed), sets them, and times whole
``Saver.save`` calls (SaveV2, the device record, the ``.meta``, the state file, deleting old
checkpoints; ``max_to_keep=2``) for a few checkpoint sizes, plain and durable (fsync of the
data, index, ``.meta`` and device record, the directory, then the state file and directory).
Each timed save writes a new step, so the page cache holds the previous saves' dirty pages as
it would in training.  Prints a table; the numbers quoted in gpugraph/train/saver.py come from
here.  Run on the file system you save to (``--dir``; the default is a temporary directory
under the current one, since /tmp may be a RAM disk where fsync costs nothing)::

    .venv/bin/python scripts/bench_checkpoint_durable.py [--sizes-mb 1 16 256] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gpugraph as gg  # noqa: E402
from gpugraph import _proto as pb  # noqa: E402
from gpugraph import dtypes  # noqa: E402
from gpugraph.framework.tensor_shape import TensorShape  # noqa: E402
from gpugraph.framework.variables import variable_from_proto  # noqa: E402

N_VARIABLES = 4


def ref_variable(graph: gg.Graph, name: str, shape: list[int]) -> gg.Variable:
    """A VariableV2 with an Assign initializer fed through a placeholder."""
    float32 = pb.AttrValue(type=dtypes.float32.as_datatype_enum)
    var = graph.create_op("VariableV2", [], name=name, attrs={
        "shape": pb.AttrValue(shape=TensorShape(shape).as_proto()), "dtype": float32,
        "container": pb.AttrValue(s=b""), "shared_name": pb.AttrValue(s=b"")})
    var.outputs[0]._shape = TensorShape(shape)
    initial = gg.placeholder(dtypes.float32, shape, name=f"{name}/initial_value")
    assign = graph.create_op("Assign", [var.outputs[0], initial], name=f"{name}/Assign", attrs={
        "T": float32, "validate_shape": pb.AttrValue(b=True), "use_locking": pb.AttrValue(b=True)})
    read = gg.identity(var.outputs[0], name=f"{name}/read")
    variable_def = pb.VariableDef(variable_name=var.outputs[0].name,
                                  initializer_name=assign.name, snapshot_name=read.name,
                                  initial_value_name=initial.name, trainable=True)
    variable = variable_from_proto(variable_def, graph=graph)
    graph.add_to_collection("variables", variable)
    return variable


def bench_size(size_mb: float, repeat: int, directory: str) -> dict[str, float]:
    graph = gg.Graph()
    rows = max(1, int(size_mb * 2**20 / 4 / N_VARIABLES / 256))
    with graph.as_default():
        variables = [ref_variable(graph, f"v{i}", [rows, 256]) for i in range(N_VARIABLES)]
        saver = gg.train.Saver(max_to_keep=2)
    times: dict[str, list[float]] = {"plain": [], "durable": []}
    with gg.Session(graph=graph) as sess:
        rng = np.random.default_rng(0)
        for v in variables:
            sess.run(v.initializer, {v.initial_value: rng.random((rows, 256), np.float32)})
        step = 0
        for _ in range(repeat):
            for mode in ("plain", "durable"):
                step += 1
                start = time.perf_counter()
                saver.save(sess, os.path.join(directory, "model"), global_step=step,
                           durable=mode == "durable")
                times[mode].append(time.perf_counter() - start)
    return {mode: min(values) for mode, values in times.items()} | {
        f"{mode}_median": statistics.median(values) for mode, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1, 16, 256])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to save (default: a temp dir here)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir or ".", prefix="bench_durable_") as tmp:
        print(f"saving under {os.path.abspath(tmp)}; best (median) of {args.repeat}")
        print(f"{'size':>8}  {'plain save':>20}  {'durable save':>20}")
        for size in args.sizes_mb:
            r = bench_size(size, args.repeat, tmp)
            print(f"{size:>6g}MB  {r['plain'] * 1e3:>9.1f} ({r['plain_median'] * 1e3:6.1f}) ms"
                  f"  {r['durable'] * 1e3:>9.1f} ({r['durable_median'] * 1e3:6.1f}) ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
