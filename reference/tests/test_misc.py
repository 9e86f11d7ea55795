"""NOP forms, UD2, HLT, CPUID, RDTSC, SALC and port I/O (SDM Vol. 2A/2B).

Expected values: the SDM's tables by hand (the recommended multi-byte NOPs and their
lengths, the CPUID leaf layout), Python arithmetic, and Unicorn for the forms it runs.
Port I/O is checked against a recording bus attached to the CPU, standing in for the
system level's device bus.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import pytest

from reference import Unimplemented
from reference.faults import GP, UD
from reference.tests.conftest import CODE, make_cpu
from reference.tests.handmade import run, unicorn_disagreements

# SDM Vol. 2B, NOP, Table 4-12 "Recommended Multi-Byte Sequence of NOP Instruction".
RECOMMENDED_NOPS = ("90", "6690", "0f1f00", "0f1f4000", "0f1f440000", "660f1f440000",
                    "0f1f8000000000", "0f1f840000000000", "660f1f840000000000")


@pytest.mark.parametrize("text", RECOMMENDED_NOPS)
def test_recommended_nops_only_advance_eip(text: str) -> None:
    code = bytes.fromhex(text)
    cpu, result = run(code, "prot32", eax=0x7FFFF000, eflags=0x8D7)
    assert result.exception is None
    assert cpu.eip == CODE + len(code)
    assert cpu.get_reg("eax") == 0x7FFFF000 and cpu.get_reg("eflags") == 0x8D7


@pytest.mark.parametrize("text", RECOMMENDED_NOPS + ("f390", "0f1f00", "0f1f4700"))
@pytest.mark.parametrize("mode", ["prot32", "real16"])
def test_nops_agree_with_unicorn(text: str, mode: str) -> None:
    assert unicorn_disagreements(bytes.fromhex(text), mode, eflags=0x8D7) == []


def test_multibyte_nop_never_touches_its_memory_operand() -> None:
    """0F 1F /0 addresses [EAX] only to encode its length: an unmapped address is fine."""
    cpu, result = run(bytes.fromhex("0f1f00"), "prot32", eax=0xDEAD0000)
    assert result.exception is None and cpu.eip == CODE + 3


@pytest.mark.parametrize("mode", ["prot32", "real16"])
def test_ud2_raises_ud_and_changes_nothing(mode: str) -> None:
    cpu, result = run(bytes.fromhex("0f0b"), mode, eax=5)
    assert (result.exception.vector, result.exception.kind) == (UD, "fault")
    assert cpu.eip == CODE and cpu.get_reg("eax") == 5
    assert unicorn_disagreements(bytes.fromhex("0f0b"), mode) == []


@pytest.mark.parametrize("mode", ["prot32", "real16"])
def test_hlt_halts_after_the_instruction(mode: str) -> None:
    cpu, result = run(b"\xf4", mode)
    assert result.exception is None and result.halted
    assert cpu.eip == CODE + 1
    assert unicorn_disagreements(b"\xf4", mode) == []


def test_hlt_is_privileged() -> None:
    cpu = make_cpu(b"\xf4", "prot32")
    cpu.set_reg("cs", 0x1B)  # CPL 3
    result = cpu.step()
    assert (result.exception.vector, result.exception.error_code) == (GP, 0)
    assert not cpu.halted and cpu.eip == CODE


def _cpuid(leaf: int) -> Tuple[int, int, int, int]:
    cpu, result = run(bytes.fromhex("0fa2"), "prot32", eax=leaf, ecx=0x55)
    assert result.exception is None
    return tuple(cpu.get_reg(r) for r in ("eax", "ebx", "ecx", "edx"))  # type: ignore


def test_cpuid_leaf0_is_genuine_intel_with_max_leaf_1() -> None:
    eax, ebx, ecx, edx = _cpuid(0)
    vendor = b"".join(v.to_bytes(4, "little") for v in (ebx, edx, ecx))
    assert (eax, vendor) == (1, b"GenuineIntel")


def test_cpuid_leaf1_is_a_p6_claiming_only_implemented_features() -> None:
    """Family 6 (EAX[11:8]); EDX (SDM Vol. 2A, CPUID, Table 3-11): FPU (0: the whole x87
    is implemented, reference/x87), PSE (3), TSC (4), MSR (5), CX8 (8), SEP (11), PGE
    (13), CMOV (15) and nothing else: no VME/DE/PAE/APIC/MTRR, because the reference has
    none of them, and no FXSR/MMX/SSE."""
    eax, ebx, ecx, edx = _cpuid(1)
    assert (eax >> 8) & 0xF == 6 and (eax >> 12) & 3 == 0  # family 6, original OEM type
    assert (ebx, ecx) == (0, 0)
    expected = sum(1 << bit for bit in (0, 3, 4, 5, 8, 11, 13, 15))
    assert edx == expected


def test_cpuid_fpu_bit_stands_for_every_x87_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit 0 names every row of the escape opcodes D8-DF (SDM Vol. 2A, A.4) and WAIT;
    with one of them (FYL2X) left without semantics, CPUID must stop claiming an FPU."""
    from reference.isa.table import FORMS
    from reference.semantics import misc
    escapes = {f.name for f in FORMS if 0xD8 <= f.enc.opcode[0] <= 0xDF}
    assert set(misc.X87_FORMS) == escapes | {"WAIT"}
    assert {"FLD_Mt", "FSIN", "FYL2X", "FYL2XP1", "FNSAVE_M"} <= escapes
    assert "FXSAVE_M" not in misc.X87_FORMS            # FXSR's (bit 24), not the FPU's
    real_lookup = misc.lookup
    monkeypatch.setattr(misc, "_features", None)
    monkeypatch.setattr(misc, "lookup", lambda f: None if f.name == "FYL2X" else real_lookup(f))
    assert misc.feature_bits() & 1 == 0
    monkeypatch.setattr(misc, "_features", None)
    monkeypatch.setattr(misc, "lookup", real_lookup)
    assert misc.feature_bits() & 1 == 1


@pytest.mark.parametrize("leaf", [2, 7, 0x80000000, 0x80000004, 0xFFFFFFFF])
def test_cpuid_above_max_returns_highest_basic_leaf(leaf: int) -> None:
    """SDM CPUID: a leaf above the maximum returns the highest basic leaf's data."""
    assert _cpuid(leaf) == _cpuid(1)


def test_rdtsc_counts_retired_instructions() -> None:
    """Five NOPs, then RDTSC: EDX:EAX = 5, and the same on every run (replayable)."""
    code = b"\x90" * 5 + bytes.fromhex("0f31")
    values = []
    for _ in range(2):
        cpu = make_cpu(code, "prot32", edx=0xFFFF, eax=0xFFFF)
        assert cpu.run(6) is None
        values.append((cpu.get_reg("edx"), cpu.get_reg("eax")))
    assert values == [(0, 5), (0, 5)]


def test_rdtsc_splits_a_64_bit_count() -> None:
    cpu = make_cpu(bytes.fromhex("0f31"), "prot32")
    cpu.tsc = 0x123456789A
    assert cpu.step().exception is None
    assert (cpu.get_reg("edx"), cpu.get_reg("eax")) == (0x12, 0x3456789A)


@pytest.mark.parametrize("mode", ["prot32", "real16"])
@pytest.mark.parametrize("carry", [0, 1])
def test_salc(mode: str, carry: int) -> None:
    cpu, result = run(b"\xd6", mode, eax=0x12345678, eflags=0x2 | carry)
    assert result.exception is None
    assert cpu.get_reg("eax") == (0x123456FF if carry else 0x12345600)
    assert unicorn_disagreements(b"\xd6", mode, eax=0x12345678, eflags=0x2 | carry) == []


class RecordingBus:
    """A stand-in for the system level's I/O bus: ports answer port*3 + size."""

    def __init__(self) -> None:
        self.writes: List[Tuple[int, int, int]] = []
        self.reads: Dict[int, int] = {}

    def io_in(self, port: int, size: int) -> int:
        self.reads[port] = self.reads.get(port, 0) + 1
        return port * 3 + size

    def io_out(self, port: int, size: int, value: int) -> None:
        self.writes.append((port, size, value))


def _with_bus(code: bytes, mode: str = "prot32", **regs: int):
    cpu = make_cpu(code, mode, **regs)
    bus = RecordingBus()
    cpu.io_in, cpu.io_out = bus.io_in, bus.io_out
    return cpu, bus


@pytest.mark.parametrize("text,expected_eax", [
    ("e471", 0xAAAAAA00 | (0x71 * 3 + 8) & 0xFF),          # IN AL, 71h
    ("66e571", 0xAAAA0000 | 0x71 * 3 + 16),                # IN AX, 71h
    ("e571", 0x71 * 3 + 32),                               # IN EAX, 71h
    ("ec", 0xAAAAAA00 | (0x3F8 * 3 + 8) & 0xFF),           # IN AL, DX
    ("ed", 0x3F8 * 3 + 32),                                # IN EAX, DX
])
def test_in_reads_the_bus(text: str, expected_eax: int) -> None:
    cpu, _ = _with_bus(bytes.fromhex(text), eax=0xAAAAAAAA, edx=0x3F8)
    assert cpu.step().exception is None
    assert cpu.get_reg("eax") == expected_eax


@pytest.mark.parametrize("text,expected", [
    ("e680", (0x80, 8, 0x78)), ("66e780", (0x80, 16, 0x5678)),
    ("e780", (0x80, 32, 0x12345678)), ("ee", (0x3F8, 8, 0x78)),
    ("ef", (0x3F8, 32, 0x12345678)),
])
def test_out_writes_the_bus(text: str, expected: Tuple[int, int, int]) -> None:
    cpu, bus = _with_bus(bytes.fromhex(text), eax=0x12345678, edx=0x3F8)
    assert cpu.step().exception is None
    assert bus.writes == [expected]


def test_port_io_without_a_bus_is_a_gap_not_a_guest_error() -> None:
    cpu = make_cpu(b"\xec", "prot32")
    with pytest.raises(Unimplemented):
        cpu.step()
    assert cpu.eip == CODE


def test_port_io_at_cpl3_without_iopl_faults() -> None:
    """CPL > IOPL would consult the TSS I/O bitmap; with no TSS that is #GP(0)."""
    cpu, bus = _with_bus(b"\xec", "prot32", edx=0x60)
    cpu.set_reg("cs", 0x1B)
    result = cpu.step()
    assert (result.exception.vector, result.exception.error_code) == (GP, 0)
    assert bus.reads == {}


@pytest.mark.parametrize("mode", ["prot32", "real16"])
@pytest.mark.parametrize("text,regs", [
    ("d7", {"ebx": 0x2000, "eax": 0x123456F0}),
    ("d7", {"ebx": 0x20FF, "eax": 0xFF}),
    ("67d7", {"ebx": 0x2000, "eax": 0x80}),
    ("26d7", {"ebx": 0x2010, "eax": 0x7}),
], ids=["table", "wrap-free-max", "other-address-size", "es-override"])
def test_xlat_agrees_with_unicorn(text: str, regs: Dict[str, int], mode: str) -> None:
    table = bytes((i * 7 + 3) & 0xFF for i in range(4096))
    if (mode == "real16") != text.startswith("67"):  # 16-bit addressing: BX only
        regs = {**regs, "ebx": regs["ebx"] | 0xABCD0000}
    assert unicorn_disagreements(bytes.fromhex(text), mode, table, **regs) == []


def test_xlat_looks_up_al_in_the_table_at_ebx() -> None:
    table = bytes((i * 7 + 3) & 0xFF for i in range(4096))
    cpu, result = run(b"\xd7", "prot32", table, ebx=0x2000, eax=0x123456F0)
    assert result.exception is None
    assert cpu.get_reg("eax") == 0x12345600 | table[0xF0]


def test_xlat_with_16_bit_addressing_ignores_the_upper_half_of_ebx() -> None:
    table = bytes((i * 7 + 3) & 0xFF for i in range(4096))
    cpu, _ = run(b"\x67\xd7", "prot32", table, ebx=0xABCD2000, eax=0x80)
    assert cpu.get_reg("al") == table[0x80]


@pytest.mark.parametrize("mode", ["prot32", "real16"])
def test_wait_without_an_x87_does_nothing(mode: str) -> None:
    cpu, result = run(b"\x9b", mode, eflags=0x8D7)
    assert result.exception is None
    assert cpu.eip == CODE + 1 and cpu.get_reg("eflags") == 0x8D7
    assert unicorn_disagreements(b"\x9b", mode, eflags=0x8D7) == []
