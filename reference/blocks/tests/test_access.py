"""Memory accesses written out in generated code (``reference.blocks.access``): each
case where the fast test must say no (a page crossing into another frame, the segment
limit, the PCI hole, a clean page, a page of decoded code, a fault after a store) ends
as the interpreter ends, with the value the memory model gives independently.
Standard library only, so it runs under PyPy too."""

from __future__ import annotations

import re

import pytest

from reference.blocks import access
from reference.blocks.compiler import block_source
from reference.blocks.tests.machines import (
    CODE,
    DATA,
    FRAMES,
    KINDS,
    PAGE_TABLE,
    both,
    data_bytes,
    frame,
    machine,
)
from reference.faults import GP
from reference.pc.memory_map import PCI_HOLE

LOOP = "b9 03 00 00 00"  # mov ecx, 3: each body runs three times, compiled from the second
AGAIN = "49 75 {back:02x} f4"  # dec ecx; jnz body; hlt


def looped(body: str) -> bytes:
    """``body`` run three times (so a block is made from it and runs), then HLT."""
    code = bytes.fromhex(body)
    back = (-(len(code) + 3)) & 0xFF
    return bytes.fromhex(LOOP) + code + bytes.fromhex(AGAIN.format(back=back))


def test_the_lowering_follows_the_memory() -> None:
    """Accesses stay calls on the sparse test memory; RAM is read directly when linear is
    physical, and through the fast TLB maps under paging."""
    code = looped("8b 45 08 89 45 0c")  # mov eax, [ebp+8]; mov [ebp+12], eax
    texts = {}
    for kind in KINDS:
        cpu = machine(code, 0, kind)
        texts[kind] = block_source(cpu, CODE + 5)
        assert access.mode_of(cpu) == {"sparse": None, "flat": "flat:012345",
                                       "paged": "paged:012345"}[kind]
    assert "M_ram" not in texts["sparse"] and "cpu.read(2," in texts["sparse"]
    assert re.search(r"M_journal\.append\(\((M_\w+), M_ram\[\1:\1 \+ 4\]\)\)", texts["flat"])
    assert "M_rd" not in texts["flat"]
    assert "M_rd_2.get(" in texts["paged"] and "M_wr_2.get(" in texts["paged"]
    assert "cpu.read(2, M_a, 4)" in texts["paged"]  # the way out, for what is not plain
    for kind in ("flat", "paged"):  # SS flat: linear is the offset, no limit test
        assert "M_limit" not in texts[kind] and "M_base" not in texts[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_a_signed_read_is_written_out_too(kind: str) -> None:
    """MOVSX and IDIV read memory into an operand's signed view (``Operand.sign``), and
    those reads are written out like any other. data_bytes holds 7i + 3 at byte i:
    MOVSX ESI, word [EBP] gets 0x0A03; MOVSX EBX, byte [EBP+0x12] gets 0x81, so
    0xFFFFFF81; IDIV divides EDX:EAX = -2^31 (CDQ) by the dword at [EBP+0x10],
    0x88817A73, a negative number (SDM Vol. 2A, IDIV: quotient truncated toward zero,
    the remainder takes the dividend's sign)."""
    body = ("bd" + DATA.to_bytes(4, "little").hex() + "0f bf 75 00  0f be 5d 12"
            "b8 00 00 00 80  99  f7 7d 10")
    code = looped(body)
    interpreted, compiled = both(code, 10_000, kind)
    assert compiled == interpreted and interpreted[6] is True
    data = data_bytes()
    divisor = int.from_bytes(data[0x10:0x14], "little") - (1 << 32)
    dividend = -(1 << 31)
    quotient = abs(dividend) // abs(divisor) * (1 if (dividend < 0) == (divisor < 0) else -1)
    remainder = dividend - quotient * divisor
    regs = compiled[0]
    assert regs[6] == int.from_bytes(data[0:2], "little") == 0x0A03
    assert regs[3] == (data[0x12] - 0x100) & 0xFFFFFFFF == 0xFFFFFF81
    assert (regs[0], regs[2]) == (quotient & 0xFFFFFFFF, remainder & 0xFFFFFFFF)
    text = block_source(machine(code, 0, kind), CODE + 5)
    assert text.count("cpu.read(") == 3  # each read's way out (or, sparse, the read)
    assert text.count(".sign(M_r") == (0 if kind == "sparse" else 3)


@pytest.mark.parametrize("kind", ["flat", "paged"])
def test_a_dword_across_two_pages_joins_both(kind: str) -> None:
    """[0x2FFE] holds the data page's last two bytes and the stack page's first two;
    under paging those pages are frames far apart (FRAMES), so the block's read and
    write must each take the call, which translates both halves."""
    code = looped("bd fe 2f 00 00 8b 45 00 40 89 45 00")  # [0x2ffe] += 1, via eax
    interpreted, compiled = both(code, 10_000, kind)
    assert compiled == interpreted and interpreted[6] is True
    cpu = machine(code, 1, kind)
    cpu.run(10_000)
    low, high = ((FRAMES[DATA], FRAMES[0x3000]) if kind == "paged" else (DATA, 0x3000))
    value = cpu.mem.read_int(low + 0xFFE, 2) | cpu.mem.read_int(high, 2) << 16
    assert value == int.from_bytes(data_bytes()[0xFFE:] + bytes(2), "little") + 3


@pytest.mark.parametrize("kind", KINDS)
def test_beyond_the_segment_limit_is_a_general_protection_fault(kind: str) -> None:
    """DS limited to 0x2FFF (its hidden cache as a descriptor load leaves it): a dword
    at 0x2FFE runs past it, #GP(0) (SDM Vol. 3A, 5.3), from inside the block too."""
    code = looped(FAR_LOAD)
    outcomes = []
    for threshold in (0, 1):
        cpu = machine(code, threshold, kind)
        cpu.seg_limit[3] = cpu.seg_wlimit[3] = 0x2FFF
        result = cpu.run(10_000)
        outcomes.append((list(cpu.regs), cpu.eip, result.exception))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][2].vector == GP and outcomes[0][2].error_code == 0
    assert outcomes[0][1] == CODE + 5 + 5 + 2 + 3  # the second load: 0x2ffe + 3 > 0x2fff


FAR_LOAD = "bb 00 2f 00 00 8b 03 83 c3 7f 8b 43 7f"  # [0x2f00], then a dword at [0x2ffe]
NEAR_LOAD = "bb 00 2f 00 00 8b 03 83 c3 7f 8b 43 71"  # [0x2f00], then [0x2ff0] (one page)


@pytest.mark.parametrize("kind", ["flat", "paged"])
def test_a_segment_limited_before_the_block_is_made_keeps_its_limit_test(kind: str) -> None:
    """DS is not flat when the block is made: its accesses test its base and limits."""
    cpu = machine(looped(FAR_LOAD), 0, kind)
    cpu.seg_limit[3] = cpu.seg_wlimit[3] = 0x2FFF
    assert "3" not in access.mode_of(cpu).partition(":")[2]
    text = block_source(cpu, CODE + 5)
    assert "M_limit_3" in text and "M_base_3" in text and "M_flat_3" not in text


@pytest.mark.parametrize("kind", ["flat", "paged"])
def test_a_segment_limited_after_the_block_was_made_faults_as_the_interpreter(
        kind: str) -> None:
    """The block is made while DS is flat (no limit test in its code); then DS's limit
    becomes 0x2FFF, as a descriptor load between two runs of the block could leave it.
    The block's prologue sees DS is no longer flat and every access to it takes the call,
    so the dword at 0x2FF0 (inside one page, so only the limit can stop it) is #GP(0)
    from inside the block, as interpreted."""
    code = looped(NEAR_LOAD)
    text = block_source(machine(code, 0, kind), CODE + 5)
    assert "M_flat_3" in text and "M_limit_3" not in text
    outcomes = []
    for threshold in (0, 1):
        cpu = machine(code, threshold, kind)
        cpu.run(1 + 6 + 6)  # MOV ECX, a pass decoded on the way, a pass in the block
        assert cpu.eip == CODE + 5 and cpu.get_reg("ecx") == 1
        made = cpu.icache[frame(kind, CODE) + 5].block
        assert (made is not None and made.length == 6) == bool(threshold)
        cpu.seg_limit[3] = cpu.seg_wlimit[3] = 0x2FEF
        result = cpu.run(10_000)
        outcomes.append((list(cpu.regs), cpu.eip, cpu.tsc, result.exception))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][3].vector == GP and outcomes[0][3].error_code == 0
    assert outcomes[0][1] == CODE + 5 + 5 + 2 + 3


def test_the_pci_hole_reads_all_ones_and_drops_writes() -> None:
    """Flat: a dword at 0xC0000000 is a master-aborted PCI cycle (all ones); the store
    before it vanishes. RAM is never indexed for it (the fast test checks the end)."""
    code = looped("bf 00 00 00 c0 89 0f 8b 07")  # mov edi, hole; mov [edi], ecx; mov eax, [edi]
    interpreted, compiled = both(code, 10_000, "flat")
    assert compiled == interpreted
    cpu = machine(code, 1, "flat")
    cpu.run(10_000)
    assert cpu.get_reg("eax") == 0xFFFFFFFF and cpu.mem.unclaimed == {PCI_HOLE}


def test_a_clean_page_is_written_through_the_walk_that_sets_its_dirty_bit() -> None:
    """Under paging a store through a PTE whose D bit is clear takes the call: the walk
    sets D (SDM Vol. 3A, 4.8), then the store lands."""
    code = looped("bd 00 20 00 00 89 4d 10")
    for threshold in (0, 1):
        cpu = machine(code, threshold, "paged")
        pte = PAGE_TABLE + 4 * (DATA >> 12)
        cpu.mem.write_int(pte, 4, FRAMES[DATA] | 0x27)  # present, RW, user, accessed
        cpu.run(10_000)
        assert cpu.mem.read_int(pte, 4) & 0x40  # dirty now
        assert cpu.mem.read_int(FRAMES[DATA] + 0x10, 4) == 1  # the last pass's ECX


@pytest.mark.parametrize("kind", KINDS)
def test_a_store_before_a_fault_in_the_block_is_undone(kind: str) -> None:
    """mov [ebp], ecx; then a load that faults (an unmapped page, or under paging a page
    not present): the block's store is rolled back and the interpreter replays both,
    so the store happens exactly once before the fault."""
    code = looped("bd 00 20 00 00 89 4d 00 8b 85 00 00 10 00")  # then [ebp + 1 MiB]
    interpreted, compiled = both(code, 10_000, kind)
    assert compiled == interpreted
    assert interpreted[5] is not None


@pytest.mark.parametrize("kind", ["flat", "paged"])
def test_a_block_made_for_one_stack_width_replays_under_the_other(kind: str) -> None:
    """A block with PUSH/POP is made for SS.B = 32; entered with a 16-bit stack it
    raises and its instructions replay one by one: SP wraps within 64 KiB."""
    code = looped("51 58")  # push ecx; pop eax
    outcomes = []
    for threshold in (0, 1):
        cpu = machine(code, threshold, kind)
        cpu.run(6)  # through the first pass and its next PUSH: the block at the PUSH
        # was made then (threshold 1), for SS.B = 32; the POP of that PUSH comes next
        cpu.stack_size = 16
        cpu.set_reg("esp", 0x12340000 | 0x3000)
        cpu.run(10_000)
        outcomes.append((list(cpu.regs), cpu.eip))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0][4] == 0x12343004  # POP, PUSH, POP: ESP's top half untouched
