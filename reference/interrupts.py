"""Exception and interrupt delivery policies beyond ``ReportAndStop``.

``Cpu.delivery`` decides what happens to a fault or trap once the step loop has rolled
the instruction back (fault) or kept it (trap). Tests use ``ReportAndStop``; a PC in real
mode uses ``RealModeDelivery``, which does what SDM Vol. 3A, 21.1.4 "Interrupt and
Exception Handling" (real-address mode) describes: push FLAGS, CS and IP, clear IF, TF
and AC, and continue at the handler whose far pointer is entry ``vector`` of the
interrupt vector table (IVT) at linear ``ivt_base`` (IDTR.base, 0 after reset).
Protected-mode delivery through the IDT is ``reference.system.exceptions.SystemDelivery``,
which uses this class in real mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from reference.faults import Fault, Unmapped
from reference.flags import AC, IF, TF
from reference.operands import CS

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu
    from reference.step import StepException


class RealModeDelivery:
    """Vector faults, traps and INT n through the real-mode IVT.

    A fault's saved IP is the faulting instruction (the step loop left EIP there), a
    trap's the next one. If the pushes or the IVT read fault or hit unmapped memory, the
    state is rolled back and the original exception is reported instead (a real CPU
    would escalate towards shutdown; a test wants to see why).
    """

    def __init__(self, ivt_base: int = 0) -> None:
        self.ivt_base = ivt_base

    def deliver(self, cpu: Cpu, fault: Fault) -> Optional[StepException]:
        from reference.step import StepException

        regs, flags, eip = cpu.regs[:], cpu.flags.value, cpu.eip
        selector, base = cpu.sregs[CS], cpu.seg_base[CS]
        cpu.journal.clear()
        try:
            entry = cpu.read_linear(self.ivt_base + 4 * fault.vector, 4)
            cpu.push(cpu.get_reg("eflags") & 0xFFFF, 16)
            cpu.push(cpu.sregs[CS], 16)
            cpu.push(cpu.eip & 0xFFFF, 16)
        except (Unmapped, Fault):  # a stack past its limit or a hole: report, not leak
            cpu.rollback()
            cpu.regs[:], cpu.flags.value, cpu.eip = regs, flags, eip
            cpu.sregs[CS], cpu.seg_base[CS] = selector, base
            kind = "trap" if fault.trap else "fault"
            return StepException(fault.vector, kind, fault.error_code)
        cpu.journal.clear()
        cpu.flags.value &= ~(IF | TF | AC)
        cpu.sregs[CS] = entry >> 16
        cpu.seg_base[CS] = (entry >> 16) << 4
        cpu.eip = entry & 0xFFFF
        return None
