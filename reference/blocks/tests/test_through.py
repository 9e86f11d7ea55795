"""Blocks that go through a JMP or CALL to a target on their own page
(``reference.blocks.layout.THROUGH``): the instructions at the target follow the branch
in the same block, and every result is the interpreter's."""

from __future__ import annotations

import random

import pytest

from reference.blocks.tests.machines import (
    CODE,
    DATA,
    KINDS,
    STACK_TOP,
    both,
    machine,
    second_run,
)
from reference.blocks.tests.test_blocks import FLAG_POOL, MEMORY_POOL
from reference.cpu import CS

# 00: mov eax, 1; 05: jmp 0c; 07: (skipped) add eax, 100; nop; nop
# 0c: call 1b; 11: add ebx, eax; 13: hlt; 14: nop x7; 1b: lea eax, [eax+eax+3]; 1f: ret
JUMPS = bytes.fromhex("b8 01 00 00 00  eb 05  83 c0 64 90 90  e8 0a 00 00 00  01 c3  f4"
                      "90 90 90 90 90 90 90  8d 44 00 03  c3")
EXECUTED = 7  # mov, jmp, call, lea, ret, add, hlt


@pytest.mark.parametrize("kind", KINDS)
def test_a_block_goes_through_a_jmp_and_a_call_on_its_page(kind: str) -> None:
    """One block holds MOV, the JMP, the CALL and the function it calls up to its RET
    (SDM Vol. 2A, CALL: pushes the next instruction's EIP): EAX = 2 * 1 + 3 = 5, the ADD
    after the return makes EBX = 5, the return address CODE + 0x11 is left below
    STACK_TOP and ESP is back, and the skipped ADD never ran."""
    compiled, cpu = second_run(JUMPS, 100, kind)
    interpreted, _ = both(JUMPS, 100, kind)
    assert compiled == interpreted
    regs, eip, tsc, halted = compiled[0], compiled[1], compiled[3], compiled[6]
    assert (regs[0], regs[3], regs[4]) == (5, 5, STACK_TOP) and halted
    assert tsc == EXECUTED and eip == CODE + 0x14
    assert cpu.read(3, STACK_TOP - 4, 4) == CODE + 0x11
    block = cpu.icache[cpu.code_physical(CODE)].block
    assert block is not None and block.length == 5 and block.span == 0x20


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("limit", range(1, EXECUTED + 2))
def test_a_budget_inside_such_a_block_stops_on_the_same_instruction(limit: int,
                                                                    kind: str) -> None:
    compiled, _ = second_run(JUMPS, limit, kind)
    interpreted, _ = both(JUMPS, limit, kind)
    assert compiled == interpreted and compiled[3] == min(limit, EXECUTED)


def shuffled(chunks: list) -> bytes:
    """``chunks`` (hex strings) laid out last first, each ending in a JMP (rel32) to the
    next one, the first reached from a JMP at the start and the last ending in JNZ +0
    and HLT: the code runs in order, jumping forwards and backwards on one page."""
    tail = "75 00 f4"
    pieces = [bytes.fromhex(chunk) for chunk in chunks]
    placed = []  # (offset, bytes) from offset 5 on, last chunk first
    offset = 5
    for index in reversed(range(len(pieces))):
        length = len(pieces[index]) + (len(bytes.fromhex(tail)) if index == len(pieces) - 1
                                       else 5)
        placed.append((index, offset))
        offset += length
    where = {index: offset for index, offset in placed}
    code = bytearray(b"\xe9" + (where[0] - 5).to_bytes(4, "little", signed=True))
    for index, start in sorted(placed, key=lambda pair: pair[1]):
        body = pieces[index]
        if index == len(pieces) - 1:
            body += bytes.fromhex(tail)
        else:
            end = start + len(body) + 5
            body += b"\xe9" + (where[index + 1] - end).to_bytes(4, "little", signed=True)
        code += body
    return bytes(code)


@pytest.mark.parametrize("kind", KINDS)
def test_random_code_laid_out_out_of_order_matches_the_interpreter(kind: str,
                                                                   outcomes: list) -> None:
    """Seeded random mixes of flag, memory and stack forms (``test_blocks``' pools) in
    two to five chunks placed in reverse order and joined by JMPs: the flag updates a
    block drops across its JMPs must have been dead, and each instruction's EIP (the
    pushes of the stack forms read none, but faults and the end do) is its own. Where
    the interpreter meets no fault the blocks must have run, not failed and been
    replayed (``outcomes``)."""
    rng = random.Random(1405)
    pool = FLAG_POOL + MEMORY_POOL
    clean = 0
    for _ in range(30):
        chunks = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 8)))
                  for _ in range(rng.randint(2, 5))]
        setup = "".join(f"{0xb8 + r:02x}" + (DATA if r == 5 else rng.getrandbits(32) & (
            0xFFF if r == 6 else 0xFFFFFFFF)).to_bytes(4, "little").hex()
                        for r in range(8) if r != 4)
        code = bytes.fromhex(setup) + shuffled(chunks)
        outcomes.clear()
        compiled, cpu = second_run(code, 300, kind)
        ran = list(outcomes)
        interpreted, _ = both(code, 300, kind)
        assert compiled == interpreted, chunks
        assert cpu.icache[cpu.code_physical(CODE)].block.length >= 7 + len(chunks)
        if interpreted[5] is None:  # no fault: nothing to replay
            assert ran and all(isinstance(count, int) for count in ran), (chunks, ran)
            clean += 1
    assert clean >= 10  # most programs run clean: the check above is not vacuous


# 00: inc eax; 01: xor ecx, ecx (its bytes at EIP 0xFFFFFFFF and 0); 03: hlt;
# 04: inc edx  <- the start, at EIP 1; 05: jmp 00 (EIP 1 + 3 - 6 wraps to 0xFFFFFFFE)
WRAPPING = bytes.fromhex("40 31 c9 f4 42 eb f9")


def test_a_block_reaching_back_below_eip_zero_wraps_as_the_interpreter_does() -> None:
    """With CS based at CODE + 3 the block's start is EIP 1 and its JMP goes to EIP
    0xFFFFFFFE (SDM Vol. 2A, JMP: the target is truncated to 32 bits), where XOR's two
    bytes straddle EIP 0xFFFFFFFF and 0; the block's EIPs (start + offset, masked to 32
    bits) wrap the same way, and both paths end alike, HLT at EIP 0."""
    outcomes = []
    for threshold in (0, 1):
        cpu = machine(WRAPPING, 0, "sparse")
        cpu.seg_base[CS] = CODE + 3
        for _ in range(2):  # the first run decodes, the second may make a block
            cpu.eip, cpu.tsc, cpu.halted = 1, 0, False
            cpu.regs[:] = [0, 0x55, 0, 0, STACK_TOP, 0, 0, 0]
            result = cpu.run(20)
            cpu.block_threshold = threshold
        outcomes.append((list(cpu.regs), cpu.eip, cpu.tsc, result.halted,
                         getattr(result.exception, "vector", None)))
        if threshold:
            block = cpu.icache[CODE + 4].block
            assert block is not None and block.length == 4  # INC EDX, JMP, INC EAX, XOR
    assert outcomes[0] == outcomes[1] == ([1, 0, 1, 0, STACK_TOP, 0, 0, 0], 1, 5, True, None)
