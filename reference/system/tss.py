"""The task-state segment as far as privilege changes need it (SDM Vol. 3A, 7.2.1).

A call gate or an interrupt to a more privileged level takes its new stack from the TSS
that TR names: SS0:ESP0 at offsets 8:4 in a 32-bit TSS (SSn at 8 + 8n, ESPn at 4 + 8n),
SS0:SP0 at 4:2 in a 16-bit TSS (SSn at 4 + 4n, SPn at 2 + 4n). Reading beyond TR's limit
is #TS(TSS selector). Task switches are ``reference.system.task_switch``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple

from reference.faults import GP, NP, TS, Fault
from reference.faults import SS as SS_FAULT
from reference.system.descriptors import (
    TSS16_AVAILABLE,
    TSS16_BUSY,
    TSS32_AVAILABLE,
    TSS32_BUSY,
    Descriptor,
    is_null,
    read_descriptor,
)

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu


def inner_stack(cpu: Cpu, dpl: int, ext: int = 0) -> Tuple[int, int]:
    """(SS selector, ESP) for privilege level ``dpl`` from the current TSS."""
    tr = cpu.tr
    is16 = ((tr.attr >> 8) & 0xF) in (TSS16_AVAILABLE, TSS16_BUSY)
    if is16:
        where, width = 2 + 4 * dpl, 2
    else:
        where, width = 4 + 8 * dpl, 4
    if where + 2 * width - 1 > tr.limit:
        raise Fault(TS, (tr.selector & 0xFFFC) | ext)
    esp = cpu.read_system(tr.base + where, width)
    ss = cpu.read_system(tr.base + where + width, 2)
    return ss, esp


def check_inner_stack(cpu: Cpu, selector: int, dpl: int, ext: int = 0) -> Descriptor:
    """The checks on the new SS from the TSS, in the SDM's order (Vol. 2A, CALL and
    INT n: "IF new stack segment selector is NULL THEN #TS(EXT)" ...)."""
    if is_null(selector):
        raise Fault(TS, ext)
    descriptor = read_descriptor(cpu, selector, TS, ext)
    error = (selector & 0xFFFC) | ext
    if selector & 3 != dpl or descriptor.dpl != dpl or not descriptor.writable:
        raise Fault(TS, error)
    if not descriptor.present:
        raise Fault(SS_FAULT, error)
    return descriptor


def check_tss_descriptor(selector: int, descriptor: Descriptor) -> None:
    """LTR: the selector must name an available TSS in the GDT that is present."""
    if selector & 4 or descriptor.s or descriptor.type not in (1, 9):
        raise Fault(GP, selector & 0xFFFC)
    if not descriptor.present:
        raise Fault(NP, selector & 0xFFFC)


def io_permitted(cpu: Cpu, port: int, size: int) -> bool:
    """The I/O permission bit map (SDM Vol. 1, 19.5.2): with CPL > IOPL an access to
    ``size`` bits at ``port`` is allowed only if a 32-bit TSS holds the map (its base at
    offset 102) and every bit for the accessed ports is 0. The processor reads two bytes
    of the map; if either lies beyond TR's limit the access is refused."""
    tr = cpu.tr
    if (tr.attr >> 8) & 0xF not in (TSS32_AVAILABLE, TSS32_BUSY) or tr.limit < 103:
        return False
    where = cpu.read_system(tr.base + 102, 2) + (port >> 3)
    if where + 1 > tr.limit:
        return False
    bits = cpu.read_system(tr.base + where, 2) >> (port & 7)
    return bits & ((1 << (size >> 3)) - 1) == 0
