"""Far JMP, CALL, RET and IRET in protected mode (SDM Vol. 2A/2B, their Operation
sections; Vol. 3A, 5.8 "Privilege Level Checking When Transferring Program Control").

A far transfer names a code segment directly or a call gate. Directly, the CPL does not
change: a non-conforming target needs DPL = CPL (and RPL <= CPL), a conforming one
DPL <= CPL. Through a gate, CALL may go to a more privileged non-conforming segment: the
new stack comes from the TSS and the gate's parameter count words/dwords are copied
from the old stack. RET and IRET may return to a less privileged level, popping the
outer SS:ESP. A TSS or task gate target, and IRET with NT=1, switch tasks
(``reference.system.task_switch``). IRETD at CPL 0 to an EFLAGS image with VM = 1
enters virtual-8086 mode (``reference.system.vm86``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference.faults import GP, NP, Fault
from reference.faults import SS as SS_FAULT
from reference.flags import (
    AC,
    DF,
    ID,
    IF,
    IMPLEMENTED,
    IOPL,
    NT,
    RESERVED_ONE,
    RF,
    STATUS,
    TF,
    VIF,
    VIP,
    VM,
)
from reference.operands import CS, SS
from reference.system.descriptors import (
    CALL_GATE16,
    CALL_GATE32,
    Descriptor,
    is_null,
    read_descriptor,
)
from reference.system.segmentation import invalidate_outer_segments, load_cache
from reference.system.task_switch import switch_task
from reference.system.tss import check_inner_stack, inner_stack
from reference.system.vm86 import iret_to_vm86

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

TASK_TYPES = (1, 3, 5, 9, 11)  # TSS (available/busy) and task gate descriptors


def _target(cpu: Cpu, selector: int) -> Descriptor:
    if is_null(selector):
        raise Fault(GP, 0)
    return read_descriptor(cpu, selector)


def _is_task(descriptor: Descriptor) -> bool:
    return not descriptor.s and descriptor.type in TASK_TYPES


def _check_code_present(selector: int, descriptor: Descriptor) -> None:
    if not descriptor.present:
        raise Fault(NP, selector & 0xFFFC)


def _enter_code(cpu: Cpu, selector: int, descriptor: Descriptor, offset: int,
                cpl: int) -> None:
    """CS := selector with RPL := ``cpl``, the new CPL; EIP := offset (within limit)."""
    if offset > descriptor.limit:
        raise Fault(GP, 0)
    cpu.save_segment(CS)
    cpu.cpl = cpl
    load_cache(cpu, CS, (selector & 0xFFFC) | cpl, descriptor)
    cpu.eip = offset


def _direct_code_checks(cpu: Cpu, selector: int, descriptor: Descriptor) -> None:
    """JMP/CALL straight to a code segment: no privilege change allowed."""
    if not descriptor.is_code:
        raise Fault(GP, selector & 0xFFFC)
    if descriptor.conforming:
        if descriptor.dpl > cpu.cpl:
            raise Fault(GP, selector & 0xFFFC)
    elif selector & 3 > cpu.cpl or descriptor.dpl != cpu.cpl:
        raise Fault(GP, selector & 0xFFFC)
    _check_code_present(selector, descriptor)


def _gate_checks(cpu: Cpu, selector: int, gate: Descriptor) -> Descriptor:
    """A call gate's own checks, then its target code segment's common checks."""
    if gate.s or gate.type not in (CALL_GATE16, CALL_GATE32):
        raise Fault(GP, selector & 0xFFFC)
    if gate.dpl < cpu.cpl or gate.dpl < selector & 3:
        raise Fault(GP, selector & 0xFFFC)
    if not gate.present:
        raise Fault(NP, selector & 0xFFFC)
    target = gate.selector
    if is_null(target):
        raise Fault(GP, 0)
    code = read_descriptor(cpu, target)
    if not code.is_code or code.dpl > cpu.cpl:
        raise Fault(GP, target & 0xFFFC)
    return code


def far_jump(cpu: Cpu, selector: int, offset: int) -> None:
    """JMP ptr16:16/32 or m16:16/32 in protected mode."""
    descriptor = _target(cpu, selector)
    if _is_task(descriptor):
        switch_task(cpu, selector, "jmp")
        return
    if descriptor.s:
        _direct_code_checks(cpu, selector, descriptor)
        _enter_code(cpu, selector, descriptor, offset, cpu.cpl)
        return
    code = _gate_checks(cpu, selector, descriptor)
    if not code.conforming and code.dpl != cpu.cpl:
        raise Fault(GP, descriptor.selector & 0xFFFC)
    _check_code_present(descriptor.selector, code)
    _enter_code(cpu, descriptor.selector, code, descriptor.offset, cpu.cpl)


def far_call(cpu: Cpu, selector: int, offset: int, size: int) -> None:
    """CALL ptr16:16/32 or m16:16/32 in protected mode: push the return CS:EIP (on the
    new stack after a privilege change) and enter the target."""
    descriptor = _target(cpu, selector)
    if _is_task(descriptor):
        switch_task(cpu, selector, "call")
        return
    if descriptor.s:
        _direct_code_checks(cpu, selector, descriptor)
        _push_return(cpu, size)
        _enter_code(cpu, selector, descriptor, offset, cpu.cpl)
        return
    code = _gate_checks(cpu, selector, descriptor)
    target = descriptor.selector
    _check_code_present(target, code)
    size = 16 if descriptor.type == CALL_GATE16 else 32
    if code.conforming or code.dpl == cpu.cpl:
        _push_return(cpu, size)
        _enter_code(cpu, target, code, descriptor.offset, cpu.cpl)
        return
    _call_inner(cpu, descriptor, code, size)


def _push_return(cpu: Cpu, size: int) -> None:
    cpu.push(cpu.sregs[CS], size)
    cpu.push(cpu.eip & ((1 << size) - 1), size)


def _call_inner(cpu: Cpu, gate: Descriptor, code: Descriptor, size: int) -> None:
    """CALL through a gate to a more privileged level: SS:ESP from the TSS, then push
    the old SS, ESP, the gate's parameters (copied from the old stack) and CS:EIP."""
    dpl = code.dpl
    new_ss, new_esp = inner_stack(cpu, dpl)
    stack = check_inner_stack(cpu, new_ss, dpl)
    nbytes = size >> 3
    old_ss, old_esp = cpu.sregs[SS], cpu.regs[4]
    params = [cpu.peek(size, i * nbytes) for i in range(gate.param_count)]
    old_cs = cpu.sregs[CS]
    return_eip = cpu.eip & ((1 << size) - 1)
    if gate.offset > code.limit:
        raise Fault(GP, 0)
    cpu.save_segment(CS)
    cpu.cpl = dpl  # the pushes are made at the new privilege level
    load_cache(cpu, SS, new_ss, stack)
    cpu.regs[4] = new_esp if cpu.stack_size == 32 else new_esp & 0xFFFF
    frame = [old_ss, old_esp & ((1 << size) - 1), *reversed(params), old_cs, return_eip]
    try:
        for value in frame:
            cpu.push(value, size)
    except Fault as fault:  # CALL, Operation: "IF new stack does not have room for
        if fault.vector != SS_FAULT:  # parameters plus 16 bytes THEN #SS(NewSS)"
            raise
        raise Fault(SS_FAULT, new_ss & 0xFFFC) from None
    _enter_code(cpu, gate.selector, code, gate.offset, dpl)


def _return_code_checks(cpu: Cpu, selector: int) -> Descriptor:
    """RET/IRET: the popped CS must name a present code segment at the RPL's level,
    never more privileged than the CPL."""
    if is_null(selector):
        raise Fault(GP, 0)
    descriptor = read_descriptor(cpu, selector)
    rpl = selector & 3
    error = selector & 0xFFFC
    if not descriptor.is_code or rpl < cpu.cpl:
        raise Fault(GP, error)
    if descriptor.conforming and descriptor.dpl > rpl:
        raise Fault(GP, error)
    if not descriptor.conforming and descriptor.dpl != rpl:
        raise Fault(GP, error)
    _check_code_present(selector, descriptor)
    return descriptor


def _outer_stack(cpu: Cpu, selector: int, rpl: int) -> Descriptor:
    """The popped SS of a return to an outer level."""
    if is_null(selector):
        raise Fault(GP, 0)
    descriptor = read_descriptor(cpu, selector)
    if selector & 3 != rpl or not descriptor.writable or descriptor.dpl != rpl:
        raise Fault(GP, selector & 0xFFFC)
    if not descriptor.present:
        raise Fault(SS_FAULT, selector & 0xFFFC)
    return descriptor


def _switch_to_outer(cpu: Cpu, code_selector: int, code: Descriptor, offset: int,
                     ss_selector: int, stack: Descriptor, esp: int) -> None:
    rpl = code_selector & 3
    _enter_code(cpu, code_selector, code, offset, rpl)
    load_cache(cpu, SS, ss_selector, stack)
    cpu.regs[4] = esp if cpu.stack_size == 32 else (cpu.regs[4] & 0xFFFF0000) | (esp & 0xFFFF)
    invalidate_outer_segments(cpu)


def far_return(cpu: Cpu, size: int, release: int) -> None:
    """RET far [imm16] in protected mode."""
    nbytes = size >> 3
    offset = cpu.peek(size)
    selector = cpu.peek(size, nbytes) & 0xFFFF
    code = _return_code_checks(cpu, selector)
    if selector & 3 == cpu.cpl:
        _enter_code(cpu, selector, code, offset, cpu.cpl)
        cpu.adjust_sp(2 * nbytes + release)
        return
    esp = cpu.peek(size, 2 * nbytes + release)
    ss_selector = cpu.peek(size, 3 * nbytes + release) & 0xFFFF
    stack = _outer_stack(cpu, ss_selector, selector & 3)
    _switch_to_outer(cpu, selector, code, offset, ss_selector, stack, esp + release)


def iret_protected(cpu: Cpu, size: int) -> None:
    """IRET/IRETD in protected mode: return to the same or an outer level."""
    if cpu.flags.value & NT:  # return to the task in the back link (7.3)
        switch_task(cpu, cpu.read_system(cpu.tr.base, 2), "iret")
        return
    nbytes = size >> 3
    offset = cpu.peek(size)
    selector = cpu.peek(size, nbytes) & 0xFFFF
    image = cpu.peek(size, 2 * nbytes)
    if size == 32 and image & VM and cpu.cpl == 0:
        iret_to_vm86(cpu)
        return
    code = _return_code_checks(cpu, selector)
    old_cpl = cpu.cpl
    if selector & 3 == cpu.cpl:
        _enter_code(cpu, selector, code, offset, cpu.cpl)
        cpu.adjust_sp(3 * nbytes)
    else:
        esp = cpu.peek(size, 3 * nbytes)
        ss_selector = cpu.peek(size, 4 * nbytes) & 0xFFFF
        stack = _outer_stack(cpu, ss_selector, selector & 3)
        _switch_to_outer(cpu, selector, code, offset, ss_selector, stack, esp)
    load_flags_on_return(cpu, image, size, old_cpl)


def load_flags_on_return(cpu: Cpu, image: int, size: int, cpl: int) -> None:
    """EFLAGS := the popped image under IRET's privilege rules (SDM Vol. 2A, IRET,
    RETURN-TO-SAME/OUTER-PRIVILEGE-LEVEL): the status flags, TF, DF, NT always (RF, AC,
    ID too with a 32-bit operand); IF only if CPL <= IOPL; IOPL, VIF, VIP only at CPL 0;
    VM never here. ``cpl`` is the level IRET ran at."""
    writable = STATUS | TF | DF | NT
    if size == 32:
        writable |= RF | AC | ID
    iopl = (cpu.flags.value & IOPL) >> 12
    if cpl <= iopl:
        writable |= IF
    if cpl == 0:
        writable |= IOPL | (VIF | VIP if size == 32 else 0)
    value = (cpu.flags.value & ~writable) | (image & writable)
    cpu.flags.value = (value & IMPLEMENTED) | RESERVED_ONE
