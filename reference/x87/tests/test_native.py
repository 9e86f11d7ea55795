"""The reference's x87 against this machine's CPU: every implemented x87 row, random
states and operands (reference/x87/tests/cases.py), one instruction natively
(native_x87.c) and on the reference; control word, status word (TOP, C0-C3, ES, B and
the exception bits), tag word, the non-empty registers, AX, EFLAGS and the data buffer
must agree (FXSAVE's MXCSR_MASK and XMM area excepted: not modelled; the
transcendentals within the 1 ulp the SDM promises, C1 following the register).

Unicorn is not used here: it is no x87 oracle (notes/reference-system-and-speed.md).
"""

from __future__ import annotations

import random
from typing import Dict, List

import pytest

from differential.cpu_identity import this_cpu
from reference.isa.form import Form
from reference.x87.tests.cases import encode, x87_forms
from reference.x87.tests.native import disagreements, require_native

FAMILIES = ("arithmetic", "load_store", "compare", "environment", "transcendental")
PER_FORM = 10          # ~1,200 cases in CI, a few hundred per family
PER_FORM_SLOW = 200


def by_family() -> Dict[str, List[Form]]:
    """Forms grouped by the module that implements them."""
    from reference.semantics import lookup
    groups: Dict[str, List[Form]] = {family: [] for family in FAMILIES}
    for form in x87_forms():
        module = lookup(form).__module__.rsplit(".", 1)[-1]  # type: ignore[union-attr]
        groups[module].append(form)
    return groups


def _check(family: str, per_form: int, seed: str) -> None:
    require_native()
    forms = by_family()[family]
    cases = []
    for form in forms:
        rng = random.Random(f"{seed}:{form.name}")
        cases += [encode(form, rng) for _ in range(per_form)]
    problems = disagreements(cases)
    assert not problems, (f"{len(problems)} of {len(cases)} {family} cases differ from "
                          f"{this_cpu().describe()}:\n" + "\n".join(problems[:8]))


@pytest.mark.parametrize("family", FAMILIES)
def test_x87_family_agrees_with_this_cpu(family: str) -> None:
    _check(family, PER_FORM, "ci")


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_x87_family_agrees_with_this_cpu_many(family: str) -> None:
    _check(family, PER_FORM_SLOW, "slow")


def test_every_family_has_forms() -> None:
    """The grouping itself: each family module implements some table rows."""
    groups = by_family()
    assert all(groups[family] for family in FAMILIES), {k: len(v) for k, v in groups.items()}
