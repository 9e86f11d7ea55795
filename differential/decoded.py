"""Operand facts from x86lab's own decoder, for the encodings Capstone cannot decode.

The generator takes operand sizes, shift counts, the BSF/BSR source and the destination
from Capstone (``operands.py``), so they stay independent of the code under test. Capstone
5 gives up on some prefixed encodings the CPU runs (seed-18 campaign: SHLD/SHRD behind
repeated or mixed prefixes); the table's conditional undefined-flag rules were then left
out, and SHLD's OF and AF for counts other than 1 showed as false divergences. There the
reference's decoder (``reference.isa.decoder.decode``, the one opcode table) supplies the
same facts; ``test_decoded.py`` checks them against Capstone where both decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

from ground.case import GPRS, register_names


@dataclass(frozen=True)
class Facts:
    """What the undefined-flag rules need: the first operand's size in bits, the initial
    value of each operand (None where it lies outside the case's pages), and the first
    operand as ``("reg", gpr_name, bit_mask)`` or ``("mem", linear, size_bytes)``."""

    size: int
    values: Tuple[Optional[int], ...]
    destination: Tuple[str, object, int]


def _destination(cpu, operand) -> Tuple[str, object, int]:
    if getattr(operand, "is_mem", False):
        linear = (cpu.seg_base[operand.seg] + operand.offset()) & 0xFFFFFFFF
        return "mem", linear, max(operand.size >> 3, 1)
    index = operand.index
    if operand.size == 8:  # Reg8: index 0-3, shift 8 for AH..BH
        return "reg", GPRS[index], 0xFF00 if getattr(operand, "shift", 0) else 0xFF
    return "reg", GPRS[index], 0xFFFFFFFF if operand.size == 32 else 0xFFFF


def _value(operand) -> Optional[int]:
    from reference.faults import Fault, Unmapped

    try:
        return operand.read()
    except (Fault, Unmapped):
        return None


def facts(mode: str, regs: Mapping[str, int], memory: Mapping[int, bytes]) -> Optional[Facts]:
    """Facts of the instruction at the case's CS:EIP, or None when the reference does not
    decode it to a form with a general-register or memory first operand."""
    from reference import Cpu, SparseMemory
    from reference.faults import Fault, Unmapped
    from reference.isa.decoder import decode
    from reference.operands import Reg8, Reg32

    pages = SparseMemory()
    for base, data in memory.items():
        pages.map(base, data)
    cpu = Cpu(pages, mode=mode)
    for name in register_names(mode):
        cpu.set_reg(name, regs[name])
    start = (cpu.seg_base[1] + cpu.eip) & 0xFFFFFFFF  # CS's base: 0 in prot32
    try:
        insn = decode(cpu, start, cpu.fetch_byte)
    except (Fault, Unmapped):
        return None
    if not insn.operands:
        return None
    first = insn.operands[0]
    if not (getattr(first, "is_mem", False) or isinstance(first, (Reg8, Reg32))):
        return None  # Reg16 is a Reg32
    return Facts(first.size, tuple(_value(op) for op in insn.operands),
                 _destination(cpu, first))
