"""The comparator masks exactly what the case says is undefined, and nothing else."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, fields, replace

import pytest

from differential.check import reproducer
from differential.operands import decode, disassembly
from differential.tests.handmade import DATA_PAGE, make_case
from ground.case import Exc, Outcome
from ground.compare import compare

ZF, SF, CF = 0x40, 0x80, 0x1


def _outcome(case, exc=None, memory=None, **regs):
    values = dict(case.regs)
    values.update(regs)
    return Outcome(regs=values, memory=memory or dict(case.memory), exception=exc)


def test_undefined_flag_is_masked_and_a_defined_one_is_not():
    case = make_case(b"\x90")
    case = type(case)(**{**case.__dict__, "undefined_flags": ZF})
    a = _outcome(case, eflags=0x202 | ZF)
    b = _outcome(case, eflags=0x202 | SF)
    fields = [d.field for d in compare(case, a, b)]
    assert fields == ["eflags.SF"]


def test_outcomes_differing_in_undefined_flags_only_agree_and_nothing_else_is_masked():
    """``compare`` answers the common case of undefined flags alone differing without
    walking every field: the same answer as the full walk, never a difference lost."""
    case = make_case(b"\x90")
    case = type(case)(**{**case.__dict__, "undefined_flags": ZF | CF})
    a = _outcome(case, eflags=0x202 | ZF)
    assert compare(case, a, _outcome(case, eflags=0x202 | CF)) == []
    fields = [d.field for d in compare(case, a, _outcome(case, eflags=0x202 | SF))]
    assert fields == ["eflags.SF"]
    other = _outcome(case, eflags=0x202 | CF, eax=case.regs["eax"] ^ 1)
    assert [d.field for d in compare(case, a, other)] == ["eax"]
    missing = _outcome(case, eflags=0x202 | CF)
    del missing.regs["ebx"]
    assert [d.field for d in compare(case, a, missing)] == ["ebx"]
    page = bytearray(case.memory[DATA_PAGE])
    page[5] ^= 0xFF
    stored = _outcome(case, eflags=0x202 | CF, memory={**case.memory, DATA_PAGE: bytes(page)})
    assert [d.field for d in compare(case, a, stored)] == [f"mem[{DATA_PAGE + 5:#x}]"]
    fault = _outcome(case, exc=Exc(6, "fault"), eflags=0x202 | CF)
    assert [d.field for d in compare(case, a, fault)] == ["exception"]


def test_undefined_destination_masks_only_its_bits():
    base = make_case(b"\x90")
    case = type(base)(**{**base.__dict__, "undefined_dest": "reg:eax:0xffff"})
    a = _outcome(case, eax=0x12340000)
    b = _outcome(case, eax=0x1234FFFF)
    assert compare(case, a, b) == []
    c = _outcome(case, eax=0x5678FFFF)
    assert [d.field for d in compare(case, a, c)] == ["eax"]


def test_memory_difference_names_the_byte():
    case = make_case(b"\x90")
    page = bytearray(case.memory[DATA_PAGE])
    page[5] = 0x99
    changed = dict(case.memory)
    changed[DATA_PAGE] = bytes(page)
    diffs = compare(case, _outcome(case), _outcome(case, memory=changed))
    assert [(d.field, d.left, d.right) for d in diffs] == [(f"mem[{DATA_PAGE + 5:#x}]", 0, 0x99)]


def test_every_differing_byte_is_named_in_order_except_an_undefined_one():
    """Bytes at the page's ends, on both sides of a 128-byte stretch boundary and in a run
    (the comparator passes over equal stretches at once), one of them undefined."""
    base = make_case(b"\x90")
    case = type(base)(**{**base.__dict__, "undefined_dest": f"mem:{DATA_PAGE + 130:#x}:1"})
    page = bytearray(case.memory[DATA_PAGE])
    for offset in (0, 127, 128, 130, 2000, 2001, 2002, 4095):
        page[offset] ^= 0x5A
    changed = dict(case.memory)
    changed[DATA_PAGE] = bytes(page)
    expected = [(f"mem[{DATA_PAGE + offset:#x}]", case.memory[DATA_PAGE][offset], page[offset])
                for offset in (0, 127, 128, 2000, 2001, 2002, 4095)]
    diffs = compare(case, _outcome(case), _outcome(case, memory=changed))
    assert [(d.field, d.left, d.right) for d in diffs] == expected


def test_error_code_compared_only_when_both_report_one():
    case = make_case(b"\x90")
    unknown = _outcome(case, exc=Exc(13, "fault"))
    assert compare(case, unknown, _outcome(case, exc=Exc(13, "fault", 0))) == []
    assert compare(case, _outcome(case, exc=Exc(13, "fault", 8)),
                   _outcome(case, exc=Exc(13, "fault", 0)))[0].field == "exception"
    assert compare(case, unknown, _outcome(case, exc=Exc(6, "fault")))[0].field == "exception"


def test_reproducer_is_one_line_with_bytes_disassembly_and_fields():
    case = make_case(bytes.fromhex("01c8"))
    line = reproducer(case, compare(case, _outcome(case, eax=1), _outcome(case, eax=2)),
                      "unicorn", "reference")
    assert "\n" not in line
    assert line.startswith("prot32 01c8 (add eax, ecx)")
    assert "eax: unicorn=0x1 reference=0x2" in line


def test_an_outcome_is_built_as_its_dataclass_fields_say():
    """``Outcome`` writes its own ``__init__`` (cheaper than the frozen dataclass's): it
    must keep the fields' order and defaults, a new notes dict for each, frozenness,
    equality, ``replace`` and pickling."""
    first = Outcome({"eax": 1}, {0x1000: bytes(4096)})
    second = Outcome({"eax": 1}, {0x1000: bytes(4096)})
    assert [f.name for f in fields(Outcome)] == ["regs", "memory", "exception", "notes"]
    assert first == second and first.exception is None and first.notes == {}
    assert first.notes is not second.notes
    trapped = Outcome({"eax": 1}, {}, Exc(3, "trap"), {"halted": "yes"})
    assert (trapped.exception, trapped.notes) == (Exc(3, "trap"), {"halted": "yes"})
    assert replace(trapped, notes={}) == Outcome({"eax": 1}, {}, Exc(3, "trap"))
    assert pickle.loads(pickle.dumps(trapped)) == trapped
    with pytest.raises(FrozenInstanceError):
        first.regs = {}  # type: ignore[misc]


def test_a_reproducer_disassembles_as_the_detailed_decoder_reads():
    """``disassembly`` asks Capstone for the text alone (without operand details, which
    cost half its time): the text must be what the detailed decode gives, including for
    bytes it cannot decode and in both modes."""
    codes = [("prot32", "66f7b4c312345678"), ("real16", "f3a5"), ("real16", "67668b0424"),
             ("prot32", "0f0b"), ("prot32", "c5"), ("prot32", "ffff"), ("real16", "9a78563412")]
    for mode, code in codes:
        insn = decode(mode, bytes.fromhex(code))
        expected = f"{insn.mnemonic} {insn.op_str}".strip() if insn else "(bad)"
        assert disassembly(mode, bytes.fromhex(code)) == expected
    assert disassembly("prot32", b"\xff\xff") == "(bad)"
    assert disassembly("prot32", b"\x0f\x0b") == "ud2"
