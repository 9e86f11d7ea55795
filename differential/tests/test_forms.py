"""Every form of FORMS, in every mode it exists in, against Unicorn with and without
memory hooks. Expected values come from Unicorn (an independent implementation); the
reference is the code under test. Divergences are saved to the corpus and replayed first.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from differential.check import AGREE, KNOWN, UNIMPLEMENTED
from differential.corpus import load, paths
from differential.draw import HypothesisDraw, RandomDraw
from differential.generator import form_case
from differential.suite import (
    DETERMINISTIC,
    PHASES,
    checkers,
    default_corpus,
    forms_to_test,
    implemented,
    keep,
)

CHECKERS = checkers()
IMPLEMENTED = implemented()
CORPUS = default_corpus()


def _params():
    out = []
    for form, mode in forms_to_test():
        marks = []
        if form.not_version1:
            marks.append(pytest.mark.skip(reason=f"not in version 1: {form.not_version1}"))
        elif not IMPLEMENTED.get(form.name):
            marks.append(pytest.mark.xfail(strict=False,
                                           reason="not implemented in reference yet"))
        out.append(pytest.param(form, mode, id=f"{form.name}-{mode}", marks=marks))
    return out


def _final_example() -> bool:
    """True outside Hypothesis and in its final replay of the minimal failing example:
    only that one is saved to the corpus, not every step of the shrinking."""
    try:
        from hypothesis.control import current_build_context

        return current_build_context().is_final
    except Exception:  # noqa: BLE001 - not inside a Hypothesis test
        return True


def _judge(case) -> None:
    failures = []
    ours = CHECKERS[0].subject.run(case)  # the same reference outcome for every peer
    for checker in CHECKERS:
        verdict = checker.check(case, ours)
        if verdict.status == UNIMPLEMENTED:
            pytest.xfail(f"not implemented in reference yet: {verdict.line}")
        if verdict.status not in (AGREE, KNOWN):
            saved = keep(checker, verdict, CORPUS) if _final_example() else None
            failures.append(f"[{checker.peer.name}] {verdict.line}\n    saved: {saved}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", paths(CORPUS), ids=lambda p: p.stem)
def test_saved_divergence_replays_clean(path):
    """Divergences found earlier are rerun first: each stays red until fixed."""
    case, _record = load(path)
    _judge(case)


@pytest.mark.parametrize("form, mode", _params())
@settings(derandomize=DETERMINISTIC, phases=PHASES)
@given(data=st.data())
def test_form_matches_unicorn(form, mode, data):
    state = RandomDraw(data.draw(st.integers(0, 2**32 - 1), label="state seed"))
    _judge(form_case(form, mode, HypothesisDraw(data), state=state))
