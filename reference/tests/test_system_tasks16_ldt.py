"""16-bit (286) TSS task switches with an LDT (SDM Vol. 3A 7.3 steps 11-13, 7.6 and
Figure 7-11; the checks and their exceptions: Table 7-1 "Checks Made during a Task
Switch").

The LDT selector of a 16-bit TSS is the word at offset 42. The switch loads LDTR from
it (a GDT selector of a present LDT descriptor: otherwise #TS(LDT selector)) before
the segment registers, so the new task's CS, SS and data selectors may name the
LDT (TI = 1); a selector beyond that LDT's limit is #TS(selector), a not-present data
segment #NP(selector). These faults happen in the new task's context: TR and EIP are
already the new task's. The LDT field is static (7.2.1, 7.6): a switch away from the
task does not write it, whatever LLDT did meanwhile.
"""

from __future__ import annotations

import pytest

from reference.faults import GP, NP, TS
from reference.step import ReportAndStop
from reference.tests import test_system_tasks16 as tasks16
from reference.tests.conftest import CODE, DATA
from reference.tests.system_tables import (
    CODE_XR,
    DATA_RW,
    GDT,
    LDT_TYPE,
    TSS_BASE,
    descriptor,
    table_bytes,
)

NEW_TSS, NEW_EIP, NEW_SP = tasks16.NEW_TSS, tasks16.NEW_EIP, tasks16.NEW_SP
LDT_A, LDT_B = 0x6100, 0x6200        # two LDTs in the page of the 16-bit TSS
LDT_A_SEL, LDT_B_SEL = 0x60, 0x68
NOT_PRESENT_LDT_SEL = 0x70
# LDT A's selectors (TI = 1, RPL 0): 32-bit ring-0 code, a 16-bit ring-0 stack, data
# based at DATA (so a read through it tells which table it came from).
CODE_L, STACK_L, DATA_L = 0x0C, 0x14, 0x1C
LDT_A_ENTRIES = {
    CODE_L: descriptor(0, 0xFFFFF, CODE_XR, g=1),
    STACK_L: descriptor(0, 0xFFFF, DATA_RW, db=0),
    DATA_L: descriptor(DATA, 0xFFF, DATA_RW),
}
JMP_NEW_TASK = bytes.fromhex("ea 00 00 00 00 50 00")


def _cpu(ldt: int = LDT_A_SEL, cs: int = CODE_L, ds: int = DATA_L,
         ldt_a=LDT_A_ENTRIES):
    """Task 0x28 (32-bit, LDT field 0) about to JMP to the 16-bit TSS 0x50, whose LDT
    field is ``ldt`` and whose CS/SS/DS/ES are LDT A's selectors."""
    image = tasks16.tss16_image(NEW_EIP, regs=tasks16.REGS, es=STACK_L, cs=cs, ss=STACK_L,
                                ds=ds, ldt=ldt)
    cpu = tasks16._cpu(JMP_NEW_TASK, image)
    entries = {LDT_A_SEL: descriptor(LDT_A, 0x1F, LDT_TYPE, s=0),
               LDT_B_SEL: descriptor(LDT_B, 0x7, LDT_TYPE, s=0),
               NOT_PRESENT_LDT_SEL: descriptor(LDT_A, 0x1F, LDT_TYPE, s=0, present=0)}
    for selector, raw in entries.items():
        cpu.mem.write_bytes(GDT + selector, raw)
    cpu.gdtr = (GDT, NOT_PRESENT_LDT_SEL + 7)
    cpu.mem.write_bytes(LDT_A, table_bytes(ldt_a))
    return cpu


def test_the_ldt_of_a_16_bit_tss_is_loaded_and_its_selectors_used() -> None:
    """JMP to the 16-bit TSS: LDTR = 0x60 with the LDT descriptor's base and limit; CS,
    SS, DS, ES are LDT A's descriptors (DS based at DATA, SS 16-bit); the task's MOV
    AX,[0] reads linear DATA. After LLDT 0x68 its JMP back to 0x28 leaves offset 42 of
    its TSS at 0x60 (a static field) and loads 0x28's LDT field, 0: LDTR null."""
    cpu = _cpu()
    cpu.mem.write_int(DATA, 2, 0x4321)
    task = bytes.fromhex("66 a1 00 00 00 00" "66 bb 68 00 0f 00 d3" "ea 00 00 00 00 28 00")
    cpu.mem.write_bytes(NEW_EIP, task)
    assert cpu.step().exception is None
    assert (cpu.tr.selector, cpu.eip, cpu.ldtr.selector) == (0x50, NEW_EIP, LDT_A_SEL)
    assert (cpu.ldtr.base, cpu.ldtr.limit) == (LDT_A, 0x1F)
    assert [cpu.get_reg(name) for name in ("es", "cs", "ss", "ds")] == [
        STACK_L, CODE_L, STACK_L, DATA_L]
    assert (cpu.seg_base[3], cpu.seg_limit[3], cpu.stack_size) == (DATA, 0xFFF, 16)
    assert cpu.step().exception is None and cpu.get_reg("ax") == 0x4321
    assert cpu.step().exception is None and cpu.step().exception is None  # LLDT BX
    assert cpu.ldtr.selector == LDT_B_SEL
    assert cpu.step().exception is None  # JMP 0x28:0
    assert (cpu.tr.selector, cpu.eip, cpu.ldtr.selector) == (0x28, CODE + 7, 0)
    assert cpu.mem.read_int(NEW_TSS + 42, 2) == LDT_A_SEL
    assert cpu.mem.read_int(NEW_TSS + 36, 2) == CODE_L  # CS saved in the 16-bit TSS


@pytest.mark.parametrize("ldt, error", [
    (0x10, 0x10),                               # a data segment, not an LDT
    (LDT_A_SEL | 4, LDT_A_SEL | 4),              # TI = 1: an LDT cannot live in an LDT
    (NOT_PRESENT_LDT_SEL, NOT_PRESENT_LDT_SEL),  # not present: #TS, not #NP
    (0x200, 0x200),                             # beyond the GDT's limit
], ids=["data-segment", "ti-set", "not-present", "beyond-gdt"])
def test_a_bad_ldt_selector_is_ts_in_the_new_task(ldt: int, error: int) -> None:
    """Table 7-1: "LDT segment selector of new task is valid" and "LDT of new task is
    present in memory", both #TS(LDT selector), raised after the switch (TR 0x50, EIP
    the new task's; the old task was saved). The segment selectors are already the new
    task's: 7.3 loads them in step 12, their descriptors in step 13."""
    cpu = _cpu(ldt=ldt)
    cpu.delivery = ReportAndStop()
    exception = cpu.step().exception
    assert (exception.vector, exception.error_code) == (TS, error)
    assert (cpu.tr.selector, cpu.eip) == (0x50, NEW_EIP)
    assert [cpu.get_reg(name) for name in ("es", "cs", "ss", "ds")] == [
        STACK_L, CODE_L, STACK_L, DATA_L]
    assert cpu.mem.read_int(TSS_BASE + 32, 4) == CODE + 7


def test_a_code_selector_beyond_the_ldt_limit_is_ts() -> None:
    """CS = 0x24 names LDT entry 4, beyond LDT A's limit 0x1F: #TS(0x24) (Table 7-1,
    "Code segment selector index is within descriptor table limit")."""
    cpu = _cpu(cs=0x24)
    cpu.delivery = ReportAndStop()
    exception = cpu.step().exception
    assert (exception.vector, exception.error_code) == (TS, 0x24)
    assert (cpu.tr.selector, cpu.ldtr.selector) == (0x50, LDT_A_SEL)


def test_a_not_present_data_segment_in_the_ldt_is_np() -> None:
    """DS names a not-present data segment of LDT A: #NP(DS selector) (Table 7-1, "Data
    segment present"), with CS and SS already loaded from the LDT."""
    entries = dict(LDT_A_ENTRIES)
    entries[DATA_L] = descriptor(DATA, 0xFFF, DATA_RW, present=0)
    cpu = _cpu(ldt_a=entries)
    cpu.delivery = ReportAndStop()
    exception = cpu.step().exception
    assert (exception.vector, exception.error_code) == (NP, DATA_L)
    assert (cpu.get_reg("cs"), cpu.get_reg("ss")) == (CODE_L, STACK_L)


def test_an_ip_beyond_the_new_code_segment_is_gp0() -> None:
    """LDT A's code segment ends at 0x10FF, below the task's IP 0x1100: once CS has
    loaded, JMP's "IF EIP not within code segment limit THEN #GP(0)", in the new task."""
    entries = dict(LDT_A_ENTRIES)
    entries[CODE_L] = descriptor(0, NEW_EIP - 1, CODE_XR)
    cpu = _cpu(ldt_a=entries)
    cpu.delivery = ReportAndStop()
    exception = cpu.step().exception
    assert (exception.vector, exception.error_code) == (GP, 0)
    assert (cpu.tr.selector, cpu.eip, cpu.get_reg("cs")) == (0x50, NEW_EIP, CODE_L)


def test_a_cached_far_jump_whose_task_switch_faults_is_run_as_step_runs_it() -> None:
    """The same #TS(LDT selector) after the commit point, with the JMP already decoded
    (as on its second run): ``run()``'s fast path must not take it, since its rollback
    (registers, flags, EIP, journals) cannot undo TR and the busy bits, and a replay
    from that half-switched state left EIP at the old task's next instruction (0x1007)
    instead of the new task's (reference.step.STEPPED)."""
    from reference.operands import CS
    from reference.step import _fetch_decode

    cpu = _cpu(ldt=NOT_PRESENT_LDT_SEL)
    cpu.delivery = ReportAndStop()
    linear = cpu.seg_base[CS] + cpu.eip
    _fetch_decode(cpu, linear, cpu.code_physical(linear))  # cached, as after a first run
    exception = cpu.run(1).exception
    assert (exception.vector, exception.error_code) == (TS, NOT_PRESENT_LDT_SEL)
    assert (cpu.tr.selector, cpu.eip) == (0x50, NEW_EIP)
