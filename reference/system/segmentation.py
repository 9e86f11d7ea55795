"""Loading a segment register in protected mode (SDM Vol. 3A, 5.4-5.5; Vol. 2B, MOV and
POP: "IF SS is loaded" / "IF DS, ES, FS, or GS is loaded with non-NULL selector").

``DescriptorLoader`` replaces the CPU's table-less loader once software loads a GDT
(LGDT). Every check comes in the SDM's order with its exception and error code; then
the selector and the descriptor's base, limit and attributes go into the hidden cache
(``Cpu.set_segment_cache``) and the descriptor's accessed bit is set. CS is loaded only
by far transfers (``reference.system.far_transfers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference.faults import GP, NP, SS, Fault
from reference.operands import SS as SS_INDEX
from reference.system.descriptors import Descriptor, is_null, read_descriptor, set_accessed

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu


def load_cache(cpu: Cpu, index: int, selector: int, descriptor: Descriptor) -> None:
    """Selector and hidden part together, and the accessed bit in the table."""
    set_accessed(cpu, descriptor)
    cpu.set_segment_cache(index, selector, descriptor.base, descriptor.limit,
                          descriptor.attr | 0x100)


def load_stack_segment(cpu: Cpu, selector: int) -> None:
    """MOV SS / POP SS / LSS in protected mode."""
    if is_null(selector):
        raise Fault(GP, 0)
    descriptor = read_descriptor(cpu, selector)
    error = selector & 0xFFFC
    if selector & 3 != cpu.cpl or not descriptor.writable or descriptor.dpl != cpu.cpl:
        raise Fault(GP, error)
    if not descriptor.present:
        raise Fault(SS, error)
    load_cache(cpu, SS_INDEX, selector, descriptor)


def load_data_segment(cpu: Cpu, index: int, selector: int) -> None:
    """MOV/POP DS, ES, FS, GS and LDS/LES/LFS/LGS in protected mode. A null selector
    loads and leaves the register unusable."""
    if is_null(selector):
        cpu.set_null_segment(index, selector)
        return
    descriptor = read_descriptor(cpu, selector)
    error = selector & 0xFFFC
    if not descriptor.readable or not descriptor.s:
        raise Fault(GP, error)
    if not descriptor.conforming and (selector & 3 > descriptor.dpl
                                      or cpu.cpl > descriptor.dpl):
        raise Fault(GP, error)
    if not descriptor.present:
        raise Fault(NP, error)
    load_cache(cpu, index, selector, descriptor)


class DescriptorLoader:
    """The protected-mode segment loader backed by the GDT and LDT."""

    tables = True

    def load(self, cpu: Cpu, index: int, selector: int) -> None:
        if index == SS_INDEX:
            load_stack_segment(cpu, selector)
        else:
            load_data_segment(cpu, index, selector)


def invalidate_outer_segments(cpu: Cpu) -> None:
    """After a return to an outer level (RET far, IRET): DS, ES, FS and GS holding a
    data or non-conforming code segment more privileged than the new CPL are made null
    (SDM Vol. 2B, RET: "FOR each SegReg in (ES, FS, GS, and DS)")."""
    for index in (0, 3, 4, 5):
        attr = cpu.seg_attr[index]
        kind = (attr >> 8) & 0xF
        dpl = (attr >> 13) & 3
        conforming_code = kind & 8 and kind & 4
        if cpu.seg_limit[index] >= 0 and not conforming_code and dpl < cpu.cpl:
            cpu.set_null_segment(index, 0)
