"""Case families for task switches into and out of virtual-8086 mode and for 16-bit
TSSs with an LDT (SDM Vol. 3A 7.3, 7.6, Table 7-1; Vol. 3B 20.2.5, 20.2.6, 20.3.1; Vol.
2A, INT n and IRET, their Operation sections), on the shared machine of ``layout.py``.

- ``vm86-task``: TSS_DF as a virtual-8086 task (a 32-bit TSS whose EFLAGS image has VM
  = 1) entered by JMP, CALL and IRET with NT, left through a task gate; and the first
  task itself in virtual-8086 mode (entered by IRETD) switching through a task gate to
  a 16-bit TSS and back by that task's IRET.
- ``vm86-gates``: interrupts and exceptions from virtual-8086 mode through 16-bit
  interrupt and trap gates: GS FS DS ES SS SP FLAGS CS IP (and the error code) pushed
  as words.
- ``task-ldt``: JMP to a 16-bit TSS whose LDT field (offset 42) names an LDT; its
  segments come from that LDT; a bad LDT selector or segment is #TS/#NP in the new
  task, delivered through a task gate back to the first task, which finds the error
  code on its stack.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from differential.bare_metal.image import Case
from differential.bare_metal.layout import (
    DATA0_SEL,
    DATA_PAGE,
    DONE,
    INT16,
    INT32,
    LAYOUT_BASE,
    PAGE_DIRECTORY,
    RECORD,
    SPARE_PAGE,
    STACK_DF_TOP,
    TASK16_CODE_SEL,
    TASK16_STACK_SEL,
    TASK_GATE,
    TRAP16,
    TSS_DF_SEL,
    TSS_MAIN_SEL,
    Layout,
    descriptor,
    far,
    gate,
)

VM, IOPL3, NT = 0x20000, 0x3000, 0x4000
# The virtual-8086 task's 8086 selectors: code and stack at 7000:0000 (linear 0x70000,
# below 1 MiB), data at 7100:0010 (linear 0x71010, holding BEEF), the rest distinct.
V86_SELECTORS = {"cs": 0x7000, "ss": 0x7000, "ds": 0x7100, "es": 0x7200, "fs": 0x7300,
                 "gs": 0x7400}
V86_SP = 0x0F00
V86_CODE = V86_SELECTORS["cs"] << 4
V86_WORD = (V86_SELECTORS["ds"] << 4) + 0x10
REGISTERS = "mov eax, 0x11111111; mov ecx, 0x33333333; mov edx, 0x44444444; "


def _v86_code(layout: Layout, code: str) -> None:
    """``code`` (bytes in hex) at the virtual-8086 task's CS:0000; BEEF at DS:0010."""
    layout.extra_code[V86_CODE] = ".byte " + ", ".join(
        hex(byte) for byte in bytes.fromhex(code))
    layout.extra_code[V86_WORD] = ".byte 0xef, 0xbe"


def _v86_tss(eflags: int) -> Dict[str, int]:
    """TSS_DF as a virtual-8086 task starting at 7000:0000 with ``eflags`` (VM set), its
    ring-0 stack DATA0_SEL:STACK_DF_TOP for interrupts through gates."""
    return dict(V86_SELECTORS, eip=0, eflags=eflags, esp=V86_SP, esp0=STACK_DF_TOP,
                ss0=DATA0_SEL, cr3=PAGE_DIRECTORY)


def _iretd_to_v86(eflags: int) -> str:
    """CPL 0 code that IRETDs into virtual-8086 mode at 7000:0000 (IRET,
    RETURN-TO-VIRTUAL-8086-MODE pops EIP CS EFLAGS ESP SS ES DS FS GS)."""
    s = V86_SELECTORS
    pushes = (s["gs"], s["fs"], s["ds"], s["es"], s["ss"], V86_SP, eflags, s["cs"], 0)
    return "; ".join(f"push {value:#x}" for value in pushes) + "; iretd"


def _tss16(**fields: int) -> Dict[str, int]:
    """TSS_DF as a 16-bit task (Figure 7-11) on its 2-MiB based code and 16-bit stack."""
    image = {"flags": 0x2, "sp": STACK_DF_TOP - LAYOUT_BASE, "cs": TASK16_CODE_SEL,
             "ss": TASK16_STACK_SEL, "ds": DATA0_SEL, "es": DATA0_SEL}
    image.update(fields)
    return image


# The 16-bit task's way to ``record`` after a task gate with an error code: the word on
# its 16-bit stack into ECX, SP into EBX, then a flat stack for record.
RECORD_WORD_ERROR = ("movzx esp, sp; movzx ecx, word ptr ss:[esp]; movzx ebx, sp; "
                     f"mov dx, {DATA0_SEL:#x}; mov ss, dx; mov esp, {STACK_DF_TOP:#x}; "
                     f"push 13; jmp {RECORD:#x}")


def vm86_tasks() -> List[Case]:
    """Virtual-8086 tasks (20.2.5: the switch sets VM before it loads the segment
    registers, as 8086 selectors; CPL 3) and the ways out (20.2.6: a task gate; the old
    TSS keeps VM = 1 and the 8086 selectors). INT 80h through a DPL-3 32-bit interrupt
    gate records what the virtual-8086 task sees after coming back in."""
    cases = []

    def add(name: str, code0: str, v86: str, eflags: int = VM | IOPL3 | 0x202,
            tss16: Optional[Dict[str, int]] = None, code_task: str = "",
            gates: Optional[Dict[int, bytes]] = None, eip: int = 0) -> None:
        layout = Layout(f"vm86-task/{name}", "vm86-task")
        layout.code0, layout.code_task = code0, code_task
        if tss16 is None:
            layout.tss_df = dict(_v86_tss(eflags), eip=eip)
        else:
            layout.tss16_df = tss16
        layout.set_gate(0x80, INT32, 3)
        for vector, raw in (gates or {}).items():
            layout.idt[vector] = raw
        _v86_code(layout, v86)
        cases.append(layout.case())

    to_main = {0x40: gate(TSS_MAIN_SEL, 0, TASK_GATE, 3)}
    # MOV AX,1234h; MOV BX,[0010h]; INT 40h (a task gate to the first task); INT 80h.
    v86 = "b8 34 12 8b 1e 10 00 cd 40 cd 80"
    # JMP in; INT 40h back out: the first task resumes after its JMP with NT = 1 and
    # link 0x30; TSS_DF holds EIP 9, EFLAGS with VM, AX/BX and the 8086 selectors.
    add("jmp-in-task-gate-out", REGISTERS + far(0xEA, TSS_DF_SEL) + f"; {DONE}", v86,
        gates=to_main)
    # ... and the first task's IRETD (NT = 1) goes back in: INT 80h then runs in
    # virtual-8086 mode (the nine-dword frame: EIP 0Bh, VM set) with TR = 0x30.
    add("iret-back-in", REGISTERS + far(0xEA, TSS_DF_SEL) + "; iretd", v86, gates=to_main)
    # CALL in (NT = 1 and link 0x28 in the task); IRET inside virtual-8086 mode pops IP,
    # CS, FLAGS 8086-style at IOPL 3 whatever NT: PUSHF; PUSH CS; PUSH 000Ah; IRET; then
    # INT 80h at 000Ah records it still in the task (TR 0x30, NT and VM in the frame).
    add("call-in-iret-stays", REGISTERS + far(0x9A, TSS_DF_SEL) + f"; {DONE}",
        "9c 0e 68 0a 00 cf 90 90 90 90 cd 80")
    # EIP 10000h in the virtual-8086 task's TSS, beyond its 64-KiB CS: JMP's "IF EIP not
    # within code segment limit THEN #GP(0)" after the switch, so in the new task: #GP
    # from virtual-8086 mode through the 32-bit gate, the frame's EIP 10000h.
    add("jmp-eip-beyond-64k", REGISTERS + far(0xEA, TSS_DF_SEL) + f"; {DONE}", "90",
        eip=0x10000)
    # The first task enters virtual-8086 mode by IRETD; its INT 40h goes through a task
    # gate to a 16-bit TSS, whose IRETD (NT = 1) switches back: into virtual-8086 mode
    # by a task switch (TSS_MAIN's EFLAGS image has VM = 1). INT 80h records it.
    add("int-task-gate-tss16-iret-back", _iretd_to_v86(VM | IOPL3 | 0x202),
        "b8 34 12 cd 40 cd 80", tss16=_tss16(), code_task="mov ebx, 0x77777777; iretd",
        gates={0x40: gate(TSS_DF_SEL, 0, TASK_GATE, 3)})
    # CLI at IOPL 0 in virtual-8086 mode: #GP(0) through a task gate to the 16-bit TSS:
    # the error code is a word on its stack; TSS_MAIN holds the CLI's EIP and VM | RF.
    add("gp-task-gate-tss16-error-code", _iretd_to_v86(VM | 0x202), "b8 34 12 fa",
        tss16=_tss16(), code_task=RECORD_WORD_ERROR,
        gates={13: gate(TSS_DF_SEL, 0, TASK_GATE)})
    return cases


def vm86_gates() -> List[Case]:
    """INTERRUPT-FROM-VIRTUAL-8086-MODE through 16-bit gates (INT n, Operation: "pushes
    are 16 bits for 16-bit IDT gates"): on SS0:ESP0 the words GS FS DS ES SS SP FLAGS
    CS IP (and an error code), FLAGS without VM; DS ES FS GS then null, IF cleared by
    an interrupt gate only. The first task enters virtual-8086 mode by IRETD."""
    cases = []

    def add(name: str, eflags: int, v86: str, vector: int, kind: int) -> None:
        layout = Layout(f"vm86-gates/{name}", "vm86-gates")
        layout.set_gate(vector, kind, 3)
        layout.code0 = _iretd_to_v86(eflags)
        _v86_code(layout, v86)
        cases.append(layout.case())

    add("int16-int80", VM | IOPL3 | 0x202, "b8 34 12 cd 80", 0x80, INT16)
    add("trap16-int80", VM | IOPL3 | 0x202, "b8 34 12 cd 80", 0x80, TRAP16)
    add("trap16-cli-gp", VM | 0x202, "b8 34 12 fa", 13, TRAP16)   # #GP(0): 10 words
    add("int16-int3-iopl0", VM | 0x202, "b8 34 12 cc", 3, INT16)  # INT3: not IOPL-sensitive
    return cases


# An LDT for the 16-bit task, in the page after SPARE_PAGE: code (32-bit, DPL 0) and a
# 16-bit stack based at 2 MiB like TASK16_CODE_SEL/TASK16_STACK_SEL, and data based at
# DATA_PAGE (which holds 4321h at 0) so a read tells which table DS came from.
LDT_ADDRESS = SPARE_PAGE + 0x1000
LDT_SEL, LDT2_SEL, LDT_ABSENT_SEL = 0x48, 0x50, 0x58
CODE_L, STACK_L, DATA_L = 0x0C, 0x14, 0x1C  # TI = 1, RPL 0


def task_ldt() -> List[Case]:
    """JMP from the first task to a 16-bit TSS whose LDT field names an LDT (7.3 step
    11: LDTR is loaded before the segment registers, so CS, SS and DS may be LDT
    selectors). Table 7-1's LDT checks: a selector that is not an LDT descriptor in
    the GDT, or a not-present LDT, is #TS(LDT selector); a CS beyond the LDT's limit
    #TS(CS); a not-present data segment #NP(DS); an IP beyond the loaded CS's limit
    #GP(0). Those arise in the new task; a task gate for #TS/#NP/#GP takes them back to
    the first task, which pops the error code into ECX (EXT = 0: the JMP started it)."""
    cases = []

    def add(name: str, code_task: str, data_present: bool = True, code_limit: int = 0xFFFF,
            **fields: int) -> None:
        layout = Layout(f"task-ldt/{name}", "task-ldt")
        layout.code0 = (REGISTERS + far(0xEA, TSS_DF_SEL) +
                        f"; pop ecx; xor ebx, ebx; sldt bx; {DONE}")
        layout.code_task = code_task
        layout.tss16_df = _tss16(cs=CODE_L, ss=STACK_L, ds=DATA_L, ldt=LDT_SEL)
        layout.tss16_df.update(fields)
        for vector in (10, 11, 13):
            layout.idt[vector] = gate(TSS_MAIN_SEL, 0, TASK_GATE)
        layout.gdt[LDT_SEL >> 3] = descriptor(LDT_ADDRESS, 0x1F, 0x82, 0)
        layout.gdt[LDT2_SEL >> 3] = descriptor(LDT_ADDRESS, 0x1F, 0x82, 0)
        layout.gdt[LDT_ABSENT_SEL >> 3] = descriptor(LDT_ADDRESS, 0x1F, 0x02, 0)
        ldt = (bytes(8) + descriptor(LAYOUT_BASE, code_limit, 0x9A, 0x4) +
               descriptor(LAYOUT_BASE, 0xFFFF, 0x92, 0x0) +
               descriptor(DATA_PAGE, 0xFFF, 0x92 if data_present else 0x12, 0x4))
        layout.extra_code[LDT_ADDRESS] = ".byte " + ", ".join(hex(b) for b in ldt)
        layout.extra_code[DATA_PAGE] = ".byte 0x21, 0x43"
        cases.append(layout.case())

    # The task reads DS:0 (4321h from DATA_PAGE through the LDT), SLDT CX (0x48), loads
    # LDTR 0x50 and JMPs back: offset 42 stays 0x48 (a static field); the first task's
    # LDT field is 0, so its SLDT BX gives 0. (Its POP ECX takes a stack dword: there is
    # no error code on this path.)
    add("jmp-tss16-with-ldt-and-back",
        "mov ax, word ptr [0]; sldt cx; mov dx, 0x50; lldt dx; " + far(0xEA, TSS_MAIN_SEL))
    add("ldt-selector-not-an-ldt", "ud2", ldt=DATA0_SEL)        # #TS(0x10)
    add("ldt-not-present", "ud2", ldt=LDT_ABSENT_SEL)           # #TS(0x58), not #NP
    add("ldt-selector-in-ldt", "ud2", ldt=LDT_SEL | 4)          # TI = 1: #TS(0x4C)
    add("cs-beyond-ldt-limit", "ud2", cs=0x24)                  # #TS(0x24)
    add("ds-not-present-in-ldt", "ud2", data_present=False)     # #NP(0x1C)
    # The LDT's code segment ends below the task's IP 3800h: #GP(0) once it has loaded
    # (JMP, Operation: "IF EIP not within code segment limit THEN #GP(0)").
    add("ip-beyond-cs-limit", "ud2", code_limit=0x37FF)
    return cases
