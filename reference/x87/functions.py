"""The functions behind the x87 transcendental instructions, in integer arithmetic
(SDM Vol. 2A: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1).

The SDM promises these to within one unit in the last place (Vol. 1, 8.3.10); here each
result is computed in fixed point far beyond 64 bits (``WORK`` bits relative to the
result) and rounded once by RC, so it is the correctly rounded value: what a CPU gives
whenever its own error leaves the rounding unchanged. A value is ``(n, s)`` meaning
n * 2**-s with n a signed integer.
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Tuple

from reference.x87.arith import Control, Outcome, denormal_flag, multiply, nan_operands
from reference.x87.constants import machin_pi
from reference.x87.extended import (
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
    round_exact,
    zero,
)

WORK = 256              # bits kept below the leading bit of every intermediate
PI_BITS = 1024          # pi's fraction bits: reduction of |x| < 2**63 keeps WORK bits
Fixed = Tuple[int, int]


PI = machin_pi(PI_BITS)
# The argument reduction of FSIN/FCOS/FSINCOS/FPTAN uses pi rounded to 66 bits (SDM
# Vol. 1, 8.3.10); with the exact pi, 2 of 60 large-argument FSIN results matched this
# CPU, with the 66-bit pi 59 (the 60th is one unit off).
PI66_SHIFT = PI_BITS + 2 - 66
PI66 = (PI + (1 << (PI66_SHIFT - 1))) >> PI66_SHIFT << PI66_SHIFT


def _artanh_fixed(n: int, s: int) -> int:
    """artanh(n * 2**-s) at scale s, for |n * 2**-s| <= 1/2 (odd: the sign goes outside,
    so every truncation is toward zero and the series ends)."""
    total, power, k = 0, abs(n), 0
    square = n * n
    while power:
        total += power // (2 * k + 1)
        power = (power * square) >> (2 * s)
        k += 1
    return -total if n < 0 else total


@functools.cache
def _ln2(s: int) -> int:
    """ln 2 at scale s: 2 * artanh(1/3)."""
    one = 1 << s
    total, power, k = 0, one // 3, 0
    while power:
        total += power // (2 * k + 1)
        power //= 9
        k += 1
    return 2 * total


LN2_SCALE = WORK + 96
LN2 = _ln2(LN2_SCALE)


def _fixed(value: int) -> Fixed:
    """An 80-bit finite value, exactly, with at least WORK fraction bits below its lead."""
    sign, mantissa, exponent = exact(value)
    n = -mantissa if sign else mantissa
    return n << WORK, WORK - exponent


def _result(v: Fixed, ctl: Control, flags: int = 0, residual: int = 0) -> Outcome:
    """Round n * 2**-s (a transcendental value, never exact) to 64 bits by RC.

    ``residual`` is the sign of what the series left out (+1: the true value is a
    little above n, -1: below), known when the first omitted term is the whole error,
    as for a tiny argument (sin x = x - x**3/6: just below x). With 0 the value is
    taken as just above n in magnitude; n carries WORK bits beyond the 64 kept, so
    only a result within 2**-WORK of a rounding boundary could be misplaced."""
    n, s = v
    if n == 0 and not residual:
        return Outcome(zero(0), flags)
    if residual:
        n, s = 4 * n + residual, s + 2
    r = round_exact(1 if n < 0 else 0, abs(n), -s, rc=ctl.rc, sticky=not residual,
                    masked_ue=ctl.masked_ue, masked_oe=ctl.masked_oe)
    return Outcome(r.bits, r.flags | flags, r.up)


def _product(a: int, b: int, scale: int, divisor: int = 1) -> int:
    """a * b * 2**-scale / divisor, truncated toward zero (series terms shrink to 0)."""
    magnitude = (abs(a) * abs(b) >> scale) // divisor
    return -magnitude if (a < 0) != (b < 0) else magnitude


def _lead(v: Fixed) -> int:
    """The binary exponent of v's leading bit."""
    return abs(v[0]).bit_length() - 1 - v[1]


def _trim(v: Fixed, keep: int = WORK + 64) -> Fixed:
    n, s = v
    extra = abs(n).bit_length() - keep
    if extra > 0:
        n = -((-n) >> extra) if n < 0 else n >> extra
        s -= extra
    return n, s


def _sin_cos(r: Fixed) -> Tuple[Fixed, Fixed, int, int]:
    """sin and cos of |r| <= pi/4 by their Taylor series, at r's scale plus WORK bits;
    with the signs of their first omitted terms."""
    n, s = r
    scale = max(s, WORK + 8)
    x = n << (scale - s) if scale >= s else n >> (s - scale)
    square = x * x >> scale
    sine, cosine = [x, 0], [1 << scale, 0]       # [term, sum]
    sign_s = sign_c = 0
    k = 0
    while sine[0] or cosine[0]:
        sine[1] += sine[0]
        cosine[1] += cosine[0]
        next_s = -_product(sine[0], square, scale, (2 * k + 2) * (2 * k + 3))
        next_c = -_product(cosine[0], square, scale, (2 * k + 1) * (2 * k + 2))
        if sine[0] and not next_s:
            sign_s = -1 if (x > 0) == (k % 2 == 0) else 1
        if cosine[0] and not next_c:
            sign_c = 1 if k % 2 else -1
        sine[0], cosine[0] = next_s, next_c
        k += 1
    return (sine[1], scale), (cosine[1], scale), sign_s, sign_c


def _reduce(value: int) -> Tuple[Fixed, int]:
    """x = k * pi/2 + r with |r| <= pi/4: (r, k mod 4)."""
    n, s = _fixed(value)
    scale = max(s, PI_BITS) + 0
    x = n << (scale - s)
    half_pi = PI66 << (scale - PI_BITS) >> 1
    k = (2 * x + half_pi) // (2 * half_pi)   # round to nearest
    r = x - k * half_pi
    return _trim((r, scale)), k & 3


def _in_range(value: int) -> bool:
    """FSIN/FCOS/FSINCOS/FPTAN accept |x| < 2**63; otherwise C2 = 1 and nothing else."""
    return (value >> 64 & 0x7FFF) < 16383 + 63


def sin_cos(value: int, ctl: Control) -> Tuple[Optional[Outcome], Optional[Outcome]]:
    """(sin, cos) of ST(0); (None, None) when out of range (C2 := 1)."""
    special = nan_operands(value)
    if special:
        return special, special
    kind = classify(value)
    if kind == INFINITY:
        return Outcome(DEFAULT_NAN, IE), Outcome(DEFAULT_NAN, IE)
    if kind == ZERO:
        return Outcome(value), Outcome(0x3FFF_8000_0000_0000_0000)
    if not _in_range(value):
        return None, None
    flags = denormal_flag(value)
    r, quadrant = _reduce(value)
    s, c, rs, rc = _sin_cos(r)
    sines = ((s, rs), (c, rc), ((-s[0], s[1]), -rs), ((-c[0], c[1]), -rc))
    cosines = ((c, rc), ((-s[0], s[1]), -rs), ((-c[0], c[1]), -rc), (s, rs))
    return (_result(sines[quadrant][0], ctl, flags, sines[quadrant][1]),
            _result(cosines[quadrant][0], ctl, flags, cosines[quadrant][1]))


def tangent(value: int, ctl: Control) -> Optional[Outcome]:
    special = nan_operands(value)
    if special:
        return special
    kind = classify(value)
    if kind == INFINITY:
        return Outcome(DEFAULT_NAN, IE)
    if kind == ZERO:
        return Outcome(value)
    if not _in_range(value):
        return None
    r, quadrant = _reduce(value)
    s, c, _, _ = _sin_cos(r)
    if quadrant & 1:
        s, c = (-c[0], c[1]), s
    return _result(_divide(s, c), ctl, denormal_flag(value))


def _divide(a: Fixed, b: Fixed) -> Fixed:
    na, sa = a
    nb, sb = b
    shift = WORK + 64 + abs(nb).bit_length() - abs(na).bit_length()
    q = (abs(na) << shift) // abs(nb)
    return (q if (na < 0) == (nb < 0) else -q), sa - sb + shift


def _atan_fixed(t: Fixed) -> Fixed:
    """atan(t) for 0 <= t <= 1, by halving the argument then the series."""
    n, s = t
    scale = max(s, WORK + 16)
    x = n << (scale - s) if scale >= s else n >> (s - scale)
    one = 1 << scale
    halvings = 0
    while x > one >> 3:            # atan(x) = 2 atan(x / (1 + sqrt(1 + x**2)))
        root = math.isqrt(one * one + x * x)
        x = (x * one) // (one + root)
        halvings += 1
    total, power, k = 0, x, 0
    square = (x * x) >> scale
    while power:
        total += power // (2 * k + 1) * (-1 if k & 1 else 1)
        power = (power * square) >> scale
        k += 1
    return total << halvings, scale


def arctangent(y: int, x: int, ctl: Control) -> Outcome:
    """FPATAN: atan(ST(1) / ST(0)) with the quadrant from both signs (Table 3-x)."""
    special = nan_operands(y, x)
    if special:
        return special
    flags = denormal_flag(y, x)
    ky, kx = classify(y), classify(x)
    sy, sx = y >> 79, x >> 79
    pi = (PI, PI_BITS)
    half_pi = (PI, PI_BITS + 1)
    if ky == ZERO:
        if sx == 0:
            return Outcome(y, flags)
        return _signed(_result(pi, ctl, flags), sy, ctl, pi)
    if kx == ZERO or (ky == INFINITY and kx != INFINITY):
        return _signed(_result(half_pi, ctl, flags), sy, ctl, half_pi)
    if ky == INFINITY:  # both infinite
        quarter = (PI, PI_BITS + 2) if sx == 0 else (3 * PI, PI_BITS + 2)
        return _signed(_result(quarter, ctl, flags), sy, ctl, quarter)
    if kx == INFINITY:
        if sx == 0:
            return Outcome(zero(sy), flags)
        return _signed(_result(pi, ctl, flags), sy, ctl, pi)
    fy, fx = _fixed(y), _fixed(x)
    ay, ax = (abs(fy[0]), fy[1]), (abs(fx[0]), fx[1])
    swap = _compare(ay, ax) > 0
    t = _divide(ax, ay) if swap else _divide(ay, ax)
    angle = _atan_fixed(_trim(t))
    if swap:
        angle = _sub((PI, PI_BITS + 1), angle)
    if sx:
        angle = _sub((PI, PI_BITS), angle)
    n, s = angle
    return _result((-n if sy else n, s), ctl, flags)


def _signed(out: Outcome, sign: int, ctl: Control, value: Fixed) -> Outcome:
    """A constant result (pi, pi/2...) with the sign of y, rounded in that direction."""
    if not sign:
        return out
    n, s = value
    return _result((-n, s), ctl, out.flags)


def _compare(a: Fixed, b: Fixed) -> int:
    scale = max(a[1], b[1])
    x, y = a[0] << (scale - a[1]), b[0] << (scale - b[1])
    return (x > y) - (x < y)


def _sub(a: Fixed, b: Fixed) -> Fixed:
    scale = max(a[1], b[1])
    return (a[0] << (scale - a[1])) - (b[0] << (scale - b[1])), scale


def _exp_minus_one(t: Fixed) -> Fixed:
    """e**t - 1 for |t| <= 1, by the series (relative precision kept for tiny t)."""
    n, s = t
    scale = max(s, WORK + 16)
    x = n << (scale - s) if scale >= s else n >> (s - scale)
    total, term, k = 0, x, 1
    while term:
        total += term
        k += 1
        term = _product(term, x, scale, k)
    return total, scale


def two_to_x_minus_one(value: int, ctl: Control) -> Outcome:
    """F2XM1: 2**ST(0) - 1 (the SDM defines it for -1 <= ST(0) <= +1)."""
    special = nan_operands(value)
    if special:
        return special
    kind = classify(value)
    if kind == ZERO:
        return Outcome(value)
    if kind == INFINITY:
        return Outcome(value if not value >> 79 else 0xBFFF_8000_0000_0000_0000)
    flags = denormal_flag(value)
    if (value >> 64 & 0x7FFF) >= 0x3FFF and value & ((1 << 79) - 1) != 0x3FFF << 64 | 1 << 63:
        return Outcome(value, flags | PE)  # |x| > 1: undefined; this CPU keeps ST(0), PE
    n, s = _fixed(value)
    t = n * LN2 >> LN2_SCALE          # x * ln 2, still at x's scale s (relative precision)
    scale = s
    return _result(_exp_minus_one((t, scale)), ctl, flags)


def _log2_fixed(m: int, e: int) -> Fixed:
    """log2(m * 2**e) for an integer m > 0 that is not a power of two.

    m * 2**e = r * 2**k with sqrt(1/2) <= r <= sqrt(2), and ln r = 2 artanh(t) with
    t = (r - 1) / (r + 1), |t| <= 0.172. t is one exact quotient of integers, divided to
    WORK + 64 significant bits however close r is to 1, so log2 of a value next to 1
    (FYL2X) or of 1 + a tiny x (FYL2XP1) keeps its relative precision."""
    p = m.bit_length() - 1              # r = m / 2**p lies in [1, 2)
    if m * m > 1 << (2 * p + 1):        # r > sqrt(2): take r / 2
        p += 1
    k = e + p
    n, s = _divide((m - (1 << p), 0), (m + (1 << p), 0))
    ln_r = 2 * _artanh_fixed(n, s)
    log2_r = (abs(ln_r) << LN2_SCALE) // LN2
    return (k << s) + (-log2_r if ln_r < 0 else log2_r), s


def _log_of_zero(y: int) -> Outcome:
    """y * log2(+-0) = y * -infinity: #Z for a finite y (no #D for a denormal one,
    measured), the infinity of the other sign; 0 * -infinity is #IA."""
    kind = classify(y)
    if kind == ZERO:
        return Outcome(DEFAULT_NAN, IE)
    return Outcome(infinity(y >> 79 ^ 1), 0 if kind == INFINITY else ZE)


def _times_log2(y: int, w: Optional[Tuple[int, int]], ctl: Control, flags: int) -> Outcome:
    """y * log2(w) for w = m * 2**e > 0 (None: w = +infinity), y not a NaN: the cells
    of SDM Vol. 2A Table 3-47 (FYL2X) that do not involve a zero or negative w."""
    ky, sy = classify(y), y >> 79
    if w is None:                                   # log2(+inf) = +inf
        return Outcome(DEFAULT_NAN, IE) if ky == ZERO else Outcome(infinity(sy), flags)
    m, e = w
    lead = m.bit_length() - 1 + e                   # 2**lead <= w < 2**(lead + 1)
    power = m & (m - 1) == 0                        # w = 2**lead: log2 w = lead
    if ky == INFINITY:
        if power and lead == 0:                     # inf * log2(1) = inf * 0
            return Outcome(DEFAULT_NAN, IE)
        return Outcome(infinity(sy ^ (lead < 0)), flags)
    if ky == ZERO:
        return Outcome(zero(sy ^ (lead < 0)), flags)
    if power:                                       # an exact product, rounded once
        out = multiply(from_integer(lead), y, ctl)
        return Outcome(out.value, out.flags | flags, out.up)
    n, s = _log2_fixed(m, e)
    _, my, ey = exact(y)
    return _result((-n * my if sy else n * my, s - ey), ctl, flags)


def log2_times(y: int, x: int, ctl: Control) -> Outcome:
    """FYL2X: ST(1) * log2(ST(0)) (SDM Vol. 2A, FYL2X, Table 3-47). A negative ST(0)
    (not -0) is #IA, a zero one #Z; a denormal negative ST(0) raises no #D (measured, as
    for FSQRT)."""
    special = nan_operands(y, x)
    if special:
        return special
    kx = classify(x)
    if kx == ZERO:
        return _log_of_zero(y)
    if x >> 79:
        return Outcome(DEFAULT_NAN, IE)
    flags = denormal_flag(y, x)
    if kx == INFINITY:
        return _times_log2(y, None, ctl, flags)
    _, m, e = exact(x)
    return _times_log2(y, (m, e), ctl, flags)


def log2_plus_one_times(y: int, x: int, ctl: Control) -> Outcome:
    """FYL2XP1: ST(1) * log2(ST(0) + 1) (SDM Vol. 2A, FYL2XP1, Table 3-48), for
    |ST(0)| < 1 - sqrt(2)/2. A zero ST(0) gives y * ST(0) (log2(1 + -0) keeps the sign
    of -0). Outside the range the SDM leaves the result undefined; the reference takes
    it as FYL2X of the exact 1 + ST(0) (1 + x < 0 or x = -inf: #IA; x = -1: #Z)."""
    special = nan_operands(y, x)
    if special:
        return special
    kx = classify(x)
    if kx == ZERO:
        return multiply(x, y, ctl)
    flags = denormal_flag(y, x)
    if kx == INFINITY:
        return _times_log2(y, None, ctl, flags) if not x >> 79 else Outcome(DEFAULT_NAN, IE)
    sign, m, e = exact(x)
    low = min(e, 0)                                 # 1 + x = total * 2**low, exactly
    total = (1 << -low) + ((-m if sign else m) << (e - low))
    if total == 0:
        return _log_of_zero(y)
    if total < 0:
        return Outcome(DEFAULT_NAN, IE)
    return _times_log2(y, (total, low), ctl, flags)
