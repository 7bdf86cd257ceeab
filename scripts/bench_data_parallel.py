"""Data-parallel scaling benchmark: steps/s of 1 and N MPI ranks on one global batch.

Each configuration runs the same imported training graph (``scripts/bench_graphs/``: W1 MLP
Adam, global batch 256; W3 CNN Momentum, global batch 64) on the same global batches: one
process alone (no MPI), and ``mpiexec -n N`` ranks each taking 1/N of every batch with the
gradients averaged (``data_parallel="mpi"``).  Rounds alternate the configurations; the
report gives, per configuration, the median time per step and the range over rounds, the
speedup over one process, and the time per step spent in the gradient all-reduce (starting and
waiting for it, host time on rank 0) with its share of the step.

    python scripts/bench_data_parallel.py [--ranks 2] [--rounds 5] [--workloads W1,W3]

On a machine with fewer cores than ranks x threads, the ranks share the cores (each takes
1/N of them); the numbers then show what data parallelism costs there, not what it gains.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (its workloads and feeds)

RUNS = {"W1": 20, "W3": 6}


def worker(workload: str, runs: int) -> None:
    """One rank (or the lone process): prints {"step": s, "allreduce": s} from rank 0."""
    import gpugraph as gg

    ranked = os.environ.get("BENCH_DP") == "1"
    rank, size = (gg.distributed.rank(), gg.distributed.size()) if ranked else (0, 1)
    feeds = bench.make_feeds(workload)
    rows = next(iter(feeds.values())).shape[0] // size
    mine = {k: v[rank * rows:(rank + 1) * rows] for k, v in feeds.items()}
    config = {"data_parallel": "mpi"} if ranked else None
    with gg.Graph().as_default(), gg.Session(config=config) as sess:
        gg.train.import_meta_graph(str(bench.meta_path(workload)))
        sess.run(gg.global_variables_initializer())
        if ranked:
            gg.distributed.broadcast_variables(sess)
        op = sess.graph.get_operation_by_name("train_op")
        for _ in range(3):
            sess.run(op, mine)
        reducer = sess._reducer
        before = reducer.seconds if reducer else 0.0
        start = time.perf_counter()
        for _ in range(runs):
            sess.run(op, mine)
        step = (time.perf_counter() - start) / runs
        reduce = ((reducer.seconds - before) / runs) if reducer else 0.0
    if rank == 0:
        print(json.dumps({"step": step, "allreduce": reduce}))


def _run(command: list[str], env: dict) -> dict:
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", default="W1,W3")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, RUNS[args.worker])
    here = os.path.dirname(sys.executable)
    mpiexec = shutil.which("mpiexec", path=here + os.pathsep + os.environ.get("PATH", ""))
    if mpiexec is None:
        raise SystemExit("no mpiexec: pip install 'gpugraph[mpi]'")
    script = [sys.executable, os.path.abspath(__file__)]
    for workload in args.workloads.split(","):
        configs = {"1 process": (script, {"BENCH_DP": "0"}),
                   f"{args.ranks} ranks": ([mpiexec, "-n", str(args.ranks), *script],
                                           {"BENCH_DP": "1"})}
        times: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(args.rounds):
            for name, (command, extra) in configs.items():
                times[name].append(_run([*command, "--worker", workload],
                                        {**os.environ, **extra}))
        base = statistics.median(t["step"] for t in times["1 process"])
        print(f"{workload} ({bench.WORKLOADS[workload][2]}, global batch), "
              f"{args.rounds} rounds, {os.cpu_count()} CPUs:")
        for name, rounds in times.items():
            steps = [t["step"] * 1e3 for t in rounds]
            reduce = statistics.median(t["allreduce"] * 1e3 for t in rounds)
            median = statistics.median(steps)
            print(f"  {name:10s} {median:8.2f} ms/step [{min(steps):.2f}-{max(steps):.2f}]  "
                  f"speedup {base * 1e3 / median:4.2f}x  all-reduce {reduce:6.2f} ms/step "
                  f"({100 * reduce / median:4.1f}%)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
