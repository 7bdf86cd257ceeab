"""Runtime benchmark: steps/s of imported training graphs, gpugraph vs TensorFlow CPU.

Workloads (each graph built by TF and exported as a .meta; both sides import the same file,
initialize variables, and time ``sess.run`` on the same random batches):

  W1  784-1024-1024-10 ReLU MLP, sparse cross-entropy, Adam, batch 256 (GEMM-bound)
  W2  20-16-3 MLP, GradientDescent, batch 32 (per-run overhead)
  W3  CNN 28x28x1: conv5x5x32+pool, conv5x5x64+pool, fc1024, fc10, Momentum, batch 64
  W4  one run of a 2,000-node elementwise chain (Add/Mul/Tanh on a [16] vector)
  W5  dynamic_rnn LSTM training step, control flow v1 (tests/fixtures/control_flow)
  W6  the same LSTM with control flow v2 (StatelessWhile over functions)

Usage::

    python scripts/bench.py                                  # gpugraph only
    python scripts/bench.py --tf-python /path/to/tfenv/bin/python --rounds 5
    python scripts/bench.py --tf-python ... --isa avx2 --background-load 1

With ``--tf-python`` a TensorFlow worker process runs beside this one; rounds alternate TF and
gpugraph so both see the same machine state, and the report gives medians and the ratio
TF time / gpugraph time (> 1 means gpugraph is faster), and the range of the rounds' own
ratios (each TF round over the gpugraph round after it), which shows how much this machine's
noise moves one round; ``--verbose`` prints every round's times.  ``--isa`` caps both sides
at a lesser vector ISA (gpugraph's kernels, numpy's OpenBLAS, TF's oneDNN: an AVX-512 host
standing in for an AVX2 one); ``--background-load N`` runs N busy processes beside both.  The graphs live in
``scripts/bench_graphs/`` (committed; ``--rebuild`` regenerates them with TF).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "scripts" / "bench_graphs"
WORKLOADS = {
    # name: (feeds shapes/dtypes, timed runs per round, description)
    "W1": ({"x": ([256, 784], "float32"), "y": ([256], "int64", 10)}, 30, "MLP 784-1024-1024-10 Adam b256"),
    "W2": ({"x": ([32, 20], "float32"), "y": ([32], "int64", 3)}, 2000, "MLP 20-16-3 GD b32"),
    "W3": ({"x": ([64, 28, 28, 1], "float32"), "y": ([64], "int64", 10)}, 10, "CNN Momentum b64"),
    "W4": ({"x": ([16], "float32")}, 300, "2000-node elementwise chain"),
    "W5": ({}, 50, "LSTM dynamic_rnn Adam, cf v1"),
    "W6": ({}, 50, "LSTM dynamic_rnn Adam, cf v2"),
}
# what the TF worker inherits: oneDNN's ISA cap (--isa emulates a lesser CPU on both sides)
PASSED_TO_TF = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# --isa NAME: each side's libraries capped at that vector ISA, as on a CPU that has no more:
# gpugraph's kernels, numpy's OpenBLAS (its kernel for such a CPU), TF's oneDNN.
ISA_CAPS = {
    "avx512": {"GPUGRAPH_CPU_ISA": "avx512", "OPENBLAS_CORETYPE": "SkylakeX",
               "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "avx2": {"GPUGRAPH_CPU_ISA": "avx2", "OPENBLAS_CORETYPE": "Haswell",
             "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "generic": {"GPUGRAPH_CPU_ISA": "generic", "OPENBLAS_CORETYPE": "Sandybridge",
                "ONEDNN_MAX_CPU_ISA": "AVX"},  # an AVX CPU without AVX2/FMA
}
FIXTURE_CASES = {"W5": "rnn_lstm_adam_v1", "W6": "rnn_lstm_adam_v2"}
CONTROL_FLOW = ROOT / "tests" / "fixtures" / "control_flow"


def meta_path(workload: str) -> pathlib.Path:
    case = FIXTURE_CASES.get(workload)
    if case:
        return CONTROL_FLOW / case / f"{case}-3.meta"
    return GRAPHS / f"{workload.lower()}.meta"


def make_feeds(workload: str) -> dict[str, np.ndarray]:
    case = FIXTURE_CASES.get(workload)
    if case:  # the fixture's first recorded batch
        with np.load(CONTROL_FLOW / case / "continue.npz") as data:
            return {"x:0": data["feed/x"][0], "y:0": data["feed/y"][0]}
    rng = np.random.default_rng(0)
    feeds = {}
    for name, spec in WORKLOADS[workload][0].items():
        shape, dtype = spec[0], spec[1]
        if dtype == "int64":
            feeds[f"{name}:0"] = rng.integers(0, spec[2], size=shape).astype(np.int64)
        else:
            feeds[f"{name}:0"] = rng.random(shape, dtype=np.float32)
    return feeds


def fetch_of(workload: str) -> str:
    if workload in FIXTURE_CASES:
        return "Adam"  # the fixture's train op (the train_op collection's element)
    return "chain_end:0" if workload == "W4" else "train_op"


# --- the TensorFlow side (runs inside the TF interpreter) -------------------------------------
def build_graphs() -> None:  # pragma: no cover - needs TensorFlow
    import tensorflow as tf

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    GRAPHS.mkdir(parents=True, exist_ok=True)

    def dense(x, n_out, name, act=True):
        w = v1.get_variable(f"{name}/kernel", [x.shape[-1], n_out],
                            initializer=v1.glorot_uniform_initializer())
        b = v1.get_variable(f"{name}/bias", [n_out], initializer=v1.zeros_initializer())
        y = tf.nn.bias_add(tf.matmul(x, w), b)
        return tf.nn.relu(y) if act else y

    def head(logits, y, opt):
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits),
                              name="loss")
        train = opt.minimize(loss, global_step=v1.train.get_or_create_global_step())
        return v1.group(train, name="train_op")  # a fixed name both sides fetch

    def mlp(sizes, opt):
        x = v1.placeholder(tf.float32, [None, sizes[0]], name="x")
        y = v1.placeholder(tf.int64, [None], name="y")
        h = x
        for i, n in enumerate(sizes[1:]):
            h = dense(h, n, f"dense_{i}", act=i < len(sizes) - 2)
        head(h, y, opt)

    def cnn():
        x = v1.placeholder(tf.float32, [None, 28, 28, 1], name="x")
        y = v1.placeholder(tf.int64, [None], name="y")
        h = x
        for i, (c_in, c_out) in enumerate([(1, 32), (32, 64)]):
            w = v1.get_variable(f"conv{i}/kernel", [5, 5, c_in, c_out])
            b = v1.get_variable(f"conv{i}/bias", [c_out], initializer=v1.zeros_initializer())
            h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(h, w, 1, "SAME"), b))
            h = tf.nn.max_pool2d(h, 2, 2, "SAME")
        h = tf.reshape(h, [-1, 7 * 7 * 64])
        h = dense(h, 1024, "fc0")
        head(dense(h, 10, "fc1", act=False), y, v1.train.MomentumOptimizer(0.01, 0.9))

    def chain():
        x = v1.placeholder(tf.float32, [16], name="x")
        a, m = tf.constant(0.25, name="a"), tf.constant(0.9, name="m")
        y = x
        for i in range(2000):
            kind = i % 3
            y = y + a if kind == 0 else (y * m if kind == 1 else tf.tanh(y))
        tf.identity(y, name="chain_end")

    builders = {
        "W1": lambda: mlp([784, 1024, 1024, 10], v1.train.AdamOptimizer(1e-3)),
        "W2": lambda: mlp([20, 16, 3], v1.train.GradientDescentOptimizer(0.1)),
        "W3": cnn,
        "W4": chain,
    }
    for name, build in builders.items():
        with tf.Graph().as_default():
            v1.set_random_seed(0)
            build()
            v1.train.export_meta_graph(str(GRAPHS / f"{name.lower()}.meta"))
        print(f"wrote {GRAPHS / (name.lower() + '.meta')}", file=sys.stderr)


def tf_worker() -> None:  # pragma: no cover - needs TensorFlow
    """Answers {"workload": W, "runs": n} lines with the seconds per run, importing lazily."""
    import tensorflow as tf

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    sessions = {}
    for line in sys.stdin:
        request = json.loads(line)
        workload = request["workload"]
        if workload not in sessions:
            graph = tf.Graph()
            with graph.as_default():
                v1.train.import_meta_graph(str(meta_path(workload)))
                sess = v1.Session(graph=graph)
                sess.run(v1.global_variables_initializer())
            sessions[workload] = sess
        sess = sessions[workload]
        feeds = make_feeds(workload)
        fetch = fetch_of(workload)
        sess.run(fetch, feeds)
        start = time.perf_counter()
        for _ in range(request["runs"]):
            sess.run(fetch, feeds)
        print(json.dumps({"seconds": (time.perf_counter() - start) / request["runs"]}), flush=True)


# --- the gpugraph side -----------------------------------------------------------------------
class GpugraphRunner:
    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT))
        import gpugraph as gg

        self.gg = gg
        self.sessions: dict[str, object] = {}

    def time(self, workload: str, runs: int) -> float:
        gg = self.gg
        if workload not in self.sessions:
            graph = gg.Graph()
            with graph.as_default():
                gg.train.import_meta_graph(str(meta_path(workload)))
                sess = gg.Session(graph=graph)
                sess.run(gg.global_variables_initializer())
            self.sessions[workload] = sess
        sess = self.sessions[workload]
        feeds, fetch = make_feeds(workload), fetch_of(workload)
        sess.run(fetch, feeds)
        start = time.perf_counter()
        for _ in range(runs):
            sess.run(fetch, feeds)
        return (time.perf_counter() - start) / runs


class TfRunner:
    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, __file__, "--tf-worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin",
                            **{k: v for k, v in os.environ.items() if k in PASSED_TO_TF}})

    def time(self, workload: str, runs: int) -> float:
        self.proc.stdin.write(json.dumps({"workload": workload, "runs": runs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the TensorFlow worker exited; run it by hand to see why")
        return json.loads(line)["seconds"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def settle(seconds: float) -> None:
    """Waits before the other side's round.  Both BLAS libraries keep their worker threads
    spinning for a while after a call (OpenBLAS, Eigen/oneDNN), and on a 2-core machine a round
    that starts right away shares the cores with the other process's spinning threads; with
    short rounds that favoured whichever side ran second."""
    if seconds > 0:
        time.sleep(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tf-python", help="a Python with TensorFlow, for side-by-side ratios")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the graphs (needs TF)")
    parser.add_argument("--settle", type=float, default=0.5,
                        help="idle seconds between the two sides' rounds (see settle())")
    parser.add_argument("--verbose", action="store_true", help="print every round's times")
    parser.add_argument("--background-load", type=int, default=0, metavar="N",
                        help="keep N busy processes running beside both sides (each one "
                        "core's worth of other work), to measure under contention")
    parser.add_argument("--isa", choices=sorted(ISA_CAPS),
                        help="cap both sides at this vector ISA (gpugraph's kernels, OpenBLAS, "
                        "TF's oneDNN), as on a CPU without the wider ones")
    parser.add_argument("--tf-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.isa and any(os.environ.get(k) != v for k, v in ISA_CAPS[args.isa].items()):
        # OpenBLAS reads its core type when numpy loads it: start again with the caps set
        os.execve(sys.executable, [sys.executable, __file__, *(argv or sys.argv[1:])],
                  {**os.environ, **ISA_CAPS[args.isa]})
    if args.tf_worker:
        tf_worker()
        return 0
    if args.rebuild:
        build_graphs()
        return 0
    workloads = args.workloads.split(",")
    print(machine_line(args.background_load), file=sys.stderr)
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.background_load)]
    try:
        results = _measure(args, workloads)
    finally:
        for process in load:
            process.kill()
    report(results, args.json)
    return 0


def machine_line(background: int) -> str:
    """What the numbers were measured with: the CPU kernels' ISA variant, threads, load, and
    the caps on the libraries' ISAs (--isa)."""
    from gpugraph.devices.cpu import isa, loops

    variant = isa.current()
    runs = ", ".join(v.name for v in isa.supported()) or "none"
    caps = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "ONEDNN_MAX_CPU_ISA")
                     if k in os.environ)
    return (f"gpugraph CPU kernels: {variant.name if variant else 'generic'} (this CPU runs: "
            f"{runs}); {loops.threads()} threads; {os.cpu_count()} CPUs; background load: "
            f"{background} busy process(es){'; ' + caps if caps else ''}")


def _measure(args: argparse.Namespace, workloads: list[str]) -> dict:
    ours = GpugraphRunner()
    theirs = TfRunner(args.tf_python) if args.tf_python else None
    results = {}
    for workload in workloads:
        runs = WORKLOADS[workload][1]
        gg_times, tf_times = [], []
        for _ in range(args.rounds):
            if theirs:
                tf_times.append(theirs.time(workload, runs))
                settle(args.settle)
            gg_times.append(ours.time(workload, runs))
            settle(args.settle if theirs else 0)
        if args.verbose:
            print(workload, "gpugraph ms:", " ".join(f"{t * 1e3:.2f}" for t in gg_times),
                  "| TF ms:", " ".join(f"{t * 1e3:.2f}" for t in tf_times), file=sys.stderr)
        results[workload] = {"gpugraph_s": statistics.median(gg_times),
                             "tf_s": statistics.median(tf_times) if tf_times else None,
                             # each round's TF time over the gpugraph round right after it
                             "round_ratios": [t / g for t, g in zip(tf_times, gg_times)]}
    if theirs:
        theirs.close()
    return results


def report(results: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, indent=1))
        return
    print(f"{'workload':<38} {'gpugraph':>12} {'TF':>12} {'TF/gpugraph':>12} {'rounds':>12}")
    for workload, r in results.items():
        ours, theirs = r["gpugraph_s"], r["tf_s"]
        name = f"{workload} {WORKLOADS[workload][2]}"
        ratio = f"{theirs / ours:.2f}x" if theirs else "-"
        tf_text = f"{theirs * 1e3:.3f} ms" if theirs else "-"
        rounds = r["round_ratios"]
        spread = f"{min(rounds):.2f}-{max(rounds):.2f}x" if rounds else "-"
        print(f"{name:<38} {ours * 1e3:>9.3f} ms {tf_text:>12} {ratio:>12} {spread:>12}")


if __name__ == "__main__":
    sys.exit(main())
