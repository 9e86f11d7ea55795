"""Hand-built descriptor tables for the system-level tests (SDM Vol. 3A, Figure 3-8,
Figure 5-8 for gates, Figure 7-2 for the TSS). The encoders here are written from the
figures, independently of ``reference.system``, so a test's expectations never come
from the code under test.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from reference import Cpu, SparseMemory
from reference.system.segmentation import DescriptorLoader
from reference.tests.conftest import CODE, DATA, STACK_TOP

GDT = 0x5000
LDT_BASE = 0x6000
IDT = 0x7000
TSS_BASE = 0x8000
INNER_STACK_TOP = 0x9800  # ring-0 stack page 0x9000

# Type nibbles (Table 3-1, 3-2).
DATA_RW, DATA_RO, DATA_RW_DOWN = 0x2, 0x0, 0x6
CODE_XR, CODE_X, CODE_XR_CONFORMING = 0xA, 0x8, 0xE
LDT_TYPE, TSS32, CALL_GATE32, INT_GATE32, TRAP_GATE32 = 0x2, 0x9, 0xC, 0xE, 0xF


def descriptor(base: int, limit: int, kind: int, dpl: int = 0, s: int = 1,
               present: int = 1, db: int = 1, g: int = 0) -> bytes:
    """A segment descriptor: limit 15:0, base 23:0, type/S/DPL/P, limit 19:16, AVL=0,
    L=0, D/B, G, base 31:24."""
    low = (limit & 0xFFFF) | ((base & 0xFFFF) << 16)
    high = ((base >> 16) & 0xFF) | (kind << 8) | (s << 12) | (dpl << 13) | (present << 15)
    high |= (limit & 0xF0000) | (db << 22) | (g << 23) | (base & 0xFF000000)
    return low.to_bytes(4, "little") + high.to_bytes(4, "little")


def gate(selector: int, offset: int, kind: int, dpl: int = 0, present: int = 1,
         params: int = 0) -> bytes:
    """A call/interrupt/trap gate: offset 15:0, selector, parameter count, type, DPL, P,
    offset 31:16."""
    low = (offset & 0xFFFF) | (selector << 16)
    high = params | (kind << 8) | (dpl << 13) | (present << 15) | (offset & 0xFFFF0000)
    return low.to_bytes(4, "little") + high.to_bytes(4, "little")


def tss32(esp0: int, ss0: int) -> bytes:
    """A 104-byte 32-bit TSS with only ESP0 (offset 4) and SS0 (offset 8) set."""
    image = bytearray(104)
    image[4:8] = esp0.to_bytes(4, "little")
    image[8:10] = ss0.to_bytes(2, "little")
    return bytes(image)


# A GDT that most tests share: selector -> descriptor.
STANDARD_GDT: Dict[int, bytes] = {
    0x08: descriptor(0, 0xFFFFF, CODE_XR, g=1),           # ring-0 flat code
    0x10: descriptor(0, 0xFFFFF, DATA_RW, g=1),           # ring-0 flat data
    0x18: descriptor(0, 0xFFFFF, CODE_XR, dpl=3, g=1),    # ring-3 flat code
    0x20: descriptor(0, 0xFFFFF, DATA_RW, dpl=3, g=1),    # ring-3 flat data
    0x28: descriptor(TSS_BASE, 103, TSS32, s=0),          # the TSS
    0x30: descriptor(0, 0xFFFF, CODE_XR, db=0),           # 16-bit ring-0 code
}


def table_bytes(entries: Dict[int, bytes]) -> bytes:
    """GDT/LDT image: each descriptor at its selector's index (RPL/TI bits ignored)."""
    size = max(entries) // 8 * 8 + 8
    image = bytearray(size)
    for selector, raw in entries.items():
        image[selector & ~7:(selector & ~7) + 8] = raw
    return bytes(image)


def protected_cpu(code: bytes, gdt: Optional[Dict[int, bytes]] = None, cpl: int = 0,
                  ldt: Optional[Dict[int, bytes]] = None,
                  idt: Optional[Dict[int, bytes]] = None) -> Cpu:
    """A prot32 CPU running ``code`` at CODE with a GDT (LGDT done), CS/SS/DS/ES loaded
    from the standard flat descriptors of privilege ``cpl`` (0 or 3), a TSS whose ring-0
    stack is INNER_STACK_TOP, and optionally an LDT and IDT."""
    entries = dict(STANDARD_GDT if gdt is None else gdt)
    mem = SparseMemory()
    mem.map(CODE, code)
    for page in (DATA, 0x3000, GDT, LDT_BASE, IDT, TSS_BASE, 0x9000):
        mem.map(page, bytes(4096))
    mem.write_bytes(GDT, table_bytes(entries))
    mem.write_bytes(TSS_BASE, tss32(INNER_STACK_TOP, 0x10))
    cpu = Cpu(mem, "prot32")
    cpu.gdtr = (GDT, len(table_bytes(entries)) - 1)
    cpu.segment_loader = DescriptorLoader()
    if ldt is not None:
        mem.write_bytes(LDT_BASE, table_bytes(ldt))
        from reference.cpu import SystemSegment
        cpu.ldtr = SystemSegment(0x38, LDT_BASE, len(table_bytes(ldt)) - 1, 0x8200)
    if idt is not None:
        image = bytearray(8 * 256)
        for vector, raw in idt.items():
            image[8 * vector:8 * vector + 8] = raw
        mem.write_bytes(IDT, bytes(image))
        cpu.idtr = (IDT, 8 * 256 - 1)
    from reference.cpu import SystemSegment
    cpu.tr = SystemSegment(0x28, TSS_BASE, 103, 0x8B00)
    code_sel, data_sel = (0x08, 0x10) if cpl == 0 else (0x1B, 0x23)
    flat = 0xCF0000
    cpu.cpl = cpl
    cpu.set_segment_cache(1, code_sel, 0, 0xFFFFFFFF, flat | 0x9B00 | (cpl << 13))
    for index in (0, 2, 3):
        cpu.set_segment_cache(index, data_sel, 0, 0xFFFFFFFF, flat | 0x9300 | (cpl << 13))
    cpu.seg_journal.clear()
    cpu.set_reg("eip", CODE)
    cpu.set_reg("esp", STACK_TOP)
    return cpu


def run_to(cpu: Cpu, end: int, limit: int) -> Optional[int]:
    """Step until EIP reaches ``end`` or an exception is reported, at most ``limit``
    steps; the exception's vector, or None if ``end`` was reached (or the limit)."""
    for _ in range(limit):
        exception = cpu.step().exception
        if exception is not None:
            return exception.vector
        if cpu.eip == end:
            return None
    return None


def stack_items(cpu: Cpu, count: int, width: int = 4) -> List[int]:
    """The ``count`` items of ``width`` bytes from ESP up: what a push sequence left."""
    esp = cpu.get_reg("esp")
    return [cpu.mem.read_int(esp + width * i, width) for i in range(count)]
