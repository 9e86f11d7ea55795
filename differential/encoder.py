"""Encode one instance of a ``Form`` straight from its opcode column and operand letters.

Keystone is not used to build cases: it cannot emit the aliases the table lists on
purpose (82 /r, F6 /1, D0-D3 /6, SETcc with a non-zero reg field) and it picks its own
encoding among equivalent ones, so the form a case belongs to would not be the form that
was drawn. Encoding from the table reaches every row; Capstone then checks the bytes
(``differential/tests/test_encoder.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

from differential.draw import Draw
from differential.state import value32

SEGMENT_OVERRIDES = (0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65)
OPERAND_SIZE, ADDRESS_SIZE, LOCK, REP, REPNE = 0x66, 0x67, 0xF0, 0xF3, 0xF2
_MEMORY_LETTERS = ("E", "M", "O", "X", "Y")
_BYTE = tuple(bytes((value,)) for value in range(256))
"""One-byte strings by value: indexing costs a fraction of ``bytes([value])``, a list
and a call of the type (a case builds two or three, issue 18)."""


def _sizes(mode: str, operand_prefix: bool, address_prefix: bool) -> Tuple[int, int]:
    """(operand size, address size) in bytes: the mode's default, flipped by 66/67."""
    default = 2 if mode == "real16" else 4
    return (6 - default if operand_prefix else default,
            6 - default if address_prefix else default)


def _little(value: int, size: int) -> bytes:
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def _displacement(draw: Draw, size: int) -> bytes:
    """Small, negative or arbitrary displacements (the sign extension of disp8 matters)."""
    value = draw.choice((0, 1, -1, 0x7F, -0x80, draw.integer(-0x100, 0x100), value32(draw)))
    return _little(value, size)


def _modrm_memory16(draw: Draw, reg: int) -> bytes:
    mod = draw.integer(0, 2)
    rm = draw.integer(0, 7)
    out = _BYTE[(mod << 6) | (reg << 3) | rm]
    if mod == 0 and rm == 6:
        return out + _displacement(draw, 2)
    return out + (_displacement(draw, 1) if mod == 1 else _displacement(draw, 2) if mod == 2
                  else b"")


def _modrm_memory32(draw: Draw, reg: int) -> bytes:
    mod = draw.integer(0, 2)
    rm = draw.integer(0, 7)
    out = _BYTE[(mod << 6) | (reg << 3) | rm]
    base = rm
    if rm == 4:  # a SIB byte follows: scale, index (4 = none), base
        base = draw.integer(0, 7)
        out += _BYTE[(draw.integer(0, 3) << 6) | (draw.integer(0, 7) << 3) | base]
    if mod == 0 and base == 5:
        return out + _displacement(draw, 4)
    return out + (_displacement(draw, 1) if mod == 1 else _displacement(draw, 4) if mod == 2
                  else b"")


def _modrm(draw: Draw, reg: int, memory_only: bool, address_size: int) -> Tuple[bytes, bool]:
    """(ModRM and what follows it up to the immediates, whether r/m is memory)."""
    if not memory_only and draw.chance(40):
        return _BYTE[0xC0 | (reg << 3) | draw.integer(0, 7)], False
    encode = _modrm_memory16 if address_size == 2 else _modrm_memory32
    return encode(draw, reg), True


def _immediate(draw: Draw, spec: str, operand_size: int, address_size: int) -> bytes:
    letter, size = spec[0], spec[1:]
    if letter == "A":  # ptr16:16/32: offset then selector
        return _little(value32(draw), operand_size) + _little(draw.integer(0, 0xFFFF), 2)
    if letter == "O":
        return _little(value32(draw), address_size)
    if letter == "J" and draw.chance(60):  # mostly near targets, sometimes anywhere
        width = 1 if size == "b" else operand_size
        return _little(draw.integer(-0x80, 0x7F), width)
    width = {"b": 1, "bs": 1, "w": 2, "z": operand_size}.get(size, operand_size)
    return _little(value32(draw), width)


def _prefixes(draw: Draw, form, memory: bool, sizes: List[int]) -> List[int]:
    """The size prefixes already chosen plus segment/REP/LOCK, in a drawn order, sometimes
    with one repeated (legal: only the count of 15 bytes limits them)."""
    chosen = list(sizes)
    if memory and draw.chance(15):
        chosen.append(draw.choice(SEGMENT_OVERRIDES))
    if form.rep and draw.chance(60):
        chosen.append(REPNE if form.rep == "repe" and draw.chance(50) else REP)
    if form.lockable and memory and draw.chance(20):
        chosen.append(LOCK)
    if chosen and draw.chance(5):
        chosen.append(draw.choice(chosen))
    order = []
    while chosen:  # legacy prefixes may come in any order
        order.append(chosen.pop(draw.integer(0, len(chosen) - 1)))
    return order


@dataclass(frozen=True)
class _Shape:
    """What ``encode`` reads from a row's operand letters, worked out once per row (the
    letters were scanned five times a case: ~20 % of a case's generation)."""

    memory: bool  # an operand is always memory (O, X, Y)
    reg_field: str  # what the ModRM reg field holds: "digit", "S", "C" or "G"
    memory_only: bool  # an M operand: r/m is never a register
    register_only: bool  # an R operand (MOV CRn/DRn): r/m is always a register
    immediates: Tuple[str, ...]  # the specs that are bytes after ModRM, in order
    opcode: bytes  # the opcode column's bytes (+r adds to the last one)


_SHAPES: Dict[str, _Shape] = {}


def _shape(form) -> _Shape:
    shape = _SHAPES.get(form.name)
    if shape is None:
        specs = form.specs
        reg_field = "digit" if form.enc.digit is not None else \
            "S" if any(s.startswith("S") for s in specs) else \
            "C" if any(s.startswith("C") for s in specs) else "G"
        shape = _SHAPES[form.name] = _Shape(
            any(s[0] in _MEMORY_LETTERS[2:] for s in specs), reg_field,
            any(s.startswith("M") for s in specs), any(s.startswith("R") for s in specs),
            # not AL/eAX: fixed registers start with A too
            tuple(s for s in specs if s[0] in "IJO" or s == "Ap"), bytes(form.enc.opcode))
    return shape


def encode(form, mode: str, draw: Draw) -> bytes:
    """One encoding of ``form`` (a ``reference.isa.form.Form``) for ``mode``."""
    operand_prefix = draw.chance(20)
    address_prefix = draw.chance(15)
    operand_size, address_size = _sizes(mode, operand_prefix, address_prefix)
    enc = form.enc
    shape = _shape(form)
    body = shape.opcode
    if enc.plus_r:
        body = body[:-1] + _BYTE[body[-1] | draw.integer(0, 7)]
    memory = shape.memory
    if enc.modrm:
        if shape.reg_field == "digit":
            reg = enc.digit
        elif shape.reg_field == "S":
            reg = draw.integer(0, 5) if draw.chance(90) else draw.integer(6, 7)
        elif shape.reg_field == "C":
            reg = draw.choice((0, 2, 3, 4))  # CR0, CR2, CR3, CR4: the others are #UD
        else:
            reg = draw.integer(0, 7)
        if shape.register_only:  # MOV CRn/DRn: r/m is a register
            modrm, rm_memory = _BYTE[0xC0 | (reg << 3) | draw.integer(0, 7)], False
        else:
            modrm, rm_memory = _modrm(draw, reg, shape.memory_only, address_size)
        body += modrm
        memory = memory or rm_memory
    for spec in shape.immediates:
        body += _immediate(draw, spec, operand_size, address_size)
    sizes = ([OPERAND_SIZE] if operand_prefix else []) + ([ADDRESS_SIZE] if address_prefix else [])
    return bytes(_prefixes(draw, form, memory, sizes)) + body
