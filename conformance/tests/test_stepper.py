"""The stepper on this machine's CPU: facts from the SDM and arithmetic Python does."""

from __future__ import annotations

import pytest

from conformance.native import run_native
from conformance.stepper import inexpressible_reason
from conformance.tests.conftest import CODE_PAGE, DATA_PAGE, make_case
from ground.case import Exc

pytestmark = pytest.mark.usefixtures("stepper_available")
INSN = CODE_PAGE + 0x10


def _one(case):
    [result] = run_native([case])
    assert result.status == "ran", result.reason
    return result.outcome


def test_add_sets_registers_and_flags_as_python_computes() -> None:
    a, b = 0x89ABCDEF, 0x76543211
    out = _one(make_case(bytes.fromhex("01d8"), {"eax": a, "ebx": b}))  # add eax, ebx
    total = a + b
    assert out.exception is None
    assert out.regs["eax"] == total & 0xFFFFFFFF
    assert out.regs["eip"] == INSN + 2
    assert out.regs["eflags"] & 1 == total >> 32  # CF: the carry out of bit 31
    assert out.regs["eflags"] >> 6 & 1 == (total & 0xFFFFFFFF == 0)  # ZF


def test_divide_by_zero_is_a_de_fault_at_the_instruction() -> None:
    out = _one(make_case(bytes.fromhex("f7f1"), {"eax": 5, "ecx": 0}))  # div ecx
    assert out.exception == Exc(0, "fault")
    assert out.regs["eip"] == INSN and out.regs["eax"] == 5


def test_ud2_is_invalid_opcode() -> None:
    assert _one(make_case(bytes.fromhex("0f0b"))).exception == Exc(6, "fault")


@pytest.mark.parametrize("code, vector", [("cc", 3), ("cd21", 0x21)], ids=["int3", "int21"])
def test_software_interrupts_are_traps_after_the_instruction(code: str, vector: int) -> None:
    """INT3 arrives as #BP; INT 0x21 as #GP(0x21*8+2), which the host maps back to the
    trap the vectors describe (CPL0, gate taken)."""
    out = _one(make_case(bytes.fromhex(code)))
    assert out.exception == Exc(vector, "trap")
    assert out.regs["eip"] == INSN + len(bytes.fromhex(code))


def test_rep_movsb_runs_every_iteration_in_one_step() -> None:
    source = [(i * 37 + 11) & 0xFF for i in range(40)]
    out = _one(make_case(bytes.fromhex("f3a4"), {"esi": DATA_PAGE, "edi": DATA_PAGE + 0x100,
                                                  "ecx": 40}, data=source))
    assert out.regs["ecx"] == 0 and out.regs["eip"] == INSN + 2
    assert list(out.memory[DATA_PAGE][0x100:0x128]) == source


def test_unmapped_access_is_reported_as_unmapped() -> None:
    out = _one(make_case(bytes.fromhex("8b03"), {"ebx": 0x30000000}))  # mov eax, [ebx]
    assert out.exception == Exc(-1, "unmapped")


def test_page_on_the_program_itself_is_not_expressible() -> None:
    case = make_case(bytes.fromhex("90"))
    memory = dict(case.memory)
    memory[0x08048000] = bytes(4096)  # where a static i386 binary is linked
    from dataclasses import replace

    [result] = run_native([replace(case, memory=memory)])
    assert result.status == "inexpressible"


@pytest.mark.parametrize("code, form, mode, why", [
    ("fa", "CLI", "prot32", "privileged"),
    ("0e", "PUSH_CS", "prot32", "selector"),
    ("cd80", "INT_Ib", "prot32", "system call"),
    ("90", "NOP", "real16", "real-mode"),
], ids=["cli", "push-cs", "int80", "real16"])
def test_user_mode_classification(code: str, form: str, mode: str, why: str) -> None:
    assert why in inexpressible_reason(make_case(bytes.fromhex(code), form=form, mode=mode))
