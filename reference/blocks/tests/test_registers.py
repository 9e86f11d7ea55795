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
