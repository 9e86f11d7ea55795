"""The machine every version-2 system drawer starts from (``differential/system_vectors.py``
and ``differential/privileged_vectors.py``): where code, data, stack and the descriptor
tables sit, how descriptors and gates are built (SDM Vol. 3A, Figure 3-8, Figure 5-8),
a flat GDT with ring-0 and ring-3 segments, a TSS and an LDT, and the pieces of one
drawn case."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Dict, Tuple

from ground.case import GPRS, PAGE_SIZE, Case
from vectors.system_state import (
    FLAT_CODE,
    FLAT_DATA,
    PROT32_CR0,
    SEGMENT_NAMES,
    Segment,
    SystemState,
)

MODE = "prot32"
CODE, DATA, STACK, GDT, LDT, IDT, TSS, INNER = (0x1000, 0x2000, 0x3000, 0x5000, 0x6000,
                                                 0x7000, 0x8000, 0x9000)
HANDLER = 0x1800        # where every gate points (in the code page)
STACK_TOP = 0x3800
INNER_TOP = 0x9800      # the TSS's ring-0 stack
PD, PT, LOW_PT = 0xA000, 0xB000, 0xC000


@dataclass(frozen=True)
class Drawn:
    """One candidate: the case and its initial system state."""

    form: str
    case: Case
    state: SystemState
    delivery: str = "report"



# --- tables (SDM Vol. 3A, Figure 3-8; Figure 5-8 gates; Figure 7-2 TSS) ----------------

def descriptor(base: int, limit: int, kind: int, dpl: int = 0, s: int = 1, present: int = 1,
               db: int = 1, g: int = 0) -> bytes:
    low = (limit & 0xFFFF) | (base & 0xFFFF) << 16
    high = (base >> 16 & 0xFF) | kind << 8 | s << 12 | dpl << 13 | present << 15 \
        | (limit & 0xF0000) | db << 22 | g << 23 | (base & 0xFF000000)
    return struct.pack("<II", low, high)


def gate(selector: int, offset: int, kind: int, dpl: int = 0) -> bytes:
    low = (offset & 0xFFFF) | selector << 16
    high = kind << 8 | dpl << 13 | 1 << 15 | (offset & 0xFFFF0000)
    return struct.pack("<II", low, high)


# Selector -> descriptor; accessed bits set, so a load leaves the table as it was.
FLAT_GDT: Dict[int, bytes] = {
    0x08: descriptor(0, 0xFFFFF, 0xB, g=1),           # ring-0 code
    0x10: descriptor(0, 0xFFFFF, 0x3, g=1),           # ring-0 data
    0x18: descriptor(0, 0xFFFFF, 0xB, dpl=3, g=1),    # ring-3 code
    0x20: descriptor(0, 0xFFFFF, 0x3, dpl=3, g=1),    # ring-3 data
    0x28: descriptor(TSS, 103, 0x9, s=0, db=0),       # available 32-bit TSS
    0x30: descriptor(LDT, 0x17, 0x2, s=0, db=0),      # an LDT
}
RING = {0: (0x08, 0x10), 3: (0x1B, 0x23)}


def flat_segments(cpl: int) -> Dict[str, Segment]:
    code, data = RING[cpl]
    segs = {name: Segment(data, 0, 0xFFFFFFFF, FLAT_DATA | cpl << 13)
            for name in SEGMENT_NAMES}
    segs["cs"] = Segment(code, 0, 0xFFFFFFFF, FLAT_CODE | cpl << 13)
    return segs


def table_image(entries: Dict[int, bytes]) -> bytes:
    image = bytearray(max(entries) // 8 * 8 + 8)
    for selector, raw in entries.items():
        image[selector & ~7:(selector & ~7) + 8] = raw
    return bytes(image)


def page_with(content: bytes = b"", at: int = 0) -> bytes:
    page = bytearray(PAGE_SIZE)
    page[at:at + len(content)] = content
    return bytes(page)


def draw_regs(rng: random.Random, **fixed: int) -> Dict[str, int]:
    regs = {name: rng.getrandbits(32) for name in GPRS}
    regs.update(esp=STACK_TOP, eip=CODE, eflags=0x2 | (rng.getrandbits(12) & 0x8D5))
    regs.update(fixed)
    return regs


def make_case(form: str, label: str, code: bytes, regs: Dict[str, int],
          memory: Dict[int, bytes]) -> Case:
    memory = dict(memory)
    memory[CODE] = page_with(code, CODE & 0xFFF) if CODE not in memory else memory[CODE]
    return Case(name=label, mode=MODE, code=code, regs=regs, memory=memory, form=form)


def gdt_state(entries: Dict[int, bytes], cpl: int = 0, **more: object) -> Tuple[
        Dict[int, bytes], SystemState]:
    image = table_image(entries)
    memory = {GDT: page_with(image), DATA: bytes(PAGE_SIZE), STACK: bytes(PAGE_SIZE)}
    state = SystemState(cpl=cpl, cr0=PROT32_CR0, gdtr=(GDT, len(image) - 1),
                        segments=flat_segments(cpl), **more)  # type: ignore[arg-type]
    return memory, state
