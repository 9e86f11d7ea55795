"""Debug registers DR0-DR7 as far as MOV to/from them goes (SDM Vol. 3A, 17.2).

DR0-DR3 hold breakpoint addresses, DR6 the status, DR7 the control. CR4.DE is not
supported, so DR4 and DR5 are aliases of DR6 and DR7 (17.2.2). Reserved bits read as
the P6 fixes them: DR6 bits 4-11 and 16-31 are 1, bit 12 is 0; DR7 bit 10 is 1 and bits
11, 12, 14, 15 are 0. With DR7.GD set, the next MOV to or from a debug register raises
#DB with DR6.BD set and GD cleared, before it executes (17.2.4).

Instruction breakpoints (17.2.4, 17.3.1.1): before an instruction starts with RF clear,
a breakpoint of DR0-DR3 enabled in DR7 (Ln or Gn) with R/W = 00 (execute) at the
instruction's linear address raises #DB as a fault, DR6.Bn set; the step loop asks
``instruction_breakpoint``. Single-step (EFLAGS.TF) is in the step loop.

Data breakpoints (17.2.4-17.2.5, 17.3.1.2): R/W = 01 watches data writes, 11 data reads
and writes (not fetches); LEN 00/01/11 covers 1, 2 or 4 bytes, the processor masking the
low address bits of DRn by LEN (17.2.5: "it uses LENn field bits to mask the lower
address bits"), and any byte of an access inside that range matches. They are traps:
the instruction completes, then #DB with DR6.Bn set for each match. ``watch`` turns DR7
and DR0-DR3 into two tuples of ranges on the CPU (``watch_reads``, ``watch_writes``),
empty when nothing is watched, so ``Cpu.read``/``Cpu.write`` pay one truth test; a match
ORs its Bn bit into ``cpu.watch_hits`` and ``step()`` delivers the trap. Left alone as
the SDM leaves them undefined on the P6: LEN = 10, R/W = 10 (I/O, CR4.DE is not
supported), an execute breakpoint with LEN other than 00. Only enabled breakpoints set
their B bit (the SDM lets a CPU set the others too: 17.2.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

from reference.faults import DB, Fault

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

DR6_FIXED_ONES, DR6_WRITABLE = 0xFFFF0FF0, 0x0000E00F
DR7_FIXED_ONES, DR7_WRITABLE = 0x00000400, 0xFFFF23FF
DR6_BD, DR7_GD = 1 << 13, 1 << 13
RESET = (0, 0, 0, 0, DR6_FIXED_ONES, DR7_FIXED_ONES)  # DR0-DR3, DR6, DR7


def _slot(number: int) -> int:
    """Index into ``cpu.dr`` (DR0-DR3, DR6, DR7): DR4/DR5 alias DR6/DR7."""
    return number if number < 4 else 4 + (number & 1)


def _general_detect(cpu: Cpu) -> None:
    if cpu.dr[5] & DR7_GD:
        cpu.dr[4] |= DR6_BD
        cpu.dr[5] &= ~DR7_GD
        raise Fault(DB)


def read_dr(cpu: Cpu, number: int) -> int:
    _general_detect(cpu)
    return cpu.dr[_slot(number)]


def write_dr(cpu: Cpu, number: int, value: int) -> None:
    _general_detect(cpu)
    slot = _slot(number)
    if slot == 4:
        value = (value & DR6_WRITABLE) | DR6_FIXED_ONES
    elif slot == 5:
        value = (value & DR7_WRITABLE) | DR7_FIXED_ONES
    cpu.dr[slot] = value & 0xFFFFFFFF
    if slot != 4:  # a breakpoint address or DR7 changed
        watch(cpu)


DR7_ENABLES = 0xFF  # L0 G0 ... L3 G3


def instruction_breakpoint(cpu: Cpu, linear: int) -> None:
    """#DB (a fault: nothing of the instruction has run) when an enabled execute
    breakpoint of DR0-DR3 is at ``linear``; DR6.Bn is set for each one that matched
    (the SDM lets a CPU clear or keep the other B bits: 17.2.3, they are kept). LEN must
    be 00 for an execute breakpoint (17.2.5); other lengths are not matched."""
    dr7 = cpu.dr[5]
    hits = 0
    for n in range(4):
        if dr7 >> 2 * n & 3 and not dr7 >> 16 + 4 * n & 0xF and cpu.dr[n] == linear:
            hits |= 1 << n
    if hits:
        cpu.dr[4] |= hits
        raise Fault(DB)


Ranges = Tuple[Tuple[int, int, int], ...]  # (first byte, byte after the last, DR6 Bn bit)
RW_WRITES, RW_READS_WRITES = 0b01, 0b11
LEN_BYTES = {0b00: 1, 0b01: 2, 0b11: 4}  # 0b10 is undefined on the P6 (17.2.4)


def watched_ranges(dr: list) -> Tuple[Ranges, Ranges]:
    """(ranges a read matches, ranges a write matches) of the data breakpoints that DR7
    (``dr[5]``) enables with Ln or Gn over DR0-DR3, each DRn aligned down to its LEN."""
    dr7 = dr[5]
    reads, writes = [], []
    for n in range(4):
        rw, length = dr7 >> 16 + 4 * n & 3, dr7 >> 18 + 4 * n & 3
        if not dr7 >> 2 * n & 3 or rw not in (RW_WRITES, RW_READS_WRITES):
            continue
        size = LEN_BYTES.get(length)
        if size is None:
            continue
        first = dr[n] & ~(size - 1)
        entry = (first, first + size, 1 << n)
        writes.append(entry)
        if rw == RW_READS_WRITES:
            reads.append(entry)
    return tuple(reads), tuple(writes)


def watch(cpu: Cpu) -> None:
    """Recompute what ``Cpu.read``/``Cpu.write`` watch from DR0-DR3 and DR7. MOV DRn
    calls it; code that assigns ``cpu.dr`` directly (state loaders) must call it too."""
    cpu.watch_reads, cpu.watch_writes = watched_ranges(cpu.dr)


def data_hits(ranges: Ranges, linear: int, nbytes: int) -> int:
    """DR6 B bits of the ``ranges`` that an access of ``nbytes`` at ``linear`` touches
    (any byte in common)."""
    linear &= 0xFFFFFFFF
    end = linear + nbytes
    hits = 0
    for first, after, bit in ranges:
        if linear < after and first < end:
            hits |= bit
    return hits
