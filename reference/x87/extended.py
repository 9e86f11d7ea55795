"""Floating-point values as Python integers: the 80-bit double extended format and the
32/64-bit IEEE formats it converts to (SDM Vol. 1, 4.2.2, 4.8 and 8.2), with rounding by
the x87 rounding control at a precision-control width (4.8.4, 8.1.5.2).

A value in the FPU registers is one 80-bit integer: sign (bit 79), biased exponent
(78..64), and a 64-bit significand whose bit 63 is the explicit integer bit J. Arithmetic
works on *exact* numbers ``(sign, mantissa, exponent)`` meaning
``(-1)**sign * mantissa * 2**exponent`` (unbounded integers, no host floats), and
``round_exact`` turns one into a register or memory value, returning the exception bits
the rounding raised (PE, UE, OE) and whether it rounded the magnitude up (C1).
"""

from __future__ import annotations

from typing import NamedTuple, Tuple

# Status-word exception bits (SDM Vol. 1, 8.1.3).
IE, DE, ZE, OE, UE, PE, SF = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40

# Rounding control (control word bits 11:10; SDM Vol. 1, Table 4-8).
RC_NEAREST, RC_DOWN, RC_UP, RC_CHOP = 0, 1, 2, 3
# Precision control (bits 9:8; Table 8-2) -> significand bits. 01 is reserved; P6
# processors round it as 64 bits (like 11).
PRECISION = {0: 24, 1: 64, 2: 53, 3: 64}

# The exponent adjustment of an unmasked overflow/underflow with a register destination
# (SDM Vol. 1, 4.9.1.4 and 4.9.1.5: 24576 for double extended).
BIAS_ADJUST = 24576

J_BIT = 1 << 63
DEFAULT_NAN = 0xFFFF_C000_0000_0000_0000      # the "real indefinite" QNaN
QUIET_BIT = 1 << 62                            # in the 64-bit significand


class Format(NamedTuple):
    """An IEEE binary format: exponent width, stored fraction bits, explicit J bit."""

    exp_bits: int
    frac_bits: int
    explicit_j: bool

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_all_ones(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def precision(self) -> int:
        return self.frac_bits + 1

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def emax(self) -> int:
        return self.exp_all_ones - 1 - self.bias

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.frac_bits + (1 if self.explicit_j else 0)


SINGLE = Format(8, 23, False)
DOUBLE = Format(11, 52, False)
EXTENDED = Format(15, 63, True)

Exact = Tuple[int, int, int]  # sign, mantissa >= 0, binary exponent


class Rounded(NamedTuple):
    """A rounded value in some format, the exception bits rounding raised, and C1."""

    bits: int
    flags: int
    up: bool


# --- the 80-bit register format --------------------------------------------------------

def fields(value: int) -> Tuple[int, int, int]:
    """(sign, biased exponent, 64-bit significand) of an 80-bit value."""
    return value >> 79 & 1, value >> 64 & 0x7FFF, value & ((1 << 64) - 1)


def make(sign: int, exponent: int, significand: int) -> int:
    return sign << 79 | exponent << 64 | significand


ZERO, DENORMAL, NORMAL, INFINITY, QNAN, SNAN, UNSUPPORTED = (
    "zero", "denormal", "normal", "infinity", "qnan", "snan", "unsupported")


def classify(value: int) -> str:
    """The class of an 80-bit value (SDM Vol. 1, Table 8-3). Exponent 0 with J=1 is a
    pseudo-denormal (a valid operand, reported as DENORMAL); a non-zero exponent with J=0
    (unnormal, pseudo-NaN, pseudo-infinity) is UNSUPPORTED: an invalid operand since the
    387."""
    _, exponent, sig = fields(value)
    if exponent == 0:
        return ZERO if sig == 0 else DENORMAL
    if not sig & J_BIT:
        return UNSUPPORTED
    if exponent == 0x7FFF:
        if sig == J_BIT:
            return INFINITY
        return QNAN if sig & QUIET_BIT else SNAN
    return NORMAL


def is_nan(value: int) -> bool:
    return classify(value) in (QNAN, SNAN)


def exact(value: int) -> Exact:
    """The exact number a finite 80-bit value (zero, denormal, normal) stands for."""
    sign, exponent, sig = fields(value)
    return sign, sig, max(exponent, 1) - EXTENDED.bias - 63


def infinity(sign: int) -> int:
    return make(sign, 0x7FFF, J_BIT)


def zero(sign: int) -> int:
    return make(sign, 0, 0)


def quiet(value: int) -> int:
    """An SNaN made quiet (QNaNs unchanged)."""
    return value | QUIET_BIT


# --- rounding ----------------------------------------------------------------------------

def _round_mantissa(sign: int, mantissa: int, exponent: int, lsb: int,
                    rc: int) -> Tuple[int, int, bool]:
    """Round mantissa * 2**exponent to a multiple of 2**lsb by ``rc``.

    Returns (q, inexact, up): the result is q * 2**lsb; ``up`` says the magnitude grew."""
    drop = lsb - exponent
    if drop <= 0:
        return mantissa << -drop, 0, False
    q = mantissa >> drop
    rest = mantissa & ((1 << drop) - 1)
    if not rest:
        return q, 0, False
    half = 1 << (drop - 1)
    if rc == RC_NEAREST:
        up = rest > half or (rest == half and q & 1 == 1)
    elif rc == RC_UP:
        up = sign == 0
    elif rc == RC_DOWN:
        up = sign == 1
    else:
        up = False
    return q + up, 1, up


def round_exact(sign: int, mantissa: int, exponent: int, fmt: Format = EXTENDED,
                precision: int = 64, rc: int = RC_NEAREST, sticky: bool = False,
                masked_ue: bool = True, masked_oe: bool = True) -> Rounded:
    """Round (-1)**sign * (mantissa + sticky) * 2**exponent into ``fmt`` (SDM Vol. 1,
    4.8.4 rounding, 4.9.1.4 overflow, 4.9.1.5 underflow).

    ``sticky`` says the true value lies strictly above mantissa * 2**exponent (a divide or
    square root left a remainder); the caller keeps at least two bits below the result's
    last place. Tininess is detected after rounding, as on x86 (the result rounded to
    ``precision`` with an unbounded exponent is below the smallest normal). Masked
    underflow raises UE only with PE; an unmasked one always raises UE and, for the
    extended format, returns the result with its exponent raised by 24576 (overflow:
    lowered), as the register-destination response says. Callers storing to memory
    check the flags themselves."""
    if sticky:
        mantissa, exponent = mantissa << 2 | 1, exponent - 2
    if mantissa == 0:
        return Rounded(make_in(fmt, sign, 0, 0), 0, False)
    precision = min(precision, fmt.precision)
    top = exponent + mantissa.bit_length() - 1          # exponent of the leading 1
    unbounded_lsb = top - (precision - 1)
    q, inexact, up = _round_mantissa(sign, mantissa, exponent, unbounded_lsb, rc)
    rounded_top = unbounded_lsb + q.bit_length() - 1
    flags = PE if inexact else 0
    if rounded_top > fmt.emax:
        return _overflow(sign, q, unbounded_lsb, fmt, precision, rc, masked_oe, flags, up)
    if rounded_top < fmt.emin:
        if not masked_ue:
            if rounded_top + BIAS_ADJUST < fmt.emin:  # FSCALE far below: zero (measured)
                return Rounded(make_in(fmt, sign, 0, 0), UE | PE, False)
            return _bias_adjusted(sign, q, unbounded_lsb, fmt, BIAS_ADJUST, UE | flags, up)
        lsb = fmt.emin - (precision - 1)   # denormals keep the precision's last place
        q, inexact, up = _round_mantissa(sign, mantissa, exponent, max(lsb, unbounded_lsb), rc)
        flags = UE | PE if inexact else 0
        return Rounded(_encode(fmt, sign, q, max(lsb, unbounded_lsb)), flags, up)
    return Rounded(_encode(fmt, sign, q, unbounded_lsb), flags, up)


def _overflow(sign: int, q: int, lsb: int, fmt: Format, precision: int, rc: int,
              masked: bool, flags: int, up: bool) -> Rounded:
    """SDM Vol. 1, Table 4-10: masked overflow gives infinity or the largest finite value
    of the precision, by rounding direction and sign; always with PE."""
    if not masked and lsb + q.bit_length() - 1 - BIAS_ADJUST <= fmt.emax:
        return _bias_adjusted(sign, q, lsb, fmt, -BIAS_ADJUST, OE | flags, up)
    # too large even with the exponent adjusted (FSCALE): infinity whatever RC (measured)
    to_infinity = not masked or (rc == RC_NEAREST or (rc == RC_UP and sign == 0)
                   or (rc == RC_DOWN and sign == 1))
    if to_infinity:
        return Rounded(make_in(fmt, sign, fmt.exp_all_ones, 0), OE | PE, True)
    largest = (1 << precision) - 1
    return Rounded(_encode(fmt, sign, largest, fmt.emax - (precision - 1)), OE | PE, False)


def _bias_adjusted(sign: int, q: int, lsb: int, fmt: Format, adjust: int, flags: int,
                   up: bool) -> Rounded:
    """The unmasked response: the rounded significand with the exponent moved into range
    (only meaningful for the extended format; memory stores do not write, so a smaller
    format gets a zero placeholder)."""
    if fmt != EXTENDED:
        return Rounded(make_in(fmt, sign, 0, 0), flags, up)
    return Rounded(_encode(fmt, sign, q, lsb + adjust), flags, up)


def _encode(fmt: Format, sign: int, q: int, lsb: int) -> int:
    """Pack q * 2**lsb (already representable) into ``fmt``."""
    if q == 0:
        return make_in(fmt, sign, 0, 0)
    top = lsb + q.bit_length() - 1
    if top < fmt.emin:                                     # denormal
        return make_in(fmt, sign, 0, q << (lsb - (fmt.emin - fmt.frac_bits)))
    biased = top + fmt.bias
    shift = lsb - (top - fmt.frac_bits)
    sig = q << shift if shift >= 0 else q >> -shift   # a carry out of 1.11..1 leaves 0s
    if not fmt.explicit_j:
        sig &= (1 << fmt.frac_bits) - 1
    return make_in(fmt, sign, biased & fmt.exp_all_ones, sig)


def make_in(fmt: Format, sign: int, biased: int, sig: int) -> int:
    """Pack fields into ``fmt``; for a format without J, ``sig`` is the fraction. An
    all-ones exponent with fraction 0 is infinity (J set for the extended format)."""
    if fmt.explicit_j and biased == fmt.exp_all_ones and sig == 0:
        sig = J_BIT
    stored = fmt.frac_bits + (1 if fmt.explicit_j else 0)
    return sign << (fmt.width - 1) | biased << stored | sig


# --- conversions between formats -----------------------------------------------------

def from_ieee(bits: int, fmt: Format) -> Tuple[int, int]:
    """A 32/64-bit value -> (80-bit value, flags): exact for every finite value; a
    denormal raises DE, an SNaN raises IE and loads quieted (SDM Vol. 2A, FLD)."""
    sign = bits >> (fmt.width - 1) & 1
    biased = bits >> fmt.frac_bits & fmt.exp_all_ones
    frac = bits & ((1 << fmt.frac_bits) - 1)
    shift = 63 - fmt.frac_bits
    if biased == fmt.exp_all_ones:
        if frac == 0:
            return infinity(sign), 0
        sig = J_BIT | frac << shift
        flags = 0 if sig & QUIET_BIT else IE
        return make(sign, 0x7FFF, sig | QUIET_BIT), flags
    if biased == 0:
        if frac == 0:
            return zero(sign), 0
        value = round_exact(sign, frac, fmt.emin - fmt.frac_bits).bits
        return value, DE
    exponent = biased - fmt.bias + EXTENDED.bias
    return make(sign, exponent, J_BIT | frac << shift), 0


def nan_to_ieee(value: int, fmt: Format) -> int:
    """An 80-bit NaN stored to a smaller format: sign, quieted, fraction truncated."""
    sign, _, sig = fields(value)
    frac = (sig & ((1 << 63) - 1)) >> (63 - fmt.frac_bits)
    frac |= 1 << (fmt.frac_bits - 1)
    return make_in(fmt, sign, fmt.exp_all_ones, frac)


def round_to_integer(sign: int, mantissa: int, exponent: int, rc: int) -> Tuple[int, bool, bool]:
    """(signed integer, inexact, rounded up in magnitude): FIST/FRNDINT rounding."""
    q, inexact, up = _round_mantissa(sign, mantissa, exponent, 0, rc)
    return (-q if sign else q), bool(inexact), up


def from_integer(value: int) -> int:
    """A signed integer (16/32/64 bits) -> its exact 80-bit value."""
    if value == 0:
        return zero(0)
    sign = 1 if value < 0 else 0
    return round_exact(sign, abs(value), 0).bits
