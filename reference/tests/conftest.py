"""Helpers for the reference's tests: a CPU with code mapped at a known address."""

from __future__ import annotations

from typing import Callable

import pytest

from reference import Cpu, SparseMemory

CODE = 0x1000
DATA = 0x2000
STACK_TOP = 0x3800


def make_cpu(code: bytes, mode: str = "prot32", **regs: int) -> Cpu:
    """A CPU with ``code`` at CODE, a data page at DATA and a stack page below STACK_TOP;
    real16 runs with all segment registers 0 so offsets equal linear addresses."""
    mem = SparseMemory()
    mem.map(CODE, code)
    mem.map(DATA, bytes(4096))
    mem.map(0x3000, bytes(4096))
    cpu = Cpu(mem, mode)
    cpu.set_reg("eip", CODE)
    cpu.set_reg("esp", STACK_TOP)
    for name, value in regs.items():
        cpu.set_reg(name, value)
    return cpu


@pytest.fixture
def run_one() -> Callable[..., Cpu]:
    """Execute one instruction and assert it ended without an exception."""

    def run(code: bytes, mode: str = "prot32", **regs: int) -> Cpu:
        cpu = make_cpu(code, mode, **regs)
        result = cpu.step()
        assert result.exception is None, result
        return cpu

    return run
