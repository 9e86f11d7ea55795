"""Data movement: MOV MOVZX MOVSX XCHG CMPXCHG CMPXCHG8B XADD BSWAP LEA CMOVcc SETcc
LAHF SAHF CBW/CWDE CWD/CDQ LDS/LES/LSS/LFS/LGS (SDM Vol. 2A/2B). The stack forms are in
``stack.py``."""

from __future__ import annotations

from reference.cpu import Cpu
from reference.operands import DS, ES, FS, GS, SS, FarMem, Mem, Operand
from reference.semantics import implements


@implements("MOV", "MOVZX")
def mov(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := SRC (MOVZX: zero-extended; a selector into a 32-bit register likewise)."""
    dst.write(src.read())


@implements("MOVSX")
def movsx(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := SignExtend(SRC)."""
    dst.write(src.sign(src.read()) & dst.mask)


@implements("XCHG")
def xchg(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """TEMP := DEST; DEST := SRC; SRC := TEMP."""
    temp = dst.read()
    dst.write(src.read())
    src.write(temp)


def _accumulator(cpu: Cpu, size: int) -> int:
    return cpu.regs[0] & ((1 << size) - 1)


@implements("CMPXCHG")
def cmpxchg(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """Compare AL/AX/EAX with DEST (flags as CMP). Equal: ZF := 1, DEST := SRC. Not
    equal: ZF := 0, accumulator := DEST. DEST is written either way (SDM: "the
    destination operand is written back if the comparison fails")."""
    temp = dst.read()
    acc = _accumulator(cpu, dst.size)
    cpu.flags.after_sub(acc, temp, acc - temp, dst.size)
    if acc == temp:
        dst.write(src.read())
    else:
        dst.write(temp)
        cpu.set_reg({8: "al", 16: "ax", 32: "eax"}[dst.size], temp)


@implements("CMPXCHG8B")
def cmpxchg8b(cpu: Cpu, dst: Operand) -> None:
    """IF EDX:EAX = m64 THEN ZF := 1; m64 := ECX:EBX ELSE ZF := 0; EDX:EAX := m64;
    m64 := m64 (written back). Only ZF changes."""
    temp = dst.read()
    regs = cpu.regs
    if temp == (regs[2] << 32) | regs[0]:
        dst.write((regs[1] << 32) | regs[3])
        cpu.flags.zf = 1
    else:
        dst.write(temp)
        regs[0], regs[2] = temp & 0xFFFFFFFF, temp >> 32
        cpu.flags.zf = 0


@implements("XADD")
def xadd(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """TEMP := SRC + DEST; SRC := DEST; DEST := TEMP; flags as ADD. A memory DEST is
    addressed before SRC changes (SRC may be its base register), so it is written
    first; XADD r, r with one register twice leaves the sum, so DEST is written last."""
    a, b = dst.read(), src.read()
    total = a + b
    if dst.is_mem:
        dst.write(total & dst.mask)
        src.write(a)
    else:
        src.write(a)
        dst.write(total & dst.mask)
    cpu.flags.after_add(a, b, total, dst.size)


@implements("BSWAP")
def bswap(cpu: Cpu, dst: Operand) -> None:
    """Reverse the byte order of a 32-bit register. With a 16-bit operand size the SDM
    calls the result undefined; real CPUs clear the low word, and so do we."""
    if dst.size == 16:
        dst.write(0)
        return
    dst.write(int.from_bytes(dst.read().to_bytes(4, "little"), "big"))


@implements("LEA")
def lea(cpu: Cpu, dst: Operand, src: Mem) -> None:
    """DEST := effective address of SRC, truncated or zero-extended to the operand size."""
    dst.write(src.offset() & dst.mask)


@implements("CMOVcc")
def cmovcc(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """TEMP := SRC (always read, so a memory source can fault); IF condition THEN DEST :=
    TEMP. A false condition leaves a 32-bit destination untouched outside 64-bit mode."""
    temp = src.read()
    if cpu.flags.condition(cpu.insn.cond):
        dst.write(temp)


@implements("SETcc")
def setcc(cpu: Cpu, dst: Operand) -> None:
    """IF condition THEN DEST := 1 ELSE DEST := 0."""
    if cpu.flags.condition(cpu.insn.cond):
        dst.write(1)
    else:
        dst.write(0)


@implements("LAHF")
def lahf(cpu: Cpu) -> None:
    """AH := EFLAGS(SF:ZF:0:AF:0:PF:1:CF)."""
    cpu.set_reg("ah", (cpu.flags.value & 0xD5) | 0x02)


@implements("SAHF")
def sahf(cpu: Cpu) -> None:
    """EFLAGS(SF:ZF:0:AF:0:PF:1:CF) := AH."""
    cpu.flags.set_status(cpu.get_reg("ah"), 0xD5)


@implements("CBW")
def cbw(cpu: Cpu) -> None:
    """CBW: AX := SignExtend(AL); CWDE (32-bit operand size): EAX := SignExtend(AX)."""
    if cpu.insn.opsize == 16:
        al = cpu.get_reg("al")
        cpu.set_reg("ax", al | (0xFF00 if al & 0x80 else 0))
    else:
        ax = cpu.get_reg("ax")
        cpu.regs[0] = ax | (0xFFFF0000 if ax & 0x8000 else 0)


@implements("CWD")
def cwd(cpu: Cpu) -> None:
    """CWD: DX := sign of AX, repeated; CDQ (32-bit operand size): EDX := sign of EAX."""
    if cpu.insn.opsize == 16:
        cpu.set_reg("dx", 0xFFFF if cpu.regs[0] & 0x8000 else 0)
    else:
        cpu.regs[2] = 0xFFFFFFFF if cpu.regs[0] & 0x80000000 else 0



_FAR_LOADS = {"LDS": DS, "LES": ES, "LSS": SS, "LFS": FS, "LGS": GS}


@implements(*_FAR_LOADS)
def load_far_pointer(cpu: Cpu, dst: Operand, src: FarMem) -> None:
    """SREG := SegmentSelector(SRC); DEST := Offset(SRC). The segment is loaded first,
    so a selector the segment loader refuses leaves DEST untouched."""
    offset, selector = src.read(), src.selector
    cpu.load_segment(_FAR_LOADS[cpu.insn.form.mnemonic], selector)
    dst.write(offset)
