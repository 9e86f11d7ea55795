"""What the CI differential tests and campaigns share: the forms to test, the runners to
compare, where divergences are kept, and how one case is judged and recorded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Tuple

from hypothesis import Phase

from differential.check import CRASHED, DIVERGE, Checker, Verdict
from differential.corpus import save
from differential.known import PinnedList

# The CI profile is deterministic and does not shrink: a failure already prints and saves
# a one-line reproducer, and shrinking one REP case took minutes. HYPOTHESIS_PROFILE=campaign
# explores at random and shrinks.
DETERMINISTIC = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci"
PHASES = tuple(p for p in Phase if p != Phase.shrink) if DETERMINISTIC else tuple(Phase)


def forms_to_test(pattern: str = "*") -> List[Tuple[object, str]]:
    """(form, mode) pairs of FORMS matching a glob on the form name, untestable rows
    included (the caller says why they are skipped)."""
    import fnmatch

    from reference import FORMS

    return [(form, mode) for form in FORMS for mode in form.modes
            if fnmatch.fnmatchcase(form.name, pattern)]


def implemented() -> dict:
    """Form name -> has semantics, asked of the reference's own registry."""
    from reference import implemented_forms

    return implemented_forms()


def checkers(known: Optional[PinnedList] = None) -> List[Checker]:
    """Reference against Unicorn, without and with memory hooks (some Unicorn flag bugs
    showed only with memory hooks installed: unicorn #1717, #1862, #1938). Campaigns judge
    their cases inside each checker's child (``judging.ChildJudge``), with the known list
    they pinned when they started (``known``; None: the file as it is now)."""
    from differential.judging import ChildJudge, judging_child

    judges = judging_child(known)  # one child judges both: one working set in the caches
    return [ChildJudge(memory_hooks=False, known=known, judges=judges),
            ChildJudge(memory_hooks=True, known=known, judges=judges)]


def default_corpus() -> Path:
    """Divergences found by tests are kept here, outside the checkout, and replayed first."""
    from ground.cache import cache_dir

    return cache_dir("divergences")


def keep(checker: Checker, verdict: Verdict, directory: Optional[Path],
         **extra: object) -> Optional[Path]:
    """Store a new divergence or engine crash durably; agreements and known ones are not
    stored."""
    if verdict.status not in (DIVERGE, CRASHED) or directory is None:
        return None
    return save(directory, checker.record(verdict, **extra))
