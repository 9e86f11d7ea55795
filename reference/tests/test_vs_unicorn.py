"""The data-movement, arithmetic and logic families against Unicorn, form by form.

Seeded random operands (registers, a memory operand in a mapped page, immediates, flags)
in both modes; only the flags the SDM leaves undefined for the form are masked.
"""

from __future__ import annotations

import pytest

from reference.tests.handmade import forms_of, random_disagreements
from reference.tests.third_party import require

require("unicorn")

FAMILIES = {
    "MOV", "MOVZX", "MOVSX", "XCHG", "CMPXCHG", "CMPXCHG8B", "XADD", "BSWAP", "LEA",
    "CMOVcc", "SETcc", "LAHF", "SAHF", "CBW", "CWD", "PUSH", "POP", "PUSHA",
    "POPA", "PUSHF", "POPF", "ADD", "ADC", "SUB", "SBB", "CMP", "INC", "DEC", "NEG",
    "AND", "OR", "XOR", "NOT", "TEST", "LES", "LDS", "LSS", "LFS", "LGS", "BOUND",
}
CASES = forms_of(*FAMILIES)
SEEDS = 12


@pytest.mark.parametrize("form,mode", CASES, ids=[f"{f.name}-{m}" for f, m in CASES])
def test_form_agrees_with_unicorn(form, mode) -> None:
    failures = random_disagreements(form, mode, SEEDS)
    assert not failures, "\n".join(failures[:5])
