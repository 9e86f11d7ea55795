"""Virtual-8086 mode without VME (SDM Vol. 3B, ch. 20; Vol. 2A, IRET and INT n Operation).

Every test enters virtual-8086 mode as an operating system does: ring-0 code IRETDs a
nine-dword frame (EIP, CS, EFLAGS with VM = 1, ESP, SS, ES, DS, FS, GS) it wrote on its
own stack. The expected states are the SDM's: segment bases selector * 16 (20.1.1),
CPL 3, the IOPL-sensitive instructions (20.2.7), the I/O bit map checked whatever
IOPL (20.2.8.1), and the frame INTERRUPT-FROM-VIRTUAL-8086-MODE pushes on the ring-0
stack (Figure 20-4 / 6-4 with GS, FS, DS, ES above SS:ESP).
"""

from __future__ import annotations

import pytest

from reference.cpu import SystemSegment
from reference.faults import GP
from reference.system.exceptions import SystemDelivery
from reference.tests.conftest import CODE, STACK_TOP
from reference.tests.system_tables import (
    GDT,
    INNER_STACK_TOP,
    INT_GATE32,
    STANDARD_GDT,
    TRAP_GATE32,
    TSS32,
    TSS_BASE,
    descriptor,
    gate,
    protected_cpu,
    stack_items,
    table_bytes,
    tss32,
)

VM, IOPL3, IF, RF = 1 << 17, 3 << 12, 1 << 9, 1 << 16
HANDLER = 0x1800  # ring-0 handlers on the code page (selector 0x08, flat)
# The virtual-8086 task: CS 0x0200 (base 0x2000), EIP 0x0010, SS:SP 0x0300:0x0700,
# ES 0x0400, DS 0x0210 (base 0x2100), FS 0x0500, GS 0x0600.
V86_CS, V86_EIP, V86_SS, V86_SP = 0x0200, 0x0010, 0x0300, 0x0700
V86_ES, V86_DS, V86_FS, V86_GS = 0x0400, 0x0210, 0x0500, 0x0600
V86_CODE = (V86_CS << 4) + V86_EIP  # 0x2010


def _enter(v86_code: bytes, eflags: int, idt: dict = None, delivery: bool = True):
    """A ring-0 CPU about to IRETD into the virtual-8086 task; ``v86_code`` at 0x2010."""
    code = bytearray(b"\xcf".ljust(0x900, b"\x90"))  # IRETD at CODE
    code[HANDLER - CODE] = 0xCF  # every handler is IRETD
    cpu = protected_cpu(bytes(code), idt=idt)
    if delivery:
        cpu.delivery = SystemDelivery()
    cpu.mem.write_bytes(V86_CODE, v86_code)
    frame = [V86_EIP, V86_CS, eflags, V86_SP, V86_SS, V86_ES, V86_DS, V86_FS, V86_GS]
    esp = STACK_TOP - 4 * len(frame)
    for i, value in enumerate(frame):
        cpu.mem.write_int(esp + 4 * i, 4, value)
    cpu.set_reg("esp", esp)
    assert cpu.step().exception is None
    return cpu




def test_iretd_at_cpl0_with_vm_enters_virtual_8086_mode() -> None:
    """IRET, RETURN-TO-VIRTUAL-8086-MODE: EFLAGS := the image (VM and IOPL included),
    ESP := 0x700, every segment base := selector << 4 with a 64 KiB limit, CPL := 3,
    16-bit default sizes."""
    cpu = _enter(b"\x90", VM | IOPL3 | IF | 2)
    assert cpu.mode == "vm86" and cpu.cpl == 3
    assert (cpu.eip, cpu.get_reg("esp"), cpu.get_reg("eflags")) == (0x10, 0x700, 0x23202)
    assert cpu.sregs == [V86_ES, V86_CS, V86_SS, V86_DS, V86_FS, V86_GS]
    assert cpu.seg_base == [0x4000, 0x2000, 0x3000, 0x2100, 0x5000, 0x6000]
    assert cpu.seg_limit == [0xFFFF] * 6
    assert (cpu.default_size, cpu.stack_size) == (16, 16)


def test_addresses_are_formed_as_in_real_mode() -> None:
    """MOV AX,[BX] reads DS:BX = 0x2100 + 0x20; PUSH AX writes SS:SP-2 = 0x3000 + 0x6FE;
    MOV DS,CX loads base 0x220 << 4 without any descriptor (selector 0x220 lies beyond
    the GDT, which protected mode would fault on); MOV DX,[BX] then reads 0x2220; a word
    at offset 0xFFFF crosses the 64 KiB limit: #GP(0)."""
    code = bytes.fromhex("8b 07 50 8e d9 8b 17 8b 36 ff ff")
    cpu = _enter(code, VM | IOPL3 | 2, delivery=False)
    cpu.set_reg("ebx", 0x20)
    cpu.set_reg("ecx", 0x220)
    cpu.mem.write_int(0x2120, 2, 0xBEEF)
    cpu.mem.write_int(0x2220, 2, 0x1234)
    for _ in range(4):
        assert cpu.step().exception is None
    assert cpu.get_reg("ax") == 0xBEEF and cpu.get_reg("dx") == 0x1234
    assert cpu.get_reg("esp") == 0x6FE and cpu.mem.read_int(0x36FE, 2) == 0xBEEF
    assert (cpu.get_reg("ds"), cpu.seg_base[3]) == (0x220, 0x2200)
    result = cpu.step()
    assert (result.exception.vector, result.exception.error_code) == (GP, 0)


def test_int_n_at_iopl3_goes_to_ring0_with_the_nine_dword_frame_and_back() -> None:
    """INT 0x21 at IOPL 3 through a DPL-3 32-bit interrupt gate to ring-0 code: SS:ESP
    := TSS.SS0:ESP0, then GS FS DS ES SS ESP EFLAGS CS EIP pushed (EIP past the INT),
    DS/ES/FS/GS := 0, VM, TF, RF, NT and IF cleared, CPL 0. The handler's IRETD pops
    the nine dwords and resumes the task where it was."""
    idt = {0x21: gate(0x08, HANDLER, INT_GATE32, dpl=3)}
    cpu = _enter(bytes.fromhex("cd 21 90"), VM | IOPL3 | IF | 2, idt)
    assert cpu.step().exception is None
    assert (cpu.mode, cpu.cpl, cpu.eip) == ("prot32", 0, HANDLER)
    assert (cpu.get_reg("cs"), cpu.get_reg("ss")) == (0x08, 0x10)
    assert cpu.get_reg("esp") == INNER_STACK_TOP - 36
    assert stack_items(cpu, 9) == [0x12, V86_CS, VM | IOPL3 | IF | 2, V86_SP, V86_SS,
                                    V86_ES, V86_DS, V86_FS, V86_GS]
    assert [cpu.get_reg(name) for name in ("ds", "es", "fs", "gs")] == [0, 0, 0, 0]
    assert cpu.get_reg("eflags") == IOPL3 | 2
    assert cpu.default_size == 32
    assert cpu.step().exception is None  # the handler's IRETD
    assert (cpu.mode, cpu.cpl, cpu.eip, cpu.get_reg("esp")) == ("vm86", 3, 0x12, V86_SP)
    assert cpu.seg_base == [0x4000, 0x2000, 0x3000, 0x2100, 0x5000, 0x6000]
    assert cpu.get_reg("eflags") == VM | IOPL3 | IF | 2
    assert cpu.step().exception is None and cpu.eip == 0x13  # the NOP after INT


def test_cli_at_iopl0_is_gp0_delivered_with_the_vm86_frame() -> None:
    """CLI in virtual-8086 mode at IOPL 0: #GP(0), a fault (EIP of the CLI, RF = 1 in
    the image), delivered from virtual-8086 mode through a trap gate (IF kept)."""
    idt = {GP: gate(0x08, HANDLER, TRAP_GATE32)}
    cpu = _enter(b"\xfa", VM | IF | 2, idt)
    assert cpu.step().exception is None
    assert (cpu.mode, cpu.eip) == ("prot32", HANDLER)
    assert stack_items(cpu, 10) == [0, V86_EIP, V86_CS, VM | RF | IF | 2, V86_SP, V86_SS,
                                     V86_ES, V86_DS, V86_FS, V86_GS]
    assert cpu.get_reg("eflags") == IF | 2


@pytest.mark.parametrize("code", ["fa", "fb", "9c", "9d", "cd 21", "cf"])
def test_iopl_sensitive_instructions_fault_below_iopl3(code: str) -> None:
    """SDM Vol. 3B, 20.2.7: CLI, STI, PUSHF, POPF, INT n and IRET are #GP(0) in
    virtual-8086 mode unless IOPL = 3 (without VME), EIP staying on the instruction."""
    cpu = _enter(bytes.fromhex(code), VM | (2 << 12) | 2, delivery=False)
    result = cpu.step()
    assert (result.exception.vector, result.exception.error_code) == (GP, 0)
    assert cpu.eip == V86_EIP and cpu.mode == "vm86"


def test_int3_is_not_iopl_sensitive() -> None:
    """INT3 at IOPL 0 in virtual-8086 mode is a #BP trap, not #GP (INT n Operation
    names INT n alone)."""
    cpu = _enter(b"\xcc", VM | 2, delivery=False)
    assert cpu.step().exception.vector == 3


def _io_tss(denied_port: int) -> bytes:
    """A 32-bit TSS whose I/O bit map (base 104, at offset 102) covers ports 0-255 plus
    the trailing byte, with only ``denied_port``'s bit set."""
    image = bytearray(tss32(INNER_STACK_TOP, 0x10)) + bytearray(33)
    image[102:104] = (104).to_bytes(2, "little")
    image[104 + denied_port // 8] |= 1 << (denied_port % 8)
    image[104 + 32] = 0xFF
    return bytes(image)


def test_io_bitmap_decides_whatever_iopl() -> None:
    """IN AL,0x61 then IN AL,0x60 at IOPL 3: in virtual-8086 mode IOPL does not grant
    I/O (SDM Vol. 3B, 20.2.8.1); the map allows 0x61 and denies 0x60: #GP(0)."""
    cpu = _enter(bytes.fromhex("e4 61 e4 60"), VM | IOPL3 | 2, delivery=False)
    cpu.mem.write_bytes(TSS_BASE, _io_tss(0x60))
    cpu.tr = SystemSegment(0x28, TSS_BASE, 104 + 32, 0x8B00)
    cpu.io_in = lambda port, size: 0x5A
    assert cpu.step().exception is None and cpu.get_reg("al") == 0x5A
    result = cpu.step()
    assert (result.exception.vector, result.exception.error_code) == (GP, 0)
    assert cpu.eip == V86_EIP + 2


def test_gate_to_a_code_segment_of_dpl3_is_gp_selector() -> None:
    """INT 0x21 through a DPL-3 gate whose code segment (0x18) has DPL 3: from
    virtual-8086 mode only DPL 0 is allowed: #GP(0x18) (EXT 0: INT n), delivered to
    the #GP handler with EIP back on the INT (a fault of INT itself)."""
    idt = {0x21: gate(0x18, HANDLER, INT_GATE32, dpl=3),
           GP: gate(0x08, HANDLER, INT_GATE32)}
    cpu = _enter(bytes.fromhex("cd 21"), VM | IOPL3 | IF | 2, idt)
    assert cpu.step().exception is None
    assert (cpu.mode, cpu.eip) == ("prot32", HANDLER)
    assert stack_items(cpu, 4) == [0x18, V86_EIP, V86_CS, VM | IOPL3 | RF | IF | 2]


def test_iretd_at_cpl0_with_eip_beyond_64k_is_gp0() -> None:
    """RETURN-TO-VIRTUAL-8086-MODE: an EIP beyond the 64 KiB code segment is #GP(0);
    nothing changes (still CPL 0, protected mode, the IRETD not retired)."""
    cpu = protected_cpu(b"\xcf".ljust(0x100, b"\x90"))
    frame = [0x10000, V86_CS, VM | 2, V86_SP, V86_SS, V86_ES, V86_DS, V86_FS, V86_GS]
    esp = STACK_TOP - 36
    for i, value in enumerate(frame):
        cpu.mem.write_int(esp + 4 * i, 4, value)
    cpu.set_reg("esp", esp)
    result = cpu.step()
    assert (result.exception.vector, result.exception.error_code) == (GP, 0)
    assert (cpu.mode, cpu.cpl, cpu.eip, cpu.get_reg("esp")) == ("prot32", 0, CODE, esp)


def test_popf_and_iret_at_iopl3_keep_iopl() -> None:
    """At IOPL 3 inside the task: PUSH 0x0200; POPF loads IF (CPL 3 <= IOPL 3) but not
    IOPL (POPF, Operation: "IOPL ... unaffected" in virtual-8086 mode); then a 16-bit
    IRET (the default size there) pops IP 0x0020, CS 0x0210, FLAGS 0x0000: IP and the
    CS base (0x2100) change, IF is cleared, IOPL stays 3 and VM stays set."""
    code = bytes.fromhex("68 00 02 9d 6a 00 68 10 02 6a 20 cf")
    cpu = _enter(code, VM | IOPL3 | 2, delivery=False)
    assert cpu.step().exception is None and cpu.step().exception is None
    assert cpu.get_reg("eflags") == VM | IOPL3 | IF | 2
    for _ in range(4):
        assert cpu.step().exception is None
    assert (cpu.eip, cpu.get_reg("cs"), cpu.seg_base[1]) == (0x20, 0x210, 0x2100)
    assert cpu.get_reg("eflags") == VM | IOPL3 | 2
    assert cpu.get_reg("esp") == V86_SP and cpu.mode == "vm86"


def test_pushf_at_iopl3_pushes_the_low_word() -> None:
    """PUSHF in virtual-8086 mode at IOPL 3: a 16-bit push of FLAGS (VM is bit 17, not
    in the word) at SS:SP - 2 = 0x3000 + 0x6FE."""
    cpu = _enter(b"\x9c", VM | IOPL3 | IF | 0x801 | 2, delivery=False)
    assert cpu.step().exception is None
    assert cpu.get_reg("esp") == V86_SP - 2
    assert cpu.mem.read_int(0x36FE, 2) == IOPL3 | IF | 0x801 | 2


def test_int_n_through_a_task_gate_leaves_virtual_8086_mode() -> None:
    """INT 0x21 at IOPL 3 through a DPL-3 task gate to a ring-0 task (SDM Vol. 3A 7.3):
    the old TSS receives EIP past the INT (offset 32), EFLAGS with VM set (36) and the
    virtual-8086 selectors ES CS SS DS FS GS (72..92); the new task runs in protected
    mode at CPL 0 from its TSS."""
    new_tss, new_eip = 0x6000, 0x1100
    image = bytearray(104)
    image[32:36] = new_eip.to_bytes(4, "little")
    image[36:40] = (2).to_bytes(4, "little")
    image[56:60] = (0x9F00).to_bytes(4, "little")  # ESP, the fifth register
    for index, value in enumerate((0x10, 0x08, 0x10, 0x10, 0, 0)):
        image[72 + 4 * index:74 + 4 * index] = value.to_bytes(2, "little")
    gdt = dict(STANDARD_GDT)
    gdt[0x50] = descriptor(new_tss, 103, TSS32, s=0)
    idt = {0x21: gate(0x50, 0, 0x5, dpl=3)}
    cpu = _enter(bytes.fromhex("cd 21"), VM | IOPL3 | 2, idt)
    cpu.mem.write_bytes(GDT, table_bytes(gdt))
    cpu.gdtr = (GDT, len(table_bytes(gdt)) - 1)
    cpu.mem.write_int(GDT + 0x28 + 5, 1, 0x8B)  # the current TSS is busy, as after LTR
    cpu.mem.write_bytes(new_tss, bytes(image))
    assert cpu.step().exception is None
    assert (cpu.mode, cpu.cpl, cpu.eip, cpu.tr.selector) == ("prot32", 0, new_eip, 0x50)
    assert cpu.default_size == 32 and cpu.get_reg("eflags") & VM == 0
    assert cpu.mem.read_int(TSS_BASE + 32, 4) == V86_EIP + 2
    assert cpu.mem.read_int(TSS_BASE + 36, 4) == VM | IOPL3 | 2
    assert [cpu.mem.read_int(TSS_BASE + 72 + 4 * i, 2) for i in range(6)] == [
        V86_ES, V86_CS, V86_SS, V86_DS, V86_FS, V86_GS]
