"""Shared helpers for the Saver/checkpoint tests: the TF-made fixtures under
tests/fixtures/saver (scripts/make_saver_fixtures.py) and small graphs of variables."""

from __future__ import annotations

import contextlib
import json
import pathlib

import numpy as np
from google.protobuf import text_format

import gpugraph as gg
from gpugraph.train.meta_graph import import_scoped_meta_graph
from gpugraph.train.saver_builder import BaseSaverBuilder

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "saver"
CASES = json.loads((FIXTURES / "index.json").read_text())["cases"]
# Graphs with variables on /device:CPU:1 run on the one CPU gpugraph has.
CONFIG = {"device_map": {"/device:CPU:1": "/device:CPU:0"}}


def record(case: str) -> dict:
    return json.loads((FIXTURES / case / "record.json").read_text())


def values(case: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / case / "values.npz") as data:
        return {k: data[k] for k in data.files}


def import_variables(case: str) -> dict[str, gg.Variable]:
    """Imports the case's variables (no Saver) into the default graph; ``{op name: var}``."""
    import_scoped_meta_graph(str(FIXTURES / case / "vars.meta"))
    return {v.op.name: v for v in gg.global_variables()}


def resolve(by_name: dict, item: str):
    """A var_list entry of a record: a variable op name, or a partitioned variable's parts."""
    if item in by_name:
        return by_name[item]
    return sorted((v for v in by_name.values()
                   if v.save_slice_info is not None and v.save_slice_info.full_name == item),
                  key=lambda v: v.op.name)


def var_list(spec: dict, by_name: dict):
    """The record's var_list with names replaced by gpugraph Variables."""
    names = spec["var_list"]
    if names is None:
        return None
    if isinstance(names, dict):
        return {k: resolve(by_name, v) for k, v in names.items()}
    out = []
    for item in names:
        found = resolve(by_name, item)
        out.extend(found if isinstance(found, list) else [found])
    return out


def build_saver(spec: dict, by_name: dict, **extra) -> gg.train.Saver:
    """``gg.train.Saver`` with the record's arguments, in its name scope if any."""
    graph = gg.get_default_graph()
    scope = graph.name_scope(spec["name_scope"]) if spec["name_scope"] else (
        contextlib.nullcontext())
    builder = BaseSaverBuilder() if spec["builder"] == "base" else None
    with scope:
        return gg.train.Saver(var_list=var_list(spec, by_name), builder=builder,
                              **spec["kwargs"], **extra)


def node_record(node) -> dict:
    """A NodeDef in the fixture's form (every attr as one-line text format)."""
    return {"name": node.name, "op": node.op, "input": list(node.input), "device": node.device,
            "attr": {k: text_format.MessageToString(v, as_one_line=True)
                     for k, v in sorted(node.attr.items())}}


def saver_def_record(saver_def) -> dict | None:
    if saver_def is None:
        return None
    fields = ("filename_tensor_name", "save_tensor_name", "restore_op_name", "max_to_keep",
              "sharded", "keep_checkpoint_every_n_hours", "version")
    return {f: getattr(saver_def, f) for f in fields}


def assign(sess: gg.Session, var: gg.Variable, value) -> None:
    """Sets a variable by running its initializer with the initial value fed."""
    sess.run(var.initializer, {var.initial_value: value})


def read_all(sess: gg.Session, names) -> dict[str, np.ndarray]:
    graph = sess.graph
    by_name = {v.op.name: v for v in graph.get_collection("variables")}
    return sess.run({n: by_name[n] for n in names})


def covered(spec: dict, names) -> set[str]:
    """The variables (op names) a Saver spec of a record saves."""
    items = spec["var_list"]
    if items is None:
        return set(names)
    items = items.values() if isinstance(items, dict) else items
    return {n for item in items for n in names if n == item or n.startswith(item + "/part_")}
