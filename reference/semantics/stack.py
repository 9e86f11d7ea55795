"""Stack data movement: PUSH POP PUSHA POPA PUSHF POPF (SDM Vol. 2B).

The stack width (SP or ESP) is the stack segment's (``cpu.push``/``cpu.pop`` know it);
the size of each item is the operand size of the instruction.
"""

from __future__ import annotations

from reference.cpu import Cpu
from reference.flags import AC, DF, ID, IF, IOPL, NT, RF, STATUS, TF, VM
from reference.operands import Operand
from reference.semantics import implements
from reference.semantics.flagops import current_privilege, require_vm86_iopl3

# POPF at CPL 0 (real mode or protected mode): VM, VIF, VIP and reserved bits keep their
# values, RF is cleared (SDM Vol. 2B, POPF: Operation).
POPF_WRITABLE = STATUS | TF | IF | DF | IOPL | NT | AC | ID


@implements("PUSH")
def push(cpu: Cpu, src: Operand) -> None:
    """Push SRC at the operand size. The value is read first, so PUSH ESP pushes ESP's
    old value and an ESP-based memory source is addressed before the decrement. A
    segment register or sign-extended imm8 is zero-/sign-extended to the operand size."""
    value = src.read()
    cpu.push(value & ((1 << cpu.insn.opsize) - 1), cpu.insn.opsize)


@implements("POP")
def pop(cpu: Cpu, dst: Operand) -> None:
    """DEST := Pop(). ESP is incremented before the destination is written, so an
    ESP-based memory destination is addressed after the increment, and POP ESP leaves
    the popped value in ESP. A segment register takes the low 16 bits."""
    value = cpu.pop(cpu.insn.opsize)
    dst.write(value & dst.mask)


def _gpr_mask(size: int) -> int:
    return (1 << size) - 1


@implements("PUSHA")
def pusha(cpu: Cpu) -> None:
    """Push (E)AX, (E)CX, (E)DX, (E)BX, original (E)SP, (E)BP, (E)SI, (E)DI."""
    size = cpu.insn.opsize
    mask = _gpr_mask(size)
    values = list(cpu.regs)
    for value in values:
        cpu.push(value & mask, size)


@implements("POPA")
def popa(cpu: Cpu) -> None:
    """Pop (E)DI, (E)SI, (E)BP, skip (E)SP, (E)BX, (E)DX, (E)CX, (E)AX. The slots are
    read in that order, as the SDM's sequence of Pop()s does, so the first slot that
    faults is the one the CPU meets first: from SP = FFFF on a 16-bit stack, DI's word
    crosses the limit (#SS(0)) before AX's slot, wrapped to SS:000D, is touched."""
    size = cpu.insn.opsize
    names = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
    values = [0] * 8
    for i in range(7, -1, -1):  # EDI's slot first, at eSP
        values[i] = cpu.peek(size, (7 - i) * (size >> 3))
    cpu.adjust_sp(8 * (size >> 3))
    for index, value in enumerate(values):
        if index != 4:
            cpu.set_reg(names[index] if size == 32 else names[index][1:], value)


@implements("PUSHF")
def pushf(cpu: Cpu) -> None:
    """Push FLAGS (16-bit) or EFLAGS with VM and RF cleared in the image (32-bit);
    #GP(0) in virtual-8086 mode at IOPL < 3."""
    require_vm86_iopl3(cpu)
    size = cpu.insn.opsize
    image = (cpu.get_reg("eflags") & ~(VM | RF)) & _gpr_mask(size)
    cpu.push(image, size)


@implements("POPF")
def popf(cpu: Cpu) -> None:
    """Pop into FLAGS/EFLAGS: every flag in POPF_WRITABLE (limited to the low word for
    a 16-bit pop) is loaded, except that in protected mode IOPL loads only at CPL 0 and
    IF only when CPL <= IOPL (no fault: they keep their values); VM, VIF, VIP keep their
    values; RF is cleared. Virtual-8086 mode: #GP(0) at IOPL < 3; at IOPL 3 the CPL 3
    rule above leaves IOPL alone and loads IF."""
    require_vm86_iopl3(cpu)
    size = cpu.insn.opsize
    value = cpu.pop(size)
    writable = POPF_WRITABLE & _gpr_mask(size)
    cpl = current_privilege(cpu)
    if cpl > 0:
        writable &= ~IOPL
        if cpl > (cpu.flags.value & IOPL) >> 12:
            writable &= ~IF
    flags = cpu.flags
    flags.value = ((flags.value & ~writable) | (value & writable)) & ~RF
