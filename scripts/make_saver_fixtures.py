"""Generate real-TensorFlow fixtures for a *new* Saver's ops (gpugraph.train.Saver without a
SaverDef) and, with ``--check-gpugraph``, check that TensorFlow restores what gpugraph saves.

gpugraph never imports TensorFlow; this script (run in the TF virtualenv, see
``scripts/fixtures_requirements.txt``) does.  It deletes and rewrites ``tests/fixtures/saver/``::

    /work/tfenv/bin/python scripts/make_saver_fixtures.py                    # fixtures
    /work/tfenv/bin/python scripts/make_saver_fixtures.py --check-gpugraph   # + TF cross-check

How a case is built (the gpugraph test does the same, step for step)
====================================================================

1. TF builds the case's variables in a graph (``get_variable``: ref or resource, on a device,
   partitioned) and writes them, without any Saver, to ``<case>/vars.meta``
   (``tf.compat.v1.train.export_meta_graph``).
2. In a fresh graph TF imports ``vars.meta`` with ``meta_graph.import_scoped_meta_graph``
   (the import that does *not* add a Saver; ``import_meta_graph`` would build one), then builds
   each ``tf.compat.v1.train.Saver(**kwargs)`` of the case.  Every node added by each Saver is
   recorded (name, op, inputs, device, every attr), with its SaverDef.
3. TF sets every variable to a deterministic value (``values.npz``) and saves with the first
   Saver to ``<case>/tf/model-7`` (relative paths, so the state file is relative).

The gpugraph test imports ``vars.meta`` with gpugraph's ``import_scoped_meta_graph`` (same
node order, names and variables as TF's import), builds ``gpugraph.train.Saver`` with the same
arguments and compares the new nodes and the SaverDef with the records.

Files per case ``tests/fixtures/saver/<case>/``
===============================================

* ``vars.meta``: the variables only.
* ``record.json``::

    {"case": ..., "tf_version": ...,
     "variables": [{"name", "shape", "dtype", "kind": "ref"|"resource", "device",
                    "partitions"}],
     "savers": [{"kwargs": {...},                    # JSON-able Saver arguments
                 "var_list": null | [var op names] | {ckpt name: var op name | [op names]},
                 "name_scope": null | "outer",       # Saver built inside this name scope
                 "builder": null | "base",           # "base": builder=BaseSaverBuilder()
                 "saver_def": {...} | null,          # null: an empty Saver (allow_empty)
                 "nodes": [{"name", "op", "input", "device", "attr": {k: AttrValue text}}]}],
     "import_meta_graph": {"saver_def", "nodes"},   # tf.train.import_meta_graph("vars.meta")
                                                    # adds a default Saver: every node after it
     "checkpoint": "tf/model-7" | null,
     "reader": {"shape_map", "dtype_map", "debug_string_hex", "list_variables"}}  # TF's
                                                    # CheckpointReader on the checkpoint

  ``var_list`` names are variables' op names; a partitioned variable's full name stands for
  the list of its parts.  ``attr`` values are one-line text-format AttrValue protos, including
  ``_output_shapes``.
* ``values.npz``: the value of each variable (key: the variable's op name, e.g.
  ``pv/part_0``) in ``tf/model-7`` (empty for ``crash_model``, which has no TF checkpoint).
* ``tf/``: TF's ``checkpoint`` state file, ``model-7.index``, ``model-7.data-*`` and
  ``model-7.meta`` (the full graph with the Saver), written by the first Saver.

``--check-gpugraph`` (gpugraph importable from the repository root): for each case gpugraph
imports ``vars.meta``, builds the Saver, sets other values, saves with gpugraph, and TF then
restores that checkpoint twice: through the ``.meta`` gpugraph exported (gpugraph-built save
ops running in TF) and through TF's own Saver over ``vars.meta``.  Every variable must come
back bit-exact.  The script prints one line per case and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.python.framework import meta_graph
from tensorflow.python.training.saver import BaseSaverBuilder

tf1 = tf.compat.v1
tf1.disable_v2_behavior()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "saver")
STEP = 7


def var(name, shape, dtype="float32", kind="ref", device=None, partitions=None):
    return {"name": name, "shape": shape, "dtype": dtype, "kind": kind, "device": device,
            "partitions": partitions}


def saver(var_list=None, name_scope=None, builder=None, **kwargs):
    return {"kwargs": kwargs, "var_list": var_list, "name_scope": name_scope, "builder": builder}


GLOBAL_STEP = var("global_step", [], "int64")
CASES = {
    "ref_default": ([GLOBAL_STEP, var("layer/w", [3, 2]), var("layer/b", [2])], [saver()]),
    "resource_options": (
        [GLOBAL_STEP, var("dense/kernel", [4, 3], kind="resource"),
         var("dense/bias", [3], kind="resource"), var("count", [], "int32", "resource")],
        [saver(max_to_keep=2, pad_step_number=True, filename="ckpt",
               keep_checkpoint_every_n_hours=0.5)]),
    "sharded_two_cpus": (
        [var("a", [2], device="/cpu:0"), var("global_step", [], "int64", device="/cpu:0"),
         var("b", [3], kind="resource", device="/cpu:1")],
        [saver(sharded=True)]),
    "two_devices_unsharded": (
        [var("a", [2], device="/cpu:0"), var("b", [3], kind="resource", device="/cpu:1")],
        [saver()]),
    "partitioned_ref": ([var("pv", [6, 3], partitions=2), var("v", [2])], [saver()]),
    "partitioned_resource": ([var("pv", [6, 3], kind="resource", partitions=2)], [saver()]),
    "dict_var_list": (
        [var("a", [2]), var("b", [3], kind="resource"), var("pv", [4, 2], partitions=2)],
        [saver({"custom/alpha": "a", "beta": "b", "pieces": "pv"}, name="my_saver",
               max_to_keep=None, save_relative_paths=True)]),
    "two_savers": (
        [var("a", [2]), var("b", [3], kind="resource"), var("c", [2, 2], "float64")],
        [saver(["c", "a"]), saver(["b", "c"], reshape=True)]),
    "under_name_scope": ([var("a", [2]), var("b", [1], kind="resource")],
                         [saver(name_scope="outer")]),
    "base_builder": ([var("a", [2], device="/cpu:0"), var("b", [3], kind="resource")],
                     [saver(builder="base")]),
    "empty": ([], [saver(allow_empty=True)]),
    # ~3.3 MB of variables for the crash-safety test (no TF checkpoint or values: too big).
    "crash_model": ([var("global_step", [], "int64"), var("w1", [1024, 768]), var("w2", [768]),
                     var("r", [256, 256], kind="resource")],
                    [saver(max_to_keep=2)], {"tf_checkpoint": False}),
}


# --- building ------------------------------------------------------------------------------
def build_variables(specs):
    for spec in specs:
        scope, _, base = spec["name"].rpartition("/")
        device = tf1.device(spec["device"]) if spec["device"] else contextlib.nullcontext()
        var_scope = tf1.variable_scope(scope) if scope else contextlib.nullcontext()
        with device, var_scope:
            if spec["name"] == "global_step":
                tf1.train.get_or_create_global_step()
                continue
            partitioner = (tf1.fixed_size_partitioner(spec["partitions"])
                           if spec["partitions"] else None)
            tf1.get_variable(base, spec["shape"], getattr(tf, spec["dtype"]),
                             initializer=tf1.zeros_initializer(), partitioner=partitioner,
                             use_resource=spec["kind"] == "resource")


def variables_by_name(graph):
    return {v.op.name: v for v in graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)}


def resolve(item, by_name):
    """A var_list entry (op name or partitioned full name) -> Variable or list of parts."""
    if item in by_name:
        return by_name[item]
    parts = sorted((v for v in by_name.values()
                    if v._save_slice_info and v._save_slice_info.full_name == item),
                   key=lambda v: v.op.name)
    if not parts:
        raise KeyError(item)
    return parts


def resolve_var_list(var_list, by_name):
    if var_list is None:
        return None
    if isinstance(var_list, dict):
        return {k: resolve(v, by_name) for k, v in var_list.items()}
    out = []
    for item in var_list:
        found = resolve(item, by_name)
        out.extend(found if isinstance(found, list) else [found])
    return out


def build_saver(spec, graph):
    var_list = resolve_var_list(spec["var_list"], variables_by_name(graph))
    scope = graph.name_scope(spec["name_scope"]) if spec["name_scope"] else (
        contextlib.nullcontext())
    builder = BaseSaverBuilder() if spec["builder"] == "base" else None
    with scope:
        return tf1.train.Saver(var_list=var_list, builder=builder, **spec["kwargs"])


def node_record(node):
    return {"name": node.name, "op": node.op, "input": list(node.input), "device": node.device,
            "attr": {k: text_format.MessageToString(v, as_one_line=True)
                     for k, v in sorted(node.attr.items())}}


def saver_def_record(saver_def):
    return {"filename_tensor_name": saver_def.filename_tensor_name,
            "save_tensor_name": saver_def.save_tensor_name,
            "restore_op_name": saver_def.restore_op_name, "max_to_keep": saver_def.max_to_keep,
            "sharded": saver_def.sharded,
            "keep_checkpoint_every_n_hours": saver_def.keep_checkpoint_every_n_hours,
            "version": saver_def.version}


def values_for(specs, offset):
    """Deterministic values for every variable (parts split along axis 0, as the partitioner)."""
    out = {}
    for i, spec in enumerate(specs):
        shape, dtype = spec["shape"], np.dtype(spec["dtype"])
        full = (np.arange(int(np.prod(shape))) * 0.25 + 10 * i + offset).reshape(shape)
        full = full.astype(dtype)
        if spec["partitions"]:
            for k, part in enumerate(np.array_split(full, spec["partitions"], axis=0)):
                out[f"{spec['name']}/part_{k}"] = part
        else:
            out[spec["name"]] = full
    return out


def session_config():
    return tf1.ConfigProto(device_count={"CPU": 2}, inter_op_parallelism_threads=1,
                           intra_op_parallelism_threads=1)


# --- the fixtures --------------------------------------------------------------------------
def make_case(case, specs, saver_specs, options=None):
    directory = os.path.join(OUT, case)
    os.makedirs(directory)
    with tf1.Graph().as_default() as g:
        build_variables(specs)
        tf1.train.export_meta_graph(os.path.join(directory, "vars.meta"), graph=g)
    record = {"case": case, "tf_version": tf.__version__, "variables": specs, "savers": [],
              "checkpoint": None}
    with tf1.Graph().as_default() as g:
        meta_graph.import_scoped_meta_graph(os.path.join(directory, "vars.meta"))
        savers = []
        for spec in saver_specs:
            start = len(g.as_graph_def().node)
            s = build_saver(spec, g)
            savers.append(s)
            nodes = g.as_graph_def(add_shapes=True).node[start:]
            record["savers"].append({
                **spec, "saver_def": saver_def_record(s.saver_def) if s.saver_def else None,
                "nodes": [node_record(n) for n in nodes]})
        values = values_for(specs, offset=1)
        if not (options or {}).get("tf_checkpoint", True):
            values = {}
        elif specs:
            record["checkpoint"] = save_with_tf(g, savers[0], values, directory)
            record["reader"] = reader_record(os.path.join(directory, record["checkpoint"]))
    record["import_meta_graph"] = import_record(os.path.join(directory, "vars.meta"))
    np.savez(os.path.join(directory, "values.npz"), **values)
    with open(os.path.join(directory, "record.json"), "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")


def import_record(path):
    """What ``import_meta_graph`` of a .meta without a SaverDef adds: a default Saver."""
    with tf1.Graph().as_default() as g:
        s = tf1.train.import_meta_graph(path)
        return {"saver_def": saver_def_record(s.saver_def) if s else None,
                "nodes": [node_record(n) for n in g.as_graph_def(add_shapes=True).node]}


def save_with_tf(graph, s, values, directory):
    by_name = variables_by_name(graph)
    with tf1.Session(graph=graph, config=session_config()) as sess:
        for name, value in values.items():
            by_name[name].load(value, sess)
        os.makedirs(os.path.join(directory, "tf"), exist_ok=True)
        cwd = os.getcwd()
        os.chdir(directory)
        try:
            prefix = s.save(sess, "tf/model", global_step=STEP)
        finally:
            os.chdir(cwd)
    return prefix


def reader_record(prefix):
    """What TF's CheckpointReader and list_variables report for the checkpoint."""
    reader = tf1.train.NewCheckpointReader(prefix)
    return {"shape_map": reader.get_variable_to_shape_map(),
            "dtype_map": {k: v.name for k, v in reader.get_variable_to_dtype_map().items()},
            "debug_string_hex": reader.debug_string().hex(),
            "list_variables": [[n, s] for n, s in tf.train.list_variables(prefix)]}


# --- the cross-check -----------------------------------------------------------------------
def check_gpugraph(case, specs, saver_specs, tmp):
    """gpugraph saves; TF restores through gpugraph's .meta and through its own Saver."""
    sys.path.insert(0, ROOT)
    import gpugraph as gg
    from gpugraph.train.meta_graph import import_scoped_meta_graph as gg_import

    directory = os.path.join(OUT, case)
    values = values_for(specs, offset=100)
    with gg.Graph().as_default() as g:
        gg_import(os.path.join(directory, "vars.meta"))
        by_name = {v.op.name: v for v in gg.global_variables()}
        gg_savers = [build_gg_saver(gg, spec, by_name, g) for spec in saver_specs]
        config = {"device_map": {"/device:CPU:1": "/device:CPU:0"}}
        with gg.Session(config=config) as sess:
            for name, value in values.items():
                v = by_name[name]
                sess.run(v.initializer, {v.initial_value: value})
            prefix = gg_savers[0].save(sess, os.path.join(tmp, case, "model"), global_step=STEP)
    if prefix is None:
        return "empty saver: nothing saved (as TF)"
    values = {k: v for k, v in values.items() if k in covered(saver_specs[0], values)}
    results = []
    with tf1.Graph().as_default() as g:
        s = tf1.train.import_meta_graph(prefix + ".meta")
        results.append(("gpugraph .meta", restore_and_compare(g, s, prefix, values)))
    with tf1.Graph().as_default() as g:
        meta_graph.import_scoped_meta_graph(os.path.join(directory, "vars.meta"))
        s = build_saver(saver_specs[0], g)
        results.append(("TF Saver", restore_and_compare(g, s, prefix, values)))
    return "; ".join(f"{how}: {result}" for how, result in results)


def build_gg_saver(gg, spec, by_name, graph):
    """gpugraph's Saver with the spec's arguments (variables resolved as ``resolve`` does)."""
    from gpugraph.train.saver_builder import BaseSaverBuilder as GgBaseSaverBuilder

    def resolve_gg(item):
        if item in by_name:
            return by_name[item]
        return sorted((v for v in by_name.values()
                       if v.save_slice_info and v.save_slice_info.full_name == item),
                      key=lambda v: v.op.name)

    var_list = spec["var_list"]
    if isinstance(var_list, dict):
        var_list = {k: resolve_gg(name) for k, name in var_list.items()}
    elif var_list is not None:
        found = [resolve_gg(item) for item in var_list]
        var_list = [v for x in found for v in (x if isinstance(x, list) else [x])]
    scope = graph.name_scope(spec["name_scope"]) if spec["name_scope"] else (
        contextlib.nullcontext())
    builder = GgBaseSaverBuilder() if spec["builder"] == "base" else None
    with scope:
        return gg.train.Saver(var_list=var_list, builder=builder, **spec["kwargs"])


def covered(spec, values):
    """The variables (op names) a Saver spec saves."""
    var_list = spec["var_list"]
    if var_list is None:
        return set(values)
    items = var_list.values() if isinstance(var_list, dict) else var_list
    return {name for item in items for name in values
            if name == item or name.startswith(item + "/part_")}


def restore_and_compare(graph, s, prefix, values):
    by_name = variables_by_name(graph)
    with tf1.Session(graph=graph, config=session_config()) as sess:
        s.restore(sess, prefix)
        wrong = []
        for name, want in values.items():
            got = sess.run(by_name[name].read_value())
            if got.dtype != want.dtype or not np.array_equal(got, want):
                wrong.append(name)
    return "OK" if not wrong else f"MISMATCH {wrong}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check-gpugraph", action="store_true",
                        help="also check that TF restores checkpoints gpugraph saves")
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for case, (specs, saver_specs, *options) in CASES.items():
        make_case(case, specs, saver_specs, *options)
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump({"cases": list(CASES), "tf_version": tf.__version__}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(CASES)} cases to {OUT}")
    if not args.check_gpugraph:
        return 0
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for case, (specs, saver_specs, *_) in CASES.items():
            try:
                line = check_gpugraph(case, specs, saver_specs, tmp)
            except Exception as e:  # noqa: BLE001  (report every case, then fail)
                line = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0]}"
            failed |= "FAILED" in line or "MISMATCH" in line
            print(f"{case:24s} {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
