"""The reference PC runs the bare-metal image's data-breakpoint cases
(``differential/bare_metal/cases_debug.py``) to the states the SDM gives (Vol. 3B
17.2.4-17.2.5, 17.3.1.2; Vol. 3A 6.8.3). Each trap's EIP (the frame's stack0) is worked
out by assembling the case's code up to the instruction the SDM says the trap follows:
the accessing instruction, the iteration's REP instruction itself, or the instruction
after MOV SS. EBX holds DR6 & E00Fh (B0-B3, BS), EAX the EDI at the trap, ECX what the
case left there.
"""

from __future__ import annotations

from typing import Dict

import pytest

from differential.bare_metal import cases_debug as dbg
from differential.bare_metal import layout as bm
from differential.bare_metal.compare import CaseResult
from differential.tests import bare_metal_sdm as sdm

pytest.importorskip("keystone")

D = bm.DATA_PAGE
NO_EVENT = 0xFFFFFFFF
BS = 1 << 14


def _after(source: str) -> int:
    """The address just past ``source`` assembled at CODE0 (the trap's return EIP)."""
    return bm.CODE0 + len(bm.assemble(source, bm.CODE0))


def _trap(prefix: str, b_bits: int, **more: int) -> Dict[str, int]:
    fields = {"results.vector": 1, "results.stack0": _after(prefix), "results.ebx": b_bits}
    fields.update({f"results.{name}": value for name, value in more.items()})
    return fields


NO_TRAP = {"results.vector": NO_EVENT, "results.ebx": 0}

SDM_EXPECTATIONS: Dict[str, Dict[str, int]] = {
    # 17.2.5: DRn's low bits are masked by LEN: DR0 = +13h, LEN 4 -> +10h..+13h
    "data-breakpoint/write-len4-aligned-down-hit": _trap(
        dbg.arm({0: D + 0x13}, dbg.dr7(0, dbg.WRITES, dbg.LEN4))
        + f"\nmov byte ptr [{D + 0x10:#x}], 0x77", 1),
    "data-breakpoint/write-len4-miss": NO_TRAP,
    # DR1 = +21h, LEN 2 -> +20h..+21h
    "data-breakpoint/write-len2-aligned-down-hit": _trap(
        dbg.arm({1: D + 0x21}, dbg.dr7(1, dbg.WRITES, dbg.LEN2))
        + f"\nmov byte ptr [{D + 0x20:#x}], 0x77", 1 << 1),
    # a dword store at +2Eh covers +2Eh..+31h, so DR2's byte +31h (enabled by G2)
    "data-breakpoint/write-dword-straddles-len1": _trap(
        dbg.arm({2: D + 0x31}, dbg.dr7(2, dbg.WRITES, dbg.LEN1, "G"))
        + f"\nmov eax, 0x11223344; mov dword ptr [{D + 0x2E:#x}], eax", 1 << 2),
    # R/W = 01: data writes only
    "data-breakpoint/read-does-not-match-write-only": NO_TRAP,
    # R/W = 11: reads too; the read completed (ECX = the zeroed page's dword)
    "data-breakpoint/read-matches-read-write": _trap(
        dbg.arm({3: D + 0x40}, dbg.dr7(3, dbg.READS_WRITES, dbg.LEN4))
        + f"\nmov ecx, dword ptr [{D + 0x40:#x}]", 1 << 3, ecx=0),
    "data-breakpoint/disabled-no-trap": NO_TRAP,
    # one store, two conditions met: B0 and B2 (17.2.3)
    "data-breakpoint/two-breakpoints-b0-b2": _trap(
        dbg.arm({0: D + 0x50, 2: D + 0x52},
                dbg.dr7(0, dbg.WRITES, dbg.LEN1) | dbg.dr7(2, dbg.READS_WRITES, dbg.LEN2))
        + f"\nmov dword ptr [{D + 0x50:#x}], 0", 1 | 1 << 2),
    # TF (set by POPF) traps after the store: one #DB (one 3-dword frame), BS and B0
    "data-breakpoint/with-single-step": dict(_trap(
        dbg.arm({0: D + 0x60}, dbg.dr7(0, dbg.WRITES, dbg.LEN1))
        + f"\npushfd; or dword ptr [esp], {dbg.TF:#x}; popfd; mov byte ptr [{D + 0x60:#x}], 5",
        BS | 1), **{"results.esp": bm.STACK0_TOP - 12}),
    # 17.3.1.2: after the iteration that stored +73h (the fourth of 8): ECX = 4, EDI =
    # +74h, EIP still on REP STOSB (the address just before it)
    "data-breakpoint/rep-stosb-after-the-iteration": _trap(
        dbg.arm({0: D + 0x73}, dbg.dr7(0, dbg.WRITES, dbg.LEN1))
        + f"\ncld; mov edi, {D + 0x70:#x}; mov ecx, 8; mov al, 0xab", 1,
        ecx=4, eax=D + 0x74),
    # Vol. 3A 6.8.3: held after MOV SS until the next instruction (MOV ECX) has run
    "data-breakpoint/mov-ss-holds-it-one-instruction": _trap(
        f"mov dword ptr [{D + 0x80:#x}], {bm.DATA0_SEL:#x}\n"
        + dbg.arm({0: D + 0x80}, dbg.dr7(0, dbg.READS_WRITES, dbg.LEN2))
        + f"\nmov ss, word ptr [{D + 0x80:#x}]; mov ecx, 0x5555", 1, ecx=0x5555),
}


FAMILIES = ("data-breakpoint",)


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory) -> Dict[str, CaseResult]:
    return sdm.reference_results(FAMILIES, tmp_path_factory.mktemp("bm"))


def test_every_case_has_an_sdm_state() -> None:
    sdm.every_case_has_a_state(FAMILIES, SDM_EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(SDM_EXPECTATIONS))
def test_the_reference_runs_the_case_to_the_sdm_state(reference_results, name) -> None:
    sdm.reaches_the_sdm_state(reference_results[name], SDM_EXPECTATIONS[name])
