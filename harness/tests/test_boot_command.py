"""``x86lab boot --run`` end to end on QEMU (boots: marked boot and slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.fixtures import selected_combinations

REPO = Path(__file__).resolve().parents[2]
KERNEL = next((k for e, k in selected_combinations() if e == "qemu"), "tiny")
pytestmark = [pytest.mark.boot, pytest.mark.slow]


def x86lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "x86lab.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900)


def test_run_prints_output_and_exits_with_the_command_status() -> None:
    done = x86lab("boot", "--engine", "qemu", "--kernel", KERNEL,
                  "--run", "uname -m; exit 3")
    assert (done.stdout, done.returncode) == ("i686\n", 3), done.stderr


def test_json_has_stage_times_in_order() -> None:
    done = x86lab("boot", "--engine", "qemu", "--kernel", KERNEL, "--json", "--run", "true")
    summary = json.loads(done.stdout)
    marks = summary["marks"]
    assert 0 < marks["kernel"] < marks["init"] <= marks["prompt"]
    assert (summary["status"], summary["engine"]) == (0, "qemu")
