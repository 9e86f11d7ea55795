"""Far JMP, CALL and RET through random code-segment and call-gate descriptors, at CPL 0
and at CPL 3 (reached by a RETF to an outer level in the program itself), against
Unicorn 2.1.4 (QEMU's helper_ljmp/lcall/lret_protected). Call gates to ring 0 switch to
the TSS's stack. Seeded; the expected values come from Unicorn. Only exception vectors
are compared (Unicorn's hook has no error code).

Known divergence, checked as such: a far RET, or a CALL through a call gate, to an
offset beyond the target code segment's limit is #GP(0) by the SDM (Vol. 2A, CALL:
"IF tempEIP not within code segment limit THEN #GP(0)"; Vol. 2B, RET: "IF return
instruction pointer is not within code segment limit THEN #GP(0)"); Unicorn 2.1.4
(QEMU's helper_lret_protected and the gate path of helper_lcall_protected) transfers
without the check and runs on past the limit. Far JMP is checked by both.

Known divergence, checked as such: CALL at CPL 3 through a call gate to a *conforming*
code segment of DPL < 3. The SDM (Vol. 2A, CALL: "IF code segment is conforming OR code
segment DPL = CPL THEN GOTO SAME-PRIVILEGE"; there "CS(RPL) := CPL") keeps CPL 3;
Unicorn 2.1.4 loads CS with RPL = the segment's DPL, entering ring 0 (on the ring-3
stack). A far JMP through the same gate keeps CPL 3 in both.

Known divergence, left out of the draws: IRET at CPL 3 popping an EFLAGS image with VM
set. The SDM (Vol. 2A, IRET: "IF tempEFLAGS(VM) = 1 and CPL = 0 THEN GOTO
RETURN-TO-VIRTUAL-8086-MODE") returns within protected mode and ignores VM; Unicorn
2.1.4 enters virtual-8086 mode (seed 15 of the flags test with VM allowed: image
0x1F4E07 at CPL 3, after which a CLI that must be #GP at IOPL 2 runs).
"""

from __future__ import annotations

import random
from typing import Dict, Optional, Tuple

import pytest

from reference.tests.third_party import require

require("unicorn")
from unicorn import UC_ARCH_X86, UC_MODE_32, Uc  # noqa: E402
from unicorn import x86_const as x86  # noqa: E402

from reference import Cpu, SparseMemory  # noqa: E402
from reference.cpu import SystemSegment  # noqa: E402
from reference.faults import GP  # noqa: E402
from reference.system.segmentation import DescriptorLoader  # noqa: E402
from reference.tests.system_tables import (  # noqa: E402
    CALL_GATE32,
    STANDARD_GDT,
    descriptor,
    gate,
    table_bytes,
    tss32,
)
from reference.tests.unicorn_check import first_interrupt  # noqa: E402

CODE, TARGET, GDT, TSS = 0x1000, 0x1100, 0x5000, 0x8000
RING0_STACK, RING3_STACK = 0x9800, 0x3800
PAGES = (0x0000, CODE, 0x2000, 0x3000, GDT, TSS, 0x9000)
GPRS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
SEGS = ("cs", "ss", "ds", "es")
UC_REGS = {n: getattr(x86, f"UC_X86_REG_{n.upper()}") for n in GPRS + SEGS + ("eip",)}
Outcome = Tuple[Optional[int], Dict[str, int], bytes]


def _program(rng: random.Random, ring3: bool, selector: int) -> Tuple[bytes, int]:
    """Optionally drop to ring 3 with RETF, then one far transfer to selector:TARGET
    (or a far RET through a pushed frame). Returns the code and where it ends."""
    code = b""
    if ring3:  # push ss, esp, cs, eip; retf
        after = CODE + 15
        code += bytes.fromhex("6a 23 68") + RING3_STACK.to_bytes(4, "little")
        code += bytes.fromhex("6a 1b 68") + after.to_bytes(4, "little") + b"\xcb"
    kind = rng.choice(("jmp", "call", "retf"))
    pointer = TARGET.to_bytes(4, "little") + selector.to_bytes(2, "little")
    if kind == "jmp":
        code += b"\xea" + pointer
    elif kind == "call":
        code += b"\x9a" + pointer
    else:  # push selector; push TARGET; retf
        code += bytes.fromhex("68") + selector.to_bytes(4, "little")
        code += bytes.fromhex("68") + TARGET.to_bytes(4, "little") + b"\xcb"
    return code, TARGET + 1


def _memory(gdt: Dict[int, bytes], code: bytes) -> Dict[int, bytes]:
    memory = {base: bytes(0x1000) for base in PAGES}
    memory[CODE] = code.ljust(TARGET - CODE, b"\x90").ljust(0x1000, b"\x90")
    memory[GDT] = table_bytes(gdt).ljust(0x1000, b"\0")
    memory[TSS] = tss32(RING0_STACK, 0x10).ljust(0x1000, b"\0")
    return memory


def _unicorn(memory: Dict[int, bytes], limit: int, end: int) -> Outcome:
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    for base, data in memory.items():
        uc.mem_map(base, 0x1000)
        uc.mem_write(base, data)
    uc.reg_write(x86.UC_X86_REG_GDTR, (0, GDT, limit, 0))
    # QEMU's TR cache keeps the type LTR found (available, 9) and aborts the process
    # ("invalid tss type") when it reads a stack from a TR cached as busy.
    uc.reg_write(x86.UC_X86_REG_TR, (0x28, TSS, 103, 0x8900))
    uc.reg_write(x86.UC_X86_REG_ESP, RING3_STACK)
    vector = first_interrupt(uc, CODE, end, count=40)
    regs = {n: uc.reg_read(UC_REGS[n]) for n in GPRS + ("cs", "ss", "eip")}
    stacks = bytes(uc.mem_read(0x3000, 0x1000)) + bytes(uc.mem_read(0x9000, 0x1000))
    return (vector, regs, stacks)


def _reference(memory: Dict[int, bytes], limit: int, end: int) -> Outcome:
    mem = SparseMemory()
    for base, data in memory.items():
        mem.map(base, data)
    cpu = Cpu(mem, "prot32")
    cpu.gdtr = (GDT, limit)
    cpu.segment_loader = DescriptorLoader()
    cpu.tr = SystemSegment(0x28, TSS, 103, 0x8B00)
    cpu.set_reg("eip", CODE)
    cpu.set_reg("esp", RING3_STACK)
    vector = None
    for _ in range(40):
        exception = cpu.step().exception
        if exception is not None:
            vector = exception.vector
            break
        if cpu.eip == end:
            break
    regs = {n: cpu.get_reg(n) for n in GPRS + ("cs", "ss", "eip")}
    stacks = mem.read_bytes(0x3000, 0x1000) + mem.read_bytes(0x9000, 0x1000)
    return vector, regs, stacks


def _random_target(rng: random.Random) -> Tuple[Dict[int, bytes], int]:
    """A descriptor at 0x40: a code segment (any conforming/readable/DPL/P/limit) or a
    call gate (any DPL/P, to a code segment at 0x48 with random DPL/P/conforming). Half
    of the draws are plausible ones (present, flat, DPL 0 or 3; gates of DPL 3 to ring-0
    code), so that successful transfers and the call-gate stack switch are common."""
    gdt = dict(STANDARD_GDT)
    plausible = rng.random() < 0.5

    def code_descriptor() -> bytes:
        if plausible:
            return descriptor(0, 0xFFFFF, rng.choice((10, 14)), dpl=rng.choice((0, 3)), g=1)
        return descriptor(0, rng.choice((0xFFFFF, 0x10FF, 0x1000)), rng.choice((8, 10, 12, 14)),
                          dpl=rng.randrange(4), present=rng.random() < 0.85,
                          g=rng.random() < 0.5)
    if rng.random() < 0.5:
        gdt[0x40] = code_descriptor()
    else:
        dpl = 3 if plausible else rng.randrange(4)
        gdt[0x40] = gate(0x48 | rng.randrange(4), TARGET, CALL_GATE32, dpl=dpl,
                         present=plausible or rng.random() < 0.9, params=rng.randrange(3))
        gdt[0x48] = code_descriptor()
    rpl = rng.choice((0, 3)) if plausible else rng.randrange(4)
    return gdt, 0x40 | rpl


def _conforming_gate_call(gdt: Dict[int, bytes], code: bytes) -> bool:
    """A CALL at CPL 3 through a gate to conforming code of a lower DPL."""
    if 0x48 not in gdt or code[-7] != 0x9A or code[:1] != b"\x6a":
        return False
    access = gdt[0x48][5]
    return access & 0x1C == 0x1C and (access >> 5) & 3 < 3


def _beyond_limit(gdt: Dict[int, bytes]) -> bool:
    """The final code segment's limit (byte-granular here) lies below TARGET."""
    final = gdt[0x48] if 0x48 in gdt else gdt[0x40]
    high = int.from_bytes(final[4:8], "little")
    raw = int.from_bytes(final[0:2], "little") | (high & 0xF0000)
    return not high & 0x800000 and raw < TARGET


@pytest.mark.parametrize("seed", range(200))
def test_far_transfers_agree_with_unicorn(seed: int) -> None:
    rng = random.Random(f"far/{seed}")
    gdt, selector = _random_target(rng)
    code, end = _program(rng, rng.random() < 0.5, selector)
    memory = _memory(gdt, code)
    limit = len(table_bytes(gdt)) - 1
    theirs = _unicorn(memory, limit, end)
    mine = _reference(memory, limit, end)
    if _beyond_limit(gdt) and mine[0] == GP and theirs[0] is None:
        return  # known: QEMU's missing EIP limit check (module docstring)
    assert mine[0] == theirs[0], (gdt[0x40].hex(), code.hex())
    if mine[0] is None and _conforming_gate_call(gdt, code):
        # known: QEMU enters conforming code through a gate at CPL = its DPL
        assert (mine[1]["cs"] & 3, theirs[1]["cs"] & 3) == (3, gdt[0x48][5] >> 5 & 3)
        return
    if mine[0] is None:
        assert mine[1] == theirs[1], (gdt[0x40].hex(), code.hex())
        assert mine[2] == theirs[2]


@pytest.mark.parametrize("seed", range(100))
def test_popf_and_iret_flag_rules_agree_with_unicorn(seed: int) -> None:
    """IRET from CPL 0 to ring 3 with a random EFLAGS image (IOPL, IF, NT clear), then
    at CPL 3 POPF of a random value, PUSHF; POP EAX; then IRET at CPL 3 to ring 3 with
    another random image and PUSHF again: which of IF/IOPL each one may change (SDM
    POPF and IRET Operation) decides EAX and EBX; CLI at the end may be #GP."""
    rng = random.Random(f"flags/{seed}")
    image = 0x2 | (rng.getrandbits(2) << 12) | (rng.getrandbits(1) << 9) | 0xD5
    popped = rng.getrandbits(22) & 0x3F3ED5 | 0x2  # no VM, RF, NT (task return), TF
    second = rng.getrandbits(22) & 0x3D7ED5 | 0x2  # no TF; VM clear: module docstring
    start = CODE + 20
    code = (bytes.fromhex("6a 23 68") + RING3_STACK.to_bytes(4, "little")
            + bytes.fromhex("68") + image.to_bytes(4, "little")
            + bytes.fromhex("6a 1b 68") + start.to_bytes(4, "little") + b"\xcf")
    assert len(code) == 20
    after = start + 5 + 1 + 1 + 1 + 5 + 2 + 5 + 1
    code += (bytes.fromhex("68") + popped.to_bytes(4, "little") + b"\x9d\x9c\x58"
             + bytes.fromhex("68") + second.to_bytes(4, "little") + bytes.fromhex("6a 1b")
             + bytes.fromhex("68") + after.to_bytes(4, "little") + b"\xcf"
             + b"\x9c\x5b\xfa")
    memory = _memory(dict(STANDARD_GDT), code)
    limit = len(table_bytes(STANDARD_GDT)) - 1
    end = after + 3
    theirs = _unicorn(memory, limit, end)
    mine = _reference(memory, limit, end)
    assert mine[0] == theirs[0]
    keep = ~0x10000  # RF: the reference clears it when the next instruction starts
    assert mine[1]["eax"] & keep == theirs[1]["eax"] & keep
    assert mine[1]["ebx"] & keep == theirs[1]["ebx"] & keep
