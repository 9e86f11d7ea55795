"""ADD ADC SUB SBB CMP INC DEC NEG AND OR XOR NOT TEST on edge values, with expected
results and flags worked out from the SDM's definitions in the test itself."""

from __future__ import annotations

import pytest

from reference.flags import AF, CF, OF, PF, SF, ZF

STATUS = CF | PF | AF | ZF | SF | OF


def parity(value: int) -> int:
    return PF if bin(value & 0xFF).count("1") % 2 == 0 else 0


def szp(value: int, bits: int) -> int:
    return (ZF if value == 0 else 0) | (SF if value >> (bits - 1) else 0) | parity(value)


@pytest.mark.parametrize("a,b,carry", [
    (0xFFFFFFFF, 1, 0), (0x7FFFFFFF, 1, 0), (0x80000000, 0x80000000, 0), (0x0F, 1, 0),
    (0xFFFFFFFF, 0xFFFFFFFF, 1), (0x7FFFFFFF, 0, 1), (0, 0, 0), (0x12345678, 0x9ABCDEF0, 1),
])
@pytest.mark.parametrize("with_carry", [False, True], ids=["ADD", "ADC"])
def test_add_and_adc_32(run_one, a, b, carry, with_carry) -> None:
    cpu = run_one(bytes.fromhex("11 d8" if with_carry else "01 d8"), eax=a, ebx=b,
                  eflags=CF if carry else 0)
    cin = carry if with_carry else 0
    total = a + b + cin
    result = total & 0xFFFFFFFF
    signed = (a ^ 0x80000000) - 0x80000000 + (b ^ 0x80000000) - 0x80000000 + cin
    expected = szp(result, 32) | (CF if total >> 32 else 0)
    expected |= AF if ((a & 0xF) + (b & 0xF) + cin) > 0xF else 0
    expected |= OF if not -(1 << 31) <= signed < (1 << 31) else 0
    assert cpu.get_reg("eax") == result
    assert cpu.get_reg("eflags") & STATUS == expected


@pytest.mark.parametrize("a,b,borrow", [
    (0, 1, 0), (0x80, 1, 0), (0x7F, 0xFF, 0), (0x10, 1, 0), (0, 0, 1), (0xFF, 0xFF, 1),
    (0x80, 0x7F, 1), (0x33, 0x33, 0),
])
@pytest.mark.parametrize("opcode", ["28", "18", "38"], ids=["SUB", "SBB", "CMP"])
def test_sub_sbb_cmp_8(run_one, a, b, borrow, opcode) -> None:
    cpu = run_one(bytes.fromhex(f"{opcode} d8"), eax=a, ebx=b, eflags=CF if borrow else 0)
    bin_ = borrow if opcode == "18" else 0
    total = a - b - bin_
    result = total & 0xFF
    signed = (a ^ 0x80) - 0x80 - ((b ^ 0x80) - 0x80) - bin_
    expected = szp(result, 8) | (CF if total < 0 else 0)
    expected |= AF if (a & 0xF) - (b & 0xF) - bin_ < 0 else 0
    expected |= OF if not -128 <= signed < 128 else 0
    assert cpu.get_reg("al") == (a if opcode == "38" else result)  # CMP writes nothing
    assert cpu.get_reg("eflags") & STATUS == expected


@pytest.mark.parametrize("value,carry", [(0x7FFF, 1), (0xFFFF, 0), (0x000F, 1), (0, 0)])
def test_inc_dec_16_keep_cf(run_one, value, carry) -> None:
    inc = run_one(bytes.fromhex("66 40"), eax=value, eflags=CF * carry)
    dec = run_one(bytes.fromhex("66 48"), eax=value, eflags=CF * carry)
    up, down = (value + 1) & 0xFFFF, (value - 1) & 0xFFFF
    assert inc.get_reg("ax") == up and dec.get_reg("ax") == down
    assert inc.get_reg("eflags") & STATUS == (
        szp(up, 16) | CF * carry | (OF if value == 0x7FFF else 0)
        | (AF if value & 0xF == 0xF else 0))
    assert dec.get_reg("eflags") & STATUS == (
        szp(down, 16) | CF * carry | (OF if value == 0x8000 else 0)
        | (AF if value & 0xF == 0 else 0))


@pytest.mark.parametrize("value", [0, 1, 0x80, 0xFF, 0x10])
def test_neg_8(run_one, value) -> None:
    cpu = run_one(bytes.fromhex("f6 db"), ebx=value)      # NEG BL
    result = -value & 0xFF
    expected = szp(result, 8) | (CF if value else 0) | (OF if value == 0x80 else 0)
    expected |= AF if value & 0xF else 0
    assert cpu.get_reg("bl") == result
    assert cpu.get_reg("eflags") & STATUS == expected


@pytest.mark.parametrize("opcode,op", [("21", lambda a, b: a & b), ("09", lambda a, b: a | b),
                                       ("31", lambda a, b: a ^ b), ("85", lambda a, b: a & b)],
                         ids=["AND", "OR", "XOR", "TEST"])
@pytest.mark.parametrize("a,b", [(0xF0F0F0F0, 0x0F0F0F0F), (0x80000001, 0xFFFFFFFF), (3, 1)])
def test_logic_clears_of_cf(run_one, opcode, op, a, b) -> None:
    cpu = run_one(bytes.fromhex(f"{opcode} d8"), eax=a, ebx=b, eflags=OF | CF)
    result = op(a, b)
    assert cpu.get_reg("eax") == (a if opcode == "85" else result)
    assert cpu.get_reg("eflags") & (STATUS & ~AF) == szp(result, 32)


def test_not_changes_no_flags(run_one) -> None:
    cpu = run_one(bytes.fromhex("f7 d0"), eax=0x0000FFFF, eflags=STATUS)
    assert cpu.get_reg("eax") == 0xFFFF0000
    assert cpu.get_reg("eflags") & STATUS == STATUS


def test_add_to_memory_with_lock(run_one) -> None:
    # LOCK ADD DWORD [EBX+4], 0x11223344 -- memory operand in the data page
    cpu = run_one(bytes.fromhex("f0 81 43 04 44 33 22 11"), ebx=0x2000)
    assert cpu.read_linear(0x2004, 4) == 0x11223344


def test_sixteen_bit_immediate_group_sign_extends(run_one) -> None:
    cpu = run_one(bytes.fromhex("83 e8 ff"), "real16", eax=5)  # SUB AX, -1
    assert cpu.get_reg("eax") == 6
    assert cpu.get_reg("eflags") & CF  # 5 - 0xFFFF borrows
