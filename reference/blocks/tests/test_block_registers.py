"""Blocks against the interpreter where registers are written in ways a block's code
must get exactly right: at a loop's side exit after earlier passes wrote a register, around
an instruction a block calls out to (its own ``execute``), and as a tuple (CMPXCHG8B's
EDX:EAX). These came with a pass that kept registers in Python locals (tried in stop 22
and not kept: ``reference/README.md``); they hold for any way of generating blocks.
Standard library only (PyPy too)."""

from __future__ import annotations

import pytest

from reference.blocks.compiler import block_source
from reference.blocks.tests.machines import CODE, KINDS, both, machine

# A loop block (JNZ back to its start) with a side exit (JE) before the instruction that
# writes EDI: the pass that leaves by the JE wrote nothing to EDI, the passes before it
# did. ECX counts 5 down; EDI ends at 3 * 4.
EARLY_EXIT_LOOP = bytes.fromhex(
    "b9 05 00 00 00"      # mov ecx, 5
    "83 f9 01"            # again: cmp ecx, 1
    "74 06"               # je out
    "83 c7 03"            # add edi, 3
    "49"                  # dec ecx
    "75 f5"               # jnz again
    "f4")                 # out: hlt


@pytest.mark.parametrize("kind", KINDS)
def test_an_exit_stores_what_earlier_passes_of_a_loop_wrote(kind: str) -> None:
    interpreted, compiled = both(EARLY_EXIT_LOOP, 1_000, kind)
    assert compiled == interpreted
    assert interpreted[0][7] == 12 and interpreted[-1]  # EDI, and the HLT reached
    cpu = machine(EARLY_EXIT_LOOP, 0, kind)
    cpu.run(1)
    text = block_source(cpu, cpu.eip)
    assert "while True:" in text  # a loop block


# IMUL runs through its own ``execute`` inside a block (a call out): it reads EDX that
# the LEA before it wrote, and writes EDX that the XOR after it reads.
CALL_OUT = bytes.fromhex(
    "b8 05 00 00 00"      # mov eax, 5
    "bb 03 00 00 00"      # mov ebx, 3
    "8d 54 58 03"         # lea edx, [eax + ebx * 2 + 3]
    "0f af d3"            # imul edx, ebx
    "31 d0"               # xor eax, edx
    "f4")                 # hlt


@pytest.mark.parametrize("kind", KINDS)
def test_a_call_out_sees_and_changes_the_registers(kind: str) -> None:
    cpu = machine(CALL_OUT, 0, kind)
    text = block_source(cpu, CODE)
    assert "f3(cpu, " in text  # IMUL is called
    interpreted, compiled = both(CALL_OUT, 100, kind)
    assert compiled == interpreted
    assert interpreted[0][0] == 5 ^ (14 * 3) and interpreted[-1]


# CMPXCHG8B's semantics assign EDX:EAX as one tuple (PyPy 3.9's unparser writes it
# ``(regs[0], regs[2]) = (...)``), and no call out follows it in the block.
CMPXCHG8B = bytes.fromhex(
    "b9 00 20 00 00"      # mov ecx, 0x2000 (the data page)
    "bb 11 00 00 00"      # mov ebx, 0x11
    "0f c7 09"            # cmpxchg8b [ecx]   (EDX:EAX = 0 differs from m64: loads it)
    "46"                  # inc esi           (no call out after it: the exit stores)
    "f4")                 # hlt


@pytest.mark.parametrize("kind", KINDS)
def test_registers_assigned_as_a_tuple_are_stored(kind: str) -> None:
    interpreted, compiled = both(CMPXCHG8B, 100, kind)
    assert compiled == interpreted and interpreted[-1]
    assert interpreted[0][0] != 0  # EAX took the data page's first dword
