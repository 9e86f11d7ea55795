"""The ``data-breakpoint`` family: DR0-DR3 with DR7 R/W = 01 (data writes) or 11 (data
reads or writes) and LEN 00/01/11 (SDM Vol. 3B, 17.2.4-17.2.5), reported as a #DB trap
after the instruction (17.3.1.2), after the iteration of a REP string instruction, and
held back one instruction after MOV SS (Vol. 3A, 6.8.3).

Every case clears DR6, loads DRn and DR7 at CPL 0 and touches DATA_PAGE. Vector 1 goes
to a handler of the case's own (``DB_HANDLER``) that reads what the common ``record``
cannot: EBX := DR6 & 0xE00F (B0-B3, BD, BS, BT: the bits the SDM defines, so the
reserved bits, which CPUs fill differently, are left out), EAX := EDI (where a string
instruction stopped); it disarms DR7 and goes on to vector 1's stub. A case that expects
no trap disarms DR7 itself before it ends. The frame's stack0 is the EIP the trap
returns to: past the instruction, or on a REP instruction with iterations left.
"""

from __future__ import annotations

from typing import List

from differential.bare_metal.image import Case
from differential.bare_metal.layout import (
    CODE0,
    CODE0_SEL,
    DATA0_SEL,
    DATA_PAGE,
    DONE,
    INT32,
    Layout,
    gate,
    stub,
)

DB_HANDLER = CODE0 + 0x600  # below TASK_CODE (CODE0 + 0x800), above any case's code
DR6_DEFINED = 0xE00F
DR7_RESERVED_ONE = 0x400
WRITES, READS_WRITES = 0b01, 0b11
LEN1, LEN2, LEN4 = 0b00, 0b01, 0b11
TF = 0x100

HANDLER = "\n".join([
    "mov ebx, dr6", f"and ebx, {DR6_DEFINED:#x}",
    f"mov eax, {DR7_RESERVED_ONE:#x}", "mov dr7, eax",  # nothing armed in the handler
    "mov eax, edi", f"jmp {stub(1):#x}"])


def dr7(n: int, rw: int, length: int, enable: str = "L") -> int:
    """DR7 (SDM Vol. 3B, Figure 17-1) with breakpoint ``n``'s R/Wn at bit 16 + 4n, LENn at
    18 + 4n, and Ln (bit 2n) and/or Gn (bit 2n + 1) as ``enable`` says."""
    bits = DR7_RESERVED_ONE | rw << 16 + 4 * n | length << 18 + 4 * n
    if "L" in enable:
        bits |= 1 << 2 * n
    if "G" in enable:
        bits |= 1 << 2 * n + 1
    return bits


def arm(addresses: dict, control: int) -> str:
    """CPL-0 code: DR6 := 0 (its defined bits), DRn := each address, DR7 := control."""
    lines = ["xor eax, eax", "mov dr6, eax"]
    for n, address in sorted(addresses.items()):
        lines += [f"mov eax, {address:#x}", f"mov dr{n}, eax"]
    lines += [f"mov eax, {control:#x}", "mov dr7, eax"]
    return "\n".join(lines)


DISARM_AND_DONE = f"mov eax, {DR7_RESERVED_ONE:#x}; mov dr7, eax; {DONE}"


def data_breakpoints() -> List[Case]:
    """Write and read/write breakpoints of 1, 2 and 4 bytes, hit and missed (DRn aligned
    down by LEN; any byte of the access in the range), two at once (B0 and B2), with
    single-step (BS and B0 in one #DB), REP STOSB stopping after the iteration that hit
    it, and MOV SS holding the trap back until after the next instruction."""
    cases = []

    def add(name: str, code: str, note: str) -> None:
        layout = Layout(f"data-breakpoint/{name}", "data-breakpoint", note=note)
        layout.idt[1] = gate(CODE0_SEL, DB_HANDLER, INT32)
        layout.extra_code[DB_HANDLER] = HANDLER
        layout.code0 = code + "\n" + DISARM_AND_DONE
        cases.append(layout.case())

    d = DATA_PAGE
    add("write-len4-aligned-down-hit",
        arm({0: d + 0x13}, dr7(0, WRITES, LEN4)) + f"\nmov byte ptr [{d + 0x10:#x}], 0x77; nop",
        "DR0 = +13h with LEN 4 covers +10h..+13h: #DB after the store, B0")
    add("write-len4-miss",
        arm({0: d + 0x13}, dr7(0, WRITES, LEN4)) + f"\nmov byte ptr [{d + 0x14:#x}], 0x77",
        "+14h is outside +10h..+13h: no #DB")
    add("write-len2-aligned-down-hit",
        arm({1: d + 0x21}, dr7(1, WRITES, LEN2)) + f"\nmov byte ptr [{d + 0x20:#x}], 0x77",
        "DR1 = +21h with LEN 2 covers +20h..+21h: B1")
    add("write-dword-straddles-len1",
        arm({2: d + 0x31}, dr7(2, WRITES, LEN1, "G"))
        + f"\nmov eax, 0x11223344; mov dword ptr [{d + 0x2E:#x}], eax",
        "a dword store at +2Eh touches +31h: B2 (enabled by G2)")
    add("read-does-not-match-write-only",
        arm({0: d + 0x40}, dr7(0, WRITES, LEN4)) + f"\nmov ecx, dword ptr [{d + 0x40:#x}]",
        "R/W = 01 is writes only: a read is no #DB")
    add("read-matches-read-write",
        arm({3: d + 0x40}, dr7(3, READS_WRITES, LEN4)) + f"\nmov ecx, dword ptr [{d + 0x40:#x}]",
        "R/W = 11: a read is a #DB trap, ECX loaded, B3")
    add("disabled-no-trap",
        arm({0: d + 0x40}, dr7(0, WRITES, LEN4, "")) + f"\nmov byte ptr [{d + 0x40:#x}], 1",
        "neither L0 nor G0: no #DB")
    add("two-breakpoints-b0-b2",
        arm({0: d + 0x50, 2: d + 0x52}, dr7(0, WRITES, LEN1) | dr7(2, READS_WRITES, LEN2))
        + f"\nmov dword ptr [{d + 0x50:#x}], 0",
        "one dword store matches both: B0 and B2 in one #DB")
    add("with-single-step",
        arm({0: d + 0x60}, dr7(0, WRITES, LEN1))
        + f"\npushfd; or dword ptr [esp], {TF:#x}; popfd; mov byte ptr [{d + 0x60:#x}], 5",
        "TF set by POPF traps after the store, which hits DR0: BS and B0 in one #DB")
    add("rep-stosb-after-the-iteration",
        arm({0: d + 0x73}, dr7(0, WRITES, LEN1))
        + f"\ncld; mov edi, {d + 0x70:#x}; mov ecx, 8; mov al, 0xab; rep stosb",
        "the fourth iteration stores +73h: #DB with ECX = 4, EDI = +74h, EIP on REP STOSB")
    add("mov-ss-holds-it-one-instruction",
        f"mov dword ptr [{d + 0x80:#x}], {DATA0_SEL:#x}\n"
        + arm({0: d + 0x80}, dr7(0, READS_WRITES, LEN2))
        + f"\nmov ss, word ptr [{d + 0x80:#x}]; mov ecx, 0x5555; nop",
        "MOV SS reads DR0's word: the #DB comes after the MOV ECX that follows it "
        "(Vol. 3A, 6.8.3), EIP on the NOP")
    return cases
