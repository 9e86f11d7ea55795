"""Bit test and bit scan family: BT BTS BTR BTC BSF BSR (SDM Vol. 2A).

BT* select one bit of a "bit string". An immediate offset, or any offset into a register,
is taken modulo the operand size. A register offset into *memory* is a signed number of
bits that may reach far above or below the operand's address: the CPU reads the
operand-sized word at ``EA + SIZE/8 * floor(offset / SIZE)`` and uses bit
``offset MOD SIZE`` of it (SDM BT: "Bit(BitBase, BitOffset)" and its note on memory
access widths). The address wraps at the address size, as every effective address does.
"""

from __future__ import annotations

from typing import Tuple

from reference.cpu import Cpu
from reference.operands import Operand
from reference.semantics import implements


def _select_bit(base: Operand, offset: Operand) -> Tuple[Operand, int]:
    """(the operand that holds the chosen bit, a mask with only that bit set)."""
    size = base.size
    if base.is_mem and offset.is_reg:
        bit_offset = offset.sign(offset.read())
        word = base.at((bit_offset // size) * (size // 8), size)
        return word, 1 << (bit_offset % size)
    return base, 1 << (offset.read() % size)


def _test_bit(cpu: Cpu, base: Operand, offset: Operand) -> Tuple[Operand, int, int]:
    """CF := Bit(BitBase, BitOffset); returns (operand, its value, bit mask) for BTS/BTR/BTC.
    ZF is unaffected; OF SF AF PF are undefined and left alone."""
    word, mask = _select_bit(base, offset)
    value = word.read()
    cpu.flags.cf = 1 if value & mask else 0
    return word, value, mask


@implements("BT")
def bt(cpu: Cpu, base: Operand, offset: Operand) -> None:
    """CF := Bit(BitBase, BitOffset)."""
    _test_bit(cpu, base, offset)


@implements("BTS")
def bts(cpu: Cpu, base: Operand, offset: Operand) -> None:
    """CF := Bit(BitBase, BitOffset); Bit(BitBase, BitOffset) := 1."""
    word, value, mask = _test_bit(cpu, base, offset)
    word.write(value | mask)


@implements("BTR")
def btr(cpu: Cpu, base: Operand, offset: Operand) -> None:
    """CF := Bit(BitBase, BitOffset); Bit(BitBase, BitOffset) := 0."""
    word, value, mask = _test_bit(cpu, base, offset)
    word.write(value & ~mask)


@implements("BTC")
def btc(cpu: Cpu, base: Operand, offset: Operand) -> None:
    """CF := Bit(BitBase, BitOffset); Bit(BitBase, BitOffset) := NOT Bit(BitBase, BitOffset)."""
    word, value, mask = _test_bit(cpu, base, offset)
    word.write(value ^ mask)


@implements("BSF")
def bsf(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """IF SRC = 0 THEN ZF := 1 ELSE ZF := 0; DEST := index of the lowest set bit of SRC.

    With SRC = 0 the SDM leaves DEST undefined; Intel and AMD CPUs (and Unicorn) leave it
    unchanged, and so do we. CF OF SF AF PF are undefined and left alone.
    """
    value = src.read()
    if value == 0:
        cpu.flags.zf = 1
        return
    cpu.flags.zf = 0
    dst.write((value & -value).bit_length() - 1)


@implements("BSR")
def bsr(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """IF SRC = 0 THEN ZF := 1 ELSE ZF := 0; DEST := index of the highest set bit of SRC.

    DEST is left unchanged for SRC = 0, as for BSF.
    """
    value = src.read()
    if value == 0:
        cpu.flags.zf = 1
        return
    cpu.flags.zf = 0
    dst.write(value.bit_length() - 1)
