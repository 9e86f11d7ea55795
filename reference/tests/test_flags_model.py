"""The flag arithmetic against a bit-serial adder written here (an independent model):
CF is the carry out of the top bit, AF the carry out of bit 3, OF the carry into the top
bit XOR the carry out of it (SDM Vol. 1, 3.4.3.1). Subtraction is a + ~b + 1 with the
borrow the inverted carry."""

from __future__ import annotations

from reference.tests.third_party import require

require("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference.flags import AF, CF, OF, PF, SF, ZF, Flags  # noqa: E402

STATUS = CF | PF | AF | ZF | SF | OF


def ripple(a: int, b: int, carry: int, size: int):
    """(result, carry out of bit 3, carry into the top bit, carry out of the top bit)."""
    result = 0
    carries = []
    for bit in range(size):
        x, y = (a >> bit) & 1, (b >> bit) & 1
        result |= (x ^ y ^ carry) << bit
        carry = (x & y) | (x & carry) | (y & carry)
        carries.append(carry)
    return result, carries[3], carries[size - 2], carries[size - 1]


def model_flags(result: int, size: int, carry: bool, aux: bool, overflow: bool) -> int:
    ones = bin(result & 0xFF).count("1")
    return ((CF if carry else 0) | (AF if aux else 0) | (OF if overflow else 0)
            | (ZF if result == 0 else 0) | (SF if result >> (size - 1) else 0)
            | (PF if ones % 2 == 0 else 0))


sizes = st.sampled_from([8, 16, 32])


@given(size=sizes, a=st.integers(0, 2**32 - 1), b=st.integers(0, 2**32 - 1),
       carry=st.integers(0, 1))
def test_add_with_carry_matches_the_ripple_adder(size, a, b, carry) -> None:
    mask = (1 << size) - 1
    a, b = a & mask, b & mask
    result, aux, into_top, out_top = ripple(a, b, carry, size)
    flags = Flags()
    flags.after_add(a, b, a + b + carry, size)
    assert flags.value & STATUS == model_flags(result, size, bool(out_top), bool(aux),
                                               bool(into_top ^ out_top))


@given(size=sizes, a=st.integers(0, 2**32 - 1), b=st.integers(0, 2**32 - 1),
       borrow=st.integers(0, 1))
def test_subtract_with_borrow_matches_the_ripple_adder(size, a, b, borrow) -> None:
    mask = (1 << size) - 1
    a, b = a & mask, b & mask
    result, aux, into_top, out_top = ripple(a, ~b & mask, 1 - borrow, size)
    flags = Flags()
    flags.after_sub(a, b, a - b - borrow, size)
    assert flags.value & STATUS == model_flags(result, size, not out_top, not aux,
                                               bool(into_top ^ out_top))
