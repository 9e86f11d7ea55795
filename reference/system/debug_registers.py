"""Debug registers DR0-DR7 as far as MOV to/from them goes (SDM Vol. 3A, 17.2).

DR0-DR3 hold breakpoint addresses, DR6 the status, DR7 the control. CR4.DE is not
supported, so DR4 and DR5 are aliases of DR6 and DR7 (17.2.2). Reserved bits read as
the P6 fixes them: DR6 bits 4-11 and 16-31 are 1, bit 12 is 0; DR7 bit 10 is 1 and bits
11, 12, 14, 15 are 0. With DR7.GD set, the next MOV to or from a debug register raises
#DB with DR6.BD set and GD cleared, before it executes (17.2.4).

Instruction breakpoints (17.2.4, 17.3.1.1): before an instruction starts with RF clear,
a breakpoint of DR0-DR3 enabled in DR7 (Ln or Gn) with R/W = 00 (execute) at the
instruction's linear address raises #DB as a fault, DR6.Bn set; the step loop asks
``instruction_breakpoint``. Data breakpoints (R/W = 01 or 11) are not modelled yet: they
need every memory access checked. Single-step (EFLAGS.TF) is in the step loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
