"""What the native oracle cannot reach: CR0.EM/TS/MP/NE (#NM, #MF or FERR#), real-mode
environment layouts, FXSAVE alignment and MXCSR checks, and that a faulting x87
instruction leaves the FPU as it was (SDM Vol. 3A 2.5 and 6.15; Vol. 1 8.1.10; Vol. 2A
FXSAVE/FXRSTOR). Expected values are written from the SDM's figures, by hand."""

from __future__ import annotations

import struct

from reference.faults import GP, MF, NM
from reference.tests.conftest import DATA, make_cpu
from reference.x87.fpu import CR0_EM, CR0_MP, CR0_NE, CR0_TS, ES

ONE = 0x3FFF_8000_0000_0000_0000
FLD1 = bytes.fromhex("d9e8")


def _cpu(code: bytes, mode: str = "prot32", cr0_bits: int = CR0_NE):
    cpu = make_cpu(code, mode)
    cpu.cr0 = (cpu.cr0 & ~(CR0_EM | CR0_TS | CR0_MP | CR0_NE)) | cr0_bits
    cpu.set_reg("ebx", DATA)
    return cpu


def _vector(cpu) -> int:
    result = cpu.step()
    assert result.exception is not None, result
    return result.exception.vector


def test_em_or_ts_raise_nm_before_anything_changes() -> None:
    for bits in (CR0_EM, CR0_TS, CR0_EM | CR0_NE):
        cpu = _cpu(FLD1, cr0_bits=bits)
        assert _vector(cpu) == NM
        assert cpu.fpu.top == 0 and all(cpu.fpu.empty)


def test_fwait_raises_nm_only_with_mp_and_ts() -> None:
    assert _cpu(b"\x9b", cr0_bits=CR0_TS).step().exception is None
    assert _vector(_cpu(b"\x9b", cr0_bits=CR0_TS | CR0_MP)) == NM


def _pending(cpu) -> None:
    """An unmasked divide-by-zero already flagged: ES and B set, as after FDIV by 0."""
    cpu.fpu.control = 0x037B
    cpu.fpu.status_word = 0x8084


def test_pending_exception_raises_mf_on_the_next_waiting_instruction() -> None:
    cpu = _cpu(FLD1)
    _pending(cpu)
    assert _vector(cpu) == MF
    assert cpu.fpu.top == 0 and cpu.eip == 0x1000     # a fault: nothing happened
    fnclex = _cpu(bytes.fromhex("dbe2"))                 # no-wait forms go ahead
    _pending(fnclex)
    assert fnclex.step().exception is None and not fnclex.fpu.status & ES


def test_without_ne_a_pending_exception_asserts_ferr_and_continues() -> None:
    cpu = _cpu(FLD1, cr0_bits=0)
    _pending(cpu)
    raised = []
    cpu.assert_ferr = lambda: raised.append(True)
    assert cpu.step().exception is None
    assert raised == [True] and cpu.fpu.st(0) == ONE


def test_fldcw_keeps_reserved_bits_as_the_cpu_does() -> None:
    cpu = _cpu(bytes.fromhex("d92b"))                    # FLDCW [EBX]
    cpu.mem.write_bytes(DATA, b"\xff\xff")
    assert cpu.step().exception is None
    assert cpu.fpu.control == 0x1F7F


def test_real_mode_environment_splits_the_pointers() -> None:
    """FNSTENV in real mode, 16- and 32-bit (SDM Vol. 1, Figures 8-10 and 8-11 for
    real-address mode): FIP/FDP are linear, bits 19:16 (31:16) above FOP."""
    for prefix, size in ((b"", 16), (b"\x66", 32)):
        cpu = _cpu(prefix + bytes.fromhex("d937"), "real16")   # FNSTENV [BX]
        cpu.set_reg("ebx", DATA)
        fpu = cpu.fpu
        fpu.fip, fpu.fcs, fpu.fop, fpu.fdp, fpu.fds = 0x1234, 0x5678, 0x5D8, 0x9ABC, 0x0DEF
        assert cpu.step().exception is None
        fip, fdp = 0x56780 + 0x1234, 0xDEF0 + 0x9ABC
        width = size // 8
        raw = cpu.mem.read_bytes(DATA, 7 * width)
        words = [int.from_bytes(raw[i:i + width], "little") for i in range(0, 7 * width, width)]
        low = [w & 0xFFFF for w in words]
        assert low[0] == 0x037F and low[2] == 0xFFFF
        assert low[3] == fip & 0xFFFF and low[5] == fdp & 0xFFFF
        assert (words[4] >> 12) == fip >> 16 and words[4] & 0x7FF == 0x5D8
        assert words[6] >> 12 == fdp >> 16                 # bits 31:28 are zero
        assert cpu.fpu.control == 0x037F                   # already all masked


def test_fnsave_then_frstor_restores_everything() -> None:
    cpu = _cpu(bytes.fromhex("d9e8 d9eb dd33 dd23".replace(" ", "")))  # FLD1 FLDPI FNSAVE FRSTOR
    for _ in range(3):
        assert cpu.step().exception is None
    assert all(cpu.fpu.empty) and cpu.fpu.control == 0x037F     # FNSAVE re-initialises
    image = cpu.mem.read_bytes(DATA, 108)
    assert struct.unpack_from("<H", image, 4)[0] == 0x3000      # TOP = 6
    assert image[28:38] == (0x4000_C90F_DAA2_2168_C235).to_bytes(10, "little")
    assert cpu.step().exception is None
    assert cpu.fpu.top == 6 and cpu.fpu.st(1) == ONE and not cpu.fpu.is_empty(0)


def test_fxsave_needs_16_byte_alignment_and_fxrstor_checks_mxcsr() -> None:
    cpu = _cpu(bytes.fromhex("0fae4301"))                # FXSAVE [EBX+1]
    assert _vector(cpu) == GP
    restore = _cpu(bytes.fromhex("0fae0b"))              # FXRSTOR [EBX]
    restore.mem.write_bytes(DATA + 24, (0x1F80 | 1 << 16).to_bytes(4, "little"))
    assert _vector(restore) == GP


def test_a_store_that_faults_leaves_the_stack_alone() -> None:
    """FSTP to an unmapped address: memory faults before the pop happens."""
    cpu = _cpu(bytes.fromhex("d9e8"))
    assert cpu.step().exception is None
    cpu.mem.write_bytes(0x1002, bytes.fromhex("dd1d00000900"))   # FSTP qword [0x90000]
    result = cpu.step()
    assert result.exception is not None or result.unmapped_address is not None
    assert cpu.fpu.top == 7 and cpu.fpu.st(0) == ONE
