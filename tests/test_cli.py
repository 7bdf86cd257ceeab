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

