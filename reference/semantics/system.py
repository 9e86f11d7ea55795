"""System instructions (SDM Vol. 2, each instruction's Operation; Vol. 3A, 2.8).

Privileged ones (MOV CRn, LMSW, CLTS, LGDT, LIDT, LLDT, LTR, INVLPG, INVD, WBINVD,
RDMSR, WRMSR) raise #GP(0) unless CPL = 0; real-address mode runs at CPL 0. LLDT, SLDT,
LTR, STR, LAR, LSL, VERR, VERW and ARPL exist only in protected mode (#UD in real mode).
The mechanisms they drive live in ``reference.system``; this file is the instructions.
"""

from __future__ import annotations

from typing import Optional

from reference.cpu import Cpu, SystemSegment
from reference.faults import GP, NP, UD, Fault
from reference.flags import IF, RF, VM
from reference.operands import CS, SS, Operand
from reference.semantics import implements
from reference.semantics.flagops import current_privilege
from reference.system import control_registers as cr
from reference.system import msr
from reference.system.descriptors import (
    LDT,
    Descriptor,
    descriptor_address,
    is_null,
    read_descriptor,
)
from reference.system.segmentation import DescriptorLoader
from reference.system.tss import check_tss_descriptor

EAX, ECX, EDX = 0, 1, 2


def require_cpl0(cpu: Cpu) -> None:
    """#GP(0) unless CPL = 0 (always true in real-address mode)."""
    if current_privilege(cpu) != 0:
        raise Fault(GP, 0)


def require_protected(cpu: Cpu) -> None:
    """#UD in real-address mode (the instruction is not recognized there)."""
    if cpu.mode != "prot32":
        raise Fault(UD)


# -- control registers (SDM Vol. 2B, MOV—Move to/from Control Registers; LMSW; SMSW) ---
@implements("MOV_Rd_Cd", "MOV_Cd_Rd", "MOV_Rd_Dd", "MOV_Dd_Rd")
def mov_control(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := SRC between a general register and CR0/CR2/CR3/CR4 or DR0-DR7, at
    CPL 0."""
    require_cpl0(cpu)
    dst.write(src.read())


@implements("CLTS")
def clts(cpu: Cpu) -> None:
    """CR0.TS := 0 (after a task switch, the x87 state is the current task's again)."""
    require_cpl0(cpu)
    cpu.cr0 &= ~cr.TS


@implements("LMSW")
def lmsw(cpu: Cpu, src: Operand) -> None:
    """CR0[3:0] := SRC[3:0] (PE, MP, EM, TS), except that LMSW cannot clear PE."""
    require_cpl0(cpu)
    low = src.read() & 0xF
    value = (cpu.cr0 & ~0xE) | (low & 0xE) | (low & cr.PE)
    cr.write_cr0(cpu, value)


@implements("SMSW")
def smsw(cpu: Cpu, dst: Operand) -> None:
    """DEST := CR0[15:0] to memory; a 32-bit register receives the whole of CR0 (the
    SDM leaves its upper half undefined; P6 and later CPUs store CR0[31:16] there)."""
    dst.write(cpu.cr0 & dst.mask)


# -- descriptor-table registers (SDM Vol. 2A, LGDT/LIDT and SGDT/SIDT) ----------------
def _load_pseudo_descriptor(cpu: Cpu, src: Operand) -> tuple:
    """(base, limit) from m16&32; with a 16-bit operand size only 24 bits of base."""
    limit = src.part(0, 16).read()
    base = src.part(2, 32).read()
    if cpu.insn.opsize == 16:
        base &= 0xFFFFFF
    return base, limit


def _store_pseudo_descriptor(cpu: Cpu, dst: Operand, table: tuple) -> None:
    """m16&32 := limit, base; with a 16-bit operand size the sixth byte is 0."""
    base, limit = table
    if cpu.insn.opsize == 16:
        base &= 0xFFFFFF
    dst.part(0, 16).write(limit)
    dst.part(2, 32).write(base)


@implements("LGDT")
def lgdt(cpu: Cpu, src: Operand) -> None:
    """GDTR := m16&32. From here on protected-mode selectors name GDT/LDT descriptors
    (the CPU's table-less flat model ends)."""
    require_cpl0(cpu)
    cpu.gdtr = _load_pseudo_descriptor(cpu, src)
    if not cpu.segment_loader.tables:
        cpu.segment_loader = DescriptorLoader()


@implements("LIDT")
def lidt(cpu: Cpu, src: Operand) -> None:
    """IDTR := m16&32 (in real mode, the IVT's base and limit)."""
    require_cpl0(cpu)
    cpu.idtr = _load_pseudo_descriptor(cpu, src)


@implements("SGDT")
def sgdt(cpu: Cpu, dst: Operand) -> None:
    """m16&32 := GDTR (not privileged on a P6: no UMIP)."""
    _store_pseudo_descriptor(cpu, dst, cpu.gdtr)


@implements("SIDT")
def sidt(cpu: Cpu, dst: Operand) -> None:
    """m16&32 := IDTR."""
    _store_pseudo_descriptor(cpu, dst, cpu.idtr)


# -- LDTR and TR (SDM Vol. 2A, LLDT/SLDT/LTR/STR) --------------------------------------
@implements("LLDT")
def lldt(cpu: Cpu, src: Operand) -> None:
    """LDTR := SRC: a GDT selector of a present LDT descriptor, or null (no LDT)."""
    require_protected(cpu)
    require_cpl0(cpu)
    selector = src.read()
    if is_null(selector):
        cpu.ldtr = SystemSegment(selector)
        return
    error = selector & 0xFFFC
    if selector & 4:
        raise Fault(GP, error)
    descriptor = read_descriptor(cpu, selector)
    if descriptor.s or descriptor.type != LDT:
        raise Fault(GP, error)
    if not descriptor.present:
        raise Fault(NP, error)
    cpu.ldtr = SystemSegment(selector, descriptor.base, descriptor.limit, descriptor.attr)


@implements("LTR")
def ltr(cpu: Cpu, src: Operand) -> None:
    """TR := SRC: a GDT selector of a present, available TSS, which is marked busy."""
    require_protected(cpu)
    require_cpl0(cpu)
    selector = src.read()
    if is_null(selector):
        raise Fault(GP, 0)
    descriptor = read_descriptor(cpu, selector)
    check_tss_descriptor(selector, descriptor)
    cpu.write_system(descriptor.address + 5, 1, ((descriptor.high >> 8) & 0xFF) | 2)
    cpu.tr = SystemSegment(selector, descriptor.base, descriptor.limit,
                           descriptor.attr | 0x200)


@implements("SLDT")
def sldt(cpu: Cpu, dst: Operand) -> None:
    """DEST := LDTR's selector (zero-extended into a 32-bit register)."""
    require_protected(cpu)
    dst.write(cpu.ldtr.selector)


@implements("STR")
def str_(cpu: Cpu, dst: Operand) -> None:
    """DEST := TR's selector (zero-extended into a 32-bit register)."""
    require_protected(cpu)
    dst.write(cpu.tr.selector)


# -- access checks (SDM Vol. 2A, LAR/LSL; Vol. 2B, VERR/VERW; ARPL) ---------------------
LAR_SYSTEM_TYPES = (1, 2, 3, 4, 5, 9, 11, 12)  # TSS, LDT, call and task gates
LSL_SYSTEM_TYPES = (1, 2, 3, 9, 11)            # TSS and LDT: the ones with a limit


def _visible(cpu: Cpu, selector: int, system_types: tuple) -> Optional[Descriptor]:
    """The descriptor LAR/LSL/VERR/VERW may look at, or None (then ZF := 0): inside its
    table, of an allowed type, and, unless conforming code, with DPL >= CPL and RPL."""
    if is_null(selector) or descriptor_address(cpu, selector) < 0:
        return None
    descriptor = read_descriptor(cpu, selector)
    if not descriptor.s and descriptor.type not in system_types:
        return None
    if not descriptor.conforming and (descriptor.dpl < cpu.cpl
                                      or descriptor.dpl < selector & 3):
        return None
    return descriptor


@implements("LAR")
def lar(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """IF the descriptor is visible THEN DEST := its access rights (high dword AND
    00FxFF00H; the low word alone with a 16-bit operand), ZF := 1 ELSE ZF := 0."""
    require_protected(cpu)
    descriptor = _visible(cpu, src.read(), LAR_SYSTEM_TYPES)
    cpu.flags.zf = descriptor is not None
    if descriptor is not None:
        dst.write(descriptor.high & 0x00FFFF00 & dst.mask)


@implements("LSL")
def lsl(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """IF the descriptor is visible THEN DEST := its limit scaled by G (low 16 bits with
    a 16-bit operand), ZF := 1 ELSE ZF := 0."""
    require_protected(cpu)
    descriptor = _visible(cpu, src.read(), LSL_SYSTEM_TYPES)
    cpu.flags.zf = descriptor is not None
    if descriptor is not None:
        dst.write(descriptor.limit & dst.mask)


@implements("VERR")
def verr(cpu: Cpu, src: Operand) -> None:
    """ZF := 1 if the segment is readable at the current CPL and the selector's RPL."""
    require_protected(cpu)
    descriptor = _visible(cpu, src.read(), ())
    cpu.flags.zf = descriptor is not None and descriptor.readable


@implements("VERW")
def verw(cpu: Cpu, src: Operand) -> None:
    """ZF := 1 if the segment is writable data at the current CPL and the RPL."""
    require_protected(cpu)
    descriptor = _visible(cpu, src.read(), ())
    cpu.flags.zf = (descriptor is not None and descriptor.writable
                    and not descriptor.conforming)


@implements("ARPL")
def arpl(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """IF DEST.RPL < SRC.RPL THEN ZF := 1, DEST.RPL := SRC.RPL ELSE ZF := 0."""
    require_protected(cpu)
    value, wanted = dst.read(), src.read() & 3
    if value & 3 < wanted:
        dst.write((value & ~3) | wanted)
        cpu.flags.zf = 1
    else:
        cpu.flags.zf = 0


# -- caches and the TLB (SDM Vol. 2A, INVD, INVLPG, WBINVD) --------------------------
@implements("INVD", "WBINVD")
def invalidate_caches(cpu: Cpu) -> None:
    """Write back (WBINVD) and invalidate the caches: there are none to model."""
    require_cpl0(cpu)


@implements("INVLPG")
def invlpg(cpu: Cpu, address: Operand) -> None:
    """Invalidate the TLB entry for the page holding the operand's linear address (the
    operand is not accessed: no fault for its page), global or not."""
    require_cpl0(cpu)
    linear = (cpu.seg_base[address.seg] + address.offset()) & 0xFFFFFFFF
    if cpu.tlb is not None:
        cpu.tlb.invalidate(linear)


# -- MSRs and performance counters (SDM Vol. 2B, RDMSR/WRMSR/RDPMC) -------------------
@implements("RDMSR")
def rdmsr(cpu: Cpu) -> None:
    """EDX:EAX := MSR[ECX]."""
    require_cpl0(cpu)
    value = msr.read_msr(cpu, cpu.regs[ECX])
    cpu.regs[EAX], cpu.regs[EDX] = value & 0xFFFFFFFF, value >> 32


@implements("WRMSR")
def wrmsr(cpu: Cpu) -> None:
    """MSR[ECX] := EDX:EAX."""
    require_cpl0(cpu)
    msr.write_msr(cpu, cpu.regs[ECX], (cpu.regs[EDX] << 32) | cpu.regs[EAX])


@implements("RDPMC")
def rdpmc(cpu: Cpu) -> None:
    """EDX:EAX := performance counter ECX (0 or 1 on a P6, 40 bits). CR4.PCE is not
    supported, so outside CPL 0 it is #GP(0); so is any other counter number."""
    if cpu.regs[ECX] not in (0, 1) or current_privilege(cpu) != 0:
        raise Fault(GP, 0)
    value = msr.read_msr(cpu, msr.IA32_PERFCTR0 + cpu.regs[ECX])
    cpu.regs[EAX], cpu.regs[EDX] = value & 0xFFFFFFFF, (value >> 32) & 0xFF


# -- fast system calls (SDM Vol. 2B, SYSENTER/SYSEXIT) --------------------------------
FLAT_CODE = 0xCF9B00  # present, DPL 0, execute/read accessed, 32-bit, 4 GiB
FLAT_DATA = 0xCF9300  # present, DPL 0, read/write accessed, 32-bit, 4 GiB


def _flat_segments(cpu: Cpu, cs: int, dpl: int) -> None:
    """The fixed flat CS and SS that SYSENTER/SYSEXIT load without reading the GDT."""
    privilege = dpl << 13
    cpu.save_segment(CS)
    cpu.cpl = dpl
    cpu.set_segment_cache(CS, cs, 0, 0xFFFFFFFF, FLAT_CODE | privilege)
    cpu.set_segment_cache(SS, (cs + 8) & 0xFFFF, 0, 0xFFFFFFFF, FLAT_DATA | privilege)


@implements("SYSENTER")
def sysenter(cpu: Cpu) -> None:
    """To CPL 0: CS := SYSENTER_CS (RPL 0), SS := CS + 8, EIP/ESP := SYSENTER_EIP/ESP;
    VM, IF and RF cleared (from virtual-8086 mode too). #GP(0) in real mode or with
    SYSENTER_CS null."""
    selector = msr.read_msr(cpu, msr.IA32_SYSENTER_CS)
    if cpu.mode == "real16" or is_null(selector):
        raise Fault(GP, 0)
    cpu.flags.value &= ~(VM | IF | RF)
    _flat_segments(cpu, selector & 0xFFFC, 0)
    cpu.eip = msr.read_msr(cpu, msr.IA32_SYSENTER_EIP)
    cpu.regs[4] = msr.read_msr(cpu, msr.IA32_SYSENTER_ESP)


@implements("SYSEXIT")
def sysexit(cpu: Cpu) -> None:
    """To CPL 3: CS := SYSENTER_CS + 16 (RPL 3), SS := SYSENTER_CS + 24 (RPL 3),
    EIP := EDX, ESP := ECX. #GP(0) in real mode, at CPL > 0, or with SYSENTER_CS null."""
    selector = msr.read_msr(cpu, msr.IA32_SYSENTER_CS)
    if cpu.mode != "prot32" or current_privilege(cpu) != 0 or is_null(selector):
        raise Fault(GP, 0)
    _flat_segments(cpu, ((selector + 16) & 0xFFFC) | 3, 3)
    cpu.eip = cpu.regs[EDX]
    cpu.regs[4] = cpu.regs[ECX]

