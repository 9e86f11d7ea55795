"""The case families: each builds its cases on the shared machine of ``layout.py``,
one family per mechanism of SDM Vol. 3A that Unicorn cannot express (delivery through
the IDT, privilege changes, the TSS stack switch, task gates, #DF) or whose error codes
it cannot report. Names are FAMILY/detail and unique; ``all_cases`` gives them in the
fixed order the runner's indices follow.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

from differential.bare_metal.cases_debug import data_breakpoints
from differential.bare_metal.cases_tasks import task_ldt, vm86_gates, vm86_tasks
from differential.bare_metal.image import Case
from differential.bare_metal.layout import (
    CODE0,
    CODE0_SEL,
    CODE3,
    CODE3_SEL,
    CR0_WP,
    DATA0_SEL,
    DATA3_SEL,
    DATA_PAGE,
    DONE,
    GATE_NAMES,
    GDT,
    INT16,
    INT32,
    LAYOUT_BASE,
    PAGE_TABLE,
    PTE_P,
    PTE_RW,
    PTE_US,
    RECORD,
    SPARE_PAGE,
    SPARE_SEL,
    STACK0_TOP,
    STACK3_TOP,
    STACK_DF_TOP,
    TASK16_CODE_SEL,
    TASK16_STACK_SEL,
    TASK_GATE,
    TRAP16,
    TRAP32,
    TSS32_AVAILABLE,
    TSS_DF_SEL,
    TSS_MAIN,
    TSS_MAIN_SEL,
    Layout,
    assemble,
    call_gate,
    descriptor,
    far,
    gate,
    stub,
    to_ring3,
)

SOFTWARE_EVENTS = {"int80": "int 0x80", "int3": "int3", "into": "into",
                   "icebp": ".byte 0xf1"}
SOFTWARE_VECTORS = {"int80": 0x80, "int3": 3, "into": 4, "icebp": 1}
OF_SET = 0x800


def int_same_level() -> List[Case]:
    """INT n/INT3/INTO/ICEBP at CPL 0 through each gate kind: a 3-dword (or 3-word)
    frame on the same stack, IF cleared by interrupt gates only (SDM Vol. 3A 6.12.1)."""
    cases = []
    for kind in (INT32, TRAP32, INT16, TRAP16):
        for event in ("int80", "int3", "into", "icebp"):
            layout = Layout(f"int-same/{GATE_NAMES[kind]}-{event}", "int-same")
            layout.set_gate(SOFTWARE_VECTORS[event], kind)
            layout.code0 = (f"mov eax, 0x11111111; push {0x2C7 | OF_SET:#x}; popfd; "
                            f"{SOFTWARE_EVENTS[event]}; {DONE}")
            cases.append(layout.case())
    return cases


def int_inner_level() -> List[Case]:
    """The same events at CPL 3 to a DPL-3 gate: a switch to SS0:ESP0 of the TSS and a
    5-item frame (SDM Vol. 3A 6.12.1, Figure 6-4); to a DPL-0 gate: #GP(vector*8+2) for
    INT n/INT3/INTO, while ICEBP is delivered without the DPL check (SDM Vol. 2A, INT
    n/INTO/INT3/INT1, Operation: the DPL check is made only for INT n, INT3 and INTO)."""
    cases = []
    for kind in (INT32, TRAP32, INT16, TRAP16):
        for event in ("int80", "int3", "into", "icebp"):
            for dpl in (3, 0):
                if kind in (INT16, TRAP16) and dpl == 0 and event != "icebp":
                    continue  # the same #GP as the 32-bit gates: nothing new
                layout = Layout(f"int-inner/{GATE_NAMES[kind]}-dpl{dpl}-{event}",
                                "int-inner")
                layout.set_gate(SOFTWARE_VECTORS[event], kind, dpl)
                layout.code0 = to_ring3(0x202 | OF_SET)
                layout.code3 = f"mov eax, 0x33333333; {SOFTWARE_EVENTS[event]}; ud2"
                cases.append(layout.case())
    return cases


def faults_with_error_codes() -> List[Case]:
    """#GP, #NP and #PF raised by instructions and by delivery itself, with their error
    codes (SDM Vol. 3A 6.13 and 6.15), including EXT for a fault during the delivery of a
    hardware exception."""
    cases = []

    def add(name: str, build: Callable[[Layout], None]) -> None:
        layout = Layout(f"fault/{name}", "fault")
        build(layout)
        cases.append(layout.case())

    def cli_ring3(layout: Layout) -> None:
        layout.code0 = to_ring3()
        layout.code3 = "mov eax, 0x33333333; cli; ud2"
    add("cli-cpl3-iopl0", cli_ring3)

    def ds_dpl0_from_ring3(layout: Layout) -> None:
        layout.code0 = to_ring3()
        layout.code3 = f"mov ax, {DATA0_SEL:#x}; mov ds, ax; ud2"
    add("mov-ds-dpl0-at-cpl3", ds_dpl0_from_ring3)

    def ds_not_present(layout: Layout) -> None:
        layout.gdt[SPARE_SEL >> 3] = descriptor(0, 0xFFFFF, 0x72)  # DPL 3, P = 0
        layout.code0 = to_ring3()
        layout.code3 = f"mov ax, {SPARE_SEL | 3:#x}; mov ds, ax; ud2"
    add("mov-ds-not-present", ds_not_present)

    def selector_beyond_gdt(layout: Layout) -> None:
        layout.code0 = f"mov ax, 0x100; mov ds, ax; {DONE}"
    add("mov-ds-beyond-gdt-limit", selector_beyond_gdt)

    def int_beyond_idt(layout: Layout) -> None:
        layout.idt_limit = 0x80 * 8 - 1
        layout.code0 = f"int 0x99; {DONE}"
    add("int-beyond-idt-limit", int_beyond_idt)

    def int_gate_not_present(layout: Layout) -> None:
        layout.set_gate(0x31, INT32, present=False)
        layout.code0 = f"int 0x31; {DONE}"
    add("int-gate-not-present", int_gate_not_present)

    def ud_gate_not_present(layout: Layout) -> None:
        layout.set_gate(6, INT32, present=False)
        layout.code0 = f"ud2; {DONE}"
    add("ud-gate-not-present-ext", ud_gate_not_present)

    def ud_gate_wrong_type(layout: Layout) -> None:
        layout.idt[6] = descriptor(0, 0xFFFFF, 0x92)  # a data descriptor in the IDT
        layout.code0 = f"ud2; {DONE}"
    add("ud-gate-not-a-gate-ext", ud_gate_wrong_type)

    def paging(name: str, pte: int, code3: str = "", code0: str = "", wp: bool = False
               ) -> None:
        def build(layout: Layout) -> None:
            layout.paging = True
            layout.cr0_extra = CR0_WP if wp else 0
            layout.ptes[DATA_PAGE] = pte
            layout.code0 = code0 or to_ring3()
            layout.code3 = code3
        add(f"pf-{name}", build)

    write = f"mov dword ptr [{DATA_PAGE + 0x10:#x}], 0x77; ud2"
    read = f"mov eax, dword ptr [{DATA_PAGE + 0x10:#x}]; ud2"
    paging("cpl3-write-read-only", DATA_PAGE | PTE_P | PTE_US, code3=write)
    paging("cpl3-read-supervisor", DATA_PAGE | PTE_P | PTE_RW, code3=read)
    paging("cpl3-read-not-present", DATA_PAGE | PTE_RW | PTE_US, code3=read)
    paging("cpl3-write-not-present", DATA_PAGE | PTE_RW | PTE_US, code3=write)
    paging("cpl3-fetch-supervisor", DATA_PAGE | PTE_P | PTE_RW,
           code3=f"mov eax, {DATA_PAGE:#x}; jmp eax",
           code0=f"mov byte ptr [{DATA_PAGE:#x}], 0x90; " + to_ring3())
    paging("cpl0-write-read-only-wp1", DATA_PAGE | PTE_P | PTE_US, wp=True,
           code0=f"mov dword ptr [{DATA_PAGE + 0x10:#x}], 0x77; {DONE}")
    paging("cpl0-write-read-only-wp0", DATA_PAGE | PTE_P | PTE_US, wp=False,
           code0=f"mov dword ptr [{DATA_PAGE + 0x10:#x}], 0x77; {DONE}")
    return cases


def iret_to_outer_level() -> List[Case]:
    """IRET at CPL 0 to CPL 3 (SDM Vol. 2A, IRET, RETURN-TO-OUTER-PRIVILEGE-LEVEL): the
    popped SS:ESP, the EFLAGS image (IOPL and IF change at CPL 0), data segment
    registers a DPL-0 segment loaded become null; then INT 0x80 (gate DPL 3) shows the
    state. Ring 3 saves EFLAGS in EBX and ES:DS in ECX before the INT."""
    cases = []
    # CMP leaves every status flag defined (SHL's AF is not): the INT's EFLAGS image
    # must not carry a flag the SDM leaves undefined.
    ring3 = ("pushfd; pop ebx; xor ecx, ecx; mov cx, es; shl ecx, 16; mov cx, ds; "
             "mov eax, 0x33333333; cmp eax, eax; int 0x80; ud2")
    variants = (
        ("flags-202-ds-dpl3", 0x202, DATA3_SEL, DATA3_SEL),
        ("flags-iopl3-ds-dpl3", 0x3202 | 0x8D5, DATA3_SEL, DATA3_SEL),
        ("flags-ac-nt-rf-ds-dpl3", 0x40202 | 0x4000 | 0x10000, DATA3_SEL, DATA3_SEL),
        ("ds-dpl0-becomes-null", 0x202, DATA0_SEL, DATA3_SEL),
        ("es-dpl0-becomes-null", 0x202, DATA3_SEL, DATA0_SEL),
    )
    for name, eflags, ds, es in variants:
        layout = Layout(f"iret-outer/{name}", "iret-outer")
        layout.set_gate(0x80, INT32, 3)
        layout.code0 = to_ring3(eflags, ds, es)
        layout.code3 = ring3
        cases.append(layout.case())

    # An IRET frame whose SS RPL differs from CS RPL: #GP(SS selector).
    layout = Layout("iret-outer/ss-rpl-mismatch", "iret-outer")
    layout.code0 = (f"push {DATA0_SEL:#x}; push {STACK3_TOP:#x}; push 0x202; "
                    f"push {CODE3_SEL:#x}; push {CODE3:#x}; iretd")
    layout.code3 = "ud2"
    cases.append(layout.case())
    # An IRET to a not-present ring-3 code segment: #NP(CS selector).
    layout = Layout("iret-outer/cs-not-present", "iret-outer")
    layout.gdt[SPARE_SEL >> 3] = descriptor(0, 0xFFFFF, 0x7A)  # code, DPL 3, P = 0
    layout.code0 = (f"push {DATA3_SEL:#x}; push {STACK3_TOP:#x}; push 0x202; "
                    f"push {SPARE_SEL | 3:#x}; push {CODE3:#x}; iretd")
    cases.append(layout.case())
    return cases


def double_faults() -> List[Case]:
    """#DF (SDM Vol. 3A 6.15, Interrupt 8, Table 6-5): a contributory fault while
    delivering a contributory one, or a #PF while delivering a #PF. Through a task gate
    (SDM Vol. 3A 7.3: the old state saved in TSS_MAIN, the link and NT in the new task,
    both TSS descriptors busy, error code 0 pushed on the #DF task's stack) and through
    an interrupt gate."""
    cases = []
    for via in ("task", "int32"):
        kind = TASK_GATE if via == "task" else INT32

        def add(name: str, build: Callable[[Layout], None], via: str = via,
                kind: int = kind) -> None:
            layout = Layout(f"double-fault/{via}-{name}", "double-fault")
            layout.set_gate(8, kind)
            build(layout)
            cases.append(layout.case())

        def gp_beyond_limit(layout: Layout) -> None:
            layout.idt_limit = 9 * 8 - 1  # vectors 0-8: #GP's own gate is outside
            layout.code0 = f"mov eax, 0x11111111; int 0x30; {DONE}"
        add("gp-gate-beyond-idt-limit", gp_beyond_limit)

        def gp_gate_not_present(layout: Layout) -> None:
            layout.set_gate(13, INT32, present=False)
            layout.code0 = f"mov eax, 0x11111111; mov ax, 0x100; mov ds, ax; {DONE}"
        add("gp-gate-not-present", gp_gate_not_present)

        def pf_while_pushing(layout: Layout) -> None:
            layout.paging = True
            layout.ptes[STACK0_TOP & ~0xFFF] = (STACK0_TOP & ~0xFFF) | PTE_RW  # P = 0
            layout.code0 = to_ring3()
            layout.code3 = f"mov eax, dword ptr [{DATA_PAGE + 4:#x}]; ud2"
            layout.ptes[DATA_PAGE] = DATA_PAGE | PTE_RW | PTE_US  # not present
        if via == "task":  # through an interrupt gate the #DF would need that stack too
            add("pf-on-inner-stack", pf_while_pushing)
    return cases


def segment_checks() -> List[Case]:
    """Data-segment checks at CPL 0 whose #GP(0) is delivered through the IDT (SDM Vol. 3A
    5.3: an offset beyond a byte-granular limit, or at or below the limit of an
    expand-down segment; 5.5 / Table 3-1: a write to a read-only data segment), and
    RDMSR/WRMSR of an MSR the CPU lacks (SDM Vol. 2B, RDMSR: #GP(0) "If the value in ECX
    specifies a reserved or unimplemented MSR address")."""
    cases = []
    variants = (
        ("read-beyond-byte-limit", 0x92, 0x0, "mov eax, dword ptr [0x1000]"),
        ("dword-straddles-byte-limit", 0x92, 0x0, "mov eax, dword ptr [0xffe]"),
        ("write-read-only", 0x90, 0x4, "mov dword ptr [0x10], eax"),
        ("read-expand-down-below-limit", 0x96, 0x4, "mov eax, dword ptr [0x800]"),
        ("read-expand-down-above-limit", 0x96, 0x4, "mov eax, dword ptr [0x2000]"),
    )
    for name, access, flags, instruction in variants:
        layout = Layout(f"segment/{name}", "segment")
        # base 0x200000, limit 0xFFF (byte granular); flags 0x4: D/B = 1, G = 0
        layout.gdt[SPARE_SEL >> 3] = descriptor(GDT, 0xFFF, access, flags | 0x4)
        layout.code0 = (f"mov ax, {SPARE_SEL:#x}; mov ds, ax; mov eax, 0x11111111; "
                        f"{instruction}; {DONE}")
        cases.append(layout.case())
    for name, code in (("rdmsr-unknown", "mov ecx, 0x12345; rdmsr"),
                       ("wrmsr-unknown", "mov ecx, 0x12345; xor eax, eax; xor edx, edx; "
                                         "wrmsr")):
        layout = Layout(f"segment/{name}", "segment")
        layout.code0 = f"{code}; {DONE}"
        cases.append(layout.case())
    return cases


def task_switches() -> List[Case]:
    """Hardware task switches (SDM Vol. 3A 7.3, Table 7-2): JMP and CALL to a TSS
    descriptor, INT n through a task gate, IRET with NT back to the calling task, and
    #TS/#SS raised while switching to the inner stack, delivered through a task gate
    (which then carries the error code: the selector, EXT = 0 for INT n). Each checks
    the busy bits, the link field, NT and the state saved in the old TSS."""
    cases = []
    registers = "mov eax, 0x11111111; mov ecx, 0x33333333; mov edx, 0x44444444; "
    new_task = f"mov eax, 0x55555555; push 0x1000; jmp {RECORD:#x}"

    def add(name: str, code0: str, code_task: str = "", code3: str = "",
            edit: Optional[Callable[[Layout], None]] = None) -> None:
        layout = Layout(f"task/{name}", "task")
        layout.code0, layout.code_task, layout.code3 = code0, code_task, code3
        if edit is not None:
            edit(layout)
        cases.append(layout.case())

    add("jmp-tss", registers + far(0xEA, TSS_DF_SEL), new_task)
    add("call-tss", registers + far(0x9A, TSS_DF_SEL), new_task)
    add("call-tss-then-iret", registers + far(0x9A, TSS_DF_SEL) +
        f"; mov eax, 0x66666666; {DONE}", "mov ebx, 0x77777777; iretd")

    def task_gate_40(layout: Layout) -> None:
        layout.idt[0x40] = gate(TSS_DF_SEL, 0, TASK_GATE, 3)
    add("int-task-gate-cpl0", registers + f"int 0x40; {DONE}", new_task, edit=task_gate_40)
    add("int-task-gate-cpl3", to_ring3(), new_task, "mov eax, 0x33333333; int 0x40; ud2",
        edit=task_gate_40)

    def stack_fault(vector: int, ss0: int, esp0: int = STACK0_TOP,
                    spare: bytes = b"") -> Callable[[Layout], None]:
        def edit(layout: Layout) -> None:
            layout.set_gate(0x80, INT32, 3)
            layout.idt[vector] = gate(TSS_DF_SEL, 0, TASK_GATE)
            layout.tss_df["eip"] = stub(vector)
            layout.tss_main["ss0"], layout.tss_main["esp0"] = ss0, esp0
            if spare:
                layout.gdt[SPARE_SEL >> 3] = spare
        return edit

    ring3_int = "mov eax, 0x33333333; int 0x80; ud2"
    # SS0 null: #TS(0) (SDM Vol. 2A, INT n, INTER-PRIVILEGE-LEVEL-INTERRUPT: "IF new SS
    # selector is NULL THEN #TS(EXT)").
    add("ts-null-ss0", to_ring3(), code3=ring3_int, edit=stack_fault(10, 0))
    # SS0 a DPL-3 data segment: #TS(SS0 selector) ("new stack segment DPL != DPL of code
    # segment").
    add("ts-ss0-wrong-dpl", to_ring3(), code3=ring3_int, edit=stack_fault(10, DATA3_SEL & ~3))
    # SS0 not present: #SS(SS0 selector).
    add("ss-ss0-not-present", to_ring3(), code3=ring3_int,
        edit=stack_fault(12, SPARE_SEL, spare=descriptor(0, 0xFFFFF, 0x12)))
    # ESP0 so low in a byte-granular SS0 that the 20-byte frame does not fit: #SS(SS0).
    add("ss-frame-below-limit", to_ring3(), code3=ring3_int,
        edit=stack_fault(12, SPARE_SEL, esp0=0x10,  # limit 0xFFF, byte granular
                         spare=descriptor(STACK0_TOP & ~0xFFF, 0xFFF, 0x92, 0x4)))
    # The same two while a hardware exception (#UD at CPL 3) is delivered: EXT = 1.
    add("ts-null-ss0-during-ud", to_ring3(), code3="ud2", edit=stack_fault(10, 0))
    add("ss-frame-below-limit-during-ud", to_ring3(), code3="ud2",
        edit=stack_fault(12, SPARE_SEL, esp0=0x10,
                         spare=descriptor(STACK0_TOP & ~0xFFF, 0xFFF, 0x92, 0x4)))
    return cases + task_switches_16()


def task_switches_16() -> List[Case]:
    """The same mechanism through a 16-bit (286) TSS (SDM Vol. 3A 7.6, Figure 7-11;
    descriptor type 1/3): the second task is one, its code and stack segments based at
    2 MiB so IP and SP fit in 16 bits. The first task's state goes to its 32-bit TSS,
    the second task's to the 16-bit one as words (only the low halves: the SDM leaves
    the upper halves of the registers a 16-bit TSS loads undefined, so nothing recorded
    depends on them)."""
    cases = []
    registers = "mov eax, 0x11111111; mov ecx, 0x33333333; mov edx, 0x44444444; "

    def add(name: str, code0: str, code_task: str, vector: int = 0) -> None:
        layout = Layout(f"task/{name}", "task")
        layout.code0, layout.code_task = code0, code_task
        layout.tss16_df = {"flags": 0x2, "sp": STACK_DF_TOP - LAYOUT_BASE,
                           "cs": TASK16_CODE_SEL, "ss": TASK16_STACK_SEL,
                           "ds": DATA0_SEL, "es": DATA0_SEL}
        if vector:
            layout.idt[vector] = gate(TSS_DF_SEL, 0, TASK_GATE, 3)
        cases.append(layout.case())

    # JMP to the 16-bit TSS, which JMPs back: TSS_MAIN's state restored, the 16-bit
    # task's IP/AX/CX/SP saved at offsets 14/18/20/26, TSS_DF available again.
    add("jmp-tss16-and-back", registers + far(0xEA, TSS_DF_SEL) + f"; {DONE}",
        "mov eax, 0x55555555; mov ecx, 0x12345678; " + far(0xEA, TSS_MAIN_SEL))
    # INT 0x40 through a task gate to it, then its IRET (NT = 1) through the link (0x28
    # at offset 0): its FLAG word saved with NT clear.
    add("int-task-gate-tss16-then-iret", registers + f"int 0x40; {DONE}",
        "mov ebx, 0x77777777; iretd", vector=0x40)
    # #GP(0x30) (MOV DS, a TSS selector) through a task gate to it: the error code is
    # pushed as a word on its 16-bit stack (ECX = that word, EBX = SP = top - 2, EAX =
    # the dword at SP - 2: the pattern below the word).
    add("gp-task-gate-tss16-error-code", registers +
        f"mov bx, {TSS_DF_SEL:#x}; mov ds, bx; {DONE}",
        "movzx esp, sp; movzx ecx, word ptr ss:[esp]; movzx ebx, sp; "
        "mov eax, dword ptr ss:[esp - 2]; "
        f"mov dx, {DATA0_SEL:#x}; mov ss, dx; mov esp, {STACK_DF_TOP:#x}; "
        f"push 13; jmp {RECORD:#x}", vector=13)
    return cases


PDE_PS = 0x80
CR4_PSE = 0x10


def paging_rules() -> List[Case]:
    """32-bit paging beyond the #PF cases of ``fault`` (SDM Vol. 3A 4.3, 4.6, 4.8): a
    4-MByte page (CR4.PSE, Table 4-4) read and written, with A and D set in its PDE; a
    reserved PDE bit (bit 21 of a 4-MByte PDE is reserved whatever the PSE-36 width):
    #PF with RSVD; the PDE's R/W = 0 over a writable PTE at CPL 3 (the two combine,
    4.6: error code 7); A/D of PTEs touched for the first time (read: A; write: A, D)."""
    cases = []

    def add(name: str, code0: str, code3: str = "", cr4: int = 0,
            pdes: Optional[Dict[int, int]] = None,
            ptes: Optional[Dict[int, int]] = None) -> None:
        layout = Layout(f"paging/{name}", "paging")
        layout.paging, layout.cr4 = True, cr4
        layout.code0, layout.code3 = code0, code3
        layout.pdes.update(pdes or {})
        layout.ptes.update(ptes or {})
        cases.append(layout.case())

    big = {1: PDE_PS | PTE_P | PTE_RW}  # linear 4-8 MiB -> physical 0-4 MiB
    add("pse-4mb-read", f"mov eax, dword ptr [{0x400000 + CODE0:#x}]; {DONE}",
        cr4=CR4_PSE, pdes=big)
    add("pse-4mb-write", f"mov dword ptr [{0x400000 + SPARE_PAGE:#x}], 0x12345678; "
        f"mov eax, dword ptr [{SPARE_PAGE:#x}]; {DONE}", cr4=CR4_PSE, pdes=big)
    add("pse-reserved-bit-21", f"mov eax, dword ptr [0x400000]; {DONE}", cr4=CR4_PSE,
        pdes={1: (1 << 21) | PDE_PS | PTE_P | PTE_RW})
    add("pde-read-only-cpl3-write", to_ring3(),
        f"mov dword ptr [{DATA_PAGE + 0x10:#x}], 0x77; ud2",
        pdes={0: PAGE_TABLE | PTE_P | PTE_US})
    add("accessed-dirty-first-touch", f"mov eax, dword ptr [{SPARE_PAGE:#x}]; "
        f"mov dword ptr [{DATA_PAGE:#x}], eax; {DONE}")
    return cases


def privileged_instructions() -> List[Case]:
    """What CPL 3 may not do (SDM Vol. 3A 5.9 and each instruction's Protected Mode
    Exceptions): HLT, MOV to CR0, CLTS, LGDT, INVLPG, WBINVD, RDMSR are #GP(0) at CPL > 0;
    RDTSC with CR4.TSD and RDPMC with CR4.PCE = 0 are #GP(0); CLI is #GP(0) when CPL >
    IOPL and allowed at IOPL 3; POPF at CPL 3 leaves IF and IOPL alone; IN/OUT at CPL >
    IOPL consult the TSS I/O bitmap (Vol. 1, 19.5.2): #GP(0) without one (the map base
    beyond the TSS limit) or when the port's bit is 1, allowed when it is 0."""
    cases = []

    def add(name: str, code3: str, eflags: int = 0x202, cr4: int = 0,
            io_bitmap: bytes = b"") -> None:
        layout = Layout(f"privileged/{name}", "privileged")
        layout.code0, layout.code3, layout.cr4 = to_ring3(eflags), code3, cr4
        if io_bitmap:
            layout.io_bitmap = io_bitmap
            layout.gdt[TSS_MAIN_SEL >> 3] = descriptor(
                TSS_MAIN, 104 + len(io_bitmap) - 1, 0x80 | TSS32_AVAILABLE, 0)
            layout.extra_dumps.append(("io_bitmap", TSS_MAIN + 104, 16))
        cases.append(layout.case())

    for name, instruction in (("hlt", "hlt"), ("mov-cr0", "mov eax, cr0; mov cr0, eax"),
                              ("clts", "clts"), ("lgdt", f"lgdt [{GDT:#x}]"),
                              ("invlpg", f"invlpg [{DATA_PAGE:#x}]"), ("wbinvd", "wbinvd"),
                              ("rdmsr", "mov ecx, 0x10; rdmsr"),
                              ("cli-iopl0", "cli")):
        add(name, f"mov eax, 0x33333333; {instruction}; ud2")
    add("rdtsc-tsd", "rdtsc; ud2", cr4=0x4)
    add("rdpmc-pce0", "xor ecx, ecx; rdpmc; ud2")
    add("cli-iopl3", "cli; ud2", eflags=0x3202)
    add("popf-if-at-iopl0", "push 0x2; popfd; ud2", eflags=0x202)
    add("out-no-io-bitmap", "mov al, 1; out 0x80, al; ud2")
    # Port 0x80: byte 0x10 of the map, bit 0. The map ends with an all-ones byte.
    allowed = bytes(0x20) + b"\xff"
    add("out-io-bitmap-allows", "mov al, 1; out 0x80, al; ud2", io_bitmap=allowed)
    denied = bytes(0x10) + b"\x01" + bytes(0xF) + b"\xff"
    add("out-io-bitmap-denies", "mov al, 1; out 0x80, al; ud2", io_bitmap=denied)
    return cases


LDT_SEL = 0x58
LDT_BASE = SPARE_PAGE


def selector_loads() -> List[Case]:
    """MOV Sreg, LTR and LLDT with their error codes delivered through the IDT (SDM Vol.
    2A/2B, MOV, LTR, LLDT Operation; Unicorn's hook carries no error code, so these are
    decided here): SS needs RPL = DPL = CPL, a writable data segment (#GP(selector)),
    present (#SS(selector)), non-null (#GP(0)); DS takes readable segments only,
    conforming readable code at any DPL; LDT selectors index the LDT (#GP(selector)
    beyond its limit); a null DS faults only when used (#GP(0)); LTR of a busy TSS and
    LLDT of a TSS descriptor are #GP(selector)."""
    cases = []
    ldt = descriptor(LDT_BASE, 0xF, 0x82, 0)  # an LDT of 2 entries, DPL 0
    ldt_entries = bytes(8) + descriptor(0, 0xFFFFF, 0x92)  # LDT index 1: flat data

    def add(name: str, code0: str, code3: str = "", spare: bytes = b"",
            with_ldt: bool = False) -> None:
        layout = Layout(f"selector/{name}", "selector")
        layout.code0, layout.code3 = code0, code3
        if spare:
            layout.gdt[SPARE_SEL >> 3] = spare
        if with_ldt:
            layout.gdt[LDT_SEL >> 3] = ldt
            layout.code0 = f"mov ax, {LDT_SEL:#x}; lldt ax; " + code0
            case = layout.case()
            case.writes.append((LDT_BASE, ldt_entries))
            cases.append(case)
            return
        cases.append(layout.case())

    def load(register: str, selector: int) -> str:
        return f"mov eax, 0x11111111; mov cx, {selector:#x}; mov {register}, cx; {DONE}"

    add("mov-ss-rpl-not-cpl", load("ss", DATA0_SEL | 3))
    add("mov-ss-null", load("ss", 0))
    add("mov-ss-read-only", load("ss", SPARE_SEL), spare=descriptor(0, 0xFFFFF, 0x90))
    add("mov-ss-not-present", load("ss", SPARE_SEL), spare=descriptor(0, 0xFFFFF, 0x12))
    add("mov-ss-dpl0-at-cpl3", to_ring3(), f"mov cx, {DATA0_SEL:#x}; mov ss, cx; ud2")
    add("mov-ds-execute-only-code", load("ds", SPARE_SEL), spare=descriptor(0, 0xFFFFF, 0x98))
    add("mov-ds-readable-code", load("ds", SPARE_SEL), spare=descriptor(0, 0xFFFFF, 0x9A))
    add("mov-ds-conforming-code-at-cpl3", to_ring3(),
        f"mov cx, {SPARE_SEL | 3:#x}; mov ds, cx; ud2", spare=descriptor(0, 0xFFFFF, 0x9E))
    add("mov-ds-ldt-selector", load("ds", 0x0C), with_ldt=True)
    add("mov-ds-beyond-ldt-limit", load("ds", 0x14), with_ldt=True)
    add("null-ds-used", f"xor ecx, ecx; mov ds, cx; mov eax, dword ptr [0x1000]; {DONE}")
    add("ltr-busy-tss", f"mov cx, {TSS_MAIN_SEL:#x}; ltr cx; {DONE}")
    add("lldt-tss-descriptor", f"mov cx, {TSS_DF_SEL:#x}; lldt cx; {DONE}")
    return cases


GATE_TARGET = CODE0 + 0x600  # where a call gate leads
CONFORMING_SEL, LIMITED_SEL = 0x48, 0x50


def call_gates() -> List[Case]:
    """Far CALL through a call gate and far RET across privilege levels (SDM Vol. 2A
    CALL, Vol. 2B RET; Vol. 3A 5.8): the inner stack with copied parameters, a gate to
    conforming code (entered at the caller's CPL), RETF to CPL 3 nulling DS, and the
    EIP limit checks of both (the forms Unicorn skips, known_divergences.toml)."""
    cases = []

    def add(name: str, code0: str, code3: str = "", gdt: Optional[Dict[int, bytes]] = None,
            target: str = f"push 0x3000; jmp {RECORD:#x}") -> None:
        layout = Layout(f"call-gate/{name}", "call-gate")
        layout.set_gate(0x80, INT32, 3)
        layout.code0, layout.code3 = code0, code3
        for selector, raw in (gdt or {}).items():
            layout.gdt[selector >> 3] = raw
        layout.extra_code[GATE_TARGET] = target
        cases.append(layout.case())

    call = "mov eax, 0x33333333; " + far(0x9A, SPARE_SEL | 3) + "; ud2"
    add("ring3-to-ring0-with-parameters", to_ring3(),
        "push 0xbbbb; push 0xaaaa; " + call,
        {SPARE_SEL: call_gate(CODE0_SEL, GATE_TARGET, 3, params=2)})
    add("to-conforming-code-stays-at-cpl3", to_ring3(), call,
        {SPARE_SEL: call_gate(CONFORMING_SEL, GATE_TARGET, 3),
         CONFORMING_SEL: descriptor(0, 0xFFFFF, 0x9E)},  # conforming, DPL 0
        target="mov ebx, 0x4444; int 0x80; ud2")
    add("target-beyond-code-limit", to_ring3(), call,
        {SPARE_SEL: call_gate(LIMITED_SEL, 0x2000, 3),
         LIMITED_SEL: descriptor(CODE0, 0xFFF, 0x9A, 0x4)})  # DPL 0, limit 0xFFF bytes
    ring3 = "xor ecx, ecx; mov cx, ds; mov eax, 0x33333333; cmp eax, eax; int 0x80; ud2"
    add("retf-to-cpl3-nulls-ds", f"mov ax, {DATA0_SEL:#x}; mov ds, ax; push {DATA3_SEL:#x}; "
        f"push {STACK3_TOP:#x}; push {CODE3_SEL:#x}; push {CODE3:#x}; retf", ring3)
    add("retf-beyond-code-limit", f"push {DATA3_SEL:#x}; push {STACK3_TOP:#x}; "
        f"push {LIMITED_SEL | 3:#x}; push 0x1000; retf; {DONE}", ring3,
        {LIMITED_SEL: descriptor(CODE3, 0xFFF, 0xFA, 0x4)})  # DPL 3, limit 0xFFF bytes
    return cases


SYSENTER_CS, SYSENTER_ESP, SYSENTER_EIP = 0x174, 0x175, 0x176
KERNEL_ENTRY = CODE0 + 0x400  # where SYSENTER lands (SYSENTER_EIP)


def fast_system_calls() -> List[Case]:
    """SYSENTER/SYSEXIT (SDM Vol. 2B): SYSENTER from CPL 3 loads CS from IA32_SYSENTER_CS,
    SS = CS + 8, ESP/EIP from their MSRs at CPL 0 and clears IF (and VM); SYSEXIT from
    CPL 0 loads CS = IA32_SYSENTER_CS + 16, SS = + 24 (RPL 3), ESP = ECX, EIP = EDX.
    #GP(0) when IA32_SYSENTER_CS is 0, and for SYSEXIT at CPL > 0."""
    cases = []

    def msrs(cs: int) -> str:
        return "; ".join(f"mov ecx, {msr:#x}; mov eax, {value:#x}; xor edx, edx; wrmsr"
                         for msr, value in ((SYSENTER_CS, cs),
                                            (SYSENTER_ESP, STACK_DF_TOP),
                                            (SYSENTER_EIP, KERNEL_ENTRY))) + "; "

    def add(name: str, code0: str, code3: str = "") -> None:
        layout = Layout(f"sysenter/{name}", "sysenter")
        layout.set_gate(0x80, INT32, 3)
        layout.code0, layout.code3 = code0, code3
        cases.append(layout.case())
        # SYSENTER's target: a stub that records "vector" 0x2000 in the case's code page.
        cases[-1].writes.append((KERNEL_ENTRY, assemble(f"push 0x2000; jmp {RECORD:#x}",
                                                        KERNEL_ENTRY)))

    enter = "mov eax, 0x33333333; mov ecx, 0x1111; mov edx, 0x2222; sysenter; ud2"
    add("sysenter-from-cpl3", msrs(CODE0_SEL) + to_ring3(0x202 | 0x8D5), enter)
    add("sysenter-cs-msr-zero", msrs(0) + to_ring3(), enter)
    add("sysexit-to-cpl3", msrs(CODE0_SEL) + f"mov ecx, {STACK3_TOP - 0x10:#x}; "
        f"mov edx, {CODE3:#x}; push 0x2c7; popfd; sysexit",
        "pushfd; pop ebx; mov eax, 0x33333333; cmp eax, eax; int 0x80; ud2")
    add("sysexit-cs-msr-zero", msrs(0) + f"mov ecx, {STACK3_TOP:#x}; mov edx, {CODE3:#x}; "
        f"sysexit; {DONE}")
    add("sysexit-at-cpl3", msrs(CODE0_SEL) + to_ring3(), "sysexit; ud2")
    return cases


# The PICs remapped (master IRQs at 0x20, slave at 0x28; 8259A ICW1-ICW4), only IRQ 0
# unmasked, and the PIT's channel 0 counting 0x1000 once (mode 0: "interrupt on terminal
# count").
PIC_AND_PIT = ("mov al, 0x11; out 0x20, al; out 0xa0, al; mov al, 0x20; out 0x21, al; "
               "mov al, 0x28; out 0xa1, al; mov al, 4; out 0x21, al; mov al, 2; "
               "out 0xa1, al; mov al, 1; out 0x21, al; out 0xa1, al; mov al, 0xfe; "
               "out 0x21, al; mov al, 0xff; out 0xa1, al; mov al, 0x30; out 0x43, al; "
               "xor al, al; out 0x40, al; mov al, 0x10; out 0x40, al; ")


def external_interrupts() -> List[Case]:
    """An external interrupt (IRQ 0 through the 8259A at vector 0x20) taken out of HLT:
    STI's one-instruction shadow lets HLT run first, so the frame's EIP is the
    instruction after HLT whenever the timer fires (SDM Vol. 2B, STI; Vol. 3A 6.8.3);
    IF is pushed set and cleared by the interrupt gate. Through a not-present gate it
    is #NP(0x20*8+2+EXT) with EXT = 1, an event external to the program (Vol. 3A
    6.13)."""
    cases = []
    wait = PIC_AND_PIT + f"mov eax, 0x11111111; sti; hlt; {DONE}"
    layout = Layout("external/irq0-out-of-hlt", "external")
    layout.code0 = wait
    cases.append(layout.case())
    layout = Layout("external/irq0-gate-not-present-ext", "external")
    layout.set_gate(0x20, INT32, present=False)
    layout.code0 = wait
    cases.append(layout.case())
    return cases


def triple_fault() -> List[Case]:
    """An IDT that holds no gate for #GP or #DF: INT3 beyond the limit is #GP, #GP is
    #DF, #DF is a shutdown (SDM Vol. 3A 6.15, Interrupt 8: "If any other exception
    occurs while attempting to call the double-fault handler, the processor enters
    shutdown mode"). The engines report the machine's end, not a dump."""
    layout = Layout("triple-fault/empty-idt", "triple-fault")
    layout.idt_limit = 3 * 8 - 1  # vectors 0-2
    layout.code0 = f"int3; {DONE}"
    return [layout.case()]


V86_CODE_SEG, V86_DATA_SEG, V86_EXTRA_SEG = 0x8000, 0x8100, 0x8200
V86_FS, V86_GS, V86_SP = 0x9000, 0x9100, 0x0F00
VM, IOPL3 = 0x20000, 0x3000


def _enter_vm86(eflags: int) -> str:
    """CPL 0 code that IRETDs into virtual-8086 mode (SDM Vol. 2A, IRET,
    RETURN-TO-VIRTUAL-8086-MODE: EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS popped) at
    0x8000:0000 (linear 0x80000, below 1 MiB), stack 0x8000:0F00."""
    pushes = (V86_GS, V86_FS, V86_DATA_SEG, V86_EXTRA_SEG, V86_CODE_SEG, V86_SP, eflags,
              V86_CODE_SEG, 0)
    return "; ".join(f"push {value:#x}" for value in pushes) + "; iretd"


def virtual_8086() -> List[Case]:
    """Virtual-8086 mode without VME (SDM Vol. 3B ch. 20): IRETD at CPL 0 with VM = 1
    enters it; addresses there are selector * 16 + offset (MOV BX,[0x10] reads DS =
    0x8100 at linear 0x81010, MOV CX,SS gives the popped selector); INT 0x80 at IOPL 3
    through a DPL-3 32-bit interrupt gate leaves it for ring 0 with GS..EIP on SS0:ESP0
    and DS/ES null (INTERRUPT-FROM-VIRTUAL-8086-MODE); CLI at IOPL 0 and IN from a port
    the TSS bit map denies (whatever IOPL, 20.2.8.1) are #GP(0); a gate to DPL-3 code is
    #GP(selector)."""
    cases = []

    def add(name: str, eflags: int, code: bytes, gate_dpl3_code: bool = False,
            io_bitmap: bytes = b"") -> None:
        layout = Layout(f"vm86/{name}", "vm86")
        layout.set_gate(0x80, INT32, 3)
        if gate_dpl3_code:
            layout.idt[0x80] = gate(CODE3_SEL, stub(0x80), INT32, 3, True)
        layout.code0 = _enter_vm86(eflags)
        layout.extra_code[V86_CODE_SEG << 4] = ".byte " + ", ".join(map(hex, code))
        layout.extra_code[(V86_DATA_SEG << 4) + 0x10] = ".byte 0xef, 0xbe"
        if io_bitmap:
            layout.io_bitmap = io_bitmap
            layout.gdt[TSS_MAIN_SEL >> 3] = descriptor(
                TSS_MAIN, 104 + len(io_bitmap) - 1, 0x80 | TSS32_AVAILABLE, 0)
        cases.append(layout.case())

    # MOV AX,1234h; MOV BX,[0010h]; MOV CX,SS; INT 80h
    add("iret-in-int80-out", VM | IOPL3 | 0x202, bytes.fromhex("b8 34 12 8b 1e 10 00 8c d1 cd 80"))
    add("cli-iopl0", VM | 0x202, bytes.fromhex("b8 34 12 fa"))
    add("int80-to-dpl3-code", VM | IOPL3 | 0x202, bytes.fromhex("cd 80"), gate_dpl3_code=True)
    denied = bytes(0x10) + b"\x01" + bytes(0xF) + b"\xff"  # port 0x80: byte 0x10, bit 0
    add("in-io-bitmap-denies-at-iopl3", VM | IOPL3 | 0x202, bytes.fromhex("e4 80"),
        io_bitmap=denied)
    return cases


FAMILIES: Dict[str, Callable[[], List[Case]]] = {
    "int-same": int_same_level,
    "int-inner": int_inner_level,
    "fault": faults_with_error_codes,
    "iret-outer": iret_to_outer_level,
    "double-fault": double_faults,
    "segment": segment_checks,
    "task": task_switches,
    "sysenter": fast_system_calls,
    "paging": paging_rules,
    "call-gate": call_gates,
    "privileged": privileged_instructions,
    "selector": selector_loads,
    "external": external_interrupts,
    "vm86": virtual_8086,
    "vm86-task": vm86_tasks,
    "vm86-gates": vm86_gates,
    "task-ldt": task_ldt,
    "data-breakpoint": data_breakpoints,
    "triple-fault": triple_fault,
}


def all_cases(families: Sequence[str] = tuple(FAMILIES)) -> List[Case]:
    """The cases of ``families`` in a fixed order (the runner's indices follow it)."""
    cases: List[Case] = []
    for name in families:
        cases += FAMILIES[name]()
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise ValueError("case names must be unique")
    return cases
