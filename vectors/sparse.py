"""Shrink a case's memory to the bytes the instruction reads, so a vector stays small.

Generated cases map whole pages of random bytes; written out as they are, a vector would
list ~4096 ``[address, byte]`` pairs per page. The instruction reads only a few of them.
``reads`` runs the case once on the reference with a memory that records every read
(instruction fetch included); ``sparse_case`` keeps those bytes and sets every other
byte to one fill value. The caller re-runs the sparse case on both engines and keeps it
only if they still agree, so an access the reference fails to make cannot slip through.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Dict, Set

from differential.case import PAGE_SIZE, Case
from reference import Cpu, SparseMemory, Unimplemented


class _TracingMemory(SparseMemory):
    """SparseMemory that remembers which linear addresses were read (not journal reads,
    which the CPU makes before a write to be able to roll it back)."""

    def __init__(self) -> None:
        super().__init__()
        self.read_addresses: Set[int] = set()

    def read_bytes(self, address: int, count: int, access: str = "read") -> bytes:
        if access != "write":
            self.read_addresses.update((address + i) & 0xFFFFFFFF for i in range(count))
        return super().read_bytes(address, count, access)


def reads(case: Case) -> Set[int]:
    """Linear addresses the reference reads while running ``case`` (empty if it cannot)."""
    memory = _TracingMemory()
    for base, data in case.memory.items():
        memory.map(base, data)
    cpu = Cpu(memory, mode=case.mode)
    for name, value in case.regs.items():
        cpu.set_reg(name, value)
    try:
        cpu.step()
    except Unimplemented:
        return set()
    return memory.read_addresses


def code_addresses(case: Case) -> Set[int]:
    """Where ``case.code`` sits: CS base + EIP onwards. The generator may draw more bytes
    than the instruction uses; they stay, so memory still holds ``case.code`` as the
    runner interface promises (Unicorn translates up to its end)."""
    start = ((case.regs.get("cs", 0) << 4) if case.mode == "real16" else 0) + case.regs["eip"]
    return {(start + i) & 0xFFFFFFFF for i in range(len(case.code))}


def sparse_case(case: Case) -> Case:
    """The same case with every byte the instruction does not read set to one fill byte
    (the most common byte of the original pages, so all-00/all-FF pages stay as they were)."""
    kept = reads(case) | code_addresses(case)
    counts: Counter = Counter()
    for data in case.memory.values():
        counts.update(data)
    fill = counts.most_common(1)[0][0] if counts else 0
    memory: Dict[int, bytes] = {}
    for base, data in case.memory.items():
        page = bytearray([fill]) * PAGE_SIZE
        for address in kept:
            if base <= address < base + PAGE_SIZE:
                page[address - base] = data[address - base]
        memory[base] = bytes(page)
    return replace(case, memory=memory)
