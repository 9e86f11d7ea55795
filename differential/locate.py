"""Where a FORMS encoding's memory operands point, read from its own bytes: the generator's
hot path, in place of a Capstone decode per case.

The generator encodes a case from a FORMS row (``encoder.py``), so it already knows the
row: the opcode, whether a ModRM byte follows, and each operand's letter. What it needs
back is small: every memory operand's base, index, scale, displacement, segment and size,
the address size, and whether the instruction is a string one. Capstone answered that for
~20 µs a case (a disassembly plus a detail structure rebuilt on each attribute read);
reading ModRM/SIB here costs a few µs. Capstone stays the independent check:
``tests/test_locate.py`` compares both on generated cases of every testable row. Where
only Capstone knows the answer (its own sizes for some operands, encodings it refuses),
``Locator`` asks it once per shape of encoding and keeps the answer, so a seed still
draws the same case as when Capstone placed every operand.

Registers are named as Capstone names them (``ebx``, ``bp``, ``si``), because the
generator's register arithmetic (``operands.register_value``) reads those names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Tuple

from differential.encoding import split_prefixes
from differential.operands import register_value

_SEGMENT_PREFIXES = {0x26: "es", 0x2E: "cs", 0x36: "ss", 0x3E: "ds", 0x64: "fs", 0x65: "gs"}
_REG32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
# 16-bit ModRM r/m (SDM Vol. 2A, Table 2-1): (base, index); r/m 6 with mod 0 is disp16 alone.
_RM16 = (("bx", "si"), ("bx", "di"), ("bp", "si"), ("bp", "di"),
         ("si", None), ("di", None), ("bp", None), ("bx", None))
_STRING_FORMS = ("MOVS", "CMPS", "STOS", "LODS", "SCAS", "INS", "OUTS")
_STRING_MNEMONICS = ("movs", "cmps", "stos", "lods", "scas", "ins", "outs", "rep")
_STACK_BASES = ("bp", "ebp", "sp", "esp")
_UNSEEN = (-1,)  # a shape not decoded yet (None: Capstone refused it; (): no memory operand)


class Place(NamedTuple):
    """One memory operand: address parts as Capstone would report them, and its size.
    (Immutable records here are named tuples: a frozen dataclass sets each field through
    ``object.__setattr__``, ~1.3 µs more a record, and a case builds one or two, issue 18.)"""

    base: Optional[str]
    index: Optional[str]
    scale: int
    disp: int
    segment: Optional[str]  # an explicit segment (override or ES of a string destination)
    size: int

    def _replace_size(self, size: int) -> Place:
        return Place(self.base, self.index, self.scale, self.disp, self.segment, size)


class Located(NamedTuple):
    """What the generator needs to place a FORMS case's memory operands."""

    addr_size: int
    places: Tuple[Place, ...]
    string: bool  # a string instruction (or one Capstone prints with a REP mnemonic)
    xlat: bool  # XLAT reads DS:[eBX + AL], which Capstone lists as no operand
    from_capstone: bool = False  # Capstone decoded this very encoding


def _modrm_place(body: bytes, at: int, address_size: int, segment: Optional[str],
                 size: int) -> Optional[Place]:
    """The memory operand a ModRM byte at ``body[at]`` names, or None for a register."""
    if at >= len(body):
        return None
    modrm = body[at]
    mod, rm = modrm >> 6, modrm & 7
    if mod == 3:
        return None
    rest = at + 1
    if address_size == 2:
        base, index = _RM16[rm]
        width = 2 if (mod == 0 and rm == 6) or mod == 2 else 1 if mod == 1 else 0
        if mod == 0 and rm == 6:
            base = None
        return Place(base, index, 1, _signed(body[rest:rest + width]), segment, size)
    base32: Optional[str] = _REG32[rm]
    index32: Optional[str] = None
    scale = 1
    if rm == 4:
        if rest >= len(body):
            return None
        sib = body[rest]
        rest += 1
        scale = 1 << (sib >> 6)
        index32 = None if (sib >> 3) & 7 == 4 else _REG32[(sib >> 3) & 7]
        base32 = _REG32[sib & 7]
        if index32 is None:
            scale = 1
        if mod == 0 and sib & 7 == 5:
            base32 = None
            return Place(base32, index32, scale, _signed(body[rest:rest + 4]), segment, size)
    elif mod == 0 and rm == 5:
        return Place(None, None, 1, _signed(body[rest:rest + 4]), segment, size)
    width = 1 if mod == 1 else 4 if mod == 2 else 0
    return Place(base32, index32, scale, _signed(body[rest:rest + width]), segment, size)


def _signed(raw: bytes) -> int:
    return int.from_bytes(raw, "little", signed=True) if raw else 0


_FIXED_SIZES = {"b": 1, "d": 4, "q": 8, "s": 6, "t": 10, "vw": 2, "w": 2}


def _size(spec: str) -> Tuple[int, int]:
    """Bytes of a memory operand with letter ``spec`` (SDM Vol. 2, Appendix A.2.2), as
    (fixed bytes, times the operand size): ``a`` is two operands, ``v`` (and ``z``) one."""
    tail = spec[1:]
    if tail == "a":
        return 0, 2
    return (_FIXED_SIZES[tail], 0) if tail in _FIXED_SIZES else (0, 1)


@dataclass(frozen=True)
class _Row:
    """What ``locate`` reads from a FORMS row, worked out once per row: per case it had
    scanned the operand letters, built the size table and matched the row's name (~1 µs
    of a case's generation, issue 18)."""

    opcode_length: int
    memory: Tuple[Tuple[str, int, int], ...]  # (E/M/O/X/Y, fixed bytes, x operand size)
    asks_capstone: bool  # in ``_asks_capstone``
    string: bool
    xlat: bool


_ROWS: Dict[str, _Row] = {}


def _row(form) -> _Row:
    row = _ROWS.get(form.name)
    if row is None:
        row = _ROWS[form.name] = _Row(
            len(form.enc.opcode),
            tuple((spec[0], *_size(spec)) for spec in form.specs
                  if spec[0] in "EMOXY" and spec != "ES"),
            form.name in _asks_capstone(), form.name.startswith(_STRING_FORMS),
            form.mnemonic == "XLAT")
    return row


def _geometry(row: _Row, mode: str, prefixes: bytes, body: bytes
              ) -> Optional[Tuple[int, List[Place]]]:
    """(address size, memory operands) read from the bytes, in operand order."""
    opcode_length = row.opcode_length
    if len(body) < opcode_length:
        return None
    default = 2 if mode == "real16" else 4
    operand_size = (6 - default) if 0x66 in prefixes else default
    address_size = (6 - default) if 0x67 in prefixes else default
    segment = None
    for byte in prefixes:  # the last segment override is the one that counts
        segment = _SEGMENT_PREFIXES.get(byte, segment)
    places: List[Place] = []
    for letter, fixed, times in row.memory:
        size = fixed + times * operand_size
        if letter in "EM":
            place = _modrm_place(body, opcode_length, address_size, segment, size)
            if place is not None:
                places.append(place)
        elif letter == "O":
            disp = body[opcode_length:opcode_length + address_size]
            if len(disp) < address_size:
                return None
            places.append(Place(None, None, 1, _signed(disp), segment, size))
        elif letter == "X":
            places.append(Place("si" if address_size == 2 else "esi", None, 1, 0, segment,
                                size))
        else:  # Y
            places.append(Place("di" if address_size == 2 else "edi", None, 1, 0, "es",
                                size))
    return address_size, places


def from_capstone(insn) -> Located:
    """The same facts from a Capstone instruction (random-bytes cases, and the check)."""
    from capstone import x86 as cx

    places = []
    for op in insn.operands:
        if op.type != cx.X86_OP_MEM:
            continue
        mem = op.mem
        index = insn.reg_name(mem.index) if mem.index else None
        places.append(Place(insn.reg_name(mem.base) if mem.base else None, index,
                            mem.scale if index else 1, mem.disp,
                            insn.reg_name(mem.segment) if mem.segment else None,
                            max(op.size, 1)))
    mnemonic = insn.mnemonic
    return Located(insn.addr_size, tuple(places), mnemonic.startswith(_STRING_MNEMONICS),
                   mnemonic.startswith("xlat"), True)


@functools.cache
def _asks_capstone() -> FrozenSet[str]:
    """Rows whose answers only Capstone knows (see ``Locator``): a ModRM reg field that
    is no general register (MOV to/from Sreg: 6 and 7 name none; the 0F 18-1F hint space,
    where Capstone decodes MPX and CLDEMOTE and refuses bound registers 4-7), and memory
    operands Capstone sizes its own way (Mp: 2 bytes for LES in 16-bit code, 4 for a far
    CALL whatever the operand size; a bare M: FXSAVE's 512 bytes as 2 or 4, LEA's)."""
    from reference import FORMS

    return frozenset(
        form.name for form in FORMS
        if (form.enc.modrm and form.enc.digit is None
            and not any(spec[0] == "G" for spec in form.specs))
        or any(spec in ("M", "Mp") for spec in form.specs))


class Locator:
    """``locate``, with what only Capstone knows learned once per shape of encoding.

    For most rows the bytes say everything. For the few in ``_asks_capstone`` the
    generator placed pages by Capstone's own sizes, or had no operands at all where
    Capstone refused the encoding, and a seed must keep drawing the same case. Those
    answers depend only on the row, the mode, 66 and 67, whether r/m is a register and
    the ModRM reg field (and r/m for a register), never on segment overrides,
    displacements, SIB or immediates (``tests/test_locate.py`` checks every row against
    Capstone); so the first encoding of each such shape is decoded by Capstone and its
    sizes (or its refusal) kept, and every later one is read from its bytes.
    """

    def __init__(self) -> None:
        self._shapes: Dict[Tuple[object, ...], Optional[Tuple[int, ...]]] = {}

    def locate(self, form, mode: str, code: bytes) -> Optional[Located]:
        """Memory operands of ``code`` (an encoding of ``form``), or None where Capstone
        would not decode it."""
        prefixes, body = split_prefixes(code)
        row = _row(form)
        found = _geometry(row, mode, prefixes, body)
        if found is None:
            return None
        address_size, places = found
        if row.asks_capstone:
            opcode_length = row.opcode_length
            modrm = body[opcode_length] if len(body) > opcode_length else 0
            shape = (form.name, mode, 0x66 in prefixes, 0x67 in prefixes,
                     modrm & 0xFF if modrm >= 0xC0 else modrm & 0x38)
            sizes = self._shapes.get(shape, _UNSEEN)
            if sizes is _UNSEEN:
                sizes = self._shapes[shape] = self._learn(form, mode, code)
            if sizes is None:
                return None
            if len(places) != len(sizes):  # not so far: Capstone decides this one
                from differential.operands import decode

                insn = decode(mode, code)
                return from_capstone(insn) if insn is not None else None
            places = [place._replace_size(size) for place, size in zip(places, sizes)]
        return Located(address_size, tuple(places), row.string, row.xlat)

    @staticmethod
    def _learn(form, mode: str, code: bytes) -> Optional[Tuple[int, ...]]:
        from differential.operands import decode

        insn = decode(mode, code)
        if insn is None:
            return None
        return tuple(place.size for place in from_capstone(insn).places)


def linear(mode: str, located: Located, place: Place, regs: Mapping[str, int]) -> int:
    """The linear address of ``place`` in the initial state ``regs``."""
    offset = place.disp
    if place.base:
        offset += register_value(regs, place.base)
    if place.index:
        offset += register_value(regs, place.index) * place.scale
    offset &= 0xFFFF if located.addr_size == 2 else 0xFFFFFFFF
    if mode != "real16":
        return offset & 0xFFFFFFFF
    segment = place.segment or ("ss" if place.base in _STACK_BASES else "ds")
    return ((regs.get(segment, 0) << 4) + offset) & 0xFFFFFFFF


_BYTE_REGS = ("al", "cl", "dl", "bl", "ah", "ch", "dh", "bh")
_WORD_REGS = ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di")


def register_name(index: int, bits: int) -> str:
    """Capstone's name of general register ``index`` at ``bits`` (8: AL..BH)."""
    return (_BYTE_REGS if bits == 8 else _WORD_REGS if bits == 16 else _REG32)[index]


def modrm_fields(form, code: bytes) -> Optional[Tuple[int, int, int]]:
    """(mod, reg, rm) of a FORMS encoding's ModRM byte, or None without one."""
    _prefixes, body = split_prefixes(code)
    at = len(form.enc.opcode)
    if not form.enc.modrm or at >= len(body):
        return None
    modrm = body[at]
    return modrm >> 6, (modrm >> 3) & 7, modrm & 7
