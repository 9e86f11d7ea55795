"""Small machines for the block tests: the same program with blocks compiled at once
(threshold 1) or never (threshold 0), on three memories, since generated code lowers its
memory accesses differently for each (``reference.blocks.access``):

- ``sparse``: the test memory of 4 KiB pages (accesses stay calls);
- ``flat``: the PC's RAM with its PCI hole (``MemoryMap``), linear = physical;
- ``paged``: the same RAM behind 32-bit paging, the code, data and stack pages mapped to
  frames far apart and out of order, so a wrong translation shows.
"""

from __future__ import annotations

import hashlib
from typing import Tuple

from reference import Cpu, SparseMemory
from reference.pc.memory_map import MemoryMap
from reference.system.control_registers import write_cr

CODE, DATA, STACK_TOP = 0x1000, 0x2000, 0x4000
KINDS = ("sparse", "flat", "paged")
RAM = 0x100000
PAGE_DIRECTORY, PAGE_TABLE = 0x80000, 0x81000
FRAMES = {CODE: 0x47000, DATA: 0x23000, STACK_TOP - 0x1000: 0x35000, DATA + 0x2000: 0x12000}
"""Linear page -> physical frame under ``paged`` (each page of the program, and one
more data page for accesses that cross from one frame into another)."""
PTE_FLAGS = 0x67  # present, writable, user, accessed, dirty


def data_bytes() -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(0x1000))


def frame(kind: str, linear: int) -> int:
    """Where the page at ``linear`` lives in physical memory for ``kind``."""
    return FRAMES[linear] if kind == "paged" else linear


def machine(code: bytes, threshold: int, kind: str = "sparse") -> Cpu:
    """A flat 32-bit protected-mode CPU with ``code`` at CODE, the data page at DATA
    (and DATA + 0x2000 under ``paged``) and a stack page below STACK_TOP."""
    if kind == "sparse":
        memory = SparseMemory()
        for base in (CODE, DATA, STACK_TOP - 0x1000):
            memory.map(base, b"")
        cpu = Cpu(memory, mode="prot32")
    else:
        cpu = Cpu(MemoryMap(RAM), mode="prot32")
    cpu.mem.write_bytes(frame(kind, CODE), code)
    cpu.mem.write_bytes(frame(kind, DATA), data_bytes())
    if kind == "paged":
        cpu.mem.write_bytes(frame(kind, DATA + 0x2000), bytes(reversed(data_bytes())))
        cpu.mem.write_int(PAGE_DIRECTORY, 4, PAGE_TABLE | PTE_FLAGS)
        for page, physical in FRAMES.items():
            cpu.mem.write_int(PAGE_TABLE + 4 * (page >> 12), 4, physical | PTE_FLAGS)
        cpu.cr3 = PAGE_DIRECTORY
        write_cr(cpu, 0, cpu.cr0 | (1 << 31))
    cpu.block_threshold = threshold
    cpu.set_reg("eip", CODE)
    cpu.set_reg("esp", STACK_TOP)
    return cpu


def state(cpu: Cpu, result: object) -> tuple:
    pages = cpu.mem.pages()
    memory = hashlib.sha256(b"".join(pages[base] for base in sorted(pages))).hexdigest()
    exception = getattr(result, "exception", None)
    halted = getattr(result, "halted", None)
    return (list(cpu.regs), cpu.eip, cpu.flags.value, cpu.tsc, memory, exception, halted)


def both(code: bytes, limit: int, kind: str = "sparse") -> Tuple[tuple, tuple]:
    """(interpreter's state, blocks' state) after ``run(limit)`` on ``code``."""
    outcomes = []
    for threshold in (0, 1):
        cpu = machine(code, threshold, kind)
        outcomes.append(state(cpu, cpu.run(limit)))
    return outcomes[0], outcomes[1]


def second_run(code: bytes, limit: int, kind: str, block_runs: int = 1) -> tuple:
    """(the state after ``run(limit)``, the CPU) of ``code`` run once by the interpreter
    (which decodes it) and then again from the same start with blocks made at once, so
    a block starts at its first instruction (a first run meets no decoded code); with
    ``block_runs`` > 1, that many times from the same start (the last run finds every
    block made: a block is made when ``run()`` reaches its first instruction)."""
    cpu = machine(code, 0, kind)
    memory = cpu.mem.pages()
    cpu.run(limit)
    for _ in range(block_runs):
        for base, page in memory.items():
            cpu.mem.write_bytes(base, page)
        cpu.regs[:] = [0] * 8
        cpu.set_reg("esp", STACK_TOP)
        cpu.flags.value, cpu.eip, cpu.tsc, cpu.halted = 2, CODE, 0, False
        cpu.block_threshold = 1
        result = cpu.run(limit)
    return state(cpu, result), cpu
