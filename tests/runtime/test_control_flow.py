"""Control flow (while loops, dynamic_rnn, conds in loops) against TF's own continuation.

The fixtures (scripts/make_control_flow_fixtures.py, real TF 2.21) are checkpoints at step 3
plus TF's next 10 steps: losses and every variable at the end.  ``*_v1`` cases use v1 frames
(Enter/Exit/Switch/Merge, TensorArrays); ``*_v2`` cases use StatelessWhile over the graph's
FunctionDefLibrary with TensorList loop state, for the forward loop and its gradient.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from helpers import assert_continues_as_tf, continue_fixture, load_fixture

import gpugraph as gg
from gpugraph import errors

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "control_flow"
CASES = json.loads((FIXTURES / "index.json").read_text())["cases"]
V1 = [c for c in CASES if c.endswith("_v1")]
V2 = [c for c in CASES if c.endswith("_v2")]


def _load(case: str):
    return load_fixture(FIXTURES, case)


def _continue_as_tf(case: str) -> None:
    config, arrays, losses, values = continue_fixture(FIXTURES, case)
    assert set(values) == set(config["variables"])
    assert_continues_as_tf(arrays, losses, values)


@pytest.mark.parametrize("case", V1)
def test_v1_control_flow_continues_as_tf(case: str) -> None:
    _continue_as_tf(case)


@pytest.mark.parametrize("case", V2)
def test_v2_control_flow_continues_as_tf(case: str) -> None:
    _continue_as_tf(case)


@pytest.mark.parametrize("case", ["rnn_basic_gd_v1", "nested_while_v1"])
def test_loop_iteration_cap_names_the_frame(case: str) -> None:
    config, arrays = _load(case)
    with gg.Graph().as_default(), gg.Session(config={"max_loop_iterations": 2}) as sess:
        saver = gg.train.import_meta_graph(str(FIXTURES / case / config["meta"]))
        saver.restore(sess, str(FIXTURES / case / config["checkpoint"]))
        feeds = {name: arrays[f"feed/{key}"][0] for key, name in config["feeds"].items()}
        with pytest.raises(errors.ResourceExhaustedError, match="while_context.*more than 2"):
            sess.run(config["loss"], feeds)


@pytest.mark.parametrize("case", V2)
def test_v2_loop_iteration_cap_names_the_while_node(case: str) -> None:
    config, arrays = _load(case)
    with gg.Graph().as_default(), gg.Session(config={"max_loop_iterations": 2}) as sess:
        saver = gg.train.import_meta_graph(str(FIXTURES / case / config["meta"]))
        saver.restore(sess, str(FIXTURES / case / config["checkpoint"]))
        feeds = {name: arrays[f"feed/{key}"][0] for key, name in config["feeds"].items()}
        with pytest.raises(errors.ResourceExhaustedError,
                           match=r"While loop 'rnn/while' \(StatelessWhile\) ran more than 2"):
            sess.run(config["loss"], feeds)


def test_v2_cases_are_control_flow_v2() -> None:
    """The v2 fixtures really are functional loops over a library (not lowered v1 frames)."""
    for case in V2:
        config, _ = _load(case)
        assert config["control_flow"] == "v2"
        assert "StatelessWhile" in config["op_types"] and "Enter" not in config["op_types"]
        assert "TensorListPopBack" in config["function_op_types"]


@pytest.mark.parametrize("case", ["rnn_basic_gd_v1", "rnn_lstm_adam_v2", "nested_while_v1",
                                  "cond_in_loop_v1"])
def test_control_flow_on_virtual_gpus(case: str) -> None:
    """Loops and function bodies placed on a (virtual) GPU, with host shapes copied over."""
    config, arrays = _load(case)
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 2}) as sess:
        saver = gg.train.import_meta_graph(str(FIXTURES / case / config["meta"]))
        saver.restore(sess, str(FIXTURES / case / config["checkpoint"]))
        train_op = gg.get_collection(config["train_op_collection"])[0]
        losses = []
        for k in range(3):
            feeds = {name: arrays[f"feed/{key}"][k] for key, name in config["feeds"].items()}
            losses.append(sess.run([config["loss"], train_op], feeds)[0])
    np.testing.assert_allclose(losses, arrays["loss"][:3], rtol=1e-5, atol=1e-6)
