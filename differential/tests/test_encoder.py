"""Encodings built from the table are single, whole instructions to Capstone (an
independent decoder), and attribution maps them back to the row they came from."""

from __future__ import annotations

import pytest

from differential.attribution import attribute
from differential.draw import RandomDraw
from differential.encoder import encode
from differential.encoding import split_prefixes
from differential.operands import decode
from reference import FORMS

SEEDS = range(12)
# Capstone 5 reads the reserved NOPs 0F 1A-0F 1E as MPX/CET instructions and decodes
# only some of their encodings: where it decodes one, its length must still match.
CAPSTONE_PARTIAL = {f"NOP_{op:02X}_Ev" for op in range(0x1A, 0x1F)}


def _segment_field_invalid(form, code: bytes) -> bool:
    """MOV to/from Sreg with reg field 6 or 7: drawn on purpose (10%), #UD on hardware."""
    _prefixes, body = split_prefixes(code)
    return form.enc.opcode in ((0x8C,), (0x8E,)) and (body[1] >> 3) & 7 >= 6


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_capstone_decodes_the_whole_encoding(form):
    for mode in form.modes:
        for seed in SEEDS:
            code = encode(form, mode, RandomDraw(seed))
            if _segment_field_invalid(form, code):
                continue
            insn = decode(mode, code)
            if insn is None and form.name in CAPSTONE_PARTIAL:
                continue
            assert insn is not None and insn.size == len(code), (mode, code.hex())


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_attribution_finds_the_row(form):
    for mode in form.modes:
        for seed in SEEDS:
            code = encode(form, mode, RandomDraw(seed))
            found = attribute(mode, code)
            if form.name == "XCHG_Zv_eAX" and split_prefixes(code)[1][0] == 0x90:
                assert found.mnemonic == "NOP"  # 90 is NOP, as the table notes
                continue
            assert found is form, (mode, code.hex(), found and found.name)
