"""32-bit paging (SDM Vol. 3A, 4.3-4.10): translation through a hand-built page
directory and page table (entries written from Figures 4-4 and Table 4-5/4-6), access
rights with CR0.WP, accessed and dirty bits, #PF error codes and CR2, 4 MiB pages, the
TLB and what flushes it, and self-modifying code through a second linear alias."""

from __future__ import annotations

import pytest

from reference import SparseMemory
from reference.cpu import Cpu
from reference.faults import PF
from reference.system.control_registers import write_cr

PD, PT = 0xA000, 0xB000
P, RW, US, A, D, PS, G = 1, 2, 4, 0x20, 0x40, 0x80, 0x100
CODE, DATA_PHYS, DATA_LINEAR = 0x1000, 0x2000, 0x400000


def _paged(code: bytes, data_flags: int = P | RW | US, pde_flags: int = P | RW | US,
           cr4: int = 0, wp: bool = False, cpl: int = 0) -> Cpu:
    """Code identity-mapped at 0x1000 (PT entry 1, supervisor); DATA_LINEAR (PD entry
    1 -> PT, PT entry 0) -> DATA_PHYS; stack identity-mapped at 0x3000."""
    mem = SparseMemory()
    for page in (CODE, DATA_PHYS, 0x3000, PD, PT, 0xC000):
        mem.map(page, bytes(4096))
    mem.write_bytes(CODE, code)
    mem.write_int(PD + 0, 4, 0xC000 | P | RW | US)           # PT for 0-4 MiB at 0xC000
    mem.write_int(0xC000 + 4 * 1, 4, CODE | P | RW | US)     # code page
    mem.write_int(0xC000 + 4 * 3, 4, 0x3000 | P | RW | US)   # stack page
    mem.write_int(PD + 4 * 1, 4, PT | pde_flags)             # 4-8 MiB -> PT
    mem.write_int(PT + 0, 4, DATA_PHYS | data_flags)
    cpu = Cpu(mem, "prot32")
    cpu.set_reg("eip", CODE)
    cpu.set_reg("esp", 0x3800)
    cpu.cr3 = PD
    write_cr(cpu, 4, cr4)
    write_cr(cpu, 0, cpu.cr0 | (1 << 31) | ((1 << 16) if wp else 0))
    cpu.cpl = cpl
    return cpu


def test_read_goes_through_the_tables_and_sets_accessed_only() -> None:
    """MOV EAX, [0x400004] reads physical 0x2004; PDE.A and PTE.A get set, D stays 0."""
    cpu = _paged(bytes.fromhex("a1 04 00 40 00"))
    cpu.mem.write_int(DATA_PHYS + 4, 4, 0xCAFEBABE)
    assert cpu.step().exception is None
    assert cpu.get_reg("eax") == 0xCAFEBABE
    assert cpu.mem.read_int(PD + 4, 4) & (A | D) == A
    assert cpu.mem.read_int(PT, 4) & (A | D) == A


def test_write_sets_dirty_even_after_a_read_cached_the_translation() -> None:
    """A read fills the TLB with a clean entry; the following write must still set
    PTE.D (the processor walks again for a write through a clean entry, 4.8)."""
    cpu = _paged(bytes.fromhex("a1 00 00 40 00 a3 00 00 40 00"), cr4=0)
    assert cpu.run(2) is None
    assert cpu.mem.read_int(PT, 4) & (A | D) == A | D
    assert cpu.mem.read_int(PD + 4, 4) & D == 0  # D exists only in the last level


@pytest.mark.parametrize("code, data_flags, pde_flags, cpl, wp, error", [
    ("a1 00 00 40 00", 0, P | RW | US, 0, False, 0),               # not present, read
    ("a3 00 00 40 00", 0, P | RW | US, 0, False, 2),               # not present, write
    ("a1 00 00 40 00", P | RW | US, 0, 0, False, 0),               # PDE not present
    ("a1 00 00 40 00", P | RW, P | RW | US, 3, False, 5),          # user read, S page
    ("a3 00 00 40 00", P | US, P | RW | US, 3, False, 7),          # user write, R/O
    ("a3 00 00 40 00", P | RW | US, P | US, 3, False, 7),          # R/O in the PDE
    ("a3 00 00 40 00", P | US, P | RW | US, 0, True, 3),           # supervisor, WP=1
])
def test_page_fault_error_codes(code, data_flags, pde_flags, cpl, wp, error) -> None:
    """#PF error code (Figure 4-12): bit 0 P (protection vs not present), bit 1 W/R,
    bit 2 U/S (CPL 3). CR2 := the linear address; nothing is written."""
    cpu = _paged(bytes.fromhex(code), data_flags, pde_flags, wp=wp, cpl=cpl)
    cpu.set_reg("eax", 0x11223344)
    exc = cpu.step().exception
    assert (exc.vector, exc.error_code) == (PF, error)
    assert cpu.cr2 == DATA_LINEAR and cpu.eip == CODE
    assert cpu.mem.read_int(DATA_PHYS, 4) == 0


def test_supervisor_write_to_read_only_page_allowed_without_wp() -> None:
    cpu = _paged(bytes.fromhex("a3 00 00 40 00"), P | US, wp=False)
    cpu.set_reg("eax", 0x55)
    assert cpu.step().exception is None and cpu.mem.read_int(DATA_PHYS, 4) == 0x55


def test_4mib_page_with_pse_and_ignored_ps_without_it() -> None:
    """PDE 1 with PS = 1 maps 4-8 MiB to physical 0 when CR4.PSE = 1: [0x401000] is
    physical 0x1000, the instruction's own bytes. Without PSE the same PDE points at a
    page table."""
    cpu = _paged(bytes.fromhex("a1 00 10 40 00"), cr4=1 << 4)
    cpu.mem.write_int(PD + 4, 4, 0x000000 | P | RW | PS)
    assert cpu.step().exception is None
    assert cpu.get_reg("eax") == int.from_bytes(bytes.fromhex("a1 00 10 40"), "little")
    cpu = _paged(bytes.fromhex("a1 00 10 40 00"), cr4=0)
    cpu.mem.write_int(PD + 4, 4, PT | P | RW | PS)  # PS ignored: PT entry 1 is empty
    assert cpu.step().exception.vector == PF


def test_reserved_bits_in_a_4mib_pde_fault_with_rsvd() -> None:
    """Bits 21:13 of a 4 MiB PDE are reserved without PSE-36: #PF with P and RSVD."""
    cpu = _paged(bytes.fromhex("a1 00 00 40 00"), cr4=1 << 4)
    cpu.mem.write_int(PD + 4, 4, 0x2000 | P | RW | PS)
    exc = cpu.step().exception
    assert (exc.vector, exc.error_code) == (PF, 8 | 1)


def test_tlb_keeps_stale_translation_until_cr3_write_except_global() -> None:
    """After a read, repointing the PTE at another frame changes nothing until MOV CR3
    flushes the TLB (4.10.4); a global page (CR4.PGE, PTE.G) survives MOV CR3 and goes
    only with INVLPG."""
    code = bytes.fromhex("a1 00 00 40 00" "a1 00 00 40 00" "0f 22 db" "a1 00 00 40 00"
                         "0f 01 3d 00 00 40 00" "a1 00 00 40 00")
    for global_page, after_cr3 in ((False, 0x3333), (True, 0x2222)):
        flags = P | RW | US | (G if global_page else 0)
        cpu = _paged(code, flags, cr4=1 << 7)
        cpu.mem.write_int(DATA_PHYS, 4, 0x2222)
        cpu.mem.write_int(0x3000, 4, 0x3333)
        cpu.set_reg("ebx", PD)
        assert cpu.step().exception is None and cpu.get_reg("eax") == 0x2222
        cpu.mem.write_int(PT, 4, 0x3000 | flags)
        assert cpu.step().exception is None and cpu.get_reg("eax") == 0x2222  # stale
        assert cpu.run(2) is None and cpu.get_reg("eax") == after_cr3
        assert cpu.run(2) is None and cpu.get_reg("eax") == 0x3333  # after INVLPG


def test_self_modifying_code_through_an_alias() -> None:
    """The code page is also mapped at 0x400000 (PT entry 0 -> physical 0x1000). The
    'mov al, 0' at 0x100B is decoded and cached first; then a store through the alias
    into its imm8 (linear 0x40000C) must be seen when it runs again: decoded code is
    registered under its physical page."""
    code = bytes.fromhex("c6 05 0c 00 40 00 42" "90 90 90 90" "b0 00")
    cpu = _paged(code, P | RW | US)
    cpu.mem.write_int(PT, 4, CODE | P | RW | US)
    cpu.eip = CODE + 11
    assert cpu.step().exception is None and cpu.get_reg("al") == 0  # decoded, cached
    cpu.eip = CODE
    assert cpu.run(6) is None
    assert cpu.get_reg("al") == 0x42


def test_user_fetch_from_supervisor_page_faults_even_after_caching() -> None:
    """CPL 3 fetching from a supervisor page: #PF with P|U (5). The instruction was
    decoded and cached at CPL 0 first: the cache must not let CPL 3 skip the check."""
    cpu = _paged(bytes.fromhex("90"))
    cpu.mem.write_int(0xC000 + 4, 4, CODE | P | RW)  # code page: supervisor only
    assert cpu.step().exception is None
    cpu.eip = CODE
    cpu.cpl = 3
    cpu.derive_sizes()  # what a CS load does after changing the CPL
    exc = cpu.step().exception
    assert (exc.vector, exc.error_code, cpu.cr2) == (PF, 5, CODE)


def test_an_instruction_running_into_a_page_not_present_faults_at_that_page() -> None:
    """MOV EAX, imm32 from the code page's last two bytes into linear 0x2000, which no
    page table entry maps (physical 0x2000 holds data: a fetch that went on in physical
    memory would decode it): #PF, not present (error code 0), CR2 = 0x2000, nothing
    changed. The first page's bytes come as one window (``code_window``), the rest are
    fetched one by one through the tables."""
    cpu = _paged(b"")
    cpu.mem.write_bytes(CODE + 0xFFE, bytes.fromhex("b8 01"))
    cpu.mem.write_bytes(DATA_PHYS, bytes.fromhex("02 03 04"))
    cpu.eip = CODE + 0xFFE
    exc = cpu.step().exception
    assert (exc.vector, exc.error_code, cpu.cr2) == (PF, 0, 0x2000)
    assert cpu.eip == CODE + 0xFFE and cpu.get_reg("eax") == 0
    cpu.mem.write_int(0xC000 + 4 * 2, 4, DATA_PHYS | P | RW | US)   # now it is mapped
    assert cpu.step().exception is None
    assert cpu.get_reg("eax") == 0x04030201 and cpu.eip == 0x2003
