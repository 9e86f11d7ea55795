"""Protected-mode interrupt and exception delivery (SDM Vol. 3A, ch. 6): IDT gates,
privilege checks, the TSS stack switch, error codes with EXT, double and triple faults,
IRET to an outer level, the INTR line with IF and the interrupt shadows. The IDT and
GDT are built by hand from the SDM's figures (``system_tables``); each expected stack
frame is the one Figure 6-4 draws."""

from __future__ import annotations

from typing import List

import pytest

from reference.faults import GP
from reference.flags import IF as IF_BIT
from reference.step import ReportAndStop
from reference.system.exceptions import SystemDelivery, escalate
from reference.tests.conftest import CODE, STACK_TOP
from reference.tests.system_tables import (
    CODE_XR_CONFORMING,
    DATA_RW,
    INNER_STACK_TOP,
    INT_GATE32,
    STANDARD_GDT,
    TRAP_GATE32,
    TSS_BASE,
    descriptor,
    gate,
    protected_cpu,
    tss32,
)

HANDLER = 0x1800  # handlers live on the code page; their bytes are NOPs (zeros = ADD)
IF, TF, IOPL3, RF = 0x200, 0x100, 0x3000, 0x10000


def _cpu(code: bytes, idt: dict, cpl: int = 0, eflags: int = 0x202):
    cpu = protected_cpu(code.ljust(0x900, b"\x90"), idt=idt, cpl=cpl)
    cpu.delivery = SystemDelivery()
    cpu.set_reg("eflags", eflags)
    return cpu


def _stack(cpu, count: int) -> List[int]:
    esp = cpu.get_reg("esp")
    return [cpu.mem.read_int(esp + 4 * i, 4) for i in range(count)]


def test_int80_from_ring3_switches_to_the_tss_stack() -> None:
    """INT 0x80 at CPL 3 through a DPL-3 trap gate to ring-0 code: SS:ESP from TSS.SS0:
    ESP0, frame EIP (next), CS, EFLAGS, old ESP, old SS; a trap gate keeps IF."""
    cpu = _cpu(bytes.fromhex("cd 80"), {0x80: gate(0x08, HANDLER, TRAP_GATE32, dpl=3)},
               cpl=3, eflags=0x202 | TF)
    assert cpu.step().exception is None
    assert (cpu.cpl, cpu.get_reg("cs"), cpu.get_reg("ss"), cpu.eip) == (0, 0x08, 0x10, HANDLER)
    assert cpu.get_reg("esp") == INNER_STACK_TOP - 20
    assert _stack(cpu, 5) == [CODE + 2, 0x1B, 0x202 | TF, STACK_TOP, 0x23]
    assert cpu.get_reg("eflags") == 0x202  # TF cleared, IF kept


def test_int_n_through_a_gate_of_lower_dpl_is_gp_with_idt_error_code() -> None:
    """INT 0x80 at CPL 3 through a DPL-0 gate: #GP(0x80*8+2) (IDT bit set, EXT 0),
    delivered to the #GP handler on the ring-0 stack with that error code on top and
    the INT's own address as the return EIP (a fault: RF = 1 in the EFLAGS image, SDM
    Vol. 3A, 17.3.1.1)."""
    idt = {0x80: gate(0x08, HANDLER, INT_GATE32, dpl=0),
           GP: gate(0x08, HANDLER + 0x10, INT_GATE32)}
    cpu = _cpu(bytes.fromhex("cd 80"), idt, cpl=3)
    assert cpu.step().exception is None
    assert cpu.eip == HANDLER + 0x10
    assert _stack(cpu, 6) == [0x80 * 8 + 2, CODE, 0x1B, 0x202 | RF, STACK_TOP, 0x23]
    assert cpu.get_reg("eflags") & IF == 0  # an interrupt gate clears IF


def test_no_room_on_the_inner_stack_is_ss_with_the_new_ss_selector() -> None:
    """INT 0x80 at CPL 3 where TSS.SS0 (0x38: byte-granular, limit 0xFFF) and ESP0 = 0x10
    leave no room for the 20-byte frame: #SS(error_code(NewSS, 0, EXT)) = #SS(0x38)
    (SDM Vol. 2A, INT n, INTER-PRIVILEGE-LEVEL-INTERRUPT: "IF new stack does not have
    room for 24 bytes (error code pushed) or 20 bytes (no error code pushed) THEN
    #SS(error_code(NewSS,0,EXT))"). Its gate leads to conforming code, which runs at
    CPL 3 on the ring-3 stack, where the frame shows the INT rolled back. Found by
    differential/bare_metal (task/ss-frame-below-limit: Bochs 0x38, the reference 0)."""
    gdt = dict(STANDARD_GDT)
    gdt[0x38] = descriptor(0x9000, 0xFFF, DATA_RW)
    gdt[0x40] = descriptor(0, 0xFFFFF, CODE_XR_CONFORMING, g=1)
    idt = {0x80: gate(0x08, HANDLER, INT_GATE32, dpl=3),
           12: gate(0x40, HANDLER + 0x40, INT_GATE32)}
    cpu = protected_cpu(bytes.fromhex("cd 80").ljust(0x900, b"\x90"), gdt, cpl=3, idt=idt)
    cpu.delivery = SystemDelivery()
    cpu.set_reg("eflags", 0x202)
    cpu.mem.write_bytes(TSS_BASE, tss32(0x10, 0x38))
    assert cpu.step().exception is None
    assert (cpu.eip, cpu.cpl, cpu.get_reg("ss")) == (HANDLER + 0x40, 3, 0x23)
    assert _stack(cpu, 4) == [0x38, CODE, 0x1B, 0x202 | RF]


def test_fault_at_cpl0_pushes_error_code_on_the_same_stack() -> None:
    """MOV DS with a selector past the GDT: #GP(0x80) delivered at CPL 0 without a stack
    switch: error code, faulting EIP, CS, EFLAGS with RF = 1 (a fault)."""
    cpu = _cpu(bytes.fromhex("8e d8"), {GP: gate(0x08, HANDLER, INT_GATE32)})
    cpu.set_reg("eax", 0x80)
    assert cpu.step().exception is None
    assert cpu.get_reg("esp") == STACK_TOP - 16
    assert _stack(cpu, 4) == [0x80, CODE, 0x08, 0x202 | RF]


def test_not_present_gate_during_an_exception_sets_ext() -> None:
    """UD2 with IDT[6] not present: #NP(6*8+2+1), EXT = 1 because an exception was
    being delivered; the #NP handler gets it."""
    idt = {6: gate(0x08, HANDLER, INT_GATE32, present=0),
           11: gate(0x08, HANDLER + 0x20, INT_GATE32)}
    cpu = _cpu(bytes.fromhex("0f 0b"), idt)
    assert cpu.step().exception is None
    assert cpu.eip == HANDLER + 0x20 and _stack(cpu, 2) == [6 * 8 + 3, CODE]


def test_vector_beyond_idt_limit_is_gp() -> None:
    """IDTR.limit covers vectors 0-15 only: INT 0x20 is #GP(0x20*8+2)."""
    cpu = _cpu(bytes.fromhex("cd 20"), {GP: gate(0x08, HANDLER, INT_GATE32)})
    cpu.idtr = (cpu.idtr[0], 16 * 8 - 1)
    assert cpu.step().exception is None
    assert _stack(cpu, 1) == [0x20 * 8 + 2]


def test_contributory_during_contributory_is_double_fault() -> None:
    """#DE (contributory) whose gate is not present raises #NP (contributory): a double
    fault, delivered to vector 8 with error code 0 (Table 6-5)."""
    idt = {0: gate(0x08, HANDLER, INT_GATE32, present=0),
           8: gate(0x08, HANDLER + 0x30, INT_GATE32)}
    cpu = _cpu(bytes.fromhex("f7 f1"), idt)  # div ecx, ecx = 0
    assert cpu.step().exception is None
    assert cpu.eip == HANDLER + 0x30 and _stack(cpu, 2) == [0, CODE]


def test_fault_during_double_fault_shuts_down() -> None:
    """The same with IDT[8] not present too: a triple fault, reported as shutdown."""
    cpu = _cpu(bytes.fromhex("f7 f1"), {0: gate(0x08, HANDLER, INT_GATE32, present=0)})
    result = cpu.step()
    assert result.exception.kind == "shutdown" and cpu.shutdown
    assert cpu.eip == CODE and cpu.get_reg("esp") == STACK_TOP


def test_escalation_table() -> None:
    """Table 6-5, row by row: benign first -> serial; contributory then contributory
    -> #DF; contributory then #PF -> serial; #PF then #PF or contributory -> #DF;
    #DF then contributory or #PF -> shutdown."""
    assert escalate(6, 13) == "serial"
    assert escalate(13, 11) == "double"
    assert escalate(13, 14) == "serial"
    assert (escalate(14, 14), escalate(14, 13)) == ("double", "double")
    assert (escalate(8, 13), escalate(8, 14)) == ("triple", "triple")


def test_iret_returns_to_ring3_and_restores_its_stack() -> None:
    """INT 0x80 from ring 3, then IRET from the handler: back at CPL 3 on the old
    stack; IF (cleared by the interrupt gate) comes back from the image."""
    code = bytes.fromhex("cd 80").ljust(HANDLER - CODE, b"\x90") + bytes.fromhex("cf")
    cpu = _cpu(code, {0x80: gate(0x08, HANDLER, INT_GATE32, dpl=3)}, cpl=3)
    assert cpu.run(2) is None
    assert (cpu.cpl, cpu.get_reg("cs"), cpu.get_reg("ss")) == (3, 0x1B, 0x23)
    assert (cpu.eip, cpu.get_reg("esp"), cpu.get_reg("eflags")) == (CODE + 2, STACK_TOP, 0x202)


def test_iret_at_cpl3_cannot_change_iopl_or_if() -> None:
    """IRET at CPL 3 with IOPL 0 to the same level: IF and IOPL keep their values."""
    cpu = _cpu(bytes.fromhex("cf"), {}, cpl=3, eflags=0x002)
    for value in (IOPL3 | IF | 0x1, 0x1B, 0x1234):  # EFLAGS, CS, EIP
        cpu.push(value, 32)
    assert cpu.step().exception is None
    assert cpu.get_reg("eflags") == 0x003 and cpu.eip == 0x1234


class _Controller:
    def __init__(self, vector: int) -> None:
        self.vector = vector
        self.acks = 0

    def acknowledge(self) -> int:
        self.acks += 1
        return self.vector


def _with_line(code: bytes, eflags: int):
    cpu = _cpu(code, {0x30: gate(0x08, HANDLER, INT_GATE32)}, eflags=eflags)
    cpu.intr_controller = _Controller(0x30)
    cpu.intr_requested = True
    return cpu


def test_intr_is_taken_between_instructions_only_with_if() -> None:
    """With IF = 1 the pending interrupt is delivered before the next instruction (no
    error code, return EIP = that instruction); with IF = 0 the instruction runs."""
    cpu = _with_line(bytes.fromhex("90"), 0x202)
    result = cpu.step()
    assert result.insn is None and cpu.eip == HANDLER and _stack(cpu, 3) == [CODE, 8, 0x202]
    cpu = _with_line(bytes.fromhex("90"), 0x002)
    assert cpu.step().insn is not None and cpu.eip == CODE + 1


def test_sti_and_mov_ss_shadows() -> None:
    """STI with IF = 0: the instruction after STI runs before the interrupt. MOV SS:
    likewise for the next instruction."""
    cpu = _with_line(bytes.fromhex("fb 90 90"), 0x002)
    assert cpu.run(2) is None
    assert cpu.eip == CODE + 2 and cpu.intr_controller.acks == 0
    cpu.step()
    assert cpu.eip == HANDLER and _stack(cpu, 1) == [CODE + 2]
    cpu = _with_line(bytes.fromhex("8e d0 90 90"), 0x202)
    cpu.intr_requested = False
    cpu.set_reg("eax", 0x10)
    assert cpu.step().exception is None
    cpu.intr_requested = True
    cpu.step()
    assert cpu.eip == CODE + 3  # the NOP after MOV SS ran first
    cpu.step()
    assert cpu.eip == HANDLER


@pytest.mark.parametrize("code, taken_at", [
    ("90 90 fb 90 90", 4),  # NOP NOP STI NOP: after the NOP in STI's shadow
    ("90 9d 90 90", 2),     # NOP POPF(IF = 1): at the very next boundary
])
def test_a_line_held_while_if_is_clear_is_taken_when_it_is_set(code: str,
                                                               taken_at: int) -> None:
    """INTR asserted with IF = 0 waits (SDM Vol. 3A, 6.8.1); ``run()`` keeps running
    instructions in its fast path meanwhile, and the interrupt comes at the same
    boundary as when stepping one by one."""
    outcomes = []
    for through_run in (False, True):
        cpu = _with_line(bytes.fromhex(code), 0x002)
        cpu.push(0x202, 32)  # POPF's image: IF = 1
        if through_run:
            cpu.run(taken_at + 2)
        else:
            for _ in range(taken_at + 2):
                cpu.step()
        outcomes.append((cpu.eip, _stack(cpu, 3), cpu.intr_controller.acks))
    assert outcomes[0] == outcomes[1]
    eip, frame, acks = outcomes[1]
    assert acks == 1 and frame[0] == CODE + taken_at and frame[2] & IF_BIT


def test_hlt_resumes_on_interrupt() -> None:
    cpu = _with_line(bytes.fromhex("f4 90"), 0x202)
    cpu.intr_requested = False
    assert cpu.step().halted
    cpu.intr_requested = True
    cpu.step()
    assert not cpu.halted and cpu.eip == HANDLER and _stack(cpu, 1) == [CODE + 1]


def test_nmi_ignores_if_and_blocks_until_iret() -> None:
    cpu = _cpu(bytes.fromhex("90 90"), {2: gate(0x08, HANDLER, INT_GATE32)}, eflags=0x002)
    cpu.nmi_requested = True
    cpu.step()
    assert cpu.eip == HANDLER and cpu.nmi_blocked
    cpu.nmi_requested = True
    cpu.step()
    assert cpu.eip == HANDLER + 1  # blocked: the handler's NOP ran


def test_rf_lasts_one_instruction_and_single_step_sets_dr6_bs() -> None:
    """IRET loads RF = 1 from its image; the next instruction clears it when it starts.
    A TF single-step #DB sets DR6.BS (bit 14)."""
    cpu = _cpu(bytes.fromhex("cf 90 90"), {})
    for value in (0x202 | RF, 0x08, CODE + 1):  # EFLAGS, CS, EIP
        cpu.push(value, 32)
    assert cpu.step().exception is None and cpu.get_reg("eflags") & RF
    assert cpu.step().exception is None and not cpu.get_reg("eflags") & RF
    cpu = _cpu(bytes.fromhex("90"), {}, eflags=0x302)
    cpu.delivery = ReportAndStop()
    assert cpu.step().exception.vector == 1 and cpu.dr[4] & (1 << 14)


def test_icebp_is_a_db_trap_without_the_gate_dpl_check() -> None:
    """F1 at CPL 3 through a DPL-0 gate: delivered (INT n would be #GP), return EIP past
    F1, no error code, like a hardware event (SDM Vol. 3A, 6.12.1.1)."""
    cpu = _cpu(bytes.fromhex("f1"), {1: gate(0x08, HANDLER, INT_GATE32, dpl=0)}, cpl=3)
    assert cpu.step().exception is None
    assert cpu.eip == HANDLER and _stack(cpu, 2) == [CODE + 1, 0x1B]
