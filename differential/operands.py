"""Where an instruction's operands live, as Capstone (not the reference) decodes them.

The generator uses this to map pages under every memory operand and to evaluate the
SDM's conditional undefined-flag rules (shift count, BSF/BSR source); the random-bytes
source uses it to label bytes. Using Capstone keeps the harness independent of the decoder
under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import capstone
from capstone import x86 as cx

from ground.case import PAGE_SIZE

_DISASSEMBLERS: Dict[Tuple[str, bool], capstone.Cs] = {}
_STACK_BASES = ("bp", "ebp", "sp", "esp")


def disassembler(mode: str, detail: bool = True) -> capstone.Cs:
    """A Capstone instance for ``mode``, with operand details unless ``detail`` is false
    (text alone), one of each kind per mode."""
    md = _DISASSEMBLERS.get((mode, detail))
    if md is None:
        md = capstone.Cs(capstone.CS_ARCH_X86,
                         capstone.CS_MODE_16 if mode == "real16" else capstone.CS_MODE_32)
        md.detail = detail
        _DISASSEMBLERS[mode, detail] = md
    return md


def decode(mode: str, code: bytes, address: int = 0) -> Optional[capstone.CsInsn]:
    """The first instruction in ``code``, or None when Capstone cannot decode it."""
    for insn in disassembler(mode).disasm(code, address, 1):
        return insn
    return None


def disassembly(mode: str, code: bytes) -> str:
    """``mnemonic op_str`` for a reproducer line, or ``(bad)``. The text alone, without
    the operand details ``decode`` copies out of Capstone: 71.5k -> 35.0k instructions a
    line (callgrind), paid by every campaign case that does not agree (issue 18)."""
    for _address, _size, mnemonic, op_str in disassembler(mode, detail=False).disasm_lite(
            code, 0, 1):
        return f"{mnemonic} {op_str}".strip()
    return "(bad)"


def register_value(regs: Mapping[str, int], name: str) -> int:
    """The value of a Capstone register name (``al``, ``ah``, ``cx``, ``ebx``, ``ds``)."""
    if name in regs:
        return regs[name]
    if len(name) == 2 and name[1] in "lh" and name[0] in "abcd":
        full = regs[f"e{name[0]}x"]
        return (full >> 8) & 0xFF if name[1] == "h" else full & 0xFF
    return regs["e" + name] & 0xFFFF


@dataclass(frozen=True)
class MemoryOperand:
    """A memory operand resolved to a linear address for one initial state."""

    linear: int
    size: int


def _segment_base(mode: str, regs: Mapping[str, int], segment: str) -> int:
    return (regs.get(segment, 0) << 4) if mode == "real16" else 0


def memory_operands(mode: str, insn: capstone.CsInsn,
                    regs: Mapping[str, int]) -> List[MemoryOperand]:
    """Linear address and size of every explicit memory operand of ``insn``."""
    found = []
    address_mask = 0xFFFF if insn.addr_size == 2 else 0xFFFFFFFF
    for op in insn.operands:
        if op.type != cx.X86_OP_MEM:
            continue
        mem = op.mem
        offset = mem.disp
        base = insn.reg_name(mem.base) if mem.base else None
        if base:
            offset += register_value(regs, base)
        if mem.index:
            offset += register_value(regs, insn.reg_name(mem.index)) * mem.scale
        segment = insn.reg_name(mem.segment) if mem.segment else (
            "ss" if base in _STACK_BASES else "ds")
        linear = _segment_base(mode, regs, segment) + (offset & address_mask)
        found.append(MemoryOperand(linear & 0xFFFFFFFF, max(op.size, 1)))
    return found


def operand_value(mode: str, insn: capstone.CsInsn, index: int, regs: Mapping[str, int],
                  memory: Mapping[int, bytes]) -> Optional[int]:
    """The initial value of operand ``index`` (register, immediate or memory), or None
    when it lies outside the case's pages."""
    ops = insn.operands
    if index >= len(ops):
        return None
    op = ops[index]
    if op.type == cx.X86_OP_REG:
        return register_value(regs, insn.reg_name(op.reg))
    if op.type == cx.X86_OP_IMM:
        return op.imm & ((1 << (8 * op.size)) - 1 if op.size else 0xFFFFFFFF)
    target = memory_operands(mode, insn, regs)[sum(
        1 for o in ops[:index] if o.type == cx.X86_OP_MEM)]
    return read_linear(memory, target.linear, target.size)


def read_linear(memory: Mapping[int, bytes], linear: int, size: int) -> Optional[int]:
    """Little-endian value of ``size`` bytes at ``linear``, or None if any is unmapped."""
    value = 0
    for i in range(size):
        address = (linear + i) & 0xFFFFFFFF
        page = memory.get(address & ~(PAGE_SIZE - 1))
        if page is None:
            return None
        value |= page[address & (PAGE_SIZE - 1)] << (8 * i)
    return value


def destination(mode: str, insn: capstone.CsInsn,
                regs: Mapping[str, int]) -> Tuple[str, int, int]:
    """Operand 0 as ``("reg", gpr_name, bit_mask)`` or ``("mem", linear, size)``: the part
    of the state an "undefined destination" rule covers, and nothing more."""
    op = insn.operands[0]
    if op.type == cx.X86_OP_MEM:
        target = memory_operands(mode, insn, regs)[0]
        return "mem", target.linear, target.size
    name = insn.reg_name(op.reg)
    if name in regs:
        return "reg", name, 0xFFFFFFFF
    if len(name) == 2 and name[1] in "lh":
        return "reg", f"e{name[0]}x", 0xFF00 if name[1] == "h" else 0xFF
    return "reg", "e" + name, 0xFFFF
