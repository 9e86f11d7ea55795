"""The block compiler against the interpreter: the same program run with blocks
compiled at once (threshold 1) and never (threshold 0) must end in the same state,
including when a block faults, writes its own code, or would overrun the budget.
Standard library only, so it runs under PyPy too."""

from __future__ import annotations

from typing import List

import pytest

from reference import benchmark as programs
from reference.blocks.compiler import NO_BLOCK, block_source, compile_block
from reference.blocks.tests.machines import (
    CODE,
    DATA,
    KINDS,
    both,
    frame,
    machine,
    second_run,
    state,
)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(programs.PROGRAMS))
def test_benchmark_programs_end_in_the_interpreters_state(name: str, kind: str) -> None:
    program = programs.PROGRAMS[name]
    code = program.code(300)
    interpreted, compiled = both(code, program.instructions(300) + 1, kind)
    assert compiled == interpreted
    assert interpreted[-1]  # both reached the HLT


@pytest.mark.parametrize("name", ["checksum-loop", "instruction-mix"])
def test_the_cpu_counts_the_instructions_retired_in_blocks(name: str) -> None:
    """``Cpu.in_blocks`` (the PC's stop record reports it): none without blocks, and with
    them all but those the interpreter ran: the first of each block (run before its
    block is made, at threshold 1), the HLT, and the block after a loop's last pass."""
    program = programs.PROGRAMS[name]
    counts = []
    for threshold in (0, 1):
        cpu = machine(program.code(300), threshold, "flat")
        cpu.run(program.instructions(300) + 1)
        counts.append((cpu.in_blocks, cpu.tsc))
    (none, retired), (inside, also_retired) = counts
    assert none == 0 and retired == also_retired
    assert retired * 0.9 < inside < retired


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("limit", [1, 2, 7, 20, 21, 22, 101, 999])
def test_a_budget_that_ends_inside_a_block_stops_on_the_same_instruction(limit: int,
                                                                         kind: str) -> None:
    program = programs.PROGRAMS["instruction-mix"]
    interpreted, compiled = both(program.code(100), limit, kind)
    assert compiled == interpreted


# A loop that stores through EDI and steps it by 0x400: the ninth store leaves the mapped
# pages (the data page and the stack page after it), and the fault comes from inside a
# compiled block (unmapped memory). (Its JNZ once landed inside "mov ecx, 100", so the
# fault came from the interpreter at the seventh instruction.)
FAULTING_LOOP = bytes.fromhex(
    "bf 00 20 00 00"      # mov edi, 0x2000
    "b9 64 00 00 00"      # mov ecx, 100
    "89 0f"               # again: mov [edi], ecx
    "01 c8"               # add eax, ecx
    "81 c7 00 04 00 00"   # add edi, 0x400
    "49"                  # dec ecx
    "75 f3"               # jnz again
    "f4")                 # hlt


def test_a_fault_inside_a_block_is_replayed_exactly(outcomes: List[object]) -> None:
    interpreted, compiled = both(FAULTING_LOOP, 10_000)
    assert compiled == interpreted
    assert interpreted[5] is not None and interpreted[5].kind == "unmapped"
    assert any(isinstance(raised, BaseException) for raised in outcomes)  # in a block


# A loop whose store goes to the data page, except on the pass with ECX = 7, when CMOVE
# points it at the imm32 of the "add eax, imm32" after it, in the same block: that block
# has run before, so it is compiled and must not add the stale immediate.
SELF_MODIFYING = bytes.fromhex(
    "b9 14 00 00 00"      # 0x00 mov ecx, 20
    "31 c0"               # 0x05 xor eax, eax
    "bb 00 20 00 00"      # 0x07 again: mov ebx, 0x2000 (data)
    "ba 1a 10 00 00"      # 0x0c mov edx, 0x101a (the imm32 below)
    "83 f9 07"            # 0x11 cmp ecx, 7
    "0f 44 da"            # 0x14 cmove ebx, edx
    "89 0b"               # 0x17 mov [ebx], ecx
    "05 01 00 00 00"      # 0x19 add eax, 1 (later: 7)
    "49"                  # 0x1e dec ecx
    "75 e6"               # 0x1f jnz again
    "f4")                 # 0x21 hlt


@pytest.mark.parametrize("kind", KINDS)
def test_self_modifying_code_inside_a_block_matches_the_interpreter(kind: str) -> None:
    interpreted, compiled = both(SELF_MODIFYING, 10_000, kind)
    assert compiled == interpreted
    assert interpreted[0][0] == 13 * 1 + 7 * 7  # from the pass with ECX = 7 on, +7


def test_the_generated_source_reads_like_the_semantics() -> None:
    program = programs.PROGRAMS["instruction-mix"]
    cpu = machine(program.code(10), 0)
    cpu.run(len(program.setup))
    text = block_source(cpu, cpu.eip, optimize=False)
    assert text.startswith("def block(cpu, eip, budget):")
    assert "ADD_Ev_Gv  -- DEST := DEST + SRC." in text       # the semantics' own words
    assert "cpu.flags.after_add(" in text and "regs[0]" in text  # operands inlined
    optimized = block_source(cpu, cpu.eip)
    assert "ADD_Ev_Gv  -- DEST := DEST + SRC." in optimized and "after_add" not in optimized


@pytest.mark.parametrize("code, line", [
    ("8d 04 19", "regs[0] = regs[1] + regs[3] & 4294967295"),        # lea eax, [ecx+ebx]
    ("8d 43 01", "regs[0] = 1 + regs[3] & 4294967295"),              # lea eax, [ebx+1]
    ("8d 0c 85 00 00 00 00", "regs[1] = regs[0] * 4 & 4294967295"),  # lea ecx, [eax*4]
    ("66 8d 43 ff", "w0_1 = -1 + regs[3] & 65535"),                    # lea ax, [ebx-1]
])
def test_an_effective_address_is_computed_with_no_idle_term(code: str, line: str) -> None:
    """No ``0 +`` for an absent displacement, no ``* 1`` for a scale of 1, and one mask
    where LEA masks an address that comes masked (``x & c1 & c2`` folds to one ``&``)."""
    cpu = machine(bytes.fromhex(code + "8d 00"), 0, "flat")  # (another LEA: a block)
    lines = block_source(cpu, CODE).splitlines()
    assert line in [text.strip() for text in lines]
    interpreted, compiled = both(bytes.fromhex(code + "f4"), 2, "flat")
    assert compiled == interpreted


def test_a_condition_is_branched_on_as_it_is_computed() -> None:
    """A condition's semantics end in ``bool(hit) != bool(cc & 1)``; with ``cc`` known
    that is ``bool(hit)`` or ``not hit``, and the value bound to a name only to be
    tested is tested where it is made (fewer steps and a shorter text per Jcc, CMOVcc)."""
    import ast

    from reference.blocks.optimize import fold, forward

    body = ast.parse("hit = v & 64\n"
                     "t = bool(hit) != False\n"
                     "if t:\n    cpu.y = 1\n"
                     "cpu.u = bool(w) != True\n"
                     "cpu.s = bool(w) == True\n"
                     "if not bool(z):\n    cpu.y = 2\n"
                     "cpu.k = bool(w) != x\n"
                     "q = bool(w)\n"
                     "if q:\n    cpu.y = q").body
    assert ast.unparse(ast.Module(forward(fold(body)), [])) == (
        "if v & 64:\n    cpu.y = 1\n"
        "cpu.u = not w\n"
        "cpu.s = bool(w)\n"
        "if not z:\n    cpu.y = 2\n"
        "cpu.k = bool(w) != x\n"  # not a constant: kept
        "q = bool(w)\n"
        "if q:\n    cpu.y = q")    # read again: kept


def test_a_value_read_first_by_a_test_is_computed_there() -> None:
    """``v = E; h = v & 64; if not h:`` is ``if not E & 64:`` (a JNZ's flag test), since
    E is what the test evaluates first; a value read after something else, or read
    twice, stays where it is."""
    import ast

    from reference.blocks.optimize import forward

    body = ast.parse("v = cpu.flags.value\n"
                     "h = v & 64\n"
                     "if not h:\n    cpu.y = 1\n"
                     "a = f()\n"
                     "if g() > a:\n    cpu.y = 2\n"
                     "b = f()\n"
                     "if b < 3 + b:\n    cpu.y = 3\n"
                     "c = f()\n"
                     "if c == 0 or d:\n    cpu.y = 4").body
    assert ast.unparse(ast.Module(forward(body), [])) == (
        "if not cpu.flags.value & 64:\n    cpu.y = 1\n"
        "a = f()\n"
        "if g() > a:\n    cpu.y = 2\n"   # g() runs first
        "b = f()\n"
        "if b < 3 + b:\n    cpu.y = 3\n"   # read twice
        "c = f()\n"
        "if c == 0 or d:\n    cpu.y = 4")   # (or: not looked into)


def test_every_condition_is_inlined_where_it_is_used() -> None:
    """Jcc, CMOVcc and SETcc test the flags in the block's own code, with no call to
    ``Flags.condition`` left (a conditional expression around the call kept SETcc's)."""
    from reference import Cpu
    from reference.memory import FlatMemory

    for cc in range(16):
        code = bytes([0x0F, 0x90 | cc, 0xC1,        # SETcc cl
                      0x0F, 0x40 | cc, 0xD0,        # CMOVcc edx, eax
                      0x0F, 0x90 | cc, 0x04, 0x24,  # SETcc [esp]
                      0x70 | cc, 0x00, 0xF4])       # Jcc +0, HLT
        memory = FlatMemory(0x10000)
        memory.write_bytes(0x1000, code)
        source = block_source(Cpu(memory, mode="prot32"), 0x1000)
        assert source is not None and "condition(" not in source, source


def test_flag_updates_the_block_overwrites_before_reading_are_dropped() -> None:
    """The checksum loop's body: MOVZX, ADD, ROL, XOR, INC, AND, DEC, JNZ. By the SDM's
    flag effects XOR and AND set all six status flags, INC/DEC all but CF, ROL only CF
    and OF, and only JNZ (ZF) reads any: ADD's, ROL's, XOR's and INC's updates are dead;
    AND's CF (which DEC keeps) and DEC's are live at the block's end."""
    program = programs.PROGRAMS["checksum-loop"]
    cpu = machine(program.code(10), 0)
    cpu.run(1 + len(program.setup))
    text = block_source(cpu, cpu.eip)
    assert "ROL_Ev_1" in text and "JNZ_Jb" in text
    assert text.count("cpu.flags.value = ") == 2
    plain = block_source(cpu, cpu.eip, optimize=False)
    assert plain.count("cpu.flags.after_") + plain.count("cpu.flags.cf =") == 6


@pytest.mark.parametrize("between", ["0fbfc3",        # movsx eax, bx: op.sign(value)
                                     "e800000000"])   # call $+5: code_limit(cpu) compared
def test_what_reads_no_flag_between_two_setters_keeps_none_alive(between: str) -> None:
    """ADD, then an instruction whose semantics use an operand's ``sign`` or compare with
    a helper given the CPU (``code_limit``), then NEG, which writes every flag ADD
    writes: ADD's update is dead (``optimize.PURE_OPERAND_ATTRIBUTES``,
    ``optimize._compared_call``; each kept it alive before, stop 33), and the block still
    ends in the interpreter's state."""
    from reference import Cpu
    from reference.memory import FlatMemory

    code = bytes.fromhex("01d8" + between + "f7d8" + "f4")
    memory = FlatMemory(0x10000)
    memory.write_bytes(0x1000, code)
    text = block_source(Cpu(memory, mode="prot32"), 0x1000)
    assert text is not None and "NEG_Ev" in text, text
    assert text.count("cpu.flags.value = ") == 1, text
    interpreted, compiled = both(code, 4, "flat")
    assert compiled == interpreted


FLAG_POOL = [
    "01d8", "29c8", "11d1", "19da", "21c3", "09ca", "31d0", "85c9", "39c2", "40", "4b",
    "f7d8", "f7d1", "d1e0", "c1e803", "d3f8", "d1c2", "c1ca05", "d1d3", "d1d9", "c1d102",
    "f8", "f9", "f5", "9f", "9e", "0f94c1", "0f92c3", "0f4fc2", "0f42d9", "0fa3c8",
    "0fbae305", "f7e3", "0fafc1", "8d0c40", "0fbcd0", "0fa4c207", "f6c301", "80d100",
    "27", "2f", "37", "3f", "d40a",
]
"""Register-only forms that write or read the status flags (ALU, INC/DEC, NEG/NOT,
shifts and rotates with RCL/RCR, CLC/STC/CMC, LAHF/SAHF, SETcc, CMOVcc, BT, MUL/IMUL, LEA,
BSF, SHLD, TEST, ADC with 0, the BCD adjusts)."""


MEMORY_POOL = [
    "50", "53", "5e", "59", "ff7508", "8f4510", "014508", "8b5d0c", "c6451003", "0fb65510",
    "874504", "c1650801", "f7550c", "11450c", "8b04b5" + (DATA).to_bytes(4, "little").hex(),
]
"""Memory and stack forms through EBP (= DATA) and ESP: the inlined memory accesses and
PUSH/POP, and registers held in locals around them (a POP past the stack page faults,
which the block must replay exactly)."""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pool", [FLAG_POOL, FLAG_POOL + MEMORY_POOL],
                         ids=["registers", "with-memory"])
def test_random_flag_producers_and_consumers_match_the_interpreter(
        pool: list, kind: str, outcomes: list) -> None:
    """Straight-line mixes of the forms above (one block each, ending in a flag-reading
    JNZ), from seeded random registers: every dropped update must have been dead, and
    every register held in a local stored back. Where the interpreter meets no fault the
    blocks must have run, not failed and been replayed (``outcomes``)."""
    import random

    rng = random.Random(14)
    clean = 0
    for _ in range(40):
        body = "".join(rng.choice(pool) for _ in range(rng.randint(2, 24)))
        setup = "".join(f"{0xb8 + r:02x}" + (DATA if r == 5 else rng.getrandbits(32) & (
            0xFFF if r == 6 else 0xFFFFFFFF)).to_bytes(4, "little").hex()
                        for r in range(8) if r != 4)
        code = bytes.fromhex(setup + body + "7500" + "f4")
        interpreted = machine(code, 0, kind)
        expected = state(interpreted, interpreted.run(200))
        outcomes.clear()
        compiled, cpu = second_run(code, 200, kind)  # a block from its first instruction
        assert compiled == expected, body
        assert cpu.icache[frame(kind, CODE)].block.length >= 7  # the setup: one block
        if expected[5] is None:  # no fault: nothing to replay
            assert outcomes and all(isinstance(ran, int) for ran in outcomes), (body, outcomes)
            clean += 1
    assert clean >= 20  # most programs run clean: the check above is not vacuous


def test_no_block_starts_at_a_barrier() -> None:
    cpu = machine(bytes.fromhex("fa f4"), 0)  # cli; hlt
    assert compile_block(cpu, CODE, CODE) is NO_BLOCK


def test_show_prints_the_block_at_an_address(capsys: pytest.CaptureFixture) -> None:
    from reference.blocks import show

    assert show.main(["--code", "01d8 83c307 39d8 75f7"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# block at linear 0x00001000\ndef block(cpu, eip, budget):")
    assert "+5: 39 d8  CMP_Ev_Gv" in text and "JNZ_Jb" in text
    assert show.main(["--code", "fa"]) == 1  # CLI: no block
    assert "no block starts at 0x1000" in capsys.readouterr().err


def test_every_barrier_names_a_mnemonic_of_the_table() -> None:
    """A misspelt barrier would let that instruction into a block (far transfers were)."""
    from reference.blocks.compiler import BARRIERS
    from reference.isa.table import FORMS

    assert BARRIERS <= {form.mnemonic for form in FORMS}


@pytest.mark.parametrize("code", ["ea 00 20 00 00 08 00",   # jmp far 0008:00002000
                                  "9a 00 20 00 00 08 00",   # call far
                                  "cb", "fa", "9d", "cd 80"])  # retf, cli, popf, int 0x80
def test_no_block_holds_a_far_transfer_or_an_if_change(code: str) -> None:
    cpu = machine(bytes.fromhex("40 41 " + code + " 42 f4"), 0)  # inc eax; inc ecx; X; ...
    block = compile_block(cpu, CODE, CODE)
    assert block.length == 2  # the two INCs, and the block stops before X
