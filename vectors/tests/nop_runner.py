"""A runner that knows one instruction, NOP (0x90): enough to test replay without an engine.

Its truth comes from the SDM (NOP changes nothing but EIP, which advances by one), not
from the code under test. Anything else raises, which replay must report as a failure.
"""

from __future__ import annotations

from ground.case import Case, Outcome


class NopRunner:
    name = "nop"

    def run(self, case: Case) -> Outcome:
        if case.code != b"\x90":
            raise NotImplementedError(f"only NOP, not {case.code.hex()}")
        regs = dict(case.regs)
        regs["eip"] = (regs["eip"] + 1) & (0xFFFF if case.mode == "real16" else 0xFFFFFFFF)
        return Outcome(regs=regs, memory=dict(case.memory))


def nop_pair(name: str, eip: int = 0x100, final_eip: int = 0x101):
    """A NOP case at ``eip`` and the outcome a vector claims for it."""
    regs = {r: 0 for r in ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")}
    regs.update(eip=eip, eflags=0x2)
    page = bytearray(4096)
    page[eip] = 0x90
    memory = {0: bytes(page)}
    case = Case(name=name, mode="prot32", code=b"\x90", regs=regs, memory=memory, form="NOP")
    return case, Outcome(regs={**regs, "eip": final_eip}, memory=memory)
