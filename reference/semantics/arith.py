"""Integer add/subtract family: ADD ADC SUB SBB CMP INC DEC NEG, and BOUND's signed
comparison (SDM Vol. 2A/2B).

Each body is the SDM's Operation line; ``cpu.flags.after_add``/``after_sub`` set OF SF
ZF AF PF CF from the operands and the unmasked result, as the Flags Affected sections
define them (INC/DEC leave CF alone).
"""

from __future__ import annotations

from reference.cpu import Cpu
from reference.faults import BR, Fault
from reference.operands import Mem, Operand
from reference.semantics import implements


@implements("ADD")
def add(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := DEST + SRC."""
    a, b = dst.read(), src.read()
    total = a + b
    dst.write(total & dst.mask)
    cpu.flags.after_add(a, b, total, dst.size)


@implements("ADC")
def adc(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := DEST + SRC + CF."""
    a, b = dst.read(), src.read()
    total = a + b + cpu.flags.cf
    dst.write(total & dst.mask)
    cpu.flags.after_add(a, b, total, dst.size)


@implements("SUB")
def sub(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := DEST - SRC."""
    a, b = dst.read(), src.read()
    total = a - b
    dst.write(total & dst.mask)
    cpu.flags.after_sub(a, b, total, dst.size)


@implements("SBB")
def sbb(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := DEST - (SRC + CF)."""
    a, b = dst.read(), src.read()
    total = a - b - cpu.flags.cf
    dst.write(total & dst.mask)
    cpu.flags.after_sub(a, b, total, dst.size)


@implements("CMP")
def cmp(cpu: Cpu, first: Operand, second: Operand) -> None:
    """temp := SRC1 - SignExtend(SRC2); flags as SUB; nothing is written."""
    a, b = first.read(), second.read()
    cpu.flags.after_sub(a, b, a - b, first.size)


@implements("INC")
def inc(cpu: Cpu, dst: Operand) -> None:
    """DEST := DEST + 1; CF is not affected."""
    a = dst.read()
    dst.write((a + 1) & dst.mask)
    cpu.flags.after_add(a, 1, a + 1, dst.size, keep_cf=True)


@implements("DEC")
def dec(cpu: Cpu, dst: Operand) -> None:
    """DEST := DEST - 1; CF is not affected."""
    a = dst.read()
    dst.write((a - 1) & dst.mask)
    cpu.flags.after_sub(a, 1, a - 1, dst.size, keep_cf=True)


@implements("NEG")
def neg(cpu: Cpu, dst: Operand) -> None:
    """DEST := -(DEST); CF := 0 if the source is 0, else 1 (flags as 0 - DEST)."""
    a = dst.read()
    dst.write(-a & dst.mask)
    cpu.flags.after_sub(0, a, -a, dst.size)


@implements("BOUND")
def bound(cpu: Cpu, index: Operand, bounds: Mem) -> None:
    """IF ArrayIndex < LowerBound OR ArrayIndex > UpperBound THEN #BR. The bounds are two
    signed words/dwords at SRC; nothing is written and no flag changes."""
    size = index.size
    lower = bounds.part(0, size)
    upper = bounds.part(size >> 3, size)
    value = index.sign(index.read())
    if value < lower.sign(lower.read()) or value > upper.sign(upper.read()):
        raise Fault(BR)
