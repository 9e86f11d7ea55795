"""Hardware task switching with 32-bit TSSs (SDM Vol. 3A, 7.3): JMP and CALL to a TSS,
IRET through the back link, a double fault through a task gate (how Linux i386 handles
#DF), and a fault in the new task's context. TSS images are written from Figure 7-2."""

from __future__ import annotations

from reference.faults import TS
from reference.step import ReportAndStop
from reference.system.exceptions import SystemDelivery
from reference.tests.conftest import CODE, STACK_TOP
from reference.tests.system_tables import (
    GDT,
    INT_GATE32,
    STANDARD_GDT,
    TSS32,
    descriptor,
    gate,
    protected_cpu,
)

NEW_TSS = 0x6000
NEW_EIP, NEW_ESP = 0x1100, 0x9F00
TASK_GATE = 5


def tss_image(eip: int, esp: int, eflags: int = 0x2, cs: int = 0x08, ss: int = 0x10,
              ds: int = 0x10, eax: int = 0) -> bytes:
    """EIP at 32, EFLAGS at 36, EAX..EDI at 40.., ES CS SS DS FS GS at 72.., LDT at 96."""
    image = bytearray(104)
    image[32:36] = eip.to_bytes(4, "little")
    image[36:40] = eflags.to_bytes(4, "little")
    image[40:44] = eax.to_bytes(4, "little")
    image[56:60] = esp.to_bytes(4, "little")  # ESP is the fifth register
    for index, value in enumerate((ds, cs, ss, ds, 0, 0)):
        image[72 + 4 * index:74 + 4 * index] = value.to_bytes(2, "little")
    return bytes(image)


def _cpu(code: bytes, new_tss: bytes, idt=None, tss_descriptor=None, extra=None):
    """The standard prot32 CPU (TR = 0x28, a busy 32-bit TSS) with ``new_tss`` at
    NEW_TSS behind selector 0x50 (a 32-bit TSS unless ``tss_descriptor`` says otherwise),
    a task gate to it at 0x58, ``extra`` GDT entries, and an IRET at NEW_EIP."""
    gdt = dict(STANDARD_GDT)
    gdt.update(extra or {})
    gdt[0x50] = tss_descriptor or descriptor(NEW_TSS, 103, TSS32, s=0)
    gdt[0x58] = gate(0x50, 0, TASK_GATE, dpl=0)
    cpu = protected_cpu(code.ljust(NEW_EIP - CODE, b"\x90") + b"\xcf", gdt, idt=idt)
    cpu.mem.write_bytes(NEW_TSS, new_tss)
    cpu.mem.write_int(GDT + 0x28 + 5, 1, 0x8B)  # the current TSS is busy, as after LTR
    cpu.delivery = SystemDelivery()
    return cpu


def _type(cpu, selector: int) -> int:
    return cpu.mem.read_int(GDT + selector + 5, 1) & 0xF


def test_jmp_to_tss_saves_old_task_and_loads_new() -> None:
    """JMP 0x50:0: the old TSS gets EIP (next instruction) and EAX; its busy bit is
    cleared, the new one's set; TR = 0x50; CR0.TS set; NT stays clear (Table 7-2)."""
    cpu = _cpu(bytes.fromhex("ea 00 00 00 00 50 00"), tss_image(NEW_EIP, NEW_ESP, eax=7))
    cpu.set_reg("eax", 0x1234)
    assert cpu.step().exception is None
    assert (cpu.tr.selector, cpu.eip, cpu.get_reg("eax"), cpu.get_reg("esp")) == (
        0x50, NEW_EIP, 7, NEW_ESP)
    assert cpu.mem.read_int(0x8000 + 32, 4) == CODE + 7
    assert cpu.mem.read_int(0x8000 + 40, 4) == 0x1234
    assert (_type(cpu, 0x28), _type(cpu, 0x50)) == (0x9, 0xB)
    assert cpu.cr0 & 8 and not cpu.get_reg("eflags") & 0x4000


def test_call_then_iret_returns_through_the_back_link() -> None:
    """CALL 0x58:0 (a task gate): back link = 0x28, NT set, both TSSs busy; the new
    task's IRET (NT = 1) switches back: the old task resumes after the CALL, the new
    TSS is no longer busy and its saved EFLAGS has NT clear."""
    cpu = _cpu(bytes.fromhex("9a 00 00 00 00 58 00"), tss_image(NEW_EIP, NEW_ESP))
    cpu.set_reg("esp", STACK_TOP)
    assert cpu.step().exception is None
    assert cpu.mem.read_int(NEW_TSS, 2) == 0x28 and cpu.get_reg("eflags") & 0x4000
    assert (_type(cpu, 0x28), _type(cpu, 0x50)) == (0xB, 0xB)
    assert cpu.step().exception is None  # IRET
    assert (cpu.tr.selector, cpu.eip, cpu.get_reg("esp")) == (0x28, CODE + 7, STACK_TOP)
    assert _type(cpu, 0x50) == 0x9
    assert not cpu.mem.read_int(NEW_TSS + 36, 4) & 0x4000


def test_double_fault_through_a_task_gate() -> None:
    """#DE whose gate is missing -> #NP -> #DF through a task gate (Linux i386's #DF
    handler is a task): the switch happens and error code 0 lands on the new stack."""
    idt = {0: gate(0x08, 0x1800, INT_GATE32, present=0), 8: gate(0x50, 0, TASK_GATE)}
    cpu = _cpu(bytes.fromhex("f7 f1"), tss_image(NEW_EIP, NEW_ESP), idt=idt)
    assert cpu.step().exception is None
    assert (cpu.tr.selector, cpu.eip) == (0x50, NEW_EIP)
    assert cpu.get_reg("esp") == NEW_ESP - 4 and cpu.mem.read_int(NEW_ESP - 4, 4) == 0
    assert cpu.mem.read_int(0x8000 + 32, 4) == CODE  # the faulting DIV, saved


def test_a_fault_through_a_task_gate_saves_rf_set() -> None:
    """#GP(0x50) (MOV DS with a TSS selector) whose gate is a task gate: the old task's
    saved EFLAGS has RF = 1, the image a task switch back would restore (SDM Vol. 3B
    17.3.1.1: fault-class exceptions establish RF = 1 in the EFLAGS image; task switches
    transfer the RF image from the TSS), EIP the faulting MOV, error code 0x50 pushed on
    the new task's stack. Found by differential/bare_metal (task/ts-null-ss0: Bochs
    saves 0x10202)."""
    idt = {13: gate(0x50, 0, TASK_GATE)}
    cpu = _cpu(bytes.fromhex("66 b8 50 00 8e d8"), tss_image(NEW_EIP, NEW_ESP), idt=idt)
    assert cpu.step().exception is None  # MOV AX, 0x50
    assert cpu.step().exception is None  # MOV DS, AX: #GP delivered through the task
    assert (cpu.tr.selector, cpu.eip) == (0x50, NEW_EIP)
    assert cpu.mem.read_int(0x8000 + 32, 4) == CODE + 4
    assert cpu.mem.read_int(0x8000 + 36, 4) == 0x10002
    assert cpu.mem.read_int(NEW_ESP - 4, 4) == 0x50


def test_no_room_for_an_exception_frame_is_ss_with_ext() -> None:
    """UD2 at CPL 0 on a byte-granular stack segment (limit 0xFFF) with ESP = 8: the
    12-byte #UD frame does not fit, so #SS(EXT) = #SS(1) (SDM Vol. 2A, INT n,
    INTRA-PRIVILEGE-LEVEL-INTERRUPT: "IF current stack does not have room for 16 bytes
    (error code pushed) or 12 bytes (no error code pushed) THEN #SS(EXT)"; EXT = 1
    while a hardware exception is delivered, Vol. 3A 6.13). #SS goes through a task
    gate, which pushes that error code on the new task's stack."""
    idt = {6: gate(0x08, 0x1800, INT_GATE32), 12: gate(0x50, 0, TASK_GATE)}
    code = bytes.fromhex("66 b8 38 00 8e d0 bc 08 00 00 00 0f 0b")  # ss = 0x38; esp = 8
    cpu = _cpu(code, tss_image(NEW_EIP, NEW_ESP), idt=idt)
    cpu.mem.write_bytes(GDT + 0x38, descriptor(0x9000, 0xFFF, 0x2))
    for _ in range(4):
        assert cpu.step().exception is None
    assert (cpu.tr.selector, cpu.eip) == (0x50, NEW_EIP)
    assert cpu.mem.read_int(NEW_ESP - 4, 4) == 1
    assert cpu.mem.read_int(0x8000 + 32, 4) == CODE + 11  # the UD2, saved


def test_bad_code_segment_in_new_task_is_ts_in_the_new_context() -> None:
    """The new TSS's CS is a data segment: #TS(CS selector) raised after the switch:
    TR is the new task's and EIP its first instruction."""
    cpu = _cpu(bytes.fromhex("ea 00 00 00 00 50 00"), tss_image(NEW_EIP, NEW_ESP, cs=0x10))
    cpu.delivery = ReportAndStop()
    exc = cpu.step().exception
    assert (exc.vector, exc.error_code) == (TS, 0x10)
    assert (cpu.tr.selector, cpu.eip, cpu.get_reg("esp")) == (0x50, NEW_EIP, NEW_ESP)
    assert cpu.mem.read_int(0x8000 + 32, 4) == CODE + 7  # the old task was saved
