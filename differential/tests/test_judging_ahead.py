"""A campaign's child draws a request's cases and runs the reference on them before it
judges the first (``judging.JudgingRunner.expect``): the answers must be the ones judging
case by case gives, what raises must raise at its own case, and the case Unicorn aborts
on must still be known exactly. An agreeing case is answered by its label alone, and the
worker's ``Tally`` must count what judging case by case counts."""

from __future__ import annotations

from collections import Counter

import pytest

from differential import campaign, suite
from differential.campaign import Plan
from differential.check import AGREE, CRASHED
from differential.judging import (
    ChildJudge,
    JudgingRunner,
    child_pids,
    close_checkers,
    judge_keys,
    summarise,
)
from differential.known import PinnedList

# The bench's cases (FORMS rows only): none of them aborts an in-process Unicorn.
PLAN = Plan(seed=1, jobs=1, bytes_share=0)


def test_judging_ahead_answers_as_judging_case_by_case():
    items = [(PLAN, 0, index) for index in range(0, 200, 2)]
    one_by_one = JudgingRunner()
    ahead = JudgingRunner()
    ahead.AHEAD = 30  # several rounds of working ahead within the request
    ahead.expect(items)
    assert [ahead.judge(item) for item in items] == [one_by_one.judge(item) for item in items]


class _RaisesOn:
    """A reference that raises on one case (by name) and runs the others."""

    def __init__(self, subject, name: str) -> None:
        self.subject, self.name = subject, name

    def run(self, case):
        if case.name == self.name:
            raise KeyError("planted")
        return self.subject.run(case)


def test_what_the_reference_raises_is_raised_at_its_own_case():
    items = [(PLAN, 0, index) for index in range(6)]
    runner = JudgingRunner()
    runner.checker.subject = _RaisesOn(runner.checker.subject, "seed1-b0-i3")
    runner.expect(items)
    one_by_one = JudgingRunner()
    for item in items[:3]:
        assert runner.judge(item) == one_by_one.judge(item)
    with pytest.raises(KeyError, match="planted"):
        runner.judge(items[3])
    assert [runner.judge(item) for item in items[4:]] == \
        [one_by_one.judge(item) for item in items[4:]]


@pytest.mark.parametrize("shared", [True, False], ids=["one-child", "child-each"])
def test_the_case_unicorn_aborts_on_is_still_known_exactly(shared):
    """Seed 5's batch 17 holds f0 3e 0f ab cb ... (prot32) at index 181, which aborts
    Unicorn (test_engine_crash.py): judged ahead in the children (one for both hook
    settings, as ``suite.checkers`` makes them, or one each), with no known list, it is
    the one crash of the batch, at its own index."""
    plan = Plan(seed=5, jobs=1)
    checkers = suite.checkers(PinnedList("")) if shared else \
        [ChildJudge(memory_hooks=hooks, known=PinnedList("")) for hooks in (False, True)]
    try:
        tally = judge_keys(checkers, plan, campaign.testable_forms(plan.forms), 17,
                           range(200))
    finally:
        close_checkers(checkers)
    assert sum(tally.agreed.values()) + len(tally.others) == 200
    assert [j.index for j in tally.others] == sorted(j.index for j in tally.others)
    crashed = [j for j in tally.others if j.status == CRASHED]
    assert [j.index for j in crashed] == [181]
    assert crashed[0].record["engine_crash"]["bytes"].startswith("f0 3e 0f ab cb")


def test_the_tally_counts_what_judging_case_by_case_counts():
    """Seed 3's batch 2 in the campaign mix (random bytes outside FORMS among them, which
    count under Capstone's mnemonic): judged in the children, agreeing cases come back as
    labels and are counted per form; each case judged alone (``check``, Unicorn still in
    its sandbox) and summarised must give the same counts, and the same other verdicts
    in index order."""
    plan = Plan(seed=3, jobs=1)
    forms = campaign.testable_forms(plan.forms)
    checkers = suite.checkers()
    try:
        tally = judge_keys(checkers, plan, forms, 2, range(200))
        alone = []
        for index in range(200):
            case, seed = campaign.draw_case(plan, forms, 2, index)
            checker = checkers[index % 2]
            alone.append(summarise(checker, checker.check(case), index, seed))
    finally:
        close_checkers(checkers)
    expected = Counter(j.label for j in alone if j.status == AGREE)
    assert tally.agreed == dict(expected)
    assert any(label.startswith("(not in FORMS)") for label in tally.agreed)
    assert tally.others == [j for j in alone if j.status != AGREE]
    assert len(tally.others) >= 5


def test_one_child_judges_each_case_with_its_checkers_hook_setting():
    """``suite.checkers``' two checkers share one child (one working set in the caches:
    issue 18), which must still judge each case against the Unicorn its checker names:
    seed 1's batch 3 index 69 (RETF Iw, real16) differs from the reference only with
    memory hooks installed (a known Unicorn bug), and index 69 is the hooked checker's."""
    plan = Plan(seed=1, jobs=1, bytes_share=0)
    checkers = suite.checkers()
    try:
        assert checkers[0].judges is checkers[1].judges
        assert len(child_pids(checkers)) == 1
        tally = judge_keys(checkers, plan, campaign.testable_forms(plan.forms), 3,
                           range(200))
    finally:
        close_checkers(checkers)
    found = {j.index: j.known for j in tally.others}
    assert found.get(69) == "unicorn-memhooks-real-mode-far-return-eip"
