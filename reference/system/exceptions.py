"""Interrupt and exception delivery (SDM Vol. 3A, ch. 6 "Interrupt and Exception
Handling"): the delivery policy a PC installs as ``cpu.delivery``.

In real-address mode the vector goes through the IVT at IDTR.base (6.1 and 21.1.4,
``reference.interrupts.RealModeDelivery``). In protected mode it goes through the IDT
(6.10-6.12): the gate must lie within IDTR.limit and be an interrupt or trap gate
(#GP(vector*8+2+EXT) otherwise), a software interrupt needs gate DPL >= CPL
(#GP(vector*8+2)), the gate must be present (#NP(vector*8+2+EXT)), and its target a
present code segment not less privileged than the CPL. A non-conforming target of a
more privileged level switches to the stack the TSS gives for that level and pushes
the old SS:ESP first; then EFLAGS, CS, EIP and the error code, if the exception has one,
are pushed at the gate's size (RF = 1 in the image of a fault). TF, NT, RF and VM are
cleared, and IF too through an interrupt gate. From virtual-8086 mode (EFLAGS.VM = 1)
the target must be a non-conforming DPL 0 segment (#GP(selector) otherwise); GS, FS,
DS and ES are pushed before SS:ESP and then made null (``reference.system.vm86``).

A fault while delivering turns into what Table 6-5 says: handled serially, a double
fault (#DF, error code 0), or, during #DF delivery, a triple fault: the processor shuts
down, reported as kind "shutdown" (``cpu.shutdown`` is set). EXT (error code bit 0) is
1 for every event but INT n/INT3/INTO. A task gate switches tasks
(``reference.system.task_switch``) and pushes the error code on the new task's stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from reference.faults import DF, GP, NP, PF, Fault, Unmapped
from reference.faults import SS as SS_FAULT
from reference.flags import IF, NT, RF, TF, VM
from reference.interrupts import RealModeDelivery
from reference.operands import CS, DS, ES, FS, GS, SS
from reference.system.descriptors import (
    INTERRUPT_GATE16,
    INTERRUPT_GATE32,
    TASK_GATE,
    TRAP_GATE16,
    TRAP_GATE32,
    Descriptor,
    is_null,
    read_descriptor,
)
from reference.system.segmentation import load_cache
from reference.system.task_switch import check_new_eip, switch_task
from reference.system.tss import check_inner_stack, inner_stack
from reference.system.vm86 import leave_vm86

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu
    from reference.step import StepException

# Exception classes for double faults (Table 6-4): contributory, page fault, benign.
CONTRIBUTORY = frozenset((0, 10, 11, 12, 13))
# The exceptions that push an error code (Table 6-1).
WITH_ERROR_CODE = frozenset((8, 10, 11, 12, 13, 14, 17))
GATES = (INTERRUPT_GATE16, TRAP_GATE16, INTERRUPT_GATE32, TRAP_GATE32)


def escalate(first: int, second: int) -> str:
    """Table 6-5: what a ``second`` exception raised while delivering ``first`` becomes:
    "serial" (deliver the second), "double" (#DF) or "triple" (shutdown)."""
    serious = second in CONTRIBUTORY or second == PF
    if first == DF and serious:
        return "triple"
    if first in CONTRIBUTORY and second in CONTRIBUTORY:
        return "double"
    if first == PF and serious:
        return "double"
    return "serial"


class SystemDelivery:
    """Deliver faults, traps and interrupts as the processor does, in either mode."""

    def __init__(self) -> None:
        self.real_mode = RealModeDelivery()

    def deliver(self, cpu: Cpu, fault: Fault) -> Optional[StepException]:
        from reference.step import StepException

        if cpu.mode == "real16":
            self.real_mode.ivt_base = cpu.idtr[0]
            return self.real_mode.deliver(cpu, fault)
        event = fault
        while True:
            saved = (cpu.regs[:], cpu.flags.value, cpu.eip)
            cpu.journal.clear()
            cpu.seg_journal.clear()
            try:
                deliver_protected(cpu, event)
            except Fault as nested:
                if not nested.partial:  # partial: raised in a new task, keep the switch
                    _undo(cpu, saved)
                outcome = escalate(event.vector, nested.vector)
                if outcome == "triple":
                    cpu.shutdown = True
                    return StepException(fault.vector, "shutdown", None)
                if event.software and not nested.partial:  # a fault of INT n itself
                    cpu.eip = (cpu.eip - cpu.insn.length) & 0xFFFFFFFF
                # The nested fault's error code already carries EXT from ``event``.
                event = Fault(DF, 0) if outcome == "double" else nested
                continue
            except Unmapped:  # test memory without the IDT, GDT or stack: report
                _undo(cpu, saved)
                kind = "trap" if fault.trap else "fault"
                return StepException(fault.vector, kind, fault.error_code)
            except BaseException:  # Unimplemented (a gap) or a bug: state clean
                _undo(cpu, saved)
                raise
            cpu.journal.clear()
            cpu.seg_journal.clear()
            return None


def _undo(cpu: Cpu, saved: tuple) -> None:
    cpu.rollback()
    cpu.regs[:], cpu.flags.value, cpu.eip = saved[0], saved[1], saved[2]


def _gate(cpu: Cpu, vector: int, ext: int) -> Descriptor:
    base, limit = cpu.idtr
    error = vector * 8 + 2 + ext
    if vector * 8 + 7 > limit:
        raise Fault(GP, error)
    address = (base + vector * 8) & 0xFFFFFFFF
    return Descriptor(cpu.read_system(address, 8), address)


def deliver_protected(cpu: Cpu, event: Fault) -> None:
    """One delivery attempt through the IDT; raises the fault the attempt causes."""
    vector = event.vector
    ext = 0 if event.software else 1
    gate = _gate(cpu, vector, ext)
    error = vector * 8 + 2 + ext
    if gate.s or gate.type not in GATES + (TASK_GATE,):
        raise Fault(GP, error)
    if event.software and gate.dpl < cpu.cpl:
        raise Fault(GP, vector * 8 + 2)
    if not gate.present:
        raise Fault(NP, error)
    fault_rf = 0 if event.trap or event.software or event.external else RF
    if gate.type == TASK_GATE:  # the handler is a task: switch, then the error code
        # The old task's saved EFLAGS is the image a task switch back restores, so a
        # fault saves RF = 1 there as it would push it (SDM Vol. 3B 17.3.1.1: "Task
        # Switches and IRETD/IRETQ instructions transfer the RF image from the TSS/stack
        # to the EFLAGS register"; "For any fault-class exception ... RF is 1").
        switch_task(cpu, gate.selector, "int", ext, fault_rf)
        if vector in WITH_ERROR_CODE and not (event.software or event.external):
            # A word onto a 16-bit task's stack, a dword onto a 32-bit one's (the new
            # TSS's type, bit 3: 32-bit; as Bochs and QEMU push it).
            size = 32 if (cpu.tr.attr >> 8) & 8 else 16
            cpu.push(event.error_code or 0, size)
        check_new_eip(cpu, ext)
        return
    selector = gate.selector
    if is_null(selector):
        raise Fault(GP, ext)
    code = read_descriptor(cpu, selector, GP, ext)
    if not code.is_code or code.dpl > cpu.cpl:
        raise Fault(GP, (selector & 0xFFFC) | ext)
    if not code.present:
        raise Fault(NP, (selector & 0xFFFC) | ext)
    from_vm86 = bool(cpu.flags.value & VM)
    if from_vm86 and (code.conforming or code.dpl != 0):
        # INT n, Operation: from virtual-8086 mode only to a non-conforming DPL 0
        # segment: "#GP(error_code(new code-segment selector,0,EXT))".
        raise Fault(GP, (selector & 0xFFFC) | ext)
    if gate.offset > code.limit:
        raise Fault(GP, ext)
    size = 32 if gate.type in (INTERRUPT_GATE32, TRAP_GATE32) else 16
    eflags = cpu.get_reg("eflags") | fault_rf  # (no instruction breakpoints here)
    old_cs, return_eip = cpu.sregs[CS], cpu.eip
    new_cpl = cpu.cpl if code.conforming else code.dpl
    mask = (1 << size) - 1
    frame = [eflags & mask, old_cs, return_eip & mask]
    if vector in WITH_ERROR_CODE and not (event.software or event.external):
        frame.append((event.error_code or 0) & mask)
    # INT n, Operation: a frame that does not fit is #SS(EXT) on the current stack,
    # #SS(error_code(NewSS, 0, EXT)) on the inner one.
    stack_error = ext
    if new_cpl < cpu.cpl:
        new_ss, new_esp = inner_stack(cpu, new_cpl, ext)
        stack = check_inner_stack(cpu, new_ss, new_cpl, ext)
        old_ss, old_esp = cpu.sregs[SS], cpu.regs[4]
        cpu.save_segment(CS)
        cpu.cpl = new_cpl  # the pushes are made at the handler's privilege level
        load_cache(cpu, SS, new_ss, stack)
        cpu.regs[4] = new_esp if cpu.stack_size == 32 else new_esp & 0xFFFF
        frame[:0] = [old_ss, old_esp & mask]
        stack_error = (new_ss & 0xFFFC) | ext
    if from_vm86:  # INTERRUPT-FROM-VIRTUAL-8086-MODE: the data segments go first
        frame[:0] = [cpu.sregs[index] for index in (GS, FS, DS, ES)]
    try:
        for value in frame:
            cpu.push(value, size)
    except Fault as fault:
        if fault.vector != SS_FAULT:
            raise  # a #PF on the stack's page keeps its own error code
        raise Fault(SS_FAULT, stack_error) from None
    if from_vm86:
        leave_vm86(cpu)
    cpu.save_segment(CS)
    cpu.cpl = new_cpl
    load_cache(cpu, CS, (selector & 0xFFFC) | new_cpl, code)
    cpu.eip = gate.offset
    cleared = TF | NT | RF | VM
    if gate.type in (INTERRUPT_GATE16, INTERRUPT_GATE32):
        cleared |= IF
    cpu.flags.value &= ~cleared
