"""The constants FLDPI, FLDL2E, FLDL2T, FLDLG2, FLDLN2 load, computed with integers.

The SDM (Vol. 1, 8.3.8) says the FPU keeps each constant with a 66-bit significand and
rounds it to 64 bits by the rounding control (FLDPI: 0x4000C90FDAA22168C235 to nearest,
...C234 down or toward zero). The CPU's results are those of rounding the true value:
log10(2)'s 66-bit form ends exactly half-way, yet FLDLG2 gives ...F799 to nearest
(measured), not the even ...F798. So the true values are computed here, by series in
fixed point with 256 fraction bits, and rounded by RC.
"""

from __future__ import annotations

from typing import Dict, Tuple

from reference.x87.extended import RC_CHOP, RC_DOWN, RC_NEAREST, RC_UP, round_exact

FRACTION_BITS = 256
ONE = 1 << FRACTION_BITS


def arctan_inverse(n: int, bits: int = FRACTION_BITS) -> int:
    """atan(1/n) in fixed point with ``bits`` fraction bits (Gregory series)."""
    one = 1 << bits
    total, power, k = 0, one // n, 0
    while power:
        term = power // (2 * k + 1)
        total += -term if k & 1 else term
        power //= n * n
        k += 1
    return total


def machin_pi(bits: int = FRACTION_BITS) -> int:
    """pi in fixed point with ``bits`` fraction bits (Machin's formula)."""
    return 16 * arctan_inverse(5, bits) - 4 * arctan_inverse(239, bits)


def _artanh_inverse(n: int) -> int:
    """artanh(1/n) in fixed point."""
    total, power, k = 0, ONE // n, 0
    while power:
        total += power // (2 * k + 1)
        power //= n * n
        k += 1
    return total


PI = machin_pi()
LN2 = 2 * _artanh_inverse(3)
LN10 = 3 * LN2 + 2 * _artanh_inverse(9)          # 10 = 8 * (1 + 1/9) / (1 - 1/9)
TRUE_VALUES = {
    "FLDPI": PI,
    "FLDLN2": LN2,
    "FLDL2E": ONE * ONE // LN2,
    "FLDL2T": LN10 * ONE // LN2,
    "FLDLG2": LN2 * ONE // LN10,
}


def _by_rounding(fixed: int) -> Tuple[int, ...]:
    """The 80-bit value for RC = nearest, down, up, chop (in that index order). None of
    the constants is a dyadic rational, so the truncated series is marked inexact."""
    return tuple(round_exact(0, fixed, -FRACTION_BITS, rc=rc, sticky=True).bits
                 for rc in (RC_NEAREST, RC_DOWN, RC_UP, RC_CHOP))


CONSTANTS: Dict[str, Tuple[int, ...]] = {
    "FLD1": (0x3FFF_8000_0000_0000_0000,) * 4,
    "FLDZ": (0,) * 4,
}
CONSTANTS.update({name: _by_rounding(value) for name, value in TRUE_VALUES.items()})
