"""x87 data transfer (SDM Vol. 2A: FLD, FST, FSTP, FILD, FIST, FISTP, FBLD, FBSTP, FXCH,
FCMOVcc, FFREE, FINCSTP, FDECSTP) and the constant loads (FLD1, FLDZ, FLDPI, FLDL2E,
FLDL2T, FLDLG2, FLDLN2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Tuple

from reference.x87.common import read_int, read_mem, read_real, underflow, write_mem, x87
from reference.x87.constants import CONSTANTS
from reference.x87.extended import (
    DEFAULT_NAN,
    DOUBLE,
    IE,
    INFINITY,
    OE,
    PE,
    QNAN,
    SINGLE,
    SNAN,
    UE,
    UNSUPPORTED,
    ZERO,
    Format,
    classify,
    exact,
    from_integer,
    make_in,
    nan_to_ieee,
    round_exact,
    round_to_integer,
    zero,
)
from reference.x87.fpu import EXCEPTIONS

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

INDEFINITE_INTEGER = {16: 0x8000, 32: 0x8000_0000, 64: 0x8000_0000_0000_0000}
BCD_INDEFINITE = 0xFFFF_C000_0000_0000_0000
BCD_DIGITS = 18


# -- loads -------------------------------------------------------------------------------

@x87("FLD")
def fld(cpu: Cpu, src: object) -> None:
    """Push a m32/m64/m80 value (converted exactly; DE for a denormal single/double, IE
    for an SNaN) or a copy of ST(i)."""
    fpu = cpu.fpu
    if hasattr(src, "i"):
        i = src.i  # type: ignore[attr-defined]
        if fpu.is_empty(i):  # underflow is checked before overflow
            underflow_push(cpu)
            return
        fpu.push_checked(fpu.st(i))
        return
    value, flags = read_real(cpu, src)
    fpu.push_checked(value, flags)


def underflow_push(cpu: Cpu) -> None:
    """FLD ST(i) of an empty register: IE|SF, C1=0; masked, the default NaN is pushed."""
    fpu = cpu.fpu
    if fpu.stack_fault(False):
        fpu.push(DEFAULT_NAN)


@x87("FILD")
def fild(cpu: Cpu, src: object) -> None:
    cpu.fpu.push_checked(read_int(cpu, src))


@x87("FLD1", "FLDZ", "FLDPI", "FLDL2E", "FLDL2T", "FLDLG2", "FLDLN2")
def fld_constant(cpu: Cpu) -> None:
    """Push a constant rounded from its 66-bit internal value by RC (no PE, C1 = 0)."""
    cpu.fpu.push_checked(CONSTANTS[cpu.insn.form.mnemonic][cpu.fpu.control >> 10 & 3])


@x87("FBLD")
def fbld(cpu: Cpu, src: object) -> None:
    """Push an 18-digit packed BCD integer (sign in bit 79; invalid digits: undefined)."""
    raw = read_mem(cpu, src, 10)
    value = 0
    for position in range(BCD_DIGITS - 1, -1, -1):
        value = value * 10 + (raw >> (4 * position) & 0xF)
    sign = raw >> 79 & 1
    cpu.fpu.push_checked(from_integer(-value if sign else value) if value else zero(sign))


# -- stores ------------------------------------------------------------------------------

def to_ieee(value: int, fmt: Format, cw: int) -> Tuple[int, int, bool]:
    """ST(0) converted for FST m32/m64: (bits, flags, rounded up)."""
    kind = classify(value)
    sign = value >> 79
    if kind == UNSUPPORTED:
        return make_in(fmt, 1, fmt.exp_all_ones, 1 << (fmt.frac_bits - 1)), IE, False
    if kind in (QNAN, SNAN):
        return nan_to_ieee(value, fmt), IE if kind == SNAN else 0, False
    if kind == INFINITY:
        return make_in(fmt, sign, fmt.exp_all_ones, 0), 0, False
    if kind == ZERO:
        return make_in(fmt, sign, 0, 0), 0, False
    _, mantissa, exponent = exact(value)
    r = round_exact(sign, mantissa, exponent, fmt, fmt.precision, cw >> 10 & 3,
                    masked_ue=bool(cw & 0x10), masked_oe=bool(cw & 0x08))
    return r.bits, r.flags, r.up  # a denormal source raises no DE when stored (measured)


def _store(cpu: Cpu, dest: object, pops: int, convert) -> None:
    """Shared by FST/FIST/FBSTP to memory: the value converted, stored unless an
    unmasked exception forbids it, then the pop. Memory is written before FPU state
    changes, so a memory fault leaves the FPU untouched."""
    fpu = cpu.fpu
    nbytes = dest.size >> 3  # type: ignore[attr-defined]
    if fpu.is_empty(0):
        indefinite = convert(None)[0]
        if not fpu.unmasked(IE):
            write_mem(cpu, dest, nbytes, indefinite)
        underflow(cpu, None, pops)
        return
    bits, flags, up = convert(fpu.st(0))
    stopping = fpu.unmasked(flags & EXCEPTIONS & ~PE)
    if stopping:  # memory is not written; an unmasked OE/UE drops PE and C1 (measured)
        fpu.set_c1(False)
        fpu.signal(stopping if stopping & (OE | UE) else flags)
        return
    write_mem(cpu, dest, nbytes, bits)
    fpu.set_c1(up)
    fpu.signal(flags)
    for _ in range(pops):
        fpu.pop()


FORMAT_OF_SIZE: Dict[int, Format] = {32: SINGLE, 64: DOUBLE}


@x87("FST", "FSTP")
def fst(cpu: Cpu, dest: object) -> None:
    """Copy ST(0) to ST(i) or memory (m80: bit for bit, no exceptions); FSTP pops."""
    fpu = cpu.fpu
    pops = 1 if cpu.insn.form.mnemonic == "FSTP" else 0
    if hasattr(dest, "i"):
        if fpu.is_empty(0):
            underflow(cpu, dest.i, pops)  # type: ignore[attr-defined]
            return
        fpu.set_c1(False)
        fpu.set_st(dest.i, fpu.st(0))  # type: ignore[attr-defined]
        for _ in range(pops):
            fpu.pop()
        return
    size = dest.size  # type: ignore[attr-defined]
    if size == 80:
        _store(cpu, dest, pops, lambda v: (DEFAULT_NAN, 0, False) if v is None else (v, 0, False))
        return
    fmt = FORMAT_OF_SIZE[size]
    default = nan_to_ieee(DEFAULT_NAN, fmt)
    _store(cpu, dest, pops,
           lambda v: (default, 0, False) if v is None else to_ieee(v, fmt, fpu.control))


def to_integer(value: int, size: int, rc: int) -> Tuple[int, int, bool]:
    """FIST: (two's complement bits, flags, rounded up); NaN, infinity or out of range is
    IE with the integer indefinite (SDM Vol. 2A, FIST, Table 3-x)."""
    kind = classify(value)
    if kind in (UNSUPPORTED, QNAN, SNAN, INFINITY):
        return INDEFINITE_INTEGER[size], IE, False
    if kind == ZERO:
        return 0, 0, False
    sign, mantissa, exponent = exact(value)
    n, inexact, up = round_to_integer(sign, mantissa, exponent, rc)
    flags = PE if inexact else 0
    if not -(1 << (size - 1)) <= n < 1 << (size - 1):
        return INDEFINITE_INTEGER[size], IE, False
    return n & ((1 << size) - 1), flags, up


@x87("FIST", "FISTP")
def fist(cpu: Cpu, dest: object) -> None:
    size = dest.size  # type: ignore[attr-defined]
    pops = 1 if cpu.insn.form.mnemonic == "FISTP" else 0
    rc = cpu.fpu.control >> 10 & 3
    _store(cpu, dest, pops, lambda v: (INDEFINITE_INTEGER[size], 0, False) if v is None
           else to_integer(v, size, rc))


def to_bcd(value: int, rc: int) -> Tuple[int, int, bool]:
    """FBSTP: ST(0) rounded to an integer by RC, as 18 packed BCD digits and a sign."""
    kind = classify(value)
    if kind in (UNSUPPORTED, QNAN, SNAN, INFINITY):
        return BCD_INDEFINITE, IE, False
    sign = value >> 79
    if kind == ZERO:
        return sign << 79, 0, False
    _, mantissa, exponent = exact(value)
    n, inexact, up = round_to_integer(sign, mantissa, exponent, rc)
    magnitude = abs(n)
    flags = PE if inexact else 0
    if magnitude >= 10 ** BCD_DIGITS:
        return BCD_INDEFINITE, IE, False
    packed = 0
    for position in range(BCD_DIGITS):
        packed |= (magnitude % 10) << (4 * position)
        magnitude //= 10
    return sign << 79 | packed, flags, up


@x87("FBSTP")
def fbstp(cpu: Cpu, dest: object) -> None:
    rc = cpu.fpu.control >> 10 & 3
    _store(cpu, dest, 1, lambda v: (BCD_INDEFINITE, 0, False) if v is None else to_bcd(v, rc))


# -- register moves ----------------------------------------------------------------------

@x87("FXCH")
def fxch(cpu: Cpu, other: object) -> None:
    """Exchange ST(0) and ST(i); an empty one is a stack underflow (masked: it becomes
    the default NaN first)."""
    fpu = cpu.fpu
    i = other.i  # type: ignore[attr-defined]
    if fpu.is_empty(0) or fpu.is_empty(i):
        if not fpu.stack_fault(False):
            return
        for j in (0, i):
            if fpu.is_empty(j):
                fpu.set_st(j, DEFAULT_NAN)
    else:
        fpu.set_c1(False)
    a, b = fpu.st(0), fpu.st(i)
    fpu.set_st(0, b)
    fpu.set_st(i, a)


@x87("FCMOVcc")
def fcmov(cpu: Cpu, _st0: object, src: object) -> None:
    """IF condition THEN ST(0) := ST(i). An empty operand is a stack underflow whatever
    the condition (masked: ST(0) := default NaN); C1 is otherwise left alone (measured)."""
    fpu = cpu.fpu
    i = src.i  # type: ignore[attr-defined]
    if fpu.is_empty(0) or fpu.is_empty(i):
        underflow(cpu, 0)
        return
    if cpu.flags.condition(cpu.insn.cond):
        fpu.set_st(0, fpu.st(i))


@x87("FFREE")
def ffree(cpu: Cpu, reg: object) -> None:
    """TAG(i) := empty; nothing else changes."""
    fpu = cpu.fpu
    fpu.empty[fpu.physical(reg.i)] = True  # type: ignore[attr-defined]
    fpu.set_c1(False)  # the SDM leaves C0-C3 undefined; P6 and later clear C1 (measured)


@x87("FINCSTP", "FDECSTP")
def fincstp(cpu: Cpu) -> None:
    """TOP := TOP +/- 1 (no tags change); C1 := 0."""
    fpu = cpu.fpu
    fpu.top = (fpu.top + (1 if cpu.insn.form.mnemonic == "FINCSTP" else -1)) & 7
    fpu.set_c1(False)

