"""Devices, placement and cross-device execution (virtual GPUs stand in for CUDA ones)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import gpugraph as gg
from gpugraph.devices.virtual import xp as vg
from gpugraph import errors
from gpugraph.devices import VirtualGpuDevice, discover
from gpugraph.placement import map_device

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
DEVICES_META = FIXTURES / "meta" / "devices.meta"
TRAIN = FIXTURES / "train"


def test_discovery_falls_back_to_cpu_and_says_why(monkeypatch) -> None:
    monkeypatch.delenv("GPUGRAPH_VIRTUAL_GPUS", raising=False)
    found = discover()
    assert found.devices[0].name == "/job:localhost/replica:0/task:0/device:CPU:0"
    if not found.gpus:
        assert any("CuPy" in n or "CUDA" in n for n in found.notes)


def test_virtual_gpus_from_argument_and_environment(monkeypatch) -> None:
    assert [d.short_name for d in discover(2)] == ["CPU:0", "GPU:0", "GPU:1"]
    monkeypatch.setenv("GPUGRAPH_VIRTUAL_GPUS", "3")
    assert len(discover().gpus) == 3
    assert discover(0).gpus == []  # 0 means CPU only, whatever the environment says


def test_virtual_gpu_arrays_refuse_misplaced_memory() -> None:
    g0, g1 = VirtualGpuDevice(0), VirtualGpuDevice(1)
    a, b = g0.to_device(np.ones(3)), g1.to_device(np.ones(3))
    with vg.running_on(0):
        assert (a + a).device == 0 and g0.xp.zeros(2).device == 0
        with pytest.raises(vg.DeviceMismatchError, match="GPU:1 was used by an op running on virtual GPU:0"):
            a + b
        with pytest.raises(vg.DeviceMismatchError, match="host"):
            a * np.ones(3)
        with pytest.raises(vg.DeviceMismatchError):
            np.concatenate([a, b])
    assert type(g0.to_host(a)) is np.ndarray


def test_virtual_gpu_kernels_keep_host_and_device_memory_apart() -> None:
    """Each output lives where the op's registration says, or the kernel fails at once."""
    gpu = VirtualGpuDevice(0)
    on_device = gpu.to_device(np.ones(2, np.float32))

    def check(result, host_inputs=frozenset(), host_outputs=frozenset(), args=()):
        kernel = gpu.checked_kernel(lambda *_: result, "n", host_inputs, host_outputs)
        return kernel(*args)

    assert check((on_device, np.int64(3)), host_outputs=frozenset({1}))[0] is on_device
    assert check(None) is None and check(DEAD_LIKE) is DEAD_LIKE  # not arrays: not checked
    for host_value in (np.float32(0), np.zeros(2), True, 1.5):
        with pytest.raises(vg.DeviceMismatchError, match="node 'n'.*output 0 as a host value"):
            check(host_value)
    with pytest.raises(vg.DeviceMismatchError, match="node 'n': output 1 is host memory"):
        check((on_device, on_device), host_outputs=frozenset({1}))
    with pytest.raises(vg.DeviceMismatchError, match="node 'n': host-memory input 0"):
        check(on_device, host_inputs=frozenset({0}), args=(on_device,))
    elsewhere = VirtualGpuDevice(1).to_device(np.ones(2))
    with pytest.raises(vg.DeviceMismatchError, match="output 0 lives on virtual GPU:1"):
        check(elsewhere)


DEAD_LIKE = object()


def test_virtual_gpu_refuses_what_cupy_refuses() -> None:
    """numpy calls CuPy has no equivalent for fail on a virtual GPU too (each was once made by a
    kernel and found on a real GPU)."""
    gpu = VirtualGpuDevice(0)
    xp, x = gpu.xp, gpu.to_device(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="initial"):
        xp.max(x, axis=0, initial=-np.inf)
    assert xp.max(x, axis=0).tolist() == [3, 4, 5]
    with pytest.raises(TypeError, match="constant_values"):
        xp.pad(x, [(1, 0), (0, 0)], constant_values=gpu.to_device(np.float64(7)))
    assert xp.pad(x, [(1, 0), (0, 0)], constant_values=7.0)[0].tolist() == [7, 7, 7]
    eye = gpu.to_device(np.eye(3))
    with pytest.raises(ValueError, match="broadcast"):
        xp.linalg.solve(eye, gpu.to_device(np.ones((2, 3, 1))))
    assert xp.linalg.solve(eye, gpu.to_device(np.ones((3, 1)))).shape == (3, 1)


@pytest.mark.parametrize(("requested", "mapping", "expected"), [
    ("/job:ps/task:0/device:CPU:0", {"/job:ps/task:0": "/cpu:0"}, "/device:CPU:0"),
    ("/job:ps/task:0", {"/job:ps": "/cpu:0"}, "/task:0/device:CPU:0"),
    ("/device:GPU:1", {"/gpu:1": "/gpu:0"}, "/device:GPU:0"),
    ("/device:GPU:0", {"/gpu:1": "/gpu:0"}, "/device:GPU:0"),
    ("", {"/gpu:1": "/gpu:0"}, ""),
])
def test_device_map(requested: str, mapping: dict, expected: str) -> None:
    assert map_device(requested, mapping) == expected


def _devices_graph(**kwargs):
    graph = gg.Graph()
    with graph.as_default():
        gg.train.import_meta_graph(str(DEVICES_META), **kwargs)
    return graph


def test_every_unplaceable_node_is_reported_at_once() -> None:
    graph = _devices_graph()
    with graph.as_default(), gg.Session(config={"virtual_gpus": 0}) as sess:
        with pytest.raises(errors.DevicePlacementError) as e:
            sess.run(gg.global_variables_initializer())
    text = str(e.value)
    assert "/device:GPU:0: 36 node(s)" in text and "/device:GPU:1: 38 node(s)" in text
    assert "/job:ps/task:0" in text and "clear_devices=True" in text and "device_map" in text
    report = e.value.details["report"]
    assert len(report["violations"]) == 95
    assert {v["requested"] for v in report["violations"]} >= {"/device:GPU:0", "/device:GPU:1"}
    json.dumps(report)  # structured data, ready for tools


def test_one_virtual_gpu_reports_only_gpu1_nodes() -> None:
    graph = _devices_graph()
    mapping = {"/job:ps/task:0": "/cpu:0", "/job:worker/replica:0/task:1": "/job:localhost"}
    with graph.as_default(), gg.Session(config={"virtual_gpus": 1, "device_map": mapping}) as sess:
        with pytest.raises(errors.DevicePlacementError) as e:
            sess.run(gg.global_variables_initializer())
    requested = {v["requested"] for v in e.value.details["report"]["violations"]}
    assert requested == {"/device:GPU:1"}


def test_clear_devices_and_soft_placement_run() -> None:
    with _devices_graph(clear_devices=True).as_default(), gg.Session() as sess:
        sess.run(gg.global_variables_initializer())
    with _devices_graph().as_default(), gg.Session(
            config={"allow_soft_placement": True, "virtual_gpus": 0}) as sess:
        sess.run(gg.global_variables_initializer())
        soft = sess.placement_report().to_json()["soft_placed"]
        assert soft and all(a["device"].endswith("CPU:0") for a in soft)


def _placement_of(sess, graph):
    sess.run(gg.global_variables_initializer())
    return {op.name: sess._placement()[op].short_name for op in graph.get_operations()}


def test_two_virtual_gpus_honour_the_towers() -> None:
    graph = _devices_graph()
    mapping = {"/job:ps/task:0": "/cpu:0", "/job:worker/replica:0/task:1": "/job:localhost"}
    with graph.as_default(), gg.Session(config={"virtual_gpus": 2, "device_map": mapping}) as sess:
        where = _placement_of(sess, graph)
        assert where["tower_0/MatMul"] == "GPU:0" and where["tower_1/MatMul"] == "GPU:1"
        assert where["save/SaveV2"] == "CPU:0"  # host-only op
        # Colocation: ops with _class loc:@x live with x.
        for op in graph.get_operations():
            for target in op._colocation_targets():
                assert where[op.name] == where[target], (op.name, target)


def _continue(case: str, config: dict, steps: int = 5) -> tuple[list, dict]:
    data = np.load(TRAIN / case / "continue.npz")
    with gg.Graph().as_default(), gg.Session(config=config) as sess:
        saver = gg.train.import_meta_graph(str(TRAIN / case / f"{case}-3.meta"))
        saver.restore(sess, str(TRAIN / case / f"{case}-3"))
        train_op = gg.get_collection("train_op")[0]
        losses = [sess.run(["loss:0", train_op], {"x:0": data["feed/x"][k],
                                                   "y:0": data["feed/y"][k]})[0]
                  for k in range(steps)]
        plan = list(sess._plans.values())[-1]
        kinds = {(s.kind, s.device.short_name) for s in plan.steps}
    return losses, {"tf_loss": data["loss"][:steps], "kinds": kinds}


@pytest.mark.parametrize("case", ["mlp_sparse_adam_resource", "mlp_softmax_v2_momentum_ref",
                                  "cnn_momentum_ref"])
def test_training_on_a_virtual_gpu_matches_tf(case: str) -> None:
    losses, info = _continue(case, {"virtual_gpus": 2})
    np.testing.assert_allclose(losses, info["tf_loss"], rtol=1e-5)
    assert ("kernel", "GPU:0") in info["kinds"] and ("copy", "GPU:0") in info["kinds"]


def test_restart_rule_refuses_moved_variables(tmp_path) -> None:
    case = "mlp_sparse_gd_resource"
    meta, ckpt = str(TRAIN / case / f"{case}-3.meta"), str(TRAIN / case / f"{case}-3")
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 2}) as sess:
        saver = gg.train.import_meta_graph(meta)  # no device fields: variables go to GPU:0
        saver.restore(sess, ckpt)
        prefix = saver.save(sess, str(tmp_path / "m"), global_step=3)
    record = json.loads((tmp_path / "m-3.gpugraph-devices.json").read_text())
    assert record["variables"]["dense/kernel"].endswith("GPU:0")

    def restore_on_gpu1(config: dict) -> None:
        with gg.Graph().as_default(), gg.Session(config=config) as sess:
            with gg.device("/gpu:1"):
                saver = gg.train.import_meta_graph(prefix + ".meta")
            saver.restore(sess, prefix)

    # Importing under gg.device("/gpu:1") puts the Saver's string ops there too: as in TF,
    # that needs soft placement (they have no GPU kernel), which doesn't license moving variables.
    with pytest.raises(errors.DevicePlacementError) as e:
        restore_on_gpu1({"virtual_gpus": 2})
    assert "save/SaveV2" in str(e.value) and "no GPU kernel" in str(e.value)
    with pytest.raises(errors.DevicePlacementError) as e:
        restore_on_gpu1({"virtual_gpus": 2, "allow_soft_placement": True})
    assert "dense/kernel" in str(e.value) and "GPU:0  ->  /job:localhost" in str(e.value)
    moved = e.value.details["report"]["moved"]
    assert {m["variable"] for m in moved} >= {"dense/kernel", "dense/bias", "global_step"}
    assert all(m["restored_on"].endswith("GPU:1") for m in moved)
    restore_on_gpu1({"virtual_gpus": 2, "allow_soft_placement": True,
                     "allow_device_change": True})  # explicit opt-in


def test_restart_rule_catches_a_machine_without_the_gpus(tmp_path) -> None:
    """Saved where unannotated variables defaulted to GPU:0, restored on a CPU-only session."""
    case = "mlp_sparse_gd_ref"
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 1}) as sess:
        saver = gg.train.import_meta_graph(str(TRAIN / case / f"{case}-3.meta"))
        saver.restore(sess, str(TRAIN / case / f"{case}-3"))
        prefix = saver.save(sess, str(tmp_path / "m"))
    with gg.Graph().as_default(), gg.Session(config={"virtual_gpus": 0}) as sess:
        saver = gg.train.import_meta_graph(prefix + ".meta")
        with pytest.raises(errors.DevicePlacementError, match="GPU:0  ->  .*CPU:0"):
            saver.restore(sess, prefix)


def test_cupy_without_a_cuda_device_falls_back_cleanly(monkeypatch) -> None:
    """CuPy installed but CUDA broken (what CI with the cuda extra but no GPU looks like)."""
    import sys
    import types

    class CUDARuntimeError(RuntimeError):
        pass

    def no_device() -> int:
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.delenv("GPUGRAPH_VIRTUAL_GPUS", raising=False)
    found = discover()
    assert [d.short_name for d in found] == ["CPU:0"]
    assert any("cudaErrorNoDevice" in n for n in found.notes)
    with gg.Graph().as_default():
        x = gg.placeholder(gg.dtypes.float32, [2], name="x")
        with gg.Session() as sess:
            assert sess.run(x, {x: [1.0, 2.0]}).tolist() == [1.0, 2.0]


def test_cuda_devices_used_in_a_forked_child_are_explained(monkeypatch) -> None:
    """CUDA does not survive fork(): a Session made before the fork names the cause."""
    from gpugraph import session as session_module

    class FakeCuda:
        kind, name = "cuda", "/job:localhost/replica:0/task:0/device:GPU:0"

    devices = [VirtualGpuDevice(0), FakeCuda()]
    session_module.check_same_process(devices, pid=session_module.os.getpid())  # same process
    monkeypatch.setattr(session_module.os, "getpid", lambda: 4242)
    session_module.check_same_process([VirtualGpuDevice(0)], pid=1)  # no CUDA: nothing to say
    with pytest.raises(errors.UnavailableError, match=r"process 1, and this is a child it "
                       r"forked \(process 4242\): CUDA does not survive fork") as e:
        session_module.check_same_process(devices, pid=1)
    assert e.value.details["devices"] == [FakeCuda.name]
    with gg.Graph().as_default():  # and Session.run makes the check
        x = gg.constant(np.float32(1), name="x")
        sess = gg.Session(config={"virtual_gpus": 0})
        sess._devices, sess._pid, sess._forks = devices, 1, -1
        with pytest.raises(errors.UnavailableError):
            sess.run(x)
