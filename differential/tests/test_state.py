"""Initial-state helpers (``differential.state``) whose values every drawn case depends on."""

from __future__ import annotations

from differential.state import pages_covering


def test_pages_covering_wraps_at_4_gib_and_sorts() -> None:
    """eSP - 64 below 0 and an operand past 4 GiB wrap (the generator's stack and
    operand addresses); each page appears once, lowest first."""
    addresses = [0x1FFF, -1, 0x1_0000_0FFF, 0x1234, 0xFFFFF000, -0x1000]
    assert pages_covering(addresses) == [0x0, 0x1000, 0xFFFFF000]
