"""The reference PC runs the bare-metal image's vm86-task, vm86-gates and task-ldt cases
(``differential/bare_metal/cases_tasks.py``) to the states the SDM gives, written here
field by field. Offsets: the first task's code starts at CODE0 with three 5-byte MOVs,
so its 7-byte JMP/CALL is at CODE0 + 15 and returns to CODE0 + 22; the virtual-8086
code starts at 7000:0000. Values with 0x46 in EFLAGS carry ZF and PF from ``record``'s
own XOR; 0x5A bytes are the stack pattern above the frame.
"""

from __future__ import annotations

from typing import Dict

import pytest

from differential.bare_metal import layout as bm
from differential.bare_metal.compare import CaseResult
from differential.tests import bare_metal_sdm as sdm

pytest.importorskip("keystone")

VM, RF, NT, IOPL3 = 0x20000, 0x10000, 0x4000, 0x3000
V86_CS, V86_SS, V86_DS, V86_ES, V86_FS, V86_GS = 0x7000, 0x7000, 0x7100, 0x7200, 0x7300, 0x7400
BUSY_TSS32_HI, AVAILABLE_TSS32_HI = 0x8B20, 0x8920  # descriptor high dword, base 23:16 = 0x20
BUSY_TSS16_HI, AVAILABLE_TSS16_HI = 0x8320, 0x8120


def _words(*words: int) -> Dict[str, int]:
    """results.stackN from 16-bit words pushed at increasing addresses."""
    padded = list(words) + [0x5A5A] * (len(words) % 2)
    return {f"results.stack{i}": padded[2 * i] | padded[2 * i + 1] << 16
            for i in range(len(padded) // 2)}


# Vol. 2A INT n, INTERRUPT-FROM-VIRTUAL-8086-MODE through a 32-bit gate: EIP CS EFLAGS
# ESP SS ES DS FS (GS is the ninth dword, beyond the eight recorded).
def _v86_frame32(eip: int, eflags: int) -> Dict[str, int]:
    values = (eip, V86_CS, eflags, 0xF00, V86_SS, V86_ES, V86_DS, V86_FS)
    return {f"results.stack{i}": value for i, value in enumerate(values)}


SDM_EXPECTATIONS: Dict[str, Dict[str, int]] = {
    # Vol. 3B 20.2.5: JMP to a 32-bit TSS with VM = 1 runs it in virtual-8086 mode: MOV
    # AX (3 bytes), MOV BX,[0010h] (4: DS 7100h -> linear 71010h = BEEF), INT 40h (2)
    # through a task gate to 0x28 (20.2.6): the task's TSS holds EIP 9, EFLAGS with VM,
    # AX, BX and its 8086 selectors; 0x28 resumes after its JMP with link 0x30 and
    # both TSSs busy (Table 7-2: an interrupt task switch sets the new busy bit and
    # leaves the old one).
    "vm86-task/jmp-in-task-gate-out": {
        "results.vector": 0xFFFFFFFF, "results.tr": bm.TSS_MAIN_SEL,
        "tss_main.link": bm.TSS_DF_SEL, "tss_df.eip": 9,
        "tss_df.eflags": VM | IOPL3 | 0x202, "tss_df.eax": 0x1234, "tss_df.ebx": 0xBEEF,
        "tss_df.esp": 0xF00, "tss_df.es": V86_ES, "tss_df.cs": V86_CS,
        "tss_df.ss": V86_SS, "tss_df.ds": V86_DS, "tss_df.fs": V86_FS,
        "tss_df.gs": V86_GS, "gdt.0x28.hi": BUSY_TSS32_HI, "gdt.0x30.hi": BUSY_TSS32_HI},
    # ... and 0x28's IRETD (NT = 1) switches back into it: INT 80h at 9 then leaves
    # virtual-8086 mode for ring 0 through a 32-bit gate on TSS_DF's SS0:ESP0 (nine
    # dwords), DS and ES null; 0x28 is available again, saved after its IRETD.
    "vm86-task/iret-back-in": {
        "results.vector": 0x80, "results.tr": bm.TSS_DF_SEL,
        "results.esp": bm.STACK_DF_TOP - 36, "results.ds": 0, "results.es": 0,
        "results.eax": 0x1234, "results.ebx": 0xBEEF, "tss_main.eip": bm.CODE0 + 23,
        **_v86_frame32(0xB, VM | IOPL3 | 0x202), "gdt.0x28.hi": AVAILABLE_TSS32_HI,
        "gdt.0x30.hi": BUSY_TSS32_HI},
    # CALL sets NT in the task and links it to 0x28; its IRET (at IOPL 3) is 8086-style
    # all the same (Vol. 2A IRET: RETURN-FROM-VIRTUAL-8086-MODE comes before any NT
    # test): PUSHF, PUSH CS, PUSH 000Ah, IRET lands on INT 80h at 000Ah, still in the
    # task, NT in the frame's EFLAGS.
    "vm86-task/call-in-iret-stays": {
        "results.vector": 0x80, "results.tr": bm.TSS_DF_SEL, "tss_df.link": bm.TSS_MAIN_SEL,
        **_v86_frame32(0xC, VM | NT | IOPL3 | 0x202), "gdt.0x28.hi": BUSY_TSS32_HI},
    # EIP 10000h beyond the task's 64-KiB CS: #GP(0) in the new task (JMP,
    # TASK-STATE-SEGMENT), from virtual-8086 mode through the 32-bit gate: the frame's
    # EIP 10000h, RF set (a fault), DS/ES null.
    "vm86-task/jmp-eip-beyond-64k": {
        "results.vector": 13, "results.tr": bm.TSS_DF_SEL, "results.stack0": 0,
        "results.stack1": 0x10000, "results.stack2": V86_CS,
        "results.stack3": VM | RF | IOPL3 | 0x202, "results.ds": 0},
    # The first task in virtual-8086 mode (IRETD): INT 40h through a task gate to the
    # 16-bit TSS saves it (EIP 5, EFLAGS with VM, AX); the 16-bit task runs in
    # protected mode (its FLAG word cannot hold VM, 20.2.5), its IRETD (NT = 1) returns
    # into virtual-8086 mode by the task switch, where INT 80h at 5 pushes the frame on
    # TSS_MAIN's SS0:ESP0. The 16-bit TSS: link 0x28, IP after MOV EBX (5) and IRETD
    # (1), BX; available again.
    "vm86-task/int-task-gate-tss16-iret-back": {
        "results.vector": 0x80, "results.tr": bm.TSS_MAIN_SEL,
        "results.esp": bm.STACK0_TOP - 36, **_v86_frame32(7, VM | IOPL3 | 0x202),
        "tss_main.eip": 5, "tss_main.eflags": VM | IOPL3 | 0x202, "tss_main.eax": 0x1234,
        "tss_main.cs": V86_CS, "tss_main.gs": V86_GS, "tss16_df.link": bm.TSS_MAIN_SEL,
        "tss16_df.ip": 0x3800 + 6, "tss16_df.bx": 0x7777,
        "gdt.0x30.hi": AVAILABLE_TSS16_HI},
    # CLI at IOPL 0 (at 3, after MOV AX): #GP(0) through a task gate to the 16-bit TSS:
    # TSS_MAIN saves the CLI's EIP and EFLAGS with VM and RF (a fault, Vol. 3B
    # 17.3.1.1); the error code is a word on the 16-bit stack (ECX 0, SP 0x8EFE).
    "vm86-task/gp-task-gate-tss16-error-code": {
        "results.vector": 13, "results.tr": bm.TSS_DF_SEL, "results.cs": 0x60,
        "results.ecx": 0, "results.ebx": 0x8EFE, "tss_main.eip": 3,
        "tss_main.eflags": VM | RF | 0x202, "tss16_df.link": bm.TSS_MAIN_SEL,
        "gdt.0x30.hi": BUSY_TSS16_HI},
    # INT n, INTERRUPT-FROM-VIRTUAL-8086-MODE through a 16-bit gate: nine words below
    # SS0:ESP0 (IP, CS, FLAGS without VM, SP, SS, ES, DS, FS, GS); DS/ES null; VM and,
    # through an interrupt gate, IF clear: EFLAGS IOPL 3 | 0x46.
    "vm86-gates/int16-int80": {
        "results.vector": 0x80, "results.cs": bm.HANDLER16_SEL,
        "results.esp": bm.STACK0_TOP - 18, "results.ds": 0, "results.es": 0,
        "results.eflags": IOPL3 | 0x46,
        **_words(5, V86_CS, IOPL3 | 0x202, 0xF00, V86_SS, V86_ES, V86_DS, V86_FS, V86_GS)},
    "vm86-gates/trap16-int80": {
        "results.vector": 0x80, "results.esp": bm.STACK0_TOP - 18,
        "results.eflags": IOPL3 | 0x246,
        **_words(5, V86_CS, IOPL3 | 0x202, 0xF00, V86_SS, V86_ES, V86_DS, V86_FS, V86_GS)},
    # CLI at IOPL 0: #GP(0), a fault at IP 3; ten words with the error code on top.
    "vm86-gates/trap16-cli-gp": {
        "results.vector": 13, "results.esp": bm.STACK0_TOP - 20,
        **_words(0, 3, V86_CS, 0x202, 0xF00, V86_SS, V86_ES, V86_DS, V86_FS, V86_GS)},
    # INT3 is not IOPL-sensitive (INT n's #GP(0) test names INT n only): #BP, a trap,
    # IP after the CC.
    "vm86-gates/int16-int3-iopl0": {
        "results.vector": 3, "results.esp": bm.STACK0_TOP - 18,
        **_words(4, V86_CS, 0x202, 0xF00, V86_SS, V86_ES, V86_DS, V86_FS, V86_GS)},
    # Vol. 3A 7.3 step 11 and 7.6: the 16-bit TSS's LDT (offset 42 = 0x48) is loaded
    # before its segments, which come from it: DS 0x1C reads 4321h at DATA_PAGE; SLDT
    # gives 0x48; after LLDT 0x50 the switch back leaves offset 42 alone (static); the
    # first task's LDT field is 0 (its SLDT BX: 0). IP after its 24 bytes of code.
    "task-ldt/jmp-tss16-with-ldt-and-back": {
        "results.vector": 0xFFFFFFFF, "results.tr": bm.TSS_MAIN_SEL, "results.ebx": 0,
        "tss16_df.ax": 0x4321, "tss16_df.cx": 0x48, "tss16_df.dx": 0x50,
        "tss16_df.ldt": 0x48, "tss16_df.cs": 0x0C, "tss16_df.ss": 0x14,
        "tss16_df.ds": 0x1C, "tss16_df.ip": 0x3800 + 24, "gdt.0x30.hi": AVAILABLE_TSS16_HI},
}

# Table 7-1's LDT and segment checks, raised in the new task (its TSS saves IP 0x3800,
# the new selectors already in the registers: 7.3 step 12 loads the selectors, step 13
# the descriptors), delivered through a task gate back to the first task: link 0x30,
# the error code popped into ECX (EXT = 0), the 16-bit TSS still busy.
for name, error, cs in (("ldt-selector-not-an-ldt", 0x10, 0x0C),
                        ("ldt-not-present", 0x58, 0x0C),
                        ("ldt-selector-in-ldt", 0x4C, 0x0C),
                        ("cs-beyond-ldt-limit", 0x24, 0x24),
                        ("ds-not-present-in-ldt", 0x1C, 0x0C),
                        ("ip-beyond-cs-limit", 0, 0x0C)):  # #GP(0): IP > CS limit 0x37FF
    SDM_EXPECTATIONS[f"task-ldt/{name}"] = {
        "results.vector": 0xFFFFFFFF, "results.tr": bm.TSS_MAIN_SEL, "results.ecx": error,
        "tss_main.link": bm.TSS_DF_SEL, "tss16_df.ip": 0x3800, "tss16_df.cs": cs,
        "tss16_df.ss": 0x14, "tss16_df.ds": 0x1C, "gdt.0x30.hi": BUSY_TSS16_HI}


FAMILIES = ("vm86-task", "vm86-gates", "task-ldt")


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory) -> Dict[str, CaseResult]:
    return sdm.reference_results(FAMILIES, tmp_path_factory.mktemp("bm"))


def test_every_case_has_an_sdm_state() -> None:
    sdm.every_case_has_a_state(FAMILIES, SDM_EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(SDM_EXPECTATIONS))
def test_the_reference_runs_the_case_to_the_sdm_state(reference_results, name) -> None:
    sdm.reaches_the_sdm_state(reference_results[name], SDM_EXPECTATIONS[name])
