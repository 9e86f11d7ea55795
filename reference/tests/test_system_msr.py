"""MSRs, SYSENTER/SYSEXIT, RDPMC, INVD/WBINVD (SDM Vol. 2B and Vol. 4). Expected values
follow the instructions' Operation sections."""

from __future__ import annotations

import pytest

from reference.faults import GP
from reference.tests.conftest import make_cpu
from reference.tests.system_tables import protected_cpu

WRMSR, RDMSR, SYSENTER, SYSEXIT = "0f 30", "0f 32", "0f 34", "0f 35"


@pytest.mark.parametrize("index", [0x0, 0x1B, 0xFE, 0x277, 0xC0000080])
def test_unknown_msr_is_gp0(index: int) -> None:
    """APIC_BASE, MTRRcap, PAT, EFER... are not on this CPU: #GP(0) for both."""
    for code in (RDMSR, WRMSR):
        cpu = make_cpu(bytes.fromhex(code), "prot32", ecx=index)
        exc = cpu.step().exception
        assert (exc.vector, exc.error_code) == (GP, 0)


def test_msr_access_is_privileged() -> None:
    cpu = protected_cpu(bytes.fromhex(RDMSR), cpl=3)
    cpu.set_reg("ecx", 0x174)
    assert cpu.step().exception.vector == GP


def test_tsc_msr_writes_the_virtual_clock() -> None:
    """WRMSR(0x10) sets the counter; RDMSR right after reads it plus the one retired
    instruction (the WRMSR itself counts after it completes)."""
    cpu = make_cpu(bytes.fromhex(WRMSR + RDMSR), "prot32", ecx=0x10, eax=0x100, edx=0x2)
    assert cpu.run(2) is None
    assert (cpu.get_reg("edx"), cpu.get_reg("eax")) == (0x2, 0x101)


def test_sysenter_then_sysexit() -> None:
    """SYSENTER_CS = 0x08: SYSENTER loads CS 0x08, SS 0x10 (flat, CPL 0), EIP/ESP from
    the MSRs and clears IF; SYSEXIT loads CS 0x1B, SS 0x23, EIP := EDX, ESP := ECX."""
    cpu = protected_cpu(bytes.fromhex(SYSENTER), cpl=3)
    cpu.msr.update({0x174: 0x08, 0x175: 0x9800, 0x176: 0x1100})
    cpu.set_reg("eflags", 0x202)
    assert cpu.step().exception is None
    assert (cpu.cpl, cpu.get_reg("cs"), cpu.get_reg("ss")) == (0, 0x08, 0x10)
    assert (cpu.eip, cpu.get_reg("esp"), cpu.get_reg("eflags")) == (0x1100, 0x9800, 0x002)
    cpu.mem.write_bytes(0x1100, bytes.fromhex(SYSEXIT))
    cpu.set_reg("edx", 0x1234)
    cpu.set_reg("ecx", 0x3300)
    assert cpu.step().exception is None
    assert (cpu.cpl, cpu.get_reg("cs"), cpu.get_reg("ss")) == (3, 0x1B, 0x23)
    assert (cpu.eip, cpu.get_reg("esp")) == (0x1234, 0x3300)


@pytest.mark.parametrize("code, cpl, cs_msr", [(SYSENTER, 3, 0), (SYSEXIT, 3, 0x08),
                                               (SYSEXIT, 0, 0)])
def test_fast_system_call_faults(code: str, cpl: int, cs_msr: int) -> None:
    """SYSENTER with SYSENTER_CS null; SYSEXIT at CPL 3 or with SYSENTER_CS null."""
    cpu = protected_cpu(bytes.fromhex(code), cpl=cpl)
    cpu.msr[0x174] = cs_msr
    exc = cpu.step().exception
    assert (exc.vector, exc.error_code) == (GP, 0)


def test_sysenter_in_real_mode_is_gp() -> None:
    cpu = make_cpu(bytes.fromhex(SYSENTER), "real16")
    cpu.msr[0x174] = 0x08
    assert cpu.step().exception.vector == GP


@pytest.mark.parametrize("code", ["0f 08", "0f 09", "0f 01 38"])
def test_cache_and_tlb_instructions_are_privileged(code: str) -> None:
    """INVD, WBINVD, INVLPG: #GP(0) at CPL 3; no-ops (for caches) at CPL 0."""
    assert protected_cpu(bytes.fromhex(code), cpl=3).step().exception.vector == GP
    assert protected_cpu(bytes.fromhex(code), cpl=0).step().exception is None


@pytest.mark.parametrize("ecx, cpl, faults", [(0, 0, False), (1, 0, False), (2, 0, True),
                                              (0, 3, True)])
def test_rdpmc(ecx: int, cpl: int, faults: bool) -> None:
    """Counters 0 and 1 at CPL 0; another number, or CPL 3 (no CR4.PCE), is #GP(0)."""
    cpu = protected_cpu(bytes.fromhex("0f 33"), cpl=cpl)
    cpu.set_reg("ecx", ecx)
    exc = cpu.step().exception
    assert (exc is not None) == faults
