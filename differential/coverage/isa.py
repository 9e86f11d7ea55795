"""What the IA-32 opcode maps hold, independently of what the reference implements.

Facts from the Intel SDM Vol. 2, Appendix A (opcode maps, Tables A-2 and A-3, and the
group table A-6), restricted to 32-bit (non-64-bit) operation. They let the coverage report
tell "not implemented" (a real instruction the reference lacks) from "not in the ISA" (an
encoding that raises #UD on every IA-32 processor) and from prefixes and escapes.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Tuple

Opcode = Tuple[int, ...]  # (op,) or (0x0F, op)

PREFIXES: FrozenSet[int] = frozenset(
    (0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3))
ESCAPES: Dict[Opcode, str] = {(0x0F,): "two-byte escape", (0x0F, 0x38): "three-byte escape",
                              (0x0F, 0x3A): "three-byte escape"}

# Two-byte opcodes with no IA-32 instruction. SYSCALL/SYSRET (05, 07) exist only in
# 64-bit mode on Intel; 0E/0F are AMD's 3DNow! escapes; A6/A7 were dropped after the
# early 386 steppings; 24-27 (MOV to/from test registers) after the 486.
UNDEFINED_TWO_BYTE: FrozenSet[int] = frozenset(
    (0x04, 0x05, 0x07, 0x0A, 0x0C, 0x0E, 0x0F, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39,
     0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x7A, 0x7B, 0xA6, 0xA7))

# Opcodes whose ModRM reg field selects the instruction, and the reg values that name
# one (SDM Table A-6). A cell lists these "/digit" rows in the coverage report.
GROUP_DIGITS: Dict[Opcode, FrozenSet[int]] = {
    **{(op,): frozenset(range(8)) for op in (0x80, 0x81, 0x82, 0x83, 0xC0, 0xC1, 0xD0,
                                             0xD1, 0xD2, 0xD3, 0xF6, 0xF7)},
    **{(op,): frozenset(range(8)) for op in range(0xD8, 0xE0)},   # x87 escapes
    (0x8F,): frozenset((0,)),
    (0xC6,): frozenset((0,)),
    (0xC7,): frozenset((0,)),
    (0xFE,): frozenset((0, 1)),
    (0xFF,): frozenset(range(7)),
    (0x0F, 0x00): frozenset(range(6)),
    (0x0F, 0x01): frozenset((0, 1, 2, 3, 4, 6, 7)),
    (0x0F, 0x0D): frozenset((0, 1, 2)),
    (0x0F, 0x18): frozenset(range(8)),
    (0x0F, 0x1F): frozenset(range(8)),
    (0x0F, 0x71): frozenset((2, 4, 6)),
    (0x0F, 0x72): frozenset((2, 4, 6)),
    (0x0F, 0x73): frozenset((2, 3, 6, 7)),
    (0x0F, 0xAE): frozenset(range(8)),
    (0x0F, 0xB9): frozenset(range(8)),
    (0x0F, 0xBA): frozenset((4, 5, 6, 7)),
    (0x0F, 0xC7): frozenset((1, 6, 7)),
}


def in_isa(opcode: Opcode) -> bool:
    """True when some IA-32 processor runs an instruction with this opcode."""
    if len(opcode) == 1:
        return opcode[0] not in PREFIXES and opcode not in ESCAPES
    return opcode[1] not in UNDEFINED_TWO_BYTE and opcode not in ESCAPES


def digit_in_isa(opcode: Opcode, digit: int) -> bool:
    digits = GROUP_DIGITS.get(opcode)
    return in_isa(opcode) if digits is None else digit in digits
