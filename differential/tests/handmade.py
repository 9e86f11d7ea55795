"""Helpers for building small hand-made cases (values chosen here, expectations computed
by Python in each test, never by the runner under test)."""

from __future__ import annotations

from typing import Dict, Optional

from ground.case import GPRS, PAGE_SIZE, SEGMENTS, Case

CODE_PAGE, DATA_PAGE = 0x1000, 0x2000


def make_case(code: bytes, mode: str = "prot32", memory: Optional[Dict[int, bytes]] = None,
              **regs: int) -> Case:
    """``code`` at CS:EIP = 0:0x1000 with ESP in the data page; other registers 0."""
    values = dict.fromkeys(GPRS, 0)
    values.update(eip=CODE_PAGE, esp=DATA_PAGE + 0x800, eflags=0x202)
    if mode == "real16":
        values.update(dict.fromkeys(SEGMENTS, 0))
    values.update(regs)
    pages = {CODE_PAGE: bytes(PAGE_SIZE), DATA_PAGE: bytes(PAGE_SIZE)}
    pages.update(memory or {})
    start = values["eip"] + (values.get("cs", 0) << 4)
    page = bytearray(pages[start & ~0xFFF])
    page[start & 0xFFF:(start & 0xFFF) + len(code)] = code
    pages[start & ~0xFFF] = bytes(page)
    return Case(name="hand-made", mode=mode, code=code, regs=values, memory=pages)
