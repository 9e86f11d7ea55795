"""An engine that crashes is a finding, never a pass (issue 16, items 1 and 3).

Unicorn 2.1.4 aborts its whole process on LOCK BTC/BTS with a register destination. These
tests use that real abort, not a simulation: it runs in the sandbox's child process, the
batch goes on, and the case comes back as ``EngineCrashed`` / a "crashed" verdict.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

from differential.campaign import Plan, Worker, prepare
from differential.check import CRASHED, KNOWN, Checker
from differential.corpus import load, paths
from differential.known import load_known
from differential.replay import replay
from differential.runners.reference_runner import ReferenceRunner
from differential.runners.unicorn_runner import UnicornRunner
from differential.sandbox import SandboxedRunner, SandboxError, sandboxed_unicorn
from differential.suite import keep
from differential.tests.crash_cases import LOCK_BTC, LOCK_BTS, crashing, ordinary
from ground.case import EngineCrashed

ONE_LINER = ("from unicorn import *; u=Uc(UC_ARCH_X86,UC_MODE_{bits}); u.mem_map(0,0x10000); "
             "u.mem_write(0x100,bytes.fromhex('{hex}')); u.emu_start(0x100,0x104,count=1)")


@pytest.mark.parametrize("code", [LOCK_BTC, LOCK_BTS], ids=["btc", "bts"])
@pytest.mark.parametrize("bits", [16, 32])
def test_unicorn_still_aborts_on_lock_bt_register(code, bits):
    """The evidence of the known entry: the issue's one-liner dies with SIGABRT (shell
    status 134). If a Unicorn upgrade fixes it, this fails and the entry can go."""
    run = subprocess.run([sys.executable, "-c", ONE_LINER.format(bits=bits, hex=code.hex())],
                         capture_output=True, timeout=60)
    assert run.returncode == -signal.SIGABRT


def test_sandbox_survives_the_abort_and_isolates_the_case():
    """Before the sandbox, the first crashing case took the calling process down."""
    runner = sandboxed_unicorn()
    good = [ordinary("prot32", seed) for seed in range(1, 6)]
    bad32, bad16 = crashing("prot32", LOCK_BTC), crashing("real16", LOCK_BTS)
    batch = good[:2] + [bad32] + good[2:4] + [bad16] + good[4:]
    answers = runner.run_many(batch)
    assert len(answers) == len(batch)
    crashes = [a for a in answers if isinstance(a, EngineCrashed)]
    assert [c.case for c in crashes] == [bad32, bad16]
    assert all(c.signal == "SIGABRT" and c.alone for c in crashes)
    in_process = UnicornRunner()
    outcomes = [a for a in answers if not isinstance(a, EngineCrashed)]
    assert outcomes == [in_process.run(case) for case in good]  # the others are untouched
    assert runner.restarts >= 2
    with pytest.raises(EngineCrashed, match=r"f0 0f bb c1 in prot32"):
        runner.run(bad32)
    runner.close()


def test_a_crash_is_its_own_verdict_and_is_saved_with_its_signal(tmp_path):
    checker = Checker(sandboxed_unicorn(), ReferenceRunner(), known=[])
    case = crashing("prot32", LOCK_BTC)
    verdict = checker.check(case)
    assert verdict.status == CRASHED
    assert "crashed (SIGABRT)" in verdict.line
    saved = keep(checker, verdict, tmp_path)
    _case, record = load(saved)
    assert record["status"] == CRASHED
    assert record["engine_crash"]["signal"] == "SIGABRT"
    assert record["engine_crash"]["bytes"] == "f0 0f bb c1"
    assert record["engine_crash"]["mode"] == "prot32"
    lines = []
    assert replay([saved], [checker], lines.append) == 1  # replaying it is no pass either
    assert lines[0].startswith("crashed")


@pytest.mark.parametrize("mode", ["real16", "prot32"])
@pytest.mark.parametrize("code", [LOCK_BTC, LOCK_BTS], ids=["btc", "bts"])
def test_known_entry_explains_the_crash(mode, code):
    checker = Checker(sandboxed_unicorn(memory_hooks=True), ReferenceRunner())
    verdict = checker.check(crashing(mode, code))
    assert verdict.status == KNOWN
    assert verdict.known.id == "unicorn-lock-bt-register-abort"


def test_known_entry_does_not_cover_memory_destinations():
    entry = next(e for e in load_known() if e.id == "unicorn-lock-bt-register-abort")
    checker = Checker(sandboxed_unicorn(), ReferenceRunner(), known=[entry])
    verdict = checker.check(crashing("prot32", bytes.fromhex("f00fbb00")))  # [eax]
    assert verdict.status not in (CRASHED, KNOWN)


def test_campaign_batch_records_the_crash_and_goes_on(tmp_path):
    """Seed 5's batch 17 holds f0 3e 0f ab cb ... (prot32: LOCK BTS with a register
    destination; the issue found f2 66 f0 0f bb c1 in batch 1 of draw version 1): the
    worker used to die with -6 and the campaign said 0 divergences."""
    plan = prepare(tmp_path, Plan(seed=5, jobs=1), resume=False)

    def make_checkers(known=None):
        subject = ReferenceRunner()
        return [Checker(sandboxed_unicorn(), subject, known=[]),
                Checker(sandboxed_unicorn(memory_hooks=True), subject, known=[])]

    worker = Worker(tmp_path, plan, 0, make_checkers)
    worker.state["next_batch"] = 17
    found = []
    worker.run_batch(lambda status, line: found.append(status))
    assert worker.state["cases"] == 200
    assert found.count(CRASHED) == 1
    counts = [c.get(CRASHED, 0) for c in worker.state["forms"].values()]
    assert sum(counts) == 1
    records = [load(p)[1] for p in paths(tmp_path / "divergences")]
    crashed = [r for r in records if r["status"] == CRASHED]
    assert len(crashed) == 1
    assert crashed[0]["engine_crash"]["bytes"].startswith("f0 3e 0f ab cb")
    assert crashed[0]["engine_crash"]["mode"] == "prot32"
    assert crashed[0]["batch"] == 17 and crashed[0]["index"] == 181
    worker.flush()  # the state counting the batch done (else written during the next one)
    assert json.loads((tmp_path / "workers" / "0.json").read_text())["next_batch"] == 18


def _planted(cls: str, **options) -> SandboxedRunner:
    return SandboxedRunner("differential.tests.planted_failures", cls, {}, **options)


def test_crash_that_needs_earlier_cases_is_still_a_crash():
    runner = _planted("AbortsOnSecondRun")
    first, second = ordinary("prot32", 1), ordinary("prot32", 2)
    answers = runner.run_many([first, second])
    assert not isinstance(answers[0], EngineCrashed)
    assert isinstance(answers[1], EngineCrashed)
    assert answers[1].case == second and not answers[1].alone
    assert "only after the earlier cases" in str(answers[1])
    runner.close()


def test_engine_that_hangs_is_a_crash_after_the_time_limit():
    runner = _planted("Hangs", case_timeout=1.0)
    with pytest.raises(EngineCrashed, match="no answer within 1 s"):
        runner.run(ordinary("prot32", 1))
    runner.close()


def test_python_error_in_the_runner_is_raised_not_called_a_crash():
    runner = _planted("RaisesOnBoom")
    boom = replace(ordinary("prot32", 1), name="boom")
    with pytest.raises(SandboxError, match="KeyError"):
        runner.run_many([boom, ordinary("prot32", 2)])
    third = ordinary("prot32", 3)
    assert runner.run(third).notes["ran"] == third.name  # not the answer left for case 2
    runner.close()
