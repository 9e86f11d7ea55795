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

from ground.case import PAGE_SIZE, Case
from reference import Cpu, SparseMemory, Unimplemented


class TracingError(RuntimeError):
    """The trace saw no instruction fetch: the reference reads memory some other way now."""


class _TracingMemory(SparseMemory):
    """SparseMemory that remembers which linear addresses were read (not journal reads,
    which the CPU makes before a write to be able to roll it back). Both read entry points
    are wrapped: the reference calls either, and may inline one into the other."""

    def __init__(self) -> None:
        super().__init__()
        self.read_addresses: Set[int] = set()

    def _note(self, address: int, count: int, access: str) -> None:
        if access != "write":
            self.read_addresses.update((address + i) & 0xFFFFFFFF for i in range(count))

    def read_bytes(self, address: int, count: int, access: str = "read") -> bytes:
        self._note(address, count, access)
        return super().read_bytes(address, count, access)

    def read_int(self, address: int, count: int, access: str = "read") -> int:
        self._note(address, count, access)
        return super().read_int(address, count, access)

    def code_window(self, address: int) -> bytes:
        """No bytes at once: the decoder's window (``SparseMemory.code_window``) reads
        up to 15, more than an instruction may have, so here it fetches each byte it
        reads (``read_int``) and only those are noted."""
        return b""


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


def code_addresses_start(case: Case) -> int:
    """Linear address of the instruction: CS base + EIP."""
    base = (case.regs.get("cs", 0) << 4) if case.mode == "real16" else 0
    return (base + case.regs["eip"]) & 0xFFFFFFFF


def code_addresses(case: Case) -> Set[int]:
    """Where ``case.code`` sits. The generator may draw more bytes than the instruction
    uses; they stay, so memory still holds ``case.code`` as the runner interface promises
    (Unicorn translates up to its end)."""
    start = code_addresses_start(case)
    return {(start + i) & 0xFFFFFFFF for i in range(len(case.code))}


def _mapped(case: Case, address: int) -> bool:
    return address - address % PAGE_SIZE in case.memory


def sparse_case(case: Case) -> Case:
    """The same case with every byte the instruction does not read set to one fill byte
    (the most common byte of the original pages, so all-00/all-FF pages stay as they were)."""
    seen, first = reads(case), code_addresses_start(case)
    if _mapped(case, first) and first not in seen:
        raise TracingError(f"{case.name}: the trace saw no fetch at {first:#x}; has the "
                           "reference's memory interface changed? (vectors/sparse.py)")
    kept = seen | code_addresses(case)
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
