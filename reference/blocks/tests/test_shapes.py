"""Code made once per shape of instruction (``reference.blocks.snippets``): instructions
that differ only in their immediates and displacements share one snippet and each
block fills in its own numbers; a shape whose numbers decide a branch is not shared.
Standard library only, so it runs under PyPy too."""

from __future__ import annotations

import pytest

from reference.blocks import snippets
from reference.blocks.compiler import block_source
from reference.blocks.tests.machines import CODE, KINDS, both, machine
from reference.isa.decoder import Insn

PROGRAM = bytes.fromhex(
    "be 00 20 00 00"   # mov esi, 0x2000 (the data page)
    "b8 05 00 00 00"   # mov eax, 5
    "83 c0 01"         # add eax, 1
    "83 c0 fd"         # add eax, -3
    "8b 5e 08"         # mov ebx, [esi+8]
    "8b 5e fc"         # mov ebx, [esi-4]      (the code page's last dword)
    "03 5e 10"         # add ebx, [esi+16]
    "c1 e0 03"         # shl eax, 3
    "c1 e0 00"         # shl eax, 0            (no flag changes: a count of 0)
    "c1 e3 1f"         # shl ebx, 31
    "75 02"            # jnz +2                (taken)
    "31 c0"            # xor eax, eax
    "f4")              # hlt


def _decoded(code: str) -> Insn:
    from reference.isa.decoder import decode_bytes
    from reference.step import _form_facts

    insn = decode_bytes(bytes.fromhex(code))
    insn.fn, insn.stepped, insn.conditional_undefined, insn.fixed_undefined = _form_facts(
        insn.form)
    return insn


@pytest.mark.parametrize("kind", KINDS)
def test_a_block_of_shared_shapes_ends_in_the_interpreters_state(kind: str) -> None:
    interpreted, compiled = both(PROGRAM, 100, kind)
    assert compiled == interpreted
    assert interpreted[-1]  # both reached the HLT


@pytest.mark.parametrize("first, second", [
    ("83c001", "83c0fd"),          # add eax, 1 / add eax, -3
    ("8b5e08", "8b5efc"),          # mov ebx, [esi+8] / [esi-4]
    ("b805000000", "b8ffffffff"),  # mov eax, 5 / -1
    ("7502", "75f0"),              # jnz: forward, backward
])
def test_instructions_that_differ_in_their_numbers_share_a_snippet(first: str,
                                                                   second: str) -> None:
    one, other = _decoded(first), _decoded(second)
    piece = snippets.snippet(one, 32, "flat:0123")
    assert piece.symbolic and piece is snippets.snippet(other, 32, "flat:0123")
    assert snippets.constants(one) != snippets.constants(other)


def test_a_zero_displacement_is_another_shape() -> None:
    with_disp, without = _decoded("8b5e08"), _decoded("8b1e")  # [esi+8], [esi]
    assert snippets.shape_of(with_disp) != snippets.shape_of(without)
    assert not snippets.snippet(without, 32, "flat:0123").symbolic


def test_a_shift_count_is_not_shared_since_it_decides_whether_flags_change() -> None:
    by_three, by_zero = _decoded("c1e003"), _decoded("c1e000")
    piece = snippets.snippet(by_three, 32, "flat:0123")
    assert not piece.symbolic
    assert piece is not snippets.snippet(by_zero, 32, "flat:0123")


def test_each_instruction_of_a_block_gets_its_own_numbers() -> None:
    cpu = machine(PROGRAM, 1, "flat")
    lines = [line.strip() for line in block_source(cpu, CODE).splitlines()]
    assert "regs[0] = 5" in lines
    for number in ("1", "4294967293", "8", "-4", "16"):  # imm8 -3 sign-extended
        assert any(f" {number} " in f" {line} " or f"({number} " in line
                   or f" {number})" in line for line in lines if not line.startswith("#"))
    assert not any("n0_" in line or "{" in line for line in lines)
    assert sum(line.startswith("#") for line in lines) == 12  # all but the HLT: one comment each


def test_placing_fills_in_the_numbers() -> None:
    code = "w0_1 = n0_1 + regs[n0_0 and 3]\nif op0_2.x:\n    d = {'n0_1': 1}"
    assert snippets.placed(code, 0, ["4", "-7"]) == (
        "w0_1 = -7 + regs[4 and 3]\nif op0_2.x:\n    d = {'-7': 1}")
    assert snippets.placed(code, 2, ["4", "-7"]).startswith("w0_1 = -7 + regs[4 and 3]\nif op2_2")
