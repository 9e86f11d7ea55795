"""F2 and F3 together before CMPS: the last one decides on the CPU; Unicorn lets F2 win
(known_divergences.toml, unicorn-rep-f2-wins-over-later-f3)."""

from __future__ import annotations

import pytest

from differential.check import AGREE, KNOWN, Checker
from differential.runners.reference_runner import ReferenceRunner
from differential.runners.unicorn_runner import UnicornRunner
from ground.case import Case


def _equal_bytes_case(code: bytes) -> Case:
    """REPE/REPNE CMPS over three equal bytes: REPE runs out ECX, REPNE stops after one."""
    code_page = bytearray(4096)
    code_page[0x800:0x800 + len(code)] = code
    regs = dict(eax=0, ecx=3, edx=0, ebx=0, esp=0x7FFFF800, ebp=0, esi=0x100100,
                edi=0x7FFFF100, eip=0x10800, eflags=0x202)
    memory = {0x10000: bytes(code_page), 0x100000: bytes(4096), 0x7FFFF000: bytes(4096)}
    return Case("rep-pair", "prot32", code, regs, memory, form="CMPS_Xb_Yb")


@pytest.mark.parametrize("code", [b"\xf2\xf3\xa6", b"\xf3\xf2\xf3\xa6", b"\xf2\xf3\xf3\x2e\xa6"])
def test_f3_after_f2_is_a_known_unicorn_divergence(code):
    case = _equal_bytes_case(code)
    assert ReferenceRunner().run(case).regs["ecx"] == 0  # repeated while equal: REPE
    verdict = Checker(UnicornRunner(), ReferenceRunner()).check(case)
    assert verdict.status == KNOWN, verdict.line
    assert verdict.known.id == "unicorn-rep-f2-wins-over-later-f3"


def test_f2_last_agrees():
    verdict = Checker(UnicornRunner(), ReferenceRunner()).check(
        _equal_bytes_case(b"\xf3\xf2\xa6"))
    assert verdict.status == AGREE, verdict.line


def test_the_host_cpu_lets_the_last_prefix_decide():
    from differential.runners.native_runner import NativeRunner, StepperError

    try:
        runner = NativeRunner()
        outcomes = {code: runner.run(_equal_bytes_case(code)).regs["ecx"]
                    for code in (b"\xf2\xf3\xa6", b"\xf3\xf2\xa6")}
    except StepperError as exc:
        pytest.skip(f"no native oracle here: {exc}")
    assert outcomes == {b"\xf2\xf3\xa6": 0, b"\xf3\xf2\xa6": 2}
