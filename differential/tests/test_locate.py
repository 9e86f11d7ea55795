"""The generator's own operand reading (``differential/locate.py`` and
``generator._undefined_from_bytes``) against Capstone, which it replaced on the hot path
and which stays the independent check; and a few addresses worked out from the SDM's
ModRM tables by hand."""

from __future__ import annotations

import pytest

from differential import campaign
from differential.attribution import attribute
from differential.draw import RandomDraw
from differential.encoder import encode
from differential.generator import _undefined, _undefined_from_bytes
from differential.locate import Locator, from_capstone, linear
from differential.operands import decode
from differential.state import page_bytes
from reference import BY_NAME

PER_ROW = 40  # encodings of every testable (row, mode): ~40,000 decodes, a few seconds


def _plain(located):
    """A located instruction as comparable data (displacements modulo the address size:
    Capstone reports some as unsigned, we read them signed; only the sum is used)."""
    if located is None:
        return None
    mask = 0xFFFF if located.addr_size == 2 else 0xFFFFFFFF
    return (located.addr_size, located.string, located.xlat,
            [(p.base, p.index, p.scale, p.disp & mask, p.segment, p.size)
             for p in located.places])


def test_memory_operands_agree_with_capstone_on_every_row():
    """Address size, string-ness and every memory operand (base, index, scale,
    displacement, segment, size) as Capstone reports them, or None where Capstone refuses
    the encoding, for encodings of every testable row in both modes."""
    locator = Locator()
    checked = refused = 0
    for form, mode in campaign.testable_forms("*"):
        for i in range(PER_ROW):
            code = encode(form, mode, RandomDraw(1_000_003 * i + len(form.name)))
            insn = decode(mode, code)
            theirs = _plain(from_capstone(insn)) if insn is not None else None
            assert _plain(locator.locate(form, mode, code)) == theirs, (form.name, mode,
                                                                        code.hex())
            checked += 1
            refused += insn is None
    assert checked > 20_000 and refused > 0  # the refusals (0F 1A-1E, MOV Sw) are met


def test_undefined_flags_agree_with_capstone_on_every_row_with_rules():
    """The mask and undefined destination read from the bytes equal the ones computed
    through Capstone, on seeded states for every row with undefined-flag rules that the
    quick path answers (shifts, rotates, SHLD/SHRD, BSF/BSR, rows with only ALWAYS)."""
    locator = Locator()
    answered = 0
    for form, mode in campaign.testable_forms("*"):
        if not form.undefined:
            continue
        for i in range(PER_ROW):
            case = campaign.draw_case(campaign.Plan(seed=i, jobs=1, forms=form.name,
                                                    bytes_share=0), [(form, mode)], 0, i)[0]
            located = locator.locate(form, mode, case.code)
            if located is None or located.from_capstone:
                continue
            quick = _undefined_from_bytes(form, mode, case.code, located, case.regs,
                                          case.memory)
            if quick is None:
                continue
            insn = decode(mode, case.code)
            assert quick == _undefined(form, mode, insn, case.regs, case.memory), (
                form.name, mode, case.code.hex())
            answered += 1
    assert answered > 2000


def test_16_bit_based_indexed_address_uses_ss():
    """SDM Vol. 2A, Table 2-1: mod 01 r/m 010 is [BP+SI]+disp8, and a BP base selects SS
    (Vol. 1, 3.7.5). 8B 52 F0: MOV DX,[BP+SI-10h]. BP=0x1000, SI=0xF020, SS=0x2000:
    offset (0x1000 + 0xF020 - 0x10) mod 2**16 = 0x0010, linear 0x20000 + 0x10."""
    form = BY_NAME["MOV_Gv_Ev"]
    code = bytes.fromhex("8b52f0")
    located = Locator().locate(form, "real16", code)
    regs = {"ebp": 0x1000, "esi": 0xF020, "ss": 0x2000, "ds": 0x3000}
    assert linear("real16", located, located.places[0], regs) == 0x20010
    assert located.places[0].size == 2


def test_32_bit_sib_without_base_or_index_is_a_bare_displacement():
    """SDM Vol. 2A, Table 2-3: SIB base 101 with mod 00 means disp32 and no base; index
    100 means none. 01 04 25 78 56 34 12: ADD [12345678h],EAX whatever EBP and ESP hold."""
    form = BY_NAME["ADD_Ev_Gv"]
    located = Locator().locate(form, "prot32", bytes.fromhex("01042578563412"))
    regs = {"ebp": 0x1111, "esp": 0x2222}
    assert linear("prot32", located, located.places[0], regs) == 0x12345678


def test_string_destination_is_es_whatever_the_override():
    """SDM Vol. 2B, MOVS: the destination is always ES:(E)DI, and a segment override
    changes only the source DS:(E)SI. 64 A5 in real mode: MOVSW from FS:SI to ES:DI."""
    located = Locator().locate(BY_NAME["MOVS_Yv_Xv"], "real16", bytes.fromhex("64a5"))
    regs = {"esi": 0x10, "edi": 0x20, "es": 0x100, "fs": 0x200, "ds": 0x300}
    destination, source = located.places
    assert linear("real16", located, destination, regs) == 0x1000 + 0x20
    assert linear("real16", located, source, regs) == 0x2000 + 0x10
    assert located.string


@pytest.mark.parametrize("code, count", [("d1e0", 1), ("d3e0", 0x25 & 0x1F),
                                         ("c1e025", 0x25 & 0x1F)])
def test_shift_count_comes_from_the_encoding(code, count):
    """SHL EAX by 1, by CL (0x25) and by imm8 0x25: the count the rules see is masked to
    5 bits (SDM Vol. 2B, SAL/SAR/SHL/SHR: 'masked to 5 bits'), i.e. 5; OF is undefined
    for counts above 1 and AF for any non-zero count."""
    name = {"d1": "SHL_Ev_1", "d3": "SHL_Ev_CL", "c1": "SHL_Ev_Ib"}[code[:2]]
    form = BY_NAME[name]
    raw = bytes.fromhex(code)
    located = Locator().locate(form, "prot32", raw)
    mask, dest = _undefined_from_bytes(form, "prot32", raw, located, {"ecx": 0x25},
                                       {0: page_bytes(RandomDraw(1))})
    of, af = 0x800, 0x10
    assert dest == "" and bool(mask & of) == (count > 1) and bool(mask & af) == (count != 0)


def test_two_byte_rows_are_found_behind_0f():
    """0F CB is BSWAP EBX (0F C8+rd) and 0F AF /r IMUL Gv,Ev: the index by the second
    opcode byte still finds +r rows and ordinary ones."""
    assert attribute("prot32", bytes.fromhex("0fcb")).name == "BSWAP_Zv"
    assert attribute("prot32", bytes.fromhex("660fafc1")).name == "IMUL_Gv_Ev"
    assert attribute("prot32", bytes.fromhex("0f")) is None


def test_only_string_rows_encode_a_string_opcode():
    """The generator splits off a FORMS case's prefixes to look for REP on a string
    instruction only when the row is a string one (``Located.string``): so no other row
    may start with a string opcode (nor with a prefix byte, which would be split off)."""
    from differential.encoding import LEGACY_PREFIXES, STRING_OPCODES
    from differential.locate import _row
    from reference import FORMS

    string_rows = set()
    for form in FORMS:
        first = form.enc.opcode[0]
        firsts = range(first, first + 8) if form.enc.plus_r and len(form.enc.opcode) == 1 \
            else (first,)
        assert first not in LEGACY_PREFIXES, form.name
        if any(byte in STRING_OPCODES for byte in firsts):
            assert _row(form).string, form.name
            string_rows.add(form.mnemonic)
    assert string_rows == {"MOVS", "CMPS", "STOS", "LODS", "SCAS", "INS", "OUTS"}
