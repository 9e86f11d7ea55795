"""Control registers CR0, CR2, CR3, CR4 (SDM Vol. 3A, 2.5 "Control Registers").

Writing CR0 can switch between real-address and protected mode (PE) and turn paging on
or off (PG): the mode changes at run time, between instructions, and the hidden segment
caches keep what they hold, exactly as SDM Vol. 3A, 9.9 "Mode Switching" relies on. A
write to CR3 flushes the TLB except global pages (CR4.PGE); a change of PG, PE, WP,
PSE or PGE flushes it whole (4.10.4.1). CR2 only receives #PF addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference.faults import GP, Fault

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

# CR0 (Figure 2-7).
PE, MP, EM, TS, ET, NE = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5
WP, AM, NW, CD, PG = 1 << 16, 1 << 18, 1 << 29, 1 << 30, 1 << 31
CR0_DEFINED = PE | MP | EM | TS | ET | NE | WP | AM | NW | CD | PG
# CR3: the page directory base and its cache bits PWT (3) and PCD (4).
CR3_DEFINED = 0xFFFFF018
# CR4 (Figure 2-7): the bits a P6 without VME/PVI/DE/PAE/MCE/PCE support here has.
TSD, PSE, PGE, OSFXSR, OSXMMEXCPT = 1 << 2, 1 << 4, 1 << 7, 1 << 9, 1 << 10
CR4_DEFINED = TSD | PSE | PGE | OSFXSR | OSXMMEXCPT
# Bits whose change alters every translation (4.10.4.1).
_TRANSLATION_BITS = PE | PG | WP


def read_cr(cpu: Cpu, number: int) -> int:
    """The value of CRn (n in 0, 2, 3, 4)."""
    return (cpu.cr0, 0, cpu.cr2, cpu.cr3, cpu.cr4)[number]


def write_cr(cpu: Cpu, number: int, value: int) -> None:
    """CRn := value, with the checks of MOV CRn (SDM Vol. 2B, MOV—Move to/from Control
    Registers): reserved bits set -> #GP(0); CR0.PG without PE, or NW without CD ->
    #GP(0)."""
    value &= 0xFFFFFFFF
    if number == 0:
        write_cr0(cpu, value)
    elif number == 2:
        cpu.cr2 = value
    elif number == 3:
        cpu.cr3 = value & CR3_DEFINED
        flush_tlb(cpu, keep_global=True)
    else:
        if value & ~CR4_DEFINED:
            raise Fault(GP, 0)
        changed = cpu.cr4 ^ value
        cpu.cr4 = value
        if changed & (PSE | PGE):
            flush_tlb(cpu, keep_global=False)


def write_cr0(cpu: Cpu, value: int) -> None:
    """CR0 := value. ET is hard-wired to 1 on a P6; setting PG with PE clear or NW with
    CD clear is #GP(0); bits outside the architected ones are reserved (#GP(0))."""
    if value & ~CR0_DEFINED & 0xFFFFFFFF:
        raise Fault(GP, 0)
    if (value & PG and not value & PE) or (value & NW and not value & CD):
        raise Fault(GP, 0)
    value |= ET
    changed = cpu.cr0 ^ value
    cpu.cr0 = value
    if changed & PE:
        cpu.mode = "prot32" if value & PE else "real16"
        cpu.forget_all_code()  # decoding and fetch checks depend on the mode
    if changed & _TRANSLATION_BITS:
        from reference.system.paging import set_paging
        set_paging(cpu, bool(value & PG))


def flush_tlb(cpu: Cpu, keep_global: bool) -> None:
    """Forget cached translations (global ones stay when ``keep_global`` and CR4.PGE).
    Decoded instructions stay: they are cached by physical address, and every fetch
    finds them through a translation again."""
    if cpu.tlb is not None:
        cpu.tlb.flush(keep_global=keep_global and bool(cpu.cr4 & PGE))
