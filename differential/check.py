"""Run one case on two runners and judge: agree, diverge, known divergence, or not
implemented in the reference yet. Everything that reports results goes through here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from differential.case import Case, Outcome, Runner
from differential.compare import Difference, compare, reproducer
from differential.corpus import case_to_json
from differential.known import KnownDivergence, find_known, load_known

AGREE, DIVERGE, KNOWN, UNIMPLEMENTED = "agree", "diverge", "known", "unimplemented"
UNLISTED = "unlisted"  # random bytes outside FORMS that the peer executes: out of scope
UNTESTABLE = "untestable"  # a FORMS row that says why it cannot be compared (CPUID, I/O)
UD = 6


@dataclass
class Verdict:
    case: Case
    status: str
    differences: List[Difference] = field(default_factory=list)
    known: Optional[KnownDivergence] = None
    line: str = ""
    outcomes: Dict[str, Outcome] = field(default_factory=dict)


class Checker:
    """``Checker(peer, reference).check(case) -> Verdict``. The peer (Unicorn) is the left
    side of every printed difference, the runner under test the right."""

    def __init__(self, peer: Runner, subject: Runner,
                 known: Optional[Sequence[KnownDivergence]] = None) -> None:
        self.peer = peer
        self.subject = subject
        self.known = list(load_known() if known is None else known)

    def check(self, case: Case, ours: Optional[Outcome] = None) -> Verdict:
        """Judge ``case``; pass ``ours`` when the subject's outcome is already known (the
        same case checked against a second peer need not rerun the reference)."""
        reason = _untestable(case.form)
        if reason:
            return Verdict(case, UNTESTABLE, line=reason)
        theirs = self.peer.run(case)
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

    def record(self, verdict: Verdict, **extra: Any) -> Dict[str, Any]:
        """The JSON record kept in a corpus for one divergence."""
        return {"case": case_to_json(verdict.case), "status": verdict.status,
                "peer": self.peer.name, "subject": self.subject.name,
                "reproducer": verdict.line,
                "known": verdict.known.id if verdict.known else None,
                "differences": [[d.field, str(d.left), str(d.right)]
                                for d in verdict.differences], **extra}


def _only_subject_rejects(theirs: Outcome, ours: Outcome) -> bool:
    """The reference says #UD to bytes that encode no FORMS row while the peer runs them
    (MMX/SSE and later extensions): a scope difference, counted apart, not a divergence."""
    mine = ours.exception
    return mine is not None and mine.vector == UD and (
        theirs.exception is None or theirs.exception.vector != UD)


def _untestable(form_name: str) -> str:
    """The table's reason why ``form_name`` cannot be compared, or ""."""
    if not form_name:
        return ""
    from reference import BY_NAME

    form = BY_NAME.get(form_name)
    return form.untestable if form is not None else ""
