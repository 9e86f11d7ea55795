"""The native comparison's 1-ulp tolerance (``native._within_one_ulp``), without a CPU:
whatever this machine's vendor rounds to, the tolerance must treat it the same way."""

from __future__ import annotations

from reference.x87.tests.native import X87Result, X87State, _within_one_ulp

SMALLEST_NORMAL = 0x0001_8000_0000_0000_0000
LARGEST_DENORMAL = 0x0000_7FFF_FFFF_FFFF_FFFF
EMPTY7 = (True,) * 7


def _result(value: int, tag_word: int, top: int = 1) -> X87Result:
    state = X87State(0x077F, top << 11, (False,) + EMPTY7, (value,) + (0,) * 7)
    return X87Result(state, tag_word)


def test_a_register_taken_from_the_cpu_takes_its_tag() -> None:
    """One unit below the smallest normal is the largest denormal, tagged special (10):
    an Intel Xeon rounds FYL2X(0.5, -2**-16382) down there, where the exact result is
    the smallest normal (valid, 00). R1 holds ST(0) with TOP = 1."""
    mine = _result(SMALLEST_NORMAL, 0xFFF3)
    native = _result(LARGEST_DENORMAL, 0xFFFB)
    accepted = _within_one_ulp(mine, native)
    assert accepted.state is not None and accepted.state.st[0] == LARGEST_DENORMAL
    assert accepted.tag_word == 0xFFFB
    assert accepted.compared() == native.compared()


def test_a_register_further_off_keeps_its_own_value_and_tag() -> None:
    mine = _result(SMALLEST_NORMAL, 0xFFF3)
    native = _result(LARGEST_DENORMAL - 1, 0xFFFB)
    kept = _within_one_ulp(mine, native)
    assert kept.state is not None and kept.state.st[0] == SMALLEST_NORMAL
    assert kept.tag_word == 0xFFF3
    assert kept.compared() != native.compared()
