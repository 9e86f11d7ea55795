"""Control transfer: JMP, Jcc, CALL, RET, LOOP*, JCXZ/JECXZ, ENTER/LEAVE, INT3/INT n/INTO.

Expected values come from the SDM's Operation sections worked by hand or in Python (the
condition table is written out here from SDM Vol. 1, Appendix B, independently of
``Flags.condition``), from Unicorn where it follows the SDM, and from the host CPU for
the three facts where Unicorn 2.1.4 does not (each test says so): RET imm16 adds a
zero-extended count; ENTER with a 16-bit operand size on a 32-bit stack writes BP only;
near branches past a 64 KiB real-mode code segment raise #GP(0).
"""

from __future__ import annotations

import itertools
from typing import Dict

import pytest

from reference.faults import BP, GP
from reference.faults import OF as OVERFLOW
from reference.flags import CF, OF, PF, SF, ZF
from reference.tests.conftest import CODE, STACK_TOP, make_cpu
from reference.tests.handmade import run, unicorn_disagreements

MODES = ("prot32", "real16")
# SDM Vol. 1, Table B-1 (condition codes), as predicates on named flags.
CONDITIONS = (
    lambda f: f["OF"], lambda f: not f["OF"], lambda f: f["CF"], lambda f: not f["CF"],
    lambda f: f["ZF"], lambda f: not f["ZF"], lambda f: f["CF"] or f["ZF"],
    lambda f: not (f["CF"] or f["ZF"]), lambda f: f["SF"], lambda f: not f["SF"],
    lambda f: f["PF"], lambda f: not f["PF"], lambda f: f["SF"] != f["OF"],
    lambda f: f["SF"] == f["OF"], lambda f: f["ZF"] or f["SF"] != f["OF"],
    lambda f: not f["ZF"] and f["SF"] == f["OF"],
)
FLAG_BITS = {"CF": CF, "PF": PF, "ZF": ZF, "SF": SF, "OF": OF}


def _flag_patterns():
    for bits in itertools.product((0, 1), repeat=len(FLAG_BITS)):
        named: Dict[str, int] = dict(zip(FLAG_BITS, bits))
        value = 0x2
        for name, on in named.items():
            value |= FLAG_BITS[name] if on else 0
        yield named, value


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cc", range(16))
def test_jcc_follows_the_condition_table(cc: int, mode: str) -> None:
    short = bytes([0x70 | cc, 0x10])
    near = bytes([0x0F, 0x80 | cc]) + (0x0100).to_bytes(4 if mode == "prot32" else 2,
                                                         "little")
    for named, eflags in _flag_patterns():
        taken = bool(CONDITIONS[cc](named))
        for code, disp in ((short, 0x10), (near, 0x100)):
            cpu, result = run(code, mode, eflags=eflags)
            assert result.exception is None
            assert cpu.eip == CODE + len(code) + (disp if taken else 0), (code.hex(), named)


# Branch encodings per mode whose targets stay inside the mapped code page (Unicorn
# fetches the target before its code hook can stop it), with the operand-size prefix
# flipping rel16/rel32 and 16/32-bit indirect targets.
OTHER_SIZE_NEAR = {"prot32": "66{op}4000", "real16": "66{op}40000000"}
JUMPS = {
    "prot32": ["eb7f", "e9f0000000", "66e9f000", "ffe0", "66ffe1", "ff23", "66ff23"],
    "real16": ["eb7f", "e9f000", "66e9f0000000", "ffe0", "66ffe1", "ff27", "66ff27"],
}
CALLS = {
    "prot32": ["e810000000", "66e81000", "ffd0", "ff13", "66ff13"],
    "real16": ["e81000", "66e810000000", "ffd0", "ff17", "66ff17"],
}
BRANCH_CASES = [(mode, text) for table in (JUMPS, CALLS) for mode in MODES
                for text in table[mode]]
TARGET = (0x1040).to_bytes(4, "little")  # an indirect target in the data page


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cc", range(16))
def test_jcc_agrees_with_unicorn(cc: int, mode: str) -> None:
    near = OTHER_SIZE_NEAR[mode].format(op=f"0f{0x80 | cc:02x}")
    for _, eflags in itertools.islice(_flag_patterns(), 0, None, 5):
        for code in (bytes([0x70 | cc, 0x40]), bytes.fromhex(near)):
            assert unicorn_disagreements(code, mode, eflags=eflags) == [], code.hex()


@pytest.mark.parametrize("mode,text", BRANCH_CASES)
def test_jmp_and_call_agree_with_unicorn(mode: str, text: str) -> None:
    regs = {"eax": 0x1080, "ecx": 0xFFFF1080 if mode == "prot32" else 0x1080,
            "ebx": 0x2000}
    assert unicorn_disagreements(bytes.fromhex(text), mode, TARGET, **regs) == []


@pytest.mark.parametrize("mode", MODES)
def test_short_jump_backwards(mode: str) -> None:
    cpu, _ = run(bytes.fromhex("eb80"), mode)
    assert cpu.eip == CODE + 2 - 0x80


def test_jmp_rel16_truncates_eip_to_16_bits() -> None:
    """66 E9 in prot32: EIP := (EIP + rel16) AND 0000FFFFH."""
    cpu, result = run(bytes.fromhex("66e900e0"), "prot32")  # 0x1004 - 0x2000
    assert result.exception is None and cpu.eip == (0x1004 - 0x2000) & 0xFFFF


@pytest.mark.parametrize("text", ["66e900000100", "66ffe0", "66c3"],
                         ids=["jmp-rel32", "jmp-eax", "ret32"])
def test_real_mode_branch_past_64k_raises_gp(text: str) -> None:
    """SDM JMP/RET, Real-Address Mode Exceptions: #GP if the target is beyond the code
    segment limit (0xFFFF). Unicorn 2.1.4 jumps anyway (QEMU checks no near limit)."""
    cpu = make_cpu(bytes.fromhex(text), "real16", eax=0x12345, esp=0x3800)
    cpu.write_linear(0x3800, 4, 0x12345)
    result = cpu.step()
    assert (result.exception.vector, result.exception.kind) == (GP, "fault")
    assert (cpu.eip, cpu.get_reg("esp")) == (CODE, 0x3800)


def test_call_pushes_the_return_address_at_the_operand_size() -> None:
    cpu, _ = run(bytes.fromhex("e810000000"), "prot32")
    assert (cpu.eip, cpu.get_reg("esp")) == (CODE + 5 + 0x10, STACK_TOP - 4)
    assert cpu.read_linear(STACK_TOP - 4, 4) == CODE + 5
    cpu, _ = run(bytes.fromhex("66e81000"), "prot32")
    assert (cpu.eip, cpu.get_reg("esp")) == (CODE + 4 + 0x10, STACK_TOP - 2)
    assert cpu.read_linear(STACK_TOP - 2, 2) == CODE + 4


def test_call_indirect_through_esp_reads_before_pushing() -> None:
    """CALL [ESP]: the target is the dword at the *old* ESP."""
    cpu = make_cpu(bytes.fromhex("ff1424"), "prot32")
    cpu.write_linear(STACK_TOP, 4, 0x1234)
    assert cpu.step().exception is None
    assert cpu.eip == 0x1234 and cpu.read_linear(STACK_TOP - 4, 4) == CODE + 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", ["c3", "c20800", "66c3", "66c20400"])
def test_ret_agrees_with_unicorn(text: str, mode: str) -> None:
    assert unicorn_disagreements(bytes.fromhex(text), mode, TARGET, esp=0x2000) == []


def test_ret_imm16_is_zero_extended() -> None:
    """RET FFEEh releases 65518 bytes: measured on the host CPU in an i386 process (ESP
    rose by 4 + 0xFFEE). Unicorn 2.1.4 sign-extends the count (QEMU loads it with a
    signed 16-bit read) and would lower ESP by 18 instead."""
    cpu = make_cpu(bytes.fromhex("c2eeff"), "prot32")
    cpu.write_linear(STACK_TOP, 4, 0x1040)
    assert cpu.step().exception is None
    assert (cpu.eip, cpu.get_reg("esp")) == (0x1040, STACK_TOP + 4 + 0xFFEE)


def test_ret_with_16_bit_operand_zero_extends_eip() -> None:
    cpu = make_cpu(bytes.fromhex("66c3"), "prot32")
    cpu.write_linear(STACK_TOP, 4, 0xABCD1040)
    assert cpu.step().exception is None
    assert (cpu.eip, cpu.get_reg("esp")) == (0x1040, STACK_TOP + 2)


LOOPS = {0xE2: lambda zf: True, 0xE1: lambda zf: zf == 1, 0xE0: lambda zf: zf == 0}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("opcode", sorted(LOOPS), ids=["LOOPNE", "LOOPE", "LOOP"])
@pytest.mark.parametrize("adsize_prefix", [b"", b"\x67"], ids=["default", "67"])
def test_loop_counts_with_the_address_size(opcode: int, adsize_prefix: bytes,
                                           mode: str) -> None:
    """Count := Count - 1 on CX or ECX (address size); branch if Count != 0 and the
    ZF condition holds. The other half of ECX never changes for CX."""
    wide = (adsize_prefix == b"") == (mode == "prot32")
    mask = 0xFFFFFFFF if wide else 0xFFFF
    code = adsize_prefix + bytes([opcode, 0x20])
    for ecx, zf in itertools.product((0, 1, 2, 0x10000, 0xABCD0001), (0, 1)):
        count = (ecx - 1) & mask
        taken = count != 0 and LOOPS[opcode](zf)
        cpu, result = run(code, mode, ecx=ecx, eflags=0x2 | (ZF if zf else 0))
        assert result.exception is None
        assert cpu.get_reg("ecx") == (ecx & ~mask) | count
        assert cpu.eip == CODE + len(code) + (0x20 if taken else 0)
        assert unicorn_disagreements(code, mode, ecx=ecx, eflags=0x2 | (ZF if zf else 0)) \
            == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("adsize_prefix", [b"", b"\x67"], ids=["default", "67"])
@pytest.mark.parametrize("ecx", [0, 0x10000, 1, 0xFFFF0000])
def test_jcxz_tests_cx_or_ecx_by_address_size(adsize_prefix: bytes, ecx: int,
                                              mode: str) -> None:
    wide = (adsize_prefix == b"") == (mode == "prot32")
    taken = (ecx & (0xFFFFFFFF if wide else 0xFFFF)) == 0
    code = adsize_prefix + b"\xe3\x30"
    cpu, _ = run(code, mode, ecx=ecx)
    assert cpu.eip == CODE + len(code) + (0x30 if taken else 0)
    assert unicorn_disagreements(code, mode, ecx=ecx) == []


def test_enter_nested_copies_frame_pointers() -> None:
    """ENTER 8, 3 with EBP = F: push F; copy [F-4] and [F-8]; push FrameTemp; EBP :=
    FrameTemp; ESP := FrameTemp - 12 (two copies and FrameTemp) - 8. The same layout
    the host CPU produced for these bytes in an i386 process."""
    frame = 0x2100
    cpu = make_cpu(bytes.fromhex("c8080003"), "prot32", ebp=frame)
    cpu.write_linear(frame - 4, 4, 0xAAAA0001)
    cpu.write_linear(frame - 8, 4, 0xAAAA0002)
    assert cpu.step().exception is None
    frame_temp = STACK_TOP - 4
    assert (cpu.get_reg("ebp"), cpu.get_reg("esp")) == (frame_temp, frame_temp - 12 - 8)
    pushed = [cpu.read_linear(STACK_TOP - 4 * i, 4) for i in range(1, 5)]
    assert pushed == [frame, 0xAAAA0001, 0xAAAA0002, frame_temp]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", ["c8000000", "c8100001", "c8040002", "c8000005",
                                  "c8080021", "66c8020003"])
def test_enter_agrees_with_unicorn(text: str, mode: str) -> None:
    """EBP's upper half is 0 here: with 66, Unicorn writes all of EBP and the host CPU
    only BP (see the BP-only test), which agree only then."""
    data = bytes(range(64)) * 4
    assert unicorn_disagreements(bytes.fromhex(text), mode, data, ebp=0x2080) == []


@pytest.mark.parametrize("mode", MODES)
def test_enter_fault_in_the_copies_keeps_the_pushed_frame_pointer(mode: str) -> None:
    """ENTER 0, 2 with [EBP-4] unmapped: the fault is reported with the registers as
    before, but Push(EBP) stays in memory, as the host CPU (step32) and Unicorn show."""
    code, frame = bytes.fromhex("c8000002"), 0x9004
    cpu, result = run(code, mode, ebp=frame)
    assert result.exception.kind == "unmapped" and cpu.eip == CODE
    assert (cpu.get_reg("ebp"), cpu.get_reg("esp")) == (frame, STACK_TOP)
    width = 4 if mode == "prot32" else 2
    assert cpu.read_linear(STACK_TOP - width, width) == frame
    assert unicorn_disagreements(code, mode, ebp=frame) == []


def test_enter_level_is_taken_mod_32() -> None:
    """Nesting level 33 acts as 1: push EBP, push FrameTemp."""
    cpu, _ = run(bytes.fromhex("c8000021"), "prot32", ebp=0x2100)
    assert cpu.get_reg("esp") == STACK_TOP - 8
    assert cpu.read_linear(STACK_TOP - 8, 4) == STACK_TOP - 4


def test_enter_with_16_bit_operand_on_32_bit_stack_writes_bp_only() -> None:
    """66 C8 01 00 00 in an i386 process left EBP's upper half (0x1234) in place and set
    BP to SP after the push; Unicorn 2.1.4 writes all of EBP (at the stack size)."""
    cpu, result = run(bytes.fromhex("66c8010000"), "prot32", ebp=0x12345678)
    assert result.exception is None
    assert cpu.get_reg("ebp") == 0x12340000 | (STACK_TOP - 2)
    assert cpu.get_reg("esp") == STACK_TOP - 2 - 1
    assert cpu.read_linear(STACK_TOP - 2, 2) == 0x5678


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", ["c9", "66c9"])
def test_leave_agrees_with_unicorn(text: str, mode: str) -> None:
    data = bytes(range(64)) * 4
    assert unicorn_disagreements(bytes.fromhex(text), mode, data, ebp=0x2010,
                                 esp=0xABCD0000) == []


def test_leave_undoes_enter() -> None:
    cpu = make_cpu(bytes.fromhex("c8100002c9"), "prot32", ebp=0x2100)
    assert cpu.run(2) is None
    assert (cpu.get_reg("ebp"), cpu.get_reg("esp")) == (0x2100, STACK_TOP)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text,vector,eflags", [
    ("cc", BP, 0x2), ("cd80", 0x80, 0x2), ("cd03", 3, 0x2), ("ce", OVERFLOW, 0x2 | OF),
])
def test_software_interrupts_are_traps_after_the_instruction(text: str, vector: int,
                                                             eflags: int, mode: str) -> None:
    code = bytes.fromhex(text)
    cpu, result = run(code, mode, eflags=eflags)
    assert (result.exception.vector, result.exception.kind) == (vector, "trap")
    assert cpu.eip == CODE + len(code)
    assert unicorn_disagreements(code, mode, eflags=eflags) == []


@pytest.mark.parametrize("mode", MODES)
def test_into_without_overflow_does_nothing(mode: str) -> None:
    cpu, result = run(b"\xce", mode, eflags=0x2)
    assert result.exception is None and cpu.eip == CODE + 1
    assert unicorn_disagreements(b"\xce", mode, eflags=0x2) == []


def test_far_jump_in_real_mode_loads_cs() -> None:
    code = bytes.fromhex("ea10000001")  # JMP 0100:0010 -> linear 0x1010
    cpu, result = run(code, "real16")
    assert result.exception is None
    assert (cpu.get_reg("cs"), cpu.eip, cpu.seg_base[1]) == (0x0100, 0x0010, 0x1000)
    assert unicorn_disagreements(code, "real16") == []



@pytest.mark.parametrize("text,esp", [
    ("9a40000001", 0x3800), ("669a400000000001", 0x3800),  # to 0100:0040, linear 0x1040
    ("ff1f", 0x3800), ("66ff1f", 0x3800),                       # CALL FAR [BX]
    ("cb", 0x2000), ("ca0600", 0x2000), ("66cb", 0x2000),       # RETF from the data page
    ("ff2f", 0x3800),                                           # JMP FAR [BX]
])
def test_real_mode_far_transfers_agree_with_unicorn(text: str, esp: int) -> None:
    wide = text.startswith("66") and text[2:4] in ("cb", "ff")
    data = bytes.fromhex("4000000000010000" if wide else "40000001")
    assert unicorn_disagreements(bytes.fromhex(text), "real16", data, ebx=0x2000,
                                 esp=esp) == []


def test_far_call_pushes_cs_then_ip() -> None:
    cpu, result = run(bytes.fromhex("9a40000001"), "real16", cs=0, esp=0x3800)
    assert result.exception is None
    assert (cpu.get_reg("cs"), cpu.eip, cpu.seg_base[1]) == (0x0100, 0x0040, 0x1000)
    assert cpu.read_linear(0x37FE, 2) == 0 and cpu.read_linear(0x37FC, 2) == CODE + 5
    assert cpu.get_reg("esp") == 0x37FC


def test_far_return_with_release() -> None:
    cpu = make_cpu(bytes.fromhex("ca0600"), "real16", esp=0x3700)
    cpu.write_linear(0x3700, 4, 0x01000040)
    assert cpu.step().exception is None
    assert (cpu.get_reg("cs"), cpu.eip, cpu.get_reg("esp")) == (0x0100, 0x40, 0x3700 + 4 + 6)


@pytest.mark.parametrize("opsize", [16, 32])
def test_real_mode_iret_restores_ip_cs_flags(opsize: int) -> None:
    """16-bit: FLAGS[15:0] := Pop() (reserved bits read as fixed); 32-bit: EFLAGS :=
    (Pop() AND 257FD5H) OR (EFLAGS AND 1A0000H), so VM stays as it was."""
    code = b"\xcf" if opsize == 16 else b"\x66\xcf"
    nbytes = opsize // 8
    cpu = make_cpu(code, "real16", esp=0x3700, eflags=0x0202)
    image = 0x0000_7FFF if opsize == 16 else 0xFFFF_FFFF
    for i, value in enumerate((0x40, 0x0100, image)):
        cpu.write_linear(0x3700 + i * nbytes, nbytes, value)
    assert cpu.step().exception is None
    assert (cpu.get_reg("cs"), cpu.eip) == (0x0100, 0x40)
    expected = 0x7FD7 if opsize == 16 else 0x257FD7  # bits 1/3/5/15 fixed; VM/VIF/VIP kept 0
    assert cpu.get_reg("eflags") == expected
    assert cpu.get_reg("esp") == 0x3700 + 3 * nbytes


@pytest.mark.parametrize("opsize", [16, 32])
def test_real_mode_iret_agrees_with_unicorn(opsize: int) -> None:
    nbytes = opsize // 8
    frame = b"".join(v.to_bytes(nbytes, "little") for v in (0x40, 0x0100, 0x08D7))
    code = b"\xcf" if opsize == 16 else b"\x66\xcf"
    assert unicorn_disagreements(code, "real16", frame, esp=0x2000) == []


@pytest.mark.parametrize("mode", MODES)
def test_int_1_is_an_ordinary_software_interrupt(mode: str) -> None:
    """CD 01 raises vector 1 as a trap like any INT n (SDM INT n: the vector is the
    immediate). Unicorn 2.1.4 reports nothing for it (vector 1 never reaches its
    interrupt hook), so this one is checked by hand only."""
    cpu, result = run(bytes.fromhex("cd01"), mode)
    assert (result.exception.vector, result.exception.kind) == (1, "trap")
    assert cpu.eip == CODE + 2


def test_enter_32_bit_operand_on_16_bit_stack_uses_all_of_esp() -> None:
    """C8 20 00 02 with SS.B = 0, ESP = ABCD8010, EBP = 12344000, measured on the host
    CPU (a 16-bit LDT stack segment in an i386 process): EBP = ABCD800C (the whole ESP
    after the push), FrameTemp pushed as ABCD800C, the display read at BP-4 (16-bit),
    and only SP moves: ESP = ABCD7FE4. Real mode has the same 16-bit stack."""
    cpu = make_cpu(bytes.fromhex("66c8200002"), "real16", esp=0xABCD3810, ebp=0x12342400)
    cpu.write_linear(0x23FC, 4, 0xD15A0001)
    assert cpu.step().exception is None
    assert (cpu.get_reg("ebp"), cpu.get_reg("esp")) == (0xABCD380C, 0xABCD37E4)
    pushed = [cpu.read_linear(0x3810 - 4 * i, 4) for i in range(1, 4)]
    assert pushed == [0x12342400, 0xD15A0001, 0xABCD380C]
