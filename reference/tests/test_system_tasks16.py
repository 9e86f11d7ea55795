"""Hardware task switching with 16-bit TSSs (SDM Vol. 3A, 7.6 "16-bit Task-State
Segment", Figure 7-11; the switch itself is 7.3's, the TSS types are 1 = available and
3 = busy 286 TSS, Table 3-2). TSS images are written here from Figure 7-11:

    0 previous task link, 2 SP0, 4 SS0, 6 SP1, 8 SS1, 10 SP2, 12 SS2, 14 IP, 16 FLAG word,
    18 AX, 20 CX, 22 DX, 24 BX, 26 SP, 28 BP, 30 SI, 32 DI, 34 ES, 36 CS, 38 SS, 40 DS,
    42 LDT selector: 44 bytes, limit 0x2B.

The SDM leaves the upper halves of the general registers loaded from a 16-bit TSS
undefined ("modified and not maintained"), so the tests read only the low words."""

from __future__ import annotations

from reference.cpu import SystemSegment
from reference.faults import GP, TS
from reference.step import ReportAndStop
from reference.system.exceptions import SystemDelivery
from reference.tests import test_system_tasks as tasks32
from reference.tests.conftest import CODE, STACK_TOP
from reference.tests.system_tables import (
    CALL_GATE32,
    DATA_RW,
    GDT,
    INT_GATE32,
    STANDARD_GDT,
    TSS_BASE,
    descriptor,
    gate,
    protected_cpu,
)

NEW_TSS = 0x6000
NEW_EIP, NEW_SP = 0x1100, 0x9F00
TSS16_AVAILABLE, TSS16_BUSY, TASK_GATE = 0x1, 0x3, 0x5
STACK16 = 0x40  # a 16-bit (B = 0) ring-0 data segment: a 16-bit task's stack
WORDS = ("ax", "cx", "dx", "bx", "sp", "bp", "si", "di")


def tss16_image(ip: int, flags: int = 0x0002, regs=(0,) * 8, es: int = 0x10,
                cs: int = 0x08, ss: int = STACK16, ds: int = 0x10, ldt: int = 0,
                sp0: int = 0, ss0: int = 0) -> bytes:
    """A 44-byte 16-bit TSS laid out as Figure 7-11."""
    image = bytearray(44)

    def word(at: int, value: int) -> None:
        image[at:at + 2] = value.to_bytes(2, "little")

    word(2, sp0)
    word(4, ss0)
    word(14, ip)
    word(16, flags)
    for index, value in enumerate(regs):
        word(18 + 2 * index, value)
    for at, value in ((34, es), (36, cs), (38, ss), (40, ds), (42, ldt)):
        word(at, value)
    return bytes(image)


REGS = (0x1111, 0x2222, 0x3333, 0x4444, NEW_SP, 0x6666, 0x7777, 0x8888)


def _cpu(code: bytes, new_tss: bytes, idt=None, limit: int = 0x2B,
         kind: int = TSS16_AVAILABLE):
    """The 32-bit tests' CPU with a 16-bit TSS at 0x50 (its task gate at 0x58) and a
    16-bit stack segment for the new task."""
    return tasks32._cpu(code, new_tss, idt, descriptor(NEW_TSS, limit, kind, s=0),
                        {STACK16: descriptor(0, 0xFFFF, DATA_RW, db=0)})


def _type(cpu, selector: int) -> int:
    return cpu.mem.read_int(GDT + selector + 5, 1) & 0xF


def _word(cpu, address: int) -> int:
    return cpu.mem.read_int(address, 2)


def test_jmp_to_a_16_bit_tss_and_back() -> None:
    """JMP 0x50:0 from a 32-bit task: the old task is saved in its 32-bit TSS (EIP at
    32, EAX at 40), the new one loaded from Figure 7-11's offsets (IP, FLAG word, AX..DI,
    ES CS SS DS); 0x50 becomes busy (type 3), 0x28 available (type 9), CR0.TS set. The
    16-bit task's JMP 0x28:0 saves it in the 16-bit format (the low words only: EAX =
    0xABCD1234 stores 0x1234 at 18 and leaves CX at 20) and resumes the first task."""
    cpu = _cpu(bytes.fromhex("ea 00 00 00 00 50 00"),
               tss16_image(NEW_EIP, flags=0x0083, regs=REGS))
    cpu.mem.write_bytes(NEW_EIP, bytes.fromhex("ea 00 00 00 00 28 00"))
    cpu.set_reg("eax", 0x5555AAAA)
    assert cpu.step().exception is None
    assert (cpu.tr.selector, cpu.eip, cpu.get_reg("eflags") & 0xFFFF) == (
        0x50, NEW_EIP, 0x0083)
    assert tuple(cpu.get_reg(name) for name in WORDS) == REGS
    assert tuple(cpu.get_reg(name) for name in ("es", "cs", "ss", "ds")) == (
        0x10, 0x08, STACK16, 0x10)
    assert cpu.mem.read_int(TSS_BASE + 32, 4) == CODE + 7
    assert cpu.mem.read_int(TSS_BASE + 40, 4) == 0x5555AAAA
    assert (_type(cpu, 0x28), _type(cpu, 0x50)) == (0x9, 0x3)
    assert cpu.cr0 & 8
    cpu.set_reg("eax", 0xABCD1234)
    assert cpu.step().exception is None  # JMP 0x28:0 from the 16-bit task
    assert (cpu.tr.selector, cpu.eip, cpu.get_reg("eax")) == (0x28, CODE + 7, 0x5555AAAA)
    assert (_word(cpu, NEW_TSS + 14), _word(cpu, NEW_TSS + 16)) == (NEW_EIP + 7, 0x0083)
    assert (_word(cpu, NEW_TSS + 18), _word(cpu, NEW_TSS + 20)) == (0x1234, 0x2222)
    assert _word(cpu, NEW_TSS + 26) == NEW_SP
    assert [_word(cpu, NEW_TSS + at) for at in (34, 36, 38, 40)] == [
        0x10, 0x08, STACK16, 0x10]
    assert (_type(cpu, 0x28), _type(cpu, 0x50)) == (0xB, 0x1)


def test_call_through_a_task_gate_then_iret_back() -> None:
    """CALL 0x58:0 (a task gate naming the 16-bit TSS): its previous task link (offset
    0) = 0x28, NT set, both busy (Table 7-2). The 16-bit task's IRET (NT = 1) goes back
    through the link: the first task resumes after the CALL, 0x50 is available again,
    and its saved FLAG word (offset 16) has NT clear, IP (offset 14) after the IRET."""
    cpu = _cpu(bytes.fromhex("9a 00 00 00 00 58 00"), tss16_image(NEW_EIP, regs=REGS))
    assert cpu.step().exception is None
    assert cpu.tr.selector == 0x50 and _word(cpu, NEW_TSS) == 0x28
    assert cpu.get_reg("eflags") & 0x4000
    assert (_type(cpu, 0x28), _type(cpu, 0x50)) == (0xB, 0x3)
    assert cpu.step().exception is None  # IRET
    assert (cpu.tr.selector, cpu.eip, cpu.get_reg("esp")) == (0x28, CODE + 7, STACK_TOP)
    assert _type(cpu, 0x50) == 0x1
    assert not _word(cpu, NEW_TSS + 16) & 0x4000
    assert _word(cpu, NEW_TSS + 14) == NEW_EIP + 1


def test_a_fault_through_a_task_gate_pushes_a_word_error_code() -> None:
    """#GP(0x50) (MOV DS with a TSS selector) through a task gate to the 16-bit TSS:
    the switch happens, the link is 0x28, and the error code is pushed on the new task's
    (16-bit) stack as a word: SP = 0x9F00 - 2, the word there 0x50, the word below it
    untouched. The old task's saved EIP is the faulting MOV."""
    idt = {13: gate(0x58, 0, TASK_GATE)}
    cpu = _cpu(bytes.fromhex("66 b8 50 00 8e d8"), tss16_image(NEW_EIP, regs=REGS),
               idt=idt)
    cpu.mem.write_int(NEW_SP - 4, 2, 0xBEEF)
    assert cpu.step().exception is None  # MOV AX, 0x50
    assert cpu.step().exception is None  # MOV DS, AX: #GP delivered through the task
    assert (cpu.tr.selector, cpu.eip, _word(cpu, NEW_TSS)) == (0x50, NEW_EIP, 0x28)
    assert cpu.get_reg("sp") == NEW_SP - 2 and _word(cpu, NEW_SP - 2) == 0x50
    assert _word(cpu, NEW_SP - 4) == 0xBEEF
    assert cpu.mem.read_int(TSS_BASE + 32, 4) == CODE + 4


def test_int_n_through_a_task_gate_pushes_nothing() -> None:
    """INT 0x40 through a task gate to the 16-bit TSS: a software interrupt pushes no
    error code, so SP is the TSS's; the old task resumes after the INT on IRET."""
    idt = {0x40: gate(0x58, 0, TASK_GATE)}
    cpu = _cpu(bytes.fromhex("cd 40"), tss16_image(NEW_EIP, regs=REGS), idt=idt)
    assert cpu.step().exception is None
    assert (cpu.tr.selector, cpu.eip, cpu.get_reg("sp")) == (0x50, NEW_EIP, NEW_SP)
    assert cpu.step().exception is None  # IRET
    assert (cpu.tr.selector, cpu.eip) == (0x28, CODE + 2)


def test_a_limit_below_0x2b_is_ts() -> None:
    """A 16-bit TSS whose limit (0x2A) does not cover Figure 7-11's 44 bytes: JMP is
    #TS(TSS selector) (Table 7-1, JMP's Operation) and no switch happens."""
    cpu = _cpu(bytes.fromhex("ea 00 00 00 00 50 00"), tss16_image(NEW_EIP), limit=0x2A)
    cpu.delivery = ReportAndStop()
    exc = cpu.step().exception
    assert (exc.vector, exc.error_code) == (TS, 0x50)
    assert (cpu.tr.selector, cpu.eip, _type(cpu, 0x50)) == (0x28, CODE, 0x1)


def test_jmp_to_a_busy_16_bit_tss_is_gp() -> None:
    """JMP to a busy 286 TSS (type 3): #GP(TSS selector) (JMP, Operation: "IF TSS
    descriptor specifies that the TSS is busy THEN #GP(TSS selector)")."""
    cpu = _cpu(bytes.fromhex("ea 00 00 00 00 50 00"), tss16_image(NEW_EIP),
               kind=TSS16_BUSY)
    cpu.delivery = ReportAndStop()
    exc = cpu.step().exception
    assert (exc.vector, exc.error_code) == (GP, 0x50)
    assert cpu.tr.selector == 0x28


def test_ltr_of_a_16_bit_tss_marks_it_busy() -> None:
    """LTR AX with AX = 0x50 (an available 286 TSS): TR = 0x50 with the descriptor's
    base and limit, and the GDT entry's type becomes 3 (busy)."""
    cpu = _cpu(bytes.fromhex("66 b8 50 00 0f 00 d8"), tss16_image(NEW_EIP))
    assert cpu.step().exception is None and cpu.step().exception is None
    assert (cpu.tr.selector, cpu.tr.base, cpu.tr.limit) == (0x50, NEW_TSS, 0x2B)
    assert _type(cpu, 0x50) == 0x3


def test_int_from_ring_3_takes_ss0_sp0_from_a_16_bit_tss() -> None:
    """INT 0x80 at CPL 3 through a ring-0 interrupt gate with TR a 16-bit TSS: the new
    stack is SS0 (offset 4) : SP0 (offset 2) (7.6), so the five dwords of the frame end
    at 0x9700 - 20, and the old SS:ESP are the outermost two."""
    idt = {0x80: gate(0x08, 0x1800, INT_GATE32, dpl=3)}
    cpu = protected_cpu(bytes.fromhex("cd 80"), cpl=3, idt=idt)
    cpu.mem.write_bytes(TSS_BASE, tss16_image(0, sp0=0x9700, ss0=0x10))
    cpu.mem.write_int(TSS_BASE + 8, 2, 0x23)  # SS1, where a 32-bit TSS keeps SS0
    cpu.tr = SystemSegment(0x28, TSS_BASE, 0x2B, 0x8300)
    cpu.delivery = SystemDelivery()
    assert cpu.step().exception is None
    assert (cpu.eip, cpu.get_reg("ss"), cpu.get_reg("esp")) == (0x1800, 0x10, 0x9700 - 20)
    assert cpu.mem.read_int(0x9700 - 4, 2) == 0x23  # old SS (its low word)
    assert cpu.mem.read_int(0x9700 - 8, 4) == STACK_TOP


def test_call_gate_from_ring_3_takes_ss0_sp0_from_a_16_bit_tss() -> None:
    """CALL 0x4B:0 at CPL 3 through a DPL-3 call gate to ring-0 code, TR a 16-bit TSS:
    SS:ESP = SS0 (offset 4) : SP0 (offset 2), then old SS, old ESP, old CS and the
    return EIP pushed (SDM Vol. 2A, CALL, MORE-PRIVILEGE; no parameters)."""
    gdt = dict(STANDARD_GDT)
    gdt[0x48] = gate(0x08, 0x1100, CALL_GATE32, dpl=3)
    cpu = protected_cpu(bytes.fromhex("9a 00 00 00 00 4b 00"), gdt, cpl=3)
    cpu.mem.write_bytes(TSS_BASE, tss16_image(0, sp0=0x9600, ss0=0x10))
    cpu.tr = SystemSegment(0x28, TSS_BASE, 0x2B, 0x8300)
    cpu.delivery = SystemDelivery()
    assert cpu.step().exception is None
    assert (cpu.cpl, cpu.get_reg("ss"), cpu.eip) == (0, 0x10, 0x1100)
    assert cpu.get_reg("esp") == 0x9600 - 16
    assert [cpu.mem.read_int(0x9600 - 16 + 4 * i, 4) for i in range(3)] == [
        CODE + 7, 0x1B, STACK_TOP]


def test_from_one_16_bit_task_to_another() -> None:
    """TR a busy 16-bit TSS whose limit is 0x2B (enough for Figure 7-11, not for a
    32-bit TSS): CALL 0x50:0 saves the old task in the 16-bit format (IP after the CALL
    at 14, AX at 18) and links the new one to it (0x28 at offset 0)."""
    cpu = _cpu(bytes.fromhex("9a 00 00 00 00 50 00"), tss16_image(NEW_EIP, regs=REGS))
    cpu.mem.write_bytes(TSS_BASE, bytes(44))
    cpu.mem.write_bytes(GDT + 0x28, descriptor(TSS_BASE, 0x2B, TSS16_BUSY, s=0))
    cpu.tr = SystemSegment(0x28, TSS_BASE, 0x2B, 0x8300)
    cpu.set_reg("eax", 0x9876ABCD)
    assert cpu.step().exception is None
    assert (cpu.tr.selector, cpu.eip, _word(cpu, NEW_TSS)) == (0x50, NEW_EIP, 0x28)
    assert (_word(cpu, TSS_BASE + 14), _word(cpu, TSS_BASE + 18)) == (CODE + 7, 0xABCD)
    assert _word(cpu, TSS_BASE + 36) == 0x08  # CS
    assert (_type(cpu, 0x28), _type(cpu, 0x50)) == (0x3, 0x3)
