"""The gpugraph command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
META = ROOT / "tests" / "fixtures" / "meta" / "mlp_resource_adam" / "mlp_resource_adam-3.meta"


def _gpugraph(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gpugraph.cli", *args], capture_output=True,
                          text=True, cwd=ROOT)


def test_inspect_json_reports_the_graph():
    result = _gpugraph("inspect", str(META), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["op_counts"]["ResourceApplyAdam"] == 4
    assert {p["name"] for p in report["placeholders"]} == {"x:0", "y:0"}
    names = {v["name"]: v for v in report["variables"]}
    assert names["layer1/w"]["shape"] == [4, 8] and names["layer1/w"]["resource"]
    assert report["saver_def"]["restore_op_name"] == "save/restore_all"


def test_inspect_text_lists_sections():
    result = _gpugraph("inspect", str(META))
    assert result.returncode == 0
    for heading in ("Ops by type:", "Variables:", "Placeholders to feed:", "Collections:"):
        assert heading in result.stdout


def test_bad_input_exits_1_with_one_line():
    result = _gpugraph("inspect", str(ROOT / "tests" / "fixtures" / "meta" / "errors" / "truncated.meta"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "DataLossError" in result.stderr and "truncated.meta" in result.stderr


def test_usage_error_exits_2():
    assert _gpugraph("frobnicate").returncode == 2



DEVICES = ROOT / "tests" / "fixtures" / "devices"


def test_devices_report_exit_status_and_json():
    meta = str(DEVICES / "towers_2gpu" / "towers_2gpu-3.meta")
    bad = _gpugraph("devices", meta, "--gpus", "1", "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert {v["requested"] for v in report["violations"]} == {"/device:GPU:1"}
    good = _gpugraph("devices", meta, "--gpus", "2", "--json")
    assert good.returncode == 0 and json.loads(good.stdout)["violations"] == []
    mapped = _gpugraph("devices", meta, "--gpus", "1", "--device-map", "/gpu:1=/gpu:0")
    assert mapped.returncode == 0 and "Requested -> assigned" in mapped.stdout


def test_devices_explains_between_graph_replication():
    # /job:ps and /job:worker are other machines for one process; --data-parallel places as a
    # data-parallel rank does (each job folded onto the rank's devices) and says so.
    meta = str(DEVICES / "ps_worker" / "ps_worker-3.meta")
    alone = _gpugraph("devices", meta, "--json")
    assert alone.returncode == 1
    report = json.loads(alone.stdout)
    assert report["replication"]["jobs"] == {"ps": 100, "worker": 55}
    assert "run it data-parallel" in report["replication"]["note"]
    ranked = _gpugraph("devices", meta, "--data-parallel")
    assert ranked.returncode == 0, ranked.stdout
    assert "runs as synchronous data parallelism" in ranked.stdout
    assert "asynchronous parameter-server updates are not reproduced" in ranked.stdout


def test_devices_text_names_groups_and_fixes():
    meta = str(DEVICES / "ps_worker" / "ps_worker-3.meta")
    result = _gpugraph("devices", meta, "--gpus", "0")
    assert result.returncode == 1
    assert "/job:ps/task:0" in result.stdout and "--device-map" in result.stdout
    ok = _gpugraph("devices", meta, "--gpus", "0", "--device-map", "/job:ps/task:0=/cpu:0",
                   "--device-map", "/job:worker/task:0=/cpu:0",
                   "--checkpoint", str(DEVICES / "ps_worker" / "ps_worker-3"))
    assert ok.returncode == 0, ok.stdout
    assert "Restart rule" in ok.stdout and "no gpugraph device record" in ok.stdout


def test_inspect_lists_ops_without_kernels():
    meta = ROOT / "tests" / "fixtures" / "control_flow" / "rnn_basic_gd_v1" / "rnn_basic_gd_v1-3.meta"
    report = json.loads(_gpugraph("inspect", str(meta), "--json").stdout)
    assert report["ops_without_kernel"] == {}
    text = _gpugraph("inspect", str(META)).stdout
    assert "Op types without a gpugraph kernel: none" in text


def test_inspect_says_whether_the_training_step_needs_a_missing_kernel(tmp_path):
    # Two op types gpugraph has no kernel for: one the train op depends on, one that only a
    # summary reads.
    import numpy as np

    import gpugraph as gg
    from gpugraph.framework.attrs import to_attr_value

    with gg.Graph().as_default() as graph:
        image = gg.constant(np.zeros((1, 4, 4, 3), np.float32), name="image")
        raw = gg.constant(np.asarray(b"jpeg", dtype=object), name="raw")
        decoded = graph.create_op("DecodeJpeg", [raw], name="decode",
                                  attrs={"channels": to_attr_value(3)})
        on_path = graph.create_op("DecodeGif", [raw], name="on_path")
        graph.create_op("ImageSummary", [gg.constant(np.asarray(b"img", dtype=object)), image],
                        name="summary", attrs={"T": to_attr_value(gg.float32)})
        train = gg.group(on_path, name="train")
        gg.add_to_collection("train_op", train)
        del decoded
        meta = tmp_path / "g.meta"
        gg.train.export_meta_graph(str(meta))
    report = json.loads(_gpugraph("inspect", str(meta), "--json").stdout)
    use = report["missing_kernel_use"]
    assert use["DecodeGif"] == "needed by the training step"
    assert use["DecodeJpeg"].startswith("not needed by the training step")
    text = _gpugraph("inspect", str(meta)).stdout
    assert "DecodeGif: needed by the training step" in text


def test_inspect_and_devices_read_saved_models_and_frozen_graphs():
    frozen = ROOT / "tests" / "fixtures" / "frozen" / "cnn.pb"
    saved = ROOT / "tests" / "fixtures" / "saved_models" / "builder_two_tags"
    report = json.loads(_gpugraph("inspect", str(frozen), "--json").stdout)
    assert report["op_counts"]["Conv2D"] == 1 and report["variables"] == []
    report = json.loads(_gpugraph("inspect", str(saved), "--json").stdout)
    assert report["saver_def"] is not None and report["op_counts"]["ResourceApplyAdam"] == 3
    devices = _gpugraph("devices", str(ROOT / "tests" / "fixtures" / "frozen" / "mlp.pbtxt"))
    assert devices.returncode == 0, devices.stderr


def test_run_a_signature_and_a_frozen_graph(tmp_path):
    import numpy as np

    saved = np.load(ROOT / "tests" / "fixtures" / "saved_models" / "builder_two_tags.npz")
    frozen = np.load(ROOT / "tests" / "fixtures" / "frozen" / "mlp.npz")
    np.savez(tmp_path / "in.npz", x=saved["serve_x"], f=frozen["x"])
    result = _gpugraph("run", str(ROOT / "tests" / "fixtures" / "saved_models" /
                                  "builder_two_tags"), "--input", f"x={tmp_path / 'in.npz'}:x",
                       "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), saved["serve_probs"], rtol=1e-5)
    result = _gpugraph("run", str(ROOT / "tests" / "fixtures" / "frozen" / "mlp.pb"), "--input",
                       f"x:0={tmp_path / 'in.npz'}:f", "--output", "y:0", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y_0.npy"), frozen["y"], rtol=1e-5)
    missing = _gpugraph("run", str(ROOT / "tests" / "fixtures" / "saved_models" /
                                   "builder_two_tags"), "--signature", "nope")
    assert missing.returncode == 1 and "serving_default" in missing.stderr
