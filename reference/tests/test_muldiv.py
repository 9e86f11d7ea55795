"""MUL IMUL DIV IDIV: the reference against Python arithmetic, the SDM's #DE rules, Unicorn.

Expected quotients use ``fractions.Fraction`` (``int()`` of a Fraction truncates toward
zero, which is IDIV's rounding) rather than the floor/abs arithmetic of the reference.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from reference.faults import DE
from reference.tests.conftest import CODE
from reference.tests.handmade import (
    DATA,
    assert_unicorn_agrees,
    random_case_test,
    run,
    unicorn_disagreements,
)
from reference.tests.native_i386 import native_disagreements, require_native

SIZES = (8, 16, 32)
GROUP = {8: 0xF6, 16: 0xF7, 32: 0xF7}
DIGIT = {"MUL": 4, "IMUL": 5, "DIV": 6, "IDIV": 7}


def one_operand(op: str, size: int, mode: str = "prot32", modrm_rm: int = 0xC1) -> bytes:
    """``op`` with ECX/CX/CL (or a memory ModRM) as the source; 66 where needed."""
    default = 32 if mode == "prot32" else 16
    prefix = b"\x66" if size not in (8, default) else b""
    return prefix + bytes([GROUP[size], modrm_rm | DIGIT[op] << 3])


def signed(value: int, size: int) -> int:
    value &= (1 << size) - 1
    return value - (1 << size) if value >= 1 << (size - 1) else value


def pair(cpu, size: int) -> int:
    """AX, DX:AX or EDX:EAX after the instruction."""
    if size == 8:
        return cpu.get_reg("ax")
    low, high = ("ax", "dx") if size == 16 else ("eax", "edx")
    return cpu.get_reg(high) << size | cpu.get_reg(low)


def edge_values(size: int):
    rng = random.Random(size)
    top = 1 << (size - 1)
    return (0, 1, 2, top - 1, top, top + 1, (1 << size) - 1, rng.getrandbits(size))


def registers_for(size: int, accumulator: int, source: int, high: int = 0) -> dict:
    """EAX/EDX/ECX so that the pair's low half, high half and the source hold these."""
    if size == 8:
        return dict(eax=0xAAAA0000 | (high << 8) | accumulator, ecx=0x5555_5500 | source,
                    edx=0x12345678)
    return dict(eax=accumulator, edx=high, ecx=source)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("op", ("MUL", "IMUL"))
def test_one_operand_multiply_fills_the_pair(op: str, size: int) -> None:
    for a in edge_values(size):
        for b in edge_values(size):
            cpu, _ = run(one_operand(op, size), **registers_for(size, a, b))
            if op == "MUL":
                product = a * b
                lost = product >> size != 0
            else:
                product = signed(a, size) * signed(b, size)
                lost = not -(1 << (size - 1)) <= product < (1 << (size - 1))
            assert pair(cpu, size) == product % (1 << 2 * size), f"{a:#x} * {b:#x}"
            assert (cpu.flags.cf, cpu.flags.of) == (int(lost), int(lost)), f"{a:#x} * {b:#x}"


@pytest.mark.parametrize("size", (16, 32))
@pytest.mark.parametrize("shape", ("0F AF", "69", "6B"))
def test_two_and_three_operand_imul_truncates(shape: str, size: int) -> None:
    """IMUL EAX, ECX / IMUL EAX, ECX, imm: DEST := truncated product; CF = OF = 1 when
    the truncation lost information (the full signed product differs)."""
    rng = random.Random(f"{shape}{size}")
    prefix = b"\x66" if size == 16 else b""
    for _ in range(40):
        a, b = rng.choice(edge_values(size)), rng.choice(edge_values(size))
        if shape == "0F AF":  # IMUL EAX, ECX: EAX holds a, ECX holds b
            code, regs, factor = prefix + bytes([0x0F, 0xAF, 0xC1]), dict(eax=a, ecx=b), b
        elif shape == "69":  # IMUL EAX, ECX, imm16/32
            code = prefix + bytes([0x69, 0xC1]) + b.to_bytes(size // 8, "little")
            regs, factor = dict(eax=0, ecx=a), b
        else:  # IMUL EAX, ECX, imm8 (sign-extended)
            code, regs, factor = prefix + bytes([0x6B, 0xC1, b & 0xFF]), dict(ecx=a), b & 0xFF
        cpu, _ = run(code, **regs)
        product = signed(a, size) * signed(factor, 8 if shape == "6B" else size)
        lost = int(signed(product, size) != product)
        assert cpu.get_reg("eax") & ((1 << size) - 1) == product % (1 << size), code.hex()
        assert (cpu.flags.cf, cpu.flags.of) == (lost, lost), code.hex()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("op", ("DIV", "IDIV"))
def test_divide_quotient_and_remainder(op: str, size: int) -> None:
    rng = random.Random(f"{op}{size}")
    for _ in range(60):
        dividend, divisor = rng.getrandbits(2 * size), rng.getrandbits(size) or 1
        low, high = dividend & ((1 << size) - 1), dividend >> size
        cpu, result = run(one_operand(op, size), **registers_for(size, low, divisor, high))
        if op == "DIV":
            quotient = int(Fraction(dividend, divisor))
            fits = quotient < 1 << size
        else:
            quotient = int(Fraction(signed(dividend, 2 * size), signed(divisor, size)))
            fits = -(1 << (size - 1)) <= quotient < 1 << (size - 1)
        if not fits:
            assert result.exception is not None and result.exception.vector == DE
            continue
        n, d = ((dividend, divisor) if op == "DIV"
                else (signed(dividend, 2 * size), signed(divisor, size)))
        remainder = n - quotient * d
        assert result.exception is None
        mask = (1 << size) - 1
        assert pair(cpu, size) == (remainder & mask) << size | (quotient & mask)


DE_CASES = [
    ("DIV", 32, 5, 0, 0, "divisor 0"),
    ("DIV", 32, 0, 1, 1, "quotient 2^32 does not fit"),
    ("DIV", 8, 0x00, 0x01, 1, "AX = 256 / 1"),
    ("IDIV", 32, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF, "-2^31 / -1"),
    ("IDIV", 16, 0x8000, 0xFFFF, 0xFFFF, "-2^15 / -1"),
    ("IDIV", 8, 0x80, 0xFF, 0xFF, "-128 / -1"),
    ("IDIV", 32, 0, 0, 0, "divisor 0"),
    ("IDIV", 8, 0x00, 0x01, 0x02, "256 / 2 = 128 > 127"),
]


@pytest.mark.parametrize("op,size,low,high,divisor,why", DE_CASES,
                         ids=[f"{c[0]}{c[1]}-{c[5]}" for c in DE_CASES])
def test_divide_error_leaves_the_state_untouched(op, size, low, high, divisor, why) -> None:
    """SDM DIV/IDIV: #DE for a zero divisor or a quotient too large; as a fault it is
    reported with EIP at the instruction and nothing written."""
    regs = registers_for(size, low, divisor, high)
    cpu, result = run(one_operand(op, size), eflags=0x8D7, **regs)
    assert result.exception is not None and result.exception.vector == DE, why
    assert result.exception.kind == "fault"
    assert cpu.eip == CODE and cpu.flags.value & 0xFFF == 0x8D7
    assert [cpu.get_reg(name) for name in ("eax", "ecx", "edx")] == [
        regs["eax"], regs["ecx"], regs["edx"]]
    assert unicorn_disagreements(one_operand(op, size), **regs) == []


def test_idiv_of_the_most_negative_by_one_is_allowed() -> None:
    """-2^31 / 1 = -2^31 fits (only 8086-era CPUs refused the most negative quotient)."""
    cpu, result = run(one_operand("IDIV", 32), eax=0x8000_0000, edx=0xFFFF_FFFF, ecx=1)
    assert result.exception is None
    assert (cpu.get_reg("eax"), cpu.get_reg("edx")) == (0x8000_0000, 0)


def test_idiv_remainder_takes_the_dividend_sign() -> None:
    """-7 / 2 = -3 remainder -1 (truncation toward zero, not Python's floor)."""
    cpu, _ = run(one_operand("IDIV", 32), eax=(-7) & 0xFFFF_FFFF, edx=0xFFFF_FFFF, ecx=2)
    assert (signed(cpu.get_reg("eax"), 32), signed(cpu.get_reg("edx"), 32)) == (-3, -1)


def _memory_source_checks(mode: str, op: str):
    rng = random.Random(f"{mode}{op}")
    memory_rm = 0x07 if mode == "real16" else 0x03
    for size in SIZES:
        for _ in range(12):
            low, high = rng.getrandbits(size), rng.choice((0, 1, rng.getrandbits(size)))
            source = rng.choice((0, 1, (1 << size) - 1, rng.getrandbits(size)))
            regs = dict(registers_for(size, low, 0, high), ebx=DATA)
            yield one_operand(op, size, mode, memory_rm), source.to_bytes(4, "little"), regs


@pytest.mark.parametrize("mode", ("prot32", "real16"))
@pytest.mark.parametrize("op", sorted(DIGIT))
def test_memory_sources_agree_with_unicorn(mode: str, op: str) -> None:
    """The source in memory ([EBX] / [BX]), every size, values that fit and that fault."""
    assert_unicorn_agrees(mode, _memory_source_checks(mode, op))


test_muldiv_forms_agree_with_unicorn_on_random_cases = random_case_test(
    "MUL", "IMUL", "DIV", "IDIV")


def test_multiply_and_divide_agree_with_the_host_cpu() -> None:
    """Every one-operand form at each size (register and [EBX] sources), the 0F AF / 69 /
    6B IMULs, with values that fit and that raise #DE (SIGFPE natively)."""
    require_native()
    rng = random.Random("native-muldiv")
    cases = []
    for op in DIGIT:
        for size in SIZES:
            for modrm_rm in (0xC1, 0x03):  # ECX / [EBX]
                for _ in range(24):
                    low, high = rng.choice(edge_values(size)), rng.choice((0, 1, -1 & 0xFF))
                    source = rng.choice(edge_values(size) + (rng.getrandbits(size),))
                    regs = registers_for(size, low, source, high)
                    data = bytes(32) + source.to_bytes(4, "little") + bytes(28)
                    cases.append((one_operand(op, size, "prot32", modrm_rm), regs["eax"],
                                  regs["ecx"], regs["edx"], rng.getrandbits(1), data))
    for prefix, imm in ((b"", b"\x00\x80\xFF\xFF"), (b"\x66", b"\x00\x80")):
        for tail in (b"\x0F\xAF\xC1", b"\x69\xC1" + imm, b"\x6B\xC1\x80"):
            for _ in range(12):
                cases.append((prefix + tail, rng.getrandbits(32), rng.getrandbits(32), 0, 0,
                              b""))
    assert native_disagreements(cases) == []
