"""The path a kernel takes, end to end on one CPU: real mode -> LGDT/LIDT -> CR0.PE ->
far JMP -> segment loads -> LTR -> page tables and CR0.PG -> IRET to ring 3 -> INT 0x80
to a ring-0 handler on the TSS stack -> IRET back to ring 3 -> a user write to a
supervisor page faults (#PF with U|W|P) into its handler. Every step is a guest
instruction; the test checks the state the SDM says each step leaves."""

from __future__ import annotations

from reference import SparseMemory
from reference.cpu import Cpu
from reference.system.exceptions import SystemDelivery
from reference.tests.system_tables import (
    CODE_XR,
    DATA_RW,
    INT_GATE32,
    TRAP_GATE32,
    TSS32,
    descriptor,
    gate,
    table_bytes,
    tss32,
)

GDT_AT, IDT_AT, TSS_AT, PD_AT, PT_AT = 0x5000, 0x6000, 0x7000, 0x8000, 0x9000
KERNEL, USER, KSTACK, USTACK = 0x1000, 0x2000, 0x3FF0, 0x4FF0
SYSCALL, PAGE_FAULT = 0x1400, 0x1500


def _asm(*parts: str) -> bytes:
    return bytes.fromhex(" ".join(parts))


def _machine() -> Cpu:
    gdt = {0x08: descriptor(0, 0xFFFFF, CODE_XR, g=1), 0x10: descriptor(0, 0xFFFFF, DATA_RW, g=1),
           0x18: descriptor(0, 0xFFFFF, CODE_XR, dpl=3, g=1),
           0x20: descriptor(0, 0xFFFFF, DATA_RW, dpl=3, g=1),
           0x28: descriptor(TSS_AT, 103, TSS32, s=0)}
    idt = bytearray(256 * 8)
    idt[0x80 * 8:0x80 * 8 + 8] = gate(0x08, SYSCALL, TRAP_GATE32, dpl=3)
    idt[14 * 8:14 * 8 + 8] = gate(0x08, PAGE_FAULT, INT_GATE32)
    mem = SparseMemory()
    for page in range(0, 0xA000, 0x1000):
        mem.map(page, bytes(4096))
    mem.write_bytes(GDT_AT, table_bytes(gdt))
    mem.write_bytes(IDT_AT, bytes(idt))
    mem.write_bytes(TSS_AT, tss32(KSTACK, 0x10))
    # Page tables: identity map 0-40 KiB; the kernel pages supervisor-only, the user
    # code and stack pages (0x2000, 0x4000) user-accessible.
    mem.write_int(PD_AT, 4, PT_AT | 0x7)
    for page in range(10):
        user = 4 if page in (2, 4) else 0
        mem.write_int(PT_AT + 4 * page, 4, (page << 12) | 0x3 | user)
    pseudo = _asm("2f 00") + GDT_AT.to_bytes(4, "little") + _asm("ff 07") + \
        IDT_AT.to_bytes(4, "little")
    mem.write_bytes(0x0F00, pseudo)
    real = _asm(
        "0f 01 16 00 0f",       # lgdt [0x0f00]
        "0f 01 1e 06 0f",       # lidt [0x0f06]
        "0f 20 c0 0c 01 0f 22 c0",  # mov eax, cr0; or al, 1; mov cr0, eax
        "66 ea 20 10 00 00 08 00",  # jmp dword 0x08:0x1020
    )
    protected = _asm(
        "66 b8 10 00 8e d8 8e d0 8e c0",  # mov ax, 0x10; mov ds/ss/es, ax
        "bc f0 3f 00 00",                 # mov esp, KSTACK
        "66 b8 28 00 0f 00 d8",           # mov ax, 0x28; ltr ax
        "b8 00 80 00 00 0f 22 d8",        # mov eax, PD; mov cr3, eax
        "0f 20 c0 0d 00 00 01 80 0f 22 c0",  # mov eax, cr0; or eax, PG|WP; mov cr0, eax
        "6a 23 68 f0 4f 00 00 68 02 02 00 00 6a 1b 68 00 20 00 00",  # push ss,esp,efl,cs,eip
        "cf",                             # iret to ring 3
    )
    user = _asm(
        "66 b8 23 00 8e d8",     # mov ax, 0x23; mov ds, ax (IRET nulled the ring-0 DS)
        "b8 07 00 00 00 cd 80",  # mov eax, 7; int 0x80
        "89 c3",                 # mov ebx, eax
        "c7 05 00 10 00 00 01 00 00 00",  # mov dword [0x1000], 1: a supervisor page
    )
    syscall = _asm("83 c0 10 cf")  # add eax, 16; iret
    page_fault = _asm("0f 20 d1 5a f4")  # mov ecx, cr2; pop edx (error code); hlt
    mem.write_bytes(KERNEL, real.ljust(0x20, b"\x90") + protected)
    mem.write_bytes(USER, user)
    mem.write_bytes(SYSCALL, syscall)
    mem.write_bytes(PAGE_FAULT, page_fault)
    cpu = Cpu(mem, "real16")
    cpu.delivery = SystemDelivery()
    cpu.set_reg("eip", KERNEL)
    return cpu


def test_kernel_path_to_ring3_syscall_and_page_fault() -> None:
    cpu = _machine()
    assert cpu.run(6) is None  # LGDT, LIDT, three for CR0.PE, the far JMP
    assert (cpu.mode, cpu.default_size, cpu.get_reg("cs")) == ("prot32", 32, 0x08)
    assert cpu.run(18) is None  # segments, ESP, LTR, CR3, CR0.PG, the frame, IRET
    assert cpu.tr.selector == 0x28 and cpu.tlb is not None
    assert (cpu.cpl, cpu.get_reg("cs"), cpu.get_reg("ss"), cpu.eip) == (3, 0x1B, 0x23, USER)
    assert cpu.get_reg("esp") == USTACK
    assert cpu.get_reg("ds") == 0  # DPL-0 data is not left usable at CPL 3 (RET/IRET)
    assert cpu.run(4) is None  # DS; mov eax, 7; int 0x80 -> ring 0 on the TSS stack
    assert (cpu.cpl, cpu.eip, cpu.get_reg("esp")) == (0, SYSCALL, KSTACK - 20)
    assert cpu.run(2) is None  # add eax, 16; iret
    assert (cpu.cpl, cpu.eip, cpu.get_reg("eax"), cpu.get_reg("esp")) == (3, USER + 13, 23,
                                                                           USTACK)
    result = cpu.run(10)  # mov ebx, eax; the faulting store; the #PF handler to its HLT
    assert result is not None and result.halted
    assert cpu.get_reg("ebx") == 23
    assert (cpu.get_reg("ecx"), cpu.get_reg("edx")) == (0x1000, 0x7)  # CR2; U|W|P
    assert cpu.mem.read_int(0x1000, 4) != 1
