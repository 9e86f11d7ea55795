"""Run one case on two runners and judge: agree, diverge, known divergence, not
implemented in the reference yet, or the peer engine crashed on it. Everything that
reports results goes through here."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from differential.corpus import case_to_json
from differential.known import KnownDifference, find_known, load_known
from differential.operands import disassembly
from ground.case import Case, EngineCrashed, Outcome, Runner
from ground.compare import Difference, compare, summary

AGREE, DIVERGE, KNOWN, UNIMPLEMENTED = "agree", "diverge", "known", "unimplemented"
UNLISTED = "unlisted"  # random bytes outside FORMS that the peer executes: out of scope
UNTESTABLE = "untestable"  # a FORMS row that says why it cannot be compared (CPUID, I/O)
CRASHED = "crashed"  # the peer engine died on the case: a finding of its own kind
ENGINE = "engine"  # the field of the one Difference a crash verdict carries
UD = 6


@dataclass
class Verdict:
    case: Case
    status: str
    differences: List[Difference] = field(default_factory=list)
    known: Optional[KnownDifference] = None
    line: str = ""
    outcomes: Dict[str, Outcome] = field(default_factory=dict)
    crash: Optional[EngineCrashed] = None  # set when the peer died on the case


class Checker:
    """``Checker(peer, reference).check(case) -> Verdict``. The peer (Unicorn) is the left
    side of every printed difference, the runner under test the right."""

    def __init__(self, peer: Runner, subject: Runner,
                 known: Optional[Sequence[KnownDifference]] = None) -> None:
        self.peer = peer
        self.subject = subject
        self.known = list(load_known() if known is None else known)

    def check(self, case: Case, ours: Optional[Outcome] = None,
              theirs: Optional[Union[Outcome, EngineCrashed]] = None) -> Verdict:
        """Judge ``case``; pass ``ours`` when the subject's outcome is already known (the
        same case checked against a second peer need not rerun the reference), and
        ``theirs`` when the peer ran it in a batch (``check_batch``)."""
        reason = untestable(case.form)
        if reason:
            return Verdict(case, UNTESTABLE, line=reason)
        if theirs is None:
            try:
                theirs = self.peer.run(case)
            except EngineCrashed as crash:
                theirs = crash
        if isinstance(theirs, EngineCrashed):
            return self._crashed(case, theirs)
        ours = self.subject.run(case) if ours is None else ours
        outcomes = {self.peer.name: theirs, self.subject.name: ours}
        if "unimplemented" in ours.notes:
            return Verdict(case, UNIMPLEMENTED, line=ours.notes["unimplemented"],
                           outcomes=outcomes)
        differences = compare(case, theirs, ours)
        if not differences:
            return Verdict(case, AGREE, outcomes=outcomes)
        line = reproducer(case, differences, self.peer.name, self.subject.name)
        if not case.form and _only_subject_rejects(theirs, ours):
            return Verdict(case, UNLISTED, differences, line=line, outcomes=outcomes)
        entry = find_known(self.known, case, differences, theirs.notes, self.peer.name)
        status = KNOWN if entry is not None else DIVERGE
        if entry is not None:
            line = f"[known: {entry.id}] {line}"
        return Verdict(case, status, differences, entry, line, outcomes)

    def check_batch(self, cases: Sequence[Case]) -> List[Verdict]:
        """Judge several cases; a peer with ``run_many`` (a sandboxed engine) runs them in
        one round trip to its child process."""
        run_many = getattr(self.peer, "run_many", None)
        if run_many is None:
            return [self.check(case) for case in cases]
        testable = [case for case in cases if not untestable(case.form)]
        answers = dict(zip((id(case) for case in testable), run_many(testable)))
        return [self.check(case, theirs=answers.get(id(case))) for case in cases]

    def _crashed(self, case: Case, crash: EngineCrashed) -> Verdict:
        """A crash is a difference on the field ``engine`` (so a known-divergences entry
        with ``fields = ["engine"]`` can explain it), never an agreement."""
        differences = [Difference(ENGINE, f"crashed ({crash.signal})", "ran")]
        line = f"{reproducer(case, differences, self.peer.name, self.subject.name)}; {crash}"
        entry = find_known(self.known, case, differences, {}, self.peer.name)
        if entry is not None:
            return Verdict(case, KNOWN, differences, entry, f"[known: {entry.id}] {line}",
                           crash=crash)
        return Verdict(case, CRASHED, differences, line=line, crash=crash)

    def record(self, verdict: Verdict, **extra: Any) -> Dict[str, Any]:
        """The JSON record kept in a corpus for one divergence."""
        return {"case": case_to_json(verdict.case), "status": verdict.status,
                "peer": self.peer.name, "subject": self.subject.name,
                "reproducer": verdict.line,
                "known": verdict.known.id if verdict.known else None,
                "differences": [[d.field, str(d.left), str(d.right)]
                                for d in verdict.differences],
                **_crash_record(verdict.crash), **extra}


def _crash_record(crash: Optional[EngineCrashed]) -> Dict[str, Any]:
    """What a saved crash says besides its case: the signal, whether it crashes alone."""
    if crash is None:
        return {}
    return {"engine_crash": {"engine": crash.engine, "signal": crash.signal,
                             "alone": crash.alone, "stderr": crash.death.detail,
                             "bytes": crash.case.code.hex(" "), "mode": crash.case.mode}}


def _only_subject_rejects(theirs: Outcome, ours: Outcome) -> bool:
    """The reference says #UD to bytes that encode no FORMS row while the peer runs them
    (MMX/SSE and later extensions): a scope difference, counted apart, not a divergence."""
    mine = ours.exception
    return mine is not None and mine.vector == UD and (
        theirs.exception is None or theirs.exception.vector != UD)


@functools.cache
def untestable(form_name: str) -> str:
    """The table's reason why the version-1 tester leaves ``form_name`` out (untestable,
    or version-2 only: system or x87 state), or "" (kept per form: the table is fixed
    while a process runs, and the import alone cost ~1 µs a case)."""
    if not form_name:
        return ""
    from reference import BY_NAME

    form = BY_NAME.get(form_name)
    return form.not_version1 if form is not None else ""


def reproducer(case: Case, differences: List[Difference], left: str, right: str) -> str:
    """One line that says what to rerun and what differed."""
    form = case.form or "?"
    return (f"{case.mode} {case.code.hex()} ({disassembly(case.mode, case.code)}) "
            f"form={form}: {summary(differences, left, right)}")
