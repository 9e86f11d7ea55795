"""Registers by name (``Cpu.set_reg``/``get_reg``) and the accessors behind the ones that
are not general registers (``reference.cpu.ACCESSORS``), which the differential's
reference runner calls directly: each name reaches its own register under its rules."""

from __future__ import annotations

import pytest

from reference import Cpu, SparseMemory
from reference.cpu import ACCESSORS, SEG_NAMES
from reference.flags import RESERVED_ONE


def _state(cpu: Cpu) -> tuple:
    """What writing a register by name may change."""
    return (cpu.regs, cpu.eip, cpu.flags.value, cpu.sregs, cpu.seg_base, cpu.seg_limit,
            cpu.seg_attr, cpu.cpl, cpu.default_size)


def test_each_segment_register_in_real16_sets_its_own_selector_and_base() -> None:
    """Real-address mode: base = selector * 16 (SDM Vol. 3A, 20.1.1), for that register
    alone."""
    cpu = Cpu(SparseMemory(), "real16")
    selectors = {name: 0x1000 + 0x111 * index for index, name in enumerate(SEG_NAMES)}
    for name, selector in selectors.items():
        cpu.set_reg(name, selector | 0x10000)  # bits above 16 are not a selector's
    assert cpu.sregs == [selectors[name] for name in SEG_NAMES]
    assert cpu.seg_base == [selectors[name] << 4 for name in SEG_NAMES]
    assert {name: cpu.get_reg(name) for name in SEG_NAMES} == selectors
    assert cpu.cpl == 0


def test_prot32_selectors_keep_flat_bases_and_cs_sets_the_cpl() -> None:
    cpu = Cpu(SparseMemory(), "prot32")
    cpu.set_reg("ds", 0x23)
    assert (cpu.get_reg("ds"), cpu.seg_base, cpu.cpl) == (0x23, [0] * 6, 0)
    cpu.set_reg("cs", 0x1B)  # RPL 3: the flat model runs at CPL 3
    assert (cpu.get_reg("cs"), cpu.seg_base, cpu.cpl) == (0x1B, [0] * 6, 3)


def test_eip_and_eflags_by_name() -> None:
    cpu = Cpu(SparseMemory(), "prot32")
    cpu.set_reg("eip", 0x1_2345_6789)
    cpu.set_reg("eflags", 0x8D5)
    assert cpu.get_reg("eip") == 0x2345_6789
    assert cpu.get_reg("eflags") == 0x8D5 | RESERVED_ONE
    assert cpu.flags.value == 0x8D5 | RESERVED_ONE


@pytest.mark.parametrize("mode", ["real16", "prot32"])
@pytest.mark.parametrize("name", sorted(ACCESSORS))
def test_the_accessors_do_what_set_reg_and_get_reg_do(mode: str, name: str) -> None:
    by_name, direct = Cpu(SparseMemory(), mode), Cpu(SparseMemory(), mode)
    by_name.set_reg(name, 0x2345)
    ACCESSORS[name].set(direct, 0x2345)
    assert _state(direct) == _state(by_name)
    assert ACCESSORS[name].get(direct) == by_name.get_reg(name)


def test_an_unknown_name_is_a_key_error() -> None:
    cpu = Cpu(SparseMemory(), "prot32")
    with pytest.raises(KeyError):
        cpu.set_reg("cr0", 1)
    with pytest.raises(KeyError):
        cpu.get_reg("rip")
