"""The machine every bare-metal case shares: where things live, the encoders of
descriptors, gates and TSSs (written from the SDM's figures), the handler stubs and the
``record`` routine they all end in, and ``Layout``, one case's machine before encoding.

Every IDT vector leads to a stub that pushes its number and jumps to ``record``, which
writes what the handler sees into RESULTS and jumps far to the runner (0x08:EXIT). A
case whose code ends without an event calls ``record`` with vector 0xFFFFFFFF; code at
CPL 3 cannot, so it ends with UD2 (an instruction that should have faulted and did not
shows as vector 6). RESULTS (see ``RESULT_FIELDS``) and the other dumps are what
engines are compared on. Code is assembled with Keystone at its final address; far
jumps are written as bytes (Keystone 0.9.2 encodes ``ljmp`` with a 16-bit operand).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from differential.bare_metal.image import EXIT, Case

# The layout: every address below 4 MiB, identity-mapped when paging is on.
GDT = 0x200000
IDT = 0x201000
TSS_MAIN = 0x202000
TSS_DF = 0x202100
CODE0 = 0x203000       # the case's code at CPL 0
TASK_CODE = 0x203800   # where the second task (TSS_DF) starts when a case gives it code
CODE3 = 0x204000       # its code at CPL 3
HANDLERS = 0x205000    # 256 stubs of 10 bytes, then record
RECORD = HANDLERS + 0xA00
STACK0_TOP = 0x206F00  # the stacks: tops inside their page, so the bytes above the top
STACK3_TOP = 0x207F00  # (read by record) are the case's own pattern
STACK_DF_TOP = 0x208F00
RESULTS = 0x209000
PAGE_DIRECTORY = 0x20A000
PAGE_TABLE = 0x20B000  # maps 0-4 MiB
DATA_PAGE = 0x20C000   # the page #PF cases play with
SPARE_PAGE = 0x20D000
STACK_PATTERN = 0x5A
"""Every stack's 256 bytes around its top hold this byte before a case runs."""

# Selectors of the common GDT.
CODE0_SEL, DATA0_SEL, CODE3_SEL, DATA3_SEL = 0x08, 0x10, 0x1B, 0x23
TSS_MAIN_SEL, TSS_DF_SEL, HANDLER16_SEL = 0x28, 0x30, 0x38
SPARE_SEL = 0x40       # a case-specific descriptor
GDT_ENTRIES = 16

# System descriptor types (SDM Vol. 3A, Table 3-2).
TSS32_AVAILABLE, TSS32_BUSY = 0x9, 0xB
TASK_GATE, INT16, TRAP16, INT32, TRAP32 = 0x5, 0x6, 0x7, 0xE, 0xF
GATE_NAMES = {INT16: "int16", TRAP16: "trap16", INT32: "int32", TRAP32: "trap32",
              TASK_GATE: "task"}

CR0_PE, CR0_ET, CR0_WP, CR0_PG = 1, 0x10, 1 << 16, 1 << 31
PTE_P, PTE_RW, PTE_US = 1, 2, 4

RESULT_FIELDS = (
    ("marker", 0x00), ("eax", 0x04), ("vector", 0x08), ("esp", 0x0C), ("ss", 0x10),
    ("cs", 0x14), ("ds", 0x18), ("eflags", 0x1C), ("cr2", 0x20), ("tr", 0x24),
    ("ebx", 0x28), ("ecx", 0x2C), ("cr0", 0x30), ("es", 0x34),
    *((f"stack{i}", 0x40 + 4 * i) for i in range(8)),
)
"""What ``record`` stores at RESULTS (offsets in bytes): the registers as the handler
found them, and the 8 dwords at its ESP after the stub's push was taken back off, so
stack0 is the error code or the return EIP."""
RESULTS_SIZE = 0x60
RECORDED = 0x31434552  # "REC1": record ran


def descriptor(base: int, limit: int, access: int, flags: int = 0xC) -> bytes:
    """A segment descriptor (SDM Vol. 3A, Figure 3-8); ``access`` is byte 5 (P, DPL, S,
    type), ``flags`` the high nibble of byte 6 (G, D/B, L, AVL)."""
    low = (limit & 0xFFFF) | (base & 0xFFFF) << 16
    high = (base >> 16 & 0xFF) | access << 8 | (limit >> 16 & 0xF) << 16 | flags << 20 \
        | (base >> 24) << 24
    return struct.pack("<II", low, high)


def gate(selector: int, offset: int, kind: int, dpl: int = 0, present: bool = True) -> bytes:
    """An IDT gate (SDM Vol. 3A, Figure 6-2): interrupt, trap or task."""
    access = (0x80 if present else 0) | dpl << 5 | kind
    return struct.pack("<HHBBH", offset & 0xFFFF, selector, 0, access, offset >> 16)


def tss32(**fields: int) -> bytes:
    """A 32-bit TSS (SDM Vol. 3A, Figure 7-2), 104 bytes; unnamed fields are 0."""
    names = ("link", "esp0", "ss0", "esp1", "ss1", "esp2", "ss2", "cr3", "eip", "eflags",
             "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "es", "cs", "ss", "ds",
             "fs", "gs", "ldt")
    unknown = set(fields) - set(names) - {"iomap"}
    if unknown:
        raise ValueError(f"unknown TSS fields {sorted(unknown)}")
    values = [fields.get(name, 0) for name in names]
    return struct.pack("<25I", *values) + struct.pack("<HH", 0, fields.get("iomap", 104))


TSS16_FIELDS = ("link", "sp0", "ss0", "sp1", "ss1", "sp2", "ss2", "ip", "flags", "ax",
                "cx", "dx", "bx", "sp", "bp", "si", "di", "es", "cs", "ss", "ds", "ldt")
"""The 16-bit TSS's words in order (SDM Vol. 3A 7.6, Figure 7-11): 44 bytes, limit
0x2B; no CR3, FS, GS or I/O map."""
TSS16_AVAILABLE = 0x1
TASK16_CODE_SEL, TASK16_STACK_SEL = 0x60, 0x68
"""A 16-bit task's IP has 16 bits, so its code segment (32-bit, DPL 0) starts at 2 MiB,
where TASK_CODE is at offset 0x3800; its stack segment is a 16-bit (B = 0) one with
the same base, so only SP counts (the SDM leaves the upper halves of the registers a
16-bit TSS loads undefined)."""
LAYOUT_BASE = 0x200000


def tss16(**fields: int) -> bytes:
    """A 16-bit TSS (Figure 7-11); unnamed fields are 0."""
    unknown = set(fields) - set(TSS16_FIELDS)
    if unknown:
        raise ValueError(f"unknown TSS fields {sorted(unknown)}")
    return struct.pack("<22H", *(fields.get(name, 0) for name in TSS16_FIELDS))


TSS_FIELDS = ("link", "esp0", "ss0", "esp1", "ss1", "esp2", "ss2", "cr3", "eip", "eflags",
              "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "es", "cs", "ss", "ds",
              "fs", "gs", "ldt")


_ASSEMBLER = None


def assemble(source: str, address: int) -> bytes:
    """Keystone, 32-bit, Intel syntax; statements separated by ';' or newlines."""
    global _ASSEMBLER
    if _ASSEMBLER is None:
        from keystone import KS_ARCH_X86, KS_MODE_32, Ks
        _ASSEMBLER = Ks(KS_ARCH_X86, KS_MODE_32)
    encoding, _ = _ASSEMBLER.asm(source, address)
    return bytes(encoding or b"")


def far_jmp(selector: int, offset: int) -> str:
    """JMP ptr16:32 (EA) as data: Keystone 0.9.2 encodes ``ljmp`` with a 16-bit offset."""
    return (f".byte 0xea; .long {offset:#x}; .byte {selector & 0xFF:#x}, "
            f"{selector >> 8:#x}")


def record_routine() -> str:
    """What every handler runs: the registers it found, then 8 stack dwords, into
    RESULTS; then back to the runner. SS is a flat DPL-0 data segment in every handler
    (SS0 of the TSS, or the #DF task's SS), so the stores name it."""
    r = RESULTS
    lines = [f"mov dword ptr ss:[{r + 0x04:#x}], eax",
             f"mov dword ptr ss:[{r + 0x28:#x}], ebx",
             f"mov dword ptr ss:[{r + 0x2C:#x}], ecx",
             "pop eax", f"mov dword ptr ss:[{r + 0x08:#x}], eax",
             f"mov dword ptr ss:[{r + 0x0C:#x}], esp", "xor eax, eax"]
    for register, offset in (("ss", 0x10), ("cs", 0x14), ("ds", 0x18), ("es", 0x34)):
        lines += [f"mov ax, {register}", f"mov dword ptr ss:[{r + offset:#x}], eax"]
    lines += ["pushfd", "pop eax", f"mov dword ptr ss:[{r + 0x1C:#x}], eax",
              "mov eax, cr2", f"mov dword ptr ss:[{r + 0x20:#x}], eax",
              "mov eax, cr0", f"mov dword ptr ss:[{r + 0x30:#x}], eax",
              "xor eax, eax", "str ax", f"mov dword ptr ss:[{r + 0x24:#x}], eax"]
    for i in range(8):
        lines += [f"mov eax, dword ptr [esp + {4 * i}]",
                  f"mov dword ptr ss:[{r + 0x40 + 4 * i:#x}], eax"]
    lines += [f"mov dword ptr ss:[{r:#x}], {RECORDED:#x}", far_jmp(CODE0_SEL, EXIT)]
    return "\n".join(lines)


def handler_code() -> bytes:
    """256 stubs (push imm32; jmp rel32: 10 bytes each), then ``record``."""
    code = bytearray()
    for vector in range(256):
        here = HANDLERS + len(code)
        code += struct.pack("<BIBi", 0x68, vector, 0xE9, RECORD - (here + 10))
    assert len(code) <= RECORD - HANDLERS
    code += bytes(RECORD - HANDLERS - len(code))
    return bytes(code) + assemble(record_routine(), RECORD)


_HANDLERS: Optional[bytes] = None


def stub(vector: int) -> int:
    """The linear address of vector's stub."""
    return HANDLERS + 10 * vector


DONE = f"push 0xffffffff; jmp {RECORD:#x}"
"""How code at CPL 0 ends a case that expects no event."""


@dataclass
class Layout:
    """One case's machine before it is encoded: edit the parts, then ``case()``."""

    name: str
    family: str
    gdt: List[bytes] = field(default_factory=list)
    idt: List[bytes] = field(default_factory=list)
    idt_limit: int = 256 * 8 - 1
    tss_main: Dict[str, int] = field(default_factory=dict)
    tss_df: Dict[str, int] = field(default_factory=dict)
    code0: str = ""
    code3: str = ""
    code_task: str = ""  # the second task's code (TSS_DF's EIP becomes TASK_CODE)
    tss16_df: Optional[Dict[str, int]] = None  # TSS_DF as a 16-bit TSS (TSS16_FIELDS)
    paging: bool = False
    cr0_extra: int = 0
    ptes: Dict[int, int] = field(default_factory=dict)  # linear page -> PTE
    pdes: Dict[int, int] = field(default_factory=dict)  # PDE index (1-1023) -> PDE
    cr4: int = 0
    extra_code: Dict[int, str] = field(default_factory=dict)  # address -> code
    io_bitmap: bytes = b""  # after TSS_MAIN's 104 bytes; the TSS limit then covers it
    extra_dumps: List[Tuple[str, int, int]] = field(default_factory=list)
    note: str = ""

    def __post_init__(self) -> None:
        flat = 0xFFFFF
        self.gdt = [bytes(8)] * GDT_ENTRIES
        self.gdt[1] = descriptor(0, flat, 0x9A)   # 0x08 code, DPL 0
        self.gdt[2] = descriptor(0, flat, 0x92)   # 0x10 data, DPL 0
        self.gdt[3] = descriptor(0, flat, 0xFA)   # 0x1B code, DPL 3
        self.gdt[4] = descriptor(0, flat, 0xF2)   # 0x23 data, DPL 3
        self.gdt[5] = descriptor(TSS_MAIN, 103, 0x80 | TSS32_AVAILABLE, 0)
        self.gdt[6] = descriptor(TSS_DF, 103, 0x80 | TSS32_AVAILABLE, 0)
        self.gdt[7] = descriptor(HANDLERS, flat, 0x9A)  # 0x38: for 16-bit gates' offsets
        self.idt = [gate(CODE0_SEL, stub(v), INT32) for v in range(256)]
        self.tss_main = {"esp0": STACK0_TOP, "ss0": DATA0_SEL, "cr3": PAGE_DIRECTORY}
        # The #DF task starts at vector 8's stub on its own stack (SDM Vol. 3A 6.15,
        # "Interrupt 8": a task gate is the way to a known-good stack).
        self.tss_df = {"eip": stub(8), "eflags": 0x2, "esp": STACK_DF_TOP, "cs": CODE0_SEL,
                       "ss": DATA0_SEL, "ds": DATA0_SEL, "es": DATA0_SEL,
                       "fs": DATA0_SEL, "gs": DATA0_SEL, "cr3": PAGE_DIRECTORY}
        self.ptes = {page: page | PTE_P | PTE_RW | PTE_US for page in range(0, 1 << 22, 4096)}

    def set_gate(self, vector: int, kind: int, dpl: int = 0, present: bool = True) -> None:
        """Vector's gate of ``kind`` to its stub (16-bit gates through selector 0x38,
        whose base is HANDLERS, because their offset has 16 bits)."""
        if kind == TASK_GATE:
            self.idt[vector] = gate(TSS_DF_SEL, 0, kind, dpl, present)
        elif kind in (INT16, TRAP16):
            self.idt[vector] = gate(HANDLER16_SEL, stub(vector) - HANDLERS, kind, dpl, present)
        else:
            self.idt[vector] = gate(CODE0_SEL, stub(vector), kind, dpl, present)

    def case(self) -> Case:
        """The encoded case: every structure written afresh, stacks patterned, RESULTS
        zeroed; dumps: RESULTS, both TSSs, the TSS descriptors, plus the case's own."""
        writes: List[Tuple[int, object]] = [
            (GDT, b"".join(self.gdt)),
            (IDT, b"".join(self.idt)),
            (TSS_MAIN, tss32(**self.tss_main)),
            (TSS_DF, tss32(**dict(self.tss_df, **({"eip": TASK_CODE} if self.code_task
                                                   else {})))),
            (HANDLERS, handler_code_cached()),
            (RESULTS, (RESULTS_SIZE, 0)),
        ]
        for top in (STACK0_TOP, STACK3_TOP, STACK_DF_TOP):
            writes.append((top - 0x80, (0x100, STACK_PATTERN)))
        if self.code0:
            writes.append((CODE0, assemble(self.code0, CODE0)))
        if self.code3:
            writes.append((CODE3, assemble(self.code3, CODE3)))
        if self.code_task:
            writes.append((TASK_CODE, assemble(self.code_task, TASK_CODE)))
        if self.tss16_df is not None:  # TSS_DF's descriptor: type 1, limit 0x2B
            self.gdt[TSS_DF_SEL >> 3] = descriptor(TSS_DF, 0x2B, 0x80 | TSS16_AVAILABLE, 0)
            self.gdt[TASK16_CODE_SEL >> 3] = descriptor(LAYOUT_BASE, 0xFFFF, 0x9A, 0x4)
            self.gdt[TASK16_STACK_SEL >> 3] = descriptor(LAYOUT_BASE, 0xFFFF, 0x92, 0x0)
            writes.append((TSS_DF, tss16(**dict(self.tss16_df, **(
                {"ip": TASK_CODE - LAYOUT_BASE} if self.code_task else {})))))
            writes[0] = (GDT, b"".join(self.gdt))
        for address, source in sorted(self.extra_code.items()):
            writes.append((address, assemble(source, address)))
        if self.io_bitmap:
            writes.append((TSS_MAIN + 104, self.io_bitmap))
        dumps = [("results", RESULTS, RESULTS_SIZE), ("tss_main", TSS_MAIN, 104),
                 ("tss16_df", TSS_DF, 44) if self.tss16_df is not None else
                 ("tss_df", TSS_DF, 104), ("gdt_tss", GDT + 5 * 8, 16)]
        cr0 = CR0_PE | CR0_ET | self.cr0_extra
        if self.paging:
            cr0 |= CR0_PG
            writes.append((PAGE_DIRECTORY, struct.pack("<I", self.pdes.get(0, PAGE_TABLE | 7))))
            writes.append((PAGE_DIRECTORY + 4, (4092, 0)))
            for index, pde in sorted(self.pdes.items()):
                if index:
                    writes.append((PAGE_DIRECTORY + 4 * index, struct.pack("<I", pde)))
                    dumps.append((f"pde{index}", PAGE_DIRECTORY + 4 * index, 4))
            writes.append((PAGE_TABLE, b"".join(
                struct.pack("<I", self.ptes[page]) for page in range(0, 1 << 22, 4096))))
            dumps.append(("pde0", PAGE_DIRECTORY, 4))
            dumps.append(("ptes", PAGE_TABLE + (GDT >> 12) * 4, 14 * 4))
        return Case(
            self.name, self.family, cr0=cr0, cr3=PAGE_DIRECTORY, cr4=self.cr4,
            gdtr=(GDT, GDT_ENTRIES * 8 - 1), idtr=(IDT, self.idt_limit),
            tr=TSS_MAIN_SEL, ldtr=0, entry=(CODE0_SEL, CODE0), stack=(DATA0_SEL, STACK0_TOP),
            writes=writes, dumps=dumps + self.extra_dumps, note=self.note)


def handler_code_cached() -> bytes:
    global _HANDLERS
    if _HANDLERS is None:
        _HANDLERS = handler_code()
    return _HANDLERS


def to_ring3(eflags: int = 0x202, ds: int = DATA3_SEL, es: int = DATA3_SEL) -> str:
    """CPL 0 code that loads DS/ES and IRETs to CODE3 at CPL 3 on the ring-3 stack."""
    return "\n".join([f"mov ax, {ds:#x}", "mov ds, ax", f"mov ax, {es:#x}", "mov es, ax",
                      f"push {DATA3_SEL:#x}", f"push {STACK3_TOP:#x}", f"push {eflags:#x}",
                      f"push {CODE3_SEL:#x}", f"push {CODE3:#x}", "iretd"])


def far(opcode: int, selector: int, offset: int = 0) -> str:
    """JMP (EA) or CALL (9A) ptr16:32 as data (see ``far_jmp``)."""
    return (f".byte {opcode:#x}; .long {offset:#x}; .byte {selector & 0xFF:#x}, "
            f"{selector >> 8:#x}")


CALL_GATE32 = 0xC


def call_gate(selector: int, offset: int, dpl: int, params: int = 0) -> bytes:
    """A 32-bit call gate (SDM Vol. 3A, Figure 5-8): the parameter count in byte 4."""
    return struct.pack("<HHBBH", offset & 0xFFFF, selector, params, 0x80 | dpl << 5 |
                       CALL_GATE32, offset >> 16)
