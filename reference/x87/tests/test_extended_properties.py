"""80-bit rounding properties that hold for every input, checked by Hypothesis against
exact rationals (``value_of``): an addition is the exact sum rounded one place wide in
the direction RC says; rounding to single is monotonic and a single loads back exactly.
Apart from the manuals' values in ``test_extended.py`` because they need Hypothesis,
which the pypy3 run does not have (``reference/tests/third_party.py``)."""

from __future__ import annotations

from fractions import Fraction

from reference.tests.third_party import require

require("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference.x87.arith import Control, add  # noqa: E402
from reference.x87.extended import (  # noqa: E402
    OE,
    PE,
    RC_CHOP,
    RC_DOWN,
    RC_NEAREST,
    RC_UP,
    SINGLE,
    UE,
    exact,
    from_ieee,
    round_exact,
)
from reference.x87.tests.test_extended import value_of  # noqa: E402

finite80 = st.builds(lambda s, e, m: s << 79 | e << 64 | (1 << 63) | m,
                     st.integers(0, 1), st.integers(1, 0x7FFE), st.integers(0, (1 << 63) - 1))
rounding = st.sampled_from((RC_NEAREST, RC_DOWN, RC_UP, RC_CHOP))


@settings(max_examples=300, deadline=None)
@given(finite80, finite80, rounding, st.sampled_from((24, 53, 64)))
def test_addition_is_the_exact_sum_rounded(a: int, b: int, rc: int, precision: int) -> None:
    """The result brackets the exact sum as the rounding direction says, one place wide."""
    out = add(a, b, Control(precision, rc, True, True))
    if out.flags & (OE | UE) or out.value >> 64 & 0x7FFF in (0, 0x7FFF):
        return
    truth = value_of(a) + value_of(b)
    got = value_of(out.value)
    exponent = (out.value >> 64 & 0x7FFF) - 16383
    ulp = Fraction(2) ** (exponent - precision + 1)
    assert abs(got - truth) < ulp
    if rc == RC_DOWN:
        assert got <= truth
    elif rc == RC_UP:
        assert got >= truth
    elif rc == RC_CHOP:
        assert abs(got) <= abs(truth)
    else:
        assert abs(got - truth) <= ulp / 2
    assert bool(out.flags & PE) == (got != truth)
    assert out.up == (abs(got) > abs(truth))


@settings(max_examples=300, deadline=None)
@given(finite80, rounding)
def test_single_round_trip_and_monotonic(a: int, rc: int) -> None:
    """Rounding to single is monotonic in the value; a single loads back exactly."""
    b = a + (1 << 30) if a & ((1 << 63) - 1) < (1 << 63) - (1 << 31) else a
    ra = round_exact(*exact(a), SINGLE, 24, rc)
    rb = round_exact(*exact(b), SINGLE, 24, rc)
    loaded_a = from_ieee(ra.bits, SINGLE)[0]
    loaded_b = from_ieee(rb.bits, SINGLE)[0]
    if ra.flags & OE or rb.flags & OE:
        return
    if a >> 79:
        assert value_of(loaded_a) >= value_of(loaded_b)
    else:
        assert value_of(loaded_a) <= value_of(loaded_b)
    again = round_exact(*exact(loaded_a), SINGLE, 24, rc)
    assert again.bits == ra.bits and not again.flags & PE
