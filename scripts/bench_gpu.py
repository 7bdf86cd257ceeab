"""GPU benchmark: W1-W4 on one CUDA GPU, gpugraph beside PyTorch, side by side in one run.

Contenders, in alternating rounds on the same GPU, fp32 with TF32 off on both sides:

  gg-graphs   gpugraph, CUDA graphs on (the default)
  gg-eager    gpugraph, GPUGRAPH_CUDA_GRAPHS=0 (a separate session built with the switch off)
  torch       PyTorch eager, the same model, initial weights (read from gpugraph's session after
              its initializer ran), optimizer and batch
  torch-graph PyTorch with the whole step captured (torch.cuda.graph)

Workloads are scripts/bench.py's W1-W4 graphs.  Before timing, the first three losses of
gpugraph and PyTorch must agree (rtol 1e-3), so both do the same work.  Reports the median time
per step of each contender and the ratios PyTorch / gpugraph (> 1: gpugraph faster).  PyTorch is
the benchmark's anchor only; gpugraph does not depend on it.

Usage::

    python scripts/bench_gpu.py [--quick] [--json OUT.json] [--workloads W1,W2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (scripts/bench.py: graphs and feeds)

RUNS = {"W1": 50, "W2": 500, "W3": 30, "W4": 300}


def gg_session(workload: str, graphs: bool):
    """(session, step(feeds) -> loss or output, variables by name) for gpugraph."""
    os.environ["GPUGRAPH_CUDA_GRAPHS"] = "1" if graphs else "0"
    import gpugraph as gg
    from gpugraph import config

    config.reload()
    graph = gg.Graph()
    with graph.as_default():
        gg.train.import_meta_graph(str(bench.meta_path(workload)))
    sess = gg.Session(graph=graph)
    with graph.as_default():
        if workload != "W4":
            sess.run(gg.global_variables_initializer())
        names = [v.op.name for v in gg.global_variables()]
    values = sess.run({n: f"{n}:0" for n in names}) if names else {}
    fetch = bench.fetch_of(workload)
    train = ["loss:0", "train_op"] if workload != "W4" else [fetch]

    def step(feeds: dict) -> float:
        out = sess.run(train, feeds)
        return float(np.asarray(out[0]).ravel()[0])

    return sess, step, values


def torch_step(workload: str, values: dict, feeds: dict, torch):
    """A PyTorch step equal to the workload's graph, from ``values`` (the initial variables)."""
    dev = torch.device("cuda")
    params = {k: torch.tensor(v, device=dev, requires_grad=True) for k, v in values.items()
              if v.dtype == np.float32}
    x = torch.tensor(feeds["x:0"], device=dev)
    y = torch.tensor(feeds["y:0"], device=dev) if "y:0" in feeds else None
    nn = torch.nn.functional

    def dense(h, name, act):
        h = h @ params[f"{name}/kernel"] + params[f"{name}/bias"]
        return torch.relu(h) if act else h

    if workload in ("W1", "W2"):
        layers = sorted({k.split("/")[0] for k in params if k.startswith("dense_")})

        def forward():
            h = x
            for i, name in enumerate(layers):
                h = dense(h, name, i < len(layers) - 1)
            return nn.cross_entropy(h, y)
    elif workload == "W3":
        def forward():
            h = x.permute(0, 3, 1, 2)
            for i in range(2):
                w = params[f"conv{i}/kernel"].permute(3, 2, 0, 1)
                h = torch.relu(nn.conv2d(h, w, params[f"conv{i}/bias"], padding=2))
                h = nn.max_pool2d(h, 2, 2)
            h = h.permute(0, 2, 3, 1).reshape(-1, 7 * 7 * 64)
            return nn.cross_entropy(dense(dense(h, "fc0", True), "fc1", False), y)
    else:
        def forward():
            h = x
            for i in range(2000):
                h = h + 0.25 if i % 3 == 0 else (h * 0.9 if i % 3 == 1 else torch.tanh(h))
            return h[0]

    optim = None
    trainable = [p for k, p in params.items() if k != "global_step"]
    if workload == "W1":
        optim = torch.optim.Adam(trainable, lr=1e-3, eps=1e-8)  # TF's epsilon hat differs
    elif workload == "W2":
        optim = torch.optim.SGD(trainable, lr=0.1)
    elif workload == "W3":
        optim = torch.optim.SGD(trainable, lr=0.01, momentum=0.9)

    def step():
        if optim is None:
            with torch.no_grad():
                return forward()
        optim.zero_grad(set_to_none=False)
        loss = forward()
        loss.backward()
        optim.step()
        return loss

    return step


def captured(step, torch):
    """``step`` as a CUDA graph (warm-up on a side stream, as torch.cuda.graph asks)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()

    def replay():
        graph.replay()
        return out

    return replay


def timed(fn, runs: int, sync) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    sync()
    return (time.perf_counter() - start) / runs


def bench_workload(workload: str, rounds: int, torch) -> dict:
    feeds = bench.make_feeds(workload)
    sync = torch.cuda.synchronize
    _, gg_graphs, values = gg_session(workload, graphs=True)
    _, gg_eager, _ = gg_session(workload, graphs=False)
    t_eager = torch_step(workload, values, feeds, torch)
    first_gg = [gg_eager(feeds) for _ in range(3)]
    first_torch = [float(t_eager()) for _ in range(3)]
    if workload != "W4":  # (W4 fetches the chain's end, not a loss)
        np.testing.assert_allclose(first_gg, first_torch, rtol=1e-3)
    t_graph = captured(torch_step(workload, values, feeds, torch), torch)
    contenders = {"gg-graphs": lambda: gg_graphs(feeds), "gg-eager": lambda: gg_eager(feeds),
                  "torch": t_eager, "torch-graph": t_graph}
    for fn in contenders.values():  # warm-up (gpugraph captures its graphs here)
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    runs = RUNS[workload]
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(timed(fn, runs, sync))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"median_s": med, "rounds": times, "first_losses": {"gg": first_gg,
                                                               "torch": first_torch},
            "torch_over_gg": med["torch"] / med["gg-graphs"],
            "torch_graph_over_gg": med["torch-graph"] / med["gg-graphs"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    parser.add_argument("--workloads", default="W1,W2,W3,W4")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rounds = 3 if args.quick else 7
    results = {"device": torch.cuda.get_device_name(0)}
    for workload in args.workloads.split(","):
        try:
            results[workload] = bench_workload(workload, rounds, torch)
        except Exception as e:  # noqa: BLE001  (one workload's failure is reported, not fatal)
            results[workload] = {"error": f"{type(e).__name__}: {e}"}
        r = results[workload]
        if "error" in r:
            print(f"{workload}: {r['error']}")
            continue
        m = r["median_s"]
        print(f"{workload}: " + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in m.items())
              + f"; torch/gg {r['torch_over_gg']:.2f}, torch-graph/gg "
              f"{r['torch_graph_over_gg']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
