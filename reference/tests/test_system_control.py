"""Control registers, the run-time mode switch, and EFLAGS privilege rules (SDM Vol. 3A,
2.5 and 9.9; Vol. 2B, MOV CRn, LMSW, SMSW, CLTS, POPF; Vol. 2A, IRET)."""

from __future__ import annotations

import pytest

from reference import SparseMemory
from reference.cpu import Cpu
from reference.faults import GP, UD
from reference.tests.conftest import CODE, make_cpu
from reference.tests.system_tables import (
    CODE_XR,
    DATA_RW,
    descriptor,
    protected_cpu,
    table_bytes,
)

PE, TS, ET, PG, NW, CD = 1, 8, 0x10, 1 << 31, 1 << 29, 1 << 30


def test_real_to_protected_and_back_at_run_time() -> None:
    """Real mode: LGDT, set CR0.PE, far JMP to a 32-bit code segment, load DS from the
    GDT and store through it; then clear PE and far JMP back: real mode again, with the
    hidden DS cache kept (its base stays until DS is reloaded, SDM 9.9.2)."""
    gdt = {0x08: descriptor(0, 0xFFFFF, CODE_XR, g=1),
           0x10: descriptor(0x2000, 0xFFFF, DATA_RW)}
    pseudo = (len(table_bytes(gdt)) - 1).to_bytes(2, "little") + (0x5000).to_bytes(4, "little")
    code16 = bytes.fromhex(
        "0f 01 16 00 40"        # lgdt [0x4000]
        "0f 20 c0"              # mov eax, cr0
        "0c 01"                 # or al, 1
        "0f 22 c0"              # mov cr0, eax
        "ea 14 10 08 00"        # jmp 0x08:0x1014
    )
    code32 = bytes.fromhex(
        "66 b8 10 00"           # mov ax, 0x10
        "8e d8"                 # mov ds, ax
        "c7 05 04 00 00 00 78 56 34 12"  # mov dword [4], 0x12345678 (DS base 0x2000)
        "0f 20 c0"              # mov eax, cr0
        "24 fe"                 # and al, 0xfe
        "0f 22 c0"              # mov cr0, eax
    )
    code = code16.ljust(0x14, b"\x90") + code32
    mem = SparseMemory()
    mem.map(CODE, code)
    for page in (0x2000, 0x3000, 0x4000, 0x5000):
        mem.map(page, bytes(4096))
    mem.write_bytes(0x4000, pseudo)
    mem.write_bytes(0x5000, table_bytes(gdt))
    cpu = Cpu(mem, "real16")
    cpu.set_reg("eip", CODE)
    assert cpu.run(5) is None
    assert (cpu.mode, cpu.default_size, cpu.cpl) == ("prot32", 32, 0)
    assert (cpu.get_reg("cs"), cpu.eip) == (0x08, 0x1014)
    assert cpu.run(6) is None
    assert mem.read_int(0x2004, 4) == 0x12345678
    assert cpu.mode == "real16" and cpu.cr0 & PE == 0
    assert cpu.seg_base[3] == 0x2000  # the cache outlives the switch


@pytest.mark.parametrize("value", [PG, NW, 1 << 7, 1 << 20])
def test_mov_cr0_rejects_invalid_combinations(value: int) -> None:
    """PG without PE, NW without CD, and reserved bits (7, 20) are #GP(0); CR0 stays."""
    cpu = make_cpu(bytes.fromhex("0f 22 c0"), "prot32", eax=value | PE)
    cpu.set_reg("eax", value if value == PG else value | PE)
    before = cpu.cr0
    result = cpu.step()
    assert (result.exception.vector, result.exception.error_code) == (GP, 0)
    assert cpu.cr0 == before


def test_mov_cr0_keeps_et_and_accepts_cd_nw() -> None:
    """ET is hard-wired to 1 on a P6; CD|NW together are allowed."""
    cpu = make_cpu(bytes.fromhex("0f 22 c0 0f 20 c3"), "prot32", eax=PE | CD | NW)
    assert cpu.run(2) is None
    assert cpu.get_reg("ebx") == PE | CD | NW | ET


@pytest.mark.parametrize("modrm", [0xC8, 0xE8, 0xF0, 0xF8])  # CR1, CR5, CR6, CR7
def test_mov_to_nonexistent_control_register_is_ud(modrm: int) -> None:
    cpu = make_cpu(bytes([0x0F, 0x22, modrm]), "prot32")
    assert cpu.step().exception.vector == UD


def test_mov_cr4_reserved_bit_is_gp_and_defined_bits_load() -> None:
    """CR4: VME (bit 0) is not supported here, so it is reserved: #GP(0). PSE|PGE|TSD
    load and read back."""
    cpu = make_cpu(bytes.fromhex("0f 22 e0"), "prot32", eax=1)
    assert cpu.step().exception.vector == GP
    cpu = make_cpu(bytes.fromhex("0f 22 e0 0f 20 e1"), "prot32", eax=0x94)
    assert cpu.run(2) is None and cpu.get_reg("ecx") == 0x94


@pytest.mark.parametrize("code", ["0f 20 c0", "0f 22 d8", "0f 06", "0f 01 f0"])
def test_privileged_control_instructions_fault_at_cpl3(code: str) -> None:
    """MOV from/to CRn, CLTS, LMSW: #GP(0) outside CPL 0; nothing changes."""
    cpu = protected_cpu(bytes.fromhex(code), cpl=3)
    result = cpu.step()
    assert (result.exception.vector, result.exception.error_code) == (GP, 0)
    assert cpu.eip == CODE


def test_lmsw_sets_low_bits_but_cannot_clear_pe_and_smsw_reads_them() -> None:
    """LMSW AX with AX = 0x000E: MP, EM, TS set, PE (already 1) stays; SMSW [mem]
    stores CR0[15:0]; CLTS then clears TS only."""
    code = bytes.fromhex("0f 01 f0 0f 01 25 00 20 00 00 0f 06 0f 01 e3")
    cpu = make_cpu(code, "prot32", eax=0x000E)
    before = cpu.cr0
    assert before & PE
    assert cpu.run(4) is None
    after_lmsw = (before & ~0xF) | 0xE | PE
    assert cpu.mem.read_int(0x2000, 2) == after_lmsw & 0xFFFF
    assert cpu.get_reg("ebx") == after_lmsw & ~TS  # SMSW EBX after CLTS: whole CR0


def test_popf_at_cpl3_keeps_if_and_iopl() -> None:
    """POPF at CPL 3 > IOPL 0: IF and IOPL keep their values, no fault; the status
    flags load (SDM Vol. 2B, POPF Operation)."""
    cpu = protected_cpu(bytes.fromhex("9d"), cpl=3)
    cpu.set_reg("eflags", 0x202)  # IF = 1, IOPL 0
    cpu.push(0x3000 | 0x0D5, 32)  # IOPL 3, IF 0, status flags
    assert cpu.step().exception is None
    assert cpu.get_reg("eflags") == 0x202 | 0xD5


def test_popf_at_cpl_within_iopl_loads_if_not_iopl() -> None:
    """CPL 3 with IOPL 3: IF loads; IOPL still only at CPL 0."""
    cpu = protected_cpu(bytes.fromhex("9d"), cpl=3)
    cpu.set_reg("eflags", 0x3202)
    cpu.push(0x1002, 32)
    assert cpu.step().exception is None
    assert cpu.get_reg("eflags") == 0x3002


def test_rdtsc_with_tsd_faults_only_outside_cpl0() -> None:
    """CR4.TSD: RDTSC is #GP(0) at CPL 3, allowed at CPL 0."""
    cpu = protected_cpu(bytes.fromhex("0f 31"), cpl=3)
    cpu.cr4 = 1 << 2
    assert cpu.step().exception.vector == GP
    cpu = protected_cpu(bytes.fromhex("0f 31"), cpl=0)
    cpu.cr4 = 1 << 2
    assert cpu.step().exception is None


def test_debug_registers_fixed_bits_aliases_and_general_detect() -> None:
    """MOV DR7, EAX with EAX = 0: DR7 reads 0x400 (bit 10 fixed). MOV DR6, 0: reads
    0xFFFF0FF0. DR5 is DR7 (no CR4.DE). With DR7.GD set, the next MOV DRn is a #DB
    fault with DR6.BD set and GD cleared (SDM Vol. 3A, 17.2)."""
    code = bytes.fromhex("0f 23 f8 0f 23 f0 0f 21 fb 0f 21 f1 0f 21 ea")
    cpu = make_cpu(code, "prot32", eax=0)
    assert cpu.run(5) is None
    assert (cpu.get_reg("ebx"), cpu.get_reg("ecx"), cpu.get_reg("edx")) == (
        0x400, 0xFFFF0FF0, 0x400)
    cpu = make_cpu(bytes.fromhex("0f 23 f8 0f 21 c3"), "prot32", eax=1 << 13)
    assert cpu.step().exception is None
    assert cpu.step().exception.vector == 1 and cpu.eip == CODE + 3
    assert cpu.dr[4] & (1 << 13) and not cpu.dr[5] & (1 << 13)


def test_instruction_breakpoint_is_a_fault_that_rf_suppresses() -> None:
    """SDM Vol. 3B, 17.3.1.1: DR1 = the address of the second NOP, DR7 = 0x404 (L1 set,
    R/W1 = LEN1 = 00): the first NOP runs, then #DB is a fault at the second one (EIP on
    it, DR6.B1 set), in ``step`` and in the ``run`` loop alike; with EFLAGS.RF set the
    breakpoint is ignored for that one instruction and RF is clear after it. A data
    breakpoint type (R/W1 = 01) at the same address does not fire on the fetch."""
    for use_run in (False, True):
        cpu = make_cpu(bytes.fromhex("90 90 90"), "prot32")
        cpu.dr[1], cpu.dr[5] = CODE + 1, 0x404
        if use_run:
            result = cpu.run(3)
        else:
            assert cpu.step().exception is None
            result = cpu.step()
        assert result.exception.vector == 1 and result.exception.kind == "fault"
        assert cpu.eip == CODE + 1 and cpu.dr[4] == 0xFFFF0FF2
    cpu = make_cpu(bytes.fromhex("90 90"), "prot32")
    cpu.dr[0], cpu.dr[5] = CODE, 0x401
    cpu.flags.value |= 1 << 16  # RF
    assert cpu.step().exception is None and cpu.eip == CODE + 1
    assert not cpu.flags.value & 1 << 16
    cpu = make_cpu(bytes.fromhex("90 90"), "prot32")
    cpu.dr[0], cpu.dr[5] = CODE, 0x10401  # R/W0 = 01: a data write breakpoint
    assert cpu.step().exception is None


def test_mov_debug_register_is_privileged() -> None:
    cpu = protected_cpu(bytes.fromhex("0f 21 c0"), cpl=3)
    assert cpu.step().exception.vector == GP


def test_initial_cr0_values() -> None:
    """real16 starts with CR0's reset value 60000010H (SDM Vol. 3A, Table 9-1); the flat
    prot32 model with PE, MP, ET and NE, as Linux runs user code."""
    assert make_cpu(b"", "real16").cr0 == 0x60000010
    assert make_cpu(b"", "prot32").cr0 == PE | 2 | ET | 0x20
