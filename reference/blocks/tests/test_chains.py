"""Blocks in a row (``reference.step.run``'s chains): the block at the new EIP runs at once,
the chain shares one entry state, and a fault in a later block replays the whole chain
through the interpreter, ending in the interpreter's state. Standard library only (runs
under PyPy)."""

from __future__ import annotations

from typing import List

import pytest

from reference import step as step_module
from reference.blocks.tests.machines import CODE, DATA, KINDS, both, second_run

SECOND = CODE + 0x100


def program(second: str) -> bytes:
    """mov ebx, SECOND; inc eax; inc eax; jmp ebx (a block that ends at an indirect jump)
    | at SECOND: ``second``, then hlt."""
    first = "bb" + SECOND.to_bytes(4, "little").hex() + "4040ffe3"
    code = bytes.fromhex(first)
    return code + bytes(0x100 - len(code)) + bytes.fromhex(second + "f4")


# inc ecx; inc ecx; mov edx, [esi]; inc ecx; inc ecx: with ESI = NOWHERE (no page there,
# past the RAM of the flat machine) the read faults inside the second block; with ESI in
# DATA it does not
NOWHERE = 0x800000
READ = "4141" + "8b16" + "4141"


def _restores(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """The EIPs ``run()`` puts the state back to when a block raised."""
    seen: List[int] = []
    original = step_module._restore

    def restore(cpu, eip, regs, flags):  # type: ignore[no-untyped-def]
        seen.append(eip)
        original(cpu, eip, regs, flags)

    monkeypatch.setattr(step_module, "_restore", restore)
    return seen


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_in_a_row_end_in_the_interpreters_state(
        kind: str, outcomes: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """(That the second block ran in the first one's chain shows in the next test.)"""
    restores = _restores(monkeypatch)
    code = program("be" + DATA.to_bytes(4, "little").hex() + READ)  # mov esi, DATA; ...
    state, cpu = second_run(code, 100, kind, block_runs=2)
    assert outcomes == [4, 6, 4, 6] and not restores
    assert cpu.regs[0] == 2 and cpu.regs[1] == 4
    interpreted, _ = both(code, 100, kind)
    assert state == interpreted


@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_in_a_later_block_replays_the_chain_from_its_start(
        kind: str, outcomes: list, monkeypatch: pytest.MonkeyPatch) -> None:
    restores = _restores(monkeypatch)
    code = program("be" + NOWHERE.to_bytes(4, "little").hex() + READ)  # the read faults
    state, _cpu = second_run(code, 100, kind, block_runs=2)
    assert outcomes[0] == 4 and isinstance(outcomes[1], Exception)  # made, not chained
    assert outcomes[2] == 4 and isinstance(outcomes[3], Exception)  # chained
    # besides the faulting MOV's own (interpreter and step()), one restore a block run:
    # to the second block's start when it was made, then to the chain's start
    assert [eip for eip in restores if eip != SECOND + 7] == [SECOND, CODE]
    interpreted, _ = both(code, 100, kind)
    assert state == interpreted


@pytest.mark.parametrize("kind", KINDS)
def test_a_loop_block_ends_a_chain(kind: str, outcomes: list) -> None:
    """mov ebx, LOOP; mov ecx, 3; mov edx, THIRD; inc dword [DATA]; jmp ebx | LOOP: dec
    ecx; jnz LOOP; jmp edx | THIRD: mov esi, NOWHERE; inc eax; mov eax, [esi] (faults).
    Each pass of the loop block starts the write journal afresh, so had the third block
    been chained after it, its fault would have put the registers back to the first
    block's start without undoing the first block's INC, and the replay would have
    added 1 twice."""
    loop, third = CODE + 0x100, CODE + 0x200
    first = ("bb" + loop.to_bytes(4, "little").hex() + "b903000000"
             + "ba" + third.to_bytes(4, "little").hex()
             + "ff05" + DATA.to_bytes(4, "little").hex() + "ffe3")
    code = bytes.fromhex(first)
    code += bytes(0x100 - len(code)) + bytes.fromhex("4975fd" + "ffe2")
    code += bytes(0x200 - len(code)) + bytes.fromhex(
        "be" + NOWHERE.to_bytes(4, "little").hex() + "40" + "8b06" + "f4")
    state, _cpu = second_run(code, 100, kind, block_runs=2)
    assert outcomes[:2] == [5, 7]  # the loop block: three passes of DEC JNZ, then JMP
    interpreted, _ = both(code, 100, kind)
    assert state == interpreted
