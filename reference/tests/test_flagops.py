"""CLC STC CMC CLD STD CLI STI: one EFLAGS bit each (SDM Vol. 2A/2B), nothing else.

Expected values are written from the SDM's one-line Operation sections and checked
against Unicorn with every other flag set and clear; the CLI/STI privilege rule
(#GP(0) when CPL > IOPL in protected mode) is checked by hand, Unicorn runs at CPL 0.
"""

from __future__ import annotations

import pytest

from reference.faults import GP
from reference.flags import CF, DF, IF, IOPL
from reference.tests.conftest import CODE, make_cpu
from reference.tests.handmade import run, unicorn_disagreements

MODES = ("prot32", "real16")
OTHER_FLAGS = (0x2, 0xED7)  # none set / every status flag with DF and IF (TF clear)
# (opcode, the bit it changes, what it makes of the bit's old value 0 or 1)
FLAG_OPS = {
    "CLC": (0xF8, CF, lambda old: 0), "STC": (0xF9, CF, lambda old: 1),
    "CMC": (0xF5, CF, lambda old: 1 - old), "CLD": (0xFC, DF, lambda old: 0),
    "STD": (0xFD, DF, lambda old: 1), "CLI": (0xFA, IF, lambda old: 0),
    "STI": (0xFB, IF, lambda old: 1),
}
CASES = [(name, mode, flags, bit_on) for name in FLAG_OPS for mode in MODES
         for flags in OTHER_FLAGS for bit_on in (False, True)]


def _id(case) -> str:
    name, mode, flags, bit_on = case
    return f"{name}-{mode}-{flags:#x}-{'set' if bit_on else 'clear'}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_flag_instruction_changes_only_its_bit(case) -> None:
    name, mode, others, bit_on = case
    opcode, bit, rule = FLAG_OPS[name]
    before = (others & ~bit) | (bit if bit_on else 0)
    cpu, result = run(bytes([opcode]), mode, eflags=before)
    assert result.exception is None
    expected = (before & ~bit) | (bit if rule(int(bit_on)) else 0)
    assert cpu.get_reg("eflags") == expected
    assert cpu.eip == CODE + 1


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_flag_instruction_agrees_with_unicorn(case) -> None:
    name, mode, others, bit_on = case
    opcode, bit, _ = FLAG_OPS[name]
    before = (others & ~bit) | (bit if bit_on else 0)
    assert unicorn_disagreements(bytes([opcode]), mode, eflags=before) == []


@pytest.mark.parametrize("opcode", [0xFA, 0xFB], ids=["CLI", "STI"])
@pytest.mark.parametrize("iopl", [0, 1, 2])
def test_cli_sti_fault_when_cpl_above_iopl(opcode: int, iopl: int) -> None:
    """SDM CLI/STI: in protected mode, CPL > IOPL (no VME/PVI) raises #GP(0) and the
    instruction does not happen."""
    cpu = make_cpu(bytes([opcode]), "prot32", eflags=0x202 | (iopl << 12))
    cpu.set_reg("cs", 0x1B)  # RPL 3: CPL 3
    result = cpu.step()
    assert (result.exception.vector, result.exception.kind) == (GP, "fault")
    assert result.exception.error_code == 0
    assert cpu.get_reg("eflags") == 0x202 | (iopl << 12)
    assert cpu.eip == CODE


@pytest.mark.parametrize("opcode,after_if", [(0xFA, 0), (0xFB, 1)], ids=["CLI", "STI"])
def test_cli_sti_allowed_at_cpl3_with_iopl3(opcode: int, after_if: int) -> None:
    cpu = make_cpu(bytes([opcode]), "prot32", eflags=0x202 | IOPL)
    cpu.set_reg("cs", 0x1B)
    result = cpu.step()
    assert result.exception is None
    assert cpu.flags.if_ == after_if
