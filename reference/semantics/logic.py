"""Bitwise logic family: AND OR XOR NOT TEST (SDM Vol. 2A/2B).

AND/OR/XOR/TEST clear OF and CF and set SF ZF PF from the result; AF is undefined (the
table says so, citing the SDM) and is cleared here, as Unicorn and the hardware do.
NOT changes no flags.
"""

from __future__ import annotations

from reference.cpu import Cpu
from reference.operands import Operand
from reference.semantics import implements


@implements("AND")
def and_(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := DEST AND SRC."""
    result = dst.read() & src.read()
    dst.write(result)
    cpu.flags.after_logic(result, dst.size)


@implements("OR")
def or_(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := DEST OR SRC."""
    result = dst.read() | src.read()
    dst.write(result)
    cpu.flags.after_logic(result, dst.size)


@implements("XOR")
def xor(cpu: Cpu, dst: Operand, src: Operand) -> None:
    """DEST := DEST XOR SRC."""
    result = dst.read() ^ src.read()
    dst.write(result)
    cpu.flags.after_logic(result, dst.size)


@implements("TEST")
def test(cpu: Cpu, first: Operand, second: Operand) -> None:
    """TEMP := SRC1 AND SRC2; flags from TEMP; nothing is written."""
    cpu.flags.after_logic(first.read() & second.read(), first.size)


@implements("NOT")
def not_(cpu: Cpu, dst: Operand) -> None:
    """DEST := NOT DEST; flags are not affected."""
    dst.write(~dst.read() & dst.mask)
