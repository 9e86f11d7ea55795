"""Campaigns keep what they find: a SIGKILL loses no divergence, --resume continues,
the report counts everything. A broken runner plants the divergences."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import List, Tuple

import pytest

from differential import campaign
from differential.campaign import DRAW_VERSION, CampaignError, Plan, Worker, draw_case, prepare
from differential.corpus import load, paths
from differential.fuzz import run_campaign
from differential.tests.broken_runner import make_checkers
from ground.cache import REPO_ROOT
from x86lab.cli import main

CAMPAIGN = """
import sys
from pathlib import Path
from differential.campaign import Plan
from differential.fuzz import run_campaign
from differential.tests.broken_runner import make_checkers
run_campaign(Path(sys.argv[1]), Plan(seed=11, jobs=1, forms="ADD_*"), 5, False,
             make_checkers, say=lambda line: None)
"""


def _wait_for(predicate, seconds: float) -> bool:
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_sigkill_mid_campaign_loses_no_divergence(tmp_path):
    out = tmp_path / "campaign"
    proc = subprocess.Popen([sys.executable, "-c", CAMPAIGN, str(out)], cwd=REPO_ROOT,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: len(paths(out / "divergences")) >= 20, 120), \
            proc.stderr.read().decode() if proc.poll() is not None else "no divergences"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    found = paths(out / "divergences")
    assert len(found) >= 20
    for path in found:  # every file written before the kill is whole and replayable
        case, record = load(path)
        assert record["reproducer"].count("eax:") == 1
        assert case.form.startswith("ADD_")
    # --resume picks the campaign up: the old divergences are still there, more are added
    report = run_campaign(out, Plan(seed=11, jobs=1, forms="ADD_*"), 0.05, True,
                          make_checkers, say=lambda line: None)
    assert report["divergences"] >= len(found)
    assert report["cases"] > 0
    assert json.loads((out / "report.json").read_text())["divergences"] == report["divergences"]
    assert "ADD_" in (out / "report.md").read_text()


def test_a_batch_makes_its_divergences_durable_before_its_state(tmp_path, monkeypatch):
    """Each divergence file, and the folder holding it, is synced before the worker's
    state counts the batch done. That state is written when the next batch is judged
    (here, with no sandbox child, before it) or by ``flush``: its file synced before
    its rename, its folder not (a crash then at worst has batches judged again:
    issue 18)."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source, target) -> None:
        events.append(("replace", str(target)))
        real_replace(source, target)

    plan = prepare(tmp_path, Plan(seed=11, jobs=1, forms="ADD_*"), resume=False)
    worker = Worker(tmp_path, plan, 0, make_checkers)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    state, found = str(tmp_path / "workers" / "0.json"), str(tmp_path / "divergences")

    def written(path: str) -> List[Tuple[str, str]]:  # synced under a temporary name
        temporary = f".{os.path.basename(path)}.{os.getpid()}.tmp"
        return [("fsync", os.path.join(os.path.dirname(path), temporary)), ("replace", path)]

    def saved(since: int) -> List[Tuple[str, str]]:
        paths = [path for event, path in events[since:] if event == "replace" and
                 path.startswith(found + os.sep)]
        assert len(paths) > 10
        return [event for path in paths for event in written(path) + [("fsync", found)]]

    worker.run_batch()
    assert events == saved(0)
    first = len(events)
    worker.run_batch()
    assert events[first:] == written(state) + saved(first + 2)
    assert json.loads((tmp_path / "workers" / "0.json").read_text())["next_batch"] == 1
    second = len(events)
    worker.flush()
    worker.flush()  # nothing new to write
    assert events[second:] == written(state)
    assert json.loads((tmp_path / "workers" / "0.json").read_text())["next_batch"] == 2


def test_the_state_is_written_at_most_once_an_interval_and_at_the_end(tmp_path):
    plan = prepare(tmp_path, Plan(seed=11, jobs=1, forms="ADD_*"), resume=False)
    worker = Worker(tmp_path, plan, 0, make_checkers, state_every=3600.0)
    state = tmp_path / "workers" / "0.json"

    def written() -> int:
        return json.loads(state.read_text())["next_batch"]

    worker.run_batch()
    worker.run_batch()  # the first write is due at once: batch 0 counted
    assert written() == 1
    worker.run_batch()
    worker.run_batch()  # within the hour: not written again
    assert written() == 1
    worker.flush()  # the end of a worker's run
    assert written() == 4 and json.loads(state.read_text()) == worker.state


def test_a_batch_whose_divergence_cannot_be_saved_counts_nothing(tmp_path, monkeypatch):
    """What ``flush`` writes after a failure holds whole batches only."""
    plan = prepare(tmp_path, Plan(seed=11, jobs=1, forms="ADD_*"), resume=False)
    worker = Worker(tmp_path, plan, 0, make_checkers)
    worker.run_batch()
    before = json.loads(json.dumps(worker.state))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(campaign, "save", full_disk)
    with pytest.raises(OSError):
        worker.run_batch()  # the broken runner diverges on every batch
    assert worker.state == before
    worker.flush()
    assert json.loads((tmp_path / "workers" / "0.json").read_text()) == before


def test_resume_refuses_a_different_seed(tmp_path):
    prepare(tmp_path, Plan(seed=1, jobs=2), resume=False)
    with pytest.raises(CampaignError, match="seed=1"):
        prepare(tmp_path, Plan(seed=2, jobs=2), resume=True)
    with pytest.raises(CampaignError, match="--resume"):
        prepare(tmp_path, Plan(seed=1, jobs=2), resume=False)


def test_case_seeds_depend_only_on_campaign_batch_and_index():
    plan, forms = Plan(seed=1, jobs=1, forms="ADD_*"), campaign.testable_forms("ADD_*")
    assert draw_case(plan, forms, 2, 3)[1] == draw_case(plan, forms, 2, 3)[1]
    assert len({draw_case(plan, forms, b, i)[1] for b in range(10) for i in range(10)}) == 100
    assert draw_case(Plan(seed=2, jobs=1, forms="ADD_*"), forms, 2, 3)[1] != \
        draw_case(plan, forms, 2, 3)[1]


def test_a_campaign_of_another_draw_version_is_refused(tmp_path):
    """A folder an older x86lab started (no draw_version: MT19937 draws) is not resumed,
    and no case is drawn for its plan: the same batch numbers would be other cases."""
    prepare(tmp_path, Plan(seed=1, jobs=1), resume=False)
    stored = tmp_path / "campaign.json"
    plan = json.loads(stored.read_text())
    assert plan["draw_version"] == DRAW_VERSION
    del plan["draw_version"]
    stored.write_text(json.dumps(plan))
    with pytest.raises(CampaignError, match="drawn by draw version 1; this x86lab draws"):
        prepare(tmp_path, Plan(seed=1, jobs=1), resume=True)
    with pytest.raises(CampaignError, match="draw version 1"):
        draw_case(Plan(seed=1, jobs=1, draw_version=1), campaign.testable_forms("*"), 0, 0)


def test_fuzz_without_out_is_a_usage_error(capsys):
    assert main(["fuzz", "--minutes", "1"]) == 2
    assert "--out" in capsys.readouterr().err


def test_fuzz_replay_of_missing_file_is_a_usage_error(tmp_path, capsys):
    assert main(["fuzz", "--replay", str(tmp_path / "nope.json")]) == 2
    assert "no such divergence file" in capsys.readouterr().err


def test_replay_module_reports_a_planted_divergence(tmp_path):
    from differential.check import Checker
    from differential.draw import RandomDraw
    from differential.generator import form_case
    from differential.replay import replay
    from differential.suite import keep
    from reference import BY_NAME

    checker = make_checkers()[0]
    verdict = checker.check(form_case(BY_NAME["ADD_Ev_Gv"], "prot32", RandomDraw(4)))
    saved = keep(checker, verdict, tmp_path)
    lines = []
    assert replay([saved], [checker], lines.append) == 1
    assert "eax: unicorn=" in lines[0]
    honest = Checker(checker.peer, checker.subject.inner, known=[])
    assert replay([saved], [honest], lines.append) == 0


def test_replay_counts_a_triaged_divergence_as_accepted(tmp_path):
    """After triage adds a known entry, replaying the saved case says "known" and the
    replay no longer fails; an entry for another form does not excuse it."""
    from differential.check import Checker
    from differential.draw import RandomDraw
    from differential.generator import form_case
    from differential.known import KnownDifference
    from differential.replay import replay
    from differential.suite import keep
    from reference import BY_NAME

    checker = make_checkers()[0]
    verdict = checker.check(form_case(BY_NAME["ADD_Ev_Gv"], "prot32", RandomDraw(4)))
    saved = keep(checker, verdict, tmp_path)

    def triaged(form: str) -> Checker:
        entry = KnownDifference("vectors", (form,), "test", id="planted", fields=("*",),
                                reason="test")
        return Checker(checker.peer, checker.subject, known=[entry])

    lines = []
    assert replay([saved], [triaged("ADD_Ev_Gv")], lines.append) == 0
    assert lines[-1].startswith("known") and "[known: planted]" in lines[-1]
    assert replay([saved], [triaged("SUB_Ev_Gv")], lines.append) == 1


def test_fuzz_resume_with_other_options_is_a_usage_error(tmp_path, capsys):
    prepare(tmp_path, Plan(seed=1, jobs=1), resume=False)
    assert main(["fuzz", "--out", str(tmp_path), "--seed", "2", "--jobs", "1",
                 "--resume"]) == 2
    assert "resume with the same options" in capsys.readouterr().err
