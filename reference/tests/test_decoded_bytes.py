"""Instructions recalled by their bytes (``reference.step._recall``): the same bytes at
another address reuse the first decoding instead of decoding again, so they must run
exactly as a fresh decoding would, keep their own per-address counters, and never cross
CS.D (the same bytes mean another instruction in 16-bit code)."""

from __future__ import annotations

from reference import Cpu, SparseMemory
from reference.cpu import DB_BIT
from reference.operands import CS

MOV_EAX = bytes.fromhex("b8 78 56 34 12")  # 32-bit code: MOV EAX, 0x12345678
ADD_EAX_1 = bytes.fromhex("05 01 00 00 00")  # ADD EAX, 1


def test_same_bytes_elsewhere_run_as_decoded_and_keep_their_own_counters() -> None:
    mem = SparseMemory()
    mem.map(0x1000, (MOV_EAX + ADD_EAX_1) * 2)
    cpu = Cpu(mem, mode="prot32")
    cpu.set_reg("eip", 0x1000)
    assert cpu.run(4) is None
    # 0x12345678, +1, reloaded, +1 (independent arithmetic)
    assert cpu.get_reg("eax") == 0x12345679
    assert cpu.get_reg("eip") == 0x1014
    first, again = cpu.icache[0x1000], cpu.icache[0x100A]
    assert first is not again
    assert again.raw == MOV_EAX and again.length == 5
    assert again.operands is first.operands  # recalled, not decoded again
    # the first copy was decoded (and run) by step(); the second ran on run()'s fast
    # path, which counts its executions towards a block only when blocks are on
    assert first.hits == 0
    assert again.hits == (1 if cpu.block_threshold else 0) and again.block is None


def test_recalled_bytes_do_not_cross_the_code_size() -> None:
    """B8 78 56 34 12 is MOV EAX, imm32 in 32-bit code; in 16-bit code it is
    MOV AX, 0x5678 then XOR AL, 0x12 (SDM Vol. 2: B8+rw iw, 34 ib)."""
    mem = SparseMemory()
    mem.map(0x1000, MOV_EAX + MOV_EAX)
    cpu = Cpu(mem, mode="prot32")
    cpu.set_reg("eip", 0x1000)
    cpu.run(1)
    assert cpu.get_reg("eax") == 0x12345678
    cpu.seg_attr[CS] &= ~DB_BIT  # a 16-bit code segment from here on
    cpu.derive_sizes()
    cpu.set_reg("eax", 0)
    cpu.run(2)
    assert cpu.get_reg("eax") == 0x5678 ^ 0x12
    assert cpu.get_reg("eip") == 0x100A


def test_a_recalled_instruction_copies_every_field_but_the_counters() -> None:
    from reference.isa.decoder import Insn
    mem = SparseMemory()
    mem.map(0x1000, ADD_EAX_1 * 2)
    cpu = Cpu(mem, mode="prot32")
    cpu.set_reg("eip", 0x1000)
    cpu.run(2)
    first, again = cpu.icache[0x1000], cpu.icache[0x1005]
    for name in Insn.__slots__:
        if name not in ("hits", "block"):
            assert getattr(again, name) is getattr(first, name), name
