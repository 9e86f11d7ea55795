"""A campaign that cannot do its work says so (issue 16, items 2 and 7): a bad --forms or
--out, a damaged file in the folder or a second writer is one line and exit 2; a worker
that dies is named with its reason and the campaign exits 1; workers die with their
parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from differential.campaign import Plan
from differential.campaign_files import CampaignError, CampaignLock
from differential.fuzz import run_campaign
from differential.tests import planted_failures
from differential.tests.broken_runner import make_checkers
from differential.tests.campaign_folder import campaign_with_files
from ground.cache import REPO_ROOT
from x86lab.cli import main

ADD = ["--jobs", "1", "--seed", "3", "--forms", "ADD_*"]


def _fuzz(capsys, *argv: str) -> tuple:
    code = main(["fuzz", *argv])
    captured = capsys.readouterr()
    return code, captured.err


def _one_line_usage_error(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_unknown_forms_pattern_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "c"
    code, err = _fuzz(capsys, "--minutes", "0.05", "--jobs", "1", "--out", str(out),
                      "--forms", "NOSUCH*")
    _one_line_usage_error(code, err, "matches no testable form")
    assert not out.exists()  # nothing was created for a command that cannot run


def test_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("mine\n")
    code, err = _fuzz(capsys, "--minutes", "0.05", "--out", str(target), *ADD)
    _one_line_usage_error(code, err, "is not a directory")
    assert target.read_text() == "mine\n"


def test_replay_of_a_binary_file_is_a_usage_error(tmp_path, capsys):
    blob = tmp_path / "blob.json"
    blob.write_bytes(bytes(range(256)) * 4)
    code, err = _fuzz(capsys, "--replay", str(blob))
    _one_line_usage_error(code, err, str(blob))


@pytest.mark.parametrize("damaged", ["campaign.json", "workers/0.json", "divergences/*"])
def test_resume_with_a_truncated_file_is_a_usage_error(tmp_path, capsys, damaged):
    campaign_with_files(tmp_path)
    path = next(tmp_path.glob(damaged))
    text = path.read_text()
    path.write_text(text[:len(text) // 2])
    code, err = _fuzz(capsys, "--minutes", "0.01", "--out", str(tmp_path), "--resume", *ADD)
    _one_line_usage_error(code, err, str(path))
    assert path.read_text() == text[:len(text) // 2]  # reported, not "repaired" away


def test_second_writer_is_refused_while_a_campaign_holds_the_folder(tmp_path, capsys):
    campaign_with_files(tmp_path)
    with CampaignLock(tmp_path):
        code, err = _fuzz(capsys, "--minutes", "0.01", "--out", str(tmp_path), "--resume",
                          *ADD)
        _one_line_usage_error(code, err, "in use by another campaign")
        with pytest.raises(CampaignError, match="in use"):
            run_campaign(tmp_path, Plan(seed=3, jobs=1, forms="ADD_*"), 0.01, True,
                         make_checkers, say=lambda line: None)
    # released: the same resume now runs
    code, err = _fuzz(capsys, "--minutes", "0.01", "--out", str(tmp_path), "--resume", *ADD)
    assert code in (0, 1) and "Traceback" not in err


@pytest.mark.parametrize("factory, reason", [
    (planted_failures.raises, "RuntimeError: planted failure"),
    (planted_failures.killed, "killed by SIGKILL"),
])
def test_a_worker_that_dies_fails_the_campaign_with_its_reason(tmp_path, capsys,
                                                              monkeypatch, factory, reason):
    monkeypatch.setattr("differential.suite.checkers", factory)
    code, err = _fuzz(capsys, "--minutes", "0.02", "--out", str(tmp_path), *ADD)
    assert code == 1, err
    assert f"worker 0 failed: {reason}" in err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert reason in report["worker_failures"][0]
    if factory is planted_failures.raises:  # the traceback is kept, off the console
        assert "Traceback" in (tmp_path / "workers" / "0.error.txt").read_text()


CAMPAIGN = """
import sys
from pathlib import Path
from differential.campaign import Plan
from differential.fuzz import run_campaign
from differential.tests.planted_failures import sandboxed
run_campaign(Path(sys.argv[1]), Plan(seed=11, jobs=1, forms="ADD_*"), 2, False,
             sandboxed, say=lambda line: None)
"""


def _children(pid: int) -> List[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _descendants(pid: int) -> List[int]:
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_workers_and_their_engines_die_with_the_campaign(tmp_path):
    """After kill -9 of the campaign process, no orphan goes on writing workers/0.json."""
    out = tmp_path / "c"
    parent = subprocess.Popen([sys.executable, "-c", CAMPAIGN, str(out)], cwd=REPO_ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "workers" / "0.json"
    try:
        deadline = time.time() + 60
        while not state.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert state.exists(), "the worker never finished a batch"
        family = _descendants(parent.pid)
        assert len([p for p in family if _running(p)]) >= 2  # worker + its Unicorn child
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.time() + 10
    while any(_running(p) for p in family) and time.time() < deadline:
        time.sleep(0.1)
    survivors = [p for p in family if _running(p)]
    for pid in survivors:  # do not leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors
    before = state.stat().st_mtime_ns
    time.sleep(1.0)
    assert state.stat().st_mtime_ns == before
