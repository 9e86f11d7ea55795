"""Miscellaneous instructions: NOP forms, WAIT, CPUID, RDTSC, UD2, HLT, XLAT, SALC, IN/OUT.

CPUID describes a P6-class processor that claims only what this emulator really does
(see ``cpuid``); RDTSC counts retired instructions so a recorded run replays exactly.
Port I/O goes to ``cpu.io_in``/``cpu.io_out``, which the system level (the PC's device
bus) provides; without them an I/O instruction is a gap (``Unimplemented``), not a guest
error.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from reference.cpu import Cpu
from reference.faults import GP, UD, Fault, Unimplemented
from reference.flags import IOPL
from reference.isa.table import FORMS
from reference.operands import DS, Operand
from reference.semantics import implements, lookup
from reference.semantics.flagops import current_privilege
from reference.system.control_registers import TSD
from reference.system.tss import io_permitted

EAX, ECX, EDX, EBX = 0, 1, 2, 3

# CPUID identity (SDM Vol. 2A, CPUID, Table 3-8 and Figure 3-6). GenuineIntel family 6,
# model 1 is the Pentium Pro, the first P6: the oldest identity whose instruction set
# (CMOV, CMPXCHG8B, RDTSC) matches what the reference implements, and one Linux's i686
# code paths know. Stepping 0 marks it as not a real part.
VENDOR = b"GenuineIntel"
FAMILY, MODEL, STEPPING = 6, 1, 0
MAX_BASIC_LEAF = 1
# The x87 instruction set as the table has it: every row of the escape opcodes D8-DF
# (SDM Vol. 2A, A.4: the x87 FPU instructions) and WAIT/FWAIT (9B), which waits on the
# FPU's pending exceptions. FXSAVE/FXRSTOR (0F AE) belong to FXSR, bit 24, not claimed.
X87_FORMS = tuple(f.name for f in FORMS if 0xD8 <= f.enc.opcode[0] <= 0xDF or f.name == "WAIT")
# CPUID.1:EDX feature bit -> the forms that must all have semantics for it to be set.
# FPU says an x87 is on chip: a kernel without math emulation (Linux 686) refuses to boot
# without it. PSE and PGE are paging features (reference/system/paging.py implements
# both; the forms named are the ones that enable and use them). VME, DE, MCE, APIC, MTRR,
# PAT, PAE describe parts the reference does not have, so they stay clear (a guest then
# uses its own fallbacks). SEP on family 6 model 1 stepping 0 is ignored by Linux (it
# distrusts SEP below model 3), which is right: the SDM says those parts lacked it.
FEATURE_FORMS: Dict[int, Tuple[str, ...]] = {
    0: X87_FORMS,                                                   # FPU
    3: ("MOV_Cd_Rd",),                  # PSE: 4 MiB pages (system/paging.py)
    4: ("RDTSC",),                                                  # TSC
    5: ("RDMSR", "WRMSR"),                                          # MSR
    8: ("CMPXCHG8B_Mq",),                                           # CX8
    11: ("SYSENTER", "SYSEXIT"),                                    # SEP
    13: ("MOV_Cd_Rd", "INVLPG_Mb"),     # PGE: global pages (system/tlb.py)
    15: tuple(f.name for f in FORMS if f.mnemonic == "CMOVcc"),     # CMOV
}
_features: Optional[int] = None


def feature_bits() -> int:
    """CPUID.1:EDX, from the registry: a bit is set only when every form behind it has
    semantics, so CPUID can never promise an instruction that would then be a gap."""
    global _features
    if _features is None:
        by_name = {form.name: form for form in FORMS}
        _features = 0
        for bit, names in FEATURE_FORMS.items():
            if names and all(lookup(by_name[name]) is not None for name in names):
                _features |= 1 << bit
    return _features


def _le32(text: bytes) -> int:
    return int.from_bytes(text, "little")


@implements("CPUID")
def cpuid(cpu: Cpu) -> None:
    """EAX, EBX, ECX, EDX := the leaf selected by EAX. A leaf above the maximum returns
    the highest basic leaf, as Intel documents (this includes 0x80000000: a P6 has no
    extended leaves, and its answer is then not of the form 0x8000xxxx)."""
    leaf = cpu.regs[EAX]
    if leaf > MAX_BASIC_LEAF:
        leaf = MAX_BASIC_LEAF
    if leaf == 0:  # max leaf, then the vendor string in EBX, EDX, ECX order
        values = (MAX_BASIC_LEAF, _le32(VENDOR[0:4]), _le32(VENDOR[8:12]),
                  _le32(VENDOR[4:8]))
    else:  # signature, EBX (brand/APIC id 0), ECX (no features), EDX (features)
        values = ((FAMILY << 8) | (MODEL << 4) | STEPPING, 0, 0, feature_bits())
    cpu.regs[EAX], cpu.regs[EBX], cpu.regs[ECX], cpu.regs[EDX] = values


@implements("RDTSC")
def rdtsc(cpu: Cpu) -> None:
    """EDX:EAX := TimeStampCounter. Here the counter is the number of instructions
    retired (``cpu.tsc``): deterministic, so runs replay, and monotonic as the SDM asks.
    With CR4.TSD set it is privileged: #GP(0) in protected mode at CPL > 0."""
    if cpu.cr4 & TSD and current_privilege(cpu) != 0:
        raise Fault(GP, 0)
    tsc = cpu.tsc & 0xFFFFFFFFFFFFFFFF
    cpu.regs[EAX] = tsc & 0xFFFFFFFF
    cpu.regs[EDX] = tsc >> 32


@implements("NOP")
def nop(cpu: Cpu, *operands: Operand) -> None:
    """No operation. 0F 1F /r names an r/m operand only to set the length: the SDM's
    multi-byte NOP never accesses it, so a memory operand here cannot fault. (WAIT is
    an x87 instruction: reference/x87/environment.py.)"""


@implements("UD2")
def ud2(cpu: Cpu) -> None:
    """#UD, always: the architecturally reserved invalid opcode."""
    raise Fault(UD)


@implements("HLT")
def hlt(cpu: Cpu) -> None:
    """Enter the halt state until an interrupt; privileged: #GP(0) unless CPL = 0.
    EIP already points past HLT, where execution resumes after the interrupt."""
    if current_privilege(cpu) != 0:
        raise Fault(GP, 0)
    cpu.halted = True


@implements("XLAT")
def xlat(cpu: Cpu) -> None:
    """AL := seg:[eBX + ZeroExtend(AL)]; DS unless overridden, BX or EBX by address
    size (the sum wraps at that size)."""
    mask = 0xFFFFFFFF if cpu.insn.adsize == 32 else 0xFFFF
    seg = DS if cpu.insn.seg is None else cpu.insn.seg
    offset = (cpu.regs[EBX] + (cpu.regs[EAX] & 0xFF)) & mask
    cpu.regs[EAX] = (cpu.regs[EAX] & ~0xFF) | cpu.read(seg, offset, 1)


@implements("SALC")
def salc(cpu: Cpu) -> None:
    """AL := FF if CF else 00 (undocumented, on every IA-32 CPU; flags unchanged)."""
    cpu.regs[EAX] = (cpu.regs[EAX] & ~0xFF) | (0xFF if cpu.flags.cf else 0)


def check_io(cpu: Cpu, port: int, size: int) -> None:
    """Protected mode with CPL > IOPL, and virtual-8086 mode whatever IOPL: #GP(0)
    unless the TSS's I/O permission bit map allows every port accessed (SDM Vol. 1,
    19.5; Vol. 3B, 20.2.8.1: "the I/O permission bit map ... is always checked")."""
    iopl = (cpu.flags.value & IOPL) >> 12
    if cpu.mode == "vm86" or (cpu.mode == "prot32" and current_privilege(cpu) > iopl):
        if not io_permitted(cpu, port, size):
            raise Fault(GP, 0)


def port_in(cpu: Cpu, port: int, size: int) -> int:
    """Read ``size`` bits from I/O ``port`` through the system level's bus."""
    check_io(cpu, port, size)
    reader = getattr(cpu, "io_in", None)  # added by the system level, absent in tests
    if reader is None:
        raise Unimplemented(f"IN from port {port:#x}: no I/O bus (cpu.io_in)")
    return reader(port, size) & ((1 << size) - 1)


def port_out(cpu: Cpu, port: int, size: int, value: int) -> None:
    """Write ``size`` bits to I/O ``port``; same privilege rule as ``port_in``."""
    check_io(cpu, port, size)
    writer = getattr(cpu, "io_out", None)
    if writer is None:
        raise Unimplemented(f"OUT to port {port:#x}: no I/O bus (cpu.io_out)")
    writer(port, size, value)


@implements("IN")
def in_(cpu: Cpu, dst: Operand, port: Operand) -> None:
    """AL/eAX := IN(port); the port is imm8 or DX."""
    dst.write(port_in(cpu, port.read(), dst.size))


@implements("OUT")
def out(cpu: Cpu, port: Operand, src: Operand) -> None:
    """OUT(port) := AL/eAX; the port is imm8 or DX."""
    port_out(cpu, port.read(), src.size, src.read())
