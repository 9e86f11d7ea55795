"""Registers and EFLAGS in locals (``reference.blocks.registers``): blocks that keep
them there end in the interpreter's state where the CPU's copies must be current (an
exit, a later pass's exit, a call out to code that reads or writes them), and a text
the pass does not recognise is left as it was. Standard library only (PyPy too)."""

from __future__ import annotations

import pytest

from reference.blocks.compiler import block_source
from reference.blocks.registers import in_locals
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
    assert "while True:" in text and "EDI = " in text  # a loop block, EDI a local


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
    assert "f3(cpu, " in text and "EDX = " in text  # IMUL is called; EDX a local
    interpreted, compiled = both(CALL_OUT, 100, kind)
    assert compiled == interpreted
    assert interpreted[0][0] == 5 ^ (14 * 3) and interpreted[-1]


@pytest.mark.parametrize("text", [
    "def block(cpu, eip, budget):\n    regs = cpu.regs\n    g(regs)\n    regs[0] = 1\n",
    "def block(cpu, eip, budget):\n    regs = cpu.regs\n    regs[0] = 1\n"
    "    if f(cpu):\n        regs[1] = 2\n",
    "def block(cpu, eip, budget):\n    regs = cpu.regs\n    regs[0] = 1\n    return f(cpu)\n",
    "def block(cpu, eip, budget):\n    regs = cpu.regs\n    regs[1] = f(cpu) + regs[0]\n",
    "def block(cpu, eip, budget):\n    regs = cpu.regs\n    flags = cpu.flags\n"
    "    flags.value = regs[0]\n",
])
def test_a_text_it_does_not_recognise_is_left_alone(text: str) -> None:
    """``regs`` passed whole, a call out in an ``if`` test or in a ``return`` (nowhere
    to load the registers again after it), a name it would shadow."""
    assert in_locals(text) == text


def test_a_text_it_recognises_reads_locals() -> None:
    text = ("def block(cpu, eip, budget):\n    regs = cpu.regs\n"
            "    regs[1] = regs[1] + 1 & 4294967295  # it's ECX\n"
            "    cpu.flags.value = cpu.flags.value | 1\n"
            "    cpu.write(2, regs[4], 4, regs[1])\n"
            "    return 2")
    assert in_locals(text).splitlines()[2:] == [
        "    EFLAGS = cpu.flags.value",
        "    ECX = regs[1]",
        "    ESP = regs[4]",
        "    ECX = ECX + 1 & 4294967295  # it's ECX",
        "    EFLAGS = EFLAGS | 1",
        "    cpu.flags.value = EFLAGS",
        "    regs[1] = ECX",
        "    cpu.write(2, ESP, 4, ECX)",
        "    EFLAGS = cpu.flags.value",
        "    ECX = regs[1]",
        "    ESP = regs[4]",
        "    cpu.flags.value = EFLAGS",
        "    regs[1] = ECX",
        "    return 2"]


# CMPXCHG8B's semantics assign EDX:EAX as one tuple, which PyPy 3.9's unparser writes
# ``(regs[0], regs[2]) = (...)``: registers a statement assigns inside parentheses are
# written too (under PyPy, a Linux boot's ``cmpxchg8b [ecx]; ret`` left EAX and EDX
# stale when they were not stored at the exit; CPython writes no parentheses there, and
# the statements below check both spellings on either).
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


@pytest.mark.parametrize("statement, targets", [
    ("regs[0] = cpu.read(2, regs[4], 4)", {0}),
    ("(regs[0], regs[2]) = (value & 4294967295, value >> 32)", {0, 2}),
    ("regs[0], regs[2] = divmod(a, b)", {0, 2}),
    ("regs[1] <<= 1", {1}),
    ("cpu.write(2, regs[4], 4, regs[1])", set()),
    ("M_ram[regs[0]] = 1", set()),
    ("x = regs[3] <= regs[2]", set()),
])
def test_the_registers_a_statement_assigns(statement: str, targets: set) -> None:
    from reference.blocks.registers import _stores_to

    assert _stores_to(statement) == targets
