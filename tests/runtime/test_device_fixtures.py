"""TF-written device-annotated runs (towers on GPU:0/GPU:1, a ps/worker layout, colocation).

scripts/make_device_fixtures.py trained and continued each graph in TF on the CPU with soft
placement; the `.meta` keeps the requested devices.  gpugraph must refuse them on a machine
without those devices (naming every node), and continue exactly as TF did when the devices
exist (virtual GPUs), are cleared, or are mapped.
"""

from __future__ import annotations

import json
import pathlib

import pytest
from helpers import assert_continues_as_tf, continue_fixture, load_fixture

import gpugraph as gg
from gpugraph import errors

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "devices"
CASES = json.loads((FIXTURES / "index.json").read_text())["cases"]
GPU_CASES = [c for c in CASES if c != "ps_worker"]


def _load(case: str):
    return load_fixture(FIXTURES, case)


def _continue(case: str, session_config: dict, **import_kwargs) -> None:
    _, arrays, losses, values = continue_fixture(FIXTURES, case, session_config, **import_kwargs)
    assert_continues_as_tf(arrays, losses, values)


@pytest.mark.parametrize("case", GPU_CASES)
def test_no_gpus_names_every_gpu_node(case: str) -> None:
    config, _ = _load(case)
    with gg.Graph().as_default() as graph, gg.Session(config={"virtual_gpus": 0}) as sess:
        gg.train.import_meta_graph(str(FIXTURES / case / config["meta"]))
        with pytest.raises(errors.DevicePlacementError) as e:
            sess.run(gg.global_variables_initializer())
        gpu_nodes = {op.name for op in graph.get_operations() if "GPU" in op.device}
    reported = {v["node"] for v in e.value.details["report"]["violations"]}
    assert gpu_nodes <= reported
    assert all("GPU" in v["requested"] for v in e.value.details["report"]["violations"])


@pytest.mark.parametrize("case", GPU_CASES)
def test_two_virtual_gpus_continue_as_tf(case: str) -> None:
    _continue(case, {"virtual_gpus": 2})


@pytest.mark.parametrize("case", GPU_CASES)
def test_clear_devices_continue_as_tf(case: str) -> None:
    _continue(case, {"virtual_gpus": 0}, clear_devices=True)


def test_ps_worker_with_device_map_continues_as_tf() -> None:
    config, _ = _load("ps_worker")
    _continue("ps_worker", {"virtual_gpus": 0, "device_map": config["device_map"]})


def test_ps_worker_without_map_is_refused() -> None:
    config, _ = _load("ps_worker")
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 0}) as sess:
        gg.train.import_meta_graph(str(FIXTURES / "ps_worker" / config["meta"]))
        with pytest.raises(errors.DevicePlacementError) as e:
            sess.run(gg.global_variables_initializer())
    assert "/job:ps/task:0" in str(e.value) and "/job:worker/task:0" in str(e.value)


@pytest.mark.parametrize("case", ["towers_2gpu", "towers_2gpu_resource", "colocated"])
def test_one_virtual_gpu_names_only_the_gpu1_nodes(case: str) -> None:
    config, _ = _load(case)
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        gg.train.import_meta_graph(str(FIXTURES / case / config["meta"]))
        with pytest.raises(errors.DevicePlacementError) as e:
            sess.run(gg.global_variables_initializer())
    requested = {v["requested"] for v in e.value.details["report"]["violations"]}
    assert requested == {"/device:GPU:1"}


def test_device_map_moves_tower1_onto_one_gpu() -> None:
    _continue("towers_2gpu", {"virtual_gpus": 1, "device_map": {"/gpu:1": "/gpu:0"}})


def test_device_map_at_import() -> None:
    config, _ = _load("ps_worker")
    _continue("ps_worker", {"virtual_gpus": 0}, device_map=config["device_map"])
