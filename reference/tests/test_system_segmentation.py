"""Segmentation in protected mode (SDM Vol. 3A, 3.4-3.5 and 5.1-5.8; Vol. 2, MOV Sreg,
LGDT/SGDT, LLDT, LTR, LAR, LSL, VERR, VERW, ARPL, far JMP/CALL/RET). Descriptors are
built by ``system_tables`` from the SDM's figures; every expected value below follows
from the rule quoted in the test's docstring."""

from __future__ import annotations

import pytest

from reference.faults import GP, NP, SS, TS, UD
from reference.tests.conftest import CODE, STACK_TOP, make_cpu
from reference.tests.system_tables import (
    CALL_GATE32,
    CODE_X,
    CODE_XR,
    CODE_XR_CONFORMING,
    DATA_RO,
    DATA_RW,
    DATA_RW_DOWN,
    GDT,
    INNER_STACK_TOP,
    LDT_TYPE,
    STANDARD_GDT,
    TSS32,
    TSS_BASE,
    descriptor,
    gate,
    protected_cpu,
    tss32,
)

MOV_DS_AX = bytes.fromhex("8e d8")
MOV_SS_AX = bytes.fromhex("8e d0")


def _gdt(**extra: bytes) -> dict:
    table = dict(STANDARD_GDT)
    for key, raw in extra.items():
        table[int(key[1:], 16)] = raw
    return table


def _fault(cpu) -> tuple:
    exc = cpu.step().exception
    return None if exc is None else (exc.vector, exc.error_code)


# -- data and stack segment loads: each check with its exception and error code ------
@pytest.mark.parametrize("selector, extra, cpl, expected", [
    (0x80, {}, 0, (GP, 0x80)),                                      # past the GDT limit
    (0x83, {}, 0, (GP, 0x80)),                                      # RPL cleared in code
    (0x40, {"s40": descriptor(0, 0xFFFF, CODE_X)}, 0, (GP, 0x40)),  # execute-only code
    (0x40, {"s40": descriptor(0, 0xFFFF, LDT_TYPE, s=0)}, 0, (GP, 0x40)),  # system
    (0x40, {"s40": descriptor(0, 0xFFFF, DATA_RW, dpl=0)}, 3, (GP, 0x40)),  # DPL < CPL
    (0x43, {"s40": descriptor(0, 0xFFFF, DATA_RW, dpl=2)}, 0, (GP, 0x40)),  # RPL > DPL
    (0x40, {"s40": descriptor(0, 0xFFFF, DATA_RW, present=0)}, 0, (NP, 0x40)),
    (0x40, {"s40": descriptor(0, 0xFFFF, CODE_XR_CONFORMING, dpl=0)}, 3, None),  # allowed
])
def test_mov_ds_checks(selector, extra, cpl, expected) -> None:
    """MOV DS (Vol. 2B MOV, protected mode): index within the table else #GP(sel);
    data or readable code else #GP(sel); for data and non-conforming code RPL <= DPL and
    CPL <= DPL else #GP(sel); present else #NP(sel). Error codes carry the selector with
    its RPL bits cleared."""
    cpu = protected_cpu(MOV_DS_AX, _gdt(**extra), cpl=cpl)
    cpu.set_reg("eax", selector)
    before = (cpu.get_reg("ds"), cpu.seg_base[3])
    assert _fault(cpu) == expected
    if expected is not None:
        assert (cpu.get_reg("ds"), cpu.seg_base[3]) == before and cpu.eip == CODE


@pytest.mark.parametrize("selector, extra, expected", [
    (0x00, {}, (GP, 0)),                                                   # null
    (0x08, {}, (GP, 0x08)),                                                # code
    (0x40, {"s40": descriptor(0, 0xFFFF, DATA_RO)}, (GP, 0x40)),           # read-only
    (0x40, {"s40": descriptor(0, 0xFFFF, DATA_RW, dpl=3)}, (GP, 0x40)),    # DPL != CPL
    (0x43, {"s40": descriptor(0, 0xFFFF, DATA_RW)}, (GP, 0x40)),           # RPL != CPL
    (0x40, {"s40": descriptor(0, 0xFFFF, DATA_RW, present=0)}, (SS, 0x40)),
])
def test_mov_ss_checks(selector, extra, expected) -> None:
    """MOV SS: null is #GP(0); RPL = CPL, writable data, DPL = CPL else #GP(sel); not
    present is #SS(sel)."""
    cpu = protected_cpu(MOV_SS_AX, _gdt(**extra))
    cpu.set_reg("eax", selector)
    assert _fault(cpu) == expected


def test_load_sets_accessed_bit_and_cache() -> None:
    """A load caches base, byte-granular limit and attributes, and sets the descriptor's
    accessed bit (type bit 0, byte 5 bit 0) in the GDT."""
    cpu = protected_cpu(MOV_DS_AX, _gdt(s40=descriptor(0x12345, 0x0FFF, DATA_RW)))
    cpu.set_reg("eax", 0x40)
    assert _fault(cpu) is None
    assert (cpu.seg_base[3], cpu.seg_limit[3]) == (0x12345, 0xFFF)
    assert cpu.mem.read_int(GDT + 0x40 + 5, 1) == 0x93


def _access(code: str, extra: dict, ds: int = 0x40, **regs: int):
    cpu = protected_cpu(MOV_DS_AX + bytes.fromhex(code), _gdt(**extra))
    cpu.set_reg("eax", ds)
    for name, value in regs.items():
        cpu.set_reg(name, value)
    assert _fault(cpu) is None
    return _fault(cpu)


@pytest.mark.parametrize("offset, expected", [(0xC, None), (0xD, (GP, 0)), (0x10, (GP, 0))])
def test_byte_granular_limit(offset: int, expected) -> None:
    """Limit 0xF, G = 0: a dword read at offset 0xC fits (last byte 0xF), at 0xD not."""
    assert _access("8b 03", {"s40": descriptor(0x2000, 0xF, DATA_RW)},
                   ebx=offset) == expected  # mov eax, [ebx]


@pytest.mark.parametrize("offset, expected", [(0xFFC, None), (0xFFD, (GP, 0)),
                                              (0x1000, (GP, 0))])
def test_page_granular_limit(offset: int, expected) -> None:
    """Limit 0, G = 1: the effective limit is (0 << 12) | 0xFFF."""
    assert _access("8b 03", {"s40": descriptor(0x2000, 0, DATA_RW, g=1)},
                   ebx=offset) == expected


@pytest.mark.parametrize("offset, expected", [(0x1000, None), (0xFFFC, None),
                                              (0xFFF, (GP, 0)), (0xFFFD, (GP, 0))])
def test_expand_down_16bit(offset: int, expected) -> None:
    """Expand-down, B = 0, limit 0xFFF: valid offsets are 0x1000..0xFFFF (5.3). Base
    0x1000 puts offset 0x1000 on the data page; 0xFFFC passes the segment checks and
    reaches unmapped test memory (vector -1), which is what "no #GP" looks like there."""
    result = _access("8b 03", {"s40": descriptor(0x1000, 0xFFF, DATA_RW_DOWN, db=0)},
                     ebx=offset)
    if expected is None:
        assert result in (None, (-1, None))
    else:
        assert result == expected


def test_write_to_read_only_data_is_gp_read_is_fine() -> None:
    assert _access("8b 03", {"s40": descriptor(0x2000, 0xFFF, DATA_RO)}, ebx=0) is None
    assert _access("89 03", {"s40": descriptor(0x2000, 0xFFF, DATA_RO)}, ebx=0) == (GP, 0)


def test_null_selector_loads_but_any_access_is_gp() -> None:
    """A null selector may be loaded into DS; using it is #GP(0) (3.4.2)."""
    assert _access("8b 03", {}, ds=0, ebx=0x2000) == (GP, 0)


def test_stack_b_bit_chooses_sp() -> None:
    """SS with B = 0: PUSH decrements SP only, ESP's upper half stays (SDM 3.4.5 D/B)."""
    cpu = protected_cpu(MOV_SS_AX + bytes.fromhex("50"),
                        _gdt(s40=descriptor(0, 0xFFFF, DATA_RW, db=0)))
    cpu.set_reg("eax", 0x40)
    cpu.set_reg("esp", 0x12343800)
    assert cpu.run(2) is None
    assert cpu.get_reg("esp") == 0x123437FC
    assert cpu.mem.read_int(0x37FC, 4) == 0x40


# -- far transfers -------------------------------------------------------------------
def test_far_jump_to_16bit_code_changes_default_size() -> None:
    """JMP 0x30:offset into a D = 0 code segment: the next instructions decode with
    16-bit operands (B8 takes an imm16)."""
    code = bytes.fromhex("ea 07 10 00 00 30 00 b8 34 12 90")
    cpu = protected_cpu(code)
    assert cpu.run(2) is None
    assert cpu.default_size == 16 and cpu.get_reg("eax") == 0x1234 and cpu.eip == 0x100A


@pytest.mark.parametrize("extra, cpl, selector, expected", [
    ({"s40": descriptor(0, 0xFFFFF, CODE_XR, dpl=0, g=1)}, 3, 0x43, (GP, 0x40)),  # DPL!=CPL
    ({"s40": descriptor(0, 0xFFFFF, CODE_XR, dpl=3, present=0, g=1)}, 3, 0x43, (NP, 0x40)),
    ({"s40": descriptor(0, 0xFFF, CODE_XR)}, 0, 0x40, (GP, 0)),                 # offset > limit
    ({"s40": descriptor(0, 0xFFFF, DATA_RW)}, 0, 0x40, (GP, 0x40)),             # not code
    ({}, 0, 0x00, (GP, 0)),                                                     # null
])
def test_far_jump_checks(extra, cpl, selector, expected) -> None:
    """JMP far: non-conforming code needs DPL = CPL (#GP(sel)), present (#NP(sel)), the
    offset within the limit (#GP(0)); a data segment or null selector is refused."""
    code = bytes.fromhex("ea 00 10 00 00") + selector.to_bytes(2, "little")
    cpu = protected_cpu(code, _gdt(**extra), cpl=cpl)
    assert _fault(cpu) == expected


def test_far_jump_to_conforming_code_keeps_cpl() -> None:
    """A conforming segment of DPL 0 from CPL 3: allowed; CS.RPL := CPL = 3."""
    code = bytes.fromhex("ea 00 10 00 00 40 00")
    cpu = protected_cpu(code, _gdt(s40=descriptor(0, 0xFFFFF, CODE_XR_CONFORMING, g=1)),
                        cpl=3)
    assert _fault(cpu) is None
    assert (cpu.get_reg("cs"), cpu.cpl, cpu.eip) == (0x43, 3, 0x1000)


def test_call_gate_to_ring0_switches_stack_and_copies_parameters() -> None:
    """CALL 0x4B:0 at CPL 3 through a DPL-3 call gate to ring-0 code with 2 parameters:
    SS:ESP from the TSS (0x10:INNER_STACK_TOP), then pushed: old SS, old ESP, the two
    parameters in their order, old CS, return EIP (SDM Vol. 2A, CALL, MORE-PRIVILEGE)."""
    code = bytes.fromhex("9a 00 00 00 00 4b 00")
    gdt = _gdt(s48=gate(0x08, 0x1100, CALL_GATE32, dpl=3, params=2))
    cpu = protected_cpu(code, gdt, cpl=3)
    cpu.push(0xBBBB, 32)  # parameter 2 (deeper)
    cpu.push(0xAAAA, 32)  # parameter 1 (top)
    old_esp = cpu.get_reg("esp")
    assert _fault(cpu) is None
    assert (cpu.cpl, cpu.get_reg("cs"), cpu.get_reg("ss"), cpu.eip) == (0, 0x08, 0x10, 0x1100)
    esp = cpu.get_reg("esp")
    assert esp == INNER_STACK_TOP - 6 * 4
    frame = [cpu.mem.read_int(esp + 4 * i, 4) for i in range(6)]
    assert frame == [CODE + 7, 0x1B, 0xAAAA, 0xBBBB, old_esp, 0x23]


def test_call_gate_without_room_on_the_inner_stack_is_ss_new_ss() -> None:
    """The same CALL with TSS.SS0 = 0x50 (byte-granular, limit 0xFFF) and ESP0 = 0x10:
    the 24-byte frame does not fit: #SS(0x50), the new SS selector (SDM Vol. 2A, CALL,
    MORE-PRIVILEGE: "IF new stack does not have room for parameters plus 16 bytes THEN
    #SS(NewSS)"), and nothing changed (CPL 3, the caller's stack)."""
    code = bytes.fromhex("9a 00 00 00 00 4b 00")
    gdt = _gdt(s48=gate(0x08, 0x1100, CALL_GATE32, dpl=3, params=2),
               s50=descriptor(0x9000, 0xFFF, DATA_RW))
    cpu = protected_cpu(code, gdt, cpl=3)
    cpu.mem.write_bytes(TSS_BASE, tss32(0x10, 0x50))
    assert _fault(cpu) == (SS, 0x50)
    assert (cpu.cpl, cpu.get_reg("ss"), cpu.get_reg("esp")) == (3, 0x23, STACK_TOP)


def test_far_return_to_outer_level_pops_stack_and_nulls_data_segments() -> None:
    """RETF at CPL 0 to a CPL-3 CS: pops EIP, CS, ESP, SS; DS (DPL 0 data) becomes
    null because its DPL is below the new CPL (Vol. 2B, RET)."""
    cpu = protected_cpu(bytes.fromhex("cb"))
    for value in (0x23, 0x3000, 0x1B, 0x1234):  # SS, ESP, CS, EIP
        cpu.push(value, 32)
    assert _fault(cpu) is None
    assert (cpu.cpl, cpu.get_reg("cs"), cpu.get_reg("ss"), cpu.eip) == (3, 0x1B, 0x23, 0x1234)
    assert cpu.get_reg("esp") == 0x3000 and cpu.get_reg("ds") == 0


def test_far_return_to_inner_level_is_gp() -> None:
    """RETF at CPL 3 to a CS with RPL 0: RPL < CPL is #GP(selector)."""
    cpu = protected_cpu(bytes.fromhex("cb"), cpl=3)
    cpu.push(0x08, 32)
    cpu.push(0x1234, 32)
    assert _fault(cpu) == (GP, 0x08)


# -- table registers, LDT, TR ---------------------------------------------------------
def test_lgdt_sgdt_round_trip_and_16bit_form() -> None:
    """SGDT stores limit then base; with a 66 prefix LGDT keeps 24 bits of base and
    SGDT stores a zero sixth byte."""
    cpu = make_cpu(bytes.fromhex("0f 01 15 00 20 00 00 0f 01 05 10 20 00 00"
                                 "66 0f 01 15 00 20 00 00 66 0f 01 05 20 20 00 00"),
                   "prot32")
    cpu.mem.write_bytes(0x2000, bytes.fromhex("ff 03 78 56 34 12"))
    assert cpu.run(4) is None
    assert cpu.mem.read_bytes(0x2010, 6) == bytes.fromhex("ff 03 78 56 34 12")
    assert cpu.mem.read_bytes(0x2020, 6) == bytes.fromhex("ff 03 78 56 34 00")


def test_lldt_then_ldt_selector_loads_from_the_ldt() -> None:
    """LLDT 0x38 (an LDT descriptor at base 0x6000): selector 0x0C (TI = 1, index 1)
    then names the LDT's descriptor 1."""
    ldt_image = b"\0" * 8 + descriptor(0xABC000, 0xFFF, DATA_RW)
    gdt = _gdt(s38=descriptor(0x6000, len(ldt_image) - 1, LDT_TYPE, s=0))
    cpu = protected_cpu(bytes.fromhex("0f 00 d3") + MOV_DS_AX, gdt)
    cpu.mem.write_bytes(0x6000, ldt_image)
    cpu.set_reg("ebx", 0x38)
    cpu.set_reg("eax", 0x0C)
    assert cpu.run(2) is None
    assert (cpu.ldtr.selector, cpu.seg_base[3]) == (0x38, 0xABC000)


def test_lldt_rejects_non_ldt_and_ltr_marks_busy() -> None:
    """LLDT of a data descriptor: #GP(sel). LTR 0x28: the TSS type becomes busy (0xB);
    a second LTR of the now busy TSS is #GP(sel)."""
    cpu = protected_cpu(bytes.fromhex("0f 00 d3"))
    cpu.set_reg("ebx", 0x10)
    assert _fault(cpu) == (GP, 0x10)
    cpu = protected_cpu(bytes.fromhex("0f 00 db 0f 00 c8 0f 00 db"))
    cpu.set_reg("ebx", 0x28)
    assert cpu.run(2) is None  # LTR BX; STR EAX
    assert cpu.mem.read_int(GDT + 0x28 + 5, 1) & 0xF == 0xB and cpu.get_reg("eax") == 0x28
    assert _fault(cpu) == (GP, 0x28)


@pytest.mark.parametrize("code", ["0f 00 d3", "0f 00 c0", "0f 02 c3", "63 c3"])
def test_protected_only_instructions_are_ud_in_real_mode(code: str) -> None:
    """LLDT, SLDT, LAR, ARPL are not recognized in real-address mode."""
    assert make_cpu(bytes.fromhex(code), "real16").step().exception.vector == UD


def test_lldt_ltr_privileged() -> None:
    cpu = protected_cpu(bytes.fromhex("0f 00 d3"), cpl=3)
    assert _fault(cpu) == (GP, 0)


# -- LAR, LSL, VERR, VERW, ARPL ---------------------------------------------------------
@pytest.mark.parametrize("selector, cpl, zf, value", [
    (0x10, 0, 1, 0x00CF9200),   # flat data (accessed clear): high dword AND 00FFFF00
    (0x10, 3, 0, None),         # DPL 0 < CPL 3: invisible
    (0x28, 0, 1, 0x00408900),   # a TSS is visible to LAR (built with bit 22 set)
    (0x80, 0, 0, None),         # beyond the GDT
])
def test_lar(selector: int, cpl: int, zf: int, value) -> None:
    cpu = protected_cpu(bytes.fromhex("0f 02 c3"), cpl=cpl)
    cpu.set_reg("ebx", selector)
    cpu.set_reg("eax", 0x5555)
    assert _fault(cpu) is None
    assert cpu.flags.zf == zf
    assert cpu.get_reg("eax") == (0x5555 if value is None else value)


def test_lsl_scales_limit_and_refuses_gates() -> None:
    """LSL: G = 1 limit 0xFFFFF -> 0xFFFFFFFF; a call gate has no limit: ZF = 0."""
    cpu = protected_cpu(bytes.fromhex("0f 03 c3"), _gdt(s48=gate(8, 0, CALL_GATE32)))
    cpu.set_reg("ebx", 0x08)
    assert _fault(cpu) is None and cpu.flags.zf == 1 and cpu.get_reg("eax") == 0xFFFFFFFF
    cpu = protected_cpu(bytes.fromhex("0f 03 c3"), _gdt(s48=gate(8, 0, CALL_GATE32)))
    cpu.set_reg("ebx", 0x48)
    assert _fault(cpu) is None and cpu.flags.zf == 0


@pytest.mark.parametrize("opcode, selector, zf", [
    ("0f 00 e3", 0x10, 1),   # VERR data
    ("0f 00 e3", 0x08, 1),   # VERR readable code
    ("0f 00 e3", 0x40, 0),   # VERR execute-only code
    ("0f 00 eb", 0x10, 1),   # VERW data
    ("0f 00 eb", 0x08, 0),   # VERW code
    ("0f 00 eb", 0x28, 0),   # VERW a TSS
])
def test_verr_verw(opcode: str, selector: int, zf: int) -> None:
    cpu = protected_cpu(bytes.fromhex(opcode), _gdt(s40=descriptor(0, 0xFFFF, CODE_X)))
    cpu.set_reg("ebx", selector)
    assert _fault(cpu) is None and cpu.flags.zf == zf


@pytest.mark.parametrize("dest, src, zf, result", [(0x10, 0x3, 1, 0x13), (0x13, 0x1, 0, 0x13)])
def test_arpl(dest: int, src: int, zf: int, result: int) -> None:
    """ARPL BX, AX: raises BX's RPL to AX's when lower (ZF = 1), else ZF = 0."""
    cpu = make_cpu(bytes.fromhex("63 c3"), "prot32", ebx=dest, eax=src)
    assert cpu.step().exception is None
    assert (cpu.flags.zf, cpu.get_reg("bx")) == (zf, result)


def test_tss_stack_beyond_tss_limit_is_ts() -> None:
    """An inner stack read past TR's limit: #TS(TSS selector)."""
    code = bytes.fromhex("9a 00 00 00 00 4b 00")
    gdt = _gdt(s48=gate(0x08, 0x1100, CALL_GATE32, dpl=3))
    cpu = protected_cpu(code, gdt, cpl=3)
    cpu.tr.limit = 7
    assert _fault(cpu) == (TS, 0x28)
    assert cpu.get_reg("esp") == STACK_TOP and cpu.cpl == 3


def test_tss_type_constant_matches_table() -> None:
    assert TSS32 == 9


@pytest.mark.parametrize("port, size_prefix, bitmap, allowed", [
    (0x61, "", {0x0C: 0x00}, True),           # OUT DX, AL: bit 0x61 = byte 0x0C bit 1
    (0x61, "", {0x0C: 0x02}, False),          # that bit set
    (0x67, "66", {0x0C: 0x00, 0x0D: 0x01}, False),  # a word at 0x67 also needs bit 0x68
    (0x67, "66", {0x0C: 0x7F, 0x0D: 0x00}, True),
    (0x3FF, "", {}, False),                   # the map's second byte is past TR.limit
])
def test_io_permission_bitmap(port: int, size_prefix: str, bitmap: dict,
                              allowed: bool) -> None:
    """CPL 3 > IOPL 0: OUT is allowed only if the TSS's I/O map (base at offset 102,
    here 104) has a 0 bit for every port accessed (SDM Vol. 1, 19.5.2)."""
    code = bytes.fromhex(size_prefix + ("ef" if size_prefix else "ee"))
    cpu = protected_cpu(code, cpl=3)
    cpu.set_reg("edx", port)
    cpu.mem.write_int(0x8000 + 102, 2, 104)
    for offset, value in bitmap.items():
        cpu.mem.write_int(0x8000 + 104 + offset, 1, value)
    cpu.tr.limit = 104 + 0x80 - 1  # room for ports 0-0x3F7
    written = []
    cpu.io_out = lambda p, size, value: written.append((p, size))
    exc = cpu.step().exception
    if allowed:
        assert exc is None and written == [(port, 16 if size_prefix else 8)]
    else:
        assert (exc.vector, exc.error_code) == (GP, 0) and written == []
