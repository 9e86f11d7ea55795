"""Sandbox children made by ``fork`` (issue 18): a child forked from a process that has
already imported everything starts in milliseconds instead of paying a fresh interpreter's
imports (~0.4-0.5 s CPU per RQ batch), and must serve exactly as a fresh one does: the
same answers, a crash still isolated to its case, nothing of the parent's touched. When
the checkout's sources were edited after this process imported them, or another thread
runs, children are fresh interpreters again (``sandbox.can_fork``)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from differential import sandbox
from differential.sandbox import SandboxedRunner, sandboxed_unicorn
from differential.tests.crash_cases import LOCK_BTC, crashing, ordinary
from differential.tests.handmade import make_case
from ground.case import EngineCrashed


def _add_eax_1(eax: int):
    """ADD EAX, 1 (05 01 00 00 00) with EAX = ``eax``."""
    return make_case(bytes.fromhex("0501000000"), eax=eax)


@pytest.fixture
def fork_allowed(monkeypatch):
    """Nothing of ours edited since this process started (as in a worker) and FORK on."""
    monkeypatch.setattr(sandbox, "_LOADED_AT", time.time() + 3600)
    monkeypatch.setattr(sandbox, "FORK", True)


def test_a_forked_child_answers_as_a_fresh_one(fork_allowed, monkeypatch):
    """The same cases on a forked and on a fresh child: identical outcomes, and the
    arithmetic is right (0xFFFFFFFF + 1 wraps to 0 with CF, ZF set; 41 + 1 = 42)."""
    cases = [_add_eax_1(0xFFFFFFFF), _add_eax_1(41), ordinary("real16", 3)]
    forked = sandboxed_unicorn()
    assert forked.name == "unicorn"
    assert forked._child is not None and forked._child.forked
    assert forked.pid != os.getpid() and os.getppid() != forked.pid
    ours = forked.run_many(cases)
    monkeypatch.setattr(sandbox, "FORK", False)
    fresh = sandboxed_unicorn()
    assert fresh.name == "unicorn" and fresh._child is not None and not fresh._child.forked
    theirs = fresh.run_many(cases)
    assert ours == theirs
    assert ours[0].regs["eax"] == 0 and ours[0].regs["eflags"] & 0x41 == 0x41  # CF, ZF
    assert ours[1].regs["eax"] == 42 and ours[1].regs["eflags"] & 0x41 == 0
    forked.close()
    fresh.close()


def test_a_forked_child_that_aborts_costs_one_case(fork_allowed):
    """Unicorn aborts on LOCK BTC with a register destination: the forked child dies of
    SIGABRT on that case, alone too, and the cases after it are answered by a new child
    (forked again). The parent process is untouched."""
    runner = sandboxed_unicorn()
    first = runner.pid
    answers = runner.run_many([_add_eax_1(1), crashing("prot32", LOCK_BTC), _add_eax_1(2)])
    assert answers[0].regs["eax"] == 2
    assert isinstance(answers[1], EngineCrashed)
    assert answers[1].death.signal == "SIGABRT" and answers[1].alone
    assert answers[2].regs["eax"] == 3
    assert runner.restarts == 2  # the batch's child and the one that ran the case alone
    assert runner.pid != first and runner._child is not None and runner._child.forked
    runner.close()


def test_closing_ends_the_forked_child_and_reaps_it(fork_allowed):
    """``close`` ends the child at EOF on its stdin (it leaves by os._exit) and reaps
    it: no zombie is left behind."""
    runner = sandboxed_unicorn()
    pid = runner.pid
    runner.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no such child of ours
    assert not Path(f"/proc/{pid}").exists() or \
        Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_child_that_cannot_start_says_why(fork_allowed):
    """A runner whose construction raises in a forked child is reported as a fresh
    child's was: a SandboxError naming the exception (cluster.py looks for the name)."""
    broken = SandboxedRunner("differential.tests.planted_failures", "NoSuchRunner", {})
    with pytest.raises(sandbox.SandboxError, match="AttributeError"):
        broken.run(_add_eax_1(0))


def test_edited_sources_make_children_fresh_interpreters(monkeypatch):
    """A source file of ours modified after this process started (here: the time it
    started is set to just before judging.py's modification time) means a fork would run
    old code where a fresh interpreter runs the new: children are spawned."""
    import differential.judging as judging

    monkeypatch.setattr(sandbox, "FORK", True)
    modified = os.stat(judging.__file__).st_mtime
    monkeypatch.setattr(sandbox, "_LOADED_AT", modified - 1)
    assert str(Path(judging.__file__).resolve()) in \
        [str(Path(p).resolve()) for p in sandbox.edited_sources()]
    assert not sandbox.can_fork()
    runner = sandboxed_unicorn()
    assert runner.pid != os.getpid()  # started
    assert runner._child is not None and not runner._child.forked
    assert runner.run(_add_eax_1(6)).regs["eax"] == 7
    runner.close()
    monkeypatch.setattr(sandbox, "_LOADED_AT", modified + 1)
    assert judging.__file__ not in sandbox.edited_sources()


def test_another_thread_means_a_fresh_interpreter(fork_allowed):
    """A fork copies only the calling thread (a lock another one holds stays held):
    with a second thread alive, children are spawned."""
    assert sandbox.can_fork()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not sandbox.can_fork()
    finally:
        stop.set()
        other.join()
    assert sandbox.can_fork()


def test_the_interpreter_start_time_is_before_our_imports():
    """``_LOADED_AT`` (when this interpreter started) is not after this test module was
    imported, nor more than a day before now (the process started with pytest)."""
    assert sandbox._LOADED_AT <= time.time()
    assert time.time() - sandbox._LOADED_AT < 86400


def _planted(cls: str, **options) -> SandboxedRunner:
    return SandboxedRunner("differential.tests.planted_failures", cls, {}, **options)


def test_answers_that_overflow_the_shared_memory_come_on_the_pipe(fork_allowed,
                                                                   monkeypatch):
    """A forked child answers into memory it shares with its parent; past its capacity
    (here ~7 answers' worth) the rest come on the pipe, all in order, and a runner
    error after them is still raised at its case."""
    monkeypatch.setattr(sandbox.SharedAnswers, "CAPACITY", 2_000)  # ~7 answers
    runner = _planted("RaisesOnBoom")
    cases = [ordinary("prot32", n) for n in range(1, 30)]
    assert [a.notes["ran"] for a in runner.run_many(cases)] == [c.name for c in cases]
    boom = make_case(b"\x90")
    boom = type(boom)(**{**boom.__dict__, "name": "boom"})
    with pytest.raises(sandbox.SandboxError, match="KeyError.*on boom"):
        runner.run_many(cases[:3] + [boom] + cases[3:5])
    runner.close()


def test_answers_made_before_an_abort_are_kept(fork_allowed):
    """The answers in shared memory outlive the child: of four cases to a runner that
    aborts on its second case, the first is answered and each later one is a crash that
    needed an earlier case (the same as a fresh interpreter answering on the pipe)."""
    runner = _planted("AbortsOnSecondRun")
    cases = [ordinary("prot32", n) for n in range(1, 5)]
    answers = runner.run_many(cases)
    assert not isinstance(answers[0], EngineCrashed)
    assert [a.case for a in answers[1:]] == cases[1:]
    assert [a.alone for a in answers[1:]] == [False, False, False]
    runner.close()


def test_a_child_answering_slowly_into_shared_memory_is_not_hung(fork_allowed):
    """Its answers reach the pipe only at the request's end: the parent sees them made
    and waits on, past a time limit shorter than the whole request (5 x 0.3 s)."""
    runner = _planted("Slow", case_timeout=1.0)
    cases = [ordinary("prot32", n) for n in range(1, 6)]
    assert [a.notes["ran"] for a in runner.run_many(cases)] == [c.name for c in cases]
    runner.close()


def test_shared_answers_keep_a_label_as_text_and_pickle_the_rest():
    """A ``str`` answer (an agreeing campaign case's label) is stored as its UTF-8 bytes,
    not pickled (cheaper to write and to read back: issue 18), any str, a lone surrogate
    too; anything else is pickled. Every answer comes back equal and in order, also when
    taken in two goes, and one that does not fit is refused whole."""
    shared = sandbox.SharedAnswers(capacity=200)
    first = ["ADD_Ev_Gv", {"regs": (1, 2)}, "(not in FORMS) andnps é", "\udc80"]
    assert all(shared.put(answer) for answer in first)
    head, frame = shared._HEAD.size, shared._FRAME.size
    assert shared._memory[head:head + frame + 9] == \
        shared._FRAME.pack(9, shared._TEXT) + b"ADD_Ev_Gv"
    assert shared.take() == first
    assert shared.put(("ok", None)) and shared.take() == [("ok", None)]
    assert not shared.put("x" * 200) and shared.count == 5
    shared.clear()
    assert shared.count == 0 and shared.take() == []


def test_meanwhile_runs_once_while_the_child_works(fork_allowed):
    """``call_many(..., meanwhile)`` calls it after the request is sent: the child's
    answers start to arrive while it runs (a campaign worker writes its state file then).
    It runs once, even when the child dies and the rest go to a new one."""
    runner = _planted("RaisesOnBoom")
    cases = [ordinary("prot32", n) for n in range(1, 6)]
    seen = []

    def meanwhile() -> None:
        child = runner._child
        assert child is not None and child.shared is not None
        deadline = time.monotonic() + 30  # a generous limit, not a measurement
        while child.shared.count == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        seen.append(child.shared.count)

    answers = runner.call_many("", cases, meanwhile)
    assert [a.notes["ran"] for a in answers] == [c.name for c in cases]
    assert len(seen) == 1 and seen[0] > 0
    runner.close()
    aborting = _planted("AbortsOnSecondRun")
    calls = []
    answers = aborting.call_many("", cases[:4], lambda: calls.append(1))
    assert calls == [1] and [type(a).__name__ for a in answers] == \
        ["Outcome", "SandboxCrash", "SandboxCrash", "SandboxCrash"]
    assert aborting.call_many("", [], lambda: calls.append(2)) == [] and calls == [1, 2]
    aborting.close()


def test_meanwhile_that_raises_costs_the_child_not_the_next_answers(monkeypatch):
    """The child still answering a request whose ``meanwhile`` raised is ended: the next
    request's answers are its own cases', not the rest of the abandoned one (a fresh
    interpreter, whose answers all come on the pipe in order)."""
    monkeypatch.setattr(sandbox, "FORK", False)
    runner = _planted("RaisesOnBoom")
    cases = [ordinary("prot32", n) for n in range(1, 30)]

    def fails() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        runner.call_many("", cases, fails)
    later = [ordinary("real16", n) for n in range(1, 4)]
    assert [a.notes["ran"] for a in runner.run_many(later)] == [c.name for c in later]
    runner.close()
