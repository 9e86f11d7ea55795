"""Model-specific registers (SDM Vol. 4, "Model-Specific Registers"; Vol. 2B, RDMSR).

Only the MSRs a P6 has and Linux reads or writes on one are here; any other index is
#GP(0), as the SDM says for a reserved or unimplemented MSR. The time-stamp counter is
the CPU's virtual clock (``cpu.tsc``, instructions retired), never the host's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from reference.faults import GP, Fault

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

IA32_TSC = 0x10
IA32_PLATFORM_ID = 0x17
EBL_CR_POWERON = 0x2A
IA32_BIOS_SIGN_ID = 0x8B  # microcode revision: 0, no update loaded
IA32_PERFCTR0, IA32_PERFCTR1 = 0xC1, 0xC2
IA32_SYSENTER_CS, IA32_SYSENTER_ESP, IA32_SYSENTER_EIP = 0x174, 0x175, 0x176
IA32_PERFEVTSEL0, IA32_PERFEVTSEL1 = 0x186, 0x187
IA32_MISC_ENABLE = 0x1A0

# index -> (value after reset, bits software may write). Read-only registers have
# writable 0 and ignore writes (a P6 ignores writes to PLATFORM_ID and BIOS_SIGN_ID
# other than the microcode-update protocol's, which leaves the revision at 0 here).
REGISTERS: Dict[int, tuple] = {
    IA32_PLATFORM_ID: (0, 0),
    EBL_CR_POWERON: (0, 0),
    IA32_BIOS_SIGN_ID: (0, 0),
    IA32_PERFCTR0: (0, 0xFFFFFFFFFF),
    IA32_PERFCTR1: (0, 0xFFFFFFFFFF),
    IA32_SYSENTER_CS: (0, 0xFFFF),
    IA32_SYSENTER_ESP: (0, 0xFFFFFFFF),
    IA32_SYSENTER_EIP: (0, 0xFFFFFFFF),
    IA32_PERFEVTSEL0: (0, 0xFFFFFFFF),
    IA32_PERFEVTSEL1: (0, 0xFFFFFFFF),
    IA32_MISC_ENABLE: (0, 0),
}


def read_msr(cpu: Cpu, index: int) -> int:
    """RDMSR: the 64-bit value of MSR ``index``; #GP(0) if this CPU has no such MSR."""
    if index == IA32_TSC:
        return cpu.tsc & 0xFFFFFFFFFFFFFFFF
    if index not in REGISTERS:
        raise Fault(GP, 0)
    return cpu.msr.get(index, REGISTERS[index][0])


def write_msr(cpu: Cpu, index: int, value: int) -> None:
    """WRMSR: MSR ``index`` := value (bits it does not implement are dropped); #GP(0)
    if this CPU has no such MSR."""
    if index == IA32_TSC:
        cpu.tsc = value & 0xFFFFFFFFFFFFFFFF
        return
    if index not in REGISTERS:
        raise Fault(GP, 0)
    reset, writable = REGISTERS[index]
    if writable:
        cpu.msr[index] = value & writable
