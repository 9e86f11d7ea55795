"""Blocks that keep running across branches (``reference.blocks.layout``): a block that
branches back to its own first instruction runs as a loop inside one Python call, and
a block goes on past a conditional branch whose taken path leaves it (a side exit).

Each program's result is computed here by plain arithmetic from what the SDM says the
instructions do, and the compiled path must also end in the interpreter's state (the
budget cut inside a pass, a fault in a later pass, a write to the loop's own page, a
stack of the other width, a KeyboardInterrupt). Standard library only (runs under PyPy).
"""

from __future__ import annotations

from typing import List

import pytest

from reference.blocks import show
from reference.blocks.tests.machines import (
    CODE,
    DATA,
    KINDS,
    both,
    frame,
    machine,
    second_run,
)
from reference.faults import DE

# mov ecx, 100; xor eax, eax; top: inc eax; add ebx, eax; dec ecx; jnz top; hlt
PASSES = 100
COUNTING = bytes.fromhex("b9 64 00 00 00  31 c0  40  01 c3  49  75 fa  f4")
TOP = 7          # offset of the loop's first instruction
SETUP, PASS = 2, 4  # instructions before the loop, and in one pass of it
PASS_OFFSETS = (0x07, 0x08, 0x0A, 0x0B)  # where each instruction of a pass starts


def counting_after(instructions: int) -> tuple:
    """(EAX, EBX, ECX, EIP) after ``instructions`` of COUNTING, by arithmetic: pass k
    (from 1) makes EAX = k, adds k to EBX (so EBX = k(k+1)/2) and takes one from ECX."""
    passes, part = divmod(instructions - SETUP, PASS)
    eax = passes + (part >= 1)
    ebx = passes * (passes + 1) // 2 + (passes + 1 if part >= 2 else 0)
    ecx = PASSES - passes - (part >= 3)
    return eax, ebx, ecx, CODE + PASS_OFFSETS[part]


@pytest.mark.parametrize("kind", KINDS)
def test_a_hot_loop_runs_in_one_call_of_its_block(kind: str) -> None:
    cpu = machine(COUNTING, 1, kind)
    cpu.run(SETUP + 2 * PASS)  # pass 1: in the block made at the MOV; pass 2: the loop's
    block = cpu.icache[frame(kind, CODE) + TOP].block
    assert block is not None and block.loops and block.length == PASS
    calls: List[int] = []
    inner = block.run

    def counted(*args: object) -> int:
        calls.append(1)
        return inner(*args)

    block.run = counted
    result = cpu.run(10_000)
    assert result is not None and result.halted
    assert len(calls) == 1  # the other 98 passes: one call
    assert (cpu.regs[0], cpu.regs[3], cpu.regs[1]) == (PASSES, PASSES * (PASSES + 1) // 2, 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("limit", [2, 3, 5, 6, 9, 10, 13, 50, 51, 52, 53, 399, 400, 401])
def test_a_budget_ends_a_loop_on_its_exact_instruction(limit: int, kind: str) -> None:
    """run(limit) stops after exactly ``limit`` instructions, also inside a pass: the
    loop starts a pass only while a whole one fits (the PC's timer events land there)."""
    interpreted, compiled = both(COUNTING, limit, kind)
    assert compiled == interpreted
    regs, eip, tsc = compiled[0], compiled[1], compiled[3]
    assert tsc == limit
    assert (regs[0], regs[3], regs[1], eip) == counting_after(limit)


# mov edi, DATA; mov ebx, 5; top: mov [edi], edi; add edi, 4; mov eax, 100;
# xor edx, edx; div ebx; dec ebx; jmp top -- the sixth pass divides by zero.
DIVIDING = bytes.fromhex("bf" + DATA.to_bytes(4, "little").hex() + "bb 05 00 00 00"
                         "89 3f  83 c7 04  b8 64 00 00 00  31 d2  f7 f3  4b  eb ef")
DIV_AT = 0x16


@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_in_a_later_pass_leaves_the_interpreters_state(kind: str) -> None:
    """#DE in pass 6 of a loop block (a JMP back to its start): the block puts back the
    state at the start of pass 6 (its registers, flags, and that pass's store undone),
    then the pass replays one instruction at a time; the store and the ADD of pass 6
    stay, the DIV reports #DE with EIP on it (SDM Vol. 2A, DIV: #DE if the source is 0)."""
    interpreted, compiled = both(DIVIDING, 1_000, kind)
    assert compiled == interpreted
    regs, eip, exception = compiled[0], compiled[1], compiled[5]
    assert exception is not None and (exception.vector, exception.kind) == (DE, "fault")
    assert eip == CODE + DIV_AT
    assert regs[7] == DATA + 6 * 4 and regs[3] == 0 and (regs[0], regs[2]) == (100, 0)
    cpu = machine(DIVIDING, 1, kind)
    cpu.run(1_000)
    stored = [cpu.read(3, DATA + 4 * k, 4) for k in range(7)]
    assert stored == [DATA + 4 * k for k in range(6)] + [
        int.from_bytes(bytes((i * 7 + 3) & 0xFF for i in range(24, 28)), "little")]


@pytest.mark.parametrize("kind", KINDS)
def test_a_loop_storing_into_its_own_page_matches_the_interpreter(kind: str) -> None:
    """Each pass stores ECX at CODE + 0x800, on the loop's own page: the store forgets
    the page's decoded code (it might be code), so the pass stops, is put back and
    replayed; the last pass leaves 1 there."""
    code = bytes.fromhex("b9 0a 00 00 00  89 0d" + (CODE + 0x800).to_bytes(4, "little").hex()
                         + "01 c8  49  75 f5  f4")  # top: mov [..], ecx; add eax, ecx; ...
    interpreted, compiled = both(code, 1_000, kind)
    assert compiled == interpreted
    assert compiled[0][0] == sum(range(1, 11))
    cpu = machine(code, 1, kind)
    cpu.run(1_000)
    assert cpu.read(3, CODE + 0x800, 4) == 1


def test_keyboard_interrupt_in_a_loop_leaves_the_start_of_its_pass() -> None:
    """A KeyboardInterrupt (not a guest event) in pass 5 goes out of run() with the state
    at the start of that pass, and the passes before it counted: the interpreter run for
    that many instructions is in the same state."""
    code = bytes.fromhex("b9 64 00 00 00  bf" + DATA.to_bytes(4, "little").hex()
                         + "89 0f  83 c7 04  49  75 f8  f4")  # top: mov [edi], ecx; ...
    cpu = machine(code, 1, "sparse")  # memory accesses stay calls of cpu.write
    writes: List[int] = []
    write = cpu.write

    def interrupting(*args: int) -> None:
        writes.append(1)
        if len(writes) == 5:
            raise KeyboardInterrupt
        write(*args)

    cpu.write = interrupting  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        cpu.run(10_000)
    assert cpu.tsc == 2 + 4 * 4  # the setup and four passes of four instructions
    reference = machine(code, 0, "sparse")
    reference.run(cpu.tsc)
    assert (cpu.regs, cpu.eip, cpu.flags.value) == (reference.regs, reference.eip,
                                                    reference.flags.value)
    assert cpu.mem.pages() == reference.mem.pages()


# mov eax, -1; mov ebx, 1; mov edx, -1; add eax, ebx; inc edx; jz out; xor ecx, ecx;
# out: hlt
SIDE_EXIT = bytes.fromhex("b8 ff ff ff ff  bb 01 00 00 00  ba ff ff ff ff"
                          "01 d8  42  74 02  31 c9  f4")


@pytest.mark.parametrize("kind", KINDS)
def test_a_taken_branch_in_the_middle_leaves_every_flag_live(kind: str) -> None:
    """ADD sets CF = 1 (0xFFFFFFFF + 1), INC EDX (0xFFFFFFFF -> 0) sets ZF, PF, AF and
    keeps CF, JZ reads only ZF, and the XOR after it would overwrite every flag: on
    the not-taken path ADD's flags are dead, but JZ is taken, so at the HLT EFLAGS is
    bit 1 | CF | PF | AF | ZF = 0x57 (SDM Vol. 1, 3.4.3; Vol. 2A, INC: CF unaffected)."""
    interpreted, _ = both(SIDE_EXIT, 100, kind)
    compiled, cpu = second_run(SIDE_EXIT, 100, kind)
    assert compiled == interpreted
    assert compiled[2] == 0x57 and compiled[6]  # flags; halted
    block = cpu.icache[frame(kind, CODE)].block
    assert block.length == 7 and not block.loops  # on past the JZ, up to the HLT


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("limit", [3, 4, 5, 6, 7, 8, 60, 61, 62, 1_000])
def test_a_branch_back_in_the_middle_loops_and_the_tail_runs_once(limit: int,
                                                                  kind: str) -> None:
    """top: inc eax; dec ecx; jnz top; add ebx, eax; hlt -- with ECX = 20 the pass runs
    20 times (the JNZ in the middle goes back to the block's start), then the ADD once:
    EAX = 20, EBX = 20, 2 + 3 * 20 + 1 = 63 instructions before the HLT."""
    code = bytes.fromhex("b9 14 00 00 00  31 c0  40  49  75 fc  01 c3  f4")
    interpreted, compiled = both(code, limit, kind)
    assert compiled == interpreted
    regs = compiled[0]
    passes, part = divmod(min(limit, 63) - 2, 3)
    if limit >= 63:
        assert (regs[0], regs[1], regs[3]) == (20, 0, 20) and compiled[6]
    else:
        assert (regs[0], regs[1]) == (passes + (part >= 1), 20 - passes - (part >= 2))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("code, eax, count", [
    # xor eax, eax; top: inc eax; cmp eax, 100; je out; jmp top; out: hlt
    ("31 c0  40  83 f8 64  74 02  eb f8  f4", 100, 1 + 99 * 4 + 3),
    # mov ecx, 10; top: add eax, ecx; loop top; hlt  (10 + 9 + ... + 1)
    ("b9 0a 00 00 00  01 c8  e2 fc  f4", 55, 1 + 10 * 2),
], ids=["jmp-back-je-out", "loop"])
def test_loops_closed_by_jmp_and_by_loop(code: str, eax: int, count: int, kind: str) -> None:
    interpreted, compiled = both(bytes.fromhex(code), 10_000, kind)
    assert compiled == interpreted
    assert compiled[0][0] == eax and compiled[3] == count + 1 and compiled[6]  # + the HLT


@pytest.mark.parametrize("kind", ["flat", "paged"])
def test_a_loop_made_for_one_stack_width_replays_under_the_other(kind: str) -> None:
    """top: push ecx; pop eax; dec ecx; jnz top -- made for SS.B = 32, cut by the budget
    in its third pass, then entered with a 16-bit stack: the block refuses it on entry
    and the passes run one instruction at a time, where SP wraps within 64 KiB and
    ESP's upper half stays (SDM Vol. 3A, 3.4.5: B flag of a stack segment)."""
    code = bytes.fromhex("b9 32 00 00 00  51  58  49  75 fb  f4")
    outcomes = []
    for threshold in (0, 1):
        cpu = machine(code, threshold, kind)
        assert cpu.run(1 + 4 * 2 + 1) is None
        cpu.stack_size = 16
        cpu.set_reg("esp", 0x12343800)  # SP in the stack page (STACK_TOP - 0x1000)
        result = cpu.run(10_000)
        outcomes.append((list(cpu.regs), cpu.eip, cpu.tsc, result.halted))
    assert outcomes[0] == outcomes[1]
    regs, tsc = outcomes[1][0], outcomes[1][2]
    assert regs[4] == 0x12343804  # the cut pass's POP, then PUSH and POP in pairs
    assert regs[0] == 1 and regs[1] == 0 and tsc == 1 + 4 * 50 + 1  # ECX = 1; the HLT


def test_show_prints_a_loop_as_a_while_loop(capsys: pytest.CaptureFixture) -> None:
    assert show.main(["--code", "40 49 75 fc"]) == 0  # top: inc eax; dec ecx; jnz top
    text = capsys.readouterr().out
    assert "        while True:\n" in text
    assert "# +0: 40  INC_Zv" in text and "# +2: 75 fc  JNZ_Jb" in text
    assert "raise g_BlockStopped(ran) from error" in text


# mov ecx, 50; top: pause; inc eax; nop; nop dword [eax+0]; dec ecx; jnz top; hlt
SPIN = bytes.fromhex("b9 32 00 00 00  f3 90  40  90  0f 1f 40 00  49  75 f5  f4")
SPIN_TOP, SPIN_PASS = 5, 6


@pytest.mark.parametrize("kind", KINDS)
def test_nops_and_pause_sit_inside_a_loop_block(kind: str) -> None:
    """A cpu_relax() loop: PAUSE (F3 90), NOP and the long NOP (0F 1F /0) do nothing
    (SDM Vol. 2B, NOP; PAUSE), so the loop, NOPs included, is one block run in one
    call, and 50 passes leave EAX = 50 and ECX = 0 as the interpreter does."""
    cpu = machine(SPIN, 1, kind)
    cpu.run(1 + 2 * SPIN_PASS)
    block = cpu.icache[frame(kind, CODE) + SPIN_TOP].block
    assert block is not None and block.loops and block.length == SPIN_PASS
    result = cpu.run(10_000)
    assert result is not None and result.halted
    assert (cpu.regs[0], cpu.regs[1]) == (50, 0)
    compiled, interpreted = both(SPIN, 10_000, kind)
    assert compiled == interpreted
