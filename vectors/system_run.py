"""Run a version-2 vector (one with a system part) on the reference or on Unicorn.

The version-1 runners (``differential/runners``) know only the version-1 machine; giving
them a vector with page tables or a CPL-3 stack would run it wrongly and could pass by
accident. So a vector with a system part comes here: ``run_system(engine, ...)`` sets the
whole stated state, runs the one instruction and reads back every stated key, or raises
``Inexpressible`` with the reason this engine cannot take the vector, which the replay
counts as skipped (never passed).

What Unicorn 2.1.4 can and cannot be given (each reason below is a skip message):
- it reports exceptions to a hook and never delivers them through the IDT;
- its segment registers take a selector and load the hidden part from the descriptor
  table (with every check, at the CPL SS gives), so a hidden part must equal its
  descriptor's; and it shows selectors only, so final hidden parts are not read back
  (``UNOBSERVED``);
- its registers cannot make the CPL 3 (loading SS with RPL 3 at CPL 0 faults), so CPL 3
  is reached by running one IRET to the stated CS and SS from a scratch page the vector
  does not map, before paging is turned on (the vector must state CS, SS and the GDT);
- its Python binding writes an 80-bit ST register without its exponent, so the x87 state
  goes in through FRSTOR and comes out through FNSAVE, run from a scratch page the vector
  does not map (paging must then be off, so that the scratch page is reachable);
- a register write of DR7 does not arm its breakpoints, so DR7 goes in by MOV DR7 from
  the same scratch page.
"""

from __future__ import annotations

import struct
from typing import Dict, Optional, Tuple

from ground.case import GPRS, PAGE_SIZE, SEGMENTS, Case, Exc, Outcome
from vectors.system_state import (
    ATTRIBUTE_BITS,
    PROT32_CR0,
    SEGMENT_NAMES,
    X87,
    Segment,
    SystemState,
    SystemVector,
)

UNOBSERVED: Dict[str, Tuple[str, ...]] = {"reference": (), "unicorn": ("segments.hidden",)}
# The reference keeps DR0-DR3, DR6 and DR7 in ``cpu.dr`` in this order.
DEBUG_SLOTS = {"dr0": 0, "dr1": 1, "dr2": 2, "dr3": 3, "dr6": 4, "dr7": 5}
ENGINES = tuple(UNOBSERVED)


class Inexpressible(Exception):
    """This engine cannot be put in the vector's state (or cannot run it as stated)."""


def run_system(engine: str, case: Case, system: SystemVector) -> Tuple[Outcome, SystemState]:
    """The outcome and the final system state (the stated keys) of ``case`` on ``engine``."""
    if engine == "reference":
        return run_reference(case, system)
    if engine == "unicorn":
        return run_unicorn(case, system)
    raise Inexpressible(f"engine {engine!r} has no version-2 runner (only "
                        f"{', '.join(ENGINES)} take system state)")


# --- the reference ---------------------------------------------------------------------

class _RecordingDelivery:
    """The reference's IDT delivery, remembering the event the instruction raised."""

    def __init__(self) -> None:
        from reference.system.exceptions import SystemDelivery

        self.inner = SystemDelivery()
        self.event: Optional[Exc] = None

    def deliver(self, cpu: object, fault: object) -> object:
        if self.event is None:
            kind = "trap" if getattr(fault, "trap", False) else "fault"
            self.event = Exc(fault.vector, kind, fault.error_code)  # type: ignore[attr-defined]
        return self.inner.deliver(cpu, fault)


def _attr_limit(cpu: object, index: int) -> int:
    """The descriptor limit (byte-granular) behind the reference's segment cache: for
    expand-down data the cache keeps the lowest valid offset (``seg_floor``) instead."""
    floor = cpu.seg_floor[index]  # type: ignore[attr-defined]
    limit = cpu.seg_limit[index]  # type: ignore[attr-defined]
    if floor:
        return floor - 1
    return 0 if limit < 0 else min(limit, 0xFFFFFFFF)


def _load_reference(cpu: object, state: SystemState) -> None:
    from reference.cpu import SystemSegment
    from reference.system.control_registers import write_cr
    from reference.system.debug_registers import watch
    from reference.system.msr import write_msr
    from reference.system.segmentation import DescriptorLoader

    c = cpu  # the reference's Cpu: its attributes are its documented state
    if state.gdtr is not None:
        c.gdtr = state.gdtr  # type: ignore[attr-defined]
        c.segment_loader = DescriptorLoader()  # type: ignore[attr-defined]
    if state.idtr is not None:
        c.idtr = state.idtr  # type: ignore[attr-defined]
    for key in ("ldtr", "tr"):
        seg = getattr(state, key)
        if seg is not None:
            setattr(c, key, SystemSegment(seg.selector, seg.base, seg.limit, seg.attributes))
    if state.x87 is not None:
        fpu = c.fpu  # type: ignore[attr-defined]
        fpu.control = state.x87.fcw
        fpu.status_word = state.x87.fsw
        for i in range(8):
            r = fpu.physical(i)
            fpu.regs[r] = state.x87.st[i]
        fpu.set_tag_word(state.x87.ftw)
    for index, value in (state.msrs or {}).items():
        write_msr(c, index, value)
    for name, value in (state.dr or {}).items():  # as stated, reserved bits included
        c.dr[DEBUG_SLOTS[name]] = value  # type: ignore[attr-defined]
    if state.dr:
        watch(c)  # type: ignore[arg-type]  # armed data breakpoints, as MOV DRn arms them
    for number in (4, 3, 0):
        value = getattr(state, f"cr{number}")
        if value is not None:
            write_cr(c, number, value)
    if state.cr2 is not None:
        c.cr2 = state.cr2  # type: ignore[attr-defined]
    for name, seg in (state.segments or {}).items():
        index = SEGMENT_NAMES.index(name)
        if seg.attributes == 0 and name not in ("cs", "ss"):
            c.set_null_segment(index, seg.selector)  # type: ignore[attr-defined]
        else:
            c.set_segment_cache(index, seg.selector, seg.base, seg.limit,  # type: ignore
                                seg.attributes)
    if state.cpl is not None:
        c.cpl = state.cpl  # type: ignore[attr-defined]
    c.seg_journal.clear()  # type: ignore[attr-defined]
    c.journal.clear()  # type: ignore[attr-defined]


def _read_reference(cpu: object, stated: SystemState) -> SystemState:
    from reference.system.msr import read_msr

    c = cpu
    out: Dict[str, object] = {}
    for key in stated.stated():
        if key in ("cpl", "cr0", "cr2", "cr3", "cr4"):
            out[key] = getattr(c, key)
        elif key in ("gdtr", "idtr"):
            out[key] = tuple(getattr(c, key))
        elif key in ("ldtr", "tr"):
            seg = getattr(c, key)
            out[key] = Segment(seg.selector, seg.base, seg.limit, seg.attr & ATTRIBUTE_BITS)
        elif key == "segments":
            out[key] = {name: Segment(c.sregs[SEGMENT_NAMES.index(name)],  # type: ignore
                                      c.seg_base[SEGMENT_NAMES.index(name)],  # type: ignore
                                      _attr_limit(c, SEGMENT_NAMES.index(name)),
                                      c.seg_attr[SEGMENT_NAMES.index(name)]  # type: ignore
                                      & ATTRIBUTE_BITS)
                        for name in stated.segments or {}}
        elif key == "x87":
            fpu = c.fpu  # type: ignore[attr-defined]
            out[key] = X87(fpu.control, fpu.status_word, fpu.tag_word,
                           tuple(fpu.st(i) for i in range(8)))
        elif key == "msrs":
            out[key] = {index: read_msr(c, index) for index in stated.msrs or {}}
        elif key == "dr":
            out[key] = {name: c.dr[DEBUG_SLOTS[name]]  # type: ignore[attr-defined]
                        for name in stated.dr or {}}
    return SystemState(**out)  # type: ignore[arg-type]


def run_reference(case: Case, system: SystemVector) -> Tuple[Outcome, SystemState]:
    from reference import Cpu, SparseMemory, Unimplemented

    memory = SparseMemory()
    for base, data in case.memory.items():
        memory.map(base, data)
    cpu = Cpu(memory, mode=case.mode)
    names = list(GPRS) + ["eip", "eflags"] + (list(SEGMENTS) if case.mode == "real16" else [])
    for name in names:
        cpu.set_reg(name, case.regs[name])
    _load_reference(cpu, system.initial)
    recorder = None
    if system.delivery == "idt":
        recorder = _RecordingDelivery()
        cpu.delivery = recorder
    try:
        result = cpu.step()
    except Unimplemented as missing:
        return Outcome(regs={}, memory={}, notes={"unimplemented": str(missing)}), \
            SystemState()
    exc = result.exception
    exception = None if exc is None else Exc(exc.vector, exc.kind, exc.error_code)
    if recorder is not None and recorder.event is not None:
        event = recorder.event
        kind = "shutdown" if exc is not None and exc.kind == "shutdown" else event.kind
        if exc is not None and exc.kind not in ("shutdown",):
            raise Inexpressible(f"the reference could not deliver {event.label()} (the IDT, "
                                "a descriptor or the stack lies outside the vector's pages)")
        exception = Exc(event.vector, kind, event.error_code)
    pages = memory.pages()
    outcome = Outcome(regs={name: cpu.get_reg(name) for name in names},
                      memory={base: pages[base] for base in case.memory},
                      exception=exception)
    return outcome, _read_reference(cpu, system.initial)


# --- Unicorn ---------------------------------------------------------------------------

SCRATCH_CANDIDATES = (0xFFFFE000, 0x7FFFE000, 0x0FFFE000, 0x00FFE000)
FNSAVE_SIZE = 108


def _scratch(case: Case) -> int:
    """A page the vector maps neither itself nor next to (for FRSTOR/FNSAVE)."""
    for base in SCRATCH_CANDIDATES:
        if all(abs(base - page) > PAGE_SIZE for page in case.memory):
            return base
    raise Inexpressible("no free page for the x87 load/save stub")


def _fsave_image(x87: X87) -> bytes:
    """A 32-bit protected-mode FNSAVE image (SDM Vol. 1, Figures 8-9 and 8-12): control,
    status and tag words, zero pointers, then ST(0)..ST(7) in 10 bytes each."""
    head = struct.pack("<7I", x87.fcw | 0xFFFF0000, x87.fsw | 0xFFFF0000,
                       x87.ftw | 0xFFFF0000, 0, 0, 0, 0xFFFF0000)
    return head + b"".join(v.to_bytes(10, "little") for v in x87.st)


def _x87_from_image(image: bytes) -> X87:
    fcw, fsw, ftw = (struct.unpack_from("<H", image, at)[0] for at in (0, 4, 8))
    st = tuple(int.from_bytes(image[28 + 10 * i:38 + 10 * i], "little") for i in range(8))
    return X87(fcw, fsw, ftw, st)


def _run_stub(uc: object, scratch: int, code: bytes) -> None:
    from unicorn import x86_const as x86

    uc.mem_write(scratch, code)  # type: ignore[attr-defined]
    uc.reg_write(x86.UC_X86_REG_EBX, scratch + 0x800)  # type: ignore[attr-defined]
    uc.emu_start(scratch, scratch + len(code), count=1)  # type: ignore[attr-defined]


def _load_debug_registers(uc: object, scratch: int, debug: Dict[str, int]) -> None:
    """DR0-DR3 and DR6 written as registers; DR7 by running MOV DR7, EAX from the scratch
    page, because only the instruction arms Unicorn's breakpoints (a register write of
    DR7 leaves them off: measured, an execute breakpoint at the next EIP then never
    fires). Done at CPL 0, before the IRET to CPL 3 and before paging."""
    from unicorn import x86_const as x86

    for name in ("dr0", "dr1", "dr2", "dr3", "dr6"):
        if name in debug:
            uc.reg_write(getattr(x86, f"UC_X86_REG_{name.upper()}"), debug[name])  # type: ignore
    if "dr7" in debug:
        code = b"\xb8" + struct.pack("<I", debug["dr7"]) + b"\x0f\x23\xf8"  # mov dr7, eax
        uc.mem_write(scratch, code)  # type: ignore[attr-defined]
        uc.emu_start(scratch, scratch + len(code), count=2)  # type: ignore[attr-defined]


def _iret_to(uc: object, scratch: int, cs: int, ss: int) -> None:
    """CPL 3 the architectural way: IRETD at CPL 0 from the scratch page, popping EIP (the
    next byte of the page), CS, EFLAGS, ESP and SS (SDM Vol. 2A, IRET: return to outer
    privilege level). It checks and loads CS and SS from the vector's GDT."""
    from unicorn import UcError
    from unicorn import x86_const as x86

    # Unicorn starts with a 16-bit SS: first a flat 32-bit ring-0 SS from a one-entry GDT
    # in the scratch page, then the vector's GDT back for the IRET.
    gdtr = uc.reg_read(x86.UC_X86_REG_GDTR)  # type: ignore[attr-defined]
    uc.mem_write(scratch + 0x100, bytes(8) + struct.pack("<II", 0xFFFF, 0xCF9300))  # type: ignore
    uc.reg_write(x86.UC_X86_REG_GDTR, (0, scratch + 0x100, 15, 0))  # type: ignore
    uc.reg_write(x86.UC_X86_REG_SS, 0x08)  # type: ignore[attr-defined]
    uc.reg_write(x86.UC_X86_REG_GDTR, gdtr)  # type: ignore[attr-defined]
    frame = struct.pack("<5I", scratch + 1, cs, 0x2, scratch + 0xF00, ss)
    uc.mem_write(scratch, b"\xcf\x90")  # type: ignore[attr-defined]
    uc.mem_write(scratch + 0xE00, frame)  # type: ignore[attr-defined]
    uc.reg_write(x86.UC_X86_REG_ESP, scratch + 0xE00)  # type: ignore[attr-defined]
    try:
        uc.emu_start(scratch, scratch + 1, count=1)  # type: ignore[attr-defined]
    except UcError as exc:
        raise Inexpressible(f"unicorn's IRET to CPL 3 failed ({exc})") from None
    if uc.reg_read(x86.UC_X86_REG_CS) != cs or uc.reg_read(x86.UC_X86_REG_SS) != ss:  # type: ignore
        raise Inexpressible("unicorn's IRET to CPL 3 did not load the stated CS and SS")


def _descriptor_segment(memory: Dict[int, bytes], state: SystemState, selector: int
                        ) -> Optional[Segment]:
    """The hidden part a load of ``selector`` gives, read from the vector's GDT/LDT
    (linear = physical: Unicorn's state is set before paging is turned on)."""
    if selector & 4:
        table = state.ldtr.base if state.ldtr is not None else None
    else:
        table = state.gdtr[0] if state.gdtr is not None else None
    if table is None:
        return None
    address = table + (selector & ~7)
    page = memory.get(address & ~0xFFF)
    if page is None or (address & 0xFFF) > PAGE_SIZE - 8:
        return None
    low, high = struct.unpack_from("<II", page, address & 0xFFF)
    base = (low >> 16) | (high & 0xFF) << 16 | (high & 0xFF000000)
    limit = (low & 0xFFFF) | (high & 0xF0000)
    if high & 0x800000:
        limit = limit << 12 | 0xFFF
    return Segment(selector, base, limit, high & ATTRIBUTE_BITS | 0x100)  # accessed once loaded


def _check_unicorn_state(case: Case, system: SystemVector) -> None:
    state = system.initial
    if system.delivery == "idt":
        raise Inexpressible("unicorn reports exceptions to a hook and never delivers them "
                            "through the IDT (delivery 'idt')")
    if state.cpl not in (None, 0) and (state.gdtr is None or state.segments is None or
                                       not {"cs", "ss"} <= set(state.segments)):
        raise Inexpressible("unicorn reaches CPL 3 only by an IRET to the stated CS and SS: "
                            "the vector must state them and the GDT")
    if state.cpl not in (None, 0) and state.cpl != (state.segments or {})["cs"].selector & 3:
        raise Inexpressible("unicorn's CPL is CS.RPL after the IRET; the vector's differs")
    if state.x87 is not None and (state.cr0 or 0) & 0x80000000:
        raise Inexpressible("x87 state with paging on: the FRSTOR/FNSAVE stub's page "
                            "would need a mapping")
    for name, seg in (state.segments or {}).items():
        if seg.attributes == 0 and seg.selector & ~3 == 0:
            continue
        loaded = _descriptor_segment(case.memory, state, seg.selector)
        if loaded is None or (loaded.base, loaded.limit) != (seg.base, seg.limit) or \
                (loaded.attributes | 0x100) != (seg.attributes | 0x100):
            raise Inexpressible(f"unicorn loads {name}'s hidden part from its descriptor; "
                                f"the vector's differs from the descriptor of "
                                f"{seg.selector:#x}")


def run_unicorn(case: Case, system: SystemVector) -> Tuple[Outcome, SystemState]:
    from unicorn import (
        UC_ARCH_X86,
        UC_CTL_IO_WRITE,
        UC_CTL_TLB_FLUSH,
        UC_ERR_INSN_INVALID,
        UC_HOOK_INTR,
        UC_MODE_16,
        UC_MODE_32,
        Uc,
        UcError,
    )
    from unicorn import x86_const as x86

    _check_unicorn_state(case, system)
    state = system.initial
    uc = Uc(UC_ARCH_X86, UC_MODE_16 if case.mode == "real16" else UC_MODE_32)
    for base, data in case.memory.items():
        uc.mem_map(base, PAGE_SIZE)
        uc.mem_write(base, data)
    scratch = None
    if state.x87 is not None or state.cpl or state.dr is not None:
        scratch = _scratch(case)
        uc.mem_map(scratch, PAGE_SIZE)
    if state.x87 is not None and scratch is not None:
        uc.mem_write(scratch + 0x800, _fsave_image(state.x87))
        _run_stub(uc, scratch, bytes.fromhex("dd 23"))  # frstor [ebx]
    if state.dr is not None and scratch is not None:
        _load_debug_registers(uc, scratch, state.dr)
    reg = {name: getattr(x86, f"UC_X86_REG_{name.upper()}") for name in
           list(GPRS) + ["eflags"] + (list(SEGMENTS) if case.mode == "real16" else [])}
    if state.gdtr is not None:
        uc.reg_write(x86.UC_X86_REG_GDTR, (0, state.gdtr[0], state.gdtr[1], 0))
    if state.idtr is not None:
        uc.reg_write(x86.UC_X86_REG_IDTR, (0, state.idtr[0], state.idtr[1], 0))
    for key in ("ldtr", "tr"):
        seg = getattr(state, key)
        if seg is not None:
            uc.reg_write(getattr(x86, f"UC_X86_REG_{key.upper()}"),
                         (seg.selector, seg.base, seg.limit, seg.attributes))
    if state.cpl and scratch is not None and state.segments is not None:
        _iret_to(uc, scratch, state.segments["cs"].selector, state.segments["ss"].selector)
    try:
        for name in ("ss", "cs", "ds", "es", "fs", "gs"):
            if state.cpl and name in ("cs", "ss"):
                continue  # the IRET loaded them
            if state.segments is not None and name in state.segments:
                uc.reg_write(getattr(x86, f"UC_X86_REG_{name.upper()}"),
                             state.segments[name].selector)
    except UcError as exc:
        raise Inexpressible(f"unicorn refused the stated segment selectors ({exc})") from None
    for index, value in (state.msrs or {}).items():
        uc.msr_write(index, value)
    for number in (4, 3, 0):
        value = getattr(state, f"cr{number}")
        if value is not None:
            uc.reg_write(getattr(x86, f"UC_X86_REG_CR{number}"), value)
    if state.cr0 is None and case.mode == "prot32":
        uc.reg_write(x86.UC_X86_REG_CR0, PROT32_CR0)
    if state.cr2 is not None:
        uc.reg_write(x86.UC_X86_REG_CR2, state.cr2)
    for base, data in case.memory.items():  # loads set accessed bits: the vector's bytes
        uc.mem_write(base, data)
    uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)  # translations made while loading
    for name, number in reg.items():
        uc.reg_write(number, case.regs[name])
    uc.reg_write(x86.UC_X86_REG_EIP, case.regs["eip"])
    vectors = []

    def interrupt(engine: object, vector: int, _data: object) -> None:
        vectors.append(vector)
        engine.emu_stop()  # type: ignore[attr-defined]

    uc.hook_add(UC_HOOK_INTR, interrupt)
    cs_base = state.segments["cs"].base if state.segments and "cs" in state.segments else \
        (case.regs.get("cs", 0) << 4 if case.mode == "real16" else 0)
    start = (cs_base + case.regs["eip"]) & 0xFFFFFFFF
    exception: Optional[Exc] = None
    try:
        uc.emu_start(start, start + len(case.code), count=1)
    except UcError as error:  # an invalid opcode is Unicorn's #UD; the rest are accesses
        exception = Exc(6, "fault") if error.errno == UC_ERR_INSN_INVALID else \
            Exc(-1, "unmapped")
    eip = uc.reg_read(x86.UC_X86_REG_EIP)
    if vectors and exception is None:
        kind = "fault" if eip == case.regs["eip"] else "trap"
        exception = Exc(vectors[0], kind, None)
    regs = {name: uc.reg_read(number) for name, number in reg.items()}
    regs["eip"] = eip
    final = _read_unicorn(uc, state, scratch)
    pages = {base: bytes(uc.mem_read(base, PAGE_SIZE)) for base in case.memory}
    return Outcome(regs=regs, memory=pages, exception=exception), final


def _read_unicorn(uc: object, stated: SystemState, scratch: Optional[int]) -> SystemState:
    from unicorn import x86_const as x86

    out: Dict[str, object] = {}
    for key in stated.stated():
        if key == "cpl":
            out[key] = uc.reg_read(x86.UC_X86_REG_SS) & 3  # type: ignore[attr-defined]
        elif key.startswith("cr"):
            out[key] = uc.reg_read(getattr(x86, f"UC_X86_REG_{key.upper()}"))  # type: ignore
        elif key in ("gdtr", "idtr"):
            _, base, limit, _ = uc.reg_read(getattr(x86, f"UC_X86_REG_{key.upper()}"))  # type: ignore
            out[key] = (base, limit)
        elif key in ("ldtr", "tr"):
            sel, base, limit, flags = uc.reg_read(  # type: ignore[attr-defined]
                getattr(x86, f"UC_X86_REG_{key.upper()}"))
            out[key] = Segment(sel, base, limit, flags & ATTRIBUTE_BITS)
        elif key == "segments":
            out[key] = {name: Segment(uc.reg_read(  # type: ignore[attr-defined]
                getattr(x86, f"UC_X86_REG_{name.upper()}")), 0, 0, 0)
                for name in stated.segments or {}}
        elif key == "msrs":
            out[key] = {index: uc.msr_read(index)  # type: ignore[attr-defined]
                        for index in stated.msrs or {}}
        elif key == "dr":
            out[key] = {name: uc.reg_read(getattr(x86, f"UC_X86_REG_{name.upper()}"))  # type: ignore
                        for name in stated.dr or {}}
    if stated.x87 is not None and scratch is not None:
        _run_stub(uc, scratch, bytes.fromhex("dd 33"))  # fnsave [ebx]
        out["x87"] = _x87_from_image(bytes(uc.mem_read(scratch + 0x800,  # type: ignore
                                                       FNSAVE_SIZE)))
    return SystemState(**out)  # type: ignore[arg-type]
