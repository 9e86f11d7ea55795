"""Shifts and rotates: the reference against a bit-string model of the SDM, and Unicorn.

The model below works on strings of '0'/'1' characters (MSB first), not on the integer
arithmetic the reference uses, so the two are independent formulations. Counts cover the
masking edges: 0, 1, SIZE-1, SIZE, SIZE+1, 9 and 17 (RCL/RCR wrap modulo SIZE+1), 31,
32 (masked to 0), 33, 255. SHLD/SHRD with a 16-bit count above 16 follow the Intel
behaviour (DEST:SRC:DEST shifted), which the SDM leaves undefined; the same bytes run
natively in an i386 process on this machine and in Unicorn give that result.
"""

from __future__ import annotations

import random
from typing import Dict, Optional, Tuple

import pytest

from reference import BY_NAME, undefined_for
from reference.flags import CF, OF, PF, SF, ZF
from reference.tests.handmade import DATA, assert_unicorn_agrees, data_word, random_case_test, run
from reference.tests.native_i386 import host_is_intel, native_disagreements, require_native

SIZES = (8, 16, 32)
COUNTS = (0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 255)
DIGITS = {"ROL": 0, "ROR": 1, "RCL": 2, "RCR": 3, "SHL": 4, "SHR": 5, "SAL": 6, "SAR": 7}


def _values(size: int) -> Tuple[int, ...]:
    top = 1 << (size - 1)
    rng = random.Random(size)
    return (0, 1, top, top | 1, (1 << size) - 1, 0x5555_5555 & ((1 << size) - 1),
            rng.getrandbits(size), rng.getrandbits(size))


def bits(value: int, size: int) -> str:
    return format(value, f"0{size}b")


def model(op: str, dest: int, count: int, size: int, cf_in: int,
          src: int = 0) -> Optional[Tuple[int, int]]:
    """(result, CF) by moving characters of the bit string; None when nothing happens."""
    count &= 0x1F
    if count == 0:
        return None
    d = bits(dest, size)
    if op in ("SHL", "SAL"):
        s = d + "0" * count
        out, last = s[-size:], s[count - 1]
    elif op in ("SHR", "SAR"):
        fill = "0" if op == "SHR" else d[0]
        s = fill * count + d
        out, last = s[:size], s[size]
    elif op in ("ROL", "ROR"):
        turns = count % size if op == "ROL" else size - count % size
        out = d[turns:] + d[:turns]
        last = out[-1] if op == "ROL" else out[0]
    elif op in ("RCL", "RCR"):
        s = str(cf_in) + d
        turns = count % (size + 1)
        if op == "RCR":
            turns = (size + 1 - turns) % (size + 1)
        s = s[turns:] + s[:turns]
        out, last = s[1:], s[0]
    else:  # SHLD / SHRD over DEST:SRC:DEST
        s = d + bits(src, size) + d
        start = count if op == "SHLD" else 2 * size - count
        out = s[start:start + size]
        last = s[count - 1] if op == "SHLD" else s[3 * size - count]
    return int(out, 2), int(last)


def one_bit_of(op: str, dest: int, result: int, cf: int, size: int, cf_in: int) -> int:
    """OF after a 1-bit shift or rotate, as each instruction's Operation section says."""
    msb = size - 1
    if op in ("SHL", "SAL", "ROL", "RCL"):
        return (result >> msb) ^ cf
    if op == "SHR":
        return dest >> msb
    if op == "SAR":
        return 0
    if op == "ROR":
        return ((result >> msb) ^ (result >> (msb - 1))) & 1
    if op == "RCR":
        return (dest >> msb) ^ cf_in
    return (result >> msb) ^ (dest >> msb)  # SHLD/SHRD: the sign changed


def parity_flag(value: int) -> int:
    return PF if bin(value & 0xFF).count("1") % 2 == 0 else 0


def expected_flags(op: str, dest: int, count: int, size: int, cf_in: int, result: int,
                   cf: int) -> Dict[int, int]:
    """The flags the SDM defines for this execution: {flag bit: expected 0/1}."""
    flags = {CF: cf}
    if (count & 0x1F) == 1:
        flags[OF] = one_bit_of(op, dest, result, cf, size, cf_in)
    if op not in ("ROL", "ROR", "RCL", "RCR"):
        flags[SF] = result >> (size - 1)
        flags[ZF] = int(result == 0)
        flags[PF] = int(parity_flag(result) != 0)
    return flags


def shift_code(op: str, size: int, mode: str, operand: int = 0xC0) -> bytes:
    """``op r/m, CL`` (D2/D3) with the given ModRM base; 66 where the size needs it."""
    default = 32 if mode == "prot32" else 16
    prefix = b"\x66" if size not in (8, default) else b""
    return prefix + bytes([0xD2 if size == 8 else 0xD3, operand | DIGITS[op] << 3])


def check_against_model(op: str, size: int, dest: int, count: int, cf_in: int) -> None:
    flags_in = 2 | cf_in | (OF if dest & 1 else 0)
    cpu, result = run(shift_code(op, size, "prot32"), eax=dest, ecx=count, eflags=flags_in)
    assert result.exception is None
    got = cpu.get_reg("eax") & ((1 << size) - 1)
    want = model(op, dest, count, size, cf_in)
    if want is None:
        assert (got, cpu.flags.value) == (dest, flags_in), "count 0 must change nothing"
        return
    assert got == want[0], f"{op}{size} {dest:#x} by {count}: {got:#x} != {want[0]:#x}"
    for bit, value in expected_flags(op, dest, count, size, cf_in, want[0], want[1]).items():
        assert bool(cpu.flags.value & bit) == bool(value), f"flag {bit:#x} of {op} by {count}"


@pytest.mark.parametrize("op", sorted(DIGITS))
@pytest.mark.parametrize("size", SIZES)
def test_shift_and_rotate_match_the_bit_string_model(op: str, size: int) -> None:
    for dest in _values(size):
        for count in COUNTS:
            for cf_in in (0, 1):
                check_against_model(op, size, dest, count, cf_in)


def test_rcl_of_a_byte_by_nine_is_the_identity_on_cf_and_dest() -> None:
    """RCL r8 rotates through 9 bits, so a count of 9 (and 18, 27) brings everything back."""
    for count in (9, 18, 27):
        cpu, _ = run(bytes([0xD2, 0xD0]), eax=0x81, ecx=count, eflags=2 | CF)
        assert cpu.get_reg("al") == 0x81 and cpu.flags.cf == 1


def test_rol_by_a_multiple_of_the_size_still_sets_cf_from_the_lsb() -> None:
    """SDM ROL: IF (COUNT & COUNTMASK) != 0 THEN CF := LSB(DEST), even if tempCOUNT = 0."""
    cpu, _ = run(bytes([0xD2, 0xC0]), eax=0x01, ecx=8, eflags=2)
    assert cpu.get_reg("al") == 0x01 and cpu.flags.cf == 1


@pytest.mark.parametrize("op,opcode", [("SHLD", 0xA5), ("SHRD", 0xAD)])
@pytest.mark.parametrize("size", (16, 32))
def test_double_shifts_match_the_bit_string_model(op: str, opcode: int, size: int) -> None:
    rng = random.Random(f"{op}{size}")
    prefix = b"\x66" if size == 16 else b""
    for count in range(40):
        for _ in range(3):
            dest, src, cf_in = rng.getrandbits(size), rng.getrandbits(size), rng.getrandbits(1)
            cpu, _ = run(prefix + bytes([0x0F, opcode, 0xD0]), eax=dest, edx=src, ecx=count,
                         eflags=2 | cf_in)
            got = cpu.get_reg("eax") & ((1 << size) - 1)
            want = model(op, dest, count, size, cf_in, src)
            if want is None:
                assert got == dest and cpu.flags.cf == cf_in
                continue
            assert got == want[0], f"{op}{size} {dest:#x},{src:#x} by {count}"
            for bit, value in expected_flags(op, dest, count, size, cf_in, *want).items():
                assert bool(cpu.flags.value & bit) == bool(value), f"{bit:#x} by {count}"


def test_shift_of_memory_writes_the_operand_in_place() -> None:
    """SHL dword [EBX], CL on a value in the data page; nothing around it changes."""
    cpu, result = run(bytes([0xD3, 0x23]), data=bytes.fromhex("aa 81 00 00 80 bb"),
                      ebx=DATA + 1, ecx=4)
    assert result.exception is None
    assert data_word(cpu, 0, 6) == int.from_bytes(bytes.fromhex("aa 10 08 00 00 bb"), "little")
    assert cpu.flags.cf == 0  # bit 28 of 0x80000081 was the last one out


# -- the same bytes on Unicorn, every encoding, register and memory operands, both modes --
FORM_OPCODES = ((0xC0, 8, "ib"), (0xC1, 0, "ib"), (0xD0, 8, "1"), (0xD1, 0, "1"),
                (0xD2, 8, "cl"), (0xD3, 0, "cl"))
EDGE_COUNTS = (0, 1, 8, 9, 16, 17, 31, 33)


def _encodings(mode: str):
    """(code, count) for every shift/rotate encoding, register and memory operand, at each
    edge count (in the immediate, or in CL; D0/D1 shift by 1 whatever CL holds)."""
    memory_rm = 0x07 if mode == "real16" else 0x03  # [BX] / [EBX]
    for digit in DIGITS.values():
        for opcode, fixed, count_kind in FORM_OPCODES:
            for prefix in (b"", b"\x66") if not fixed else (b"",):
                for rm in (0xC0 | 2, memory_rm):
                    code = prefix + bytes([opcode, rm | digit << 3])
                    for count in EDGE_COUNTS:
                        yield code + (bytes([count]) if count_kind == "ib" else b""), count


def _edge_checks(mode: str):
    rng = random.Random(mode)
    for code, count in _encodings(mode):
        regs = dict(edx=rng.getrandbits(32), ecx=count | rng.getrandbits(8) << 8,
                    ebx=DATA + 8, eflags=2 | rng.getrandbits(1) | OF * rng.getrandbits(1))
        yield code, rng.randbytes(16), regs


@pytest.mark.parametrize("mode", ("prot32", "real16"))
def test_every_shift_encoding_agrees_with_unicorn(mode: str) -> None:
    assert_unicorn_agrees(mode, _edge_checks(mode))


def _double_shift_checks(mode: str, opcode: int):
    rng = random.Random(f"{mode}{opcode}")
    memory_rm = 0x07 if mode == "real16" else 0x03
    for prefix in (b"", b"\x66"):
        for rm in (0xD0, 0x10 | memory_rm):  # EAX/AX,EDX/DX and [EBX]/[BX],EDX/DX
            for count in range(0, 40, 3):
                code = prefix + bytes([0x0F, opcode, rm])
                if opcode in (0xA4, 0xAC):
                    code += bytes([count])
                regs = dict(eax=rng.getrandbits(32), edx=rng.getrandbits(32), ecx=count,
                            ebx=DATA + 4, eflags=2 | rng.getrandbits(1))
                yield code, rng.randbytes(16), regs


@pytest.mark.parametrize("mode", ("prot32", "real16"))
@pytest.mark.parametrize("opcode", (0xA4, 0xA5, 0xAC, 0xAD))
def test_double_shift_encodings_agree_with_unicorn(mode: str, opcode: int) -> None:
    assert_unicorn_agrees(mode, _double_shift_checks(mode, opcode))


test_shift_forms_agree_with_unicorn_on_random_cases = random_case_test(
    "SHL", "SAL", "SHR", "SAR", "ROL", "ROR", "RCL", "RCR", "SHLD", "SHRD", seeds=8)


def test_shifts_and_rotates_agree_with_the_host_cpu() -> None:
    """Every /digit of D2/D3 at each size, register and [EBX] destinations, edge counts,
    run natively; flags the table calls undefined for the execution are masked."""
    require_native()
    rng = random.Random("native-shift")
    cases = []
    for op in DIGITS:
        for size in SIZES:
            for operand in (0xC0, 0x03):  # EAX / [EBX]
                for count in COUNTS + (3, 5, 24):
                    cases.append((shift_code(op, size, "prot32", operand), rng.getrandbits(32),
                                  count | rng.getrandbits(8) << 8, rng.getrandbits(32),
                                  rng.getrandbits(1) | OF * rng.getrandbits(1),
                                  rng.randbytes(64)))
    assert native_disagreements(cases) == []


def test_double_shifts_agree_with_the_host_cpu_at_every_count() -> None:
    """SHLD/SHRD, 16 and 32 bits, counts 0-31. On Intel hosts the destination is compared
    even where the SDM calls it undefined (16-bit counts above 16): that is the claim."""
    require_native()
    rng = random.Random("native-shld")
    cases = []
    for opcode in (0xA5, 0xAD):
        for prefix in (b"", b"\x66"):
            for modrm in (0xD0, 0x13):  # EAX,EDX / [EBX],EDX
                for count in range(32):
                    cases.append((prefix + bytes([0x0F, opcode, modrm]), rng.getrandbits(32),
                                  count, rng.getrandbits(32), rng.getrandbits(1),
                                  rng.randbytes(64)))
    assert native_disagreements(cases, undefined_dest=host_is_intel()) == []


@pytest.mark.parametrize("name,count,size,cf_undefined", [
    ("SHL_Eb_CL", 8, 8, True), ("SHR_Ev_CL", 16, 16, True), ("SAL_Eb_Ib", 31, 8, True),
    ("SHL_Eb_CL", 7, 8, False), ("SHR_Ev_CL", 31, 32, False), ("SAR_Eb_CL", 9, 8, False)])
def test_table_leaves_cf_undefined_only_where_the_sdm_says(name, count, size, cf_undefined):
    """SDM SAL/SAR/SHL/SHR, Flags Affected: CF "is undefined for SHL and SHR instructions
    where the count is greater than or equal to the size (in bits) of the destination"."""
    mask, _ = undefined_for(BY_NAME[name], size, count=count)
    assert bool(mask & CF) == cf_undefined
