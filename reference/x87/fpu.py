"""The x87 FPU's state (SDM Vol. 1, 8.1): eight 80-bit data registers used as a stack,
the control, status and tag words, and the last-instruction pointers; plus the rules
every x87 instruction shares: stack faults, the masked/unmasked exception response, and
the checks made before an instruction starts (CR0.EM/TS -> #NM, a pending unmasked
exception -> #MF or FERR#).

The system level talks to this module through two attributes of the CPU, both optional:
``cpu.cr0`` (an int; without it the FPU behaves as under Linux: EM=0, TS=0, NE=1) and
``cpu.assert_ferr()`` (called when a pending exception is found with CR0.NE=0, the PC's
IRQ 13 path; without it the instruction proceeds, as with IGNNE# asserted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, NamedTuple

from reference.faults import MF, NM, Fault
from reference.x87.extended import DEFAULT_NAN, IE, SF, classify

if TYPE_CHECKING:  # pragma: no cover
    from reference.cpu import Cpu

# Status word (8.1.3): exception bits 0-6, ES 7, C0 8, C1 9, C2 10, TOP 13:11, C3 14, B 15.
ES, C0, C1, C2, C3, BUSY = 0x80, 0x100, 0x200, 0x400, 0x4000, 0x8000
CONDITION = C0 | C1 | C2 | C3
EXCEPTIONS = 0x3F                         # IE DE ZE OE UE PE (their masks in the CW)
CW_DEFAULT = 0x037F                       # FINIT: all masked, 64 bits, nearest
CW_WRITABLE = 0x1F3F                      # bits 13-15 and 6-7 are reserved
CW_FORCED = 0x0040                        # bit 6 reads as 1 on P6 and later

# Tags (8.1.7): 00 valid, 01 zero, 10 special (NaN, infinity, denormal, unsupported), 11 empty
TAG_VALID, TAG_ZERO, TAG_SPECIAL, TAG_EMPTY = 0, 1, 2, 3

# CR0 bits the FPU reads (SDM Vol. 3A, 2.5).
CR0_MP, CR0_EM, CR0_TS, CR0_NE = 0x2, 0x4, 0x8, 0x20


class StackRegister(NamedTuple):
    """An ST(i) operand from the instruction's low three bits (``i`` is relative to TOP)."""

    i: int


def tag_of(value: int) -> int:
    """The tag the hardware computes for a non-empty register's contents."""
    kind = classify(value)
    if kind == "zero":
        return TAG_ZERO
    return TAG_VALID if kind == "normal" else TAG_SPECIAL


class Fpu:
    """The state. ``regs`` are the physical registers R0-R7; ST(i) is R[(top + i) & 7].
    ``status`` holds the status word without TOP (kept apart in ``top``); ``empty`` is
    the tag word as the hardware keeps it internally (FSTENV/FSAVE compute the full tags
    from the contents, FLDENV/FRSTOR only read empty or not)."""

    def __init__(self) -> None:
        self.regs: List[int] = [0] * 8
        self.empty: List[bool] = [True] * 8
        self.control = CW_DEFAULT
        self.status = 0
        self.top = 0
        self.fip = self.fcs = self.fop = self.fdp = self.fds = 0
        # FINIT/FNSAVE leave the pointers zero; FXSAVE's MXCSR is kept for FXRSTOR.
        self.mxcsr = 0x1F80

    def reset(self) -> None:
        """FNINIT (SDM Vol. 2A, FINIT/FNINIT: Operation)."""
        self.__init__()  # type: ignore[misc]

    # -- words ------------------------------------------------------------------------
    @property
    def status_word(self) -> int:
        return (self.status & ~0x3800) | (self.top << 11)

    @status_word.setter
    def status_word(self, value: int) -> None:
        self.top = value >> 11 & 7
        self.status = value & 0xC7FF

    def set_control(self, value: int) -> None:
        """FLDCW/FLDENV/FRSTOR: reserved bits as the hardware keeps them (bit 6 reads 1,
        bits 7 and 13-15 read 0). Unmasking a pending exception sets ES and B."""
        self.control = (value & CW_WRITABLE) | CW_FORCED
        self.update_summary()

    def update_summary(self) -> None:
        """ES and B follow the exception bits left unmasked (8.1.3.2)."""
        if self.status & ~self.control & EXCEPTIONS:
            self.status |= ES | BUSY
        else:
            self.status &= ~(ES | BUSY)

    @property
    def tag_word(self) -> int:
        """The full tag word (FSTENV, FSAVE), physical register order."""
        word = 0
        for r in range(8):
            tag = TAG_EMPTY if self.empty[r] else tag_of(self.regs[r])
            word |= tag << (2 * r)
        return word

    def set_tag_word(self, word: int) -> None:
        self.empty = [(word >> (2 * r) & 3) == TAG_EMPTY for r in range(8)]

    # -- the stack --------------------------------------------------------------------
    def physical(self, i: int) -> int:
        return (self.top + i) & 7

    def is_empty(self, i: int) -> bool:
        return self.empty[self.physical(i)]

    def st(self, i: int) -> int:
        return self.regs[self.physical(i)]

    def set_st(self, i: int, value: int) -> None:
        r = self.physical(i)
        self.regs[r] = value
        self.empty[r] = False

    def push(self, value: int) -> None:
        self.top = (self.top - 1) & 7
        self.set_st(0, value)

    def pop(self) -> None:
        self.empty[self.top] = True
        self.top = (self.top + 1) & 7

    # -- exceptions -------------------------------------------------------------------
    def unmasked(self, flags: int) -> int:
        return flags & ~self.control & EXCEPTIONS

    def signal(self, flags: int) -> None:
        """Record exception bits (sticky) and update ES/B."""
        self.status |= flags & (EXCEPTIONS | SF)
        self.update_summary()

    def set_c1(self, on: bool) -> None:
        self.status = self.status | C1 if on else self.status & ~C1

    def set_conditions(self, c3: int, c2: int, c1: int, c0: int) -> None:
        self.status = (self.status & ~CONDITION) | (C3 if c3 else 0) | (C2 if c2 else 0) \
            | (C1 if c1 else 0) | (C0 if c0 else 0)

    def stack_fault(self, overflow: bool) -> bool:
        """Stack overflow/underflow (8.5.1.1): IE|SF, C1 = 1 on overflow, 0 on underflow.
        Returns True when masked: the caller then writes the default NaN."""
        self.set_c1(overflow)
        self.signal(IE | SF)
        return not self.unmasked(IE)

    def push_checked(self, value: int, flags: int = 0) -> None:
        """Push a loaded value: overflow when ST(7) is in use (masked: push the default
        NaN); an unmasked exception in ``flags`` (IE or DE of the load) pushes nothing."""
        if not self.empty[(self.top - 1) & 7]:
            if self.stack_fault(True):
                self.push(DEFAULT_NAN)
            return
        self.set_c1(False)
        if self.unmasked(flags):
            self.signal(flags)
            return
        self.signal(flags)
        self.push(value)


def entry_checks(cpu: Cpu, waiting: bool) -> None:
    """Before an x87 instruction (SDM Vol. 3A, 2.5 CR0.EM/TS/MP, 6.15 #NM and #MF): EM or
    TS -> #NM; then a waiting instruction with a pending unmasked exception (ES) -> #MF
    when CR0.NE, else FERR# to the system and go on."""
    cr0 = getattr(cpu, "cr0", CR0_NE)
    if cr0 & (CR0_EM | CR0_TS):
        raise Fault(NM)
    if waiting and cpu.fpu.status & ES:
        if cr0 & CR0_NE:
            raise Fault(MF)
        ferr = getattr(cpu, "assert_ferr", None)
        if ferr is not None:
            ferr()


def wait_checks(cpu: Cpu) -> None:
    """FWAIT: #NM only when both MP and TS are set; then the pending-exception check."""
    cr0 = getattr(cpu, "cr0", CR0_NE)
    if cr0 & CR0_MP and cr0 & CR0_TS:
        raise Fault(NM)
    if cpu.fpu.status & ES:
        if cr0 & CR0_NE:
            raise Fault(MF)
        ferr = getattr(cpu, "assert_ferr", None)
        if ferr is not None:
            ferr()
