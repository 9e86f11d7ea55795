"""Version-2 drawers of the system forms the first groups leave out (``x86lab vectors
generate --version 2``; ``differential/system_vectors.py`` decides and writes them):

- ``privileged`` (INVLPG, INVD, WBINVD, RDPMC) at CPL 0 and CPL 3: the CPL-0-only
  instructions are #GP(0) at CPL 3 (SDM Vol. 2A/2B, each one's Protected Mode
  Exceptions); INVLPG with a register operand is #UD; at CPL 0 the caches and TLB they
  act on are not architectural state, so the instruction only moves EIP. RDPMC reads
  the performance counter ECX names (stated as IA32_PERFCTR0/1, MSRs 0xC1 and 0xC2).
- ``fast-calls`` (SYSENTER, SYSEXIT) with the SYSENTER MSRs (0x174 CS, 0x175 ESP, 0x176
  EIP) stated, from CPL 3 and CPL 0, a null SYSENTER_CS among the draws (#GP(0)).
- ``debug`` (MOV to and from DR0-DR7): DR4/DR5 alias DR6/DR7 with CR4.DE clear, the
  reserved bits of DR6/DR7 as the P6 fixes them, DR7.GD's general-detect #DB, and #GP(0)
  at CPL 3 (SDM Vol. 2B, MOV (debug registers); Vol. 3B, 17.2).

Every group is decided by Unicorn where it agrees with the reference; a difference that
a known-divergence entry explains goes to ``decided-by-sdm`` (the reference, by the SDM).
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Dict, Tuple

from differential.system_machine import (
    CODE,
    DATA,
    FLAT_GDT,
    GDT,
    IDT,
    LDT,
    TSS,
    Drawn,
    draw_regs,
    flat_segments,
    gdt_state,
    make_case,
    table_image,
)
from ground.case import GPRS, PAGE_SIZE
from vectors.system_state import PROT32_CR0, Segment, SystemState

PERFCTR = (0xC1, 0xC2)
SYSENTER_MSRS = (0x174, 0x175, 0x176)
DR6_FIXED, DR6_WRITABLE = 0xFFFF0FF0, 0x0000E00F   # SDM Vol. 3B, 17.2.3 (P6 reads)
DR7_FIXED, DR7_WRITABLE = 0x00000400, 0xFFFF23FF   # 17.2.4: bit 10 one; 11, 12, 14, 15 zero
DR7_GD = 1 << 13


def _machine(rng: random.Random, cpl: int, **more: object) -> Tuple[Dict[int, bytes],
                                                                     SystemState]:
    """Flat protected mode at ``cpl`` with a GDT, IDT, LDT and TSS, as the control group's
    machine; at CPL 3 the segments are stated, so that Unicorn can reach CPL 3 by an IRET."""
    memory, _ = gdt_state(FLAT_GDT)
    memory[LDT] = bytes(PAGE_SIZE)
    memory[TSS] = bytes(PAGE_SIZE)
    image = table_image(FLAT_GDT)
    state = SystemState(cpl=cpl, cr0=PROT32_CR0 | rng.choice((0, 0x8, 0x10000)),
                        cr4=rng.choice((0, 0x10, 0x90)), gdtr=(GDT, len(image) - 1),
                        idtr=(IDT, 0x7FF), tr=Segment(0x28, TSS, 103, 0x8B00),
                        segments=flat_segments(cpl) if cpl else None,
                        **more)  # type: ignore[arg-type]
    return memory, state


# --- privileged: INVLPG, INVD, WBINVD, RDPMC -----------------------------------------

def _privileged_code(form: str, rng: random.Random) -> Tuple[bytes, Dict[str, int]]:
    if form == "INVLPG_Mb":
        rm = rng.choice((0, 1, 2, 3, 6, 7))
        if rng.random() < 0.2:  # a register operand: #UD
            return bytes([0x0F, 0x01, 0xF8 | rm]), {}
        return bytes([0x0F, 0x01, 0x38 | rm]), {GPRS[rm]: rng.getrandbits(32)}
    if form in ("INVD", "WBINVD"):
        return bytes([0x0F, 0x08 if form == "INVD" else 0x09]), {}
    if form == "RDPMC":
        return bytes.fromhex("0f 33"), {"ecx": rng.choice((0, 1, 0, 1, 2, rng.getrandbits(32)))}
    raise ValueError(f"no privileged drawer for {form}")


def draw_privileged(form: str, rng: random.Random, number: int) -> Drawn:
    cpl = rng.choice((0, 0, 3))
    code, fixed = _privileged_code(form, rng)
    counters = {index: rng.getrandbits(40) for index in PERFCTR} if form == "RDPMC" else None
    memory, state = _machine(rng, cpl, msrs=counters)
    memory[DATA] = bytes(PAGE_SIZE)
    regs = draw_regs(rng, **fixed)
    return Drawn(form, make_case(form, f"{form} #{number}", code, regs, memory), state)


PRIVILEGED_FORMS = ("INVLPG_Mb", "INVD", "WBINVD", "RDPMC")


# --- fast-calls: SYSENTER, SYSEXIT --------------------------------------------------------

def draw_fast_call(form: str, rng: random.Random, number: int) -> Drawn:
    """SYSENTER from CPL 3 (its use) or CPL 0; SYSEXIT from CPL 0 (its use) or CPL 3
    (#GP(0)); SYSENTER_CS the flat ring-0 code selector, with an RPL, or null (#GP(0))."""
    usual = 3 if form == "SYSENTER" else 0
    cpl = usual if rng.random() < 0.7 else 3 - usual
    selector = rng.choice((0x08, 0x08, 0x08, 0x0B, 0x00, 0x03))
    # The targets (SYSENTER_EIP, and EDX for SYSEXIT) lie in the code page: an engine
    # that stops after one instruction need not fetch from an unmapped one.
    msrs = {0x174: selector, 0x175: rng.getrandbits(32),
            0x176: CODE + rng.randrange(0x100, 0xF00)}
    memory, state = _machine(rng, cpl, msrs=msrs)
    state = replace(state, segments=flat_segments(cpl))
    code = bytes.fromhex("0f 34" if form == "SYSENTER" else "0f 35")
    regs = draw_regs(rng, eflags=0x2 | (rng.getrandbits(12) & 0xAD5) | 0x200,
                     edx=CODE + rng.randrange(0x100, 0xF00))
    return Drawn(form, make_case(form, f"{form} #{number}", code, regs, memory), state)


FAST_CALL_FORMS = ("SYSENTER", "SYSEXIT")


# --- debug: MOV to and from DR0-DR7 -------------------------------------------------------

def _debug_registers(rng: random.Random) -> Dict[str, int]:
    """DR0-DR3 anywhere, DR6 and DR7 with their reserved bits as a P6 reads them, DR7.GD
    set in a quarter of the draws."""
    dr7 = DR7_FIXED | (rng.getrandbits(32) & DR7_WRITABLE & ~DR7_GD)
    if rng.random() < 0.25:
        dr7 |= DR7_GD
    return {"dr0": rng.getrandbits(32), "dr1": rng.getrandbits(32),
            "dr2": rng.getrandbits(32), "dr3": rng.getrandbits(32),
            "dr6": DR6_FIXED | (rng.getrandbits(16) & DR6_WRITABLE), "dr7": dr7}


def draw_debug(form: str, rng: random.Random, number: int) -> Drawn:
    cpl = 3 if rng.random() < 0.15 else 0
    debug = rng.randrange(8)
    reg = rng.randrange(8)
    opcode = 0x21 if form == "MOV_Rd_Dd" else 0x23
    code = bytes([0x0F, opcode, 0xC0 | debug << 3 | reg])
    value = rng.getrandbits(32)
    if form == "MOV_Dd_Rd" and debug in (6, 7, 4, 5) and rng.random() < 0.7:
        # mostly values a debugger writes; the rest: every bit, reserved ones included
        value = (value & (DR6_WRITABLE if debug in (4, 6) else DR7_WRITABLE & ~DR7_GD))
    memory, state = _machine(rng, cpl, dr=_debug_registers(rng))
    regs = draw_regs(rng, **{GPRS[reg]: value})  # ESP too: nothing touches the stack
    return Drawn(form, make_case(form, f"{form} #{number}", code, regs, memory), state)


DEBUG_FORMS = ("MOV_Rd_Dd", "MOV_Dd_Rd")



# --- single-step: the #DB trap after an instruction run with EFLAGS.TF set -------------

SINGLE_STEP_CODES = {"NOP": ("90",), "ADD_Ev_Gv": ("01 d8", "01 c8", "01 f7"),
                     "MOV_Ev_Gv": ("89 03", "89 0b"), "MOV_Rd_Dd": ("0f 21 f0", "0f 21 c1")}


def draw_single_step(form: str, rng: random.Random, number: int) -> Drawn:
    """TF set, DR7.GD clear: the instruction runs, then a single-step #DB trap with DR6.BS
    set (SDM Vol. 3B, 17.3.1.4). DR6's B0-B3 start clear, because "certain debug
    exceptions may clear bits 0-3" (17.2.3) leaves them to the vendor after the trap."""
    code = bytes.fromhex(rng.choice(SINGLE_STEP_CODES[form]))
    debug = _debug_registers(rng)
    debug["dr6"] &= ~0xF
    debug["dr7"] &= ~DR7_GD
    memory, state = _machine(rng, 0, dr=debug)
    memory[DATA] = bytes(PAGE_SIZE)
    eflags = 0x102 | (rng.getrandbits(12) & 0x8D5)
    regs = draw_regs(rng, eflags=eflags, ebx=DATA + rng.randrange(0, 0xF00))
    return Drawn(form, make_case(form, f"{form} #{number}", code, regs, memory), state)


SINGLE_STEP_FORMS = tuple(SINGLE_STEP_CODES)


# --- breakpoints: an execute breakpoint of DR0-DR3 at the instruction -------------------

def draw_breakpoint(form: str, rng: random.Random, number: int) -> Drawn:
    """DRn (n drawn) holds the instruction's linear address; most draws enable it (Ln or
    Gn) as an execute breakpoint (R/W 00, LEN 00): #DB, a fault before the instruction,
    DR6.Bn set (SDM Vol. 3B, 17.2.4, 17.3.1.1). The rest: the breakpoint disabled,
    elsewhere, or EFLAGS.RF set (17.3.1.1: RF suppresses it): the instruction runs, and
    clears RF. The
    other three registers stay disabled and away from the code, and DR6's B0-B3 start
    clear, since the SDM lets a CPU set or clear the B bits of breakpoints that did not
    fire (17.2.3)."""
    code = bytes.fromhex(rng.choice(SINGLE_STEP_CODES[form]))
    debug = _debug_registers(rng)
    n = rng.randrange(4)
    enable = rng.choice((1, 2, 3))
    variant = rng.choice(("fires", "fires", "fires", "disabled", "elsewhere", "rf"))
    dr7 = DR7_FIXED | (rng.getrandbits(2) << 8)  # LE, GE: no effect on a P6
    if variant != "disabled":
        dr7 |= enable << 2 * n
    debug.update(dr7=dr7, dr6=debug["dr6"] & ~0xF)
    for other in range(4):
        debug[f"dr{other}"] = rng.getrandbits(32) | 0x80000000  # far from the pages
    # "elsewhere": in the code page but not at this instruction nor the next one (an
    # engine that stops after one instruction may already check the next one's address)
    debug[f"dr{n}"] = CODE + (0x100 if variant == "elsewhere" else 0)
    memory, state = _machine(rng, 0, dr=debug)
    memory[DATA] = bytes(PAGE_SIZE)
    eflags = 0x2 | (rng.getrandbits(12) & 0x8D5) | (0x10000 if variant == "rf" else 0)
    regs = draw_regs(rng, eflags=eflags, ebx=DATA + rng.randrange(0, 0xF00))
    return Drawn(form, make_case(form, f"{form} #{number}", code, regs, memory), state)


BREAKPOINT_FORMS = ("NOP", "ADD_Ev_Gv", "MOV_Ev_Gv")
