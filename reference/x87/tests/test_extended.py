"""80-bit values and rounding: values the SDM and Intel's manuals state. The properties
that hold for every input (Hypothesis) are in ``test_extended_properties.py``, so that
these run where Hypothesis is not installed (pypy3)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from reference.x87.arith import Control, add, divide, multiply, square_root
from reference.x87.constants import CONSTANTS
from reference.x87.extended import (
    DE,
    DEFAULT_NAN,
    DOUBLE,
    EXTENDED,
    IE,
    OE,
    PE,
    RC_CHOP,
    RC_NEAREST,
    SINGLE,
    UE,
    exact,
    from_ieee,
    from_integer,
    round_exact,
)

NEAREST64 = Control(64, RC_NEAREST, True, True)
ONE = 0x3FFF_8000_0000_0000_0000
TWO = 0x4000_8000_0000_0000_0000


def value_of(bits: int) -> Fraction:
    """The exact rational an 80-bit finite value stands for (independent of the code)."""
    sign, exponent, sig = bits >> 79, bits >> 64 & 0x7FFF, bits & ((1 << 64) - 1)
    magnitude = Fraction(sig) * Fraction(2) ** (max(exponent, 1) - 16383 - 63)
    return -magnitude if sign else magnitude


def test_known_values_from_the_manuals() -> None:
    assert from_integer(1) == ONE == CONSTANTS["FLD1"][RC_NEAREST]
    assert CONSTANTS["FLDPI"] == (0x4000_C90F_DAA2_2168_C235, 0x4000_C90F_DAA2_2168_C234,
                                  0x4000_C90F_DAA2_2168_C235, 0x4000_C90F_DAA2_2168_C234)
    root = square_root(TWO, NEAREST64)
    assert root.value == 0x3FFF_B504_F333_F9DE_6484 and root.flags == PE
    assert divide(ONE, 0, NEAREST64).flags & 0x04          # ZE
    assert add(0x7FFF_8000_0000_0000_0000, 0xFFFF_8000_0000_0000_0000, NEAREST64) \
        == (DEFAULT_NAN, IE, False)                         # inf - inf


def test_single_and_double_loads() -> None:
    assert from_ieee(0x3F80_0000, SINGLE) == (ONE, 0)
    assert from_ieee(0x3FF0_0000_0000_0000, DOUBLE) == (ONE, 0)
    assert from_ieee(1, SINGLE) == (0x3F6A_8000_0000_0000_0000, DE)  # 2**-149, DE
    assert from_ieee(0x7F80_0001, SINGLE) == (0x7FFF_C000_0100_0000_0000, IE)  # SNaN


def test_overflow_and_underflow_responses() -> None:
    big = (0x7FFE << 64) | (1 << 64) - 1
    assert multiply(big, TWO, NEAREST64).value == 0x7FFF_8000_0000_0000_0000
    chop = multiply(big, TWO, NEAREST64._replace(rc=RC_CHOP))
    assert chop.value == big and chop.flags == OE | PE
    unmasked = multiply(big, TWO, NEAREST64._replace(masked_oe=False))
    assert unmasked.value >> 64 == 0x7FFF - 24576 and unmasked.flags & OE
    tiny = 1 << 64 | 0x8000_0000_0000_0001               # smallest exponent, odd
    half = 0x3FFE_8000_0000_0000_0000
    r = multiply(tiny, half, NEAREST64)
    assert r.flags == UE | PE and r.value >> 64 == 0     # a denormal, rounded
    assert value_of(r.value) == Fraction(0x4000_0000_0000_0000) * Fraction(2) ** (-16445)


@pytest.mark.parametrize("n", [0, 1, -1, 2 ** 63 - 1, -2 ** 63, 12345, -7])
def test_integers_load_exactly(n: int) -> None:
    assert value_of(from_integer(n)) == n
    assert round_exact(*exact(from_integer(n)), EXTENDED).bits == from_integer(n)
