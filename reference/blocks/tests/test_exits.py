"""A conditional branch's side exit (``layout.TAKEN``, ``snippets.branch_parts``): the
block sets EIP and ``cpu.insn`` and returns only where the branch is taken, and the
code runs in the block rather than being replayed through ``step()`` (a block that
raised would still end in the interpreter's state, so the state alone cannot tell).
Standard library only (runs under PyPy)."""

from __future__ import annotations

import pytest

from reference.blocks.tests.machines import CODE, KINDS, both, second_run

# xor eax, eax / (mov eax, 1); test eax, eax; jz +2; inc ebx; inc ebx; inc ecx; inc ecx; hlt
TAKEN = bytes.fromhex("31c0 85c0 7402 43 43 41 41 f4".replace(" ", ""))
NOT_TAKEN = bytes.fromhex("b801000000 85c0 7402 43 43 41 41 f4".replace(" ", ""))
# a loop whose JNZ back to its start has a JC side exit before it: ecx = 5;
# top: add eax, 0x40000000; jc out; dec ecx; jnz top; out: hlt
LOOP = bytes.fromhex("b905000000 0500000040 7203 49 75f6 f4".replace(" ", ""))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("program, counts, instructions, regs", [
    (TAKEN, [3, 2], 6, {0: 0, 1: 2, 3: 0}),       # XOR TEST JZ | INC INC | HLT stepped
    (NOT_TAKEN, [7], 8, {0: 1, 1: 2, 3: 2}),      # MOV TEST JZ INC INC INC INC | HLT
])
def test_a_side_exit_leaves_the_block_where_taken(kind: str, program: bytes, counts: list,
                                                  instructions: int, regs: dict,
                                                  outcomes: list) -> None:
    state, cpu = second_run(program, 100, kind)
    assert outcomes == counts
    assert state[3] == instructions
    assert {r: cpu.regs[r] for r in regs} == regs
    assert cpu.eip == CODE + len(program)
    interpreted, compiled = both(program, 100, kind)
    assert interpreted == compiled


@pytest.mark.parametrize("kind", KINDS)
def test_a_loop_leaves_at_its_side_exit(kind: str, outcomes: list) -> None:
    """EAX reaches 2**32 on the 4th pass: JC leaves the loop there with ECX = 2."""
    state, cpu = second_run(LOOP, 100, kind)
    assert all(isinstance(count, int) for count in outcomes), outcomes
    assert cpu.regs[0] == 0 and cpu.regs[1] == 2
    assert state[3] == 1 + 3 * 4 + 2 + 1  # MOV, three passes, ADD JC, HLT
    interpreted, compiled = both(LOOP, 100, kind)
    assert interpreted == compiled
