"""FYL2X and FYL2XP1 against the SDM and against independent arithmetic.

The special cells are SDM Vol. 2A Tables 3-47 (FYL2X) and 3-48 (FYL2XP1) with the
"Floating-Point Exceptions" lists, written here by hand; where the SDM says nothing
(which of #D and #IA/#Z wins) the comment says what the CPU was seen to do. Finite
results are checked against Python's ``decimal`` logarithm at 120 digits: the
reference's value must be the one the rounding control picks among its 80-bit
neighbours (correct rounding), for each of the four rounding directions.
"""

from __future__ import annotations

import random
from decimal import Decimal, localcontext
from typing import Tuple

import pytest

from reference.tests.conftest import make_cpu
from reference.x87.arith import Control
from reference.x87.extended import DE, IE, PE, RC_CHOP, RC_DOWN, RC_NEAREST, RC_UP, UE, ZE
from reference.x87.fpu import C1
from reference.x87.functions import log2_plus_one_times, log2_times

NEAREST = Control(64, RC_NEAREST, True, True)
J = 1 << 63
ONE, TWO, HALF = 0x3FFF << 64 | J, 0x4000 << 64 | J, 0x3FFE << 64 | J
THREE, EIGHT, NINE = 0x4000 << 64 | 3 << 62, 0x4002 << 64 | J, 0x4002 << 64 | 9 << 60
NEG = 1 << 79
PZERO, NZERO = 0, NEG
PINF, NINF = 0x7FFF << 64 | J, NEG | 0x7FFF << 64 | J
INDEFINITE = 0xFFFF_C000_0000_0000_0000          # the default QNaN (SDM Vol. 1, 4.8.3.7)
QNAN = 0x7FFF_C000_0000_0000_1234
SNAN = 0x7FFF_8000_0000_0000_1234
DENORMAL = 0x0000_0000_0000_0001_2345            # a positive denormal
UNNORMAL = 0x3FFF_4000_0000_0000_0000            # J = 0 with a non-zero exponent
SMALL = 0x3FFC << 64 | J                         # +0.125, inside FYL2XP1's range


def _f(out) -> Tuple[int, int]:
    return out.value, out.flags


@pytest.mark.parametrize("y, x, expected", [
    # ST(0) = +-0: #Z and the infinity of the other sign (a denormal ST(1): no #D,
    # measured); 0 * -inf is #IA; inf * -inf has no exception
    (ONE, PZERO, (NINF, ZE)), (NEG | ONE, NZERO, (PINF, ZE)), (DENORMAL, PZERO, (NINF, ZE)),
    (PZERO, PZERO, (INDEFINITE, IE)), (NZERO, NZERO, (INDEFINITE, IE)),
    (PINF, PZERO, (NINF, 0)), (NINF, NZERO, (PINF, 0)),
    # ST(0) < 0 (-F, -inf, a negative denormal): #IA, no #D (measured)
    (ONE, NEG | ONE, (INDEFINITE, IE)), (ONE, NINF, (INDEFINITE, IE)),
    (ONE, NEG | DENORMAL, (INDEFINITE, IE)), (DENORMAL, NEG | TWO, (INDEFINITE, IE)),
    # ST(0) = +1: a zero of ST(1)'s sign, exact (no #P); inf * 0 is #IA
    (THREE, ONE, (PZERO, 0)), (NEG | THREE, ONE, (NZERO, 0)), (NZERO, ONE, (NZERO, 0)),
    (PINF, ONE, (INDEFINITE, IE)), (DENORMAL, ONE, (PZERO, DE)),
    # ST(0) = +inf: infinity of ST(1)'s sign; a zero ST(1) is #IA
    (ONE, PINF, (PINF, 0)), (NEG | ONE, PINF, (NINF, 0)), (PZERO, PINF, (INDEFINITE, IE)),
    # ST(1) = +-inf, +-0 with 0 < ST(0) < 1 (sign flips) or > 1 (sign kept)
    (PINF, HALF, (NINF, 0)), (NINF, THREE, (NINF, 0)), (PZERO, HALF, (NZERO, 0)),
    (NZERO, THREE, (NZERO, 0)), (PZERO, DENORMAL, (NZERO, DE)),
    # an exact power of two: log2 is an integer and the product is exact (no #P)
    (ONE, EIGHT, (THREE, 0)), (THREE, EIGHT, (NINE, 0)), (ONE, HALF, (NEG | ONE, 0)),
    # NaNs (SDM Vol. 1, Table 4-7): a QNaN passes, an SNaN is quieted with #IA, an
    # unsupported encoding gives the default NaN with #IA
    (QNAN, NEG | ONE, (QNAN, 0)), (ONE, SNAN, (QNAN, IE)), (UNNORMAL, ONE, (INDEFINITE, IE)),
])
def test_fyl2x_special_cells(y: int, x: int, expected: Tuple[int, int]) -> None:
    assert _f(log2_times(y, x, NEAREST)) == expected


@pytest.mark.parametrize("y, x, expected", [
    # ST(0) = +-0: y * ST(0), the zero keeping x's sign; inf * 0 is #IA
    (ONE, PZERO, (PZERO, 0)), (ONE, NZERO, (NZERO, 0)), (NEG | ONE, NZERO, (PZERO, 0)),
    (NZERO, PZERO, (NZERO, 0)), (PINF, NZERO, (INDEFINITE, IE)),
    (NINF, PZERO, (INDEFINITE, IE)), (DENORMAL, PZERO, (PZERO, DE)),
    # ST(1) = +-inf or +-0 with ST(0) in range, not zero: the sign of x times y's
    (PINF, SMALL, (PINF, 0)), (PINF, NEG | SMALL, (NINF, 0)), (NZERO, SMALL, (NZERO, 0)),
    (PZERO, NEG | SMALL, (NZERO, 0)), (PINF, NEG | DENORMAL, (NINF, DE)),
    (QNAN, SMALL, (QNAN, 0)), (ONE, SNAN, (QNAN, IE)), (ONE, UNNORMAL, (INDEFINITE, IE)),
])
def test_fyl2xp1_special_cells(y: int, x: int, expected: Tuple[int, int]) -> None:
    assert _f(log2_plus_one_times(y, x, NEAREST)) == expected


# -- finite results: correct rounding ----------------------------------------------------

def _value(bits: int) -> Decimal:
    """The exact value of a finite 80-bit register (independent of the code)."""
    sign, exponent, sig = bits >> 79, bits >> 64 & 0x7FFF, bits & ((1 << 64) - 1)
    magnitude = Decimal(sig) * Decimal(2) ** (max(exponent, 1) - 16383 - 63)
    return -magnitude if sign else magnitude


def _next_magnitude(bits: int, step: int) -> int:
    """The 80-bit value one unit above (step 1) or below (-1) in magnitude."""
    sign, exponent, sig = bits >> 79, bits >> 64 & 0x7FFF, bits & ((1 << 64) - 1)
    sig += step
    if sig == 1 << 64:                    # 1.11..1 up: the next binade
        exponent, sig = exponent + 1, J
    elif sig == J - 1 and exponent > 1:   # 1.00..0 down: the binade below
        exponent, sig = exponent - 1, (1 << 64) - 1
    return sign << 79 | exponent << 64 | sig


def _assert_correctly_rounded(result: int, truth: Decimal, rc: int) -> None:
    """``result`` is the value RC picks for ``truth`` (an irrational number, so never a
    tie and never exact)."""
    mine = _value(result)
    outer, inner = _value(_next_magnitude(result, 1)), _value(_next_magnitude(result, -1))
    below, above = (inner, outer) if mine > 0 else (outer, inner)
    if rc == RC_NEAREST:
        assert abs(truth - mine) < abs(truth - below) and abs(truth - mine) < abs(truth - above)
    elif rc == RC_DOWN:
        assert mine < truth < above
    elif rc == RC_UP:
        assert below < truth < mine
    else:
        assert abs(mine) < abs(truth) < abs(outer)


def _random_finite(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low, high) << 64 | J | rng.getrandbits(63)


@pytest.mark.parametrize("rc", [RC_NEAREST, RC_DOWN, RC_UP, RC_CHOP])
def test_fyl2x_is_correctly_rounded(rc: int) -> None:
    rng = random.Random(f"fyl2x:{rc}")
    ctl = Control(64, rc, True, True)
    with localcontext() as context:
        context.prec = 120
        ln2 = Decimal(2).ln()
        for i in range(60):
            x = _random_finite(rng, 16383 - 300, 16383 + 300)
            if i % 3 == 0:   # next to 1, where log2 x is tiny: relative precision counts
                x = ONE + rng.randint(1, 1 << 20) if i % 2 else ONE - (1 << 64) + J - 1
            y = rng.getrandbits(1) << 79 | _random_finite(rng, 16383 - 40, 16383 + 40)
            out = log2_times(y, x, ctl)
            assert out.flags == PE, (hex(y), hex(x))
            _assert_correctly_rounded(out.value, _value(y) * _value(x).ln() / ln2, rc)


@pytest.mark.parametrize("rc", [RC_NEAREST, RC_DOWN, RC_UP, RC_CHOP])
def test_fyl2xp1_is_correctly_rounded(rc: int) -> None:
    rng = random.Random(f"fyl2xp1:{rc}")
    ctl = Control(64, rc, True, True)
    with localcontext() as context:
        context.prec = 120
        ln2 = Decimal(2).ln()
        for _ in range(60):
            x = rng.getrandbits(1) << 79 | _random_finite(rng, 16383 - 200, 16380)
            y = rng.getrandbits(1) << 79 | _random_finite(rng, 16383 - 40, 16383 + 40)
            out = log2_plus_one_times(y, x, ctl)
            assert out.flags == PE, (hex(y), hex(x))
            _assert_correctly_rounded(out.value, _value(y) * (1 + _value(x)).ln() / ln2, rc)


def test_fyl2xp1_of_a_tiny_x_keeps_every_bit() -> None:
    """log2(1 + x) = x / ln 2 - ...: for x = 2**-100 the result is 2**-100 * log2(e)
    rounded, log2(e) being FLDL2E's 0xB8AA3B295C17F0BC (nearest; SDM Vol. 1, 8.3.8)."""
    out = log2_plus_one_times(ONE, (16383 - 100) << 64 | J, NEAREST)
    assert out.value == (16383 - 100) << 64 | 0xB8AA_3B29_5C17_F0BC and out.flags == PE


def test_overflow_and_underflow_round_like_any_result() -> None:
    """y * log2 x beyond the format: masked #O gives infinity with PE, masked #U a
    denormal or zero with UE and PE (SDM Vol. 1, 4.9.1.4-5)."""
    huge, tiny = 0x7FFE << 64 | J, 0x0001 << 64 | J
    assert _f(log2_times(huge, 0x7FFE << 64 | J, NEAREST)) == (PINF, 0x08 | PE)
    out = log2_times(tiny, 0x3FFE << 64 | 3 << 62, NEAREST)   # log2 0.75 = -0.415...
    assert out.flags == UE | PE and out.value >> 64 == 0x8000 and out.value & J == 0


def test_stack_underflow_and_the_pop() -> None:
    """Through the instruction: ST(1) := result, pop (TOP + 1); an empty ST(1) is a
    stack underflow (IE, SF, C1 = 0), masked: ST(1) := indefinite, then the pop."""
    for code, x, y, result in ((b"\xd9\xf1", EIGHT, THREE, NINE),
                               (b"\xd9\xf9", PZERO, ONE, PZERO)):
        cpu = make_cpu(code)
        fpu = cpu.fpu
        fpu.push(y)
        fpu.push(x)
        assert cpu.step().exception is None
        assert fpu.top == 7 and fpu.st(0) == result and fpu.is_empty(1)
        assert fpu.status_word & 0x7F == 0
        cpu = make_cpu(code)
        cpu.fpu.push(x)
        cpu.fpu.status_word |= C1
        assert cpu.step().exception is None
        assert cpu.fpu.st(0) == INDEFINITE and cpu.fpu.status_word & (0x41 | C1) == 0x41
