"""Virtual-8086 tasks and the ways out of virtual-8086 mode through the IDT (SDM Vol. 3A
7.3 "Task Switching"; Vol. 3B 20.2.5 "Entering Virtual-8086 Mode", 20.2.6 "Leaving
Virtual-8086 Mode", 20.3.1 "Class 1 - Hardware Interrupts and Exceptions"; Vol. 2A, INT
n, INTERRUPT-FROM-VIRTUAL-8086-MODE, and IRET).

A task switch whose new 32-bit TSS has VM = 1 in its EFLAGS image enters virtual-8086
mode: VM is updated before the segment registers are loaded, so they are loaded as
8086 selectors (base = selector * 16, 64 KiB, 16-bit) and the task runs at CPL 3. An
interrupt or exception there leaves the mode through a task gate (the virtual-8086
state is saved in its TSS, VM = 1 in the EFLAGS image, the selectors as they were) or
through an interrupt/trap gate, which pushes GS FS DS ES SS ESP EFLAGS CS EIP (and an
error code) as words through a 16-bit gate and dwords through a 32-bit one. IRET in
virtual-8086 mode never switches tasks: the Operation goes to
RETURN-FROM-VIRTUAL-8086-MODE before it looks at NT.

TSS images are written here from Figure 7-2 (32-bit) and Figure 7-11 (16-bit).
"""

from __future__ import annotations

import struct
from typing import List, Optional

from reference import Cpu
from reference.faults import GP
from reference.step import ReportAndStop
from reference.system.exceptions import SystemDelivery
from reference.tests.conftest import CODE
from reference.tests.system_tables import (
    DATA_RW,
    GDT,
    INNER_STACK_TOP,
    LDT_BASE,
    LDT_TYPE,
    STANDARD_GDT,
    TRAP_GATE32,
    TSS32,
    TSS_BASE,
    descriptor,
    gate,
    protected_cpu,
    stack_items,
)

VM, IOPL3, IF, NT, RF = 1 << 17, 3 << 12, 1 << 9, 1 << 14, 1 << 16
TASK_GATE, INT_GATE16, TRAP_GATE16, TSS16 = 0x5, 0x6, 0x7, 0x1
V86_TSS, V86_TSS_SEL = 0xC000, 0x50     # the virtual-8086 task's 32-bit TSS
TSS16_BASE, TSS16_SEL = 0xC100, 0x58    # a 16-bit task (protected mode, CPL 0)
LDT_SEL = 0x60
STACK16_SEL = 0x40                       # a 16-bit (B = 0) ring-0 stack for the 16-bit task
MAIN_SEL = 0x28                          # TR at the start: TSS_BASE, busy
HANDLER16 = 0x1800                       # a ring-0 handler in the 16-bit code segment 0x30
TASK16_IP = 0x1900                       # the 16-bit task's code (flat 32-bit CS 0x08)
TASK16_SP = 0x9400
# The virtual-8086 task: CS:IP 0A00:0010 (linear 0xA010), SS:SP 0B00:0800, DS 0A10
# (base 0xA100), ES 0C00, FS 0D00, GS 0E00.
V86 = {"es": 0x0C00, "cs": 0x0A00, "ss": 0x0B00, "ds": 0x0A10, "fs": 0x0D00, "gs": 0x0E00}
V86_IP, V86_SP = 0x0010, 0x0800
V86_CODE = (V86["cs"] << 4) + V86_IP
SEGMENTS = ("es", "cs", "ss", "ds", "fs", "gs")
REGS32 = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")


def tss32_image(eip: int, eflags: int, esp: int, selectors: dict, ldt: int = 0,
                ebx: int = 0) -> bytes:
    """Figure 7-2: EIP at 32, EFLAGS at 36, EAX..EDI at 40 (ESP at 56, EBX at 52), ES CS
    SS DS FS GS at 72 + 4i, the LDT selector at 96, the I/O map base at 102."""
    image = bytearray(104)
    struct.pack_into("<II", image, 32, eip, eflags)
    struct.pack_into("<I", image, 52, ebx)
    struct.pack_into("<I", image, 56, esp)
    for index, name in enumerate(SEGMENTS):
        struct.pack_into("<H", image, 72 + 4 * index, selectors[name])
    struct.pack_into("<HH", image, 96, ldt, 104)
    return bytes(image)


def tss16_image(ip: int, sp: int) -> bytes:
    """Figure 7-11: IP at 14, FLAG word at 16 (0x0002), SP at 26, ES CS SS DS at 34..40;
    CS 0x08, SS 0x40 (16-bit: the SDM leaves the upper half of ESP loaded from a
    16-bit TSS undefined, so only SP may count), DS and ES 0x10."""
    image = bytearray(44)
    struct.pack_into("<HH", image, 14, ip, 0x0002)
    struct.pack_into("<H", image, 26, sp)
    struct.pack_into("<4H", image, 34, 0x10, 0x08, STACK16_SEL, 0x10)
    return bytes(image)


def _cpu(code: bytes, v86_code: bytes, eflags: int = VM | IOPL3 | IF | 2,
         idt: Optional[dict] = None, ldt: int = 0, eip: int = V86_IP) -> Cpu:
    """Task 0x28 (TSS_BASE, busy, CPL 0) runs ``code`` at CODE; the virtual-8086 task
    0x50 (available) is ready to start at 0A00:0010 with ``eflags``; a 16-bit TSS 0x58
    starts at TASK16_IP (stack 0x40:TASK16_SP); an LDT descriptor at 0x60 (base
    LDT_BASE)."""
    gdt = dict(STANDARD_GDT)
    gdt[V86_TSS_SEL] = descriptor(V86_TSS, 103, TSS32, s=0)
    gdt[TSS16_SEL] = descriptor(TSS16_BASE, 0x2B, TSS16, s=0)
    gdt[LDT_SEL] = descriptor(LDT_BASE, 0xF, LDT_TYPE, s=0)
    gdt[MAIN_SEL] = descriptor(TSS_BASE, 103, TSS32 | 2, s=0)  # busy, as after LTR
    gdt[STACK16_SEL] = descriptor(0, 0xFFFF, DATA_RW, db=0)
    cpu = protected_cpu(code, gdt, idt=idt)
    cpu.delivery = SystemDelivery()
    for page in (0xA000, 0xB000, 0xC000):
        cpu.mem.map(page, bytes(4096))
    cpu.mem.write_bytes(V86_CODE, v86_code)
    cpu.mem.write_bytes(V86_TSS, tss32_image(eip, eflags, V86_SP, V86, ldt, ebx=0x5A5A))
    cpu.mem.write_bytes(TSS16_BASE, tss16_image(TASK16_IP, TASK16_SP))
    return cpu


def _type(cpu, selector: int) -> int:
    return cpu.mem.read_int(GDT + selector + 5, 1) & 0xF


def _dword(cpu, address: int) -> int:
    return cpu.mem.read_int(address, 4)


def _saved_selectors(cpu, base: int) -> List[int]:
    return [cpu.mem.read_int(base + 72 + 4 * i, 2) for i in range(6)]


def _assert_in_the_v86_task(cpu, ip: int) -> None:
    assert (cpu.mode, cpu.cpl, cpu.eip, cpu.tr.selector) == ("vm86", 3, ip, V86_TSS_SEL)
    assert [cpu.get_reg(name) for name in SEGMENTS] == [V86[name] for name in SEGMENTS]
    assert cpu.seg_base == [V86[name] << 4 for name in SEGMENTS]
    assert cpu.seg_limit == [0xFFFF] * 6
    assert (cpu.default_size, cpu.stack_size) == (16, 16)


JMP_V86_TASK = bytes.fromhex("ea 00 00 00 00 50 00")


def test_jmp_to_a_tss_with_vm_set_enters_virtual_8086_mode() -> None:
    """JMP 0x50:0: the new TSS's EFLAGS image has VM = 1, so the segment registers are
    loaded as 8086 selectors (20.2.5: base = selector * 16, no descriptors), CPL 3,
    EFLAGS the image (JMP leaves NT clear), EIP/ESP/EBX from the TSS. The old task is
    saved and made available (Table 7-2). The first instruction then reads DS:0010 at
    linear 0xA110."""
    cpu = _cpu(JMP_V86_TASK, bytes.fromhex("8b 1e 10 00"))  # MOV BX, [0010]
    cpu.mem.write_int(0xA110, 2, 0xBEEF)
    assert cpu.step().exception is None
    _assert_in_the_v86_task(cpu, V86_IP)
    assert cpu.get_reg("eflags") == VM | IOPL3 | IF | 2
    assert (cpu.get_reg("esp"), cpu.get_reg("ebx")) == (V86_SP, 0x5A5A)
    assert (_type(cpu, MAIN_SEL), _type(cpu, V86_TSS_SEL)) == (0x9, 0xB)
    assert _dword(cpu, TSS_BASE + 32) == CODE + 7
    assert cpu.step().exception is None
    assert cpu.get_reg("ebx") == 0xBEEF


def test_out_through_a_task_gate_and_back_in_by_iret() -> None:
    """The virtual-8086 task's INT 21h (IOPL 3) through a DPL-3 task gate to task 0x28:
    its TSS receives EIP past the INT, EFLAGS with VM = 1 and its 8086 selectors
    (20.2.6); task 0x28 resumes after its JMP in protected mode at CPL 0 with NT = 1 and
    link 0x50. Its IRETD (NT = 1) switches back: virtual-8086 mode again where the task
    left off, 0x28 available, its saved EFLAGS without NT."""
    idt = {0x21: gate(MAIN_SEL, 0, TASK_GATE, dpl=3)}
    cpu = _cpu(JMP_V86_TASK + b"\xcf", bytes.fromhex("bb 34 12 cd 21 90"), idt=idt)
    assert cpu.step().exception is None  # JMP into the task
    assert cpu.step().exception is None  # MOV BX, 1234h
    assert cpu.step().exception is None  # INT 21h: back to task 0x28
    assert (cpu.mode, cpu.cpl, cpu.eip, cpu.tr.selector) == ("prot32", 0, CODE + 7, MAIN_SEL)
    assert cpu.get_reg("eflags") & NT and cpu.mem.read_int(TSS_BASE, 2) == V86_TSS_SEL
    assert (cpu.get_reg("cs"), cpu.default_size) == (0x08, 32)
    assert _dword(cpu, V86_TSS + 32) == V86_IP + 5
    assert _dword(cpu, V86_TSS + 36) == VM | IOPL3 | IF | 2
    assert _dword(cpu, V86_TSS + 52) == 0x1234  # EBX
    assert _saved_selectors(cpu, V86_TSS) == [V86[name] for name in SEGMENTS]
    assert (_type(cpu, MAIN_SEL), _type(cpu, V86_TSS_SEL)) == (0xB, 0xB)
    assert cpu.step().exception is None  # IRETD through the link
    _assert_in_the_v86_task(cpu, V86_IP + 5)
    assert cpu.get_reg("ebx") == 0x1234
    assert (_type(cpu, MAIN_SEL), _type(cpu, V86_TSS_SEL)) == (0x9, 0xB)
    assert not _dword(cpu, TSS_BASE + 36) & NT
    assert cpu.step().exception is None and cpu.eip == V86_IP + 6  # the NOP


def test_iret_inside_a_called_v86_task_does_not_switch_tasks() -> None:
    """CALL 0x50:0 sets NT in the virtual-8086 task and links it to 0x28, but its IRET
    (IOPL 3) pops IP, CS and FLAGS 8086-style: IRET's Operation takes
    RETURN-FROM-VIRTUAL-8086-MODE when VM = 1, before any NT test."""
    cpu = _cpu(bytes.fromhex("9a 00 00 00 00 50 00"), b"\xcf")
    cpu.mem.write_bytes((V86["ss"] << 4) + V86_SP, struct.pack("<HHH", 0x0040, 0x0A00,
                                                                  0x3202 | NT))
    assert cpu.step().exception is None
    assert cpu.get_reg("eflags") & NT and cpu.mem.read_int(V86_TSS, 2) == MAIN_SEL
    assert cpu.step().exception is None  # IRET
    assert (cpu.mode, cpu.tr.selector, cpu.eip, cpu.get_reg("sp")) == (
        "vm86", V86_TSS_SEL, 0x0040, V86_SP + 6)


def test_the_ldtr_of_a_v86_task_is_loaded_from_its_tss() -> None:
    """A virtual-8086 task's LDT selector (offset 96) is loaded as any task's (7.3 step
    11), while its segment registers are not looked up in any table."""
    cpu = _cpu(JMP_V86_TASK, b"\x90", ldt=LDT_SEL)
    assert cpu.step().exception is None
    assert (cpu.ldtr.selector, cpu.ldtr.base, cpu.ldtr.limit) == (LDT_SEL, LDT_BASE, 0xF)
    _assert_in_the_v86_task(cpu, V86_IP)


def test_an_eip_beyond_64k_is_gp0_in_the_new_task() -> None:
    """EIP 10000h in the virtual-8086 task's TSS lies beyond its 64-KiB CS: JMP's
    TASK-STATE-SEGMENT branch ends "IF EIP not within code segment limit THEN #GP(0)",
    raised after the switch: TR 0x50, virtual-8086 mode, EIP 10000h."""
    cpu = _cpu(JMP_V86_TASK, b"\x90", eip=0x10000)
    cpu.delivery = ReportAndStop()
    exception = cpu.step().exception
    assert (exception.vector, exception.error_code) == (GP, 0)
    assert (cpu.mode, cpu.tr.selector, cpu.eip) == ("vm86", V86_TSS_SEL, 0x10000)


def test_a_16_bit_tss_cannot_start_a_v86_task() -> None:
    """20.2.5: the upper word of EFLAGS is not in a 16-bit TSS, so a switch to one
    clears VM, whatever ran before: INT 21h from the virtual-8086 task through a task
    gate to the 16-bit TSS runs it in protected mode at CPL 0 (CS 0x08, SS 0x40)."""
    idt = {0x21: gate(TSS16_SEL, 0, TASK_GATE, dpl=3)}
    cpu = _cpu(JMP_V86_TASK, bytes.fromhex("cd 21"), idt=idt)
    assert cpu.step().exception is None
    assert cpu.step().exception is None  # INT 21h: to the 16-bit task
    assert (cpu.mode, cpu.cpl, cpu.eip, cpu.tr.selector) == (
        "prot32", 0, TASK16_IP, TSS16_SEL)
    assert cpu.get_reg("eflags") == NT | 2 and cpu.get_reg("sp") == TASK16_SP
    assert (cpu.get_reg("cs"), cpu.get_reg("ss"), cpu.seg_base[1]) == (0x08, STACK16_SEL, 0)
    assert cpu.mem.read_int(TSS16_BASE, 2) == V86_TSS_SEL
    assert _dword(cpu, V86_TSS + 36) == VM | IOPL3 | IF | 2
    assert _dword(cpu, V86_TSS + 32) == V86_IP + 2


def test_a_fault_from_v86_through_a_task_gate_to_a_16_bit_tss_and_back() -> None:
    """CLI at IOPL 0 in the virtual-8086 task: #GP(0) through a task gate to the 16-bit
    TSS. The old TSS holds EIP of the CLI and EFLAGS with VM and RF (a fault); the
    error code is pushed on the 16-bit task's stack as a word. The 16-bit task's IRET
    (NT = 1) returns to the virtual-8086 task at the CLI, in virtual-8086 mode."""
    idt = {GP: gate(TSS16_SEL, 0, TASK_GATE)}
    cpu = _cpu(JMP_V86_TASK, b"\xfa", eflags=VM | IF | 2, idt=idt)
    cpu.mem.write_bytes(TASK16_IP, b"\xcf")
    cpu.mem.write_int(TASK16_SP - 2, 2, 0xFFFF)
    assert cpu.step().exception is None
    assert cpu.step().exception is None  # CLI: #GP(0) to the 16-bit task
    assert (cpu.mode, cpu.tr.selector, cpu.eip) == ("prot32", TSS16_SEL, TASK16_IP)
    assert cpu.get_reg("sp") == TASK16_SP - 2 and cpu.mem.read_int(TASK16_SP - 2, 2) == 0
    assert _dword(cpu, V86_TSS + 32) == V86_IP
    assert _dword(cpu, V86_TSS + 36) == VM | RF | IF | 2
    assert cpu.step().exception is None  # IRET back into the virtual-8086 task
    _assert_in_the_v86_task(cpu, V86_IP)
    assert cpu.get_reg("eflags") == VM | RF | IF | 2
    assert _type(cpu, TSS16_SEL) == 0x1


def _v86_through_gate(kind: int, v86_code: bytes, eflags: int):
    """The virtual-8086 task entered, then its event delivered through a ``kind`` gate
    (DPL 3) for vectors 0x21 and 13, to HANDLER16 in the 16-bit ring-0 code segment
    0x30; TSS 0x50's SS0:ESP0 = 0x10:INNER_STACK_TOP."""
    idt = {vector: gate(0x30, HANDLER16, kind, dpl=3) for vector in (0x21, GP)}
    cpu = _cpu(JMP_V86_TASK, v86_code, eflags=eflags, idt=idt)
    cpu.mem.write_int(V86_TSS + 4, 4, INNER_STACK_TOP)
    cpu.mem.write_int(V86_TSS + 8, 2, 0x10)
    assert cpu.step().exception is None
    assert cpu.step().exception is None
    return cpu




def test_int_n_from_v86_through_a_16_bit_interrupt_gate_pushes_nine_words() -> None:
    """INT 21h at IOPL 3 through a 16-bit interrupt gate: INTERRUPT-FROM-VIRTUAL-8086-
    MODE with 16-bit pushes (INT n, Operation: "pushes are 16 bits for 16-bit IDT
    gates"): GS FS DS ES SS SP FLAGS CS IP, 18 bytes below SS0:ESP0; the FLAGS word has
    no room for VM. Then DS ES FS GS null, VM TF NT RF and IF clear, CPL 0, CS:EIP the
    gate's target, and the processor is in protected mode."""
    cpu = _v86_through_gate(INT_GATE16, bytes.fromhex("cd 21"), VM | IOPL3 | IF | 2)
    assert (cpu.mode, cpu.cpl, cpu.eip, cpu.get_reg("cs")) == ("prot32", 0, HANDLER16, 0x30)
    assert (cpu.get_reg("ss"), cpu.get_reg("esp")) == (0x10, INNER_STACK_TOP - 18)
    assert stack_items(cpu, 9, 2) == [V86_IP + 2, V86["cs"], (IOPL3 | IF | 2) & 0xFFFF, V86_SP,
                              V86["ss"], V86["es"], V86["ds"], V86["fs"], V86["gs"]]
    assert [cpu.get_reg(name) for name in ("ds", "es", "fs", "gs")] == [0, 0, 0, 0]
    assert cpu.get_reg("eflags") == IOPL3 | 2
    assert cpu.default_size == 16


def test_a_fault_from_v86_through_a_16_bit_trap_gate_pushes_ten_words() -> None:
    """CLI at IOPL 0: #GP(0), a fault, through a 16-bit trap gate: the nine words and the
    error code word on top (20 bytes), IP the CLI's; the trap gate leaves IF set."""
    cpu = _v86_through_gate(TRAP_GATE16, b"\xfa", VM | IF | 2)
    assert (cpu.mode, cpu.eip, cpu.get_reg("esp")) == ("prot32", HANDLER16,
                                                       INNER_STACK_TOP - 20)
    assert stack_items(cpu, 10, 2) == [0, V86_IP, V86["cs"], IF | 2, V86_SP, V86["ss"], V86["es"],
                               V86["ds"], V86["fs"], V86["gs"]]
    assert cpu.get_reg("eflags") == IF | 2


def test_the_32_bit_gate_from_a_v86_task_pushes_dwords() -> None:
    """The same INT 21h through a 32-bit trap gate: nine dwords (selectors zero-extended)
    with the whole EFLAGS, VM included; IF kept by the trap gate."""
    idt = {0x21: gate(0x08, HANDLER16, TRAP_GATE32, dpl=3)}
    cpu = _cpu(JMP_V86_TASK, bytes.fromhex("cd 21"), idt=idt)
    cpu.mem.write_int(V86_TSS + 4, 4, INNER_STACK_TOP)
    cpu.mem.write_int(V86_TSS + 8, 2, 0x10)
    assert cpu.step().exception is None and cpu.step().exception is None
    esp = cpu.get_reg("esp")
    assert esp == INNER_STACK_TOP - 36
    assert [_dword(cpu, esp + 4 * i) for i in range(9)] == [
        V86_IP + 2, V86["cs"], VM | IOPL3 | IF | 2, V86_SP, V86["ss"], V86["es"], V86["ds"],
        V86["fs"], V86["gs"]]
    assert cpu.get_reg("eflags") == IOPL3 | IF | 2
