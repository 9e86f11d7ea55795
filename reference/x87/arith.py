"""x87 arithmetic on 80-bit values: exact integer arithmetic, then one rounding.

Each operation returns ``Outcome(value, flags, up)``: the result, the exception bits it
raised (IE, DE, ZE, OE, UE, PE) and C1 (rounded up). Special operands follow SDM Vol. 1,
4.8.3.5 and Table 4-7 (NaN propagation), 8.5.1 (invalid operations: unsupported
encodings, SNaN, inf - inf, 0 * inf, 0/0, inf/inf, square root of a negative number) and
8.5.3 (divide by zero). The caller decides what an unmasked exception leaves behind.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

from reference.x87.extended import (
    DE,
    DEFAULT_NAN,
    DENORMAL,
    EXTENDED,
    IE,
    INFINITY,
    OE,
    PRECISION,
    QNAN,
    RC_DOWN,
    SNAN,
    UE,
    UNSUPPORTED,
    ZE,
    ZERO,
    classify,
    exact,
    fields,
    infinity,
    quiet,
    round_exact,
    zero,
)

GUARD = 67  # quotient and root bits: the 64-bit result, a guard bit, spare, then sticky


class Control(NamedTuple):
    """What rounding needs from the control word (SDM Vol. 1, 8.1.5)."""

    precision: int
    rc: int
    masked_ue: bool
    masked_oe: bool

    @classmethod
    def from_cw(cls, cw: int, precision_applies: bool = True) -> Control:
        """Precision control affects only FADD/FSUB/FMUL/FDIV and FSQRT (8.1.5.2)."""
        precision = PRECISION[cw >> 8 & 3] if precision_applies else 64
        return cls(precision, cw >> 10 & 3, bool(cw & UE), bool(cw & OE))


class Outcome(NamedTuple):
    value: int
    flags: int = 0
    up: bool = False


def _rounded(sign: int, mantissa: int, exponent: int, ctl: Control, flags: int = 0,
             sticky: bool = False) -> Outcome:
    r = round_exact(sign, mantissa, exponent, EXTENDED, ctl.precision, ctl.rc, sticky,
                    ctl.masked_ue, ctl.masked_oe)
    return Outcome(r.bits, r.flags | flags, r.up)


def nan_operands(*values: int) -> Optional[Outcome]:
    """The result when an operand is a NaN or unsupported, else None (Table 4-7): an
    unsupported encoding gives the default NaN; an SNaN raises IE; of two NaNs the larger
    significand wins (the QNaN when one is an SNaN), quieted."""
    kinds = [classify(v) for v in values]
    if UNSUPPORTED in kinds:
        return Outcome(DEFAULT_NAN, IE)
    nans = [v for v, k in zip(values, kinds) if k in (QNAN, SNAN)]
    if not nans:
        return None
    flags = IE if SNAN in kinds else 0
    if len(nans) == 2:
        a, b = nans
        ka, kb = classify(a), classify(b)
        if ka != kb:
            return Outcome(a if ka == QNAN else b, flags)
        sa, sb = fields(a)[2], fields(b)[2]
        if sa == sb:
            return Outcome(quiet(a if fields(a)[0] == 0 else b), flags)
        return Outcome(quiet(a if sa > sb else b), flags)
    return Outcome(quiet(nans[0]), flags)


def denormal_flag(*values: int) -> int:
    return DE if any(classify(v) == DENORMAL for v in values) else 0


def add(a: int, b: int, ctl: Control, negate_b: bool = False) -> Outcome:
    """a + b (or a - b): FADD/FSUB/FSUBR and FIADD... after conversion."""
    special = nan_operands(a, b)
    if special:
        return special
    if negate_b:
        b ^= 1 << 79
    flags = denormal_flag(a, b)
    ka, kb = classify(a), classify(b)
    if ka == INFINITY or kb == INFINITY:
        if ka == kb and (a ^ b) >> 79:
            return Outcome(DEFAULT_NAN, IE | flags)
        return Outcome(a if ka == INFINITY else b, flags)
    sa, ma, ea = exact(a)
    sb, mb, eb = exact(b)
    low = min(ea, eb)
    total = (-1 if sa else 1) * (ma << (ea - low)) + (-1 if sb else 1) * (mb << (eb - low))
    if total == 0:
        if ka == ZERO and kb == ZERO and sa == sb:
            return Outcome(zero(sa), flags)
        return Outcome(zero(1 if ctl.rc == RC_DOWN else 0), flags)
    return _rounded(1 if total < 0 else 0, abs(total), low, ctl, flags)


def multiply(a: int, b: int, ctl: Control) -> Outcome:
    special = nan_operands(a, b)
    if special:
        return special
    flags = denormal_flag(a, b)
    ka, kb = classify(a), classify(b)
    sign = (a ^ b) >> 79 & 1
    if INFINITY in (ka, kb):
        if ZERO in (ka, kb):
            return Outcome(DEFAULT_NAN, IE | flags)
        return Outcome(infinity(sign), flags)
    _, ma, ea = exact(a)
    _, mb, eb = exact(b)
    if ma == 0 or mb == 0:
        return Outcome(zero(sign), flags)
    return _rounded(sign, ma * mb, ea + eb, ctl, flags)


def divide(a: int, b: int, ctl: Control) -> Outcome:
    """a / b (FDIV: a = dividend)."""
    special = nan_operands(a, b)
    if special:
        return special
    flags = denormal_flag(a, b)
    ka, kb = classify(a), classify(b)
    sign = (a ^ b) >> 79 & 1
    if ka == INFINITY:
        if kb == INFINITY:
            return Outcome(DEFAULT_NAN, IE | flags)
        return Outcome(infinity(sign), flags)
    if kb == INFINITY:
        return Outcome(zero(sign), flags)
    if kb == ZERO:
        if ka == ZERO:
            return Outcome(DEFAULT_NAN, IE | flags)
        return Outcome(infinity(sign), ZE)  # a denormal dividend: no DE (measured)
    if ka == ZERO:
        return Outcome(zero(sign), flags)
    _, ma, ea = exact(a)
    _, mb, eb = exact(b)
    shift = max(0, GUARD + mb.bit_length() - ma.bit_length())
    quotient, remainder = divmod(ma << shift, mb)
    return _rounded(sign, quotient, ea - eb - shift, ctl, flags, sticky=remainder != 0)


def square_root(a: int, ctl: Control) -> Outcome:
    special = nan_operands(a)
    if special:
        return special
    kind = classify(a)
    sign = a >> 79
    if kind == ZERO:
        return Outcome(a, denormal_flag(a))
    if sign:
        return Outcome(DEFAULT_NAN, IE)  # no DE for a negative denormal (measured)
    flags = denormal_flag(a)
    if kind == INFINITY:
        return Outcome(a, flags)
    _, m, e = exact(a)
    shift = max(0, 2 * GUARD - m.bit_length())
    if (e - shift) & 1:
        shift += 1
    radicand = m << shift
    root = math.isqrt(radicand)
    return _rounded(0, root, (e - shift) // 2, ctl, flags, sticky=root * root != radicand)
