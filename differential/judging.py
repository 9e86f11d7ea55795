"""Judge a campaign's cases by their numbers, where the cases are made: in the sandbox child.

A campaign batch used to be drawn in the worker, pickled to the Unicorn child (about 14 KB
of pages per case), answered with the peer's outcome (pages again), then run on the
reference and compared in the worker. Measured (issue 18, load 1.3): 232 µs per case in
the worker and 215 µs in the children, of which generation 100, Unicorn 173 and the
reference 45; the rest was that traffic and its bookkeeping. A ``ChildJudge`` instead
sends ``(plan, batch, index)`` and the child draws the case (``draw_case``, the same
case whoever draws it), runs Unicorn and the reference, compares and answers one small
``Judged`` per case; only a divergence carries its record (with the case) back.

The child is the same sacrificial process as before (``sandbox.py``): when Unicorn aborts
on a case, the answers so far are kept, the case it died on is known exactly and is
drawn again in the worker, to become an engine-crash verdict as before.

``judge_keys`` is what campaigns and cluster jobs call. Checkers without a child of their
own (tests plant broken runners) are judged in the worker, through the same ``Judged``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from differential.check import AGREE, CRASHED, DIVERGE, KNOWN, Checker, Verdict, untestable
from differential.known import PinnedList
from differential.sandbox import SandboxCrash, SandboxedRunner, sandboxed_unicorn
from ground.case import EngineCrashed


class Judged(NamedTuple):
    """What a worker keeps of one judged case: counts, the report line, and for a
    divergence or a crash the record to store (without the campaign's extra keys)."""

    index: int
    seed: int
    status: str
    label: str  # the form it counts under (campaign.count_label)
    mode: str
    known: Optional[str]  # known-divergence id when status is KNOWN
    line: str
    fields: Tuple[str, ...]  # the differing fields (the cluster's signature)
    record: Optional[Dict[str, Any]]  # Checker.record for DIVERGE and CRASHED


Answer = Union[str, Judged]
"""What a child answers for one case: the label of an agreeing case (all the worker does
with one is count it under that form: a ``Judged`` pickled, unpickled and counted cost
~5 µs of a campaign case between child and worker, issue 18), else a ``Judged``."""


class Tally(NamedTuple):
    """Judged cases as a worker records them: agreeing ones counted per form (label),
    every other one in index order."""

    agreed: Dict[str, int]
    others: List[Judged]


def answer(checker: Checker, verdict: Verdict, index: int, seed: int) -> Answer:
    """An agreeing verdict's label, else ``summarise``."""
    if verdict.status == AGREE:
        return verdict.case.form or _mnemonic_label(verdict.case)
    return summarise(checker, verdict, index, seed)


def summarise(checker: Checker, verdict: Verdict, index: int, seed: int) -> Judged:
    """A ``Verdict`` reduced to a ``Judged`` (the record only where one is stored)."""
    case = verdict.case
    stored = verdict.status in (DIVERGE, CRASHED)
    return Judged(index, seed, verdict.status, case.form or _mnemonic_label(case), case.mode,
                  verdict.known.id if verdict.status == KNOWN and verdict.known else None,
                  verdict.line, tuple(d.field for d in verdict.differences),
                  checker.record(verdict) if stored else None)


def _mnemonic_label(case: Any) -> str:
    """``campaign.count_label`` for a case outside FORMS (imported here, off the path of
    the FORMS cases: an import statement costs ~0.5 µs a case)."""
    from differential.campaign import count_label

    return count_label(case)


class JudgingRunner:
    """Lives in the sandbox child (``SandboxedRunner`` builds it there): Unicorn in this
    process, the reference, and a ``Checker`` over both, judging with the campaign's pinned
    known list (``known_text``; None: the file as it is now). This child is a fork of
    the worker, or a fresh interpreter when the checkout was edited since the worker
    started (``sandbox.can_fork``), whose code may be newer than the worker's: a pinned
    list it cannot read stops it at start (a ``SandboxError`` naming the
    ``KnownListError``).

    Told a request's items first (``expect``, by ``sandbox.serve``), it draws up to
    ``AHEAD`` cases and runs the reference on all of them before judging the first, then
    runs Unicorn and compares one case at a time. Each stage then runs over many cases in
    a row, and the caches stay warm for it (issue 18; 164-175 against 141-149 µs a case in
    one process; ``x86lab bench --pipeline --batches 10``, three pairs alternating with the
    code judging case by case, load 0.7: 4,969-5,095 cases/s per core against
    4,230-4,315, the same answers). Unicorn still runs, and each answer still leaves, case
    by case, so the case it aborts on is known exactly; what drawing or the reference
    raises is raised at its own case."""

    AHEAD = 100  # cases drawn and run on the reference before the first is judged

    def __init__(self, memory_hooks: bool = False, known_text: Optional[str] = None) -> None:
        from differential.runners.reference_runner import ReferenceRunner

        self._known = None if known_text is None else PinnedList(known_text).entries()
        self._reference = ReferenceRunner()  # one for both hook settings: reset per case
        self._checkers: Dict[bool, Checker] = {}
        self.checker = self._checker(memory_hooks)
        self.name = self.checker.peer.name
        self._forms: Dict[str, List[Any]] = {}
        self._expected: List[Tuple[Any, int, int]] = []  # told by expect, not yet drawn
        self._ready: Deque[Tuple[Tuple[Any, int, int], _Drawn]] = deque()
        from differential.campaign import draw_case, testable_forms

        self._draw_case, self._testable_forms = draw_case, testable_forms

    def _checker(self, memory_hooks: bool) -> Checker:
        """Unicorn with or without memory hooks against the one reference (an item
        ``(plan, batch, index, memory_hooks)`` names its peer: ``suite.checkers``' two
        ``ChildJudge``s share this child; a 3-tuple is judged by ``checker``)."""
        checker = self._checkers.get(memory_hooks)
        if checker is None:
            from differential.runners.unicorn_runner import UnicornRunner

            checker = self._checkers[memory_hooks] = Checker(
                UnicornRunner(memory_hooks=memory_hooks), self._reference, known=self._known)
        return checker

    def expect(self, items: Sequence[Tuple[Any, int, int]]) -> None:
        """The items ``judge`` is about to be asked for, in order (``sandbox.serve``)."""
        self._expected = list(items)
        self._ready.clear()

    def judge(self, item: Tuple[Any, int, int]) -> Answer:
        """Draw case ``index`` of ``batch`` under ``plan`` and judge it (``answer``)."""
        if not self._ready and self._expected and self._expected[0] is item:
            self._prepare(self._expected[:self.AHEAD])
            del self._expected[:self.AHEAD]
        if self._ready and self._ready[0][0] is item:
            drawn = self._ready.popleft()[1]
        else:  # not told (a single call, a test): drawn now
            drawn = self._draw(item)
        if drawn.error is not None:
            raise drawn.error
        checker = self.checker if len(item) == 3 else self._checker(item[3])
        verdict = checker.check(drawn.case, ours=drawn.ours)
        return answer(checker, verdict, item[2], drawn.seed)

    def _prepare(self, items: Sequence[Tuple[Any, int, int]]) -> None:
        """Draw ``items``' cases, then run the reference on each (see the class doc)."""
        ready = [(item, self._draw(item)) for item in items]
        subject = self.checker.subject
        for _item, drawn in ready:
            if drawn.error is None and not untestable(drawn.case.form):
                try:
                    drawn.ours = subject.run(drawn.case)
                except Exception as exc:  # noqa: BLE001 - raised when its case is judged
                    drawn.error = exc
        self._ready.extend(ready)

    def _draw(self, item: Tuple[Any, int, int]) -> _Drawn:
        plan, batch, index = item[:3]
        out = _Drawn()
        try:
            forms = self._forms.get(plan.forms)
            if forms is None:
                forms = self._forms[plan.forms] = self._testable_forms(plan.forms)
            out.case, out.seed = self._draw_case(plan, forms, batch, index)
        except Exception as exc:  # noqa: BLE001 - raised when its case is judged
            out.error = exc
        return out


class _Drawn:
    """One case drawn ahead of its judging, and the reference's outcome (None: not run
    yet, and ``Checker.check`` runs it) or what raised on the way."""

    __slots__ = ("case", "seed", "ours", "error")

    def __init__(self) -> None:
        self.case: Any = None
        self.seed = 0
        self.ours: Optional[Any] = None
        self.error: Optional[BaseException] = None


class ChildJudge(Checker):
    """The reference against sandboxed Unicorn (``check``, for replays and tests, as any
    ``Checker``) that judges campaign cases in a child of its own (``judge_keys``). The
    child that runs single cases for ``check`` starts only if ``check`` is used. ``known``:
    the campaign's pinned list, for this process and the child alike (None: the file)."""

    def __init__(self, memory_hooks: bool = False, known: Optional[PinnedList] = None,
                 judges: Optional[SandboxedRunner] = None) -> None:
        from differential.runners.reference_runner import ReferenceRunner

        super().__init__(sandboxed_unicorn(memory_hooks=memory_hooks), ReferenceRunner(),
                         known=None if known is None else known.entries())
        self.memory_hooks = memory_hooks
        self.judges = judges or judging_child(known, memory_hooks)

    def judge_keys(self, plan: Any, forms: List[Any], batch: int, indices: Sequence[int],
                   meanwhile: Optional[Callable[[], None]] = None) -> List[Answer]:
        """One ``Answer`` per index, in order; an engine crash is drawn again here and
        judged as ``check`` would (known entry or a ``crashed`` verdict). ``meanwhile``
        runs once while the child judges."""
        from differential.campaign import draw_case
        from differential.runners.unicorn_runner import runner_name

        hooks = self.memory_hooks
        answers = self.judges.call_many("judge", [(plan, batch, i, hooks) for i in indices],
                                        meanwhile)
        out: List[Answer] = []
        for index, one in zip(indices, answers):
            if isinstance(one, SandboxCrash):
                case, seed = draw_case(plan, forms, batch, index)
                crash = EngineCrashed(runner_name(hooks), case, one.death, one.alone)
                one = answer(self, self.check(case, theirs=crash), index, seed)
            out.append(one)
        return out

    def close(self) -> None:
        """End both children (each restarts on its next use)."""
        self.judges.close()
        self.peer.close()  # type: ignore[attr-defined]


def judging_child(known: Optional[PinnedList] = None,
                  memory_hooks: bool = False) -> SandboxedRunner:
    """A sandbox child judging campaign cases (``JudgingRunner``) with the pinned list
    ``known``; ``ChildJudge``s given the same one share it (``suite.checkers``)."""
    return SandboxedRunner("differential.judging", "JudgingRunner",
                           {"memory_hooks": memory_hooks,
                            "known_text": None if known is None else known.text})


def judge_keys(checkers: Sequence[Checker], plan: Any, forms: List[Any], batch: int,
               indices: Sequence[int], meanwhile: Optional[Callable[[], None]] = None) -> Tally:
    """The ``Tally`` of ``batch``'s cases ``indices``: case i goes to checker i mod
    len(checkers) (the peers with and without memory hooks take turns), in the checker's
    child when it has one, else drawn and judged here. ``meanwhile`` is called once,
    while the first checker's child judges (first thing, without a child)."""
    from differential.campaign import draw_case

    out: List[Optional[Answer]] = [None] * len(indices)
    for which, checker in enumerate(checkers):
        mine = range(which, len(indices), len(checkers))
        numbers = [indices[p] for p in mine]
        if isinstance(checker, ChildJudge):
            answers = checker.judge_keys(plan, forms, batch, numbers, meanwhile)
        else:
            if meanwhile is not None:
                meanwhile()
            drawn = [draw_case(plan, forms, batch, i) for i in numbers]
            verdicts = checker.check_batch([case for case, _ in drawn])
            answers = [answer(checker, verdict, i, seed)
                       for i, (_, seed), verdict in zip(numbers, drawn, verdicts)]
        out[which::len(checkers)] = answers
        meanwhile = None
    agreed: Dict[str, int] = {}
    others: List[Judged] = []
    for one in out:
        if one.__class__ is str:  # an agreeing case, by its label
            agreed[one] = agreed.get(one, 0) + 1  # type: ignore[index]
        else:
            others.append(one)  # type: ignore[arg-type]
    return Tally(agreed, others)


def child_pids(checkers: Sequence[Checker]) -> List[int]:
    """Process ids of the children doing the checkers' work (for CPU accounting), each
    once (checkers may share a child)."""
    return list(dict.fromkeys(checker.judges.pid if isinstance(checker, ChildJudge)
                              else checker.peer.pid  # type: ignore[attr-defined]
                              for checker in checkers))


def close_checkers(checkers: Sequence[Checker]) -> None:
    """End every child the checkers started."""
    for checker in checkers:
        close = getattr(checker, "close", None) or getattr(checker.peer, "close", None)
        if close is not None:
            close()
