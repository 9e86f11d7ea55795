"""Instruction lengths of every form, checked against Capstone (an independent decoder).

For each form we build encodings with several ModRM/SIB shapes in both 16- and 32-bit
modes; the reference decoder's length must equal Capstone's.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from reference import FORMS, Fault
from reference.isa.decoder import decode
from reference.tests.conftest import make_cpu
from reference.tests.third_party import require

capstone = require("capstone")

# Capstone 5 does not decode these (undocumented aliases / SALC): lengths checked by hand
# in test_decoder.py instead.
CAPSTONE_GAPS = {"SALC"}
# Capstone 5 reads the reserved NOPs 0F 1A-0F 1E as MPX/CET instructions and decodes
# only some of their encodings (never the register forms): where it decodes one, the
# lengths must match; a register form is opcode + ModRM, three bytes, checked by hand.
CAPSTONE_PARTIAL = {f"NOP_{op:02X}_Ev" for op in range(0x1A, 0x1F)}
MODRM_SHAPES = (0xC0, 0x00, 0x04, 0x05, 0x06, 0x44, 0x84, 0x80, 0x45)
FILLER = bytes(range(0x11, 0x11 + 16))


def encodings(form) -> Iterator[bytes]:
    enc = form.enc
    opcode = bytes(enc.opcode[:-1]) + bytes([enc.opcode[-1] + (1 if enc.plus_r else 0)])
    if not enc.modrm:
        yield opcode + FILLER
        return
    reg = (enc.digit or 0) << 3
    for shape in MODRM_SHAPES:
        if any(s.startswith("M") for s in form.specs) and shape >= 0xC0:
            continue
        yield opcode + bytes([shape | reg]) + bytes([0x24]) + FILLER


TESTED = [form for form in FORMS if form.mnemonic not in CAPSTONE_GAPS
          and "alias" not in form.name and not form.name.endswith("_82")]


@pytest.mark.parametrize("form", TESTED, ids=[form.name for form in TESTED])
def test_length_matches_capstone(form) -> None:
    checked = 0
    for mode, cs_mode in (("prot32", capstone.CS_MODE_32), ("real16", capstone.CS_MODE_16)):
        cs = capstone.Cs(capstone.CS_ARCH_X86, cs_mode)
        for code in encodings(form):
            expected = next(cs.disasm(code, 0x1000), None)
            if expected is None and form.name in CAPSTONE_PARTIAL:
                if code[2] >= 0xC0:
                    cpu = make_cpu(code, mode)
                    assert decode(cpu, 0x1000, cpu.fetch_byte).length == 3
                continue
            assert expected is not None, f"capstone cannot decode {code[:4].hex()}"
            cpu = make_cpu(code, mode)
            try:
                insn = decode(cpu, 0x1000, cpu.fetch_byte)
            except Fault as fault:
                pytest.fail(f"{mode}: decoder raised {fault!r} on {code[:6].hex()}")
            assert insn.form.name == form.name
            assert insn.length == expected.size, (
                f"{mode} {code[:6].hex()}: {expected.mnemonic} {expected.op_str}")
            checked += 1
    assert checked >= 2
