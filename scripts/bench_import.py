"""Times gpugraph's ``import_meta_graph`` against TensorFlow's on the same ``.meta`` file.

Usage:
    python scripts/bench_import.py [META] [--repeat N] [--json] [--profile TOP]
                                   [--tf-python PYTHON]

    # side by side with TF, each in its own virtualenv (gpugraph with its dependencies):
    .venv/bin/python scripts/bench_import.py --tf-python /work/tfenv/bin/python
    # or both in one interpreter that has TF and gpugraph's dependencies:
    PYTHONPATH=. /work/tfenv/bin/python scripts/bench_import.py

META defaults to bench_data/bench_50k.meta, written by ``scripts/make_bench_meta.py``.  Each
repeat starts from a fresh graph (and a ``gc.collect()``, outside the timed region), and the
rows take turns (one run of each per round), so a change in the machine's load during the
benchmark hits every row alike.  The table gives the first (cold) run, the best and the median
of N repeats of:

* ``protobuf parse``: ``pb.MetaGraphDef.FromString`` of the file's bytes with gpugraph's proto
  classes (the floor: what any importer pays before doing anything);
* ``gpugraph``: ``gpugraph.train.import_meta_graph(path)`` into a fresh ``gpugraph.Graph()``;
* ``gpugraph, gc disabled``: the same with Python's cyclic GC off during the import, for
  information only (how much of gpugraph's time is garbage collection); not in the ratio;
* ``tensorflow``: ``tf.compat.v1.train.import_meta_graph(path)`` into a fresh ``tf.Graph()``,
  in a worker process run by ``--tf-python`` (timed inside it), else in this interpreter when
  ``import tensorflow`` works here.

gpugraph's first run in a process also starts numba (~0.5 s) for the scan of large graphs
(``gpugraph/io/node_table.py``); the "first" column shows it.

It ends with the ratio TF / gpugraph (the goal is at least 10x).  A benchmark: it prints, it is
never a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_META = ROOT / "bench_data" / "bench_50k.meta"
GOAL = 10.0

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if "--tf-worker" not in sys.argv:  # the worker runs in TF's interpreter, without gpugraph
    import gpugraph as gg
    from gpugraph import _proto as pb


def load_tensorflow() -> Any | None:
    """Returns the ``tensorflow`` module, or None when it cannot be imported here."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    tf.get_logger().setLevel("ERROR")
    return tf


def time_once(setup: Callable[[], Any], run: Callable[[Any], Any],
              gc_off: bool = False) -> tuple[float, Any]:
    """Seconds of ``run(setup())``, and its result.

    Setup and a ``gc.collect()`` (which frees the previous run's graph) stay out of the timing.
    ``gc_off`` disables Python's cyclic garbage collector during the timed run.
    """
    gc.collect()
    state = setup()
    if gc_off:
        gc.disable()
    start = time.perf_counter()
    try:
        result = run(state)
    finally:
        seconds = time.perf_counter() - start
        gc.enable()
    return seconds, result


def import_into(graph: Any, importer: Callable[[str], Any], path: str) -> Any:
    """Runs ``importer(path)`` with ``graph`` as the default graph; returns ``graph``."""
    with graph.as_default():
        importer(path)
    return graph


Row = Callable[[], tuple[float, Any]]  # one timed run: (seconds, op count or None)


class TFWorker:
    """A TensorFlow interpreter (``--tf-python``) that imports the file on request."""

    def __init__(self, python: str, path: str):
        cmd = [python, __file__, path, "--tf-worker"]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        self.version = self._reply()

    def _reply(self) -> Any:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the TensorFlow worker died (see its stderr above)")
        return json.loads(line)

    def run(self) -> tuple[float, Any]:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        seconds, ops = self._reply()
        return seconds, ops

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def tf_worker_main(path: str) -> None:
    """The worker: one timed TF import per line on stdin, ``[seconds, ops]`` back."""
    tf = load_tensorflow()
    if tf is None:
        raise SystemExit("--tf-python: this interpreter cannot import tensorflow")
    print(json.dumps(tf.__version__), flush=True)
    importer = tf.compat.v1.train.import_meta_graph
    for _ in sys.stdin:
        seconds, graph = time_once(tf.Graph, lambda g: import_into(g, importer, path))
        print(json.dumps([seconds, len(graph.get_operations())]), flush=True)


def benchmarks(data: bytes, path: str, tf: Any | None,
               worker: TFWorker | None = None) -> dict[str, Row]:
    """The rows of the table, by name."""
    def gpugraph_import(gc_off: bool) -> tuple[float, Any]:
        seconds, graph = time_once(
            gg.Graph, lambda g: import_into(g, gg.train.import_meta_graph, path), gc_off)
        return seconds, len(graph.get_operations())

    rows = {
        "parse": lambda: (time_once(lambda: None, lambda _: pb.MetaGraphDef.FromString(data))[0],
                          None),
        "gpugraph": lambda: gpugraph_import(False),
        "gpugraph_gc_off": lambda: gpugraph_import(True),
    }
    if worker is not None:
        rows["tensorflow"] = worker.run
    elif tf is not None:
        importer = tf.compat.v1.train.import_meta_graph

        def tensorflow_import() -> tuple[float, Any]:
            seconds, graph = time_once(tf.Graph, lambda g: import_into(g, importer, path))
            return seconds, len(graph.get_operations())

        rows["tensorflow"] = tensorflow_import
    return rows


def summarize(times: list[float]) -> dict[str, Any]:
    """First, best and median of a list of timings, in seconds."""
    return {"first_s": times[0], "best_s": min(times), "median_s": statistics.median(times),
            "runs_s": times}


def environment(tf_version: str | None) -> dict[str, Any]:
    """Versions and machine description printed with the results."""
    from google.protobuf import __version__ as protobuf_version
    from google.protobuf.internal import api_implementation
    return {
        "gpugraph": gg.__version__,
        "tensorflow": tf_version,
        "python": platform.python_version(),
        "protobuf": f"{protobuf_version} ({api_implementation.Type()})",
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def run_all(path: pathlib.Path, repeat: int, tf_python: str | None = None) -> dict[str, Any]:
    """Runs every benchmark on ``path`` and returns the results as a JSON-able dict."""
    worker = TFWorker(tf_python, str(path)) if tf_python else None
    try:
        return _run_all(path, repeat, worker)
    finally:
        if worker is not None:
            worker.close()


def _run_all(path: pathlib.Path, repeat: int, worker: TFWorker | None) -> dict[str, Any]:
    data = path.read_bytes()
    nodes = len(pb.MetaGraphDef.FromString(data).graph_def.node)
    tf = load_tensorflow() if worker is None else None
    tf_version = worker.version if worker is not None else getattr(tf, "__version__", None)
    result: dict[str, Any] = {"meta": str(path), "bytes": len(data), "nodes": nodes,
                              "repeat": repeat, "env": environment(tf_version)}
    rows = benchmarks(data, str(path), tf, worker)
    times: dict[str, list[float]] = {key: [] for key in rows}
    ops: dict[str, Any] = {}
    for _ in range(repeat):  # round-robin, so load changes hit every row alike
        for key, run in rows.items():
            seconds, ops[key] = run()
            times[key].append(seconds)
    for key in rows:
        result[key] = summarize(times[key])
        if ops[key] is not None:
            result[key]["ops"] = ops[key]
    if "tensorflow" in rows:
        result["ratio_best"] = result["tensorflow"]["best_s"] / result["gpugraph"]["best_s"]
        result["ratio_median"] = result["tensorflow"]["median_s"] / result["gpugraph"]["median_s"]
    return result


def fmt(seconds: float) -> str:
    """Seconds as ``123.4 ms`` below one second, else ``1.234 s``."""
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def print_table(res: dict[str, Any]) -> None:
    """Human-readable report of ``run_all``'s result."""
    env = res["env"]
    print(f"file:     {res['meta']} ({res['bytes'] / 1e6:.2f} MB, {res['nodes']:,} nodes)")
    print(f"versions: gpugraph {env['gpugraph']}, TensorFlow {env['tensorflow'] or '-'}, "
          f"Python {env['python']}, protobuf {env['protobuf']}")
    print(f"machine:  {env['platform']}, {env['processor']}, {env['cpu_count']} CPUs")
    print(f"repeats:  {res['repeat']} (each into a fresh graph)\n")
    print(f"{'':30} {'first':>11} {'best':>11} {'median':>11} {'ops':>8}")
    rows = [("protobuf parse (gpugraph pb)", "parse"), ("gpugraph import_meta_graph", "gpugraph"),
            ("  same, gc disabled (info)", "gpugraph_gc_off"),
            ("TF import_meta_graph", "tensorflow")]
    for label, key in rows:
        if key in res:
            row = res[key]
            ops = f"{row['ops']:,}" if "ops" in row else ""
            print(f"{label:30} {fmt(row['first_s']):>11} {fmt(row['best_s']):>11} "
                  f"{fmt(row['median_s']):>11} {ops:>8}")
    print()
    print_ratio(res)


def print_ratio(res: dict[str, Any]) -> None:
    """The TF / gpugraph speed ratio and whether it meets the goal."""
    if "tensorflow" not in res:
        print("TensorFlow not installed here: pass --tf-python, or run with a Python that has both")
        return
    best, median = res["ratio_best"], res["ratio_median"]
    verdict = "met" if best >= GOAL else "NOT met"
    print(f"ratio TF / gpugraph: {best:.2f}x (best), {median:.2f}x (median); "
          f"goal >= {GOAL:g}x: {verdict}")
    floor = res["gpugraph"]["best_s"] / res["parse"]["best_s"]
    print(f"gpugraph import / protobuf parse: {floor:.1f}x")


def profile_gpugraph(path: str, top: int) -> None:
    """Prints cProfile's top ``top`` functions of one warm gpugraph import, by cumulative time
    and by own time (a warm-up import first, so one-time module and op-registry loading is out).
    """
    import cProfile
    import pstats

    import_into(gg.Graph(), gg.train.import_meta_graph, path)
    gc.collect()
    profiler = cProfile.Profile()
    graph = gg.Graph()
    profiler.enable()
    import_into(graph, gg.train.import_meta_graph, path)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("meta", nargs="?", type=pathlib.Path, default=DEFAULT_META,
                        help=f"the .meta file (default: {DEFAULT_META.relative_to(ROOT)})")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--profile", type=int, metavar="TOP", default=0,
                        help="instead, cProfile one warm gpugraph import and print the TOP "
                             "functions by cumulative and by own time")
    parser.add_argument("--tf-python", metavar="PYTHON",
                        help="an interpreter with TensorFlow: its imports run there, timed inside")
    parser.add_argument("--tf-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints the table (or JSON)."""
    args = parse_args(argv)
    if args.tf_worker:
        tf_worker_main(str(args.meta))
        return 0
    if not args.meta.is_file():
        print(f"{args.meta} not found. Make it with a TensorFlow virtualenv:\n"
              f"    /work/tfenv/bin/python scripts/make_bench_meta.py", file=sys.stderr)
        return 2
    if args.profile:
        profile_gpugraph(str(args.meta), args.profile)
        return 0
    res = run_all(args.meta, args.repeat, args.tf_python)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
