"""The ``gpugraph`` command.

``gpugraph inspect MODEL.meta [--json]`` summarises a MetaGraphDef as gpugraph imports it: op
counts by type, variables, placeholders to feed, collections, the saver_def and the device
fields in use.

``gpugraph devices MODEL.meta [--checkpoint PREFIX] [--gpus N] [--device-map A=B ...]
[--allow-soft-placement] [--clear-devices] [--json]`` prints the placement report: requested
-> assigned devices with counts, every node whose device can't be honoured, and the restart
rule checked against a checkpoint.  Exit status 0 when everything can be honoured, 1 otherwise.

Exit status in general: 0 success, 1 bad input (a one-line message), 2 usage error.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from typing import Any

import numpy as np

import gpugraph as gg
from gpugraph import errors


def _shape(shape: gg.TensorShape) -> list | None:
    return None if shape.dims is None else list(shape.dims)


def import_model(path: str, tags: list[str] | None = None, clear_devices: bool = False) -> Any:
    """Imports ``path`` into the default graph, whatever form TF1 work lies in: a ``.meta``
    file, a SavedModel directory (its tag set ``tags``, default the only or first one) or a
    frozen GraphDef (``.pb``/``.pbtxt``).  Returns (the Saver or None, the MetaGraphDef of a
    SavedModel or None)."""
    if os.path.isdir(path) and gg.saved_model.contains_saved_model(path):
        model = gg.saved_model.loader.read_saved_model(path)
        metas = list(model.meta_graphs)
        meta = next((m for m in metas if tags is None or set(m.meta_info_def.tags) == set(tags)),
                    None)
        if meta is None:
            available = [sorted(m.meta_info_def.tags) for m in metas]
            raise errors.NotFoundError(None, None, f"no tag set {tags} in SavedModel {path}; "
                                       f"available tag sets: {available}")
        return gg.train.import_meta_graph(meta, clear_devices=clear_devices), meta
    if path.endswith((".pb", ".pbtxt")):
        graph_def = gg.graph_util.read_graph_def(path)
        if clear_devices:
            for node in graph_def.node:
                node.device = ""
        gg.import_graph_def(graph_def, name="")
        return None, None
    return gg.train.import_meta_graph(path, clear_devices=clear_devices), None


def inspect_meta(path: str) -> dict[str, Any]:
    """Imports ``path`` (a .meta, a SavedModel directory or a frozen .pb) into a fresh graph
    and returns the report as plain data."""
    graph = gg.Graph()
    with graph.as_default():
        saver, _ = import_model(path)
    ops = graph.get_operations()
    return {
        "file": path,
        "num_ops": len(ops),
        "op_counts": dict(sorted(collections.Counter(op.type for op in ops).items())),
        "variables": [_variable(v) for v in graph.get_collection("variables")],
        "placeholders": [_placeholder(op) for op in ops if op.type == "Placeholder"],
        "collections": {k: len(graph.get_collection(k)) for k in sorted(graph.get_all_collection_keys())},
        "saver_def": None if saver is None else _saver_def(saver.saver_def),
        "devices": dict(sorted(collections.Counter(op.device for op in ops).items())),
        "ops_without_kernel": _missing_kernels(ops),
        "missing_kernel_use": _missing_kernel_use(graph, ops),
    }


def _missing_kernels(ops: list) -> dict[str, int]:
    """Op types in the graph gpugraph has no kernel for, with node counts."""
    from gpugraph.ops import registry

    missing = collections.Counter(op.type for op in ops if registry.lookup(op.type) is None)
    return dict(sorted(missing.items()))


_PIPELINE_HINTS = ("Dataset", "Iterator", "Queue", "Reader", "Decode", "Parse")


def _missing_kernel_use(graph: Any, ops: list) -> dict[str, str]:
    """For each op type without a kernel: whether the training step needs it, or only another
    branch does (summaries, the input pipeline, the Saver, nothing at all)."""
    from gpugraph.ops import registry

    missing = [op for op in ops if registry.lookup(op.type) is None]
    if not missing:
        return {}
    needed = _ancestors(_training_roots(graph, ops))
    uses: dict[str, set[str]] = collections.defaultdict(set)
    for op in missing:
        uses[op.type].add("training step" if op in needed else _other_use(op))
    return {t: "needed by the training step" if "training step" in u else
            "not needed by the training step (" + ", ".join(sorted(u)) + ")"
            for t, u in sorted(uses.items())}


def _training_roots(graph: Any, ops: list) -> list:
    roots = [getattr(t, "op", t) for t in graph.get_collection("train_op")]
    return roots or [op for op in ops if op.type.startswith(
        ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply"))]


def _ancestors(roots: list) -> set:
    seen, stack = set(), list(roots)
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def _other_use(op: Any) -> str:
    """What a node off the training step serves, judged from it and its consumers."""
    consumers = _descendants(op)
    types = {c.type for c in consumers} | {op.type}
    if any(t.endswith("Summary") or t == "MergeSummary" for t in types):
        return "summaries"
    if op.name.startswith("save") or any(t in ("SaveV2", "RestoreV2") for t in types):
        return "the Saver"
    if any(h in t for t in types for h in _PIPELINE_HINTS):
        return "an input pipeline that is not fed to the step"
    return "unused"


def _descendants(op: Any) -> set:
    seen, stack = set(), [op]
    while stack:
        node = stack.pop()
        for out in node.outputs:
            for consumer in out.consumers():
                if consumer not in seen:
                    seen.add(consumer)
                    stack.append(consumer)
    return seen


def _variable(v: gg.Variable) -> dict[str, Any]:
    return {"name": v.op.name, "shape": _shape(v.shape), "dtype": v.dtype.base_dtype.name,
            "device": v.device, "trainable": v.trainable, "resource": v.is_resource}


def _placeholder(op: gg.Operation) -> dict[str, Any]:
    out = op.outputs[0]
    return {"name": out.name, "dtype": out.dtype.name, "shape": _shape(out.shape)}


def _saver_def(d: Any) -> dict[str, Any]:
    return {"filename_tensor_name": d.filename_tensor_name, "save_tensor_name": d.save_tensor_name,
            "restore_op_name": d.restore_op_name, "max_to_keep": d.max_to_keep,
            "sharded": d.sharded, "version": d.version}


def _print_report(report: dict[str, Any]) -> None:
    print(f"{report['file']}: {report['num_ops']} ops")
    print("\nOps by type:")
    for op_type, count in report["op_counts"].items():
        print(f"  {count:6d}  {op_type}")
    print("\nVariables:")
    for v in report["variables"]:
        kind = "resource" if v["resource"] else "ref"
        train = "trainable" if v["trainable"] else "not trainable"
        print(f"  {v['name']}  {v['dtype']}{v['shape']}  {kind}, {train}  device={v['device'] or '-'}")
    print("\nPlaceholders to feed:")
    for p in report["placeholders"]:
        print(f"  {p['name']}  {p['dtype']}  shape={p['shape']}")
    print("\nCollections:")
    for key, size in report["collections"].items():
        print(f"  {key}: {size}")
    print(f"\nSaver: {report['saver_def']}")
    print("\nDevice fields in use:")
    for device, count in report["devices"].items():
        print(f"  {count:6d}  {device or '(none)'}")
    missing = report["ops_without_kernel"]
    print("\nOp types without a gpugraph kernel: " + ("" if missing else "none"))
    for op_type, count in missing.items():
        print(f"  {count:6d}  {op_type}: {report['missing_kernel_use'].get(op_type, '')}")


def run_model(args: argparse.Namespace) -> dict[str, str]:
    """``gpugraph run``: a SavedModel signature, or a frozen graph's named outputs, run on
    ``.npy`` inputs; each output written to ``<out>/<name>.npy``.  Returns {output: file}."""
    inputs = {name: _input_array(source) for name, _, source in
              (item.partition("=") for item in args.input or [])}
    graph = gg.Graph()
    with graph.as_default(), gg.Session() as sess:
        if os.path.isdir(args.model):
            meta = gg.saved_model.load(sess, args.tags.split(",") if args.tags else ["serve"],
                                       args.model)
            if args.signature not in meta.signature_def:
                raise errors.NotFoundError(None, None, f"no signature {args.signature!r} in "
                                           f"{args.model}; there are "
                                           f"{sorted(meta.signature_def)}")
            signature = meta.signature_def[args.signature]
            feeds = {signature.inputs[k].name: v for k, v in inputs.items()}
            fetches = {k: info.name for k, info in signature.outputs.items()}
        else:
            import_model(args.model)
            feeds = inputs
            fetches = {name.replace("/", "_").replace(":", "_"): name
                       for name in args.output or []}
        results = sess.run(fetches, feeds)
    os.makedirs(args.out, exist_ok=True)
    written = {}
    for key, value in results.items():
        written[key] = os.path.join(args.out, f"{key}.npy")
        np.save(written[key], np.asarray(value))
    return written


def _input_array(source: str) -> np.ndarray:
    # FILE.npy, FILE.npz:KEY, or FILE.tfrecord (its records as a string vector: serialized
    # tf.Example protos for an Estimator-style serving signature; a numpy bytes array would
    # drop each record's trailing zero bytes)
    if source.endswith((".tfrecord", ".tfrecords", ".tfr")):
        import types  # noqa: PLC0415

        from gpugraph.ops.dataset_ops import tfrecords  # noqa: PLC0415

        records = list(tfrecords(types.SimpleNamespace(op=None), source, ""))
        array = np.empty(len(records), dtype=object)
        array[:] = records
        return array
    if ".npz:" in source:
        file, key = source.rsplit(":", 1)
        with np.load(file) as data:
            return np.asarray(data[key])
    return np.asarray(np.load(source))


def devices_report(args: argparse.Namespace) -> dict[str, Any]:
    """The placement report of ``args.meta`` on the requested devices, as plain data."""
    from gpugraph.train import device_record

    from gpugraph.placement import REPLICA_JOBS, replica_jobs

    device_map = dict(item.split("=", 1) for item in args.device_map or [])
    if args.data_parallel:  # (what each data-parallel rank's session maps)
        device_map = {**device_map, **{k: v for k, v in REPLICA_JOBS.items()
                                       if k not in device_map}}
    config = {"virtual_gpus": args.gpus, "device_map": device_map or None,
              "allow_soft_placement": args.allow_soft_placement}
    graph = gg.Graph()
    with graph.as_default():
        import_model(args.meta, clear_devices=args.clear_devices)
        sess = gg.Session(config=config)
        report = sess.placement_report()
        data = report.to_json()
        data["file"] = args.meta
        data["replication"] = _replication(replica_jobs(graph.get_operations()),
                                           args.data_parallel)
        data["restart"] = None
        if args.checkpoint:
            data["restart"] = _restart_check(sess, report, args.checkpoint, device_record)
    return data


def _replication(jobs: dict[str, int], folded: bool) -> dict[str, Any] | None:
    """What gpugraph makes of a between-graph replication graph's jobs."""
    if not jobs:
        return None
    named = ", ".join(f"/job:{j} ({n} nodes)" for j, n in jobs.items())
    if folded:
        note = (f"Between-graph replication ({named}) runs as synchronous data parallelism: "
                "every rank runs the whole graph on its own devices (each job folded onto "
                "/job:localhost), every variable replicated, gradients averaged over the ranks; "
                "TF's asynchronous parameter-server updates are not reproduced.")
    else:
        note = (f"The graph names other machines' jobs ({named}), which one process cannot "
                "reach: run it data-parallel (gpugraph resume --data-parallel under mpiexec, "
                "or --nproc N; see it here with --data-parallel), or fold the jobs onto this "
                "machine with --device-map /job:ps=/cpu:0 ...")
    return {"jobs": jobs, "folded": folded, "note": note}


def _restart_check(sess: Any, report: Any, prefix: str, device_record: Any) -> dict[str, Any]:
    recorded = device_record.read_record(prefix)
    variables = [v.op.name for v in sess.graph.get_collection("variables")]
    current = {n: report.assignments[n].device for n in variables if n in report.assignments}
    if recorded is None:
        return {"checkpoint": prefix, "record": None, "moved": [],
                "note": "no gpugraph device record (e.g. written by TF): the graph's device "
                        "fields are the record"}
    moved = [{"variable": n, "saved_on": old, "restored_on": current[n]}
             for n, old in sorted(recorded.items()) if n in current and current[n] != old]
    return {"checkpoint": prefix, "record": recorded, "moved": moved}


def _print_devices(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    console.print(f"{data['file']}: placement on {', '.join(data['devices'])}")
    for note in data["notes"]:
        console.print(f"  note: {note}")
    table = Table(title="Requested -> assigned")
    for column in ("requested", "assigned", "nodes"):
        table.add_column(column, justify="right" if column == "nodes" else "left")
    for requested, assigned in data["requested_to_assigned"].items():
        for device, count in sorted(assigned.items()):
            table.add_row(requested, device, str(count))
    console.print(table)
    if data["violations"]:
        groups: dict[str, list[dict]] = collections.defaultdict(list)
        for v in data["violations"]:
            groups[v["requested"]].append(v)
        bad = Table(title=f"{len(data['violations'])} node(s) cannot be placed")
        for column in ("requested", "nodes", "examples", "why"):
            bad.add_column(column, justify="right" if column == "nodes" else "left")
        for requested, items in sorted(groups.items()):
            examples = ", ".join(v["node"] for v in items[:3]) + (", ..." if len(items) > 3 else "")
            bad.add_row(requested, str(len(items)), examples, items[0]["reason"])
        console.print(bad)
        console.print("Fixes: --clear-devices, --device-map FROM=TO, --allow-soft-placement, "
                      "or --gpus N for virtual GPUs.")
    if data.get("replication"):
        console.print(data["replication"]["note"])
    restart = data.get("restart")
    if restart:
        console.print(f"Restart rule against {restart['checkpoint']}: "
                      + ("OK" if not restart["moved"] else f"{len(restart['moved'])} moved"))
        for m in restart["moved"]:
            console.print(f"  {m['variable']}: {m['saved_on']} -> {m['restored_on']}")
        if restart.get("note"):
            console.print(f"  {restart['note']}")


def run_resume(args: argparse.Namespace) -> int:
    """``gpugraph resume``: train on from a checkpoint with a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from gpugraph import resume as rs

    device_map = dict(item.split("=", 1) for item in args.device_map or [])
    options = rs.ResumeOptions(
        checkpoint=args.checkpoint, steps=args.steps,
        feeds=[rs.FeedSource.parse(f) for f in args.feed or []], batch_size=args.batch_size,
        seed=args.seed, shuffle=not args.no_shuffle, meta=args.meta, train_op=args.train_op,
        loss=args.loss,
        save_every=args.save_every, out=args.out, clear_devices=args.clear_devices,
        tags=args.tags.split(",") if args.tags else None, logdir=args.logdir,
        summary_every=args.summary_every, summary_op=args.summary_op,
        export_savedmodel=args.export_savedmodel, data_parallel=args.data_parallel,
        session_config={"virtual_gpus": args.gpus, "device_map": device_map or None,
                        "allow_soft_placement": args.allow_soft_placement})
    columns = [TextColumn("step {task.fields[step]}"), BarColumn(),
               TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} steps/s"),
               TimeRemainingColumn()]
    bar = Progress(*columns, disable=args.no_progress)
    state: dict[str, Any] = {}

    def progress(done: int, loss: float | None) -> None:
        if not state:  # the bar appears with the first step, after all checks passed
            bar.start()
            state["task"] = bar.add_task("resume", total=args.steps, step="-", loss="-", rate="-")
            state["started"] = time.perf_counter()
        rate = done / max(time.perf_counter() - state["started"], 1e-9)
        bar.update(state["task"], completed=done, step=str(done), rate=f"{rate:.1f}",
                   loss="-" if loss is None else f"{loss:.4f}")

    try:
        result = rs.resume(options, progress)
    finally:
        if state:
            bar.stop()
    first_loss = f"{result.losses[0]:.4f}" if result.losses else "-"
    last_loss = f"{result.losses[-1]:.4f}" if result.losses else "-"
    print(f"restored {result.restored} (global_step {result.first_step})")
    if result.legacy_checkpoint:
        print("the checkpoint is a V1 (legacy) one; new checkpoints are saved in the V2 format")
    if result.pipelines:
        print(f"started {result.pipelines} in-graph input pipeline(s) (iterators, queue "
              "runners)")
    if result.input_ended:
        print("the graph's input ran out (OutOfRangeError) before the last step")
    print(f"trained to global_step {result.last_step}: loss {first_loss} -> {last_loss}")
    if result.cuda_graphs is not None:
        graphs = result.cuda_graphs
        print(f"cuda graphs: {graphs['replays']} replays, {graphs['eager_runs']} eager runs, "
              f"{len(graphs['refused'])} nodes refused capture")
    if result.interrupted:
        print("interrupted: saved a final checkpoint")
    print(f"saved {result.saved[-1]}")
    if args.logdir:
        print(f"wrote {result.summaries} summary event(s) to {args.logdir}")
    if result.exported:
        print(f"exported the SavedModel {result.exported}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpugraph", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="summarise a .meta file")
    inspect.add_argument("meta", help="a .meta file (binary or text), a SavedModel directory "
                         "or a frozen GraphDef (.pb, .pbtxt)")
    inspect.add_argument("--json", action="store_true", help="print JSON for tools")
    inspect.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    devices = sub.add_parser("devices", help="placement report of a .meta on this machine")
    devices.add_argument("meta", help="a .meta file, a SavedModel directory or a frozen .pb")
    devices.add_argument("--checkpoint", help="check the restart rule against this prefix")
    devices.add_argument("--gpus", type=int, default=None,
                         help="use N numpy-backed virtual GPUs (default: real CUDA GPUs)")
    devices.add_argument("--device-map", action="append", metavar="FROM=TO",
                         help="remap device requests, e.g. /job:ps/task:0=/cpu:0 (repeatable)")
    devices.add_argument("--allow-soft-placement", action="store_true")
    devices.add_argument("--data-parallel", action="store_true", help="place as each rank of "
                         "a data-parallel run does (the jobs of between-graph replication "
                         "folded onto the rank's devices)")
    devices.add_argument("--clear-devices", action="store_true")
    devices.add_argument("--json", action="store_true", help="print JSON for tools")
    devices.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    run = sub.add_parser("run", help="run a SavedModel signature or a frozen graph's outputs")
    run.add_argument("model", help="a SavedModel directory or a frozen GraphDef (.pb, .pbtxt)")
    run.add_argument("--signature", default="serving_default",
                     help="the SavedModel signature key (default: serving_default)")
    run.add_argument("--tags", help="the SavedModel tag set, comma-separated (default: serve)")
    run.add_argument("--input", action="append", metavar="NAME=FILE.npy|FILE.tfrecord",
                     help="a signature input key (a tensor name for a frozen graph) and its "
                     "values (.npy, .npz:KEY, or a .tfrecord file of serialized protos); "
                     "repeatable")
    run.add_argument("--output", action="append", metavar="TENSOR",
                     help="a frozen graph's tensor to fetch (repeatable)")
    run.add_argument("--out", default=".", help="directory for the <output>.npy files")
    run.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    resume = sub.add_parser("resume", help="continue training from a TF checkpoint")
    resume.add_argument("checkpoint", help="a checkpoint prefix, a directory with a "
                        "'checkpoint' state file, or a SavedModel directory")
    resume.add_argument("--steps", type=int, default=100)
    resume.add_argument("--feed", action="append", metavar="TENSOR=FILE[:KEY]",
                        help="feed a placeholder from .npy/.npz data, batched (repeatable)")
    resume.add_argument("--batch-size", type=int, help="rows per step (default: all)")
    resume.add_argument("--seed", type=int, default=0, help="shuffling seed")
    resume.add_argument("--no-shuffle", action="store_true", help="batches in the files' row "
                        "order (each epoch the same)")
    resume.add_argument("--meta", help="the .meta file (default: <checkpoint>.meta)")
    resume.add_argument("--tags", help="a SavedModel's tag set, comma-separated (default: "
                        "'train', or its only one)")
    resume.add_argument("--train-op", help="op to run (default: the train_op collection)")
    resume.add_argument("--loss", help="tensor to report (default: the loss collection)")
    resume.add_argument("--save-every", type=int, help="also save every N steps")
    resume.add_argument("--out", help="directory for new checkpoints (default: the run's)")
    resume.add_argument("--logdir", help="TensorBoard log directory: the graph's summaries, "
                        "the loss and steps/s are written there")
    resume.add_argument("--summary-every", type=int, default=100, metavar="N",
                        help="write summaries on the first step and every N steps (100)")
    resume.add_argument("--summary-op", help="the summary tensor to write (default: the graph's "
                        "summaries collection)")
    resume.add_argument("--data-parallel", action="store_true", help="run as one of the ranks "
                        "of mpiexec -n N: each rank trains on 1/N of every batch and the "
                        "gradients are averaged (--batch-size stays the global batch)")
    resume.add_argument("--nproc", type=int, metavar="N", help="start N data-parallel ranks "
                        "on this machine (through mpiexec)")
    resume.add_argument("--export-savedmodel", metavar="DIR", help="finish by writing the "
                        "trained model as a SavedModel to DIR (new or empty)")
    resume.add_argument("--gpus", type=int, default=None,
                        help="use N numpy-backed virtual GPUs (default: real CUDA GPUs)")
    resume.add_argument("--device-map", action="append", metavar="FROM=TO")
    resume.add_argument("--allow-soft-placement", action="store_true")
    resume.add_argument("--clear-devices", action="store_true")
    resume.add_argument("--no-progress", action="store_true", help="no progress bar")
    resume.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def launch(nproc: int, argv: list[str]) -> int:
    """``gpugraph resume --nproc N ...``: the same command as N data-parallel ranks on this
    machine, started by the mpiexec next to this Python (MPICH's wheel) or on the PATH."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    here = os.path.dirname(sys.executable)
    mpiexec = shutil.which("mpiexec", path=here + os.pathsep + os.environ.get("PATH", ""))
    if mpiexec is None:
        print("gpugraph: error: --nproc needs an mpiexec: pip install 'gpugraph[mpi]' (or a "
              "system MPI)", file=sys.stderr)
        return 1
    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    command = [mpiexec, "-n", str(nproc), sys.executable, "-m", "gpugraph.cli", *rest]
    if "--data-parallel" not in rest:
        command.append("--data-parallel")
    return subprocess.call(command)


def _resume_as_rank(args: argparse.Namespace) -> int:
    """One rank of ``mpiexec -n N gpugraph resume --data-parallel``: only rank 0 reports; an
    error on any rank is printed with its rank and ends every rank (no rank waits forever)."""
    from gpugraph import distributed  # noqa: PLC0415

    try:
        world = distributed.init()
    except errors.OpError as e:
        return _bad_input(e, args.debug)
    if world.rank:
        args.no_progress = True
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (rank 0 speaks for the run)
    try:
        code = run_resume(args)
    except (errors.OpError, ValueError, KeyError, OSError) as e:
        code = _bad_input(e, args.debug, prefix=f"rank {world.rank} of {world.size}: ")
        world.abort(code)
    return code


def _bad_input(e: Exception, debug: bool, prefix: str = "") -> int:
    """Exit status 1 with a one-line message (the traceback with ``--debug``)."""
    if debug:
        raise e
    message = str(e).splitlines()[0] if str(e) else type(e).__name__
    print(f"gpugraph: error: {prefix}{type(e).__name__}: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "resume" and args.nproc:
        return launch(args.nproc, sys.argv[1:] if argv is None else argv)
    if args.command == "resume" and args.data_parallel:
        return _resume_as_rank(args)
    if args.command == "resume":
        try:
            return run_resume(args)
        except (errors.OpError, ValueError, KeyError, OSError) as e:
            return _bad_input(e, args.debug)
    if args.command == "run":
        try:
            for key, path in run_model(args).items():
                print(f"{key}: {path}")
            return 0
        except (errors.OpError, ValueError, KeyError, OSError) as e:
            return _bad_input(e, args.debug)
    try:
        if args.command == "devices":
            report = devices_report(args)
        else:
            report = inspect_meta(args.meta)
    except (errors.OpError, ValueError, KeyError) as e:
        return _bad_input(e, args.debug)
    try:
        if args.json:
            print(json.dumps(report, indent=2))
        elif args.command == "devices":
            _print_devices(report)
        else:
            _print_report(report)
        sys.stdout.flush()
    except BrokenPipeError:
        # `gpugraph inspect ... | head`: the reader left; exit quietly as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.command == "devices":
        restart = report.get("restart") or {}
        return 1 if report["violations"] or restart.get("moved") else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
