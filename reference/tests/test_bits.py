"""BT BTS BTR BTC BSF BSR: the reference against Python arithmetic and Unicorn.

Memory bit strings are checked at byte granularity (bit n of the string is bit n MOD 8 of
byte n DIV 8, SDM Vol. 1 "Bit and Byte Order"), while the reference reads whole operand
words; so a wrong word address or bit number shows up as a different bit.
"""

from __future__ import annotations

import random

import pytest

from reference.flags import ZF
from reference.tests.handmade import (
    DATA,
    assert_unicorn_agrees,
    data_word,
    random_case_test,
    run,
    unicorn_disagreements,
)
from reference.tests.native_i386 import native_disagreements, require_native

# 0F A3/AB/B3/BB /r (register offset) and 0F BA /4-/7 ib (immediate offset)
REG_OPCODES = {"BT": 0xA3, "BTS": 0xAB, "BTR": 0xB3, "BTC": 0xBB}
IMM_DIGITS = {"BT": 4, "BTS": 5, "BTR": 6, "BTC": 7}
BASE = 0x800  # the bit string starts mid-page so offsets can go below it
PATTERN = random.Random(7).randbytes(4096)


def updated(op: str, value: int, bit: int) -> int:
    """The bit string after ``op`` on bit ``bit`` (SDM: set, clear, complement)."""
    if op == "BTS":
        return value | (1 << bit)
    if op == "BTR":
        return value & ~(1 << bit)
    if op == "BTC":
        return value ^ (1 << bit)
    return value


@pytest.mark.parametrize("op", sorted(REG_OPCODES))
@pytest.mark.parametrize("size", (16, 32))
def test_register_base_takes_the_offset_modulo_the_size(op: str, size: int) -> None:
    rng = random.Random(f"{op}{size}")
    prefix = b"\x66" if size == 16 else b""
    for offset in (0, 1, size - 1, size, size + 5, 0xFFFF, 0x8000_0000, 0xFFFF_FFFF):
        value = rng.getrandbits(32)
        cpu, _ = run(prefix + bytes([0x0F, REG_OPCODES[op], 0xC8]), eax=value, ecx=offset)
        bit = offset % size
        mask = (1 << size) - 1
        assert cpu.flags.cf == (value >> bit) & 1
        assert cpu.get_reg("eax") & mask == updated(op, value, bit) & mask
        assert cpu.get_reg("eax") >> size == value >> size  # upper half of EAX kept


@pytest.mark.parametrize("op", sorted(REG_OPCODES))
@pytest.mark.parametrize("size", (16, 32))
def test_register_offset_into_memory_is_signed_and_unbounded(op: str, size: int) -> None:
    """BT [EBX], ECX with offsets far below and above EBX (SDM BT: -2^31..2^31-1 for
    32-bit offsets, -2^15..2^15-1 for 16-bit ones)."""
    prefix = b"\x66" if size == 16 else b""
    offsets = (0, 7, 8, 31, 32, 100, -1, -8, -9, -33, -0x3FF0, 0x3FF0)
    for offset in offsets:
        cpu, result = run(prefix + bytes([0x0F, REG_OPCODES[op], 0x0B]), data=PATTERN,
                          ebx=DATA + BASE, ecx=offset & 0xFFFFFFFF)
        assert result.exception is None
        string = bytearray(PATTERN)
        byte, bit = BASE + (offset >> 3), offset & 7
        assert cpu.flags.cf == (string[byte] >> bit) & 1, f"offset {offset}"
        string[byte] = updated(op, string[byte], bit)
        assert data_word(cpu, 0, 4096) == int.from_bytes(string, "little"), f"offset {offset}"


def test_sixteen_bit_offset_register_is_sign_extended() -> None:
    """With a 16-bit operand size, CX = 0xFFFF is offset -1: bit 7 of the byte below."""
    cpu, _ = run(bytes([0x66, 0x0F, 0xAB, 0x0B]), data=bytes(4096), ebx=DATA + BASE,
                 ecx=0x1234FFFF)
    assert data_word(cpu, BASE - 1, 1) == 0x80 and cpu.flags.cf == 0


def test_immediate_offset_stays_inside_the_memory_operand() -> None:
    """BTS dword [EBX], 0x27: an imm8 offset is taken modulo 32, so bit 7 of [EBX] is set,
    not bit 7 of [EBX+4] (SDM BT: "the immediate bit offset ... modulo the size")."""
    cpu, _ = run(bytes([0x0F, 0xBA, 0x2B, 0x27]), data=bytes(8), ebx=DATA)
    assert data_word(cpu, 0, 8) == 0x80


def test_bit_offset_wraps_with_a_16_bit_address_size() -> None:
    """[BX] with BX = 8 and bit offset -128 (-16 bytes) addresses offset 0xFFF8, not
    0xFFFFFFF8: effective addresses wrap at 64 KiB with a 16-bit address size."""
    _, result = run(bytes([0x67, 0x0F, 0xA3, 0x0F]), ebx=8, ecx=(-128) & 0xFFFFFFFF)
    assert result.exception is not None and result.exception.kind == "unmapped"
    assert result.unmapped_address == 0xFFF8


def lowest_set_bit(value: int) -> int:
    return next(i for i in range(32) if value >> i & 1)


def highest_set_bit(value: int) -> int:
    return next(i for i in reversed(range(32)) if value >> i & 1)


@pytest.mark.parametrize("op,opcode,expect", [("BSF", 0xBC, lowest_set_bit),
                                              ("BSR", 0xBD, highest_set_bit)])
@pytest.mark.parametrize("size", (16, 32))
def test_bit_scan_finds_the_index(op: str, opcode: int, expect, size: int) -> None:
    rng = random.Random(op)
    prefix = b"\x66" if size == 16 else b""
    mask = (1 << size) - 1
    for source in (1, 2, 0x80, 1 << (size - 1), mask, rng.getrandbits(size) | 1 << 3):
        cpu, _ = run(prefix + bytes([0x0F, opcode, 0xC1]), eax=0xDEADBEEF, ecx=source,
                     eflags=2 | ZF)
        assert cpu.flags.zf == 0
        assert cpu.get_reg("eax") & mask == expect(source)
        assert cpu.get_reg("eax") >> size == 0xDEADBEEF >> size


@pytest.mark.parametrize("opcode", (0xBC, 0xBD))
def test_bit_scan_of_zero_sets_zf_and_keeps_the_destination(opcode: int) -> None:
    """SDM: source 0 -> ZF = 1, DEST undefined; CPUs and Unicorn leave DEST unchanged."""
    cpu, _ = run(bytes([0x0F, opcode, 0xC1]), eax=0x12345678, ecx=0)
    assert cpu.flags.zf == 1 and cpu.get_reg("eax") == 0x12345678
    assert unicorn_disagreements(bytes([0x0F, opcode, 0xC1]), eax=0x12345678, ecx=0) == []


def _memory_offset_checks(mode: str, op: str):
    rng = random.Random(f"{mode}{op}")
    memory_rm = 0x07 if mode == "real16" else 0x03  # [BX] / [EBX]
    for prefix in (b"", b"\x66"):
        for offset in (0, 5, 31, 32, 63, -1, -32, -33, 1000, -1000):
            code = prefix + bytes([0x0F, REG_OPCODES[op], 0x08 | memory_rm])
            yield code, PATTERN, dict(ebx=DATA + BASE, ecx=offset & 0xFFFFFFFF,
                                      eflags=2 | rng.getrandbits(1))
        for imm in (0, 15, 16, 31, 32, 255):
            code = prefix + bytes([0x0F, 0xBA, memory_rm | IMM_DIGITS[op] << 3, imm])
            yield code, PATTERN, dict(ebx=DATA + BASE)


@pytest.mark.parametrize("mode", ("prot32", "real16"))
@pytest.mark.parametrize("op", sorted(REG_OPCODES))
def test_bit_tests_agree_with_unicorn_on_offsets_into_memory(mode: str, op: str) -> None:
    assert_unicorn_agrees(mode, _memory_offset_checks(mode, op))


test_bit_forms_agree_with_unicorn_on_random_cases = random_case_test(
    "BT", "BTS", "BTR", "BTC", "BSF", "BSR")


def test_bit_instructions_agree_with_the_host_cpu() -> None:
    """BT* with register offsets into memory (both signs, 16- and 32-bit), immediate
    offsets, register bases, and BSF/BSR including zero sources, run natively."""
    require_native()
    rng = random.Random("native-bits")
    cases = []
    for op, opcode in REG_OPCODES.items():
        for prefix in (b"", b"\x66"):
            for offset in (-256, -129, -33, -32, -1, 0, 1, 31, 32, 100, 255):
                for modrm in (0x0B, 0xC8):  # [EBX],ECX / EAX,ECX
                    cases.append((prefix + bytes([0x0F, opcode, modrm]), rng.getrandbits(32),
                                  offset & 0xFFFFFFFF, 0, rng.getrandbits(1), rng.randbytes(64)))
            for imm in (0, 7, 15, 16, 31, 32, 255):
                code = prefix + bytes([0x0F, 0xBA, 0x03 | IMM_DIGITS[op] << 3, imm])
                cases.append((code, 0, 0, 0, 0, rng.randbytes(64)))
    for opcode in (0xBC, 0xBD):
        for prefix in (b"", b"\x66"):
            for source in (0, 1, 0x8000, 0x80000000, 0xFFFF0000, rng.getrandbits(32)):
                cases.append((prefix + bytes([0x0F, opcode, 0xC1]), 0xDEADBEEF, source, 0,
                              rng.getrandbits(1), b""))
    assert native_disagreements(cases, undefined_dest=True) == []
