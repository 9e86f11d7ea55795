"""Real-mode delivery through the IVT, as SDM Vol. 3A, 21.1.4 describes it, worked by hand."""

from __future__ import annotations

from reference.flags import CF, IF, TF
from reference.interrupts import RealModeDelivery
from reference.tests.conftest import CODE, STACK_TOP, make_cpu


def real_mode_cpu(code: bytes, **regs: int):
    cpu = make_cpu(code, "real16", **regs)
    cpu.mem.map(0x0000, bytes(4096))         # the IVT page
    cpu.delivery = RealModeDelivery()
    cpu.write_linear(4 * 0x21, 4, (0x0100 << 16) | 0x0040)   # INT 21h -> 0100:0040
    cpu.write_linear(4 * 6, 4, (0x0200 << 16) | 0x0008)      # #UD -> 0200:0008
    return cpu


def test_int_n_pushes_flags_cs_ip_of_the_next_instruction_and_clears_if_tf() -> None:
    cpu = real_mode_cpu(bytes.fromhex("cd 21"), eflags=IF | TF | CF)
    result = cpu.step()
    assert result.exception is None
    assert (cpu.get_reg("cs"), cpu.get_reg("eip")) == (0x100, 0x40)
    assert cpu.get_reg("esp") == STACK_TOP - 6
    assert cpu.read_linear(STACK_TOP - 6, 2) == CODE + 2          # IP after INT 21h
    assert cpu.read_linear(STACK_TOP - 4, 2) == 0                 # CS
    assert cpu.read_linear(STACK_TOP - 2, 2) == IF | TF | CF | 2  # FLAGS before
    assert cpu.get_reg("eflags") == CF | 2


def test_a_fault_saves_the_faulting_ip() -> None:
    cpu = real_mode_cpu(bytes.fromhex("0f 0b"))                  # UD2
    assert cpu.step().exception is None
    assert (cpu.get_reg("cs"), cpu.get_reg("eip")) == (0x200, 0x8)
    assert cpu.read_linear(STACK_TOP - 6, 2) == CODE


def test_delivery_onto_an_unmapped_stack_reports_the_exception() -> None:
    cpu = real_mode_cpu(bytes.fromhex("cd 21"), esp=0x9000)
    result = cpu.step()
    assert result.exception == (0x21, "trap", None)
    assert cpu.get_reg("esp") == 0x9000


def test_delivery_onto_a_stack_past_its_limit_reports_the_exception() -> None:
    cpu = real_mode_cpu(bytes.fromhex("cd 21"), esp=0x0001)  # the first push faults #SS
    assert cpu.step().exception == (0x21, "trap", None)
    assert cpu.get_reg("esp") == 1
