"""Operand facts from our own decoder (``differential/decoded.py``): the undefined-flag
masks of encodings Capstone cannot decode, and agreement with Capstone where it can."""

from __future__ import annotations

import pytest

from differential import campaign
from differential.decoded import facts
from differential.generator import _undefined
from differential.operands import decode, destination, operand_value
from differential.tests.handmade import make_case
from reference import BY_NAME

AF, OF = 0x10, 0x800
SHLD_CL = bytes.fromhex("f3670fa5c8")  # rep addr32->16 shld eax, ecx, cl: the CPU ignores F3


def test_capstone_cannot_decode_the_prefixed_shld():
    assert decode("prot32", SHLD_CL) is None  # the premise of the two tests below


@pytest.mark.parametrize("count, undefined", [(1, AF), (5, AF | OF), (0, 0), (32, 0)])
def test_prefixed_shld_gets_the_count_rules(count, undefined):
    """SDM Vol. 2B, SHLD, Flags Affected: for a count of 1 or more AF is undefined, and
    OF is defined for a 1-bit shift only; a count of 0 affects no flag, and the count is
    masked to 5 bits first (32 is 0). Without the count only the unconditional rules
    applied: none for SHLD, so OF and AF diverged as false positives."""
    case = make_case(SHLD_CL, ecx=count)
    mask, dest = _undefined(BY_NAME["SHLD_Ev_Gv_CL"], "prot32", None, case.regs, case.memory)
    assert (mask, dest) == (undefined, "")


def test_prefixed_shld_over_the_size_leaves_the_16_bit_destination_undefined():
    """66 selects 16-bit operands: a count of 17 (> 16) leaves AX undefined (SDM SHLD:
    'If the count is greater than the operand size, the result is undefined')."""
    code = bytes.fromhex("f3660fa5c8")  # rep shld ax, cx, cl
    case = make_case(code, ecx=17)
    mask, dest = _undefined(BY_NAME["SHLD_Ev_Gv_CL"], "prot32", None, case.regs, case.memory)
    assert dest == "reg:eax:0xffff" and mask & OF and mask & AF


def test_our_facts_agree_with_capstone_on_a_sample():
    """Where Capstone decodes a generated case, our decoder names the same first-operand
    size and destination, and the same count/source value where the read succeeds (200
    seeded FORMS cases whose form has a conditional undefined rule)."""
    forms = [(f, m) for f, m in campaign.testable_forms("*") if any(r.when != "always"
                                                           for r in f.undefined)]
    plan = campaign.Plan(seed=7, jobs=1, forms="*", bytes_share=0)
    checked = 0
    for index in range(4000):
        case, _ = campaign.draw_case(plan, forms, 0, index)
        insn = decode(case.mode, case.code)
        ours = facts(case.mode, case.regs, case.memory)
        if insn is None or ours is None or not insn.operands:
            continue
        assert ours.size == insn.operands[0].size * 8, case.code.hex()
        assert ours.destination == destination(case.mode, insn, case.regs), case.code.hex()
        last = len(insn.operands) - 1
        if ours.values[last] is not None:  # None: the read faults (a real-mode offset
            # past 0xFFFF raises #GP), which operands.py does not model
            assert ours.values[last] == operand_value(case.mode, insn, last, case.regs,
                                                      case.memory), case.code.hex()
        checked += 1
        if checked == 200:
            break
    assert checked == 200
