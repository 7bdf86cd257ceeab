"""The ``gpugraph`` command.

``gpugraph inspect MODEL.meta [--json]`` summarises a MetaGraphDef as gpugraph imports it: op
counts by type, variables, placeholders to feed, collections, the saver_def and the device
fields in use.  Exit status: 0 success, 1 bad input (a one-line message), 2 usage error.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from typing import Any

import gpugraph as gg
from gpugraph import errors


def _shape(shape: gg.TensorShape) -> list | None:
    return None if shape.dims is None else list(shape.dims)


def inspect_meta(path: str) -> dict[str, Any]:
    """Imports ``path`` into a fresh graph and returns the report as plain data."""
    graph = gg.Graph()
    with graph.as_default():
        saver = gg.train.import_meta_graph(path)
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
    }


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpugraph", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="summarise a .meta file")
    inspect.add_argument("meta", help="path to a binary or text .meta file")
    inspect.add_argument("--json", action="store_true", help="print JSON for tools")
    inspect.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = inspect_meta(args.meta)
    except (errors.OpError, ValueError, KeyError) as e:
        if args.debug:
            raise
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"gpugraph: error: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    try:
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            _print_report(report)
        sys.stdout.flush()
    except BrokenPipeError:
        # `gpugraph inspect ... | head`: the reader left; exit quietly as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
