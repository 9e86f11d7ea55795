"""DAA DAS AAA AAS AAM AAD: full input tables against independent formulations and Unicorn.

DAA/DAS are checked for all 256 AL values x CF x AF against a "correction byte" view of
decimal adjustment (add or subtract 06H and/or 60H at once), which is a different
formulation from the reference's step-by-step SDM Operation text. AAA/AAS add AH values
that make the +106H/-106H carry reach AH.
"""

from __future__ import annotations

import pytest

from reference.faults import DE
from reference.flags import AF, CF, PF, SF, ZF
from reference.tests.conftest import CODE
from reference.tests.handmade import (
    assert_unicorn_agrees,
    random_case_test,
    run,
    unicorn_disagreements,
)
from reference.tests.native_i386 import native_disagreements, require_native

DAA, DAS, AAA, AAS = b"\x27", b"\x2F", b"\x37", b"\x3F"
FLAG_INPUTS = [(cf, af) for cf in (0, 1) for af in (0, 1)]


def szp(al: int) -> int:
    """SF ZF PF of a byte result (SDM Vol. 1, 3.4.3.1)."""
    bits = SF if al & 0x80 else 0
    bits |= ZF if al == 0 else 0
    bits |= PF if bin(al).count("1") % 2 == 0 else 0
    return bits


def decimal_adjust(al: int, cf: int, af: int, subtract: bool):
    """(AL, flags) after DAA (``subtract`` False) or DAS, as one correction byte."""
    low_adjust = (al & 0x0F) > 9 or af == 1
    high_adjust = al > 0x99 or cf == 1
    correction = (0x06 if low_adjust else 0) | (0x60 if high_adjust else 0)
    # DAS alone can borrow out of the low-digit step without a high adjust (AF set, AL < 6)
    carry = high_adjust or (subtract and low_adjust and al < 6)
    result = (al - correction if subtract else al + correction) & 0xFF
    return result, (CF if carry else 0) | (AF if low_adjust else 0) | szp(result)


@pytest.mark.parametrize("code,subtract", [(DAA, False), (DAS, True)], ids=["DAA", "DAS"])
def test_decimal_adjust_full_table(code: bytes, subtract: bool) -> None:
    mismatches = []
    for al in range(256):
        for cf, af in FLAG_INPUTS:
            cpu, _ = run(code, eax=0x1234_5600 | al, eflags=2 | cf | (AF if af else 0))
            want_al, want_flags = decimal_adjust(al, cf, af, subtract)
            got_flags = cpu.flags.value & (CF | AF | SF | ZF | PF)
            if (cpu.get_reg("al"), got_flags) != (want_al, want_flags):
                mismatches.append(f"AL={al:#04x} CF={cf} AF={af}: got {cpu.get_reg('al'):#04x}"
                                  f"/{got_flags:#x}, want {want_al:#04x}/{want_flags:#x}")
            assert cpu.get_reg("eax") >> 8 == 0x123456  # AH and the upper half untouched
    assert not mismatches, "\n".join(mismatches[:10])


def ascii_adjust(ax: int, af: int, subtract: bool):
    """(AX, CF=AF) after AAA/AAS: the unpacked digit in AL, a carry/borrow into AH."""
    al, ah = ax & 0xFF, ax >> 8
    adjust = (al & 0x0F) > 9 or af == 1
    if adjust:  # AX +/- 106H: the +/-6 may carry or borrow into AH besides the +/-1
        ax = (ax - 0x106 if subtract else ax + 0x106) & 0xFFFF
        al, ah = ax & 0xFF, ax >> 8
    return (ah << 8) | (al & 0x0F), int(adjust)


@pytest.mark.parametrize("code,subtract", [(AAA, False), (AAS, True)], ids=["AAA", "AAS"])
def test_ascii_adjust_full_table(code: bytes, subtract: bool) -> None:
    for ah in (0x00, 0x09, 0x7F, 0xFF):
        for al in range(256):
            for af in (0, 1):
                ax = ah << 8 | al
                cpu, _ = run(code, eax=0xABCD_0000 | ax, eflags=2 | (AF if af else 0))
                want_ax, carry = ascii_adjust(ax, af, subtract)
                assert cpu.get_reg("eax") == 0xABCD_0000 | want_ax, f"AX={ax:#06x} AF={af}"
                assert (cpu.flags.cf, cpu.flags.af) == (carry, carry), f"AX={ax:#06x} AF={af}"


@pytest.mark.parametrize("base", (10, 16, 7, 1, 255))
def test_aam_splits_al_into_digits(base: int) -> None:
    for al in range(256):
        cpu, _ = run(bytes([0xD4, base]), eax=0xFFFF_FF00 | al)
        assert (cpu.get_reg("ah"), cpu.get_reg("al")) == (al // base, al % base)
        assert cpu.flags.value & (SF | ZF | PF) == szp(al % base)


def test_aam_zero_is_a_divide_error() -> None:
    """SDM AAM: "IF imm8 = 0 THEN #DE"; a fault leaves AX, flags and EIP as they were."""
    cpu, result = run(bytes([0xD4, 0x00]), eax=0x1234, eflags=0x8D7)
    assert result.exception is not None and result.exception.vector == DE
    assert (cpu.get_reg("eax"), cpu.eip, cpu.flags.value & 0xFFF) == (0x1234, CODE, 0x8D7)
    assert unicorn_disagreements(bytes([0xD4, 0x00]), eax=0x1234) == []


@pytest.mark.parametrize("base", (10, 16, 0, 255))
def test_aad_combines_the_digits(base: int) -> None:
    for ah in (0, 1, 9, 0x80, 0xFF):
        for al in range(0, 256, 5):
            cpu, _ = run(bytes([0xD5, base]), eax=0x5555_0000 | ah << 8 | al)
            want = (al + ah * base) % 256
            assert cpu.get_reg("eax") == 0x5555_0000 | want
            assert cpu.flags.value & (SF | ZF | PF) == szp(want)


def _every_al(code: bytes):
    for al in range(256):
        for cf, af in FLAG_INPUTS:
            yield code, b"", dict(eax=(0xFF00 if al & 1 else 0x0900) | al,
                                  eflags=2 | cf | AF * af)


@pytest.mark.parametrize("mode", ("prot32", pytest.param("real16", marks=pytest.mark.slow)))
@pytest.mark.parametrize("code", (DAA, DAS, AAA, AAS, b"\xD4\x0A", b"\xD5\x0A"),
                         ids=("DAA", "DAS", "AAA", "AAS", "AAM", "AAD"))
def test_adjusts_agree_with_unicorn_on_every_al(mode: str, code: bytes) -> None:
    """The adjust instructions do not depend on the mode, so real16 repeats are slow-only;
    the random-case test below still covers real16 by default."""
    assert_unicorn_agrees(mode, _every_al(code))


test_bcd_forms_agree_with_unicorn_on_random_cases = random_case_test(
    "DAA", "DAS", "AAA", "AAS", "AAM", "AAD")


def test_adjusts_agree_with_the_host_cpu_on_every_al() -> None:
    """DAA DAS AAA AAS AAM AAD (bases 10, 16, 0) for every AL x CF x AF, natively; AAM 0
    must fault with #DE (SIGFPE) on both."""
    require_native()
    cases = []
    for code in (DAA, DAS, AAA, AAS, b"\xD4\x0A", b"\xD4\x10", b"\xD4\x00", b"\xD5\x0A",
                 b"\xD5\x10"):
        for al in range(256):
            for cf, af in FLAG_INPUTS:
                ah = 0xFF if al & 1 else 0x09
                cases.append((code, 0x5A5A_0000 | ah << 8 | al, 0, 0, 2 | cf | AF * af, b""))
    assert native_disagreements(cases) == []
