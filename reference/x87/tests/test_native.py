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
from reference.x87.tests.cases import encode, in_fyl2xp1_range, vendor_status, x87_forms
from reference.x87.tests.native import X87Case, X87State, disagreements, require_native

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


LOG_VALUES = (
    0x3FFF_8000_0000_0000_0000, 0x4002_8000_0000_0000_0000,     # 1, 8 (exact logs)
    0x3FFE_8000_0000_0000_0000, 0x4000_C000_0000_0000_0000,     # 0.5, 3
    0x3FFC_9000_0000_0000_0001, 0x3FC0_C90F_DAA2_2168_C235,     # 0.14..., a tiny normal
    0x3FFF_8000_0000_0000_0001, 0x3FFE_FFFF_FFFF_FFFF_FFFF,     # 1 + 2**-63, 1 - 2**-64
    0, 0x0000_0000_0000_0001_2345, 0x0000_8000_0000_0000_0001,  # +0, denormal, pseudo-den.
    0x7FFF_8000_0000_0000_0000, 0x7FFF_C000_0000_0000_0001,     # +inf, a QNaN
    0x7FFF_8000_0000_0000_0001, 0x3FFF_4000_0000_0000_0000,     # an SNaN, an unnormal
    0x7FFE_FFFF_FFFF_FFFF_FFFF, 0x0001_8000_0000_0000_0000)     # largest, smallest normal


def _log_cases() -> List[X87Case]:
    """Every pair of LOG_VALUES with both signs, for both forms, all exceptions masked
    (then nearest and down) or all unmasked: the cells of SDM Vol. 2A Tables 3-47 and
    3-48 with their exceptions and C1. Only a result rounded from a logarithm is
    allowed the SDM's 1 ulp (with C1 then the CPU's); the cells with a special operand
    are compared exactly. FYL2XP1 takes only an ST(0) inside its range, and FYL2X of a
    power of two leaves PE/UE to the CPU (cases.in_fyl2xp1_range and
    cases.vendor_status say why)."""
    signed = [v | s << 79 for v in LOG_VALUES for s in (0, 1)]
    cases = []
    for mnemonic, code in (("FYL2X", b"\xd9\xf1"), ("FYL2XP1", b"\xd9\xf9")):
        for x in signed:
            if mnemonic == "FYL2XP1" and not in_fyl2xp1_range(x):
                continue
            vendor = vendor_status(mnemonic, x)
            for y in signed:
                for control in (0x037F, 0x077F, 0x0340 | vendor):
                    st = (x, y) + (0,) * 6
                    state = X87State(control, 0, (False, False) + (True,) * 6, st)
                    cases.append(X87Case(code, state, ulp=_rounded_log(mnemonic, x, y),
                                         open_status=vendor))
    return cases


def _rounded_log(mnemonic: str, x: int, y: int) -> bool:
    """Both operands finite and non-zero, J set (no NaN, infinity, zero, unsupported),
    and no negative ST(0) for FYL2X (#IA)."""
    finite = all(0 < (v >> 64 & 0x7FFF) < 0x7FFF and v >> 63 & 1
                 or (v >> 64 & 0x7FFF) == 0 and v & ((1 << 64) - 1) for v in (x, y))
    return finite and not (mnemonic == "FYL2X" and x >> 79)


def test_log_special_values_agree_with_this_cpu() -> None:
    """FYL2X and FYL2XP1 on the operand classes of their SDM tables, against this CPU."""
    require_native()
    cases = _log_cases()
    problems = disagreements(cases)
    assert not problems, (f"{len(problems)} of {len(cases)} FYL2X/FYL2XP1 cases differ from "
                          f"{this_cpu().describe()}:\n" + "\n".join(problems[:8]))
