"""Hardware task switching (SDM Vol. 3A, 7.3 "Task Switching"), 32- and 16-bit TSSs.

A task switch happens on JMP or CALL to a TSS descriptor or a task gate, on an
interrupt or exception through a task gate in the IDT, and on IRET with EFLAGS.NT set.
The processor checks the new TSS descriptor, saves the current state into the current
TSS (EIP, EFLAGS, the general registers, the segment selectors), updates busy bits and
the NT flag/back link as the source demands (Table 7-2), loads TR, sets CR0.TS, then
loads the new task's CR3 (under paging), LDTR, EFLAGS, registers, EIP and segment
registers. Faults while loading the new segments are #TS/#NP/#SS/#GP in the new task's
context (the switch has happened).

The old task is saved in the old TSS's format and the new one loaded from the new TSS's
format (a 32-bit task may switch to a 16-bit one and back); the two formats differ only
in where the fields are and how wide they are (``TssLayout``). A 16-bit TSS (7.6,
Figure 7-11) has no CR3 (the page tables stay), no FS/GS and no I/O map; saving into it
loses the upper halves of EIP and EFLAGS, and the SDM leaves the upper halves of the
general registers loaded from it undefined ("modified and not maintained"): here they
become 0xFFFF, as Bochs makes them (QEMU keeps the old upper halves: switch_tss_ra), and
FS/GS are loaded null, as both do.

A new task whose EFLAGS image has VM = 1 is a virtual-8086 task (Vol. 3B 20.2.5, only a
32-bit TSS can hold VM): the processor updates VM before it loads the segment
registers, and with VM set it loads them 8086-style (base = selector << 4, no
descriptor checks) and runs the task at CPL 3; the LDTR is loaded as for any task.
Leaving such a task (an interrupt or exception through a task gate, 20.2.6) saves its
segment registers and EFLAGS (VM = 1) like any other; the new task's VM decides the
mode again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional, Tuple

from reference.cpu import SystemSegment
from reference.faults import GP, NP, SS, TS, Fault
from reference.flags import IMPLEMENTED, NT, RESERVED_ONE, VM
from reference.operands import CS
from reference.system.control_registers import TS as CR0_TS
from reference.system.descriptors import (
    BUSY,
    LDT,
    TASK_GATE,
    TSS16_AVAILABLE,
    TSS32_AVAILABLE,
    Descriptor,
    is_null,
    read_descriptor,
)
from reference.system.vm86 import load_vm86_segment, set_vm86_mode

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

BACK_LINK = 0  # the previous task link, a word at offset 0 in both formats


class TssLayout(NamedTuple):
    """Where a TSS format keeps the dynamic fields a task switch saves and loads."""

    width: int            # bytes of EIP, EFLAGS and each general register
    cr3_at: Optional[int]  # None: the format has no CR3 (the page tables stay)
    eip_at: int
    eflags_at: int
    gprs_at: int          # EAX ECX EDX EBX ESP EBP ESI EDI, ``width`` bytes apart
    segs_at: int          # ES CS SS DS (FS GS), ``seg_stride`` bytes apart
    seg_stride: int
    segments: int         # how many segment selectors the format holds
    ldt_at: int
    minimum_limit: int    # a smaller limit is #TS (Table 7-1)


# Figure 7-2 (32-bit TSS) and Figure 7-11 (16-bit TSS, 44 bytes: limit 0x2B).
TSS32_LAYOUT = TssLayout(4, 28, 32, 36, 40, 72, 4, 6, 96, 0x67)
TSS16_LAYOUT = TssLayout(2, None, 14, 16, 18, 34, 2, 4, 42, 0x2B)


def layout_of(tss_type: int) -> TssLayout:
    """The format of a TSS descriptor's type (1/3: 16-bit, 9/11: 32-bit)."""
    return TSS32_LAYOUT if tss_type & 8 else TSS16_LAYOUT


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
    # IRET returns to a busy TSS, the others switch to an available one (7.3 step 2).
    busy = BUSY if source == "iret" else 0
    if descriptor.type not in (TSS16_AVAILABLE | busy, TSS32_AVAILABLE | busy):
        raise Fault(fault, error)
    if not descriptor.present:
        raise Fault(NP, error)
    if descriptor.limit < layout_of(descriptor.type).minimum_limit:
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
    here = layout_of((old.attr >> 8) & 0xF)
    if old.limit < here.minimum_limit:
        raise Fault(TS, (old.selector & 0xFFFC) | ext)
    eflags = cpu.get_reg("eflags") | saved_flags
    if source == "iret":
        eflags &= ~NT
    # Save the current task (7.3, step 8), in the old TSS's format.
    _save_task(cpu, old.base, here, eflags)
    if source in ("jmp", "iret"):
        _set_busy(cpu, cpu.gdtr[0] + (old.selector & 0xFFF8), False)
    # Read the new task's state before changing anything it depends on.
    there = layout_of(new.type)
    image, registers, selectors, ldt_selector = _read_task(cpu, new.base, there)
    if source in ("call", "int"):
        cpu.write_system(new.base + BACK_LINK, 2, old.selector)
        image["eflags"] |= NT
    if source != "iret":
        _set_busy(cpu, new.address, True)
    cpu.tr = SystemSegment(new_selector, new.base, new.limit, new.attr | 0x200)
    cpu.cr0 |= CR0_TS
    # The new context (7.3, steps 11-13): from here faults belong to the new task, so
    # they are "partial": the step loop keeps the switch and delivers them there.
    cr3 = image.get("cr3", cpu.cr3)
    if cpu.cr0 & (1 << 31) and cr3 != cpu.cr3:
        from reference.system.control_registers import write_cr
        write_cr(cpu, 3, cr3)
    cpu.flags.value = (image["eflags"] & IMPLEMENTED) | RESERVED_ONE
    virtual_8086 = bool(cpu.flags.value & VM)
    set_vm86_mode(cpu, virtual_8086)  # VM is updated before the segment loads (20.2.5)
    cpu.regs[:] = registers
    cpu.eip = image["eip"]
    try:
        if not virtual_8086:
            _load_selectors(cpu, selectors)
        _load_ldt(cpu, ldt_selector, ext)
        if virtual_8086:
            _load_vm86_segments(cpu, selectors)
        else:
            _load_segments(cpu, selectors, ext)
    except Fault as fault:
        fault.partial = True
        raise
    if source != "int":  # an interrupt checks after pushing its error code
        check_new_eip(cpu, ext)


def check_new_eip(cpu: Cpu, ext: int) -> None:
    """The last step of JMP, CALL and IRET to a task ("IF EIP not within code segment
    limit THEN #GP(0)") and of INT n's TASK-GATE, after the error code ("#GP(EXT)"): a
    fault in the new task."""
    if cpu.eip > cpu.seg_limit[CS]:
        fault = Fault(GP, ext)
        fault.partial = True
        raise fault


def _save_task(cpu: Cpu, base: int, layout: TssLayout, eflags: int) -> None:
    """EIP, EFLAGS, the general registers and the segment selectors into the TSS at
    ``base``; a 16-bit TSS takes the low words (7.6: the upper halves are lost)."""
    width = layout.width
    mask = (1 << 8 * width) - 1
    cpu.write_system(base + layout.eip_at, width, cpu.eip & mask)
    cpu.write_system(base + layout.eflags_at, width, eflags & mask)
    for index, value in enumerate(cpu.regs):
        cpu.write_system(base + layout.gprs_at + width * index, width, value & mask)
    for index in range(layout.segments):
        cpu.write_system(base + layout.segs_at + layout.seg_stride * index, 2,
                         cpu.sregs[index])


def _read_task(cpu: Cpu, base: int, layout: TssLayout) -> Tuple[dict, list, list, int]:
    """The new task's (CR3/EIP/EFLAGS image, registers, ES..GS selectors, LDT
    selector). From a 16-bit TSS: EIP and EFLAGS zero-extended, the registers' upper
    halves 0xFFFF and FS/GS null (the SDM leaves these open; see the module's note)."""
    width = layout.width
    image = {"eip": cpu.read_system(base + layout.eip_at, width),
             "eflags": cpu.read_system(base + layout.eflags_at, width)}
    if layout.cr3_at is not None:
        image["cr3"] = cpu.read_system(base + layout.cr3_at, 4)
    upper = 0 if width == 4 else 0xFFFF0000
    registers = [upper | cpu.read_system(base + layout.gprs_at + width * i, width)
                 for i in range(8)]
    selectors = [cpu.read_system(base + layout.segs_at + layout.seg_stride * i, 2)
                 for i in range(layout.segments)]
    selectors += [0] * (6 - layout.segments)
    return image, registers, selectors, cpu.read_system(base + layout.ldt_at, 2)


def _load_selectors(cpu: Cpu, selectors: list) -> None:
    """7.3 step 12 loads the segment selectors, step 13 their descriptors: a fault
    while loading the LDT or a descriptor finds every new selector in its register
    (the hidden parts are still the old task's until their descriptors load), and a
    task gate that handles it saves those selectors in this task's TSS (Bochs and QEMU
    do the same)."""
    for index, selector in enumerate(selectors):
        cpu.save_segment(index)
        cpu.sregs[index] = selector


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


def _load_vm86_segments(cpu: Cpu, selectors: list) -> None:
    """A virtual-8086 task's ES CS SS DS FS GS: 8086-style selectors, loaded without
    descriptors (so without faults); the task runs at CPL 3."""
    for index, selector in enumerate(selectors):
        load_vm86_segment(cpu, index, selector)
    cpu.cpl = 3


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
