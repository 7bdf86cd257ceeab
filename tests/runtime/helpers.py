"""Small graph-building helpers for runtime tests (any TF op type, attrs from Python values)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

from gpugraph.framework.attrs import to_attr_value
from gpugraph.framework.graph import get_default_graph


def node(op_type: str, *inputs: Any, name: str | None = None, **attrs: Any):
    """Adds one op to the default graph; returns its Operation."""
    return get_default_graph().create_op(op_type, list(inputs), name=name,
                                         attrs={k: to_attr_value(v) for k, v in attrs.items()})


def out(op_type: str, *inputs: Any, name: str | None = None, **attrs: Any):
    """Adds one op and returns its first output."""
    return node(op_type, *inputs, name=name, **attrs).outputs[0]


def load_fixture(directory: pathlib.Path, case: str) -> tuple[dict, dict]:
    """A TF continuation fixture (scripts/make_train_fixtures.py format): (json, npz arrays)."""
    config = json.loads((directory / case / f"{case}.json").read_text())
    with np.load(directory / case / "continue.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return config, arrays


def continue_fixture(directory: pathlib.Path, case: str, session_config: Any = None,
                     **import_kwargs: Any) -> tuple[dict, dict, list, dict]:
    """Restores a fixture's checkpoint and runs TF's recorded steps in gpugraph.

    Returns (config, arrays, the losses of every step, every global variable at the end).
    """
    import gpugraph as gg

    config, arrays = load_fixture(directory, case)
    with gg.Graph().as_default(), gg.Session(config=session_config) as sess:
        saver = gg.train.import_meta_graph(str(directory / case / config["meta"]),
                                           **import_kwargs)
        saver.restore(sess, str(directory / case / config["checkpoint"]))
        train_op = gg.get_collection(config["train_op_collection"])[0]
        losses = []
        for k in range(config["steps"]):
            feeds = {name: arrays[f"feed/{key}"][k] for key, name in config["feeds"].items()}
            losses.append(sess.run([config["loss"], train_op], feeds)[0])
        values = sess.run({v.op.name: v for v in gg.global_variables()})
    return config, arrays, losses, values


def assert_continues_as_tf(arrays: dict, losses: list, values: dict) -> None:
    """gpugraph's losses and end values equal TF's within rtol 1e-5 (atol 1e-6)."""
    np.testing.assert_allclose(losses, arrays["loss"], rtol=1e-5, atol=1e-6)
    for name, value in values.items():
        np.testing.assert_allclose(value, arrays[f"end/{name}"], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
