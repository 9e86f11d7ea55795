"""``ReferenceRunner`` hands the reference every register a case names and reads every
one back (the outcome ``compare`` checks field by field)."""

from __future__ import annotations

import pytest

from differential.runners.reference_runner import ReferenceRunner
from ground.case import PAGE_SIZE, Case, register_names
from reference import Cpu

CODE = 0x1000


@pytest.mark.parametrize("mode", ["real16", "prot32"])
def test_every_named_register_goes_in_and_comes_back(mode: str) -> None:
    """8C D8 is MOV AX, DS (SDM Vol. 2B, MOV: 8C /r, r/m16 <- Sreg; a 66 prefix in
    prot32 keeps it 16-bit): it sees the DS a real16 case sets, changes AX alone, and
    every other register the case names comes back as it went in."""
    code = bytes.fromhex("8c d8" if mode == "real16" else "66 8c d8")
    regs = {name: 0x1111 * (i + 1) for i, name in enumerate(register_names(mode))}
    regs.update(eip=CODE, eflags=0x202, esp=0x1800)
    if mode == "real16":
        regs.update(cs=0, ds=0x1234, ss=0)
    else:
        regs.update(ds=0)
    regs = {name: regs[name] for name in register_names(mode)}
    case = Case(name="t", mode=mode, code=code,
                regs=regs, memory={CODE: code.ljust(PAGE_SIZE, b"\x90")})
    outcome = ReferenceRunner().run(case)
    assert outcome.exception is None
    expected = {**regs, "eip": CODE + len(code),
                "eax": (regs["eax"] & 0xFFFF0000) | regs.get("ds", 0)}
    assert outcome.regs == expected


def test_the_runners_cpu_files_no_instruction_under_its_bytes() -> None:
    """One instruction runs between resets, so the runner's Cpu leaves the trie of
    decoded bytes empty (``Cpu.remember_decoded`` off), where a plain Cpu files the
    same instruction; the outcome is the same."""
    code = bytes.fromhex("01 d8")  # add eax, ebx
    regs = {name: 0 for name in register_names("prot32")}
    regs.update(eip=CODE, eflags=0x2, eax=5, ebx=7)
    case = Case(name="t", mode="prot32", code=code, regs=regs,
                memory={CODE: code.ljust(PAGE_SIZE, b"\x90")})
    runner = ReferenceRunner()
    outcome = runner.run(case)
    cpu, memory = runner._cpus["prot32"]
    assert outcome.regs["eax"] == 12 and cpu.decoded_bytes == {16: {}, 32: {}}
    plain = Cpu(memory, "prot32")
    plain.set_reg("eip", CODE)
    assert plain.step().exception is None
    assert plain.decoded_bytes[32] != {}
