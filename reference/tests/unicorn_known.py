"""Where Unicorn 2.1.4 departs from the SDM in the system-level comparisons
(``test_system_unicorn.py``, ``test_system_unicorn_far.py``): the entries of suite
``reference-system`` in ``differential/known_divergences.toml``, the one list of
Unicorn's known differences, each with its reason and evidence.

A comparison becomes a list of differences (field, Unicorn's value, the reference's);
``assert_explained`` fails on any one that no entry explains. An entry explains a
difference when its group names one of the forms the program ran, its ``condition`` (if
any) is among the facts the test established for this case (``CONDITIONS``), its
``fields`` cover the field and its ``exception`` shape (if any) matches. So nothing is
masked in the test code: removing an entry makes the differences it explained fail.

CPython only (``differential`` needs Python 3.11's tomllib); the tests that import this
have already asked for Unicorn, which PyPy lacks.
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from typing import Collection, Dict, List, Optional, Sequence, Tuple

from differential.known import KnownDifference, load_known
from ground.compare import Difference

SUITE = "reference-system"

# The facts a test may establish about one case; an entry's condition must be one.
CONDITIONS: Dict[str, str] = {
    "target-beyond-limit": "the far transfer's target offset lies beyond the final code "
                           "segment's limit",
    "cpl3-gate-call-to-conforming-code-of-lower-dpl": "a CALL at CPL 3 through a call gate "
                                                      "to conforming code of DPL < 3",
    "iret-at-cpl3-with-vm": "an IRET at CPL 3 pops an EFLAGS image with VM set",
    "walk-faulted": "the access's page walk ended in #PF",
    "pse36-frame-bits": "a present 4 MiB PDE with CR4.PSE has bits 21:13 set",
}

# Exception vectors as the entries' ``exception`` shapes name them.
LABELS = {None: "none", -1: "unmapped", 6: "#UD", 10: "#TS", 11: "#NP", 12: "#SS",
          13: "#GP", 14: "#PF"}


@lru_cache(maxsize=1)
def _entries() -> Tuple[KnownDifference, ...]:
    return tuple(e for e in load_known(conditions=CONDITIONS) if e.suite == SUITE)


def entries() -> Tuple[KnownDifference, ...]:
    """Every entry of the suite (the file is read once per session)."""
    return _entries()


def entry(known_id: str) -> KnownDifference:
    """The entry named ``known_id``; a test that works around a listed divergence cites
    it through this, so the work-around fails once the entry is gone."""
    found = [e for e in entries() if e.id == known_id]
    assert found, f"{known_id} is not listed in differential/known_divergences.toml"
    return found[0]


def label(vector: Optional[int]) -> str:
    return LABELS.get(vector, f"#{vector}")


def exception_difference(theirs: Optional[int], mine: Optional[int]) -> List[Difference]:
    """The exception field, when Unicorn's vector and the reference's differ."""
    return [] if theirs == mine else [Difference("exception", label(theirs), label(mine))]


def _explains(known: KnownDifference, difference: Difference, forms: Collection[str],
              facts: Collection[str]) -> bool:
    if not any(fnmatch.fnmatchcase(form, pattern)
               for form in forms for pattern in known.groups):
        return False
    if known.condition and known.condition not in facts:
        return False
    if known.fields and not any(fnmatch.fnmatchcase(difference.field, pattern)
                                for pattern in known.fields):
        return False
    if known.exception:
        return difference.field == "exception" and \
            fnmatch.fnmatchcase(str(difference.left), known.exception[0]) and \
            fnmatch.fnmatchcase(str(difference.right), known.exception[1])
    return True


def explained_by(difference: Difference, forms: Collection[str],
                 facts: Collection[str]) -> Optional[KnownDifference]:
    """The first entry that explains ``difference``, or None."""
    return next((e for e in entries() if _explains(e, difference, forms, facts)), None)


def assert_explained(differences: Sequence[Difference], forms: Collection[str],
                     facts: Collection[str] = (), context: str = "") -> None:
    """Every difference must be one of the listed divergences."""
    unexplained = [d for d in differences if explained_by(d, forms, facts) is None]
    assert not unexplained, (
        f"not a listed Unicorn divergence ({context}; forms {sorted(forms)}, facts "
        f"{sorted(facts)}): " + "; ".join(f"{d.field}: unicorn={d.left!r} "
                                          f"reference={d.right!r}" for d in unexplained))
