"""Engine processes never outlive the harness: not on stop(), not when it is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.engines.local import LocalShellEngine

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stop_ends_the_engine_process() -> None:
    session = LocalShellEngine().start(None)
    pid = session.proc.pid
    assert _alive(pid)
    session.stop()
    session.stop()  # twice is harmless
    assert _gone_within(pid, 5)


def test_engine_dies_when_the_harness_is_killed() -> None:
    # Piped like qemu and node, and deaf to its pipes closing: only PDEATHSIG can end it.
    code = ("from harness.engines.base import ProcessSession\n"
            "s = ProcessSession('sleeper', ['sleep', '60'])\n"
            "print(s.proc.pid, flush=True)\n"
            "import time; time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    line = parent.stdout.readline()
    if not line:  # it died before printing its child's pid (seen once, in a clean-clone
        parent.wait()  # run under load): say why
        pytest.fail(f"the harness process printed nothing, exit {parent.returncode}: "
                    f"{parent.stderr.read().decode(errors='replace')}")
    child = int(line)
    assert _alive(child)
    parent.kill()  # SIGKILL: no atexit, no finally; only the kernel can clean up
    parent.wait()
    parent.stdout.close()
    parent.stderr.close()
    assert _gone_within(child, 5)
