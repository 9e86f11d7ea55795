"""Segment descriptors and the descriptor tables (SDM Vol. 3A, 3.4.5 and 3.5).

A selector names a descriptor: bits 3-15 are the index, bit 2 (TI) picks the LDT over
the GDT, bits 0-1 are the requested privilege level (RPL). ``read_descriptor`` finds
the 8 bytes (an index past the table's limit is #GP(selector) unless the caller says
otherwise), and ``Descriptor`` names the fields of Figure 3-8.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference.faults import GP, Fault

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

# Type field (bits 8-11 of the high dword) for S = 1 (code/data), Table 3-1.
ACCESSED, WRITABLE, EXPAND_DOWN = 1, 2, 4   # data
READABLE, CONFORMING, CODE = 2, 4, 8        # code
# System descriptor types (S = 0), Table 3-2.
TSS16_AVAILABLE, LDT, TSS16_BUSY, CALL_GATE16, TASK_GATE = 1, 2, 3, 4, 5
INTERRUPT_GATE16, TRAP_GATE16 = 6, 7
TSS32_AVAILABLE, TSS32_BUSY, CALL_GATE32 = 9, 11, 12
INTERRUPT_GATE32, TRAP_GATE32 = 14, 15
BUSY = 2  # the busy bit of a TSS type


class Descriptor:
    """One 8-byte descriptor: ``low``/``high`` dwords and their fields.

    Segment descriptors: ``base``, ``limit`` (scaled by G: (limit << 12) | 0xFFF),
    ``type``, ``s`` (1 = code/data), ``dpl``, ``present``, ``db``; ``attr`` is the
    access-rights word in LAR's layout. Gate descriptors: ``selector``, ``offset``
    (low word only for 16-bit gates), ``param_count`` (call gates)."""

    __slots__ = ("low", "high", "address")

    def __init__(self, raw: int, address: int) -> None:
        self.low = raw & 0xFFFFFFFF
        self.high = raw >> 32
        self.address = address  # linear address of the descriptor (accessed bit)

    @property
    def type(self) -> int:
        return (self.high >> 8) & 0xF

    @property
    def s(self) -> int:
        return (self.high >> 12) & 1

    @property
    def dpl(self) -> int:
        return (self.high >> 13) & 3

    @property
    def present(self) -> bool:
        return bool(self.high & 0x8000)

    @property
    def db(self) -> int:
        return (self.high >> 22) & 1

    @property
    def attr(self) -> int:
        return self.high & 0x00F0FF00

    @property
    def base(self) -> int:
        return (self.low >> 16) | ((self.high & 0xFF) << 16) | (self.high & 0xFF000000)

    @property
    def limit(self) -> int:
        raw = (self.low & 0xFFFF) | (self.high & 0x000F0000)
        return (raw << 12) | 0xFFF if self.high & 0x00800000 else raw

    # -- code/data shorthands
    @property
    def is_code(self) -> bool:
        return bool(self.s and self.type & CODE)

    @property
    def is_data(self) -> bool:
        return bool(self.s and not self.type & CODE)

    @property
    def conforming(self) -> bool:
        return self.is_code and bool(self.type & CONFORMING)

    @property
    def readable(self) -> bool:
        """Data is always readable; code only with R."""
        return self.is_data or bool(self.type & READABLE)

    @property
    def writable(self) -> bool:
        return self.is_data and bool(self.type & WRITABLE)

    # -- gates
    @property
    def selector(self) -> int:
        return self.low >> 16

    @property
    def offset(self) -> int:
        low = self.low & 0xFFFF
        if self.type in (CALL_GATE16, INTERRUPT_GATE16, TRAP_GATE16):
            return low
        return low | (self.high & 0xFFFF0000)

    @property
    def param_count(self) -> int:
        return self.high & 0x1F

    def __repr__(self) -> str:
        return f"Descriptor({(self.high << 32) | self.low:#018x})"


def is_null(selector: int) -> bool:
    """Selectors 0-3 (GDT index 0, any RPL) are null."""
    return selector & 0xFFFC == 0


def descriptor_address(cpu: Cpu, selector: int) -> int:
    """The linear address of ``selector``'s descriptor, or -1 when its index lies past
    the limit of the table TI names (or TI names an LDT and LDTR is null)."""
    if selector & 4:
        if is_null(cpu.ldtr.selector):
            return -1
        base, limit = cpu.ldtr.base, cpu.ldtr.limit
    else:
        base, limit = cpu.gdtr
    index_end = (selector & 0xFFF8) + 7
    if index_end > limit:
        return -1
    return (base + (selector & 0xFFF8)) & 0xFFFFFFFF


def read_descriptor(cpu: Cpu, selector: int, vector: int = GP, ext: int = 0) -> Descriptor:
    """The descriptor ``selector`` names; outside its table: fault ``vector`` with the
    selector (RPL cleared, EXT added) as error code."""
    address = descriptor_address(cpu, selector)
    if address < 0:
        raise Fault(vector, (selector & 0xFFFC) | ext)
    return Descriptor(cpu.read_system(address, 8), address)


def set_accessed(cpu: Cpu, descriptor: Descriptor) -> None:
    """Set the accessed bit of a code/data descriptor in memory (the processor writes
    it on a load when it is clear, 3.4.5.1)."""
    if not descriptor.high & 0x100:
        descriptor.high |= 0x100
        cpu.write_system(descriptor.address + 5, 1, (descriptor.high >> 8) & 0xFF)
