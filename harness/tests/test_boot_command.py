"""``x86lab boot --run`` end to end on QEMU (boots: marked boot and slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def test_command_and_output_bytes_are_exact() -> None:
    """A TAB reaches the guest's shell unedited (BusyBox's line editor would complete
    it), and a byte that is not UTF-8 comes back as itself."""
    done = subprocess.run([sys.executable, "-m", "x86lab.cli", "boot", "--engine", "qemu",
                           "--kernel", KERNEL, "--run", "echo \"[\t]\"; echo /proc/versio\t;"
                           " printf '\\377'"], cwd=REPO, capture_output=True, timeout=900)
    assert (done.stdout, done.returncode) == (b"[\t]\n/proc/versio\n\xff", 0), done.stderr


@pytest.mark.parametrize("cmd", ['echo "x', "echo )"], ids=["open-quote", "stray-paren"])
def test_a_syntax_error_ends_at_once_with_the_shells_status(cmd: str) -> None:
    done = x86lab("boot", "--engine", "qemu", "--kernel", KERNEL, "--run", cmd,
                  "--timeout", "120")
    assert done.returncode == 2 and "syntax error" in done.stdout, done.stderr
    log = done.stderr.split("console log: ")[-1].strip()
    assert b"syntax error" in Path(log).read_bytes()


def test_ctrl_c_stops_the_guest_and_exits_130() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "x86lab.cli", "boot", "--engine", "qemu", "--kernel", KERNEL,
         "--run", "echo started; sleep 600"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = _wait_for_log_line(proc)
    deadline = time.monotonic() + 120
    while b"started" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted; the guest was stopped" in err and str(log).encode() in err


def _wait_for_log_line(proc: subprocess.Popen) -> Path:
    """The console log this boot writes, as its first line on stderr names it."""
    line = proc.stderr.readline().decode()
    assert "console log: " in line, line
    return Path(line.split("console log: ")[1].rstrip().removesuffix(")..."))
