"""Data movement and stack instructions on the cases the SDM singles out (PUSH ESP,
POP ESP, CMPXCHG's write-back, MOV to a segment register in real mode...). Expected
values are worked out by hand from the SDM Operation sections."""

from __future__ import annotations

import pytest

from reference import Cpu, SparseMemory
from reference.flags import AF, CF, OF, PF, SF, ZF
from reference.tests.conftest import STACK_TOP, make_cpu


def test_movsx_movzx(run_one) -> None:
    assert run_one(bytes.fromhex("0f be c3"), ebx=0x80).get_reg("eax") == 0xFFFFFF80
    assert run_one(bytes.fromhex("0f b6 c3"), ebx=0x80).get_reg("eax") == 0x80
    cpu = run_one(bytes.fromhex("66 0f bf c3"), eax=0x12345678, ebx=0x8001)
    assert cpu.get_reg("eax") == 0x12348001  # 16-bit destination keeps the upper half


def test_xchg_and_xadd(run_one) -> None:
    cpu = run_one(bytes.fromhex("87 d8"), eax=1, ebx=2)
    assert (cpu.get_reg("eax"), cpu.get_reg("ebx")) == (2, 1)
    cpu = run_one(bytes.fromhex("0f c1 d8"), eax=5, ebx=7)     # XADD EAX, EBX
    assert (cpu.get_reg("eax"), cpu.get_reg("ebx")) == (12, 5)
    cpu = run_one(bytes.fromhex("0f c1 c0"), eax=5)            # XADD EAX, EAX: the sum
    assert cpu.get_reg("eax") == 10


def test_cmpxchg_equal_stores_source_unequal_loads_accumulator(run_one) -> None:
    cpu = make_cpu(bytes.fromhex("0f b1 0b"), eax=0x55, ecx=0x99, ebx=0x2000)
    cpu.write_linear(0x2000, 4, 0x55)
    cpu.step()
    assert cpu.read_linear(0x2000, 4) == 0x99 and cpu.flags.zf == 1
    cpu = run_one(bytes.fromhex("0f b1 0b"), eax=0x55, ecx=0x99, ebx=0x2000)  # [EBX] = 0
    assert cpu.get_reg("eax") == 0 and cpu.flags.zf == 0 and cpu.flags.cf == 0
    assert cpu.read_linear(0x2000, 4) == 0  # written back unchanged


def test_cmpxchg8b_both_ways() -> None:
    cpu = make_cpu(bytes.fromhex("0f c7 0b"), ebx=0x2000, eax=1, edx=2, ecx=3)
    cpu.write_linear(0x2000, 8, (2 << 32) | 1)
    cpu.step()
    assert cpu.read_linear(0x2000, 8) == (3 << 32) | 0x2000 and cpu.flags.zf == 1
    cpu = make_cpu(bytes.fromhex("0f c7 0b"), ebx=0x2000, eax=1, edx=2)
    cpu.write_linear(0x2000, 8, 0x1111111122222222)
    cpu.step()
    assert (cpu.get_reg("edx"), cpu.get_reg("eax")) == (0x11111111, 0x22222222)
    assert cpu.flags.zf == 0


def test_bswap(run_one) -> None:
    assert run_one(bytes.fromhex("0f c8"), eax=0x11223344).get_reg("eax") == 0x44332211


def test_lea_sizes(run_one) -> None:
    cpu = run_one(bytes.fromhex("8d 44 8b 10"), ebx=0x1000, ecx=3)  # LEA EAX,[EBX+ECX*4+16]
    assert cpu.get_reg("eax") == 0x1000 + 12 + 16
    cpu = run_one(bytes.fromhex("66 8d 44 8b 10"), eax=0xAAAA0000, ebx=0xFFFF, ecx=0)
    assert cpu.get_reg("eax") == 0xAAAA000F                          # truncated to 16
    cpu = run_one(bytes.fromhex("8d 40 ff"), "real16", ebx=0, esi=0)  # LEA AX,[BX+SI-1]
    assert cpu.get_reg("eax") == 0xFFFF                               # 16-bit wrap


def test_cmov_reads_memory_even_when_false() -> None:
    cpu = make_cpu(bytes.fromhex("0f 44 03"), ebx=0x9000, eax=7)     # CMOVZ EAX, [EBX]
    assert cpu.step().exception == (-1, "unmapped", None)
    cpu = make_cpu(bytes.fromhex("0f 44 c3"), ebx=1, eax=0xFFFFFFFF)  # ZF clear: no move
    cpu.step()
    assert cpu.get_reg("eax") == 0xFFFFFFFF


@pytest.mark.parametrize("cc,flags,taken", [
    (0x4, ZF, True), (0x5, ZF, False), (0xC, SF, True), (0xC, SF | OF, False),
    (0xF, 0, True), (0xE, ZF, True), (0x6, CF, True), (0x7, 0, True), (0xA, PF, True),
])
def test_setcc_conditions(run_one, cc, flags, taken) -> None:
    cpu = run_one(bytes([0x0F, 0x90 + cc, 0xC0]), eax=0xFF, eflags=flags)
    assert cpu.get_reg("al") == int(taken)


def test_lahf_sahf(run_one) -> None:
    cpu = run_one(b"\x9f", eflags=SF | ZF | AF | PF | CF | OF)
    assert cpu.get_reg("ah") == 0xD7  # SF ZF 0 AF 0 PF 1 CF
    cpu = run_one(b"\x9e", eax=0xFF00, eflags=OF)
    assert cpu.get_reg("eflags") == OF | SF | ZF | AF | PF | CF | 2


def test_sign_extensions(run_one) -> None:
    assert run_one(b"\x66\x98", eax=0x80).get_reg("eax") == 0xFF80        # CBW
    assert run_one(b"\x98", eax=0x8000).get_reg("eax") == 0xFFFF8000      # CWDE
    assert run_one(b"\x66\x99", eax=0x8000, edx=0x12340000).get_reg("edx") == 0x1234FFFF
    assert run_one(b"\x99", eax=0x7FFFFFFF, edx=5).get_reg("edx") == 0    # CDQ


def test_push_esp_pushes_the_old_value(run_one) -> None:
    cpu = run_one(b"\x54")
    assert cpu.get_reg("esp") == STACK_TOP - 4
    assert cpu.read_linear(STACK_TOP - 4, 4) == STACK_TOP


def test_pop_esp_keeps_the_popped_value() -> None:
    cpu = make_cpu(b"\x5c")
    cpu.write_linear(STACK_TOP, 4, 0x1234)
    cpu.step()
    assert cpu.get_reg("esp") == 0x1234


def test_pop_to_esp_based_memory_addresses_after_the_increment() -> None:
    cpu = make_cpu(bytes.fromhex("8f 04 24"))                   # POP DWORD [ESP]
    cpu.write_linear(STACK_TOP, 4, 0xCAFE)
    cpu.step()
    assert cpu.read_linear(STACK_TOP + 4, 4) == 0xCAFE and cpu.get_reg("esp") == STACK_TOP + 4


def test_pusha_popa_round_trip_skips_esp() -> None:
    regs = dict(eax=1, ecx=2, edx=3, ebx=4, ebp=6, esi=7, edi=8)
    cpu = make_cpu(b"\x60\x61", **regs)
    cpu.step()
    assert cpu.read_linear(STACK_TOP - 20, 4) == STACK_TOP      # the original ESP, 5th
    assert cpu.read_linear(STACK_TOP - 32, 4) == 8              # EDI last
    for name in regs:
        cpu.set_reg(name, 0)
    cpu.write_linear(STACK_TOP - 20, 4, 0xBAD)                  # ignored by POPA
    cpu.step()
    assert {name: cpu.get_reg(name) for name in regs} == regs
    assert cpu.get_reg("esp") == STACK_TOP


def test_popa_faults_on_dis_slot_first() -> None:
    """Real mode, SS = 7FFF (base 0x7FFF0), SP = FFFF, only the page under SS:FFFF
    mapped. POPA's first Pop() reads DI's word at offset FFFF, whose second byte lies
    past the 64 KiB limit: #SS(0) (SDM Vol. 2B, POPA, Real-Address Mode Exceptions; Vol.
    3A, 21.1: no wrap for a word at FFFF on the 386 and later). AX's slot, SP + 14 wrapped
    to 000D at 0x7FFFD in an unmapped page, must not be read first (campaign seed 1205:
    real16 61 and f2 61 reported an unmapped access there). Nothing changes."""
    mem = SparseMemory()
    mem.map(0x1000, b"\x61" + bytes(4095))
    mem.map(0x8F000, bytes(4096))
    cpu = Cpu(mem, "real16")
    for name, value in dict(cs=0, eip=0x1000, ss=0x7FFF, esp=0xFFFF, edi=0x12345678).items():
        cpu.set_reg(name, value)
    result = cpu.step()
    assert result.exception is not None
    assert (result.exception.vector, result.exception.error_code) == (12, 0)
    assert cpu.get_reg("esp") == 0xFFFF and cpu.get_reg("edi") == 0x12345678


def test_pushf_popf_masks() -> None:
    cpu = make_cpu(b"\x9c\x9d", eflags=CF | ZF)
    cpu.step()
    assert cpu.read_linear(STACK_TOP - 4, 4) == CF | ZF | 2
    cpu.write_linear(STACK_TOP - 4, 4, 0xFFFFFFFF)
    cpu.step()
    # every flag POPF may load at CPL 0 is set; VM, VIF, VIP and RF stay clear
    assert cpu.get_reg("eflags") == 0x00247FD7


def test_sixteen_bit_popf_keeps_the_upper_word() -> None:
    cpu = make_cpu(b"\x66\x9d", eflags=1 << 18)  # AC set
    cpu.write_linear(STACK_TOP, 2, 0)
    cpu.step()
    assert cpu.get_reg("eflags") == (1 << 18) | 2 and cpu.get_reg("esp") == STACK_TOP + 2


def test_real_mode_segment_moves() -> None:
    cpu = make_cpu(bytes.fromhex("8e d8 1e 07"), "real16", eax=0x0123)  # MOV DS,AX; PUSH DS
    for _ in range(3):                                                   # POP ES
        assert cpu.step().exception is None
    assert (cpu.get_reg("ds"), cpu.get_reg("es"), cpu.seg_base[0]) == (0x123, 0x123, 0x1230)
    assert cpu.get_reg("esp") == STACK_TOP


def test_mov_sreg_to_32_bit_register_zero_extends(run_one) -> None:
    cpu = run_one(bytes.fromhex("8c d8"), "real16", eax=0xFFFFFFFF, ds=0)
    assert cpu.get_reg("eax") == 0xFFFF0000  # 16-bit operand size: AX only
    cpu = run_one(bytes.fromhex("66 8c d8"), "real16", eax=0xFFFFFFFF, ds=0x10)
    assert cpu.get_reg("eax") == 0x10


def test_lds_and_far_jump_through_memory() -> None:
    cpu = make_cpu(bytes.fromhex("c5 37"), "real16", ebx=0x2000)      # LDS SI, [BX]
    cpu.write_linear(0x2000, 4, (0x0300 << 16) | 0x1234)
    assert cpu.step().exception is None
    assert (cpu.get_reg("si"), cpu.get_reg("ds"), cpu.seg_base[3]) == (0x1234, 0x300, 0x3000)
    cpu = make_cpu(bytes.fromhex("ff 2f"), "real16", ebx=0x2000)      # JMP FAR [BX]
    cpu.write_linear(0x2000, 4, (0x0100 << 16) | 0x0010)
    assert cpu.step().exception is None
    assert (cpu.get_reg("cs"), cpu.get_reg("eip")) == (0x100, 0x10)


@pytest.mark.parametrize("index,taken", [(-5, False), (-6, True), (10, False), (11, True)])
def test_bound_raises_br_outside_signed_bounds(index, taken) -> None:
    cpu = make_cpu(bytes.fromhex("62 03"), ebx=0x2000, eax=index & 0xFFFFFFFF)
    cpu.write_linear(0x2000, 4, -5 & 0xFFFFFFFF)
    cpu.write_linear(0x2004, 4, 10)
    result = cpu.step()
    assert result.exception == ((5, "fault", None) if taken else None)
