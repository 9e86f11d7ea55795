"""Whole programs (loops, calls, the stack, strings, flags between instructions) run to HLT
on the reference and on Unicorn; the final registers and memory must agree. Keystone
assembles the source, so the bytes are not written by hand."""

from __future__ import annotations

import pytest

from reference.tests.third_party import require

require("keystone")
require("unicorn")
from keystone import KS_ARCH_X86, KS_MODE_16, KS_MODE_32, Ks  # noqa: E402
from unicorn import UC_ARCH_X86, UC_MODE_16, UC_MODE_32, Uc  # noqa: E402
from unicorn import x86_const as X  # noqa: E402

from reference import Cpu, SparseMemory  # noqa: E402

CODE, DATA, STACK = 0x1000, 0x2000, 0x3000
NAMES = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
PROGRAMS = {
    "real16-sum-and-calls": ("real16", """
        jmp start
    mix:
        rol ax, 3
        xor bx, ax
        sbb bx, si
        cmovs bp, bx
        ret
    start:
        mov cx, 40
        xor si, si
        xor ax, ax
    again:
        add al, [si + 0x2000]
        adc ah, 0
        inc si
        call mix
        loop again
        push ax
        pop dx
        lea di, [0x2800]
        mov cx, 7
        rep stosw
        hlt
    """),
    "prot32-sort-and-flags": ("prot32", """
        mov esi, 0x2000
        mov ecx, 12
    outer:
        mov edi, esi
        mov edx, 11
    inner:
        mov eax, [edi]
        mov ebx, [edi + 4]
        cmp eax, ebx
        jle ordered
        xchg eax, ebx
        mov [edi], eax
        mov [edi + 4], ebx
    ordered:
        add edi, 4
        dec edx
        jnz inner
        loop outer
        pushfd
        pop ebp
        movsx eax, byte ptr [esi + 3]
        neg eax
        setc bl
        bswap eax
        hlt
    """),
}


def assemble(mode: str, source: str) -> bytes:
    ks = Ks(KS_ARCH_X86, KS_MODE_16 if mode == "real16" else KS_MODE_32)
    encoding, _ = ks.asm(source, CODE)
    return bytes(encoding)


def data_page() -> bytes:
    return bytes((i * 37 + 11) & 0xFF for i in range(4096))


def on_unicorn(mode: str, code: bytes):
    uc = Uc(UC_ARCH_X86, UC_MODE_16 if mode == "real16" else UC_MODE_32)
    uc.mem_map(0, 0x4000)
    uc.mem_write(CODE, code)
    uc.mem_write(DATA, data_page())
    uc.reg_write(X.UC_X86_REG_ESP, 0x3800)
    uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)
    uc.emu_start(CODE, CODE + len(code) - 1)  # stop at the HLT that ends every program
    regs = {name: uc.reg_read(getattr(X, f"UC_X86_REG_{name.upper()}")) for name in NAMES}
    return regs, {base: bytes(uc.mem_read(base, 4096)) for base in (DATA, STACK)}


def on_reference(mode: str, code: bytes):
    mem = SparseMemory()
    for base in (0, CODE, DATA, STACK):
        mem.map(base, bytes(4096))
    mem.write_bytes(CODE, code)
    mem.write_bytes(DATA, data_page())
    cpu = Cpu(mem, mode)
    cpu.set_reg("eip", CODE)
    cpu.set_reg("esp", 0x3800)
    result = cpu.run(100_000)
    assert result is not None and result.halted and result.exception is None, result
    assert cpu.get_reg("eip") == CODE + len(code)
    return {name: cpu.get_reg(name) for name in NAMES}, {
        base: mem.pages()[base] for base in (DATA, STACK)}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_ends_in_unicorns_state(name: str) -> None:
    mode, source = PROGRAMS[name]
    code = assemble(mode, source)
    assert on_reference(mode, code) == on_unicorn(mode, code)
