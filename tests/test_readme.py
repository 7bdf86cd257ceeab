"""The README opens with the two commands, and the generated op lists (README, docs/ops.md)
are current."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_supported_op_list_matches_the_registry():
    result = subprocess.run([sys.executable, "scripts/gen_op_list.py", "--check"], cwd=ROOT)
    assert result.returncode == 0, "op lists are stale: run scripts/gen_op_list.py"


def test_readme_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in lines[:12] if line.startswith("python3 -m venv .venv")]
    assert len(commands) == 2
    assert "gpugraph resume" in commands[0] and "pytest" in commands[1]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith(commands[1])
