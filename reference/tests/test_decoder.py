"""Decoder behaviour the SDM specifies: prefixes, sizes, the 15-byte limit, #UD cases.

Expected values are worked out by hand from SDM Vol. 2A chapter 2 (instruction format)
and the opcode maps in Appendix A.
"""

from __future__ import annotations

import pytest

from reference.faults import GP, UD, Fault
from reference.isa.decoder import decode
from reference.operands import CS, DS, ES, FS, GS, SS
from reference.tests.conftest import CODE, make_cpu


def decoded(code: str, mode: str = "prot32"):
    cpu = make_cpu(bytes.fromhex(code), mode)
    return decode(cpu, CODE, cpu.fetch_byte)


def fault_of(code: str, mode: str = "prot32") -> Fault:
    with pytest.raises(Fault) as info:
        decoded(code, mode)
    return info.value


@pytest.mark.parametrize("code,opsize,adsize,seg,rep,lock,length", [
    ("01 d8", 32, 32, None, None, False, 2),
    ("66 01 d8", 16, 32, None, None, False, 3),
    ("67 66 01 d8", 16, 16, None, None, False, 4),
    ("66 66 66 01 d8", 16, 32, None, None, False, 5),          # repeats do not toggle back
    ("2e 3e 26 8b 03", 32, 32, ES, None, False, 5),            # the last segment wins
    ("64 8b 03", 32, 32, FS, None, False, 3),
    ("65 f0 01 03", 32, 32, GS, None, True, 4),
    ("f3 f2 a4", 32, 32, None, "repne", False, 3),            # the last of F2/F3 wins
    ("f2 f3 a4", 32, 32, None, "rep", False, 3),
    ("36 67 f3 66 a5", 16, 16, SS, "rep", False, 5),           # prefixes in any order
], ids=lambda v: v if isinstance(v, str) else None)
def test_prefixes(code, opsize, adsize, seg, rep, lock, length) -> None:
    insn = decoded(code)
    assert (insn.opsize, insn.adsize, insn.seg, insn.rep, insn.lock, insn.length) == (
        opsize, adsize, seg, rep, lock, length)


def test_real_mode_defaults_are_16_bit_and_66_selects_32() -> None:
    assert (decoded("01 d8", "real16").opsize, decoded("01 d8", "real16").adsize) == (16, 16)
    insn = decoded("66 67 8b 44 24 08", "real16")  # mov eax, [esp+8]: SIB in real mode
    assert (insn.opsize, insn.adsize, insn.length) == (32, 32, 6)


@pytest.mark.parametrize("code,base,index,scale,disp,seg", [
    ("8b 04 24", 4, None, 1, 0, SS),          # [esp]: SS by default
    ("8b 45 fc", 5, None, 1, -4, SS),         # [ebp-4]
    ("8b 05 78 56 34 12", None, None, 1, 0x12345678, DS),  # mod 00 rm 101: disp32
    ("8b 04 8d 10 00 00 00", None, 1, 4, 0x10, DS),        # SIB base 101, mod 00: no base
    ("8b 44 8b 80", 3, 1, 4, -0x80, DS),      # [ebx+ecx*4-0x80]
    ("8b 04 20", 0, None, 1, 0, DS),          # SIB index 100: no index
    ("3e 8b 45 00", 5, None, 1, 0, DS),       # an override beats the SS default
])
def test_32_bit_addressing(code, base, index, scale, disp, seg) -> None:
    mem = decoded(code).operands[1]
    assert (mem.base, mem.index, mem.scale, mem.disp, mem.seg) == (base, index, scale, disp, seg)


@pytest.mark.parametrize("code,base,index,disp,seg", [
    ("8b 00", 3, 6, 0, DS),            # [bx+si]
    ("8b 42 05", 5, 6, 5, SS),         # [bp+si+5]
    ("8b 06 34 12", None, None, 0x1234, DS),  # mod 00 rm 110: disp16
    ("8b 46 00", 5, None, 0, SS),      # [bp+0]
    ("8b 87 fe ff", 3, None, -2, DS),  # [bx-2] with disp16
])
def test_16_bit_addressing(code, base, index, disp, seg) -> None:
    mem = decoded(code, "real16").operands[1]
    assert (mem.base, mem.index, mem.disp, mem.seg) == (base, index, disp, seg)


def test_sixteen_bit_address_wraps_at_64k() -> None:
    cpu = make_cpu(bytes.fromhex("8b 40 10"), "real16", ebx=0xFFF8, esi=0x8)  # [bx+si+0x10]
    mem = decode(cpu, CODE, cpu.fetch_byte).operands[1]
    assert mem.offset() == (0xFFF8 + 0x8 + 0x10) & 0xFFFF


def test_fifteen_bytes_decode_and_sixteen_raise_gp0() -> None:
    assert decoded("3e" * 9 + "81 c0 01 02 03 04").length == 15  # 9 prefixes + 6 bytes
    fault = fault_of("3e" * 10 + "81 c0 01 02 03 04")
    assert (fault.vector, fault.error_code) == (GP, 0)


@pytest.mark.parametrize("code,why", [
    ("0f 0b", "UD2 is a valid opcode that raises #UD when executed, not at decode"),
])
def test_ud2_decodes(code, why) -> None:
    assert decoded(code).form.name == "UD2", why


@pytest.mark.parametrize("code,why", [
    ("0f 04", "two-byte opcode 0F 04 is undefined"),
    ("fe d0", "FE /2 is undefined"),
    ("8f c8", "8F /1 is undefined"),
    ("0f ba c8 01", "0F BA /0..3 are undefined"),
    ("0f c7 c8", "CMPXCHG8B needs a memory operand"),
    ("8d c0", "LEA with a register source"),
    ("f0 01 d8", "LOCK with a register destination"),
    ("f0 8b 03", "LOCK on MOV"),
    ("f0 38 03", "LOCK on CMP"),
    ("8e c8", "MOV CS, r/m"),
    ("8e f0", "segment register 6 does not exist"),
    ("8c f8", "segment register 7 does not exist"),
])
def test_undefined_encodings_raise_ud(code, why) -> None:
    assert fault_of(code).vector == UD, why


@pytest.mark.parametrize("code,name", [
    ("f0 01 03", "ADD_Ev_Gv"), ("f0 87 03", "XCHG_Ev_Gv"), ("f0 0f c7 0b", "CMPXCHG8B_Mq"),
    ("f0 0f ab 03", "BTS_Ev_Gv"), ("f0 f6 13", "NOT_Eb"),
])
def test_lock_allowed_on_memory_read_modify_write(code, name) -> None:
    insn = decoded(code)
    assert insn.form.name == name and insn.lock


@pytest.mark.parametrize("code,name", [
    ("90", "NOP"), ("91", "XCHG_Zv_eAX"), ("82 c0 01", "ADD_Eb_Ib_82"),
    ("0f 1f 00", "NOP_Ev"), ("d6", "SALC"), ("0f 94 c0", "SETZ_Eb"),
    ("0f 4f c1", "CMOVNLE_Gv_Ev"), ("7c fe", "JL_Jb"), ("d1 f0", "SAL_Ev_1"),
    ("8c d8", "MOV_Evw_Sw"),
])
def test_form_names(code, name) -> None:
    assert decoded(code).form.name == name


def test_immediates_extend_as_specified() -> None:
    assert decoded("83 c0 ff").operands[1].read() == 0xFFFFFFFF        # Ibs sign-extends
    assert decoded("66 83 c0 80").operands[1].read() == 0xFF80
    assert decoded("80 c0 ff").operands[1].read() == 0xFF
    assert decoded("66 68 34 12").operands[0].read() == 0x1234          # Iz is 16 with 66
    assert decoded("a1 00 20 00 00").operands[1].offset() == 0x2000      # moffs32
    assert decoded("a1 00 20", "real16").operands[1].offset() == 0x2000  # moffs16


def test_mov_selector_to_memory_is_a_word_and_to_register_the_operand_size() -> None:
    assert decoded("8c 1b").operands[0].size == 16
    assert decoded("8c d8").operands[0].size == 32
    assert decoded("66 8c d8").operands[0].size == 16


def test_segment_registers_decode_by_index() -> None:
    assert decoded("8e d8", "real16").operands[0].index == DS
    assert decoded("8c c8", "real16").operands[1].index == CS


def test_decode_bytes_for_tools() -> None:
    from reference import Unmapped, decode_bytes

    assert decode_bytes(bytes.fromhex("66 01 d8")).form.name == "ADD_Ev_Gv"
    assert decode_bytes(bytes.fromhex("01 d8"), "real16").opsize == 16
    with pytest.raises(Unmapped):
        decode_bytes(bytes.fromhex("81 c0 01"))  # imm32 cut short


def test_code_fetch_faults_come_before_ud() -> None:
    """SDM Vol. 3A, Table 6-2: a fault fetching the instruction outranks #UD, so LOCK MOV
    DS, [disp32] cut by unmapped memory reports the fetch, not the LOCK misuse."""
    from reference import Unmapped, decode_bytes

    with pytest.raises(Unmapped):
        decode_bytes(bytes.fromhex("f0 8e 1d 00"))        # MOV DS, [disp32] cut short
    with pytest.raises(Fault) as info:
        decode_bytes(bytes.fromhex("8e 3d 00 00 00 00"))  # segment register 7
    assert info.value.vector == UD


# Reserved forms with a memory operand, each #UD by the SDM whatever the operand's
# address: the instruction is invalid when decoded, so no data access may come first.
RESERVED_WITH_MEMORY = [
    # SDM Vol. 2A, Table A-6, group 9 (0F C7): only /1 (CMPXCHG8B) is defined on a P6.
    ("0f c7 10", "prot32"),                        # 0F C7 /2 [eax]
    # SDM Vol. 2B, LDMXCSR: "#UD If CPUID.01H:EDX.SSE[bit 25] = 0" (our CPUID: no SSE).
    ("0f ae 10", "prot32"),                        # ldmxcsr [eax]
    ("64 0f ae 96 eb 43", "real16"),               # campaign seed 18: fs:[bp+0x43eb]
    # SDM Vol. 2A, MOV, and Vol. 2D, B.1.4.5 (sreg3): segment registers 6 and 7 are
    # reserved; MOV to or from them is #UD.
    ("8e 38", "prot32"),                           # mov Sreg7, [eax]
    ("8c 30", "prot32"),                           # mov [eax], Sreg6
    ("8e 3e 00 00", "real16"),                     # campaign seed 18: Sreg7, [0x0000]
    # SDM Vol. 2A, ARPL, Real-Address Mode Exceptions: "#UD The ARPL instruction is not
    # recognized in real-address mode."
    ("63 25", "real16"),                           # campaign seed 18: arpl [di], sp
    # SDM Vol. 2A, Table A-6, group 4 (FE): only /0 and /1 are defined.
    ("fe 10", "prot32"),
]


@pytest.mark.parametrize("code, mode", RESERVED_WITH_MEMORY)
def test_reserved_forms_raise_ud_before_touching_their_memory_operand(code: str,
                                                                       mode: str) -> None:
    """Only the code page is mapped and the registers point every address form into an
    unmapped page: a data access before the decode-time #UD would show as the kind
    "unmapped" (and in the write journal); the SDM's outcome is #UD with EIP on the
    instruction."""
    from reference import Cpu, SparseMemory

    memory = SparseMemory()
    memory.map(CODE, bytes.fromhex(code).ljust(0x1000, b"\x90"))
    cpu = Cpu(memory, mode)
    for name in ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp"):
        cpu.set_reg(name, 0x8000 if mode == "real16" else 0x00800000)
    cpu.set_reg("eip", CODE)
    result = cpu.step()
    assert result.exception is not None
    assert (result.exception.vector, result.exception.kind) == (UD, "fault")
    assert cpu.eip == CODE
    assert memory.pages() == {CODE: bytes.fromhex(code).ljust(0x1000, b"\x90")}


@pytest.mark.parametrize("code, mode, inside", [
    ("8e 3e 00 00", "real16", 3),        # campaign seed 18 (0000:9ffd there)
    ("63 25", "real16", 1),               # campaign seed 18 (f000:bfff there)
    ("0f c7 15 00 00 10 00", "prot32", 3),
])
def test_reserved_forms_running_off_the_code_page_fault_on_the_fetch(
        code: str, mode: str, inside: int) -> None:
    """The same invalid forms with their last bytes in an unmapped page: SDM Vol. 3A,
    Table 6-2 puts code page faults (priority 7, fetching the next instruction) above
    invalid opcode (priority 8, decoding it), so the fetch is reported; the host CPU
    agrees on the prot32 forms (differential/tests/test_native_runner.py); Unicorn does
    not (known divergence unicorn-ud-before-fetching-the-whole-instruction)."""
    from reference import Cpu, SparseMemory

    data = bytes.fromhex(code)
    page = bytearray(b"\x90" * 0x1000)
    page[0x1000 - inside:] = data[:inside]
    memory = SparseMemory()
    memory.map(CODE, bytes(page))
    cpu = Cpu(memory, mode)
    cpu.set_reg("eip", CODE + 0x1000 - inside)
    exception = cpu.step().exception
    assert exception is not None and exception.kind == "unmapped"
    assert cpu.eip == CODE + 0x1000 - inside
