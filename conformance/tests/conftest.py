"""Fixtures for the conformance tests: cases built by hand, and a skip when this machine
cannot build or run the 32-bit stepper (no gcc-multilib)."""

from __future__ import annotations

import shutil
from typing import Dict, Optional, Sequence

import pytest

from ground.case import PAGE_SIZE, Case

CODE_PAGE, DATA_PAGE = 0x10000, 0x20000
BASE_REGS = {"eax": 0, "ecx": 0, "edx": 0, "ebx": 0, "esp": DATA_PAGE + 0x800, "ebp": 0,
             "esi": 0, "edi": 0, "eip": CODE_PAGE + 0x10, "eflags": 0x202}


def make_case(code: bytes, regs: Optional[Dict[str, int]] = None, form: str = "",
              data: Sequence[int] = (), mode: str = "prot32") -> Case:
    """A prot32 case: ``code`` at CODE_PAGE+0x10, ``data`` bytes at the data page start."""
    code_page = bytearray(PAGE_SIZE)
    code_page[0x10:0x10 + len(code)] = code
    data_page = bytearray(PAGE_SIZE)
    data_page[:len(data)] = bytes(data)
    return Case(name=f"hand {code.hex()}", mode=mode, code=code,
                regs={**BASE_REGS, **(regs or {})},
                memory={CODE_PAGE: bytes(code_page), DATA_PAGE: bytes(data_page)}, form=form)


@pytest.fixture(scope="session")
def stepper_available() -> None:
    from differential.runners.native_runner import StepperError, build

    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    try:
        build()
    except StepperError as exc:
        pytest.skip(f"cannot build the 32-bit stepper here: {str(exc)[:100]}")
