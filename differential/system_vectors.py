"""``x86lab vectors generate --version 2``: version-2 vectors of the system and x87 forms.

Each group draws single-instruction cases in a machine that version 1 cannot state and
writes them with the oracle that decided them, named in the file header (``oracle``)
and in every vector's ``final.notes.oracle``:

- ``descriptors`` (MOV Sreg, LAR, LSL, VERR, VERW on a random GDT descriptor),
  ``paging`` and ``paging-user`` (a load or store through random 32-bit page-table
  entries, at CPL 0 and at CPL 3) and
  ``control`` (MOV to/from CRn, CLTS, SMSW, LMSW, SGDT/SIDT/LGDT/LIDT, SLDT/STR/LLDT/LTR,
  RDMSR/WRMSR), and ``privileged``, ``fast-calls``, ``debug``, ``single-step`` and
  ``breakpoints`` (INVLPG, INVD, WBINVD, RDPMC, SYSENTER, SYSEXIT, MOV DRn, the
  single-step trap, execute breakpoints:
  ``differential/privileged_vectors.py``): **Unicorn**, kept only where Unicorn and the
  reference agree on all Unicorn shows. Unicorn reports no error codes and shows only
  segment selectors, so the error codes and the segment hidden parts written are the
  reference's (the header's ``reference_decides`` says so). Where every difference is one
  of Unicorn's listed bugs, the case goes to ``decided-by-sdm`` instead: the reference
  decides there, by the SDM text the entry cites.
- ``delivery`` (INT n, INT3, INTO, UD2, DIV, a faulting MOV Sreg, delivered through an
  interrupt or trap gate, at CPL 0 and from CPL 3 with the TSS stack switch): **the
  reference**. Unicorn never delivers through the IDT, and the bare-metal image
  (``differential/bare_metal``) runs the same mechanisms on QEMU and Bochs as programs,
  not as these vectors; the SDM decides, through the unit tests of
  ``reference/tests/test_system_interrupts.py``.
- ``x87`` (every x87 row of the table): **this machine's CPU** through the native x87
  stepper (``reference/x87/tests/native_x87.c``: FRSTOR, the instruction, FNSAVE), kept
  only where the reference gives the very same bits; the header names the CPU.

Paths: ``OUT/GROUP/prot32/FORM.jsonl.gz``.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from differential.privileged_vectors import (
    BREAKPOINT_FORMS,
    DEBUG_FORMS,
    FAST_CALL_FORMS,
    PRIVILEGED_FORMS,
    SINGLE_STEP_FORMS,
    draw_breakpoint,
    draw_debug,
    draw_fast_call,
    draw_privileged,
    draw_single_step,
)
from differential.system_machine import (
    CODE,
    DATA,
    FLAT_GDT,
    GDT,
    HANDLER,
    IDT,
    INNER,
    INNER_TOP,
    LDT,
    LOW_PT,
    MODE,
    PD,
    PT,
    STACK,
    STACK_TOP,
    TSS,
    Drawn,
    descriptor,
    draw_regs,
    flat_segments,
    gate,
    gdt_state,
    make_case,
    page_with,
    table_image,
)
from ground.case import GPRS, PAGE_SIZE, Case, Exc, Outcome
from ground.compare import compare
from vectors.files import write_vectors
from vectors.format import SYSTEM_VERSION, make_header
from vectors.system_run import Inexpressible, run_reference, run_unicorn
from vectors.system_state import (
    PROT32_CR0,
    X87,
    Segment,
    SystemState,
    SystemVector,
    compare_states,
)

GROUPS = ("descriptors", "paging", "paging-user", "control", "privileged", "fast-calls",
          "debug", "single-step", "breakpoints", "delivery", "x87")
ORACLES = {"descriptors": "unicorn", "paging": "unicorn", "paging-user": "unicorn",
           "control": "unicorn", "privileged": "unicorn", "fast-calls": "unicorn",
           "debug": "unicorn", "single-step": "unicorn", "breakpoints": "unicorn",
           "delivery": "reference",
           "x87": "native"}
REFERENCE_DECIDES = {"unicorn": ["exception error codes (Unicorn reports none)",
                                 "segment hidden parts (Unicorn shows selectors only)"]}


class SystemGenerateError(RuntimeError):
    """A group that does not exist, or an oracle that cannot run here."""


@dataclass
class SystemSummary:
    files: int = 0
    vectors: int = 0
    by_group: Dict[str, int] = field(default_factory=dict)
    dropped: Dict[str, int] = field(default_factory=dict)  # group -> disagreeing draws



# --- descriptors ------------------------------------------------------------------------

DESCRIPTOR_CODES = {"MOV_Sw_Ew": ("8e d8", "8e d0", "8e c0", "8e e0"),
                    "LAR_Gv_Ew": ("0f 02 c8",), "LSL_Gv_Ew": ("0f 03 d0",),
                    "VERR_Ew": ("0f 00 e0",), "VERW_Ew": ("0f 00 e8",)}


def _random_descriptor(rng: random.Random) -> bytes:
    """Any descriptor; half a plausible ring-0 data segment, so loads succeed often."""
    plausible = rng.random() < 0.5
    kind = rng.choice((0x2, 0x3, 0x6, 0x0, 0xA, 0xE)) if plausible else rng.randrange(16)
    return descriptor(rng.choice((0x2000, 0x12345000)), rng.getrandbits(20), kind,
                      dpl=0 if plausible else rng.randrange(4),
                      s=1 if plausible else rng.randrange(2),
                      present=int(rng.random() < 0.8), db=rng.randrange(2), g=rng.randrange(2))


def draw_descriptors(form: str, rng: random.Random, number: int) -> Drawn:
    entries = dict(FLAT_GDT)
    entries[0x40] = _random_descriptor(rng)
    memory, state = gdt_state(entries)
    code = bytes.fromhex(rng.choice(DESCRIPTOR_CODES[form]))
    selector = rng.choice((0x40 | rng.randrange(4), 0x40, 0x40, 0, 0x48, 0x44, 0x10, 0x28))
    regs = draw_regs(rng, eax=rng.getrandbits(16) << 16 | selector)
    return Drawn(form, make_case(form, f"{form} #{number}", code, regs, memory), state)


# --- paging -----------------------------------------------------------------------------

def draw_paging(form: str, rng: random.Random, number: int, cpl: int = 0,
                extra: Tuple[int, ...] = ()) -> Drawn:
    """PD entry 0 -> a page table identity-mapping the low pages; PD entry 1 a 4 MiB page
    or a page table with one entry for 0x400000, random P/RW/US/A/D/G bits; CR4.PSE/PGE
    and CR0.WP random; one MOV moffs32 load or store at 0x400000 + a small offset, at
    CPL ``cpl`` (3: flat ring-3 segments from a GDT, so the U/S bits decide); ``extra``
    pages are identity-mapped too (the IDT, TSS and ring-0 stack of a delivery)."""
    low = bytearray(PAGE_SIZE)
    pages = (0, CODE, DATA, STACK, PD, PT, LOW_PT) + ((GDT,) if cpl else ()) + extra
    for base in pages:
        low[4 * (base >> 12):4 * (base >> 12) + 4] = struct.pack("<I", base | 0x7)
    pd = bytearray(PAGE_SIZE)
    pd[0:4] = struct.pack("<I", LOW_PT | 0x7)
    large = rng.random() < 0.4
    flags = rng.getrandbits(9) & 0x167 | (0x80 if large else 0) | int(rng.random() < 0.85)
    offset = rng.randrange(0, 0x40, 4)
    # Only the accessed dword of the target page holds drawn bytes: the vector stays short.
    memory = {0: bytes(PAGE_SIZE), DATA: page_with(rng.randbytes(4), offset),
              STACK: bytes(PAGE_SIZE), LOW_PT: bytes(low)}
    if large:
        pd[4:8] = struct.pack("<I", flags)  # frame 0: the 4 MiB page at physical 0
    else:
        pd[4:8] = struct.pack("<I", PT | rng.getrandbits(3) | int(rng.random() < 0.9))
        memory[PT] = page_with(struct.pack("<I", DATA | flags))
    memory[PD] = bytes(pd)
    cr4 = (0x10 if rng.random() < 0.7 else 0) | (0x80 if rng.random() < 0.5 else 0)
    cr0 = 0x80000000 | PROT32_CR0 | (0x10000 if rng.random() < 0.5 else 0)
    opcode = 0xA3 if form == "MOV_Ov_eAX" else 0xA1
    code = bytes([opcode]) + struct.pack("<I", 0x400000 + offset)
    state = SystemState(cpl=cpl, cr0=cr0, cr2=0, cr3=PD, cr4=cr4)
    if cpl:
        image = table_image(FLAT_GDT)
        memory[GDT] = page_with(image)
        state = replace(state, gdtr=(GDT, len(image) - 1), segments=flat_segments(cpl))
    regs = draw_regs(rng)
    return Drawn(form, make_case(form, f"{form} #{number}", code, regs, memory), state)


def draw_user_paging(form: str, rng: random.Random, number: int) -> Drawn:
    return draw_paging(form, rng, number, cpl=3)


# --- control ----------------------------------------------------------------------------

MSRS = (0x174, 0x175, 0x176)


def _control_code(form: str, rng: random.Random) -> Tuple[bytes, Dict[str, int]]:
    data = DATA + rng.randrange(0, 0x100)
    disp = struct.pack("<I", data)
    reg = rng.randrange(8)
    if form == "MOV_Rd_Cd":
        return bytes([0x0F, 0x20, 0xC0 | rng.choice((0, 2, 3, 4)) << 3 | reg]), {}
    if form == "MOV_Cd_Rd":
        number = rng.choice((0, 2, 3, 4))
        value = {0: PROT32_CR0 | rng.choice((0, 0x8, 0x4, 0x2, 0x10000, 0x40000, 0x60000000)),
                 2: rng.getrandbits(32), 3: rng.getrandbits(32) & 0xFFFFF018,
                 4: rng.choice((0, 0x10, 0x80, 0x90, 0x4, 0x200, 0x1000))}[number]
        return bytes([0x0F, 0x22, 0xC0 | number << 3 | reg]), {GPRS[reg]: value}
    if form in ("SGDT_Ms", "SIDT_Ms", "LGDT_Ms", "LIDT_Ms"):
        digit = ("SGDT_Ms", "SIDT_Ms", "LGDT_Ms", "LIDT_Ms").index(form)
        prefix = b"\x66" if form.startswith("L") and rng.random() < 0.3 else b""
        return prefix + bytes([0x0F, 0x01, 0x05 | digit << 3]) + disp, {}
    if form == "SMSW_Evw":
        return bytes([0x0F, 0x01, 0xE0 | reg]), {}
    if form == "LMSW_Ew":
        return bytes([0x0F, 0x01, 0xF0 | reg]), {GPRS[reg]: rng.getrandbits(16) & 0xFFFE | 1}
    if form == "CLTS":
        return bytes.fromhex("0f 06"), {}
    if form in ("SLDT_Evw", "STR_Evw"):
        return bytes([0x0F, 0x00, (0xC0 if form == "SLDT_Evw" else 0xC8) | reg]), {}
    if form in ("LLDT_Ew", "LTR_Ew"):
        sel = rng.choice((0x30, 0x28, 0x10, 0, 0x30 | rng.randrange(4), 0x28 | rng.randrange(4)))
        return bytes([0x0F, 0x00, (0xD0 if form == "LLDT_Ew" else 0xD8)]), {"eax": sel}
    if form in ("RDMSR", "WRMSR"):
        index = rng.choice(MSRS + MSRS + (rng.getrandbits(32), 0x1B))
        return bytes.fromhex("0f 32" if form == "RDMSR" else "0f 30"), {"ecx": index}
    raise SystemGenerateError(f"no control drawer for {form}")


CONTROL_FORMS = ("MOV_Rd_Cd", "MOV_Cd_Rd", "CLTS", "SMSW_Evw", "LMSW_Ew", "SGDT_Ms",
                 "SIDT_Ms", "LGDT_Ms", "LIDT_Ms", "SLDT_Evw", "STR_Evw", "LLDT_Ew", "LTR_Ew",
                 "RDMSR", "WRMSR")


def draw_control(form: str, rng: random.Random, number: int) -> Drawn:
    code, fixed = _control_code(form, rng)
    undefined_dest = ""
    if form == "SMSW_Evw":
        # SDM Vol. 2B, SMSW: to a 32-bit register, "the high-order 16 bits are undefined".
        undefined_dest = f"reg:{GPRS[code[-1] & 7]}:0xffff0000"
    memory, _ = gdt_state(FLAT_GDT)
    memory[DATA] = rng.randbytes(PAGE_SIZE)
    memory[LDT] = bytes(PAGE_SIZE)
    memory[TSS] = bytes(PAGE_SIZE)
    image = table_image(FLAT_GDT)
    cr0 = PROT32_CR0 | rng.choice((0, 0x8, 0x4, 0x10000))
    cr4 = rng.choice((0, 0x10, 0x90))
    state = SystemState(cpl=0, cr0=cr0, cr2=rng.getrandbits(32), cr3=0x00042000, cr4=cr4,
                        gdtr=(GDT, len(image) - 1), idtr=(IDT, 0x7FF),
                        ldtr=Segment(0x30, LDT, 0x17, 0x8200),
                        tr=Segment(0x28, TSS, 103, 0x8B00),
                        msrs={index: rng.getrandbits(32) for index in MSRS})
    regs = draw_regs(rng, **fixed)
    case = replace(make_case(form, f"{form} #{number}", code, regs, memory),
                   undefined_dest=undefined_dest)
    return Drawn(form, case, state)


# --- delivery ---------------------------------------------------------------------------

DELIVERY_CODES = {"INT_Ib": None, "INT3": "cc", "INTO": "ce", "UD2": "0f 0b",
                  "DIV_Ev": "f7 f1", "MOV_Sw_Ew": "8e d8", "MOV_eAX_Ov": None}


def draw_delivery(form: str, rng: random.Random, number: int) -> Drawn:
    """The instruction raises an exception or interrupt that goes through an interrupt
    or trap gate (DPL 3, so INT n is allowed from ring 3) to a ring-0 handler; from CPL 3
    the TSS's ring-0 stack is switched to."""
    cpl = rng.choice((0, 3))
    if form == "MOV_eAX_Ov":
        return _paging_delivery(form, rng, number, cpl)
    vector = rng.choice((0x20, 0x80, 0x41)) if form == "INT_Ib" else \
        {"INT3": 3, "INTO": 4, "UD2": 6, "DIV_Ev": 0, "MOV_Sw_Ew": 13}[form]
    code = bytes([0xCD, vector]) if form == "INT_Ib" else \
        bytes.fromhex(DELIVERY_CODES[form])  # type: ignore[arg-type]
    idt = bytearray(PAGE_SIZE)
    kind = rng.choice((0xE, 0xF))  # interrupt gate (clears IF) or trap gate
    idt[8 * vector:8 * vector + 8] = gate(0x08, HANDLER, kind, dpl=3)  # the others: absent
    memory, _ = gdt_state(FLAT_GDT)
    tss = bytearray(PAGE_SIZE)
    tss[4:8] = struct.pack("<I", INNER_TOP)
    tss[8:10] = struct.pack("<H", 0x10)
    memory.update({IDT: bytes(idt), TSS: bytes(tss), INNER: bytes(PAGE_SIZE)})
    fixed: Dict[str, int] = {}
    eflags = 0x202 | (rng.getrandbits(12) & 0x8D5)
    if form == "INTO":
        eflags |= 0x800
    if form == "DIV_Ev":
        fixed = {"ecx": 0, "edx": rng.getrandbits(32)}
    if form == "MOV_Sw_Ew":
        fixed = {"eax": rng.choice((0x40, 0x44, 0x08, 0x28, 0x1003))}  # #GP(selector)
    image = table_image(FLAT_GDT)
    state = SystemState(cpl=cpl, cr0=PROT32_CR0, gdtr=(GDT, len(image) - 1),
                        idtr=(IDT, 0x7FF), tr=Segment(0x28, TSS, 103, 0x8B00),
                        segments=flat_segments(cpl))
    regs = draw_regs(rng, eflags=eflags, **fixed)
    return Drawn(form, make_case(form, f"{form} #{number}", code, regs, memory), state, "idt")


def _paging_delivery(form: str, rng: random.Random, number: int, cpl: int) -> Drawn:
    """A page fault delivered: the paging group's load, with the IDT, TSS and ring-0
    stack mapped; #PF goes through an interrupt or trap gate with its error code, CR2
    set (cases without a fault are not kept: ``_by_reference``)."""
    drawn = draw_paging(form, rng, number, cpl, extra=(GDT, IDT, TSS, INNER))
    idt = bytearray(PAGE_SIZE)
    idt[8 * 14:8 * 15] = gate(0x08, HANDLER, rng.choice((0xE, 0xF)))
    tss = bytearray(PAGE_SIZE)
    tss[4:8] = struct.pack("<I", INNER_TOP)
    tss[8:10] = struct.pack("<H", 0x10)
    image = table_image(FLAT_GDT)
    memory = dict(drawn.case.memory)
    memory.update({GDT: page_with(image), IDT: bytes(idt), TSS: bytes(tss),
                   INNER: bytes(PAGE_SIZE)})
    state = replace(drawn.state, gdtr=(GDT, len(image) - 1), idtr=(IDT, 0x7FF),
                    tr=Segment(0x28, TSS, 103, 0x8B00), segments=flat_segments(cpl))
    return Drawn(form, replace(drawn.case, memory=memory), state, "idt")


# --- deciding ---------------------------------------------------------------------------

Decision = Tuple[Optional[Tuple[Outcome, SystemState]], str]


def _agreed_with_unicorn(drawn: Drawn) -> Decision:
    """The reference's outcome when Unicorn agrees on everything Unicorn shows (second
    item ""), or when every difference is a listed Unicorn bug (second item: its id; the
    SDM decides there, through the reference); (None, "") otherwise."""
    from differential.known import find_known, load_known

    vector = SystemVector(drawn.state, drawn.state, drawn.delivery)
    try:
        mine, my_state = run_reference(drawn.case, vector)
        theirs, their_state = run_unicorn(drawn.case, vector)
    except Inexpressible:
        return None, ""
    if "unimplemented" in mine.notes:
        return None, ""
    differences = compare(drawn.case, theirs, mine) + \
        compare_states(my_state, their_state, ("segments.hidden",))
    if not differences:
        return (mine, my_state), ""
    known = find_known(load_known(), drawn.case, differences, theirs.notes, "unicorn")
    if known is None or not known.id:
        return None, ""
    return (mine, my_state), known.id


def _by_reference(drawn: Drawn) -> Decision:
    vector = SystemVector(drawn.state, drawn.state, drawn.delivery)
    try:
        mine, my_state = run_reference(drawn.case, vector)
    except Inexpressible:
        return None, ""
    if "unimplemented" in mine.notes or mine.exception is None and drawn.delivery == "idt" \
            and drawn.form not in ("INT_Ib", "INT3", "INTO"):
        return None, ""
    return (mine, my_state), ""


DRAWERS: Dict[str, Tuple[Sequence[str], Callable[[str, random.Random, int], Drawn]]] = {
    "descriptors": (tuple(DESCRIPTOR_CODES), draw_descriptors),
    "paging": (("MOV_eAX_Ov", "MOV_Ov_eAX"), draw_paging),
    "paging-user": (("MOV_eAX_Ov", "MOV_Ov_eAX"), draw_user_paging),
    "control": (CONTROL_FORMS, draw_control),
    "delivery": (tuple(DELIVERY_CODES), draw_delivery),
    "privileged": (PRIVILEGED_FORMS, draw_privileged),
    "fast-calls": (FAST_CALL_FORMS, draw_fast_call),
    "debug": (DEBUG_FORMS, draw_debug),
    "single-step": (SINGLE_STEP_FORMS, draw_single_step),
    "breakpoints": (BREAKPOINT_FORMS, draw_breakpoint),
}


def _sparse(case: Case) -> Case:
    """Pages of random bytes become zero pages but for the bytes the reference read."""
    from vectors.sparse import reads

    # reads() runs the version-1 machine; for the bytes an instruction's operand reads
    # that is enough (its address does not depend on the system state in these groups),
    # and tables and stacks are drawn zero-filled already, so nothing is lost: the case
    # is decided again after shrinking.
    seen = reads(case)
    memory = {}
    for base, data in case.memory.items():
        if base != DATA:
            memory[base] = data
            continue
        page = bytearray(PAGE_SIZE)
        for address in seen:
            if base <= address < base + PAGE_SIZE:
                page[address - base] = data[address - base]
        memory[base] = bytes(page)
    return replace(case, memory=memory)


Made = List[Tuple[Case, Outcome, SystemVector]]
SDM_GROUP = "decided-by-sdm"  # Unicorn's listed bugs: the reference, by the SDM, decides
SDM_WHY = ("Unicorn departs from the SDM here, as the known-divergence entry named in each "
           "vector's final.notes.known says; the reference follows the SDM")


def system_group(group: str, per_form: int, seed: int, summary: SystemSummary
                 ) -> Iterator[Tuple[str, Made, Made]]:
    """(form, vectors, vectors of Unicorn's listed bugs) for one of the groups decided by
    Unicorn or the reference."""
    forms, drawer = DRAWERS[group]
    decide = _by_reference if ORACLES[group] == "reference" else _agreed_with_unicorn
    for form in forms:
        rng = random.Random(f"{seed}/{group}/{form}")
        kept: Made = []
        bugs: Made = []
        for number in range(per_form * 6):
            if len(kept) == per_form:
                break
            drawn = drawer(form, rng, number)
            if group == "control":
                drawn = replace(drawn, case=_sparse(drawn.case))
            decided, known = decide(drawn)
            if decided is None or (known and len(bugs) == per_form):
                summary.dropped[group] = summary.dropped.get(group, 0) + 1
                continue
            outcome, final = decided
            notes = dict(outcome.notes)
            notes["oracle"] = "reference" if known else ORACLES[group]
            if known:
                notes["known"] = known
            made = (drawn.case, replace(outcome, notes=notes),
                    SystemVector(drawn.state, final, drawn.delivery))
            (bugs if known else kept).append(made)
        yield form, kept, bugs


# --- x87 --------------------------------------------------------------------------------

def x87_group(per_form: int, seed: int, summary: SystemSummary
              ) -> Iterator[Tuple[str, Made, Made]]:
    """(form, vectors) for every x87 row, decided by this CPU (native_x87.c)."""
    from reference.x87.tests.cases import encode, x87_forms
    from reference.x87.tests.native import (
        EBX_OFFSET,
        X87Case,
        masked,
        run_native,
        run_reference,
    )

    for form in x87_forms():
        rng = random.Random(f"{seed}/x87/{form.name}")
        drawn = [encode(form, rng) for _ in range(per_form * 4)]
        drawn = [_x87_sparse(c, EBX_OFFSET, X87Case) for c in drawn]
        kept: List[Tuple[Case, Outcome, SystemVector]] = []
        for number, (case, native) in enumerate(zip(drawn, run_native(drawn))):
            if len(kept) == per_form:
                break
            # FXSAVE's ignored ranges (MXCSR_MASK, the XMM area: implementation dependent
            # with CR4.OSFXSR clear) are zero on both sides and undefined in the vector.
            native = masked(native, case)
            mine = masked(run_reference(case), case)
            if mine.compared() != native.compared():
                summary.dropped["x87"] = summary.dropped.get("x87", 0) + 1
                continue
            kept.append(_x87_vector(form.name, number, case, native, EBX_OFFSET))
        yield form.name, kept, []


def _x87_sparse(case: object, ebx_offset: int, factory: type) -> object:
    """The case with its data buffer zero but for the bytes the instruction touches (the
    reference's trace of reads and writes), so the vector lists only those."""
    from reference import Cpu, SparseMemory

    touched: set = set()

    class Tracing(SparseMemory):
        def read_bytes(self, address: int, count: int, access: str = "read") -> bytes:
            touched.update(range(address, address + count))
            return super().read_bytes(address, count, access)

        def read_int(self, address: int, count: int, access: str = "read") -> int:
            touched.update(range(address, address + count))
            return super().read_int(address, count, access)

        def write_bytes(self, address: int, data: bytes) -> None:
            touched.update(range(address, address + len(data)))
            super().write_bytes(address, data)

        def write_int(self, address: int, count: int, value: int) -> None:
            touched.update(range(address, address + count))
            super().write_int(address, count, value)

        def exchange(self, address: int, count: int, value: int) -> bytes:
            touched.update(range(address, address + count))  # a store: the bytes it covers
            return super().exchange(address, count, value)

        def code_window(self, address: int) -> bytes:
            return b""  # each instruction byte fetched, and noted, on its own

    memory = Tracing()
    memory.map(CODE, page_with(case.code, 0))  # type: ignore[attr-defined]
    memory.map(DATA, page_with(case.data))  # type: ignore[attr-defined]
    memory.map(STACK, bytes(PAGE_SIZE))
    cpu = Cpu(memory, MODE)
    cpu.set_reg("eip", CODE)
    cpu.set_reg("ebx", DATA + ebx_offset)
    state = case.state  # type: ignore[attr-defined]
    cpu.fpu.control, cpu.fpu.status_word = state.control, state.status
    for i in range(8):
        cpu.fpu.regs[cpu.fpu.physical(i)] = state.st[i]
        cpu.fpu.empty[cpu.fpu.physical(i)] = state.empty[i]
    cpu.step()
    data = bytearray(len(case.data))  # type: ignore[attr-defined]
    for address in touched:
        if DATA <= address < DATA + len(data):
            data[address - DATA] = case.data[address - DATA]  # type: ignore[attr-defined]
    return replace(case, data=bytes(data))  # type: ignore[type-var]


# The FXSAVE image bytes a vector leaves open (SDM Vol. 2A, FXSAVE: the non-64-bit-mode
# layout table and its notes): with CR4.OSFXSR clear, as in these vectors, whether MXCSR
# (24-27) and the XMM registers (160-287) are saved "is implementation dependent";
# MXCSR_MASK (28-31) is the CPU's own; bytes 10-15 of each ST slot and 288-511 are
# reserved or for software.
FXSAVE_OPEN = ((24, 32), *((32 + 16 * i + 10, 32 + 16 * i + 16) for i in range(8)),
               (160, 512))


def _x87_from(state: object, tags: int) -> X87:
    return X87(state.control, state.status, tags, tuple(state.st))  # type: ignore


def _tag(value: int) -> int:
    """The tag FSTENV/FNSAVE store for a non-empty register (SDM Vol. 1, 8.1.7 and
    Figure 8-7): 01 zero; 10 special (NaN, infinity, denormal, or an encoding with the
    integer bit clear and a non-zero exponent: unsupported); 00 valid."""
    exponent, significand = value >> 64 & 0x7FFF, value & ((1 << 64) - 1)
    if exponent == 0:
        return 1 if significand == 0 else 2
    if exponent == 0x7FFF or not significand >> 63:
        return 2
    return 0


def _tag_word(state: object) -> int:
    """The full tag word of a drawn state, as FSTENV would store it: an initial state's
    is read only as "empty or not", but a faulting instruction's final state is this."""
    top = state.status >> 11 & 7  # type: ignore[attr-defined]
    word = 0
    for i, empty in enumerate(state.empty):  # type: ignore[attr-defined]
        tag = 3 if empty else _tag(state.st[i])  # type: ignore[attr-defined]
        word |= tag << 2 * ((top + i) & 7)
    return word


def _x87_vector(form: str, number: int, case: object, native: object,
                ebx_offset: int) -> Tuple[Case, Outcome, SystemVector]:
    """One x87 case and the CPU's result as a vector (flat prot32, CR0 = PE MP ET NE as
    under Linux). The native stepper reports EAX and the status flags; the x87
    instructions write no other general register (SDM Vol. 2A, each Operation), so the
    others are written unchanged."""
    from reference.flags import STATUS

    c = case
    memory = {CODE: page_with(c.code, 0), DATA: page_with(c.data),  # type: ignore[attr-defined]
              STACK: bytes(PAGE_SIZE)}
    regs = {name: 0 for name in GPRS}
    regs.update(eax=c.eax, ebx=DATA + ebx_offset, esp=STACK_TOP, eip=CODE,  # type: ignore
                eflags=(c.eflags & STATUS) | 2)  # type: ignore[attr-defined]
    x87 = _x87_from(c.state, _tag_word(c.state))  # type: ignore[attr-defined]
    initial = SystemState(cr0=PROT32_CR0, x87=x87)
    n = native
    if n.state is None:  # type: ignore[attr-defined]
        outcome = Outcome(regs=dict(regs), memory=dict(memory), exception=Exc(16, "fault"),
                          notes={"oracle": "native"})
        final = initial
    else:
        final_regs = dict(regs)
        final_regs.update(eax=n.eax, eip=CODE + len(c.code),  # type: ignore[attr-defined]
                          eflags=(n.eflags & STATUS) | 2)  # type: ignore[attr-defined]
        after = dict(memory)
        after[DATA] = page_with(n.data)  # type: ignore[attr-defined]
        outcome = Outcome(regs=final_regs, memory=after, notes={"oracle": "native"})
        final = SystemState(cr0=PROT32_CR0,
                            x87=_x87_from(n.state, n.tag_word))  # type: ignore[attr-defined]
    undefined = ""
    if form == "FXSAVE_M":  # 0F AE 43 disp8: the image at EBX + disp8
        at = DATA + ebx_offset + c.code[-1]  # type: ignore[attr-defined]
        undefined = ",".join(f"mem:{at + start:#x}:{end - start}"
                             for start, end in FXSAVE_OPEN)
    vector = Case(name=f"{form} #{number}", mode=MODE, code=c.code, regs=regs,  # type: ignore
                  memory=memory, form=form, undefined_dest=undefined)
    from reference.isa.table import BY_NAME

    return vector, outcome, SystemVector(initial, final,
                                         undefined_fsw=BY_NAME[form].fpu_undefined)


# --- writing ----------------------------------------------------------------------------

def generate_system(groups: Sequence[str], per_form: int, seed: int, out: Path,
                    progress: Optional[Callable[[], None]] = None) -> SystemSummary:
    """Write ``out/GROUP/prot32/FORM.jsonl.gz`` for each group; return the counts."""
    import unicorn

    from differential.cpu_identity import this_cpu

    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise SystemGenerateError(f"unknown group(s) {', '.join(bad)}; choose from "
                                  f"{', '.join(GROUPS)}")
    summary = SystemSummary()
    command = (f"x86lab vectors generate --version 2 --groups {','.join(groups)} "
               f"--per-form {per_form} --seed {seed}")
    for group in groups:
        oracle = ORACLES[group]
        meta: Dict[str, object] = {"group": group, "oracle": oracle, "seed": seed,
                                   "generator": command, "unicorn": unicorn.__version__}
        if oracle == "native":
            meta["cpu"] = this_cpu().as_dict()
        if oracle in REFERENCE_DECIDES:
            meta["reference_decides"] = REFERENCE_DECIDES[oracle]
        if oracle == "reference":
            meta["why_reference"] = ("no oracle here can run these vectors with delivery "
                                     "through the IDT: Unicorn reports exceptions to a "
                                     "hook; the bare-metal image (differential/bare_metal) "
                                     "decides the same mechanisms on QEMU and Bochs as "
                                     "programs")
        made = x87_group(per_form, seed, summary) if group == "x87" else \
            system_group(group, per_form, seed, summary)
        for form, kept, bugs in made:
            if progress is not None:
                progress()
            for where, vectors, about in ((group, kept, meta), (SDM_GROUP, bugs, {
                    **meta, "group": SDM_GROUP, "oracle": "reference", "why_reference": SDM_WHY,
                    "drawn_in": group})):
                if not vectors:
                    continue
                about = {k: v for k, v in about.items() if where == group or
                         k not in ("reference_decides",)}
                header = make_header(SYSTEM_VERSION, form=form, mode=MODE,
                                     count=len(vectors), **about)
                path = out / where / MODE / f"{form}.jsonl.gz"
                summary.vectors += write_vectors(path, header, [(c, o) for c, o, _ in vectors],
                                                 [v for _, _, v in vectors])
                summary.files += 1
                summary.by_group[where] = summary.by_group.get(where, 0) + len(vectors)
    return summary
