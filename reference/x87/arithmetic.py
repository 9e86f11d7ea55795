"""x87 arithmetic instructions (SDM Vol. 2A: FADD, FSUB, FSUBR, FMUL, FDIV, FDIVR and
their P/I forms; FCHS, FABS, FSQRT, FRNDINT, FSCALE, FXTRACT, FPREM, FPREM1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Tuple

from reference.x87.arith import (
    Control,
    Outcome,
    add,
    denormal_flag,
    divide,
    multiply,
    nan_operands,
    square_root,
)
from reference.x87.common import control, deliver, source_value, underflow, x87
from reference.x87.extended import (
    DE,
    DEFAULT_NAN,
    IE,
    INFINITY,
    PE,
    ZE,
    ZERO,
    classify,
    exact,
    from_integer,
    infinity,
    make,
    round_exact,
    round_to_integer,
    zero,
)
from reference.x87.fpu import C1, C2

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

Binary = Callable[[int, int, Control], Outcome]
BINARY: Dict[str, Binary] = {
    "FADD": add,
    "FSUB": lambda a, b, c: add(a, b, c, negate_b=True),
    "FSUBR": lambda a, b, c: add(b, a, c, negate_b=True),
    "FMUL": multiply,
    "FDIV": divide,
    "FDIVR": lambda a, b, c: divide(b, a, c),
}


def _family(mnemonic: str) -> Tuple[str, int]:
    """FIADD -> (FADD, 0 pops); FSUBRP -> (FSUBR, 1 pop)."""
    base = "F" + mnemonic[2:] if mnemonic.startswith("FI") else mnemonic
    if base.endswith("P"):
        return base[:-1], 1
    return base, 0


@x87("FADD", "FADDP", "FIADD", "FSUB", "FSUBP", "FISUB", "FSUBR", "FSUBRP", "FISUBR",
     "FMUL", "FMULP", "FIMUL", "FDIV", "FDIVP", "FIDIV", "FDIVR", "FDIVRP", "FIDIVR")
def binary(cpu: Cpu, *operands: object) -> None:
    """DEST := DEST op SRC (the R forms: SRC op DEST); a one-operand (memory) form has
    DEST = ST(0). The P forms pop once."""
    family, pops = _family(cpu.insn.form.mnemonic)
    fpu = cpu.fpu
    if len(operands) == 1:
        dest, src = 0, operands[0]
    else:
        dest, src = operands[0].i, operands[1]  # type: ignore[attr-defined]
    b, flags = source_value(cpu, src)
    if b is None or fpu.is_empty(dest):
        underflow(cpu, dest, pops)
        return
    if nan_operands(fpu.st(dest), b):
        flags &= ~DE  # a NaN operand: a denormal memory operand is not reported (measured)
    out = BINARY[family](fpu.st(dest), b, control(cpu))
    deliver(cpu, Outcome(out.value, out.flags | flags, out.up), dest, pops)


def _unary(cpu: Cpu, compute: Callable[[int], Outcome]) -> None:
    fpu = cpu.fpu
    if fpu.is_empty(0):
        underflow(cpu, 0)
        return
    deliver(cpu, compute(fpu.st(0)), 0)


@x87("FCHS")
def fchs(cpu: Cpu) -> None:
    """ST(0) := -ST(0); C1 := 0."""
    _unary(cpu, lambda a: Outcome(a ^ 1 << 79))


@x87("FABS")
def fabs(cpu: Cpu) -> None:
    """ST(0) := |ST(0)|; C1 := 0."""
    _unary(cpu, lambda a: Outcome(a & ~(1 << 79)))


@x87("FSQRT")
def fsqrt(cpu: Cpu) -> None:
    _unary(cpu, lambda a: square_root(a, control(cpu)))


def round_integral(a: int, rc: int) -> Outcome:
    """FRNDINT: ST(0) rounded to an integer by RC (64-bit precision, PE if inexact)."""
    special = nan_operands(a)
    if special:
        return special
    if classify(a) in (ZERO, INFINITY):
        return Outcome(a)
    flags = denormal_flag(a)
    sign, mantissa, exponent = exact(a)
    n, inexact, up = round_to_integer(sign, mantissa, exponent, rc)
    value = from_integer(n) if n else zero(sign)
    return Outcome(value, flags | (PE if inexact else 0), up)


@x87("FRNDINT")
def frndint(cpu: Cpu) -> None:
    _unary(cpu, lambda a: round_integral(a, cpu.fpu.control >> 10 & 3))


def _truncated(value: int) -> int:
    """Integer(TruncateTowardZero(value)) of a finite 80-bit value."""
    sign, mantissa, exponent = exact(value)
    n = mantissa >> -exponent if exponent < 0 else mantissa << exponent
    return -n if sign else n


def scale(a: int, b: int, ctl: Control) -> Outcome:
    """FSCALE: ST(0) * 2**trunc(ST(1)) (SDM Vol. 2A, FSCALE, Table 3-x special cases)."""
    special = nan_operands(a, b)
    if special:
        return special
    flags = denormal_flag(a, b)
    ka, kb = classify(a), classify(b)
    sa = a >> 79
    if kb == INFINITY:
        growing = b >> 79 == 0
        if (ka == ZERO and growing) or (ka == INFINITY and not growing):
            return Outcome(DEFAULT_NAN, IE | flags)
        return Outcome(infinity(sa) if growing and ka != ZERO else
                       (a if ka in (ZERO, INFINITY) else zero(sa)), flags)
    if ka in (ZERO, INFINITY):
        return Outcome(a, flags)
    n = max(-(1 << 20), min(1 << 20, _truncated(b)))
    _, mantissa, exponent = exact(a)
    r = round_exact(sa, mantissa, exponent + n, rc=ctl.rc, masked_ue=ctl.masked_ue,
                    masked_oe=ctl.masked_oe)
    return Outcome(r.bits, r.flags | flags, r.up)


@x87("FSCALE")
def fscale(cpu: Cpu) -> None:
    fpu = cpu.fpu
    if fpu.is_empty(0) or fpu.is_empty(1):
        underflow(cpu, 0)
        return
    deliver(cpu, scale(fpu.st(0), fpu.st(1), control(cpu, False)), 0)


@x87("FXTRACT")
def fxtract(cpu: Cpu) -> None:
    """ST(0) := exponent of ST(0) as a value; then push its significand (exponent 0)."""
    fpu = cpu.fpu
    if fpu.is_empty(0):
        if fpu.stack_fault(False):
            fpu.set_st(0, DEFAULT_NAN)
            fpu.push(DEFAULT_NAN)
        return
    if not fpu.is_empty(7):
        if fpu.stack_fault(True):
            fpu.set_st(0, DEFAULT_NAN)
            fpu.push(DEFAULT_NAN)
        return
    a = fpu.st(0)
    special = nan_operands(a)
    kind = classify(a)
    sign = a >> 79
    flags = denormal_flag(a)
    if special:
        exponent_part = significand = special.value
        flags |= special.flags
    elif kind == ZERO:
        exponent_part, significand, flags = infinity(1), a, flags | ZE
    elif kind == INFINITY:
        exponent_part, significand = infinity(0), a
    else:
        _, mantissa, e = exact(a)
        top = e + mantissa.bit_length() - 1
        exponent_part = from_integer(top)
        significand = make(sign, 0x3FFF, mantissa << (64 - mantissa.bit_length()))
    fpu.set_c1(False)
    if fpu.unmasked(flags & (IE | ZE | DE)):
        fpu.signal(flags)
        return
    fpu.set_st(0, exponent_part)
    fpu.push(significand)
    fpu.signal(flags)


PARTIAL_STEP = 32  # a partial FPREM/FPREM1 leaves a multiple of 32 of the difference


def partial_shift(d: int) -> int:
    """D - N for an exponent difference D >= 64: the SDM allows any N in 32..63; the
    CPU's N makes D - N the largest multiple of 32 not above D - 32 (measured: D = 64,
    69, 79, 94, 95, 99, 126, 127, 199, 999)."""
    return PARTIAL_STEP * ((d - PARTIAL_STEP) // PARTIAL_STEP)


def remainder(a: int, b: int, nearest: bool, ctl: Control) -> Tuple[Outcome, int, bool]:
    """FPREM (truncating quotient) / FPREM1 (nearest quotient): (ST(0) result, the low
    three quotient bits, whether the reduction is complete)."""
    special = nan_operands(a, b)
    if special:
        return special, 0, True
    flags = denormal_flag(a, b)
    ka, kb = classify(a), classify(b)
    if ka == INFINITY or kb == ZERO:
        return Outcome(DEFAULT_NAN, IE | flags), 0, True
    if ka == ZERO or kb == INFINITY:
        return Outcome(a, flags), 0, True
    sa, ma, ea = exact(a)
    _, mb, eb = exact(b)
    d = (ea + ma.bit_length()) - (eb + mb.bit_length())
    low = min(ea, eb)
    na, nb = ma << (ea - low), mb << (eb - low)
    if d >= 64:
        nb <<= partial_shift(d)
        q = na // nb
        r = na - q * nb
        out = round_exact(sa, r, low, masked_ue=ctl.masked_ue)
        return Outcome(out.bits, out.flags | flags), q & 7, False
    q, r = divmod(na, nb)
    if nearest and (2 * r > nb or (2 * r == nb and q & 1)):
        q, r = q + 1, r - nb
    sign = sa ^ (1 if r < 0 else 0)
    if r == 0:
        return Outcome(zero(sa), flags), q & 7, True
    out = round_exact(sign, abs(r), low, masked_ue=ctl.masked_ue)
    return Outcome(out.bits, out.flags | flags), q & 7, True


@x87("FPREM", "FPREM1")
def fprem(cpu: Cpu) -> None:
    """C2 := reduction incomplete; C0, C3, C1 := quotient bits Q2, Q0, Q1."""
    fpu = cpu.fpu
    fpu.status &= ~(C1 | C2)  # whatever happens next (C0 and C3 stay without a quotient)
    if fpu.is_empty(0) or fpu.is_empty(1):
        underflow(cpu, 0)
        return
    a, b = fpu.st(0), fpu.st(1)
    out, q, complete = remainder(a, b, cpu.insn.form.mnemonic == "FPREM1", control(cpu))
    if fpu.unmasked(out.flags & (IE | DE)):
        fpu.signal(out.flags & (IE | DE))
        return
    fpu.set_st(0, out.value)
    fpu.signal(out.flags)
    if nan_operands(a, b) or out.flags & IE:
        return
    if complete:  # C0, C3, C1 := Q2, Q1, Q0
        fpu.set_conditions(q >> 1 & 1, 0, q & 1, q >> 2 & 1)
    else:
        fpu.set_conditions(0, 1, 0, 0)
