"""Decimal and ASCII adjust family: DAA DAS AAA AAS AAM AAD (SDM Vol. 2A).

They fix up AL (and AH) after binary arithmetic on packed (DAA/DAS) or unpacked
(AAA/AAS/AAM/AAD) BCD digits. The bodies follow the SDM's Operation sections line by
line. Flags the SDM leaves undefined (see the table's rows) are left alone: after AAA/AAS
SF ZF PF keep their old values, as in Unicorn 2.1.4, while real CPUs set them from AL.
"""

from __future__ import annotations

from reference.cpu import Cpu
from reference.faults import DE, Fault
from reference.operands import Operand
from reference.semantics import implements


def _al(cpu: Cpu) -> int:
    return cpu.regs[0] & 0xFF


def _ah(cpu: Cpu) -> int:
    return (cpu.regs[0] >> 8) & 0xFF


def _set_ax(cpu: Cpu, ah: int, al: int) -> None:
    """AX := ah:al (each masked to a byte); the upper half of EAX is kept."""
    cpu.regs[0] = (cpu.regs[0] & 0xFFFF0000) | ((ah & 0xFF) << 8) | (al & 0xFF)


def _low_digit_needs_adjust(cpu: Cpu, al: int) -> bool:
    """The SDM's common test: ((AL AND 0FH) > 9) or (AF = 1)."""
    return (al & 0x0F) > 9 or cpu.flags.af == 1


@implements("DAA")
def daa(cpu: Cpu) -> None:
    """Decimal adjust AL after addition: add 06H if the low digit overflowed, 60H if the
    high one did; CF and AF report the decimal carries; SF ZF PF from AL."""
    flags = cpu.flags
    old_al = al = _al(cpu)
    old_cf = flags.cf
    flags.cf = 0
    if _low_digit_needs_adjust(cpu, al):
        al += 6
        flags.cf = old_cf | (al > 0xFF)  # carry out of AL := AL + 6
        flags.af = 1
    else:
        flags.af = 0
    if old_al > 0x99 or old_cf == 1:
        al += 0x60
        flags.cf = 1
    else:
        flags.cf = 0
    _set_ax(cpu, _ah(cpu), al)
    flags.set_szp(al & 0xFF, 8)


@implements("DAS")
def das(cpu: Cpu) -> None:
    """Decimal adjust AL after subtraction: subtract 06H / 60H for each digit that
    borrowed. Unlike DAA, the SDM has no "ELSE CF := 0" for the high digit: a borrow
    from AL - 6 stays in CF (the host CPU agrees: test_bcd's native test)."""
    flags = cpu.flags
    old_al = al = _al(cpu)
    old_cf = flags.cf
    flags.cf = 0
    if _low_digit_needs_adjust(cpu, al):
        al -= 6
        flags.cf = old_cf | (al < 0)  # borrow from AL := AL - 6
        flags.af = 1
    else:
        flags.af = 0
    if old_al > 0x99 or old_cf == 1:
        al -= 0x60
        flags.cf = 1
    _set_ax(cpu, _ah(cpu), al)
    flags.set_szp(al & 0xFF, 8)


@implements("AAA")
def aaa(cpu: Cpu) -> None:
    """ASCII adjust after addition: IF low digit > 9 or AF THEN AX := AX + 106H;
    AF := CF := 1 ELSE AF := CF := 0; AL := AL AND 0FH. (Adding 106H to AX, not 6 to AL
    and 1 to AH, lets the carry out of AL + 6 reach AH, as P6 and later CPUs do.)"""
    adjust = _low_digit_needs_adjust(cpu, _al(cpu))
    ax = cpu.regs[0] & 0xFFFF
    if adjust:
        ax += 0x106
    _set_ax(cpu, ax >> 8, ax & 0x0F)
    cpu.flags.af = cpu.flags.cf = 1 if adjust else 0


@implements("AAS")
def aas(cpu: Cpu) -> None:
    """ASCII adjust after subtraction: IF low digit > 9 or AF THEN AX := AX - 6;
    AH := AH - 1; AF := CF := 1 ELSE AF := CF := 0; AL := AL AND 0FH."""
    adjust = _low_digit_needs_adjust(cpu, _al(cpu))
    ax = cpu.regs[0] & 0xFFFF
    if adjust:
        ax -= 6 + 0x100
    _set_ax(cpu, ax >> 8, ax & 0x0F)
    cpu.flags.af = cpu.flags.cf = 1 if adjust else 0


@implements("AAM")
def aam(cpu: Cpu, base: Operand) -> None:
    """ASCII adjust after multiply: AH := AL / imm8; AL := AL MOD imm8; #DE if imm8 = 0
    (D4 0A is the decimal AAM; other bases work too). SF ZF PF from AL."""
    divisor = base.read()
    if divisor == 0:
        raise Fault(DE)
    al = _al(cpu)
    _set_ax(cpu, al // divisor, al % divisor)
    cpu.flags.set_szp(al % divisor, 8)


@implements("AAD")
def aad(cpu: Cpu, base: Operand) -> None:
    """ASCII adjust before division: AL := (AL + AH * imm8) AND FFH; AH := 0.
    SF ZF PF from AL."""
    al = (_al(cpu) + _ah(cpu) * base.read()) & 0xFF
    _set_ax(cpu, 0, al)
    cpu.flags.set_szp(al, 8)
