"""Initial-state helpers (``differential.state``) whose values every drawn case depends on."""

from __future__ import annotations

from differential.state import pages_covering


def test_pages_covering_wraps_at_4_gib_and_sorts() -> None:
    """eSP - 64 below 0 and an operand past 4 GiB wrap (the generator's stack and
    operand addresses); each page appears once, lowest first."""
    addresses = [0x1FFF, -1, 0x1_0000_0FFF, 0x1234, 0xFFFFF000, -0x1000]
    assert pages_covering(addresses) == [0x0, 0x1000, 0xFFFFF000]



def test_value32_is_a_32_bit_value_without_a_mask() -> None:
    """The small negatives and the powers of two (+-1) are no longer masked to 32 bits
    (issue 18): every kind must still land in [0, 2**32), 2**31 + 1 and 2**32 - 256
    among them."""
    from differential.draw import RandomDraw
    from differential.state import value32

    seen = set()
    for seed in range(200):
        draw = RandomDraw(seed)
        seen.update(value32(draw) for _ in range(100))
    assert min(seen) >= 0 and max(seen) < 2**32
    assert {2**31 + 1, 2**32 - 256, 0xFFFFFFFF} <= seen
