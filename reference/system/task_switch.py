"""Hardware task switching (SDM Vol. 3A, 7.3 "Task Switching"), 32-bit TSSs.

A task switch happens on JMP or CALL to a TSS descriptor or a task gate, on an
interrupt or exception through a task gate in the IDT, and on IRET with EFLAGS.NT set.
The processor checks the new TSS descriptor, saves the current state into the current
TSS (EIP, EFLAGS, the general registers, the segment selectors), updates busy bits and
the NT flag/back link as the source demands (Table 7-2), loads TR, sets CR0.TS, then
loads the new task's CR3 (under paging), LDTR, EFLAGS, registers, EIP and segment
registers. Faults while loading the new segments are #TS/#NP/#SS/#GP in the new task's
context (the switch has happened). 16-bit TSSs are not modelled (``Unimplemented``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

from reference.cpu import SystemSegment
from reference.faults import GP, NP, SS, TS, Fault, Unimplemented
from reference.flags import IMPLEMENTED, NT, RESERVED_ONE
from reference.operands import CS
from reference.system.control_registers import TS as CR0_TS
from reference.system.descriptors import (
    LDT,
    TASK_GATE,
    TSS32_AVAILABLE,
    TSS32_BUSY,
    Descriptor,
    is_null,
    read_descriptor,
)

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

# 32-bit TSS layout (Figure 7-2): offsets of the dynamic fields.
BACK_LINK, CR3_AT, EIP_AT, EFLAGS_AT, GPRS_AT, SEGS_AT, LDT_AT = 0, 28, 32, 36, 40, 72, 96
MINIMUM_LIMIT = 0x67
SEGMENT_ORDER = (0, 1, 2, 3, 4, 5)  # ES CS SS DS FS GS, 4 bytes apart from offset 72


def tss_of(cpu: Cpu, selector: int, source: str, ext: int = 0) -> Tuple[int, Descriptor]:
    """(TSS selector, descriptor) that a JMP/CALL/INT/IRET switches to; a task gate is
    followed to the TSS its selector names. Raises what Table 7-1 and the JMP/CALL
    Operation list for a bad one (JMP/CALL: the gate's or TSS's DPL must be at least
    the CPL and the RPL)."""
    fault = TS if source == "iret" else GP
    descriptor = read_descriptor(cpu, selector, fault, ext)
    far = source in ("jmp", "call")
    if far and (descriptor.dpl < cpu.cpl or descriptor.dpl < selector & 3):
        raise Fault(GP, selector & 0xFFFC)
    if not descriptor.s and descriptor.type == TASK_GATE:
        if not descriptor.present:
            raise Fault(NP, (selector & 0xFFFC) | ext)
        selector = descriptor.selector
        descriptor = read_descriptor(cpu, selector, GP, ext)
    error = (selector & 0xFFFC) | ext
    if selector & 4 or descriptor.s:
        raise Fault(fault, error)
    if descriptor.type in (1, 3):
        raise Unimplemented("a task switch to a 16-bit TSS")
    wanted = TSS32_BUSY if source == "iret" else TSS32_AVAILABLE
    if descriptor.type != wanted:
        raise Fault(fault, error)
    if not descriptor.present:
        raise Fault(NP, error)
    if descriptor.limit < MINIMUM_LIMIT:
        raise Fault(TS, error)
    return selector, descriptor


def _set_busy(cpu: Cpu, descriptor_address: int, busy: bool) -> None:
    access = cpu.read_system(descriptor_address + 5, 1)
    cpu.write_system(descriptor_address + 5, 1, (access | 2) if busy else (access & ~2))


def switch_task(cpu: Cpu, selector: int, source: str, ext: int = 0,
                saved_flags: int = 0) -> None:
    """Switch to the task ``selector`` names (a TSS or a task gate). ``source`` is
    "jmp", "call", "int" or "iret"; EIP must already be the return address.
    ``saved_flags`` are ORed into the EFLAGS image saved for the old task (RF for a
    fault whose handler is a task, as a pushed image would have it)."""
    new_selector, new = tss_of(cpu, selector, source, ext)
    old = cpu.tr
    if old.limit < MINIMUM_LIMIT:
        raise Fault(TS, (old.selector & 0xFFFC) | ext)
    eflags = cpu.get_reg("eflags") | saved_flags
    if source == "iret":
        eflags &= ~NT
    # Save the current task (7.3, step 8).
    cpu.write_system(old.base + EIP_AT, 4, cpu.eip)
    cpu.write_system(old.base + EFLAGS_AT, 4, eflags)
    for index, value in enumerate(cpu.regs):
        cpu.write_system(old.base + GPRS_AT + 4 * index, 4, value)
    for index in SEGMENT_ORDER:
        cpu.write_system(old.base + SEGS_AT + 4 * index, 2, cpu.sregs[index])
    if source in ("jmp", "iret"):
        _set_busy(cpu, cpu.gdtr[0] + (old.selector & 0xFFF8), False)
    # Read the new task's state before changing anything it depends on.
    base = new.base
    image = {name: cpu.read_system(base + at, 4) for name, at in
             (("cr3", CR3_AT), ("eip", EIP_AT), ("eflags", EFLAGS_AT))}
    registers = [cpu.read_system(base + GPRS_AT + 4 * i, 4) for i in range(8)]
    selectors = [cpu.read_system(base + SEGS_AT + 4 * i, 2) for i in SEGMENT_ORDER]
    ldt_selector = cpu.read_system(base + LDT_AT, 2)
    if source in ("call", "int"):
        cpu.write_system(base + BACK_LINK, 2, old.selector)
        image["eflags"] |= NT
    if source != "iret":
        _set_busy(cpu, new.address, True)
    cpu.tr = SystemSegment(new_selector, new.base, new.limit, new.attr | 0x200)
    cpu.cr0 |= CR0_TS
    # The new context (7.3, steps 11-13): from here faults belong to the new task, so
    # they are "partial": the step loop keeps the switch and delivers them there.
    if cpu.cr0 & (1 << 31) and image["cr3"] != cpu.cr3:
        from reference.system.control_registers import write_cr
        write_cr(cpu, 3, image["cr3"])
    cpu.flags.value = (image["eflags"] & IMPLEMENTED) | RESERVED_ONE
    cpu.regs[:] = registers
    cpu.eip = image["eip"]
    try:
        _load_ldt(cpu, ldt_selector, ext)
        _load_segments(cpu, selectors, ext)
    except Fault as fault:
        fault.partial = True
        raise


def _load_ldt(cpu: Cpu, selector: int, ext: int) -> None:
    if is_null(selector):
        cpu.ldtr = SystemSegment(selector)
        return
    error = (selector & 0xFFFC) | ext
    descriptor = read_descriptor(cpu, selector, TS, ext)
    if selector & 4 or descriptor.s or descriptor.type != LDT:
        raise Fault(TS, error)
    if not descriptor.present:
        raise Fault(TS, error)
    cpu.ldtr = SystemSegment(selector, descriptor.base, descriptor.limit, descriptor.attr)


def _load_segments(cpu: Cpu, selectors: list, ext: int) -> None:
    """CS first (it sets the CPL), then SS, then the data segments, each with the
    checks of a load but #TS for what a MOV would call #GP (Table 7-1)."""
    from reference.system.segmentation import load_cache

    cs = selectors[CS]
    if is_null(cs):
        raise Fault(TS, ext)
    code = read_descriptor(cpu, cs, TS, ext)
    error = (cs & 0xFFFC) | ext
    if not code.is_code or (code.conforming and code.dpl > cs & 3) or \
            (not code.conforming and code.dpl != cs & 3):
        raise Fault(TS, error)
    if not code.present:
        raise Fault(NP, error)
    cpu.save_segment(CS)
    cpu.cpl = cs & 3
    load_cache(cpu, CS, cs, code)
    ss = selectors[2]
    stack = read_descriptor(cpu, ss, TS, ext) if not is_null(ss) else None
    if stack is None or ss & 3 != cpu.cpl or stack.dpl != cpu.cpl or not stack.writable:
        raise Fault(TS, (ss & 0xFFFC) | ext)
    if not stack.present:
        raise Fault(SS, (ss & 0xFFFC) | ext)
    load_cache(cpu, 2, ss, stack)
    for index in (0, 3, 4, 5):
        selector = selectors[index]
        if is_null(selector):
            cpu.set_null_segment(index, selector)
            continue
        data = read_descriptor(cpu, selector, TS, ext)
        error = (selector & 0xFFFC) | ext
        if not data.s or not data.readable or (not data.conforming and (
                selector & 3 > data.dpl or cpu.cpl > data.dpl)):
            raise Fault(TS, error)
        if not data.present:
            raise Fault(NP, error)
        load_cache(cpu, index, selector, data)
